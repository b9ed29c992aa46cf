//! `torch.save` checkpoints in PyTorch's zip format (PyTorch ≥ 1.6): `<name>/data.pkl` holds
//! the pickled object, `<name>/data/<key>` the raw bytes of each storage. IRRA and GA-DMS
//! save `{"model": state_dict, "optimizer": …, …}`; a bare state dict (or one under
//! `state_dict`) is accepted too. Only the chosen state dict's storages are read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tch::Tensor;

use super::pickle::{self, TensorRef, Value};
use super::zip::Archive;
use super::ImportError;

/// A parsed checkpoint whose tensors have not been read yet.
pub struct Checkpoint {
    file: PathBuf,
    archive: Archive,
    /// `<name>/`, the folder of every entry.
    prefix: String,
    entries: Vec<(String, Rc<TensorRef>)>,
}

/// Parses the pickle of `archive` and finds its state dict; reads no tensor data.
pub fn open(file: &Path, mut archive: Archive) -> Result<Checkpoint, ImportError> {
    let prefix = archive
        .names()
        .find_map(|n| n.strip_suffix("/data.pkl"))
        .map(|folder| format!("{folder}/"))
        .ok_or_else(|| ImportError::Malformed {
            file: file.to_path_buf(),
            message: "zip archive without `data.pkl`, so not a torch.save archive".into(),
        })?;
    if archive.names().any(|n| n == format!("{prefix}byteorder")) {
        let order = archive.read(&format!("{prefix}byteorder"))?;
        if order != b"little" {
            return Err(ImportError::Malformed {
                file: file.to_path_buf(),
                message: format!(
                    "tensors stored {} endian; re-save the file on a little-endian machine",
                    String::from_utf8_lossy(&order)
                ),
            });
        }
    }
    let data = archive.read(&format!("{prefix}data.pkl"))?;
    let root = pickle::load(&data).map_err(|source| ImportError::Pickle {
        file: file.to_path_buf(),
        source,
    })?;
    Ok(Checkpoint {
        entries: state_dict(file, &root)?,
        file: file.to_path_buf(),
        archive,
        prefix,
    })
}

/// The `(name, tensor)` entries of the state dict in `root`: its `model` (or `state_dict`)
/// entry when it has one, else `root` itself.
fn state_dict(file: &Path, root: &Value) -> Result<Vec<(String, Rc<TensorRef>)>, ImportError> {
    let not_state_dict = |message: String| ImportError::NotStateDict {
        file: file.to_path_buf(),
        message,
    };
    let Value::Dict(top) = root else {
        return Err(not_state_dict(format!(
            "the file holds a Python {}",
            root.type_name()
        )));
    };
    let entry = |name: &str| {
        top.borrow()
            .iter()
            .rev()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == name))
            .map(|(_, v)| v.clone())
    };
    let chosen = ["model", "state_dict"]
        .into_iter()
        .find_map(|name| entry(name).map(|v| (v, name)));
    let (dict, path) = match &chosen {
        Some((Value::Dict(d), name)) => (d.clone(), format!("`{name}` → ")),
        Some((other, name)) => {
            return Err(not_state_dict(format!(
                "`{name}` holds a Python {}",
                other.type_name()
            )))
        }
        None => (top.clone(), String::new()),
    };
    let entries = dict.borrow();
    entries
        .iter()
        .map(|(k, v)| match (k, v) {
            (Value::Str(name), Value::Tensor(t)) => Ok((name.clone(), t.clone())),
            (Value::Str(name), other) => Err(not_state_dict(format!(
                "{path}`{name}` holds a Python {}, not a tensor",
                other.type_name()
            ))),
            (other, _) => Err(not_state_dict(format!(
                "{path}a key is a Python {}, not a name",
                other.type_name()
            ))),
        })
        .collect()
}

impl Checkpoint {
    /// Reads the tensors of the state dict (in the dtypes they were saved in).
    pub fn tensors(mut self) -> Result<HashMap<String, Tensor>, ImportError> {
        let mut storages: HashMap<String, Tensor> = HashMap::new();
        let mut out = HashMap::new();
        for (name, t) in std::mem::take(&mut self.entries) {
            let key = &t.storage.key;
            if !storages.contains_key(key) {
                let storage = self.storage(&name, &t)?;
                storages.insert(key.clone(), storage);
            }
            let tensor = self.view(&name, &storages[key], &t)?;
            out.insert(name, tensor);
        }
        Ok(out)
    }

    fn invalid(&self, name: &str, message: String) -> ImportError {
        ImportError::Storage {
            file: self.file.clone(),
            name: name.to_string(),
            message,
        }
    }

    /// The whole storage of `t` as a 1-D tensor.
    fn storage(&mut self, name: &str, t: &TensorRef) -> Result<Tensor, ImportError> {
        let s = &t.storage;
        let bytes = self.archive.read(&format!("{}data/{}", self.prefix, s.key))?;
        let expected = s.numel.max(0) as usize * s.kind.elt_size_in_bytes();
        if bytes.len() != expected {
            return Err(self.invalid(
                name,
                format!(
                    "storage `{}` has {} bytes, its {} {:?} elements need {expected}",
                    s.key,
                    bytes.len(),
                    s.numel,
                    s.kind
                ),
            ));
        }
        Tensor::f_from_data_size(&bytes, &[s.numel], s.kind).map_err(|source| ImportError::Tensor {
            file: self.file.clone(),
            name: name.to_string(),
            source,
        })
    }

    /// The view `t` describes, checked to lie inside its storage; copied only when it is
    /// not contiguous.
    fn view(&self, name: &str, storage: &Tensor, t: &TensorRef) -> Result<Tensor, ImportError> {
        if t.size.len() != t.stride.len() || t.size.iter().chain(&t.stride).any(|&v| v < 0) || t.offset < 0 {
            return Err(self.invalid(
                name,
                format!(
                    "invalid view: size {:?}, stride {:?}, offset {}",
                    t.size, t.stride, t.offset
                ),
            ));
        }
        let last = t.size.iter().zip(&t.stride).try_fold(t.offset, |acc, (&n, &s)| {
            acc.checked_add((n - 1).max(0).checked_mul(s)?)
        });
        let empty = t.size.contains(&0);
        if !empty && last.is_none_or(|l| l >= t.storage.numel) {
            return Err(self.invalid(
                name,
                format!(
                    "size {:?}, stride {:?} at offset {} reach past its storage of {} elements",
                    t.size, t.stride, t.offset, t.storage.numel
                ),
            ));
        }
        let tensor_error = |source| ImportError::Tensor {
            file: self.file.clone(),
            name: name.to_string(),
            source,
        };
        if empty {
            return Tensor::f_zeros(&t.size, (t.storage.kind, tch::Device::Cpu)).map_err(tensor_error);
        }
        let view = storage
            .f_as_strided(&t.size, &t.stride, t.offset)
            .map_err(tensor_error)?;
        Ok(if view.is_contiguous() {
            view
        } else {
            view.contiguous()
        })
    }
}
