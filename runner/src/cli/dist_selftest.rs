//! `gadms-run dist-selftest` (hidden): started as every rank of a group, checks each
//! collective among them before a long run.

use std::process::ExitCode;

use anyhow::Result;
use gadms::dist::ProcessGroup;

/// Prints a line per collective that every rank got right; any that fails is the error.
pub fn handle() -> Result<ExitCode> {
    let group = ProcessGroup::from_env()?;
    for check in gadms::dist::selftest::run(&group)? {
        println!("rank {} of {}: {check} ok", group.rank(), group.world());
    }
    Ok(ExitCode::SUCCESS)
}
