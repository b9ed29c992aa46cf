//! The run store: one folder per run, `<output>/<experiment>/runs/<variant>/seed-<n>/`,
//! holding the resolved config, the plugin libraries it runs with, a status written
//! atomically, a metrics log that Polars reads as NDJSON (`pl.read_ndjson`), a
//! human-readable log, the run's provenance and TensorBoard event files of the metrics log
//! (one per session, see [`crate::tensorboard`]); and beside `runs/`, `experiment.json`, the
//! run matrix of the spec, so reports know which runs should exist without the spec at hand.
//!
//! Nothing finished is destroyed implicitly: before a run starts afresh in a folder that
//! holds a result (of another identity, or forced), that result moves to
//! `history/<hash>-<time>/` inside the folder, and a run whose identity comes back (a
//! setting set back, earlier code built again) takes its finished result up from there
//! instead of training again. A lock on the folder's `lock` file keeps two
//! processes from training the same run at once, and `job.json` names the SLURM job that was
//! given the run to train.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::eval::metrics::PerQuery;
use crate::spec::{Presentation, RunPlan, Spec};
use crate::tensorboard::RecordEvents;

#[derive(Debug, thiserror::Error)]
#[error("run store {}: {source}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Running,
    Failed,
    Done,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Done => "done",
        }
    }
}

/// `status.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    /// The identity of the run the status belongs to.
    pub hash: String,
    /// The named parts of that identity, which tell what changed when a run runs again.
    #[serde(default)]
    pub parts: BTreeMap<String, String>,
    #[serde(default)]
    pub error: Option<String>,
    /// Seconds since the Unix epoch.
    pub updated: u64,
}

impl Status {
    /// What differs between the stored run and `plan`, by part name (`config`,
    /// `model.init`, `plugin code`, …); empty for the same run. A status written before
    /// identities had parts says `identity rules`.
    pub fn changes(&self, plan: &RunPlan) -> Vec<String> {
        if self.hash == plan.hash {
            Vec::new()
        } else if self.parts.is_empty() {
            vec!["identity rules".into()]
        } else {
            crate::spec::identity::changed_parts(&self.parts, &plan.parts)
        }
    }
}

/// One run's folder.
pub struct RunDir {
    pub path: PathBuf,
    /// This session's TensorBoard event file, opened by the first record logged.
    events: Mutex<Option<RecordEvents>>,
}

impl RunDir {
    pub fn new(experiment_dir: &Path, plan: &RunPlan) -> Self {
        Self::at(
            experiment_dir
                .join("runs")
                .join(&plan.variant)
                .join(format!("seed-{}", plan.seed)),
        )
    }

    /// The run folder at `path`.
    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            events: Mutex::new(None),
        }
    }

    /// The stored status, if any (an unreadable one counts as absent).
    pub fn status(&self) -> Option<Status> {
        let text = std::fs::read_to_string(self.path.join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Starts a run afresh: moves a previous result to the history (see [`Self::archive`]),
    /// then writes the resolved config, the plugin libraries the run uses with their
    /// digests (`plugins.json`, to see what a run was made with) and a fresh metrics log.
    /// Returns where the previous result went, if there was one.
    pub fn begin(&self, plan: &RunPlan) -> Result<Option<PathBuf>, StoreError> {
        let kept = self.archive()?;
        // A fresh start is a new session: its events go to a new file.
        *self.events.lock().expect("no panic while logging") = None;
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        // A TOML document (not the value's inline form), so that tools and reports parse it.
        let document = toml::to_string(&plan.resolved).expect("a resolved config is a TOML table");
        let config = format!(
            "# run {} of variant `{}`, seed {}\n{document}",
            plan.hash, plan.variant, plan.seed
        );
        write_atomic(&self.path.join("config.toml"), config.as_bytes())?;
        let plugins = serde_json::to_string_pretty(&plan.code).expect("plugin code serialises");
        write_atomic(&self.path.join("plugins.json"), plugins.as_bytes())?;
        for f in ["metrics.jsonl", "run.log"] {
            let p = self.path.join(f);
            std::fs::write(&p, b"").map_err(io(&p))?;
        }
        self.set_status(State::Running, plan, None)?;
        Ok(kept)
    }

    /// Records the state of `plan`'s run.
    pub fn set_status(&self, state: State, plan: &RunPlan, error: Option<String>) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let status = Status {
            state,
            hash: plan.hash.clone(),
            parts: plan.parts.clone(),
            error,
            updated: unix_now(),
        };
        let text = serde_json::to_string_pretty(&status).expect("status serialises");
        write_atomic(&self.path.join("status.json"), text.as_bytes())
    }

    /// Appends one record to `metrics.jsonl` and its numbers to this session's TensorBoard
    /// event file (opened by the first record, after what the log holds from earlier
    /// sessions).
    pub fn log_metrics(&self, record: &serde_json::Value) -> Result<(), StoreError> {
        let mut events = self.events.lock().expect("no panic while logging");
        if events.is_none() {
            *events = Some(RecordEvents::open(&self.path, &self.metrics()).map_err(io(&self.path))?);
        }
        self.append("metrics.jsonl", &format!("{record}\n"))?;
        let events = events.as_mut().expect("opened above");
        events.log(record).map_err(|source| StoreError {
            path: events.path().to_path_buf(),
            source,
        })
    }

    /// The records of `metrics.jsonl` (unreadable lines are skipped).
    pub fn metrics(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path.join("metrics.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Drops the records of epochs after `epoch` (an interrupted epoch's partial log) before
    /// a resumed run appends again.
    pub fn keep_metrics_through(&self, epoch: usize) -> Result<(), StoreError> {
        let kept: String = self
            .metrics()
            .into_iter()
            .filter(|r| r["epoch"].as_u64().is_some_and(|e| e as usize <= epoch))
            .map(|r| format!("{r}\n"))
            .collect();
        write_atomic(&self.path.join("metrics.jsonl"), kept.as_bytes())
    }

    /// Keeps each query's results of the latest evaluation of `dataset` (after `epoch`) in
    /// `queries/<dataset>.json`, for reports that test a difference over queries.
    pub fn write_queries(&self, dataset: &str, epoch: usize, per_query: &PerQuery) -> Result<(), StoreError> {
        let dir = self.path.join(QUERIES);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let record = StoredQueries {
            epoch: epoch as u64,
            results: per_query.clone(),
        };
        let text = serde_json::to_string(&record).expect("per-query results serialise");
        write_atomic(&dir.join(queries_file(dataset)), text.as_bytes())
    }

    /// The per-query results of the latest evaluation of `dataset` and its epoch, if kept.
    pub fn queries(&self, dataset: &str) -> Option<(u64, PerQuery)> {
        let text = std::fs::read_to_string(self.path.join(QUERIES).join(queries_file(dataset))).ok()?;
        let record: StoredQueries = serde_json::from_str(&text).ok()?;
        Some((record.epoch, record.results))
    }

    /// Appends a line to `run.log`.
    pub fn log_line(&self, line: &str) -> Result<(), StoreError> {
        self.append("run.log", &format!("{line}\n"))
    }

    /// Moves what the folder holds of an earlier run — anything but a bare `pending`
    /// status — into `history/<hash>-<updated>/` (the earlier run's identity and status
    /// time), and returns that folder. The current result is always the folder's top level;
    /// the history is only ever deleted by hand.
    pub fn archive(&self) -> Result<Option<PathBuf>, StoreError> {
        let Some(status) = self.status().filter(|s| s.state != State::Pending) else {
            return Ok(None);
        };
        let dest = self.free_history_name(&format!("{}-{}", status.hash, status.updated));
        std::fs::create_dir_all(&dest).map_err(io(&dest))?;
        let entries = std::fs::read_dir(&self.path).map_err(io(&self.path))?;
        for entry in entries {
            let entry = entry.map_err(io(&self.path))?;
            let name = entry.file_name();
            if name == HISTORY || name == LOCK || name == JOB {
                continue;
            }
            let to = dest.join(&name);
            std::fs::rename(entry.path(), &to).map_err(io(&to))?;
        }
        Ok(Some(dest))
    }

    /// `history/<name>`, or `history/<name>-<n>` with the first free n: two results of one
    /// identity archived within a second must not land in one folder.
    fn free_history_name(&self, name: &str) -> PathBuf {
        let history = self.path.join(HISTORY);
        std::iter::once(history.join(name))
            .chain((2..).map(|n| history.join(format!("{name}-{n}"))))
            .find(|path| !path.exists())
            .expect("an unbounded sequence of names has a free one")
    }

    /// The newest finished result of identity `hash` in the folder's history. Equal
    /// identities mean the same config, data, plugin code and gadms code, so that result is
    /// the one training again would give (on this machine: kernels round differently on
    /// other CPUs and GPUs).
    pub fn finished_in_history(&self, hash: &str) -> Option<PathBuf> {
        let entries = std::fs::read_dir(self.path.join(HISTORY)).ok()?;
        entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter_map(|path| {
                let status = Self::at(path.clone()).status()?;
                (status.hash == hash && status.state == State::Done).then_some((status.updated, path))
            })
            .max()
            .map(|(_, path)| path)
    }

    /// Makes `kept`, a result in the folder's history, the current one again. What the
    /// folder held moves to the history first ([`Self::archive`]), and that place is
    /// returned: restoring loses nothing either.
    pub fn restore(&self, kept: &Path) -> Result<Option<PathBuf>, StoreError> {
        let displaced = self.archive()?;
        for entry in std::fs::read_dir(kept).map_err(io(kept))? {
            let entry = entry.map_err(io(kept))?;
            let to = self.path.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(io(&to))?;
        }
        std::fs::remove_dir(kept).map_err(io(kept))?;
        Ok(displaced)
    }

    /// Takes the run's lock for as long as the returned guard lives, or says who holds it.
    pub fn lock(&self) -> Result<RunLock, LockError> {
        let path = self.path.join(LOCK);
        let Some(mut file) = self.try_lock()? else {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(LockError::Held {
                path,
                holder: holder.trim().to_string(),
            });
        };
        let job = crate::slurm::this_job()
            .map(|j| format!(", SLURM job {j}"))
            .unwrap_or_default();
        let holder = format!(
            "pid {} on {} since {}{job}",
            std::process::id(),
            crate::provenance::host(),
            crate::provenance::now_utc()
        );
        file.set_len(0)
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(io(&path))?;
        Ok(RunLock { _file: file })
    }

    /// Who holds the run's lock now (`pid … on HOST since …`), if another process does.
    pub fn holder(&self) -> Result<Option<String>, StoreError> {
        if !self.is_locked()? {
            return Ok(None);
        }
        let text = std::fs::read_to_string(self.path.join(LOCK)).unwrap_or_default();
        Ok(Some(text.trim().to_string()))
    }

    /// Records that SLURM job `id` (an array task, `1234_5`) is to train `plan`'s run.
    pub fn set_job(&self, id: &str, plan: &RunPlan) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let record = JobRecord {
            id: id.to_string(),
            hash: plan.hash.clone(),
            submitted: unix_now(),
        };
        let text = serde_json::to_string_pretty(&record).expect("a job record serialises");
        write_atomic(&self.path.join(JOB), text.as_bytes())
    }

    /// The SLURM job last given the run, if any (an unreadable record counts as absent).
    pub fn job(&self) -> Option<JobRecord> {
        let text = std::fs::read_to_string(self.path.join(JOB)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether another process holds the run's lock now.
    pub fn is_locked(&self) -> Result<bool, StoreError> {
        Ok(self.path.exists() && self.try_lock()?.is_none())
    }

    /// The lock file, locked, or `None` while another process holds it. A few short retries
    /// let another process's [`Self::is_locked`] probe pass.
    fn try_lock(&self) -> Result<Option<std::fs::File>, StoreError> {
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let path = self.path.join(LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        for _ in 0..5 {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(std::fs::TryLockError::Error(source)) => return Err(StoreError { path, source }),
            }
        }
        Ok(None)
    }

    fn append(&self, file: &str, text: &str) -> Result<(), StoreError> {
        let path = self.path.join(file);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(text.as_bytes()).map_err(io(&path))
    }
}

/// `queries/<dataset>.json`.
#[derive(Serialize, Deserialize)]
struct StoredQueries {
    epoch: u64,
    #[serde(flatten)]
    results: PerQuery,
}

const QUERIES: &str = "queries";

/// A dataset's file name: its name with anything but letters, digits, `-`, `_` and `.` as `_`.
fn queries_file(dataset: &str) -> String {
    let name: String = dataset
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}.json")
}

/// The folder of a run folder that keeps earlier results.
pub const HISTORY: &str = "history";
const LOCK: &str = "lock";
/// The run's SLURM job: it describes the next attempt, not a result, so it is no history.
const JOB: &str = "job.json";

/// `job.json`: the SLURM job given a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// As squeue names it: `<array job>_<task>`.
    pub id: String,
    /// The identity of the run submitted; a record of another identity is stale.
    pub hash: String,
    /// Seconds since the Unix epoch.
    pub submitted: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A held run lock; dropping it (or the process ending, however it ends) releases it.
pub struct RunLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: another gadms-run is training this run ({holder}); it was skipped here", path.display())]
    Held { path: PathBuf, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `experiment.json`: what the spec asked for, in spec order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentIndex {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The variant reports compare the others with.
    #[serde(default)]
    pub baseline: Option<String>,
    /// Which epoch's evaluation the report shows.
    #[serde(default)]
    pub selection: crate::eval::selection::Selection,
    /// The variant whose gain over the baseline is the bound reports measure others by.
    #[serde(default)]
    pub oracle: Option<String>,
    /// The config key path that grades the model's strength (`experiment.strength`).
    #[serde(default)]
    pub strength: Option<String>,
    /// The spec file, as given on the command line.
    pub spec: PathBuf,
    pub runs: Vec<PlannedRun>,
    /// Variant labels and ablation column names for reports.
    #[serde(default)]
    pub presentation: Presentation,
}

/// One run of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRun {
    pub variant: String,
    pub seed: u64,
    pub hash: String,
}

impl ExperimentIndex {
    pub const FILE: &str = "experiment.json";

    pub fn of(spec: &Spec) -> Self {
        Self {
            name: spec.experiment.name.clone(),
            description: spec.experiment.description.clone(),
            baseline: spec.experiment.baseline.clone(),
            selection: spec.experiment.selection,
            oracle: spec.experiment.oracle.clone(),
            strength: spec.experiment.strength.clone(),
            spec: spec.file.clone(),
            runs: spec
                .runs
                .iter()
                .map(|p| PlannedRun {
                    variant: p.variant.clone(),
                    seed: p.seed,
                    hash: p.hash.clone(),
                })
                .collect(),
            presentation: spec.presentation.clone(),
        }
    }

    pub fn write(&self, experiment_dir: &Path) -> Result<(), StoreError> {
        std::fs::create_dir_all(experiment_dir).map_err(io(experiment_dir))?;
        let text = serde_json::to_string_pretty(self).expect("index serialises");
        write_atomic(&experiment_dir.join(Self::FILE), text.as_bytes())
    }

    /// The index of `experiment_dir`, `None` when there is none (a store written before
    /// indexes existed, or a hand-made one).
    pub fn read(experiment_dir: &Path) -> Result<Option<Self>, IndexError> {
        let path = experiment_dir.join(Self::FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(IndexError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| IndexError::Json { path, source })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid experiment index ({source}); delete it and the next `gadms-run run SPEC` writes it anew", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Writes via a temporary file and a rename, so readers never see half a file. The temporary
/// file is this writer's own (process and call), so that processes writing the same file at
/// once (the tasks of a SLURM array writing `experiment.json`) never rename each other's.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gadms-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn plan() -> RunPlan {
        let text = "[experiment]\nname = \"t\"\n\n[base]\ndata.train = { plugin = \"d\" }\n\
                    masking = { plugin = \"m\" }\nlosses = {}\n";
        Spec::parse(Path::new("spec.toml"), text, &[])
            .unwrap()
            .runs
            .remove(0)
    }

    #[test]
    fn a_status_names_what_changed() {
        let mut plan = plan();
        let dir = RunDir::at(scratch("changes"));
        dir.set_status(State::Done, &plan, None).unwrap();
        assert!(dir.status().unwrap().changes(&plan).is_empty(), "the same run");
        plan.parts.insert("model.init".into(), "other".into());
        plan.hash = "rebound".into();
        assert_eq!(dir.status().unwrap().changes(&plan), ["model.init"]);
        std::fs::remove_dir_all(&dir.path).unwrap();
    }

    #[test]
    fn starting_afresh_moves_a_finished_result_to_the_history() {
        let plan = plan();
        let dir = RunDir::at(scratch("archive"));
        dir.begin(&plan).unwrap();
        dir.log_metrics(&serde_json::json!({"kind": "eval", "mAP": 42.0}))
            .unwrap();
        dir.set_status(State::Done, &plan, None).unwrap();
        let updated = dir.status().unwrap().updated;
        dir.begin(&plan).unwrap();
        assert!(dir.metrics().is_empty(), "the new run starts with an empty log");
        let old = RunDir::at(dir.path.join(HISTORY).join(format!("{}-{updated}", plan.hash)));
        assert_eq!(old.metrics()[0]["mAP"], 42.0, "the finished result is kept");
        assert_eq!(old.status().unwrap().state, State::Done);
        std::fs::remove_dir_all(&dir.path).unwrap();
    }

    /// A run of `plan` that logs `map` and ends in `state`.
    fn attempt(dir: &RunDir, plan: &RunPlan, map: f64, state: State) {
        dir.begin(plan).unwrap();
        dir.log_metrics(&serde_json::json!({"kind": "eval", "mAP": map}))
            .unwrap();
        dir.set_status(state, plan, None).unwrap();
    }

    #[test]
    fn a_finished_result_comes_back_from_the_history_and_the_current_one_takes_its_place() {
        let first = plan();
        let second = RunPlan {
            hash: "second".into(),
            ..plan()
        };
        let dir = RunDir::at(scratch("restore"));
        attempt(&dir, &first, 1.0, State::Done);
        // Archived within the same second as the first, most likely: beside it, not over it.
        attempt(&dir, &first, 3.0, State::Failed);
        attempt(&dir, &second, 2.0, State::Done);
        assert_eq!(std::fs::read_dir(dir.path.join(HISTORY)).unwrap().count(), 2);
        assert!(dir.finished_in_history("never ran").is_none());

        let kept = dir
            .finished_in_history(&first.hash)
            .expect("the finished attempt, not the failed one");
        let displaced = dir
            .restore(&kept)
            .unwrap()
            .expect("the current result moves aside");
        assert_eq!(dir.status().unwrap().hash, first.hash);
        assert_eq!(
            dir.metrics()[0]["mAP"],
            1.0,
            "the finished result is current again"
        );
        assert!(!kept.exists(), "it left the history");
        assert_eq!(RunDir::at(displaced.clone()).metrics()[0]["mAP"], 2.0);
        assert_eq!(dir.finished_in_history(&second.hash), Some(displaced));
        assert!(
            dir.finished_in_history(&first.hash).is_none(),
            "only the failed one is left"
        );
        std::fs::remove_dir_all(&dir.path).unwrap();
    }

    #[test]
    fn a_job_record_stays_with_the_run_when_an_earlier_result_moves_to_the_history() {
        let plan = plan();
        let dir = RunDir::at(scratch("job"));
        dir.set_status(State::Done, &plan, None).unwrap();
        dir.set_job("12_3", &plan).unwrap();
        dir.begin(&plan).unwrap();
        let job = dir.job().expect("the job that started the new attempt");
        assert_eq!((job.id.as_str(), job.hash.as_str()), ("12_3", plan.hash.as_str()));
        std::fs::remove_dir_all(&dir.path).unwrap();
    }

    #[test]
    fn writers_of_one_file_at_once_each_write_it_whole() {
        let dir = scratch("atomic");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("experiment.json");
        std::thread::scope(|s| {
            for w in 0..4 {
                let file = &file;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(file, format!("writer {w}").as_bytes()).unwrap();
                    }
                });
            }
        });
        assert!(std::fs::read_to_string(&file).unwrap().starts_with("writer "));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pending_status_is_not_history() {
        let plan = plan();
        let dir = RunDir::at(scratch("pending"));
        dir.set_status(State::Pending, &plan, None).unwrap();
        assert!(dir.archive().unwrap().is_none());
        assert!(!dir.path.join(HISTORY).exists());
        std::fs::remove_dir_all(&dir.path).unwrap();
    }

    #[test]
    fn a_held_lock_names_its_holder_until_released() {
        let dir = RunDir::at(scratch("lock"));
        let held = dir.lock().unwrap();
        let err = dir.lock().err().expect("a second lock is refused");
        assert!(
            err.to_string().contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(dir.is_locked().unwrap());
        let holder = dir.holder().unwrap().expect("held");
        assert!(
            holder.starts_with(&format!("pid {}", std::process::id())),
            "{holder}"
        );
        drop(held);
        assert_eq!(dir.holder().unwrap(), None);
        assert!(!dir.is_locked().unwrap());
        dir.lock().expect("free again");
        std::fs::remove_dir_all(&dir.path).unwrap();
    }
}
