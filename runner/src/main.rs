//! `gadms-run`: the command-line edge of gadms. Library errors become `anyhow` reports
//! here, with the context a user needs to act on them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use gadms::plugin::{default_search_path, PluginSet};
use gadms::spec::Spec;

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
    /// skipped; results go to `<output>/<experiment>/runs/<variant>/seed-<n>/`.
    Run {
        /// The experiment spec (TOML).
        spec: PathBuf,
        /// Print the run matrix with each run's config hash and stop.
        #[arg(long)]
        dry_run: bool,
        /// Override a key of every run, e.g. `--set train.epochs=2` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Run only this variant (repeatable).
        #[arg(long = "only", value_name = "VARIANT")]
        only: Vec<String>,
        /// Run again runs that failed before.
        #[arg(long)]
        rerun_failed: bool,
        /// Run again every selected run, finished or not.
        #[arg(long)]
        force: bool,
    },
    /// Check a spec: syntax, keys and types, plugin names and plugin options.
    Validate {
        spec: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// List every plugin found: kind, name, version, file; and files that failed to load.
    Plugins,
    /// Show the torch build, CUDA devices, threads and the plugin search path.
    Doctor,
    /// Create a new plugin crate from the template (`plugins/template-masking`).
    NewPlugin {
        /// Only `masking` has a template.
        kind: String,
        /// Name of the component (and of the crate, prefixed `gadms-`).
        name: String,
        /// Workspace folder to create it in.
        #[arg(long, default_value = "plugins")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            spec,
            dry_run,
            overrides,
            only,
            rerun_failed,
            force,
        } => {
            let spec = Spec::load(&spec, &overrides)?;
            let plugins = load_plugins(&cli.plugin_dirs, Some(&spec));
            let selection = gadms::experiment::Selection {
                only,
                rerun_failed,
                force,
            };
            if dry_run {
                print!("{}", gadms::experiment::plan_table(&spec, &selection));
                return Ok(ExitCode::SUCCESS);
            }
            report_problems(&plugins);
            let summary = gadms::experiment::run(&spec, &plugins, &selection)?;
            print!("{summary}");
            Ok(if summary.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Validate { spec, overrides } => {
            let spec = Spec::load(&spec, &overrides)?;
            let plugins = load_plugins(&cli.plugin_dirs, Some(&spec));
            let mut seen = std::collections::BTreeSet::new();
            for run in &spec.runs {
                if seen.insert(run.variant.clone()) {
                    gadms::components::check(&plugins, &run.config, &spec.dir())
                        .with_context(|| format!("{}: variant `{}`", spec.file.display(), run.variant))?;
                }
            }
            println!(
                "{}: ok — experiment `{}`, {} variant(s) × {} seed(s) = {} runs",
                spec.file.display(),
                spec.experiment.name,
                seen.len(),
                spec.experiment.seeds.len(),
                spec.runs.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins => {
            let plugins = load_plugins(&cli.plugin_dirs, None);
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
        Command::Doctor => {
            print!("{}", gadms::doctor::report(&load_plugins(&cli.plugin_dirs, None)));
            Ok(ExitCode::SUCCESS)
        }
        Command::NewPlugin { kind, name, dir } => {
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
    }
}

/// `--plugin-dir` folders, then the spec's `plugin_dirs` (relative to the spec), then the
/// defaults.
fn load_plugins(cli_dirs: &[PathBuf], spec: Option<&Spec>) -> PluginSet {
    let mut dirs = cli_dirs.to_vec();
    if let Some(spec) = spec {
        dirs.extend(spec.experiment.plugin_dirs.iter().map(|d| spec.dir().join(d)));
    }
    dirs.extend(default_search_path());
    PluginSet::discover(&dirs)
}

fn report_problems(plugins: &PluginSet) {
    for p in &plugins.problems {
        eprintln!("plugin problem: {p}");
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p: &PathBuf| Path::new(p).display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
