//! IRRA's cross-modal decoder (method §1.6, `cross_former`): the masked caption's tokens attend
//! to the image tokens once, then a small transformer mixes the result.

use gadms_plugin::nn::{BlockInit, LayerNorm, MultiheadAttention, Transformer};
use gadms_plugin::tch::{nn, Tensor};

/// `ln_pre_t`, `ln_pre_i`, `cross_attn`, `cross_modal_transformer.resblocks.N`, `ln_post` at
/// the reference names, all of width E.
pub(crate) struct CrossModalDecoder {
    ln_pre_t: LayerNorm,
    ln_pre_i: LayerNorm,
    cross_attn: MultiheadAttention,
    transformer: Transformer,
    ln_post: LayerNorm,
}

impl CrossModalDecoder {
    /// `depth` blocks of `heads` heads; `init` is CLIP's initialisation for that stack, which
    /// the reference also uses for `cross_attn`.
    pub fn new(path: &nn::Path, width: i64, depth: i64, heads: i64, init: &BlockInit) -> Self {
        Self {
            ln_pre_t: LayerNorm::new(&(path / "ln_pre_t"), width),
            ln_pre_i: LayerNorm::new(&(path / "ln_pre_i"), width),
            cross_attn: MultiheadAttention::new(&(path / "cross_attn"), width, heads, init),
            transformer: Transformer::new(&(path / "cross_modal_transformer"), width, depth, heads, init),
            ln_post: LayerNorm::new(&(path / "ln_post"), width),
        }
    }

    /// Decodes text tokens `[B, L, E]` against image tokens `[B, N, E]` into `[B, L, E]`.
    ///
    /// The cross-attention output *replaces* the text stream (no residual), and the blocks
    /// run without a causal mask: every text position sees the whole caption.
    pub fn forward(&self, text: &Tensor, image: &Tensor) -> Tensor {
        let x = self
            .cross_attn
            .forward_cross(&self.ln_pre_t.forward(text), &self.ln_pre_i.forward(image));
        self.ln_post.forward(&self.transformer.forward(&x, false))
    }
}
