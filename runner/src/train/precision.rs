//! Mixed precision: fp32 master weights and optimizer, with an autocast region around the
//! forward. `bf16` autocast runs matrix multiplications in bfloat16 while softmax,
//! LayerNorm and losses stay fp32. On CUDA this is decisions.md's default for speed. On CPUs
//! with AVX-512 BF16 it multiplies about 2.5× faster. Parity tests use fp32.
//!
//! tch only toggles CUDA autocast with libtorch's default dtype (fp16), so the region is
//! entered through a few lines of C++ (`runner/csrc/autocast.cpp`).

use std::os::raw::c_int;

use serde::{Deserialize, Serialize};
use tch::Device;

/// `train.precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

extern "C" {
    fn gadms_autocast_enter(device_type: c_int, scalar: c_int) -> c_int;
    fn gadms_autocast_exit(device_type: c_int, was_enabled: c_int) -> c_int;
}

#[derive(Debug, thiserror::Error)]
#[error("libtorch refused to {action} bf16 autocast on {device:?}")]
pub struct AutocastError {
    action: &'static str,
    device: Device,
}

/// Leaves the autocast region when dropped, also on unwinding.
struct Region {
    device_type: c_int,
    was_enabled: c_int,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: plain C function, exceptions are caught on the C++ side.
        let _ = unsafe { gadms_autocast_exit(self.device_type, self.was_enabled) };
    }
}

/// Runs `f` in the autocast region `precision` asks for on `device`.
pub fn autocast<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> Result<T, AutocastError> {
    if precision == Precision::Fp32 {
        return Ok(f());
    }
    let device_type = if device.is_cuda() { 1 } else { 0 };
    // SAFETY: plain C function, exceptions are caught on the C++ side.
    let was_enabled = unsafe { gadms_autocast_enter(device_type, 0) };
    if was_enabled < 0 {
        return Err(AutocastError {
            action: "enter",
            device,
        });
    }
    let _region = Region {
        device_type,
        was_enabled,
    };
    Ok(f())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn bf16_autocast_runs_matmuls_in_bf16_and_restores_fp32_after() {
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        let inside = autocast(Precision::Bf16, Device::Cpu, || a.matmul(&b)).unwrap();
        assert_eq!(inside.kind(), Kind::BFloat16);
        let relative = ((inside.to_kind(Kind::Float) - a.matmul(&b)).abs().max() / a.matmul(&b).abs().max())
            .double_value(&[]);
        assert!(relative < 2e-2, "bf16 matmul far from fp32: {relative}");
        assert_eq!(
            a.matmul(&b).kind(),
            Kind::Float,
            "autocast is off again after the region"
        );
        assert_eq!(
            autocast(Precision::Fp32, Device::Cpu, || a.matmul(&b))
                .unwrap()
                .kind(),
            Kind::Float
        );
    }
}
