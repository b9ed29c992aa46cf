//! Plugin host: finds plugin libraries, checks that they were built compatibly, and keeps
//! the components they register.
//!
//! Loading is staged (see `gadms_plugin::abi`): the C-ABI version, then the build
//! fingerprint field by field, and only then the Rust-ABI registration. A library that fails
//! a stage becomes a [`LoadError`] in [`PluginSet::problems`]; it never aborts the process.
//! Libraries are never unloaded: components and the vtables behind them live in them.

mod discover;
mod error;

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};
use std::path::{Path, PathBuf};

use gadms_plugin::abi::{self, RegisterFn};
use gadms_plugin::{Component, ComponentKind, DatasetFactory, LossFactory, MaskingFactory, Registry};
use serde::Serialize;

pub use discover::{default_search_path, plugin_files};
pub use error::{LoadError, LookupError};

/// A component together with where it came from.
pub struct Loaded {
    pub kind: ComponentKind,
    pub name: String,
    pub description: String,
    pub package: String,
    pub version: String,
    pub file: PathBuf,
    /// SHA-256 of the library file as it was loaded (hex).
    pub sha256: String,
    component: Component,
}

/// The code of one component a run uses: the library that provides it and that library's
/// SHA-256. It is part of the run's identity, so that a rebuilt plugin makes a new run
/// instead of reusing results of the old code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PluginCode {
    pub kind: &'static str,
    pub name: String,
    pub sha256: String,
    pub file: PathBuf,
}

/// Every plugin found on a search path.
#[derive(Default)]
pub struct PluginSet {
    pub search_path: Vec<PathBuf>,
    components: BTreeMap<(ComponentKind, String), Loaded>,
    pub problems: Vec<LoadError>,
}

impl PluginSet {
    /// Loads every plugin library in `dirs` (walked recursively, see [`plugin_files`]).
    pub fn discover(dirs: &[PathBuf]) -> Self {
        let mut set = Self {
            search_path: dirs.to_vec(),
            ..Self::default()
        };
        for file in plugin_files(dirs) {
            // Hashed once per library, however many components it registers.
            match file_sha256(&file).and_then(|sha256| load_library(&file).map(|entries| (sha256, entries))) {
                Ok((sha256, entries)) => {
                    for entry in entries {
                        set.insert(entry, &file, &sha256);
                    }
                }
                Err(e) => set.problems.push(e),
            }
        }
        set
    }

    fn insert(&mut self, reg: gadms_plugin::Registration, file: &Path, sha256: &str) {
        let kind = reg.component.kind();
        let key = (kind, reg.name.clone());
        if let Some(first) = self.components.get(&key) {
            self.problems.push(LoadError::Duplicate {
                kind,
                name: reg.name,
                first: first.file.clone(),
                second: file.to_path_buf(),
            });
            // The component is dropped here, while its library stays loaded.
            return;
        }
        self.components.insert(
            key,
            Loaded {
                kind,
                name: reg.name,
                description: reg.description,
                package: reg.package,
                version: reg.version,
                file: file.to_path_buf(),
                sha256: sha256.to_string(),
                component: reg.component,
            },
        );
    }

    /// All components, sorted by kind and name.
    pub fn components(&self) -> impl Iterator<Item = &Loaded> {
        self.components.values()
    }

    /// Names of the components of one kind.
    pub fn names(&self, kind: ComponentKind) -> Vec<String> {
        self.components
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.clone())
            .collect()
    }

    fn lookup(&self, kind: ComponentKind, name: &str) -> Result<&Loaded, LookupError> {
        self.components
            .get(&(kind, name.to_string()))
            .ok_or_else(|| LookupError {
                kind,
                name: name.to_string(),
                available: self.names(kind),
                search_path: self.search_path.clone(),
                problems: self.problems.iter().map(|p| p.to_string()).collect(),
            })
    }

    /// The code of component `name` of `kind`; `None` when no library provides it (using
    /// it then fails with the lookup error).
    pub fn code(&self, kind: ComponentKind, name: &str) -> Option<PluginCode> {
        self.components
            .get(&(kind, name.to_string()))
            .map(|c| PluginCode {
                kind: kind.as_str(),
                name: c.name.clone(),
                sha256: c.sha256.clone(),
                file: c.file.clone(),
            })
    }

    pub fn dataset(&self, name: &str) -> Result<&dyn DatasetFactory, LookupError> {
        match &self.lookup(ComponentKind::Dataset, name)?.component {
            Component::Dataset(f) => Ok(f.as_ref()),
            _ => unreachable!("components are keyed by kind"),
        }
    }

    pub fn masking(&self, name: &str) -> Result<&dyn MaskingFactory, LookupError> {
        match &self.lookup(ComponentKind::Masking, name)?.component {
            Component::Masking(f) => Ok(f.as_ref()),
            _ => unreachable!("components are keyed by kind"),
        }
    }

    pub fn loss(&self, name: &str) -> Result<&dyn LossFactory, LookupError> {
        match &self.lookup(ComponentKind::Loss, name)?.component {
            Component::Loss(f) => Ok(f.as_ref()),
            _ => unreachable!("components are keyed by kind"),
        }
    }
}

/// SHA-256 of a library file's bytes, in hex.
fn file_sha256(file: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(file).map_err(|source| LoadError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    Ok(crate::digest::sha256_hex(&bytes))
}

/// Opens one library and runs the staged checks, then its registration.
fn load_library(file: &Path) -> Result<Vec<gadms_plugin::Registration>, LoadError> {
    // SAFETY: loading runs the library's initialisers. Plugin folders are trusted code by
    // configuration, as with any plugin system; everything after this is checked.
    let lib = unsafe { libloading::Library::new(file) }.map_err(|e| LoadError::NotALibrary {
        file: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Never unloaded: the registered components' code lives in it.
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));

    // SAFETY: these two names and their C signatures are the same in every ABI version.
    let abi_fn = unsafe { lib.get::<extern "C" fn() -> u32>(abi::ABI_SYMBOL.as_bytes()) }.map_err(|_| {
        LoadError::MissingSymbol {
            file: file.to_path_buf(),
            symbol: abi::ABI_SYMBOL,
        }
    })?;
    let plugin_abi = abi_fn();
    if plugin_abi != abi::ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            file: file.to_path_buf(),
            host: abi::ABI_VERSION,
            plugin: plugin_abi,
        });
    }

    let fp_fn = unsafe { lib.get::<extern "C" fn() -> *const c_char>(abi::FINGERPRINT_SYMBOL.as_bytes()) }
        .map_err(|_| LoadError::MissingSymbol {
            file: file.to_path_buf(),
            symbol: abi::FINGERPRINT_SYMBOL,
        })?;
    let ptr = fp_fn();
    if ptr.is_null() {
        return Err(LoadError::MissingSymbol {
            file: file.to_path_buf(),
            symbol: abi::FINGERPRINT_SYMBOL,
        });
    }
    // SAFETY: a NUL-terminated static string per the contract.
    let plugin_fp = unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned();
    let mismatches = abi::compare_fingerprints(abi::FINGERPRINT, &plugin_fp);
    if !mismatches.is_empty() {
        return Err(LoadError::Fingerprint {
            file: file.to_path_buf(),
            mismatches,
        });
    }

    // SAFETY: the fingerprint matched, so this library was built by the same compiler with
    // the same SDK and tch, and the Rust signature of the symbol is the one we declare.
    let register = unsafe { lib.get::<RegisterFn>(abi::REGISTER_SYMBOL.as_bytes()) }.map_err(|_| {
        LoadError::MissingSymbol {
            file: file.to_path_buf(),
            symbol: abi::REGISTER_SYMBOL,
        }
    })?;
    let mut registry = Registry::new();
    register(&mut registry).map_err(|source| LoadError::Register {
        file: file.to_path_buf(),
        source,
    })?;
    Ok(registry.into_entries())
}
