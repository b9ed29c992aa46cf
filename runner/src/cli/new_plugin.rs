//! `gadms-run new-plugin`: a new plugin crate from the template.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct NewPluginArgs {
    /// Only `masking` has a template.
    kind: String,
    /// Name of the component (and of the crate, prefixed `gadms-`).
    name: String,
    /// Workspace folder to create it in.
    #[arg(long, default_value = "plugins")]
    dir: PathBuf,
}

/// Creates the crate and says how to build and use it.
pub fn handle(args: NewPluginArgs) -> Result<ExitCode> {
    let NewPluginArgs { kind, name, dir } = args;
    if kind != "masking" {
        bail!("no template for `{kind}` plugins yet; available: masking");
    }
    let crate_dir = gadms::template::new_masking_plugin(&dir, &name)?;
    println!(
        "created {}\nbuild it with `cargo build --release -p gadms-{name}`, then name it in a spec: \
         masking = {{ plugin = \"{name}\" }}",
        crate_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
