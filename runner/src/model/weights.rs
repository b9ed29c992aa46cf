//! Loading parameters by name from safetensors files, with errors that name the
//! parameter and both shapes instead of libtorch's bare size complaints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read weights from {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("{}: {} parameter(s) of the model are missing: {}", file.display(), names.len(), preview(names))]
    Missing { file: PathBuf, names: Vec<String> },
    #[error("{}: {} tensor(s) match no parameter of the model: {}", file.display(), names.len(), preview(names))]
    Unexpected { file: PathBuf, names: Vec<String> },
    #[error("{}: parameter `{name}` has shape {found:?} in the file, the model expects {expected:?}", file.display())]
    Shape {
        file: PathBuf,
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
}

fn preview(names: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", names.len() - SHOWN));
    }
    s
}

/// Which mismatches between a file and the model are tolerated.
#[derive(Debug, Clone, Copy, Default)]
pub struct Strictness {
    /// Parameters of the model absent from the file keep their initial values (e.g. a
    /// fresh ID classifier when fine-tuning).
    pub allow_missing: bool,
    /// Tensors of the file that are not parameters of the model are ignored (e.g. loss
    /// heads of a checkpoint when only the encoders are built).
    pub allow_unexpected: bool,
}

/// Reads every tensor of a safetensors file.
pub fn read_safetensors(file: &Path) -> Result<HashMap<String, Tensor>, WeightsError> {
    Tensor::read_safetensors(file)
        .map(|v| v.into_iter().collect())
        .map_err(|source| WeightsError::Read {
            file: file.to_path_buf(),
            source,
        })
}

/// Copies `tensors` into the variables of `vs` with the same names. Returns the names
/// that were loaded.
pub fn load_named(
    vs: &VarStore,
    tensors: &HashMap<String, Tensor>,
    file: &Path,
    strictness: Strictness,
) -> Result<Vec<String>, WeightsError> {
    let mut vars = vs.variables();
    let mut missing: Vec<String> = vars
        .keys()
        .filter(|k| !tensors.contains_key(*k))
        .cloned()
        .collect();
    let mut unexpected: Vec<String> = tensors
        .keys()
        .filter(|k| !vars.contains_key(*k))
        .cloned()
        .collect();
    missing.sort();
    unexpected.sort();
    if !missing.is_empty() && !strictness.allow_missing {
        return Err(WeightsError::Missing {
            file: file.to_path_buf(),
            names: missing,
        });
    }
    if !unexpected.is_empty() && !strictness.allow_unexpected {
        return Err(WeightsError::Unexpected {
            file: file.to_path_buf(),
            names: unexpected,
        });
    }
    let mut loaded = Vec::new();
    tch::no_grad(|| {
        for (name, var) in vars.iter_mut() {
            let Some(src) = tensors.get(name) else { continue };
            if src.size() != var.size() {
                return Err(WeightsError::Shape {
                    file: file.to_path_buf(),
                    name: name.clone(),
                    expected: var.size(),
                    found: src.size(),
                });
            }
            var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
            loaded.push(name.clone());
        }
        Ok(())
    })?;
    loaded.sort();
    Ok(loaded)
}
