//! 1-D linear resizing along the sequence as a matrix product (method spec §2.4).
//!
//! The reference resizes pooled sequences with `F.interpolate(mode="linear",
//! align_corners=False)`, i.e. libtorch's `upsample_linear1d`. That kernel is slow on CUDA
//! (milliseconds per call at [128, 39 → 77, 512], even for a same-size call), while the same
//! interpolation written as a fixed `[target, source]` weight matrix is one small batched
//! matrix product. The matrices depend only on the two lengths, so each is built once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use gadms_plugin::tch::{Device, Kind, Tensor};

/// The weights of `upsample_linear1d(source → target, align_corners = false)` as a float64
/// `[target, source]` matrix on the CPU: row `i` holds the weights output position `i` gives
/// each input position.
///
/// Output position `i` reads source coordinate `(i + 0.5) · source / target − 0.5`, clamped
/// at 0; its neighbours are the floor and the next position (clamped to `source − 1`),
/// weighted `1 − λ` and `λ` with `λ` the coordinate's fractional part. Equal lengths give
/// the identity, as libtorch's kernel does.
pub fn linear_resize_matrix(source: i64, target: i64) -> Tensor {
    assert!(
        source >= 1 && target >= 1,
        "resize lengths must be >= 1, got {source} → {target}"
    );
    let ratio = source as f64 / target as f64;
    let mut weights = vec![0.0f64; (target * source) as usize];
    for i in 0..target {
        let coordinate = ((i as f64 + 0.5) * ratio - 0.5).max(0.0);
        let low = (coordinate.floor() as i64).min(source - 1);
        let high = (low + 1).min(source - 1);
        let lambda = (coordinate - low as f64).clamp(0.0, 1.0);
        let row = (i * source) as usize;
        weights[row + low as usize] += 1.0 - lambda;
        weights[row + high as usize] += lambda;
    }
    Tensor::from_slice(&weights).reshape([target, source])
}

/// Which matrix: the lengths and where and in what type it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MatrixKey {
    source: i64,
    target: i64,
    device: Device,
    kind: Kind,
}

/// The resize matrices built so far, one per (source length, target length, device, dtype).
/// A scorer holds one; the lock makes it shareable although the training thread is its only
/// user. Few keys ever occur (one per pooling scale), so the cache is never pruned.
#[derive(Default)]
pub struct ResizeMatrices {
    built: Mutex<HashMap<MatrixKey, Tensor>>,
}

impl ResizeMatrices {
    /// The `[target, source]` matrix on `device` in `kind`, built on first request.
    pub fn get(&self, source: i64, target: i64, device: Device, kind: Kind) -> Tensor {
        let key = MatrixKey {
            source,
            target,
            device,
            kind,
        };
        // A panic while the lock was held cannot leave a half-built entry behind.
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built
            .entry(key)
            .or_insert_with(|| {
                linear_resize_matrix(source, target)
                    .to_device(device)
                    .to_kind(kind)
            })
            .shallow_clone()
    }

    /// Resizes `x` `[B, source, W]` to `[B, target, W]` along its middle axis: the product
    /// with the matrix broadcast over the batch, so neither `x` nor the result is transposed
    /// or copied into another layout.
    pub fn resize(&self, x: &Tensor, target: i64) -> Tensor {
        let source = x.size()[1];
        self.get(source, target, x.device(), x.kind()).matmul(x)
    }
}

impl fmt::Debug for ResizeMatrices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let keys: Vec<&MatrixKey> = built.keys().collect();
        f.debug_struct("ResizeMatrices").field("built", &keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libtorch's kernel, resizing the last axis of `input`.
    fn upsample_reference(input: &Tensor, target: i64) -> Tensor {
        input.upsample_linear1d([target], false, None)
    }

    #[test]
    fn matrix_equals_upsample_linear1d_in_float64() {
        for (source, target) in [(39, 77), (26, 77), (77, 77), (3, 7)] {
            let input = Tensor::randn([4, 5, source], (Kind::Double, Device::Cpu));
            let expected = upsample_reference(&input, target);
            let matrix = linear_resize_matrix(source, target);
            let got = input.matmul(&matrix.transpose(0, 1));
            let err = (got - &expected).abs().max().double_value(&[]);
            assert!(err < 1e-12, "{source} → {target}: max |difference| {err}");
        }
    }

    #[test]
    fn rows_sum_to_one_and_equal_lengths_give_the_identity() {
        let rows = linear_resize_matrix(39, 77).sum_dim_intlist(1, false, Kind::Double);
        let ones = Tensor::ones([77], (Kind::Double, Device::Cpu));
        assert!(rows.allclose(&ones, 0.0, 1e-15, false));
        let eye = Tensor::eye(77, (Kind::Double, Device::Cpu));
        assert!(linear_resize_matrix(77, 77).equal(&eye));
    }

    #[test]
    fn resize_applies_the_matrix_over_the_sequence_axis() {
        let matrices = ResizeMatrices::default();
        let x = Tensor::randn([3, 39, 8], (Kind::Double, Device::Cpu));
        let got = matrices.resize(&x, 77);
        let expected = upsample_reference(&x.transpose(1, 2), 77).transpose(1, 2);
        assert_eq!(got.size(), [3, 77, 8]);
        let err = (got - expected).abs().max().double_value(&[]);
        assert!(err < 1e-12, "max |difference| {err}");
    }

    #[test]
    fn a_second_request_returns_the_cached_matrix() {
        let matrices = ResizeMatrices::default();
        let first = matrices.get(39, 77, Device::Cpu, Kind::Float);
        let again = matrices.get(39, 77, Device::Cpu, Kind::Float);
        assert_eq!(
            first.data_ptr(),
            again.data_ptr(),
            "the same storage, not a rebuilt matrix"
        );
        let double = matrices.get(39, 77, Device::Cpu, Kind::Double);
        assert_ne!(first.data_ptr(), double.data_ptr(), "dtype is part of the key");
        assert_eq!(double.kind(), Kind::Double);
        let other = matrices.get(26, 77, Device::Cpu, Kind::Float);
        assert_eq!(other.size(), [77, 26]);
        assert_eq!(matrices.built.lock().unwrap().len(), 3);
    }
}
