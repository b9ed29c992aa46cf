//! `gadms-run report`: rebuilds experiments' reports from the runs stored in their folders,
//! and with `--out` one report over all of them side by side.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use gadms::report::store::StoredExperiment;
use gadms::spec::Spec;

#[derive(Args)]
pub struct ReportArgs {
    /// The experiments' folders (`reports/<experiment>`), or their specs (whose variant
    /// labels and `[report.columns]` then apply as they are now).
    #[arg(required = true)]
    targets: Vec<PathBuf>,
    /// Also write one report over all the targets into this folder: the wide results table
    /// (datasets as column groups), statistics and tests against the baseline, ablation.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The variant (label or name) the comparison's differences and tests are against;
    /// default: the first experiment's `baseline`.
    #[arg(long, requires = "out")]
    baseline: Option<String>,
    /// With specs: the overrides they were run with (they can change the output folder).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn handle(args: ReportArgs) -> Result<ExitCode> {
    if args.targets.len() > 1 && args.out.is_none() {
        bail!(
            "{} experiments given: name the folder of the report over all of them with --out DIR",
            args.targets.len()
        );
    }
    let mut experiments = Vec::new();
    for target in &args.targets {
        let experiment = read(target, &args.overrides)?;
        let report = gadms::report::write_experiment(&experiment)?;
        print(&report);
        experiments.push(experiment);
    }
    if let Some(out) = &args.out {
        print(&gadms::report::write_comparison(
            &experiments,
            args.baseline.as_deref(),
            out,
        )?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The stored experiment of a folder, or of a spec with the spec's current presentation.
fn read(target: &std::path::Path, overrides: &[String]) -> Result<StoredExperiment> {
    if !target.is_file() {
        return Ok(StoredExperiment::read(target)?);
    }
    let spec = Spec::load(target, overrides)?;
    let mut experiment = StoredExperiment::read(&spec.output_dir())?;
    experiment.presentation = spec.presentation;
    Ok(experiment)
}

fn print(report: &gadms::report::Report) {
    println!(
        "report: {} ({} files; {} run(s) without a finished result)",
        report.dir.join("README.md").display(),
        report.files.len(),
        report.incomplete
    );
}
