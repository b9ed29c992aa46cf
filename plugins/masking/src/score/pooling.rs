//! Multi-scale pooling along the sequence (method spec §2.4): the mean over scales of the
//! features mean-pooled at that scale and linearly resized back to the full length. It
//! smooths the queries and keys before the spatial weight compares them, so a token counts
//! together with its neighbours.

use gadms_plugin::tch::Tensor;

use super::resize::ResizeMatrices;

/// `MSP` at fixed scales, with the resize matrices its calls have built.
#[derive(Debug)]
pub struct MultiScalePooling {
    /// The pooling scales, each `>= 1` (a scale above L averages the whole sequence).
    scales: Vec<i64>,
    resize: ResizeMatrices,
}

impl MultiScalePooling {
    /// Pooling at `scales`, which the options checked to be non-empty and `>= 1`.
    pub fn new(scales: Vec<i64>) -> Self {
        assert!(
            !scales.is_empty() && scales.iter().all(|&s| s >= 1),
            "multi-scale pooling needs scales >= 1, got {scales:?}"
        );
        Self {
            scales,
            resize: ResizeMatrices::default(),
        }
    }

    /// `MSP(x)` for `x` `[B, L, W]`, pooling over the L axis at each scale; `[B, L, W]`.
    ///
    /// At scale `s`, consecutive windows of `s` positions are averaged; the positions left
    /// over at the end (fewer than `s`) are averaged alone as one more window, as the
    /// reference does. The pooled sequence is resized back to L with 1-D linear
    /// interpolation, `align_corners = false`. Scale 1 is the identity. Every position
    /// takes part, SOT and padding included.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let sum = self
            .scales
            .iter()
            .map(|&s| self.pool_and_resize(x, s))
            .reduce(|sum, scaled| sum + scaled)
            .expect("at least one scale, checked by new");
        sum / self.scales.len() as f64
    }

    /// One scale of [`Self::apply`]; scale 1 returns `x` itself, without any arithmetic.
    fn pool_and_resize(&self, x: &Tensor, scale: i64) -> Tensor {
        if scale == 1 {
            return x.shallow_clone();
        }
        self.resize.resize(&mean_pool(x, scale), x.size()[1])
    }
}

/// `x` `[B, L, W]` averaged over consecutive windows of `scale` positions, the leftover
/// positions at the end as one more window: `[B, ceil(L / scale), W]`.
fn mean_pool(x: &Tensor, scale: i64) -> Tensor {
    let (b, l, w) = x.size3().expect("multi-scale pooling takes [B, L, W]");
    let windows = l / scale;
    let covered = windows * scale;
    let pooled = x
        .narrow(1, 0, covered)
        .reshape([b, windows, scale, w])
        .mean_dim(2, false, None);
    if covered == l {
        return pooled;
    }
    let rest = x.narrow(1, covered, l - covered).mean_dim(1, true, None); // [B, 1, W]
    Tensor::cat(&[pooled, rest], 1)
}

#[cfg(test)]
mod tests {
    use gadms_plugin::tch::{Device, Kind};

    use super::*;

    /// `MSP` as the reference writes it: `F.interpolate` (libtorch's `upsample_linear1d`) on
    /// the pooled sequence at every scale, scale 1 included, and the mean over the stack.
    fn reference(x: &Tensor, scales: &[i64]) -> Tensor {
        let l = x.size()[1];
        let resized: Vec<Tensor> = scales
            .iter()
            .map(|&s| {
                let pooled = mean_pool(x, s).transpose(1, 2);
                pooled.upsample_linear1d([l], false, None).transpose(1, 2)
            })
            .collect();
        Tensor::stack(&resized, 0).mean_dim(0, false, None)
    }

    #[test]
    fn equals_the_interpolating_reference_at_odd_and_even_lengths() {
        for (l, scales) in [(77, vec![1, 2]), (76, vec![1, 2, 3]), (5, vec![2, 9])] {
            let x = Tensor::randn([3, l, 8], (Kind::Double, Device::Cpu));
            let got = MultiScalePooling::new(scales.clone()).apply(&x);
            let err = (got - reference(&x, &scales)).abs().max().double_value(&[]);
            assert!(err < 1e-12, "L {l}, scales {scales:?}: max |difference| {err}");
        }
    }

    #[test]
    fn accepts_a_strided_view_such_as_the_query_slice_of_qkv() {
        let qkv = Tensor::randn([2, 77, 3 * 8], (Kind::Double, Device::Cpu));
        let q = qkv.narrow(2, 0, 8);
        let got = MultiScalePooling::new(vec![1, 2]).apply(&q);
        let err = (got - reference(&q, &[1, 2])).abs().max().double_value(&[]);
        assert!(err < 1e-12, "max |difference| {err}");
    }
}
