use std::path::PathBuf;

use gadms_plugin::abi::FieldMismatch;
use gadms_plugin::ComponentKind;

const REBUILD: &str = "rebuild the plugin in this workspace with the runner's profile \
(`make build`, or `cargo build --release -p <plugin>` with the workspace's toolchain)";

/// Why a file in a plugin folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: not a loadable library ({reason}); remove it from the plugin folder", file.display())]
    NotALibrary { file: PathBuf, reason: String },

    #[error("{}: not a gadms plugin: symbol `{symbol}` is missing; plugins declare themselves with `gadms_plugin::declare_plugin!`", file.display())]
    MissingSymbol { file: PathBuf, symbol: &'static str },

    #[error("{}: plugin ABI version {plugin}, runner expects {host}; {REBUILD}", file.display())]
    AbiMismatch { file: PathBuf, host: u32, plugin: u32 },

    #[error("{}: built differently from the runner ({}); {REBUILD}", file.display(), describe(mismatches))]
    Fingerprint {
        file: PathBuf,
        mismatches: Vec<FieldMismatch>,
    },

    #[error("{}: registration failed: {source}", file.display())]
    Register {
        file: PathBuf,
        #[source]
        source: gadms_plugin::PluginError,
    },

    #[error("{kind} plugin `{name}` is registered twice: by {} (used: found first on the search path) and by {}; remove one of the files or rename the component", first.display(), second.display())]
    Duplicate {
        kind: ComponentKind,
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

fn describe(mismatches: &[FieldMismatch]) -> String {
    mismatches
        .iter()
        .map(|m| format!("{}: runner `{}`, plugin `{}`", m.field, m.host, m.plugin))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A spec or command named a component that no loaded plugin provides.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} plugin `{name}`; available: {}. Searched: {}{}",
    if available.is_empty() { "none".to_string() } else { available.join(", ") },
    search_path.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    if problems.is_empty() { String::new() } else { format!(". Files that failed to load: {}", problems.join("; ")) })]
pub struct LookupError {
    pub kind: ComponentKind,
    pub name: String,
    pub available: Vec<String>,
    pub search_path: Vec<PathBuf>,
    pub problems: Vec<String>,
}
