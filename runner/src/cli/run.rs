//! `gadms-run run`: trains and evaluates the selected runs of a spec in this process, side by
//! side in one child process per device (`--devices`), or across processes as a rank group
//! that this command launches (`--nproc-per-node`) or srun started (`srun gadms-run run`);
//! then prints the summary and writes the report. With `--slurm` it hands the runs to SLURM
//! instead ([`super::slurm`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use gadms::dist::launch::Launch;
use gadms::dist::rendezvous::{self, Rendezvous, StoreAddress};
use gadms::dist::slurm::Step;
use gadms::dist::ProcessGroup;
use gadms::experiment::{Selection, Summary};
use gadms::spec::{RunPlan, Spec};

use super::{check_variants, load_plugins, report_problems};

#[derive(Args)]
pub struct RunArgs {
    /// The experiment spec (TOML).
    pub spec: PathBuf,
    /// Print the run matrix with each run's hash (of its config and plugin code) and stop;
    /// with `--slurm`, the sbatch scripts.
    #[arg(long)]
    pub dry_run: bool,
    /// Override a key of every run, e.g. `--set train.epochs=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run only this variant (repeatable).
    #[arg(long = "only", value_name = "VARIANT")]
    only: Vec<String>,
    /// Run again runs that failed before.
    #[arg(long)]
    pub rerun_failed: bool,
    /// Run again every selected run, finished or not.
    #[arg(long)]
    pub force: bool,
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
    /// Submit the runs to SLURM instead: one job array, a task per run that is not done,
    /// running or queued already, and a job that writes the report after them. Resources
    /// come from the spec's `[slurm]` table; sbatch options after `--` win over them.
    #[arg(long, conflicts_with_all = ["devices", "nproc_per_node", "nnodes", "node_rank", "store", "runs"])]
    slurm: bool,
    /// With `--slurm`: options for sbatch, e.g. `-- --partition=gpu --time=2:00:00`.
    #[arg(last = true, requires = "slurm", value_name = "SBATCH OPTIONS")]
    pub sbatch: Vec<String>,
}

/// The exit code is a failure when a selected run failed. Only the leader of a rank group
/// prints the summary and writes the report; the launcher of the ranks leaves both to it.
pub fn handle(args: RunArgs, plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    let mut spec = Spec::load(&args.spec, &args.overrides)?;
    let plugins = load_plugins(plugin_dirs, Some(&spec));
    spec.bind(&plugins)?;
    let selection = args.selection();
    if args.slurm {
        return super::slurm::submit(&spec, &plugins, &selection, &args, plugin_dirs);
    }
    check_run_hashes(&spec, &args.runs)?;
    if args.dry_run {
        print!("{}", gadms::experiment::plan_table(&spec, &selection));
        return Ok(ExitCode::SUCCESS);
    }
    report_problems(&plugins);
    // Missing data, weights or plugins stop the command before any run trains.
    check_variants(&spec, &plugins, &selection.only)?;
    let ranks = args.nproc_per_node.unwrap_or(1) * args.nnodes;
    check_one_parallelism(&args, ranks)?;
    // A process started with a rank is one of the ranks, not their launcher.
    if ranks > 1 && std::env::var_os(rendezvous::RANK).is_none() {
        launch(&spec, &args)?;
        return Ok(ExitCode::SUCCESS);
    }
    let group = ProcessGroup::join(Rendezvous::from_env_or_slurm(&spec.output_dir())?)?;
    // The runs that `model.init` names train (or are found finished) first.
    for o in gadms::experiment::run_upstreams(&spec, &plugins, &selection, &group)? {
        println!(
            "[model.init] {} seed {}: {} {}",
            o.variant, o.seed, o.state, o.detail
        );
    }
    let summary = if args.devices.is_empty() {
        gadms::experiment::run(&spec, &plugins, &selection, &group)?
    } else {
        run_on_devices(&spec, &selection, &args, plugin_dirs)?
    };
    if !group.is_leader() {
        return Ok(ExitCode::SUCCESS);
    }
    // A device child (`--run HASH`) reports nothing: its parent writes the report.
    Ok(finish(&spec, &summary, args.runs.is_empty()))
}

impl RunArgs {
    pub fn selection(&self) -> Selection {
        Selection {
            only: self.only.clone(),
            rerun_failed: self.rerun_failed,
            force: self.force,
            runs: self.runs.clone(),
        }
    }
}

/// `--run HASH` names a run by its identity (a device child's, an array task's); a hash the
/// spec no longer has means the run changed since it was chosen, and running nothing would
/// hide that.
fn check_run_hashes(spec: &Spec, hashes: &[String]) -> Result<()> {
    match hashes.iter().find(|h| !spec.runs.iter().any(|p| &p.hash == *h)) {
        Some(hash) => bail!(
            "--run {hash}: no run of {} has this identity now; its config, data or plugin code changed \
             since it was chosen (a SLURM submission: submit again)",
            spec.file.display()
        ),
        None => Ok(()),
    }
}

/// `--devices` and a rank group (`--nproc-per-node`, ranks from the environment, or the
/// tasks of an srun step) split the work across processes in ways that do not combine; srun
/// starts the ranks itself.
fn check_one_parallelism(args: &RunArgs, ranks: usize) -> Result<()> {
    let torchrun = std::env::var_os(rendezvous::WORLD_SIZE).is_some();
    let srun = !torchrun && Step::from_env()?.is_some();
    if !args.devices.is_empty() && (ranks > 1 || torchrun || srun) {
        bail!(
            "--devices runs several runs side by side, --nproc-per-node (or srun's tasks) each run \
             across processes; use one of them"
        );
    }
    if srun && ranks > 1 {
        bail!(
            "this is a task of an srun step of several tasks, which are the ranks already; drop \
             --nproc-per-node/--nnodes (or run with srun --ntasks=1)"
        );
    }
    Ok(())
}

/// Prints the summary and, with `write_report`, writes the report; the exit code says
/// whether a run failed.
fn finish(spec: &Spec, summary: &Summary, write_report: bool) -> ExitCode {
    print!("{summary}");
    if write_report {
        match gadms::report::write(&spec.output_dir()) {
            Ok(report) => println!("report: {}", report.dir.join("README.md").display()),
            Err(e) => eprintln!("the runs are stored, but the report failed: {e}"),
        }
    }
    if summary.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--devices`: each selected run in a child process of this executable on one of the
/// devices, as many at once as there are devices.
fn run_on_devices(
    spec: &Spec,
    selection: &Selection,
    args: &RunArgs,
    plugin_dirs: &[PathBuf],
) -> Result<Summary> {
    let exe = std::env::current_exe().context("locating gadms-run for the device processes")?;
    Ok(gadms::experiment::run_on_devices(
        spec,
        selection,
        &args.devices,
        |plan, device| device_child(&exe, args, plugin_dirs, plan, device),
    )?)
}

/// The child process that trains `plan` on `device`: this command for that run alone
/// (`--run HASH`), with the same plugin folders, overrides and rerun flags; the device comes
/// in `GADMS_DEVICE`, and the parent shows the progress.
fn device_child(
    exe: &Path,
    args: &RunArgs,
    plugin_dirs: &[PathBuf],
    plan: &RunPlan,
    device: &str,
) -> Command {
    let mut c = Command::new(exe);
    for d in plugin_dirs {
        c.arg("--plugin-dir").arg(d);
    }
    c.arg("run").arg(&args.spec).args(["--run", &plan.hash]);
    for o in &args.overrides {
        c.args(["--set", o]);
    }
    if args.rerun_failed {
        c.arg("--rerun-failed");
    }
    if args.force {
        c.arg("--force");
    }
    c.env("GADMS_DEVICE", torch_device(device))
        .env("GADMS_PLAIN_PROGRESS", "1")
        .stdout(Stdio::null());
    c
}

/// A `--devices` entry as a torch device: `cpu`, or a GPU index as `cuda:<index>`.
fn torch_device(device: &str) -> String {
    if device == "cpu" {
        "cpu".to_string()
    } else {
        format!("cuda:{device}")
    }
}

/// Starts this machine's ranks of every run of `spec` (`--nproc-per-node`): the same command
/// line, each with its rank in the environment, meeting through the store — by default a new
/// folder in the experiment's output, removed afterwards.
fn launch(spec: &Spec, args: &RunArgs) -> Result<()> {
    let (address, temporary) = rendezvous_store(spec, args)?;
    let exe = std::env::current_exe().context("locating gadms-run for the rank processes")?;
    let command_line: Vec<OsString> = std::env::args_os().skip(1).collect();
    let launched = Launch {
        nproc_per_node: args.nproc_per_node.unwrap_or(1),
        nnodes: args.nnodes,
        node_rank: args.node_rank,
        store: address,
    }
    .run(|| {
        let mut c = Command::new(&exe);
        c.args(&command_line);
        c
    });
    if let Some(folder) = temporary {
        let _ = std::fs::remove_dir_all(folder);
    }
    Ok(launched?)
}

/// Where the ranks meet: `--store`, else `GADMS_STORE`, else (on one machine only) a new
/// folder in the experiment's output, returned also as the folder to remove afterwards. It is
/// named after the machine and the process, since launchers on several machines (the tasks of
/// a SLURM array) may share that output.
fn rendezvous_store(spec: &Spec, args: &RunArgs) -> Result<(StoreAddress, Option<PathBuf>)> {
    let store = args
        .store
        .clone()
        .or_else(|| std::env::var(rendezvous::STORE).ok());
    match store {
        Some(text) => {
            let address = StoreAddress::parse(&text).map_err(|e| anyhow!("--store `{text}`: {e}"))?;
            Ok((address, None))
        }
        None if args.nnodes > 1 => bail!(
            "--nnodes {}: give every machine the same rendezvous store, a folder they all see or \
             redis://HOST:PORT, with --store (or GADMS_STORE)",
            args.nnodes
        ),
        None => {
            let folder = spec.output_dir().join(format!(
                "rendezvous-{}-{}",
                gadms::provenance::host(),
                std::process::id()
            ));
            Ok((StoreAddress::Folder(folder.clone()), Some(folder)))
        }
    }
}
