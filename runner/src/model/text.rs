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

    /// Token plus position embeddings, `ids` `[B, L]` → `[B, L, W]`; `L` may be shorter than
    /// the context (see [`Self::feature_prefix`]).
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        let len = ids.size()[1];
        Tensor::embedding(&self.token_embedding, ids, -1, false, false)
            + self.positional_embedding.narrow(0, 0, len)
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

    /// The leading columns of `ids` `[B, L]` that decide their sentence features: up to the
    /// latest EOS of the batch. Attention is causal, so no position after a row's EOS reaches
    /// it, and encoding this prefix gives the features of the full rows for a fraction of the
    /// work (pedestrian captions are far shorter than CLIP's 77 positions). It reads the
    /// length back, so it is for host tensors: the collator and the evaluator trim before the
    /// copy to the device.
    pub fn feature_prefix(ids: &Tensor) -> Tensor {
        let len = Self::eos_positions(ids).max().int64_value(&[]) + 1;
        ids.narrow(1, 0, len).contiguous()
    }

    /// Sentence features of `ids` `[B, L]` → `[B, E]` (the evaluator's `encode_text`).
    pub fn encode(&self, ids: &Tensor) -> Tensor {
        Self::at_eos(&self.encode_tokens(ids), &Self::eos_positions(ids))
    }
}

#[cfg(test)]
mod tests {
    use tch::nn::VarStore;
    use tch::{Device, Kind};

    use super::*;

    /// Encoding the trimmed prefix gives the full rows' features, even with arbitrary ids
    /// after each EOS: nothing after an EOS reaches it.
    #[test]
    fn the_feature_prefix_encodes_like_the_full_rows() {
        tch::manual_seed(0);
        let c = ModelConfig::tiny();
        let text = TextTransformer::new(&VarStore::new(Device::Cpu).root(), &c);
        let eot = c.vocab_size - 1;
        let ids = Tensor::randint_low(1, eot, [4, c.context_length], (Kind::Int64, Device::Cpu));
        for (row, eos) in [5i64, 9, 3, 12].into_iter().enumerate() {
            let _ = ids.get(row as i64).get(eos).fill_(eot);
        }
        let trimmed = TextTransformer::feature_prefix(&ids);
        assert_eq!(trimmed.size(), [4, 13]);
        let gap = (text.encode(&ids) - text.encode(&trimmed))
            .abs()
            .max()
            .double_value(&[]);
        assert!(gap < 1e-5, "features differ by {gap}");
    }
}
