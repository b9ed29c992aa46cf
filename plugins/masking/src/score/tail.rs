//! The dense re-run of the text encoder's last blocks and the one backward pass that yields
//! every layer's gradient (method spec §2.2–2.3).
//!
//! Each block runs with a single attention head over the full width (the Grad-ECLIP
//! surrogate the reference uses, [`ResidualAttentionBlock::forward_dense_traced`]). The
//! clean caption's EOS feature `t_raw` is compared with the image CLS feature of every
//! sample; the gradient of the trace of that cosine matrix with respect to each block's
//! attention output is, at sample b's rows, the gradient of b's own image–text similarity
//! (text b only influences column b). The reference asks autograd once per layer with the
//! identity as `grad_outputs`; one backward pass to all layers gives the same numbers.
//!
//! [`ResidualAttentionBlock::forward_dense_traced`]: gadms_plugin::nn::ResidualAttentionBlock::forward_dense_traced

use gadms_plugin::masking::ScoreInputs;
use gadms_plugin::tch::{self, Tensor};
use gadms_plugin::{PluginError, Result};

use super::ops::{l2_normalize, rows_at};

/// What one re-run block leaves for the maps; every tensor is detached.
pub struct TailLayer {
    /// Queries before scaling `[B, L, W]`.
    pub q: Tensor,
    /// Keys `[B, L, W]`.
    pub k: Tensor,
    /// Values `[B, L, W]`.
    pub v: Tensor,
    /// Single-head causal attention probabilities `[B, L, L]`.
    pub attn: Tensor,
    /// `d(Σ_b C[b, b]) / d attn_output` at each sample's own EOS row `[B, W]`.
    pub eos_grad: Tensor,
}

/// The re-run of all tail blocks; every tensor is detached.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "only the parity tests read the intermediates")
)]
pub struct TailTrace {
    /// The clean caption's EOS feature after `ln_final` and the projection, before
    /// normalisation `[B, E]` (the reference's `t_feats_ori_raw`).
    pub t_raw: Tensor,
    /// `C = normalize(image_cls) · normalize(t_raw)ᵀ` `[B (image), B (text)]`.
    pub cosine: Tensor,
    /// One entry per tail block, in forward order.
    pub layers: Vec<TailLayer>,
}

/// Re-runs `inputs.tail_blocks` on `inputs.text_state` and differentiates the matched
/// cosines. Runs with gradient mode on whatever the caller's mode; no parameter gradient is
/// accumulated (the backward pass asks for the attention outputs' gradients only).
pub fn run(inputs: &ScoreInputs<'_>) -> Result<TailTrace> {
    tch::with_grad(|| {
        // A leaf that requires grad, so the graph to each attention output exists even when
        // the blocks' weights are frozen.
        let mut x = inputs.text_state.detach().set_requires_grad(true); // [B, L, W]
        let mut traces = Vec::with_capacity(inputs.tail_blocks.len());
        for block in inputs.tail_blocks {
            let (next, trace) = block.forward_dense_traced(&x);
            x = next;
            traces.push(trace);
        }
        let eos_state = rows_at(&x, inputs.eos); // [B, W]
        let t_raw = inputs.ln_final.forward(&eos_state).matmul(inputs.text_projection); // [B, E]
        let cosine = l2_normalize(inputs.image_cls).matmul(&l2_normalize(&t_raw).tr()); // [B, B]
        let matched = cosine.diagonal(0, 0, 1).sum(cosine.kind());
        let attn_outputs: Vec<&Tensor> = traces.iter().map(|t| &t.attn_output).collect();
        let grads = Tensor::f_run_backward(&[matched], &attn_outputs, false, false)
            .map_err(PluginError::tensor("backward pass to the attention outputs"))?;
        let layers = traces
            .into_iter()
            .zip(grads)
            .map(|(t, grad)| TailLayer {
                q: t.q.detach(),
                k: t.k.detach(),
                v: t.v.detach(),
                attn: t.attn.detach(),
                eos_grad: rows_at(&grad, inputs.eos),
            })
            .collect();
        Ok(TailTrace {
            t_raw: t_raw.detach(),
            cosine: cosine.detach(),
            layers,
        })
    })
}
