//! The one [`MaskingStrategy`] behind every registered name: an optional scorer for the
//! training step and the dual masking of the data side.

use gadms_plugin::masking::{
    Draws, MaskedCaption, MaskingStrategy, NoiseLabelScores, ScoreInputs, ScoreOutput, ScoringRequest,
};
use gadms_plugin::{PluginError, Result};

use crate::dual::DualMasking;
use crate::score::Scorer;

#[derive(Debug)]
pub struct Strategy {
    /// `None` for strategies that ignore scores (`none`, `random`) and for the oracle.
    pub scorer: Option<Scorer>,
    /// `Some` for the oracle: the runner fills the score table from the noise labels.
    pub noise_labels: Option<NoiseLabelScores>,
    /// The score of a never-scored sample.
    pub initial_score: f32,
    pub masking: DualMasking,
}

impl MaskingStrategy for Strategy {
    fn scoring(&self) -> Option<ScoringRequest> {
        self.scorer.as_ref().map(Scorer::request)
    }

    fn initial_score(&self) -> f32 {
        self.initial_score
    }

    fn noise_label_scores(&self) -> Option<NoiseLabelScores> {
        self.noise_labels.clone()
    }

    fn score(&self, inputs: &ScoreInputs<'_>) -> Result<ScoreOutput> {
        match &self.scorer {
            Some(scorer) => scorer.score(inputs),
            None => Err(PluginError::Data(
                "this masking strategy does not score tokens".into(),
            )),
        }
    }

    fn mask(&self, tokens: &[i64], scores: &[f32], draws: &mut dyn Draws) -> Result<MaskedCaption> {
        if scores.len() != tokens.len() {
            return Err(PluginError::Data(format!(
                "a caption of {} positions came with {} scores",
                tokens.len(),
                scores.len()
            )));
        }
        let scores: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
        Ok(self.masking.views(tokens, &scores, draws))
    }
}
