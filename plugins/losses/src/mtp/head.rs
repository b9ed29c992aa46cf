//! IRRA's MLM head (method §1.6): `dense` → QuickGELU → `ln` → `fc` to the vocabulary.

use gadms_plugin::nn::{quick_gelu, BlockInit, LayerNorm, Linear};
use gadms_plugin::tch::{nn, Tensor};

/// `mlm_head.dense` `[E, E]`, `mlm_head.ln` `[E]`, `mlm_head.fc` `[V, E]`.
pub(crate) struct MlmHead {
    dense: Linear,
    ln: LayerNorm,
    fc: Linear,
}

impl MlmHead {
    /// `dense.weight` ~ N(0, fc_std²), `fc.weight` ~ N(0, proj_std²) of the decoder's `init`;
    /// biases keep PyTorch's U(±1/√E).
    pub fn new(path: &nn::Path, width: i64, vocab_size: i64, init: &BlockInit) -> Self {
        Self {
            dense: Linear::new(&(path / "dense"), width, width, init.fc_std, false),
            ln: LayerNorm::new(&(path / "ln"), width),
            fc: Linear::new(&(path / "fc"), width, vocab_size, init.proj_std, false),
        }
    }

    /// Vocabulary logits of decoded rows `[M, E]`: over every token `[M, V]`, or over the
    /// tokens `classes` `[C]` int64 only `[M, C]` (their rows of `fc`, so the weights keep the
    /// reference's shape and names).
    pub fn forward(&self, x: &Tensor, classes: Option<&Tensor>) -> Tensor {
        let hidden = self.ln.forward(&quick_gelu(&self.dense.forward(x)));
        match classes {
            None => self.fc.forward(&hidden),
            Some(ids) => hidden.linear(
                &self.fc.weight.index_select(0, ids),
                Some(&self.fc.bias.index_select(0, ids)),
            ),
        }
    }
}
