//! Gradient-attention token maps from the re-run tail (method spec §2.4–2.9).
//!
//! Per layer ℓ and sample b, with `g` the gradient at b's EOS row and `v` the values, a
//! token's importance is `w[j] · ⟨g, v[j]⟩`, where the spatial weight `w` is the per-sample
//! min–max of the cosine between the EOS query and each key. The variants differ in how the
//! queries and keys are prepared, whether the EOS attention row modulates the importance,
//! and how the layer sum is normalised.

use gadms_plugin::masking::{ScoreInputs, ScoreOutput};
use gadms_plugin::tch::Tensor;
use gadms_plugin::Result;

use super::normalise::{normalise, Normalisation};
use super::ops::{caption_mask, l2_normalize, row_min_max, rows_at};
use super::pooling::MultiScalePooling;
use super::tail::{self, TailLayer, TailTrace};

/// Which gradient-attention map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradientMap {
    /// GASS as the reference codes it: multi-scale pooled q/k, the layer map
    /// `mask · imp · (mask · a) / (Σ_j imp[j] + eps)` with `a` the EOS attention row and the
    /// divisor the sum of the raw importance over all positions; ReLU of the layer sum, the
    /// caption mask, min–max over the group.
    Gass,
    /// GASS as the paper writes it (Eq. 2–3): as [`Self::Gass`] but the divisor is the sum
    /// of the EOS attention row over the caption tokens, and min–max per sample.
    GassPaper,
    /// Grad-ECLIP (§2.9): raw q/k, no epsilon in the spatial weight, no attention modulation,
    /// no mask; ReLU of the layer sum divided by each sample's max.
    GradEclip,
}

/// A gradient-attention scorer and its constants.
#[derive(Debug)]
pub struct GradientScorer {
    pub map: GradientMap,
    /// Multi-scale pooling of the queries and keys of the spatial weight (GASS variants).
    pub pooling: MultiScalePooling,
    /// Epsilon of the spatial weight's min–max and of the attention modulation's divisor.
    pub eps: f64,
    /// Samples per min–max group ([`GradientMap::Gass`]).
    pub group: i64,
}

/// Every intermediate of one scoring call, for inspection and tests.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "only the parity tests read the intermediates")
)]
pub struct GradientTrace {
    pub tail: TailTrace,
    /// The spatial weight `w` of each layer `[B, L]` (`enhanced_sim_qk` for the GASS
    /// variants, `sim_qk` for Grad-ECLIP).
    pub spatial: Vec<Tensor>,
    pub output: ScoreOutput,
}

impl GradientScorer {
    /// Scores a batch; the inputs' shapes were checked by the caller.
    pub fn trace(&self, inputs: &ScoreInputs<'_>) -> Result<GradientTrace> {
        let tail = tail::run(inputs)?;
        let l = inputs.text_state.size()[1];
        let mask = caption_mask(inputs.eos, l, inputs.text_state.kind()); // [B, L]
        let (spatial, maps): (Vec<Tensor>, Vec<Tensor>) = tail
            .layers
            .iter()
            .map(|layer| self.layer_map(layer, inputs.eos, &mask))
            .unzip();
        let summed = Tensor::stack(&maps, 0).sum_dim_intlist(0, false, None).relu(); // [B, L]
        let output = match self.map {
            GradientMap::Gass => normalise(&(summed * mask), Normalisation::MinMax { group: self.group }),
            GradientMap::GassPaper => normalise(&(summed * mask), Normalisation::MinMax { group: 1 }),
            GradientMap::GradEclip => normalise(&summed, Normalisation::Max),
        };
        Ok(GradientTrace {
            tail,
            spatial,
            output,
        })
    }

    /// The spatial weight and the map of one layer, both `[B, L]`.
    fn layer_map(&self, layer: &TailLayer, eos: &Tensor, mask: &Tensor) -> (Tensor, Tensor) {
        let spatial = match self.map {
            GradientMap::Gass | GradientMap::GassPaper => eos_key_similarity(
                &self.pooling.apply(&layer.q),
                &self.pooling.apply(&layer.k),
                eos,
                self.eps,
            ),
            GradientMap::GradEclip => eos_key_similarity(&layer.q, &layer.k, eos, 0.0),
        };
        let grad_dot_value = layer.v.matmul(&layer.eos_grad.unsqueeze(-1)).squeeze_dim(-1); // [B, L]
        let importance = &spatial * grad_dot_value;
        let eos_attention = rows_at(&layer.attn, eos) * mask; // [B, L]
        let map = match self.map {
            GradientMap::GradEclip => importance,
            GradientMap::Gass => {
                let divisor = importance.sum_dim_intlist(1, true, None);
                self.attention_modulated(&importance, &eos_attention, &divisor, mask)
            }
            GradientMap::GassPaper => {
                let divisor = eos_attention.sum_dim_intlist(1, true, None);
                self.attention_modulated(&importance, &eos_attention, &divisor, mask)
            }
        };
        (spatial, map)
    }

    /// `mask · importance · eos_attention / (divisor + eps)`, all `[B, L]` but the divisor
    /// `[B, 1]`; `eos_attention` is already masked.
    fn attention_modulated(
        &self,
        importance: &Tensor,
        eos_attention: &Tensor,
        divisor: &Tensor,
        mask: &Tensor,
    ) -> Tensor {
        (importance * mask) * (eos_attention / (divisor + self.eps))
    }
}

/// Cosine between each sample's EOS query and each of its keys, min–max normalised per
/// sample with `eps` in the denominator: `q`, `k` `[B, L, W]` → `[B, L]`.
fn eos_key_similarity(q: &Tensor, k: &Tensor, eos: &Tensor, eps: f64) -> Tensor {
    let query = l2_normalize(&rows_at(q, eos)).unsqueeze(-1); // [B, W, 1]
    let cosine = l2_normalize(k).matmul(&query).squeeze_dim(-1); // [B, L]
    row_min_max(&cosine, eps)
}
