//! Shared by the parity tests: the golden model's config as a [`ModelConfig`].

use gadms::model::ModelConfig;
use gadms_golden::Golden;
use serde_json::Value;

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
