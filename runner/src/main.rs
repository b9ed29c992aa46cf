//! `gadms-run`: the command-line edge of gadms. Library errors become `anyhow` reports
//! here, with the context a user needs to act on them. Each command's arguments and handler
//! live in a module of [`cli`].

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Declarative GA-DMS experiments: train every variant of an ablation, evaluate R@1/5/10,
/// mAP and mINP, and write comparison tables.
///
/// Datasets, masking strategies and losses are plugins (shared libraries) found in the
/// plugin search path: `--plugin-dir` folders, the spec's `plugin_dirs`, `GADMS_PLUGIN_PATH`
/// and the folder of this executable.
#[derive(Parser)]
#[command(name = "gadms-run", version, propagate_version = true)]
struct Cli {
    /// Add a folder to the plugin search path (repeatable; searched recursively).
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train and evaluate every run of a spec (variants × seeds). Finished runs are
    /// skipped unless their config or the code of a plugin they use changed; results go to
    /// `<output>/<experiment>/runs/<variant>/seed-<n>/`.
    Run(cli::run::RunArgs),
    /// Show where every run of a spec stands: pending, queued or running (with its SLURM
    /// job), interrupted, done, or failed with its error.
    Status(cli::status::StatusArgs),
    /// Checks every collective among the ranks of the environment (`WORLD_SIZE`, `RANK`,
    /// `GADMS_STORE`).
    #[command(hide = true)]
    DistSelftest,
    /// Rebuild an experiment's report (tables, charts, README.md) from its finished runs,
    /// without training. `gadms-run run` writes it too, after the runs.
    Report(cli::report::ReportArgs),
    /// Check a spec: syntax, keys and types, plugin names and plugin options.
    Validate(cli::validate::ValidateArgs),
    /// List every plugin found: kind, name, version, file; and files that failed to load.
    Plugins,
    /// Show the torch build, CUDA devices, threads and the plugin search path.
    Doctor,
    /// Create a new plugin crate from the template (`plugins/template-masking`).
    NewPlugin(cli::new_plugin::NewPluginArgs),
    /// Write a checkpoint's weights as safetensors with the reference (IRRA/GA-DMS) names,
    /// which the reference model's `load_state_dict` takes after `safetensors.torch.load_file`.
    Export(cli::export::ExportArgs),
    /// Evaluate weights without training (a zero-shot CLIP, a checkpoint or a run folder) on
    /// a spec's evaluation sets; results go to `<output>/<experiment>/eval/<name>/`.
    Eval(cli::eval::EvalArgs),
    /// Inspect a dataset as its plugin loads it.
    Dataset(cli::dataset::DatasetArgs),
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: Cli) -> Result<ExitCode> {
    let plugin_dirs = &args.plugin_dirs;
    match args.command {
        Command::Run(run) => cli::run::handle(run, plugin_dirs),
        Command::Status(status) => cli::status::handle(status, plugin_dirs),
        Command::DistSelftest => cli::dist_selftest::handle(),
        Command::Report(report) => cli::report::handle(report),
        Command::Validate(validate) => cli::validate::handle(validate, plugin_dirs),
        Command::Plugins => cli::plugins::handle(plugin_dirs),
        Command::Doctor => cli::doctor::handle(plugin_dirs),
        Command::NewPlugin(new_plugin) => cli::new_plugin::handle(new_plugin),
        Command::Export(export) => cli::export::handle(export),
        Command::Eval(eval) => cli::eval::handle(eval, plugin_dirs),
        Command::Dataset(dataset) => cli::dataset::handle(dataset, plugin_dirs),
    }
}

/// The error and its causes on one line. Library errors often quote their source already,
/// so each cause is printed once.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if !text.contains(&cause) {
            text += if text.is_empty() { "" } else { ": " };
            text += &cause;
        }
    }
    text
}
