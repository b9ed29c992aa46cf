//! Runs on a real SLURM: tests/slurm/setup.sh installs Debian's slurm-wlm where it is missing
//! and starts a cluster of this one machine (stopped again after the test when the test
//! started it). An ablation of 2 variants × 2 seeds submitted as one job array trains each
//! run exactly once and writes the report; a second submission, while the array waits or
//! runs and after it, finds nothing to do; a task whose run fails leaves it `failed`, as a
//! local run does; a task killed with scancel leaves its run to
//! resume from its checkpoint at the next submission; a run whose `model.init` names a run
//! still queued starts after that run's task; and `srun -n 2 gadms-run run SPEC`
//! trains one run across its two tasks (on Gloo, where the build has it) with no flag.
//!
//! Skipped, saying why, where SLURM cannot be set up (no apt-get, not root) or with
//! `GADMS_TEST_SLURM=0`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "common/cli.rs"]
mod cli;
#[path = "common/tiny.rs"]
mod tiny;

/// How long the jobs of one submission may take to leave the queue.
const JOBS_TIMEOUT: Duration = Duration::from_secs(300);

/// The one-node cluster of tests/slurm/setup.sh.
struct Cluster {
    conf: PathBuf,
    dir: PathBuf,
    /// Whether this test started it (and so stops it).
    started: bool,
}

impl Cluster {
    /// The cluster, set up if need be; `None` (the test is skipped) where it cannot be.
    fn up() -> Option<Self> {
        if std::env::var("GADMS_TEST_SLURM").is_ok_and(|v| v == "0") {
            eprintln!("skipped: GADMS_TEST_SLURM=0");
            return None;
        }
        let dir = std::env::var_os("GADMS_SLURM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("gadms-slurm"));
        let started = !alive(&dir.join("slurmctld.pid"));
        let setup = scripts().join("setup.sh");
        let out = Command::new("bash").arg(&setup).arg(&dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(2) => {
                eprintln!("skipped: {}", stderr.trim());
                return None;
            }
            _ => panic!("{} failed ({}): {stderr}", setup.display(), out.status),
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let conf = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .unwrap_or_else(|| panic!("setup.sh printed no SLURM_CONF: {stdout}"));
        Some(Self {
            conf: conf.into(),
            dir,
            started,
        })
    }

    /// `gadms-run ARGS` as a client of the cluster.
    fn gadms(&self, args: &[&OsStr]) -> (Output, String) {
        let mut c = cli::command();
        c.args(args).env("SLURM_CONF", &self.conf);
        cli::output(c)
    }

    /// A SLURM client command's output; it must succeed.
    fn client(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// This user's jobs and array tasks in the queue, `<id> <state>` each.
    fn queue(&self) -> Vec<String> {
        let text = self.client("squeue", &["--me", "--noheader", "--array", "--format=%i %T"]);
        text.lines().map(str::to_string).collect()
    }

    /// Waits until none of `jobs` (job ids, array tasks included) is in the queue.
    fn wait_for(&self, jobs: &[&str]) {
        let deadline = Instant::now() + JOBS_TIMEOUT;
        loop {
            let queue = self.queue();
            let ours = |line: &&String| {
                jobs.iter()
                    .any(|j| line.starts_with(&format!("{j} ")) || line.starts_with(&format!("{j}_")))
            };
            if !queue.iter().any(|l| ours(&l)) {
                return;
            }
            assert!(Instant::now() < deadline, "jobs {jobs:?} still queued: {queue:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new("bash")
                .arg(scripts().join("stop.sh"))
                .arg(&self.dir)
                .status();
        }
    }
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slurm")
}

/// Whether the process of a pid file runs.
fn alive(pid_file: &Path) -> bool {
    std::fs::read_to_string(pid_file).is_ok_and(|pid| Path::new("/proc").join(pid.trim()).exists())
}

/// `(array job, report job)` from the submission's output.
fn submitted(text: &str) -> (String, String) {
    let words: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("submitted job array"))
        .unwrap_or_else(|| panic!("nothing submitted: {text}"))
        .split_whitespace()
        .collect();
    // `submitted job array <id> (<n> task(s)) and job <id> for the report after it; …`
    let after = |word: &str| words[words.iter().rposition(|w| *w == word).unwrap() + 1].to_string();
    (after("array"), after("job"))
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The runs of `experiment` in `dir`: `<variant>/seed-<n>` folders.
fn run_dirs(dir: &Path, experiment: &str) -> Vec<PathBuf> {
    let runs = dir.join("out").join(experiment).join("runs");
    let mut found = Vec::new();
    for variant in std::fs::read_dir(&runs).unwrap() {
        for seed in std::fs::read_dir(variant.unwrap().path()).unwrap() {
            found.push(seed.unwrap().path());
        }
    }
    found.sort();
    found
}

fn args<'a>(spec: &'a Path, rest: &[&'a str]) -> Vec<&'a OsStr> {
    let mut a: Vec<&OsStr> = vec![OsStr::new("run"), spec.as_os_str(), OsStr::new("--slurm")];
    a.extend(rest.iter().map(|s| OsStr::new(*s)));
    a
}

#[test]
fn arrays_tasks_and_srun_steps_on_a_real_one_node_slurm() {
    let Some(cluster) = Cluster::up() else {
        return;
    };
    an_array_trains_every_run_once(&cluster);
    a_failing_task_leaves_its_run_failed(&cluster);
    a_killed_task_leaves_its_run_to_the_next_submission(&cluster);
    a_run_starting_from_a_queued_run_waits_for_its_task(&cluster);
    the_tasks_of_an_srun_step_train_one_run_as_its_ranks(&cluster);
}

fn an_array_trains_every_run_once(cluster: &Cluster) {
    let dir = cli::scratch("slurm-array");
    let spec = dir.join("spec.toml");
    let text = tiny::one_run("abl").replace("seeds = [1]", "seeds = [1, 2]")
        + "\n[[variant]]\nname = \"clip-lr\"\ntrain.lr = 2e-4\n\n[slurm]\ncpus = 1\ntime = \"00:10:00\"\n";
    std::fs::write(&spec, text).unwrap();

    let (out, text) = cluster.gadms(&args(&spec, &["--dry-run"]));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("4 of 4 selected run(s) to submit"), "{text}");
    assert!(
        text.contains("#SBATCH --array=0-3") && text.contains("#SBATCH --cpus-per-task=1"),
        "{text}"
    );
    assert!(
        !dir.join("out/abl/runs").exists(),
        "a dry run submits and marks nothing"
    );

    let (out, text) = cluster.gadms(&args(&spec, &[]));
    assert!(out.status.success(), "{text}");
    let (array, report) = submitted(&text);
    let (out, again) = cluster.gadms(&args(&spec, &[]));
    assert!(
        out.status.success() && again.contains("nothing to submit"),
        "queued, running or done already: {again}"
    );
    let (_, status) = cluster.gadms(&[OsStr::new("status"), spec.as_os_str()]);
    let states = status
        .lines()
        .skip(2)
        .take(4)
        .filter_map(|l| l.split_whitespace().nth(3));
    assert!(
        states.clone().count() == 4 && states.clone().all(|s| ["queued", "running", "done"].contains(&s)),
        "each run is queued, running or done: {status}"
    );

    cluster.wait_for(&[&array, &report]);
    let runs = run_dirs(&dir, "abl");
    assert_eq!(runs.len(), 4, "{runs:?}");
    let mut jobs = Vec::new();
    for run in &runs {
        let log = std::fs::read_to_string(run.join("run.log")).unwrap_or_default();
        assert_eq!(
            read_json(&run.join("status.json"))["state"],
            "done",
            "{}: {log}",
            run.display()
        );
        assert!(
            !run.join("history").exists(),
            "{}: trained more than once",
            run.display()
        );
        let job = read_json(&run.join("job.json"))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let task_log = dir.join("out/abl/slurm").join(format!("{job}.log"));
        let task_log =
            std::fs::read_to_string(&task_log).unwrap_or_else(|e| panic!("{}: {e}", task_log.display()));
        assert!(
            task_log.contains("1 run(s), 0 failed"),
            "each task trains its run alone: {task_log}"
        );
        jobs.push(job);
    }
    jobs.sort();
    let expected: Vec<String> = (0..4).map(|t| format!("{array}_{t}")).collect();
    assert_eq!(jobs, expected, "one task per run");
    assert!(
        dir.join("out/abl/README.md").is_file(),
        "the report job wrote the report"
    );

    let (_, status) = cluster.gadms(&[OsStr::new("status"), spec.as_os_str()]);
    assert!(status.contains("4 run(s): 4 done"), "{status}");
    let (out, again) = cluster.gadms(&args(&spec, &[]));
    assert!(out.status.success(), "{again}");
    assert!(
        again.contains("0 of 4 selected run(s) to submit") && again.contains("nothing to submit"),
        "{again}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn a_failing_task_leaves_its_run_failed(cluster: &Cluster) {
    let dir = cli::scratch("slurm-failing");
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, tiny::one_run("failing").replace("lr = 1e-4", "lr = 1e30")).unwrap();
    let (out, text) = cluster.gadms(&args(&spec, &[]));
    assert!(out.status.success(), "{text}");
    let (array, report) = submitted(&text);
    cluster.wait_for(&[&array, &report]);
    let status = read_json(&dir.join("out/failing/runs/clip/seed-1/status.json"));
    assert_eq!(status["state"], "failed", "{status}");
    let (_, table) = cluster.gadms(&[OsStr::new("status"), spec.as_os_str()]);
    assert!(
        table.contains("1 run(s): 1 failed") && table.contains("epoch 1, step"),
        "{table}"
    );
    let (_, again) = cluster.gadms(&args(&spec, &[]));
    assert!(
        again.contains("skip: failed before (--rerun-failed") && again.contains("nothing to submit"),
        "{again}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn a_killed_task_leaves_its_run_to_the_next_submission(cluster: &Cluster) {
    let dir = cli::scratch("slurm-killed");
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        tiny::one_run("killed").replace("epochs = 1", "epochs = 12"),
    )
    .unwrap();
    let (out, text) = cluster.gadms(&args(&spec, &[]));
    assert!(out.status.success(), "{text}");
    let (array, report) = submitted(&text);
    let run = dir.join("out/killed/runs/clip/seed-1");
    let position = run.join("checkpoint/position.json");
    let deadline = Instant::now() + JOBS_TIMEOUT;
    while !position.is_file() {
        assert!(Instant::now() < deadline, "no checkpoint of the first epoch");
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.client("scancel", &[&format!("{array}_0")]);
    cluster.wait_for(&[&array, &report]);
    let (_, status) = cluster.gadms(&[OsStr::new("status"), spec.as_os_str()]);
    assert!(
        status.contains("interrupted") && status.contains("resumes after epoch"),
        "{status}"
    );

    let (out, text) = cluster.gadms(&args(&spec, &[]));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("resumes from its checkpoint"), "{text}");
    let (array, report) = submitted(&text);
    cluster.wait_for(&[&array, &report]);
    assert_eq!(read_json(&run.join("status.json"))["state"], "done");
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(log.contains("resumed after epoch"), "{log}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn a_run_starting_from_a_queued_run_waits_for_its_task(cluster: &Cluster) {
    let dir = cli::scratch("slurm-upstream");
    let (up, down) = (dir.join("up.toml"), dir.join("down.toml"));
    std::fs::write(&up, tiny::one_run("up")).unwrap();
    let init = r#"init = { spec = "up.toml", variant = "clip", seed = 1 }"#;
    std::fs::write(
        &down,
        tiny::one_run("down").replace("[base.model]", &format!("[base.model]\n{init}")),
    )
    .unwrap();
    let (_, refused) = cluster.gadms(&args(&down, &[]));
    assert!(refused.contains("not finished and is not queued"), "{refused}");
    // Held, so that the tiny upstream run cannot finish before the downstream submission
    // looks for it in the queue.
    let (out, text) = cluster.gadms(&args(&up, &["--", "--hold"]));
    assert!(out.status.success(), "{text}");
    let (up_array, up_report) = submitted(&text);
    let (out, text) = cluster.gadms(&args(&down, &[]));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("have succeeded: job(s) {up_array}_0")),
        "{text}"
    );
    for job in [&up_array, &up_report] {
        cluster.client("scontrol", &["release", job]);
    }
    let (array, report) = submitted(&text);
    cluster.wait_for(&[&up_array, &up_report, &array, &report]);
    for experiment in ["up", "down"] {
        let status = read_json(
            &dir.join("out")
                .join(experiment)
                .join("runs/clip/seed-1/status.json"),
        );
        assert_eq!(status["state"], "done", "{experiment}: {status}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn the_tasks_of_an_srun_step_train_one_run_as_its_ranks(cluster: &Cluster) {
    let (_, doctor) = cluster.gadms(&[OsStr::new("doctor")]);
    if !doctor
        .lines()
        .any(|l| l.starts_with("Gloo") && l.ends_with(": available"))
    {
        eprintln!("srun check skipped: this build has no Gloo for training across CPU processes");
        return;
    }
    let dir = cli::scratch("slurm-srun");
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, tiny::one_run("srun")).unwrap();
    let mut srun = Command::new("srun");
    srun.args(["--ntasks=2", "--time=00:10:00"])
        .arg(env!("CARGO_BIN_EXE_gadms-run"))
        .arg("run")
        .arg(&spec)
        .env("SLURM_CONF", &cluster.conf)
        .env("GADMS_PLUGIN_PATH", "");
    let (out, text) = cli::output(srun);
    assert!(out.status.success(), "{text}");
    let run = dir.join("out/srun/runs/clip/seed-1");
    assert_eq!(read_json(&run.join("status.json"))["state"], "done", "{text}");
    let provenance = read_json(&run.join("provenance.json"));
    assert_eq!(
        provenance["sessions"][0]["ranks"], 2,
        "one run across both tasks: {provenance}"
    );
    let rendezvous: Vec<String> = std::fs::read_dir(dir.join("out/srun/rendezvous"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        rendezvous.len() == 1 && rendezvous[0].starts_with("slurm-") && rendezvous[0].ends_with(".0"),
        "the ranks met in the step's folder: {rendezvous:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
