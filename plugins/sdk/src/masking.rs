//! Masking strategies: how a caption becomes the two texts GA-DMS trains on.
//!
//! A strategy may *score* the caption tokens during the training step (from the text
//! encoder's last blocks and the image features — where gradient-attention lives), and it
//! *masks* each caption on the data side from the scores its sample got last time: the
//! alignment view (noise tokens masked, fed to the SDM loss) and the masked-token-prediction
//! view (informative tokens masked, with labels). The runner keeps the scores per sample in
//! its score store between epochs.

use tch::Tensor;

use crate::nn::{LayerNorm, ResidualAttentionBlock};
use crate::Result;

/// The special ids of a CLIP-style vocabulary: the last three ids are `<|mask|>`,
/// `<|startoftext|>`, `<|endoftext|>`; 0 doubles as padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vocab {
    pub size: i64,
    pub mask_id: i64,
    pub sot_id: i64,
    pub eot_id: i64,
}

impl Vocab {
    /// The layout of the reference tokenizer for a vocabulary of `size` entries (49 408 for
    /// CLIP: mask 49405, sot 49406, eot 49407).
    pub fn clip_layout(size: i64) -> Self {
        Self {
            size,
            mask_id: size - 3,
            sot_id: size - 2,
            eot_id: size - 1,
        }
    }

    /// Whether a token may be masked: `0 < id < mask_id`. This also excludes the real BPE
    /// token 0 (`!`), as the reference does, because 0 is padding.
    pub fn is_eligible(&self, id: i64) -> bool {
        0 < id && id < self.mask_id
    }
}

/// A source of random draws for masking. The runner passes a seeded [`crate::rng::Rng`];
/// parity tests replay the reference's recorded draws.
pub trait Draws {
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64;
    /// Uniform index in `0..n`.
    fn choice(&mut self, n: u64) -> u64;
}

/// The masked-token-prediction view: input ids and the labels (the original id at
/// selected positions, 0 elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtpView {
    pub ids: Vec<i64>,
    pub labels: Vec<i64>,
}

/// The texts one caption contributes to a training step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedCaption {
    /// Text for image–text alignment (SDM/ITC/ID), noise tokens masked.
    pub alignment: Vec<i64>,
    /// Text for MTP, or `None` when the strategy produces no MTP view.
    pub mtp: Option<MtpView>,
}

/// What the runner tells a strategy when it creates it.
#[derive(Debug, Clone, Copy)]
pub struct MaskingContext {
    pub vocab: Vocab,
    /// Text positions per caption (77).
    pub context_length: i64,
}

/// What a scoring strategy asks the runner to prepare in the training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoringRequest {
    /// How many of the text encoder's final blocks the scorer re-runs itself; the runner
    /// hands over the hidden state entering them (see [`ScoreInputs::text_state`]).
    pub tail_layers: usize,
}

/// Scores a strategy takes from the training data's noise labels instead of computing them:
/// an oracle, the upper bound of what masking the noise can win back. The runner fills the
/// score table once, before training, with [`Self::NOISE`] for every token inside a labelled
/// noise span ([`crate::dataset::CaptionRecord::noise_spans`]) and [`Self::CLEAN`] for every
/// other position, and never changes it: the strategy's [`MaskingStrategy::mask`] then sees
/// the lowest score exactly on the noise. Such a strategy does not score in the step
/// ([`MaskingStrategy::scoring`] is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoiseLabelScores {
    /// The strategy's option that asked for the oracle (e.g. `scorer = "oracle"`), so that
    /// the runner's error for a training set without noise labels names it.
    pub option: String,
}

impl NoiseLabelScores {
    /// The score of a token inside a labelled noise span.
    pub const NOISE: f32 = 0.0;
    /// The score of every other position.
    pub const CLEAN: f32 = 1.0;

    /// The score of a position by its label.
    pub fn score(is_noise: bool) -> f32 {
        if is_noise {
            Self::NOISE
        } else {
            Self::CLEAN
        }
    }
}

/// Inputs of [`MaskingStrategy::score`]. All tensors are on the training device.
pub struct ScoreInputs<'a> {
    /// Clean caption ids `[B, L]` (int64).
    pub token_ids: &'a Tensor,
    /// EOS position of each clean caption `[B]` (int64).
    pub eos: &'a Tensor,
    /// Image CLS features after `ln_post`/`proj` `[B, E]`, detached.
    pub image_cls: &'a Tensor,
    /// All image tokens after `ln_post`/`proj` `[B, N, E]`, detached.
    pub image_tokens: &'a Tensor,
    /// Hidden state of the clean caption entering `tail_blocks` `[B, L, W]`, detached.
    pub text_state: &'a Tensor,
    /// The text encoder's last `tail_layers` blocks (shared weights, not copies).
    pub tail_blocks: &'a [ResidualAttentionBlock],
    pub ln_final: &'a LayerNorm,
    /// `[W, E]`.
    pub text_projection: &'a Tensor,
}

/// Result of scoring one batch.
pub struct ScoreOutput {
    /// Per-token scores in [0, 1], `[B, L]` float32, on the training device.
    pub scores: Tensor,
    /// Number of samples whose score map was degenerate (all zero or NaN) and was set to
    /// zeros, as a 0-dim int64 tensor (read only at log points, so no host sync).
    pub degenerate: Tensor,
}

/// A masking strategy. Implementations are shared by the data workers, hence `Sync`.
///
/// [`Self::scoring`], [`Self::initial_score`] and [`Self::noise_label_scores`] are the
/// strategy's fixed configuration: they must return the same value for the strategy's whole
/// life. The SDK reads each once, right after [`MaskingFactory::create`], and answers later
/// calls from that; a panic in any fails the creation (a [`crate::PluginError::Panic`] naming the method), so the
/// run stops instead of training without the configuration.
pub trait MaskingStrategy: Send + Sync {
    /// `Some` when the strategy scores tokens in the training step. Constant (see above).
    fn scoring(&self) -> Option<ScoringRequest>;

    /// The score a sample has before it was ever scored (0.85 in the reference). Constant
    /// (see above).
    fn initial_score(&self) -> f32;

    /// `Some` when the strategy's scores are the training data's noise labels (an oracle,
    /// see [`NoiseLabelScores`]); [`Self::initial_score`] is then never used. Constant (see
    /// above).
    fn noise_label_scores(&self) -> Option<NoiseLabelScores> {
        None
    }

    /// Scores the caption tokens of a batch. Called only when [`Self::scoring`] is `Some`.
    fn score(&self, inputs: &ScoreInputs<'_>) -> Result<ScoreOutput>;

    /// Builds the views of one caption from its clean ids (length L) and its stored
    /// scores (length L).
    fn mask(&self, tokens: &[i64], scores: &[f32], draws: &mut dyn Draws) -> Result<MaskedCaption>;
}

/// Creates strategies from TOML options.
pub trait MaskingFactory: Send + Sync {
    fn create(&self, ctx: &MaskingContext, options: &str) -> Result<Box<dyn MaskingStrategy>>;
}

/// The reference's selection procedure (`FilterDataset` / IRRA's MLM dataset), shared by
/// every strategy that masks: for each eligible position in order draw `u`; it is selected
/// when `u < p[i]`, and then `u / p[i]` decides mask (< 0.8), random id in `1..mask_id`
/// (< 0.9) or keep; its label is the original id. When nothing was selected, position 1
/// is masked and labelled (no 80/10/10 there). Returns `(ids, labels)`.
///
/// `probs` has one probability per position (ignored where the token is not eligible).
pub fn select_and_replace(
    tokens: &[i64],
    probs: &[f64],
    vocab: &Vocab,
    draws: &mut dyn Draws,
) -> (Vec<i64>, Vec<i64>) {
    let mut ids = tokens.to_vec();
    let mut labels = vec![0i64; tokens.len()];
    let mut any = false;
    for (i, &token) in tokens.iter().enumerate() {
        if !vocab.is_eligible(token) {
            continue;
        }
        let u = draws.uniform();
        let p = probs[i];
        if u < p {
            let r = u / p;
            if r < 0.8 {
                ids[i] = vocab.mask_id;
            } else if r < 0.9 {
                ids[i] = 1 + draws.choice((vocab.mask_id - 1) as u64) as i64;
            }
            labels[i] = token;
            any = true;
        }
    }
    if !any && tokens.len() > 1 {
        labels[1] = tokens[1];
        ids[1] = vocab.mask_id;
    }
    (ids, labels)
}

/// `max / (1 + exp(-k (x - threshold)))`, the reference's probability mapping.
pub fn sigmoid_probability(x: f64, k: f64, threshold: f64, max: f64) -> f64 {
    max / (1.0 + (-k * (x - threshold)).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<f64>, Vec<u64>);
    impl Draws for Fixed {
        fn uniform(&mut self) -> f64 {
            self.0.remove(0)
        }
        fn choice(&mut self, _n: u64) -> u64 {
            self.1.remove(0)
        }
    }

    #[test]
    fn selection_follows_80_10_10_and_the_fallback() {
        let v = Vocab::clip_layout(100);
        let tokens = [98, 5, 6, 7, 8, 99, 0];
        let p = [0.5; 7];
        // u/p: 0.2 -> mask, 1.7 -> not selected, 0.82*... -> random, 0.95 -> keep
        let mut d = Fixed(vec![0.1, 0.85, 0.42, 0.48], vec![9]);
        let (ids, labels) = select_and_replace(&tokens, &p, &v, &mut d);
        assert_eq!(ids, [98, 97, 6, 10, 8, 99, 0]);
        assert_eq!(labels, [0, 5, 0, 7, 8, 0, 0]);
        let mut none = Fixed(vec![0.9; 4], vec![]);
        let (ids, labels) = select_and_replace(&tokens, &p, &v, &mut none);
        assert_eq!(ids[1], 97);
        assert_eq!(labels, [0, 5, 0, 0, 0, 0, 0]);
    }
}
