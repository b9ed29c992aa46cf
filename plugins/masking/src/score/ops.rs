//! Small tensor helpers shared by the scorers.

use gadms_plugin::tch::{Kind, Tensor};

/// `x / max(‖x‖₂, 1e-12)` along the last axis, as PyTorch's `F.normalize`.
pub fn l2_normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-12)
}

/// Each sample's row at its own position: `x` `[B, L, D]`, `pos` `[B]` int64 → `[B, D]`.
pub fn rows_at(x: &Tensor, pos: &Tensor) -> Tensor {
    let (b, _, d) = x.size3().expect("rows_at takes [B, L, D]");
    x.gather(1, &pos.view([b, 1, 1]).expand([b, 1, d], false), false)
        .squeeze_dim(1)
}

/// The caption tokens proper, `0 < j < eos[b]` (no SOT, no EOS, no padding), as 0/1 of
/// `kind`, `[B, L]`.
pub fn caption_mask(eos: &Tensor, len: i64, kind: Kind) -> Tensor {
    let j = Tensor::arange(len, (Kind::Int64, eos.device())).unsqueeze(0); // [1, L]
    j.gt(0).logical_and(&j.lt_tensor(&eos.unsqueeze(1))).to_kind(kind)
}

/// Per-row min–max normalisation of `x` `[B, L]`: `(x - min) / (max - min + eps)`.
pub fn row_min_max(x: &Tensor, eps: f64) -> Tensor {
    let min = x.amin(1, true);
    let max = x.amax(1, true);
    (x - &min) / ((max - min) + eps)
}
