//! The training-step side of `gadms`: per-token scores of a batch of clean captions.
//!
//! - [`tail`]: the dense re-run of the last text blocks and its one backward pass;
//! - [`pooling`]: multi-scale pooling of queries and keys;
//! - [`resize`]: linear resizing along the sequence as a cached matrix product;
//! - [`gradient`]: the gradient-attention maps (GASS as coded, as in the paper, Grad-ECLIP);
//! - [`css`]: the cosine-similarity baseline;
//! - [`normalise`]: maps to scores in [0, 1], degenerate groups zeroed without a host sync.

pub mod css;
pub mod gradient;
pub mod normalise;
pub mod ops;
pub mod pooling;
pub mod resize;
pub mod tail;

use gadms_plugin::masking::{ScoreInputs, ScoreOutput, ScoringRequest};
use gadms_plugin::tch::Tensor;
use gadms_plugin::{PluginError, Result};

use gradient::GradientScorer;

/// A scorer with its constants.
#[derive(Debug)]
pub enum Scorer {
    /// A gradient-attention map over the last `layers` text blocks.
    Gradient { layers: usize, scorer: GradientScorer },
    /// The cosine-similarity score on the state entering the last `layers` blocks,
    /// normalised over groups of `group` samples.
    Css { layers: usize, group: i64 },
}

impl Scorer {
    /// What the runner must hand over: the hidden state entering the last `layers` blocks.
    pub fn request(&self) -> ScoringRequest {
        match self {
            Self::Gradient { layers, .. } | Self::Css { layers, .. } => {
                ScoringRequest { tail_layers: *layers }
            }
        }
    }

    /// Scores `[B, L]` float32 in [0, 1] and the number of degenerate samples.
    pub fn score(&self, inputs: &ScoreInputs<'_>) -> Result<ScoreOutput> {
        match self {
            Self::Gradient { layers, scorer } => {
                check_inputs(inputs, *layers, false)?;
                Ok(scorer.trace(inputs)?.output)
            }
            Self::Css { layers, group } => {
                check_inputs(inputs, *layers, true)?;
                Ok(css::score(inputs, *group))
            }
        }
    }
}

/// Checks the inputs' shapes against each other (metadata only, no device sync): the
/// number of tail blocks, `text_state` `[B, L, W]`, `eos` `[B]`,
/// `image_cls` `[B, E]`, `text_projection` `[W, E]` and, when `patches` is set,
/// `image_tokens` `[B, N, E]` with at least one patch after the CLS token.
fn check_inputs(inputs: &ScoreInputs<'_>, blocks: usize, patches: bool) -> Result<()> {
    let fail = |what: String| Err(PluginError::Data(format!("gadms scorer: {what}")));
    if inputs.tail_blocks.len() != blocks {
        return fail(format!(
            "expected the last {blocks} text blocks, got {}",
            inputs.tail_blocks.len()
        ));
    }
    let state = inputs.text_state.size();
    let [b, _, w] = state[..] else {
        return fail(format!("text_state must be [B, L, W], got {state:?}"));
    };
    let projection = inputs.text_projection.size();
    let [_, e] = projection[..] else {
        return fail(format!("text_projection must be [W, E], got {projection:?}"));
    };
    let mut expected: Vec<(&str, &Tensor, Vec<i64>)> = vec![
        ("eos", inputs.eos, vec![b]),
        ("image_cls", inputs.image_cls, vec![b, e]),
        ("text_projection", inputs.text_projection, vec![w, e]),
    ];
    if patches {
        let n = inputs.image_tokens.size().get(1).copied().unwrap_or(0);
        if n < 2 {
            return fail(format!(
                "image_tokens need a patch after the CLS token, got {:?}",
                inputs.image_tokens.size()
            ));
        }
        expected.push(("image_tokens", inputs.image_tokens, vec![b, n, e]));
    }
    for (name, tensor, shape) in expected {
        if tensor.size() != shape {
            return fail(format!(
                "{name} must be {shape:?} for text_state {state:?}, got {:?}",
                tensor.size()
            ));
        }
    }
    Ok(())
}
