//! Multi-scale pooling along the sequence (method spec §2.4): the mean over scales of the
//! features mean-pooled at that scale and linearly resized back to the full length. It
//! smooths the queries and keys before the spatial weight compares them, so a token counts
//! together with its neighbours.

use gadms_plugin::tch::Tensor;

/// `MSP(x)` for `x` `[B, L, W]`, pooling over the L axis at each of `scales`; `[B, L, W]`.
///
/// At scale `s`, consecutive windows of `s` positions are averaged; the positions left over
/// at the end (fewer than `s`) are averaged alone as one more window, as the reference does.
/// The pooled sequence is resized back to L with 1-D linear interpolation,
/// `align_corners = false`. Scale 1 is the identity. Every position takes part, SOT and
/// padding included.
pub fn multi_scale_pooling(x: &Tensor, scales: &[i64]) -> Tensor {
    let pooled: Vec<Tensor> = scales.iter().map(|&s| pool_and_resize(x, s)).collect();
    Tensor::stack(&pooled, 0).mean_dim(0, false, None)
}

/// One scale of [`multi_scale_pooling`], `scale >= 1` (a scale above L averages the whole
/// sequence).
fn pool_and_resize(x: &Tensor, scale: i64) -> Tensor {
    let (b, l, w) = x.size3().expect("multi-scale pooling takes [B, L, W]");
    let windows = l / scale;
    let covered = windows * scale;
    let mut pooled = x
        .narrow(1, 0, covered)
        .reshape([b, windows, scale, w])
        .mean_dim(2, false, None);
    if covered < l {
        let rest = x.narrow(1, covered, l - covered).mean_dim(1, true, None); // [B, 1, W]
        pooled = Tensor::cat(&[pooled, rest], 1);
    }
    // upsample_linear1d resizes the last axis: [B, W, n] -> [B, W, L].
    pooled
        .transpose(1, 2)
        .upsample_linear1d([l], false, None)
        .transpose(1, 2)
}
