//! A masking plugin to copy: `every-nth` masks every n-th eligible token of a caption for
//! masked-token prediction and leaves the alignment text clean. It scores nothing, so it
//! shows the smallest complete strategy; see the `gadms` plugin for one that scores tokens
//! in the training step.
//!
//! To start your own: `gadms-run new-plugin masking my-masking`, edit `mask` (and
//! `scoring`/`score` if your strategy looks at the model), `cargo build --release -p
//! gadms-my-masking`, and name it in a spec: `masking = { plugin = "my-masking" }`.

use gadms_plugin::masking::{
    Draws, MaskedCaption, MaskingContext, MtpView, ScoreInputs, ScoreOutput, ScoringRequest, Vocab,
};
use gadms_plugin::{parse_options, MaskingFactory, MaskingStrategy, PluginError, Registry, Result};
use serde::Deserialize;

/// The name specs use for this strategy.
const NAME: &str = "every-nth";

gadms_plugin::declare_plugin!(register);

fn register(registry: &mut Registry) -> Result<()> {
    registry.masking(
        NAME,
        "masks every n-th eligible token for MTP; alignment text unmasked",
        Factory,
    );
    Ok(())
}

/// Options, with their defaults. Unknown keys are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    /// Mask eligible tokens number n, 2n, 3n, … (1-based).
    n: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { n: 3 }
    }
}

struct Factory;

impl MaskingFactory for Factory {
    fn create(&self, ctx: &MaskingContext, options: &str) -> Result<Box<dyn MaskingStrategy>> {
        let options: Options = parse_options(NAME, options)?;
        if options.n == 0 {
            return Err(PluginError::Options {
                component: NAME.into(),
                message: "`n` must be at least 1".into(),
            });
        }
        Ok(Box::new(EveryNth {
            n: options.n,
            vocab: ctx.vocab,
        }))
    }
}

struct EveryNth {
    n: usize,
    vocab: Vocab,
}

impl MaskingStrategy for EveryNth {
    fn scoring(&self) -> Option<ScoringRequest> {
        None
    }

    fn initial_score(&self) -> f32 {
        0.0
    }

    fn score(&self, _inputs: &ScoreInputs<'_>) -> Result<ScoreOutput> {
        Err(PluginError::Data(format!("`{NAME}` does not score tokens")))
    }

    fn mask(&self, tokens: &[i64], _scores: &[f32], _draws: &mut dyn Draws) -> Result<MaskedCaption> {
        let mut ids = tokens.to_vec();
        let mut labels = vec![0; tokens.len()];
        let eligible = tokens
            .iter()
            .enumerate()
            .filter(|(_, &t)| self.vocab.is_eligible(t));
        for (_, (i, &t)) in eligible.enumerate().filter(|(k, _)| (k + 1) % self.n == 0) {
            ids[i] = self.vocab.mask_id;
            labels[i] = t;
        }
        Ok(MaskedCaption {
            alignment: tokens.to_vec(),
            mtp: Some(MtpView { ids, labels }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gadms_plugin::rng::Rng;

    #[test]
    fn masks_every_nth_eligible_token_and_keeps_alignment_clean() {
        let vocab = Vocab::clip_layout(100);
        let s = EveryNth { n: 2, vocab };
        let tokens = [98, 5, 6, 7, 8, 99, 0, 0];
        let out = s.mask(&tokens, &[0.0; 8], &mut Rng::new(0)).unwrap();
        assert_eq!(out.alignment, tokens);
        let mtp = out.mtp.unwrap();
        assert_eq!(mtp.ids, [98, 5, 97, 7, 97, 99, 0, 0]);
        assert_eq!(mtp.labels, [0, 0, 6, 0, 8, 0, 0, 0]);
    }

    #[test]
    fn bad_options_are_errors() {
        let ctx = MaskingContext {
            vocab: Vocab::clip_layout(100),
            context_length: 8,
        };
        assert!(Factory.create(&ctx, "n = 0").is_err());
        let err = Factory.create(&ctx, "m = 2").err().unwrap().to_string();
        assert!(err.contains('m'), "{err}");
    }
}
