//! Pretrained weights and checkpoints in the formats they are downloaded in, read onto the
//! reference (IRRA/GA-DMS) parameter names:
//!
//! | container | recognised by | typical file |
//! |---|---|---|
//! | safetensors | a JSON header after an 8-byte length | gadms checkpoints; Hugging Face `openai/clip-vit-base-patch16` |
//! | `torch.save` zip | zip magic, a `data.pkl` entry | IRRA / GA-DMS `best.pth` |
//! | TorchScript zip | zip magic, `constants.pkl` or `code/` entries | OpenAI's `ViT-B-16.pt` |
//!
//! The format comes from the file's content, never from its extension: `.pt` and `.pth`
//! name both kinds of zip. Whatever the container, the names are then mapped by
//! [`layout`] (reference, OpenAI or Hugging Face names), and [`read_weights`] fits the
//! position embeddings to the model.

mod fit;
mod hf;
mod layout;
mod pickle;
mod safetensors;
mod torch_save;
mod torchscript;
mod zip;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use tch::Tensor;

pub use layout::Layout;
pub use pickle::PickleError;

use super::weights::{read_safetensors, WeightsError};
use super::ModelConfig;
use zip::Archive;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the file is truncated ({what}); copy or download it again", file.display())]
    Truncated { file: PathBuf, what: String },
    #[error(
        "{}: not a weights file gadms reads (it starts with \"{start}\"); expected safetensors, a \
         torch.save archive or a TorchScript archive such as OpenAI's ViT-B-16.pt",
        file.display()
    )]
    Unrecognised { file: PathBuf, start: String },
    #[error(
        "{}: a pickle in PyTorch's legacy torch.save format (before 1.6), which gadms does not read; \
         re-save it in the zip format with a current PyTorch: \
         torch.save(torch.load(\"{}\", weights_only=True), \"new.pth\")",
        file.display(),
        file.display()
    )]
    LegacyTorchSave { file: PathBuf },
    #[error("{}: malformed {message}", file.display())]
    Malformed { file: PathBuf, message: String },
    #[error(
        "{}: {source}. If you trust the file, load it in Python and save the state dict alone: \
         torch.save(model.state_dict(), path) or safetensors.torch.save_file(model.state_dict(), path)",
        file.display()
    )]
    Pickle {
        file: PathBuf,
        #[source]
        source: PickleError,
    },
    #[error(
        "{}: {message}; expected a state dict (names → tensors) or a dict whose `model` entry is one",
        file.display()
    )]
    NotStateDict { file: PathBuf, message: String },
    #[error("{}: tensor `{name}`: {message}", file.display())]
    Storage {
        file: PathBuf,
        name: String,
        message: String,
    },
    #[error("{}: tensor `{name}`: {source}", file.display())]
    Tensor {
        file: PathBuf,
        name: String,
        #[source]
        source: tch::TchError,
    },
    #[error("{}: cannot load the TorchScript archive: {source}", file.display())]
    TorchScript {
        file: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error(
        "{}: `{name}` has {positions} patch positions, neither the model's {rows}×{cols} grid nor a \
         square grid to resize from; set `model.image_size` and `model.stride` to those the weights \
         were trained at",
        file.display()
    )]
    Grid {
        file: PathBuf,
        name: &'static str,
        positions: i64,
        rows: i64,
        cols: i64,
    },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("cannot write {}: {source}", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: tch::TchError,
    },
}

impl ImportError {
    fn io(file: &Path, source: std::io::Error) -> Self {
        Self::Io {
            file: file.to_path_buf(),
            source,
        }
    }
}

/// The container of a weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Safetensors,
    TorchSave,
    TorchScript,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Safetensors => "safetensors",
            Format::TorchSave => "torch.save archive",
            Format::TorchScript => "TorchScript archive",
        })
    }
}

/// Tensors under the reference names, with where they came from.
pub struct Weights {
    pub format: Format,
    pub layout: Layout,
    pub tensors: HashMap<String, Tensor>,
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tensors ({}, {})",
            self.tensors.len(),
            self.format,
            self.layout
        )
    }
}

/// A recognised file, opened as far as recognising it needed.
enum Opened {
    Safetensors,
    TorchSave(Archive),
    TorchScript,
}

fn open(file: &Path) -> Result<Opened, ImportError> {
    let mut start = Vec::new();
    File::open(file)
        .and_then(|f| f.take(16).read_to_end(&mut start))
        .map_err(|source| ImportError::io(file, source))?;
    if start.starts_with(zip::MAGIC) {
        let archive = Archive::open(file)?;
        let script = archive
            .names()
            .any(|n| n.ends_with("/constants.pkl") || n.contains("/code/"));
        return Ok(if script {
            Opened::TorchScript
        } else {
            Opened::TorchSave(archive)
        });
    }
    if safetensors::looks_like(&start) {
        return Ok(Opened::Safetensors);
    }
    if start.first() == Some(&0x80) {
        return Err(ImportError::LegacyTorchSave {
            file: file.to_path_buf(),
        });
    }
    Err(ImportError::Unrecognised {
        file: file.to_path_buf(),
        start: start.escape_ascii().to_string(),
    })
}

/// Recognises `file` and checks its structure without reading the tensors: the safetensors
/// header against the file's length, a torch.save pickle in full (so a refused pickle is
/// reported before anything trains). A TorchScript archive is only recognised.
pub fn inspect(file: &Path) -> Result<Format, ImportError> {
    Ok(match open(file)? {
        Opened::Safetensors => {
            safetensors::check(file)?;
            Format::Safetensors
        }
        Opened::TorchSave(archive) => {
            torch_save::open(file, archive)?;
            Format::TorchSave
        }
        Opened::TorchScript => Format::TorchScript,
    })
}

/// Every tensor of `file` under the reference names, in the file's dtypes and shapes.
pub fn read_reference(file: &Path) -> Result<Weights, ImportError> {
    let (format, tensors) = match open(file)? {
        Opened::Safetensors => {
            safetensors::check(file)?;
            (Format::Safetensors, read_safetensors(file)?)
        }
        Opened::TorchSave(archive) => (Format::TorchSave, torch_save::open(file, archive)?.tensors()?),
        Opened::TorchScript => (Format::TorchScript, torchscript::read(file)?),
    };
    let (layout, tensors) = layout::to_reference(tensors);
    Ok(Weights {
        format,
        layout,
        tensors,
    })
}

/// The weights of `file` ready for [`load_named`](super::weights::load_named) into a model
/// of `config`: reference names, position embeddings fitted to the model's image grid and
/// context. Dtypes are the file's; loading converts them to the model's.
pub fn read_weights(file: &Path, config: &ModelConfig) -> Result<Weights, ImportError> {
    let mut weights = read_reference(file)?;
    fit::position_embeddings(file, &mut weights.tensors, config)?;
    Ok(weights)
}

/// Writes the weights of `from` (any format) to `to` as safetensors under the reference
/// names — what the reference model's `load_state_dict` takes — in the file's dtypes.
pub fn export(from: &Path, to: &Path) -> Result<Weights, ImportError> {
    let weights = read_reference(from)?;
    let mut named: Vec<(&str, &Tensor)> = weights.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    named.sort_by_key(|(k, _)| *k);
    Tensor::write_safetensors(&named, to).map_err(|source| ImportError::Write {
        file: to.to_path_buf(),
        source,
    })?;
    Ok(weights)
}
