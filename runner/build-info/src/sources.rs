// The digest of the files the runner's code is made from. The build script includes this
// file to compute it; the library compiles it for its tests only. (Plain comments: a file
// that `include!` pastes cannot carry inner doc comments.)

use std::path::Path;

use sha2::{Digest, Sha256};

/// Everything, relative to the repository root, that makes what the runner computes: its
/// sources, C++ and assets (the tokenizer's tables), its manifest, the plugin SDK it is
/// built with, the locked dependency versions, the workspace manifest (profiles) and
/// cargo's configuration (compiler flags). Plugins are identified by their own library
/// digests; docs, tests and benchmarks make no difference to a result.
pub const SOURCES: &[&str] = &[
    "runner/src",
    "runner/build.rs",
    "runner/csrc",
    "runner/assets",
    "runner/Cargo.toml",
    "plugins/sdk/src",
    "plugins/sdk/build.rs",
    "plugins/sdk/Cargo.toml",
    "Cargo.lock",
    "Cargo.toml",
    ".cargo/config.toml",
];

/// Under [`SOURCES`], the code that only reads finished results to write the reports
/// (tables, charts): it runs after the runs, never inside one, so a fix of a chart keeps
/// every stored result. Nothing else may call it (a test of the runner's sources checks).
pub const REPORT_ONLY: &[&str] = &["runner/src/report", "runner/src/cli/report.rs"];

/// SHA-256, in lowercase hex, over every file under [`SOURCES`] but not under
/// [`REPORT_ONLY`] in `root`, in path order: each file's path, its length and its bytes. A
/// path that does not exist counts as empty.
pub fn sources_digest(root: &Path) -> std::io::Result<String> {
    let report_only = |path: &Path| {
        path.strip_prefix(root)
            .is_ok_and(|relative| REPORT_ONLY.iter().any(|r| relative == Path::new(r)))
    };
    let mut hasher = Sha256::new();
    for source in SOURCES {
        let walk = walkdir::WalkDir::new(root.join(source)).sort_by_file_name();
        for entry in walk.into_iter().filter_entry(|e| !report_only(e.path())) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e)
                    if e.io_error()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let bytes = std::fs::read(entry.path())?;
            let name = entry.path().strip_prefix(root).unwrap_or(entry.path());
            hasher.update(name.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
