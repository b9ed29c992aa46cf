use serde::{Deserialize, Serialize};

/// Shapes of the encoders. Serialisable so that a spec can name a preset and override any
/// field; the presets are the paper's ViT-B/16 and small configurations for CPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Joint embedding width E.
    pub embed_dim: i64,
    /// Input image `[height, width]`.
    pub image_size: [i64; 2],
    pub patch_size: i64,
    /// Patch stride (IRRA allows overlapping patches; 16 in the paper).
    pub stride: i64,
    pub vision_width: i64,
    pub vision_layers: i64,
    pub vision_heads: i64,
    pub context_length: i64,
    pub vocab_size: i64,
    pub text_width: i64,
    pub text_layers: i64,
    pub text_heads: i64,
    /// Fixed softmax temperature τ; the logit scale is 1/τ.
    pub temperature: f64,
}

impl ModelConfig {
    /// CLIP ViT-B/16 at 384×128, as in the paper.
    pub fn vit_b16() -> Self {
        Self {
            embed_dim: 512,
            image_size: [384, 128],
            patch_size: 16,
            stride: 16,
            vision_width: 768,
            vision_layers: 12,
            vision_heads: 12,
            context_length: 77,
            vocab_size: 49408,
            text_width: 512,
            text_layers: 12,
            text_heads: 8,
            temperature: 0.02,
        }
    }

    /// A model that trains on a 2-core CPU in minutes: 96×32 images, 4 vision and 4 text
    /// blocks of width 128, 32 text positions (short generated captions; the text encoder's
    /// cost grows with the positions), with the real CLIP vocabulary so captions tokenise as
    /// they would for ViT-B/16. The gradient-attention scorer re-runs at most the 4 blocks.
    pub fn tiny() -> Self {
        Self {
            embed_dim: 128,
            image_size: [96, 32],
            patch_size: 16,
            stride: 16,
            vision_width: 128,
            vision_layers: 4,
            vision_heads: 2,
            context_length: 32,
            vocab_size: 49408,
            text_width: 128,
            text_layers: 4,
            text_heads: 2,
            temperature: 0.02,
        }
    }

    /// A preset by name: `ViT-B/16` or `tiny`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "ViT-B/16" | "vit-b16" => Some(Self::vit_b16()),
            "tiny" => Some(Self::tiny()),
            _ => None,
        }
    }

    pub const PRESETS: &'static [&'static str] = &["ViT-B/16", "tiny"];

    /// Patch grid `(rows, cols)` for the configured image size and stride.
    pub fn grid(&self) -> (i64, i64) {
        let [h, w] = self.image_size;
        (
            (h - self.patch_size) / self.stride + 1,
            (w - self.patch_size) / self.stride + 1,
        )
    }

    pub fn logit_scale(&self) -> f64 {
        1.0 / self.temperature
    }
}
