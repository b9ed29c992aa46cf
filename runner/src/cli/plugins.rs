//! `gadms-run plugins`: the plugins found in the search path, and the libraries that did not
//! load.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::{load_plugins, report_problems};

/// Fails when a library in the search path did not load, so that a broken plugin build is
/// noticed.
pub fn handle(plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    let plugins = load_plugins(plugin_dirs, None);
    println!(
        "{:<8} {:<20} {:<10} {:<26} file",
        "kind", "name", "version", "package"
    );
    for c in plugins.components() {
        println!(
            "{:<8} {:<20} {:<10} {:<26} {}",
            c.kind,
            c.name,
            c.version,
            c.package,
            c.file.display()
        );
    }
    println!("searched: {}", join_paths(&plugins.search_path));
    report_problems(&plugins);
    Ok(if plugins.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
