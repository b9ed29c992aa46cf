//! `gadms-run validate`: loads a spec and checks every variant as `run` would before training,
//! without training.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use gadms::spec::Spec;

use super::{check_variants, load_plugins};

#[derive(Args)]
pub struct ValidateArgs {
    spec: PathBuf,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn handle(args: ValidateArgs, plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    let mut spec = Spec::load(&args.spec, &args.overrides)?;
    let plugins = load_plugins(plugin_dirs, Some(&spec));
    spec.bind(&plugins)?;
    let variants = check_variants(&spec, &plugins, &[])?;
    println!(
        "{}: ok — experiment `{}`, {} variant(s) × {} seed(s) = {} runs",
        spec.file.display(),
        spec.experiment.name,
        variants,
        spec.experiment.seeds.len(),
        spec.runs.len()
    );
    Ok(ExitCode::SUCCESS)
}
