//! Shared by the parity tests: the golden model's config as a [`ModelConfig`], and the
//! device they run on.

use std::collections::HashMap;

use gadms::model::ModelConfig;
use gadms_golden::Golden;
use serde_json::Value;
use tch::{Device, Tensor};

pub fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("manifest config lacks integer `{key}`"))
}

/// The model config of the golden model, read from the manifest.
pub fn golden_config(g: &Golden) -> ModelConfig {
    let c = g.model_config();
    let size: Vec<i64> = c["img_size"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    ModelConfig {
        embed_dim: int(c, "embed_dim"),
        image_size: [size[0], size[1]],
        patch_size: int(c, "patch_size"),
        stride: int(c, "stride_size"),
        vision_width: int(c, "vision_width"),
        vision_layers: int(c, "vision_layers"),
        vision_heads: int(c, "vision_heads"),
        context_length: int(c, "context_length"),
        vocab_size: int(c, "vocab_size"),
        text_width: int(c, "text_width"),
        text_layers: int(c, "text_layers"),
        text_heads: int(c, "text_heads"),
        temperature: c["temperature"].as_f64().unwrap(),
    }
}

/// The device of the parity tests: `GADMS_TEST_DEVICE` (`cpu`, the default, `cuda` or
/// `cuda:N`), so that the test executables check the CUDA kernels against the golden set
/// where no cargo is installed (`benches/gpu.sh`). On CUDA cuDNN is off: its convolutions
/// default to TF32, and the golden comparisons are float32.
#[allow(
    dead_code,
    reason = "the CPU step benchmark shares this module and runs on the CPU"
)]
pub fn device() -> Device {
    let name = std::env::var("GADMS_TEST_DEVICE").unwrap_or_default();
    if name.is_empty() || name == "cpu" {
        return Device::Cpu;
    }
    let device = gadms::train::trainer::device(&name).unwrap_or_else(|e| panic!("GADMS_TEST_DEVICE: {e}"));
    assert!(
        device.is_cuda() && tch::Cuda::is_available(),
        "GADMS_TEST_DEVICE={name}, but libtorch sees no CUDA device"
    );
    tch::Cuda::set_user_enabled_cudnn(false);
    device
}

/// Every tensor of one golden file, on `device`.
#[allow(
    dead_code,
    reason = "the CPU step benchmark shares this module and runs on the CPU"
)]
pub fn tensors_on(g: &Golden, file: &str, device: Device) -> HashMap<String, Tensor> {
    g.tensors(file)
        .into_iter()
        .map(|(name, t)| (name, t.to_device(device)))
        .collect()
}
