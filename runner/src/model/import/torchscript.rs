//! TorchScript archives, the format of OpenAI's CLIP releases (`ViT-B-16.pt`): read by
//! libtorch's own loader, onto the CPU whatever device they were saved from. Only the
//! module's parameters are taken; its code is compiled by the loader but never run.

use std::collections::HashMap;
use std::path::Path;

use tch::{CModule, Device, Tensor};

use super::ImportError;

/// The named parameters of the archive's module (`visual.conv1.weight`, …).
pub fn read(file: &Path) -> Result<HashMap<String, Tensor>, ImportError> {
    let error = |source| ImportError::TorchScript {
        file: file.to_path_buf(),
        source,
    };
    let module = CModule::load_on_device(file, Device::Cpu).map_err(error)?;
    let parameters = module.named_parameters().map_err(error)?;
    Ok(parameters
        .into_iter()
        .map(|(name, t)| (name, t.detach()))
        .collect())
}
