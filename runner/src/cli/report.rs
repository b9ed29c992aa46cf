//! `gadms-run report`: rebuilds an experiment's report from the runs stored in its folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use gadms::spec::Spec;

#[derive(Args)]
pub struct ReportArgs {
    /// The experiment's folder (`reports/<experiment>`), or its spec.
    target: PathBuf,
    /// With a spec: the overrides it was run with (they can change the output folder).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn handle(args: ReportArgs) -> Result<ExitCode> {
    let dir = if args.target.is_file() {
        Spec::load(&args.target, &args.overrides)?.output_dir()
    } else {
        args.target
    };
    let report = gadms::report::write(&dir)?;
    println!(
        "report: {} ({} files; {} run(s) without a finished result)",
        report.dir.join("README.md").display(),
        report.files.len(),
        report.incomplete
    );
    Ok(ExitCode::SUCCESS)
}
