//! `gadms-run doctor`: the torch build, devices, threads and plugin search path.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::load_plugins;

pub fn handle(plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    print!("{}", gadms::doctor::report(&load_plugins(plugin_dirs, None)));
    Ok(ExitCode::SUCCESS)
}
