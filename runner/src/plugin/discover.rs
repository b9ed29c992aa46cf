use std::path::PathBuf;

use walkdir::WalkDir;

/// Folders of a cargo target directory that hold build intermediates, not plugins
/// (`deps/` has a second copy of every cdylib).
const SKIPPED_DIRS: &[&str] = &["deps", "build", "incremental", ".fingerprint", "examples"];

/// Plugin libraries (`lib*.so`, or the platform's suffix) under `dirs`, recursively: folder
/// by folder in the order given, each folder's files sorted, every file once. The order is
/// the search path's precedence: of two libraries registering one name, the one found first
/// is used (and the other reported). Folders that do not exist are skipped.
pub fn plugin_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let suffix = std::env::consts::DLL_SUFFIX;
    let mut seen = std::collections::HashSet::new();
    let mut files = Vec::new();
    for dir in dirs {
        let mut found: Vec<PathBuf> = WalkDir::new(dir)
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir()
                    && e.depth() > 0
                    && SKIPPED_DIRS.contains(&e.file_name().to_str().unwrap_or("")))
            })
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(suffix)))
            .map(|e| e.into_path())
            .collect();
        found.sort();
        files.extend(found.into_iter().filter(|f| seen.insert(f.clone())));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_come_folder_by_folder_in_search_order_each_once() {
        let root = std::env::temp_dir().join(format!("gadms-discover-{}", std::process::id()));
        let lib = |dir: &str, name: &str| {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).unwrap();
            let f = d.join(format!("lib{name}{}", std::env::consts::DLL_SUFFIX));
            std::fs::write(&f, b"").unwrap();
            f
        };
        // Searched first, sorted last: the order must come from the search path.
        let (z, b, a) = (lib("zeta", "z"), lib("alpha", "b"), lib("alpha", "a"));
        let dirs = [root.join("zeta"), root.join("alpha"), root.join("zeta")];
        assert_eq!(plugin_files(&dirs), vec![z, a, b]);
        std::fs::remove_dir_all(root).unwrap();
    }
}
