use std::path::PathBuf;

use walkdir::WalkDir;

/// Folders of a cargo target directory that hold build intermediates, not plugins
/// (`deps/` has a second copy of every cdylib).
const SKIPPED_DIRS: &[&str] = &["deps", "build", "incremental", ".fingerprint", "examples"];

/// Plugin libraries (`lib*.so`, or the platform's suffix) under `dirs`, recursively, in a
/// stable order. Folders that do not exist are skipped.
pub fn plugin_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let suffix = std::env::consts::DLL_SUFFIX;
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|dir| {
            WalkDir::new(dir)
                .follow_links(true)
                .into_iter()
                .filter_entry(|e| {
                    !(e.file_type().is_dir()
                        && e.depth() > 0
                        && SKIPPED_DIRS.contains(&e.file_name().to_str().unwrap_or("")))
                })
                .filter_map(Result::ok)
        })
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(suffix)))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Where plugins are looked for when nothing else is configured: `GADMS_PLUGIN_PATH`
/// (colon-separated), then the folder of the running executable — for a cargo build that is
/// `target/<profile>/`, where the workspace's plugins land; test binaries run from
/// `target/<profile>/deps/`, so its parent is used for them.
pub fn default_search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("GADMS_PLUGIN_PATH")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        let dir = if exe_dir.file_name().is_some_and(|n| n == "deps") {
            exe_dir.parent().map(PathBuf::from).unwrap_or(exe_dir)
        } else {
            exe_dir
        };
        dirs.push(dir);
    }
    dirs
}
