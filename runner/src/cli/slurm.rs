//! `gadms-run run SPEC --slurm [-- SBATCH OPTIONS]`: hands the selected runs that are not
//! done, running or queued to SLURM as one job array, a task per run, each task this command
//! for its run alone (`--run HASH`), and the report to a job that starts when the array ends.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use gadms::experiment::Selection;
use gadms::plugin::PluginSet;
use gadms::slurm::queue::Queue;
use gadms::slurm::submit::{self, Request};
use gadms::spec::{RunPlan, Spec};

use super::run::RunArgs;
use super::{check_variants, report_problems};

pub fn submit(
    spec: &Spec,
    plugins: &PluginSet,
    selection: &Selection,
    args: &RunArgs,
    plugin_dirs: &[PathBuf],
) -> Result<ExitCode> {
    // A dry run prints the scripts where SLURM is not installed too; a queue it cannot read
    // is then empty.
    let queue = match Queue::read() {
        Ok(queue) => queue,
        Err(e) if args.dry_run => {
            eprintln!("note: {e}");
            Queue::default()
        }
        Err(e) => return Err(e.into()),
    };
    // Finished results of the runs' own identities come back from their histories first, so
    // that they are not submitted (a dry run only says which would).
    if !args.dry_run {
        for note in gadms::experiment::take_up_kept(spec, selection)? {
            println!("{note}");
        }
    }
    let choices = submit::choose(spec, selection, &queue)?;
    let runs: Vec<&RunPlan> = choices.iter().filter(|c| c.submit).map(|c| c.plan).collect();
    println!(
        "experiment `{}` → {}: {} of {} selected run(s) to submit",
        spec.experiment.name,
        spec.output_dir().display(),
        runs.len(),
        choices.len()
    );
    for c in &choices {
        let verb = if c.submit { "submit" } else { "skip" };
        println!("  {} seed {}: {verb}: {}", c.plan.variant, c.plan.seed, c.reason);
    }
    if runs.is_empty() {
        println!("nothing to submit");
        return Ok(ExitCode::SUCCESS);
    }
    let request = Request {
        spec,
        runs,
        run_command: task_command(args, plugin_dirs)?,
        report_command: report_command(spec)?,
    };
    if args.dry_run {
        let (array, report) = request.scripts();
        println!("\n# the job array: sbatch {}\n{array}", args.sbatch.join(" "));
        println!("# the report, after the array: sbatch --dependency=afterany:<array job>\n{report}");
        return Ok(ExitCode::SUCCESS);
    }
    report_problems(plugins);
    // Missing data, weights or plugins stop the submission before anything queues.
    check_variants(spec, plugins, &selection.only)?;
    let submitted = request.submit(selection, &queue, &args.sbatch)?;
    println!(
        "submitted job array {} ({} task(s)) and job {} for the report after it; logs in {}",
        submitted.array,
        request.runs.len(),
        submitted.report,
        submitted.log_dir.display(),
    );
    if !submitted.after.is_empty() {
        println!(
            "the array starts once the runs its runs start from (`model.init`) have succeeded: job(s) {}",
            submitted.after.join(", ")
        );
    }
    println!("follow it with: gadms-run status {}", args.spec.display());
    Ok(ExitCode::SUCCESS)
}

/// The command line of an array task without its run: this executable, the plugin folders,
/// `run`, the spec and the options that decide what a run is and whether it runs again,
/// with absolute paths (a task may start in another folder).
fn task_command(args: &RunArgs, plugin_dirs: &[PathBuf]) -> Result<Vec<String>> {
    let mut command = vec![executable()?];
    for d in plugin_dirs {
        command.extend(["--plugin-dir".to_string(), absolute(d)?]);
    }
    command.extend(["run".to_string(), absolute(&args.spec)?]);
    for o in &args.overrides {
        command.extend(["--set".to_string(), o.clone()]);
    }
    if args.rerun_failed {
        command.push("--rerun-failed".into());
    }
    if args.force {
        command.push("--force".into());
    }
    Ok(command)
}

/// `gadms-run report <experiment folder>`.
fn report_command(spec: &Spec) -> Result<Vec<String>> {
    Ok(vec![
        executable()?,
        "report".to_string(),
        absolute(&spec.output_dir())?,
    ])
}

fn executable() -> Result<String> {
    let exe = std::env::current_exe().context("locating gadms-run for the SLURM tasks")?;
    Ok(exe.display().to_string())
}

fn absolute(path: &Path) -> Result<String> {
    let path =
        std::path::absolute(path).with_context(|| format!("{}: cannot make it absolute", path.display()))?;
    Ok(path.display().to_string())
}
