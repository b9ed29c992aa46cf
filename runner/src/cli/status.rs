//! `gadms-run status SPEC`: where every run of a spec stands, from the run store and, for
//! runs handed to SLURM, its queue.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use gadms::slurm::queue::Queue;
use gadms::spec::Spec;

use super::load_plugins;

#[derive(Args)]
pub struct StatusArgs {
    /// The experiment spec (TOML).
    spec: PathBuf,
    /// The overrides the runs were started with (`--set KEY=VALUE`, repeatable): they are
    /// part of the runs' identity.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn handle(args: StatusArgs, plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    let mut spec = Spec::load(&args.spec, &args.overrides)?;
    // The plugins' code is part of each run's identity, which the store is keyed by.
    let plugins = load_plugins(plugin_dirs, Some(&spec));
    spec.bind(&plugins)?;
    // Without SLURM (or with no job ever submitted) the store alone tells.
    let queue = Queue::read().ok();
    let statuses = gadms::status::of_spec(&spec, queue.as_ref())?;
    println!(
        "experiment `{}` → {}",
        spec.experiment.name,
        spec.output_dir().display()
    );
    print!("{}", gadms::status::Table(&statuses));
    Ok(ExitCode::SUCCESS)
}
