//! The CLIP encoders of GA-DMS (the IRRA variant of CLIP): a ViT image encoder whose
//! output keeps every token, and a causal text transformer pooled at the EOS position.
//! Parameters live under `base_model.` with the reference state-dict names, so the golden
//! weights, OpenAI CLIP weights and GA-DMS checkpoints load by name.

mod config;
pub mod flops;
pub mod import;
mod text;
mod vision;
pub mod weights;

pub use config::ModelConfig;
pub use text::TextTransformer;
pub use vision::{resize_position_embedding, VisionTransformer};

use tch::nn;

/// Image and text encoders.
#[derive(Debug)]
pub struct Clip {
    pub visual: VisionTransformer,
    pub text: TextTransformer,
    pub config: ModelConfig,
}

impl Clip {
    /// Builds the encoders under `root / "base_model"` with CLIP's initialisation.
    pub fn new(root: &nn::Path, config: &ModelConfig) -> Self {
        let base = root / "base_model";
        Self {
            visual: VisionTransformer::new(&(&base / "visual"), config),
            text: TextTransformer::new(&base, config),
            config: config.clone(),
        }
    }
}
