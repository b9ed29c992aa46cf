//! Loss plugins. A loss builds its own parameters (the MTP loss owns the cross-modal
//! transformer and the MLM head, the ID loss its classifier) under the `nn::Path` the runner
//! gives it, so they are trained, checkpointed and loaded by name like the backbone's.

use std::sync::Arc;

use tch::Tensor;

use crate::masking::Vocab;
use crate::Result;

/// What a loss needs to know to build its parameters.
#[derive(Debug, Clone)]
pub struct LossContext {
    /// Joint embedding width E.
    pub embed_dim: i64,
    pub vocab: Vocab,
    /// Number of training identities (for classifiers).
    pub num_classes: i64,
    /// Every token id that occurs in the training captions, ascending, when the runner builds
    /// the loss for training (`None` where it only lists a loss's parameters). Every MTP
    /// label is one of them: a label is a caption's own token at a masked position.
    pub caption_tokens: Option<Arc<[i64]>>,
}

/// The step's features, all on the training device. Unless noted, features are float32
/// and *not* normalised.
///
/// In a run across W ranks, `image_cls`, `text_eos` and `pids` hold the global batch, the
/// rows of every rank in rank order (B = W × the rank's batch); the other ranks' rows carry
/// no gradient, and the runner scales the gradient through this rank's rows so that the
/// ranks' average is the gradient of one process on the global batch. The token-level
/// inputs (`image_tokens`, `mtp_*`) hold this rank's batch only.
pub struct LossInputs<'a> {
    /// Image CLS features `[B, E]`.
    pub image_cls: &'a Tensor,
    /// Alignment-text features at the clean caption's EOS position `[B, E]`.
    pub text_eos: &'a Tensor,
    /// All image tokens `[B, N, E]` (for cross-modal heads).
    pub image_tokens: &'a Tensor,
    /// MTP-text features at every position `[B, L, E]`, when the masking strategy made an
    /// MTP view and some loss asked for it.
    pub mtp_tokens: Option<&'a Tensor>,
    /// MTP labels `[B, L]` int64, 0 = not a target.
    pub mtp_labels: Option<&'a Tensor>,
    /// Flat indices `b * L + t` of the positions with a label ≠ 0, ascending, `[M]` int64.
    /// The data pipeline knows them on the host, so a loss can project to the vocabulary
    /// only at these rows without a device-to-host sync.
    pub mtp_label_positions: Option<&'a Tensor>,
    /// Person ids `[B]` int64.
    pub pids: &'a Tensor,
    /// Inverse temperature (50 for τ = 0.02).
    pub logit_scale: f64,
}

/// A loss value and the metrics that go with it (0-dim tensors, read at log points).
pub struct LossOutput {
    /// Unweighted scalar loss; the runner applies the spec's weight.
    pub loss: Tensor,
    pub metrics: Vec<(String, Tensor)>,
}

impl LossOutput {
    /// A loss that reports no metrics beside its value.
    pub fn loss_only(loss: Tensor) -> Self {
        Self {
            loss,
            metrics: Vec::new(),
        }
    }
}

pub trait Loss: Send {
    /// Whether the loss needs the MTP view encoded (`mtp_tokens`, `mtp_labels`).
    ///
    /// Fixed configuration: it must return the same value for the loss's whole life. The SDK
    /// reads it once, right after [`LossFactory::build`], and answers later calls from that;
    /// a panic here fails the build (a [`crate::PluginError::Panic`] naming the method).
    fn uses_mtp_view(&self) -> bool;

    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput>;
}

pub trait LossFactory: Send + Sync {
    /// Builds the loss and its parameters under `path` (the root of the model's store, so
    /// parameter names match the reference state dict, e.g. `mlm_head.fc.weight`).
    fn build(&self, path: &tch::nn::Path, ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>>;
}
