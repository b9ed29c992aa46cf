use gadms_plugin::nn::{BlockInit, LayerNorm, Transformer};
use tch::nn::{self, Init};
use tch::Tensor;

use super::ModelConfig;

/// CLIP's causal text transformer. Sentence features are the projected token at the EOS
/// position (the argmax of the ids, EOT being the largest id).
#[derive(Debug)]
pub struct TextTransformer {
    pub token_embedding: Tensor,
    pub positional_embedding: Tensor,
    pub transformer: Transformer,
    pub ln_final: LayerNorm,
    pub text_projection: Tensor,
}

impl TextTransformer {
    /// Parameters directly under `p` (`token_embedding.weight`, `transformer.resblocks.N`,
    /// …), as in CLIP's state dict.
    pub fn new(p: &nn::Path, c: &ModelConfig) -> Self {
        let w = c.text_width;
        Self {
            token_embedding: (p / "token_embedding").var(
                "weight",
                &[c.vocab_size, w],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            positional_embedding: p.var(
                "positional_embedding",
                &[c.context_length, w],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.01,
                },
            ),
            transformer: Transformer::new(
                &(p / "transformer"),
                w,
                c.text_layers,
                c.text_heads,
                &BlockInit::clip(w, c.text_layers),
            ),
            ln_final: LayerNorm::new(&(p / "ln_final"), w),
            text_projection: p.var(
                "text_projection",
                &[w, c.embed_dim],
                Init::Randn {
                    mean: 0.0,
                    stdev: (w as f64).powf(-0.5),
                },
            ),
        }
    }

    /// Token plus position embeddings, `ids` `[B, L]` → `[B, L, W]`.
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.token_embedding, ids, -1, false, false) + &self.positional_embedding
    }

    /// The hidden state after the first `blocks` blocks, `[B, L, W]`.
    pub fn hidden(&self, ids: &Tensor, blocks: usize) -> Tensor {
        self.transformer.forward_range(&self.embed(ids), 0..blocks, true)
    }

    /// All blocks, `ln_final` and the projection at every position: `[B, L]` → `[B, L, E]`.
    pub fn encode_tokens(&self, ids: &Tensor) -> Tensor {
        let x = self.transformer.forward(&self.embed(ids), true);
        self.ln_final
            .forward(&x)
            .matmul(&self.text_projection.to_kind(x.kind()))
    }

    /// Sentence features `[B, E]`: the row of `tokens` `[B, L, E]` at `eos` `[B]`.
    pub fn at_eos(tokens: &Tensor, eos: &Tensor) -> Tensor {
        let (b, _, e) = tokens.size3().unwrap();
        let index = eos.view([b, 1, 1]).expand([b, 1, e], false);
        tokens.gather(1, &index, false).squeeze_dim(1)
    }

    /// EOS positions `[B]` of `ids` `[B, L]`.
    pub fn eos_positions(ids: &Tensor) -> Tensor {
        ids.argmax(-1, false)
    }

    /// Sentence features of `ids` `[B, L]` → `[B, E]` (the evaluator's `encode_text`).
    pub fn encode(&self, ids: &Tensor) -> Tensor {
        Self::at_eos(&self.encode_tokens(ids), &Self::eos_positions(ids))
    }
}
