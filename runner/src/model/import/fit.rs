//! Fitting pretrained position embeddings to the configured model. The ViT's grid is
//! resized when the weights come from another image size or stride (OpenAI's ViT-B/16 has
//! 14×14 patches at 224×224; GA-DMS runs 24×8 at 384×128). A text position embedding
//! longer than the model's context keeps its first rows: exact for CLIP's causal text
//! encoder, where no position attends to a later one.

use std::collections::HashMap;
use std::path::Path;

use tch::Tensor;

use super::ImportError;
use crate::model::{resize_position_embedding, ModelConfig};

const VISION_POSITIONS: &str = "base_model.visual.positional_embedding";
const TEXT_POSITIONS: &str = "base_model.positional_embedding";

/// Resizes or shortens the position embeddings of `tensors` (reference names) to `config`.
/// Embeddings of another width are left for loading to report as shape mismatches.
pub fn position_embeddings(
    file: &Path,
    tensors: &mut HashMap<String, Tensor>,
    config: &ModelConfig,
) -> Result<(), ImportError> {
    if let Some(pe) = tensors.get(VISION_POSITIONS).filter(|pe| pe.dim() == 2) {
        let (rows, cols) = config.grid();
        let positions = pe.size()[0] - 1; // row 0 is the CLS token's
        if positions != rows * cols {
            let side = (positions.max(0) as f64).sqrt().round() as i64;
            if side * side != positions || side == 0 {
                return Err(ImportError::Grid {
                    file: file.to_path_buf(),
                    name: VISION_POSITIONS,
                    positions,
                    rows,
                    cols,
                });
            }
            let resized = resize_position_embedding(pe, (side, side), (rows, cols));
            tensors.insert(VISION_POSITIONS.to_string(), resized);
        }
    }
    if let Some(pe) = tensors.get(TEXT_POSITIONS).filter(|pe| pe.dim() == 2) {
        if pe.size()[0] > config.context_length {
            let shortened = pe.narrow(0, 0, config.context_length).contiguous();
            tensors.insert(TEXT_POSITIONS.to_string(), shortened);
        }
    }
    Ok(())
}
