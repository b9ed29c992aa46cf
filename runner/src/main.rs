//! `gadms-run`: the command-line edge of gadms. Library errors become `anyhow` reports
//! here, with the context a user needs to act on them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use gadms::data::convert;
use gadms::data::stats::SplitStats;
use gadms::data::tokenizer::Tokenizer;
use gadms::dist::launch::Launch;
use gadms::dist::rendezvous::{self, StoreAddress};
use gadms::dist::ProcessGroup;
use gadms::model::ModelConfig;
use gadms::plugin::{default_search_path, PluginSet};
use gadms::spec::Spec;
use gadms_plugin::dataset::SplitKind;

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
    Run {
        /// The experiment spec (TOML).
        spec: PathBuf,
        /// Print the run matrix with each run's hash (of its config and plugin code) and stop.
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
        /// Run on these devices at once, one run at a time on each: GPU indices (`0,1`)
        /// or `cpu`. Each run is a child process; the device is not part of its identity.
        #[arg(long, value_delimiter = ',', value_name = "DEVICES")]
        devices: Vec<String>,
        /// Only the run with this hash (repeatable; used by `--devices`).
        #[arg(long = "run", value_name = "HASH", hide = true)]
        runs: Vec<String>,
        /// Train each run across N processes of this machine (data parallel, one GPU each
        /// on CUDA), which this command starts. `train.batch_size` is the global batch.
        #[arg(long, value_name = "N")]
        nproc_per_node: Option<usize>,
        /// With `--nproc-per-node`: the number of machines, each running this command with
        /// its own `--node-rank` and the same `--store`.
        #[arg(long, default_value_t = 1, value_name = "M")]
        nnodes: usize,
        /// With `--nnodes`: this machine's number, 0..M.
        #[arg(long, default_value_t = 0, value_name = "K")]
        node_rank: usize,
        /// Where the ranks meet: a folder every machine sees, or `redis://HOST:PORT`
        /// (default: `GADMS_STORE`; on one machine, a new folder in the experiment's output).
        #[arg(long, value_name = "FOLDER|redis://HOST:PORT")]
        store: Option<String>,
    },
    /// Checks every collective among the ranks of the environment (`WORLD_SIZE`, `RANK`,
    /// `GADMS_STORE`).
    #[command(hide = true)]
    DistSelftest,
    /// Rebuild an experiment's report (tables, charts, README.md) from its finished runs,
    /// without training. `gadms-run run` writes it too, after the runs.
    Report {
        /// The experiment's folder (`reports/<experiment>`), or its spec.
        target: PathBuf,
        /// With a spec: the overrides it was run with (they can change the output folder).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
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
    /// Write a checkpoint's weights as safetensors with the reference (IRRA/GA-DMS) names,
    /// which the reference model's `load_state_dict` takes after `safetensors.torch.load_file`.
    Export {
        /// A run folder (`runs/<variant>/seed-<n>`: its `best/` checkpoint, else
        /// `checkpoint/`), a `checkpoint/` or `best/` folder, or a weights file in any format
        /// `model.init` takes.
        checkpoint: PathBuf,
        /// The safetensors file to write.
        #[arg(long)]
        to: PathBuf,
    },
    /// Inspect a dataset as its plugin loads it.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Per split: identities, images, captions, captions per image, and caption lengths in
    /// CLIP BPE tokens with how many captions tokenisation would truncate.
    ///
    /// Without `--split`, train, val and test are tried in turn; a split that does not load
    /// (ICFG-PEDES has no val) is reported on stderr with the reason and skipped.
    Stats {
        /// The dataset plugin, e.g. `cuhk-pedes` (see `gadms-run plugins`).
        #[arg(long)]
        plugin: String,
        /// The dataset's folder (generated datasets need none).
        #[arg(long)]
        root: Option<PathBuf>,
        /// A split to load: train, val or test (repeatable; default: each that loads).
        #[arg(long = "split", value_name = "SPLIT", value_parser = parse_split)]
        splits: Vec<SplitKind>,
        /// A plugin option, e.g. `--option skip_missing=true` (repeatable). The value is
        /// read as TOML, or as a string when it is not TOML.
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// The text context that truncation is counted against (ViT-B/16's by default).
        #[arg(long, default_value_t = ModelConfig::vit_b16().context_length as usize)]
        context_length: usize,
    },
    /// Convert a dataset as published into the layout its plugin reads.
    ///
    /// `webperson`: the Hugging Face release (`Kaichengalex/WebPerson-1M` or `-5M`, parquet
    /// shards `data/train-*.parquet`) becomes `<root>/images/<image_path>`, each image's bytes
    /// unchanged, and one annotation JSON `<root>/<annotations>`; then
    /// `gadms-run dataset stats --plugin webperson --root <root>` loads it. Shards are read one
    /// at a time and the JSON is written as it grows, so memory stays small at 5 M images.
    ///
    /// Converting again into the same root overwrites its images and annotation file (images
    /// of earlier conversions that the shards no longer name stay, unused). A conversion that
    /// stops on an error keeps the images it wrote but writes no annotation file (an earlier
    /// one stays as it was).
    Convert {
        /// The dataset: `webperson`.
        #[arg(value_enum)]
        dataset: ConvertDataset,
        /// The download: a folder (its `data/train-*.parquet`, else its `*.parquet`, by name)
        /// or shard files, in the order given.
        #[arg(long = "from", value_name = "DIR|FILE", required = true, num_args = 1..)]
        from: Vec<PathBuf>,
        /// The folder to write, the plugin's `root` (created if needed).
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// The annotation file's name under the root; the plugin reads it with option
        /// `annotations` (this default needs none).
        #[arg(long, value_name = "NAME", default_value = convert::DEFAULT_ANNOTATIONS)]
        annotations: String,
    },
}

/// The datasets `dataset convert` knows.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ConvertDataset {
    /// WebPerson's Hugging Face parquet shards.
    Webperson,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // Library errors often quote their source already; print each cause once.
            let mut text = String::new();
            for cause in e.chain().map(ToString::to_string) {
                if !text.contains(&cause) {
                    text += if text.is_empty() { "" } else { ": " };
                    text += &cause;
                }
            }
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            spec: spec_file,
            dry_run,
            overrides,
            only,
            rerun_failed,
            force,
            devices,
            runs,
            nproc_per_node,
            nnodes,
            node_rank,
            store,
        } => {
            let mut spec = Spec::load(&spec_file, &overrides)?;
            let plugins = load_plugins(&cli.plugin_dirs, Some(&spec));
            spec.bind(&plugins)?;
            // A device child (`--run HASH`) reports nothing: its parent writes the report.
            let write_report = runs.is_empty();
            let selection = gadms::experiment::Selection {
                only,
                rerun_failed,
                force,
                runs,
            };
            if dry_run {
                print!("{}", gadms::experiment::plan_table(&spec, &selection));
                return Ok(ExitCode::SUCCESS);
            }
            report_problems(&plugins);
            // Missing data, weights or plugins stop the command before any run trains.
            check_variants(&spec, &plugins, &selection.only)?;
            let ranks = nproc_per_node.unwrap_or(1) * nnodes;
            if !devices.is_empty() && (ranks > 1 || std::env::var_os(rendezvous::WORLD_SIZE).is_some()) {
                bail!(
                    "--devices runs several runs side by side, --nproc-per-node each run across processes; \
                     use one of them"
                );
            }
            // A process started with a rank is one of the ranks, not their launcher.
            if ranks > 1 && std::env::var_os(rendezvous::RANK).is_none() {
                launch(&spec, nproc_per_node.unwrap_or(1), nnodes, node_rank, store)?;
                return Ok(ExitCode::SUCCESS);
            }
            let group = ProcessGroup::from_env()?;
            for o in gadms::experiment::run_upstreams(&spec, &plugins, &selection, &group)? {
                println!(
                    "[model.init] {} seed {}: {} {}",
                    o.variant, o.seed, o.state, o.detail
                );
            }
            let summary = if devices.is_empty() {
                gadms::experiment::run(&spec, &plugins, &selection, &group)?
            } else {
                let exe = std::env::current_exe().context("locating gadms-run for the device processes")?;
                let child = |plan: &gadms::spec::RunPlan, device: &str| {
                    let mut c = std::process::Command::new(&exe);
                    for d in &cli.plugin_dirs {
                        c.arg("--plugin-dir").arg(d);
                    }
                    c.arg("run").arg(&spec_file).args(["--run", &plan.hash]);
                    for o in &overrides {
                        c.args(["--set", o]);
                    }
                    if rerun_failed {
                        c.arg("--rerun-failed");
                    }
                    if force {
                        c.arg("--force");
                    }
                    let device = if device == "cpu" {
                        "cpu".to_string()
                    } else {
                        format!("cuda:{device}")
                    };
                    c.env("GADMS_DEVICE", device)
                        .env("GADMS_PLAIN_PROGRESS", "1")
                        .stdout(std::process::Stdio::null());
                    c
                };
                gadms::experiment::run_on_devices(&spec, &selection, &devices, child)?
            };
            if !group.is_leader() {
                return Ok(ExitCode::SUCCESS);
            }
            print!("{summary}");
            if write_report {
                match gadms::report::write(&spec.output_dir()) {
                    Ok(report) => println!("report: {}", report.dir.join("README.md").display()),
                    Err(e) => eprintln!("the runs are stored, but the report failed: {e}"),
                }
            }
            Ok(if summary.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::DistSelftest => {
            let group = ProcessGroup::from_env()?;
            for check in gadms::dist::selftest::run(&group)? {
                println!("rank {} of {}: {check} ok", group.rank(), group.world());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { target, overrides } => {
            let dir = if target.is_file() {
                Spec::load(&target, &overrides)?.output_dir()
            } else {
                target
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
        Command::Validate { spec, overrides } => {
            let mut spec = Spec::load(&spec, &overrides)?;
            let plugins = load_plugins(&cli.plugin_dirs, Some(&spec));
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
        Command::Export { checkpoint, to } => {
            let file = checkpoint_weights(&checkpoint)?;
            let weights = gadms::model::import::export(&file, &to)?;
            println!("wrote {}: {weights} from {}", to.display(), file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Dataset {
            command:
                DatasetCommand::Stats {
                    plugin,
                    root,
                    splits,
                    options,
                    context_length,
                },
        } => {
            let plugins = load_plugins(&cli.plugin_dirs, None);
            dataset_stats(
                &plugins,
                &plugin,
                root.as_deref(),
                &splits,
                &options,
                context_length,
            )
        }
        Command::Dataset {
            command:
                DatasetCommand::Convert {
                    dataset: ConvertDataset::Webperson,
                    from,
                    root,
                    annotations,
                },
        } => convert_webperson(&from, &root, &annotations),
    }
}

/// `dataset convert webperson`: a line per shard on stderr as it finishes, the summary and
/// the command that loads the result on stdout.
fn convert_webperson(from: &[PathBuf], root: &Path, annotations: &str) -> Result<ExitCode> {
    let shards = convert::find_shards(from)?;
    eprintln!("converting {} shard(s) into {}", shards.len(), root.display());
    let summary = convert::convert_webperson(&shards, root, annotations, |done| {
        eprintln!(
            "shard {}/{} {}: {} images, {} bytes",
            done.number,
            done.of,
            done.shard.display(),
            done.images,
            done.image_bytes
        )
    })
    .with_context(|| format!("converting WebPerson into {}", root.display()))?;
    println!("{summary}");
    let option = if annotations == convert::DEFAULT_ANNOTATIONS {
        String::new()
    } else {
        format!(" --option annotations={annotations}")
    };
    println!(
        "check it with: gadms-run dataset stats --plugin webperson --root {}{option}",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Starts this machine's ranks of every run of `spec` (`--nproc-per-node`): the same command
/// line, each with its rank in the environment, meeting through `store` — by default a new
/// folder in the experiment's output, removed afterwards.
fn launch(
    spec: &Spec,
    nproc_per_node: usize,
    nnodes: usize,
    node_rank: usize,
    store: Option<String>,
) -> Result<()> {
    let store = store.or_else(|| std::env::var(rendezvous::STORE).ok());
    let (address, temporary) = match store {
        Some(text) => (
            StoreAddress::parse(&text).map_err(|e| anyhow::anyhow!("--store `{text}`: {e}"))?,
            None,
        ),
        None if nnodes > 1 => bail!(
            "--nnodes {nnodes}: give every machine the same rendezvous store, a folder they all see or \
             redis://HOST:PORT, with --store (or GADMS_STORE)"
        ),
        None => {
            let folder = spec
                .output_dir()
                .join(format!("rendezvous-{}", std::process::id()));
            (StoreAddress::Folder(folder.clone()), Some(folder))
        }
    };
    let exe = std::env::current_exe().context("locating gadms-run for the rank processes")?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let launched = Launch {
        nproc_per_node,
        nnodes,
        node_rank,
        store: address,
    }
    .run(|| {
        let mut c = std::process::Command::new(&exe);
        c.args(&args);
        c
    });
    if let Some(folder) = temporary {
        let _ = std::fs::remove_dir_all(folder);
    }
    Ok(launched?)
}

/// The weights file `export` reads for `path`: the file itself, a checkpoint folder's
/// `model.safetensors`, or for a run folder that of `best/` (the validation-selected
/// checkpoint) when there is one, else that of `checkpoint/` (the last epoch).
fn checkpoint_weights(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        bail!(
            "{}: no such file or folder; give a run folder, its `checkpoint/` or `best/` folder, or a weights file",
            path.display()
        );
    }
    [
        "model.safetensors",
        "best/model.safetensors",
        "checkpoint/model.safetensors",
    ]
    .iter()
    .map(|name| path.join(name))
    .find(|file| file.is_file())
    .with_context(|| {
        format!(
            "{}: a folder without `model.safetensors`, `best/` or `checkpoint/`; give a run folder \
                 (`runs/<variant>/seed-<n>`), its `checkpoint/` or `best/` folder, or a weights file",
            path.display()
        )
    })
}

/// `dataset stats`: splits named with `--split` must load; without it, each split that
/// loads is shown and the command fails only when none does.
fn dataset_stats(
    plugins: &PluginSet,
    name: &str,
    root: Option<&Path>,
    splits: &[SplitKind],
    options: &[String],
    context_length: usize,
) -> Result<ExitCode> {
    let dataset = plugins
        .dataset(name)?
        .open(root, &plugin_options(options)?)
        .with_context(|| format!("cannot open dataset `{name}`"))?;
    let tokenizer = Tokenizer::clip()?;
    let explicit = !splits.is_empty();
    let splits = if explicit {
        splits
    } else {
        &[SplitKind::Train, SplitKind::Val, SplitKind::Test][..]
    };
    let mut loaded = 0;
    for &split in splits {
        match dataset.load(split) {
            Ok(data) => {
                let stats = SplitStats::compute(&data, &tokenizer, context_length);
                print!("{name} {}:\n{stats}", split.as_str());
                loaded += 1;
            }
            Err(e) if !explicit => eprintln!("{name} {}: not loaded: {e}", split.as_str()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot load the `{}` split of `{name}`", split.as_str()))
            }
        }
    }
    if loaded == 0 {
        bail!("no split of `{name}` loaded; the reasons are above");
    }
    Ok(ExitCode::SUCCESS)
}

/// `KEY=VALUE` assignments as the TOML text a plugin parses its options from. As with
/// `--set`, a value that is not TOML (`annotations=100w.json`) is taken as a string.
fn plugin_options(assignments: &[String]) -> Result<String> {
    let mut table = toml::Table::new();
    for assignment in assignments {
        let (key, raw) = assignment
            .split_once('=')
            .with_context(|| format!("--option `{assignment}`: expected KEY=VALUE"))?;
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
        table.insert(key.trim().to_string(), value);
    }
    Ok(toml::to_string(&table)?)
}

fn parse_split(text: &str) -> Result<SplitKind, String> {
    [SplitKind::Train, SplitKind::Val, SplitKind::Test]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| format!("`{text}` is not a split; expected train, val or test"))
}

/// Checks each distinct variant's plugins, options, data and weights (only the variants in
/// `only`, when given), printing what the checks note; returns how many variants were checked.
fn check_variants(spec: &Spec, plugins: &PluginSet, only: &[String]) -> Result<usize> {
    let mut seen = std::collections::BTreeSet::new();
    for run in spec
        .runs
        .iter()
        .filter(|r| only.is_empty() || only.contains(&r.variant))
    {
        if seen.insert(run.variant.clone()) {
            let checked = gadms::components::check(plugins, run, &spec.dir());
            for note in checked.iter().flatten() {
                println!("{}: variant `{}`: {note}", spec.file.display(), run.variant);
            }
            if let Err(e) = checked {
                // Point at the line of the key the error names (a plugin option, a path).
                let message = e.to_string();
                let key = match message.split_once("field `") {
                    Some((_, rest)) => rest.split('`').next(),
                    None => message.split('`').nth(1),
                }
                .unwrap_or_default();
                return Err(anyhow::Error::new(e).context(format!(
                    "{}: variant `{}`",
                    spec.locate(key),
                    run.variant
                )));
            }
        }
    }
    Ok(seen.len())
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
