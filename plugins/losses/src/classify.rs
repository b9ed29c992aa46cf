//! Cross-entropy and accuracy over class logits, shared by the contrastive, identity and
//! token-prediction losses.

use gadms_plugin::tch::{Kind, Reduction, Tensor};
use gadms_plugin::{PluginError, Result};

/// Mean cross-entropy of `logits` `[N, C]` against class indices `targets` `[N]` int64, in
/// float32 whatever the logits' dtype (the reference casts logits with `.float()`). An index
/// outside `0..C` is an error naming `context`.
pub(crate) fn cross_entropy(logits: &Tensor, targets: &Tensor, context: &str) -> Result<Tensor> {
    logits
        .to_kind(Kind::Float)
        .f_cross_entropy_loss::<Tensor>(targets, None, Reduction::Mean, -100, 0.0)
        .map_err(PluginError::tensor(context))
}

/// The fraction of rows of `logits` `[N, C]` whose argmax is the target `[N]`, a 0-dim float32
/// tensor (no host sync; read at log points).
pub(crate) fn accuracy(logits: &Tensor, targets: &Tensor) -> Tensor {
    logits
        .argmax(-1, false)
        .eq_tensor(targets)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
}
