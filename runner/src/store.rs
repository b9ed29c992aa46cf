//! The run store: one folder per run, `<output>/<experiment>/runs/<variant>/seed-<n>/`,
//! holding the resolved config, the plugin libraries it runs with, a status written
//! atomically, a metrics log that Polars reads as NDJSON (`pl.read_ndjson`), and a
//! human-readable log; and beside `runs/`, `experiment.json`, the run matrix of the spec,
//! so reports know which runs should exist without the spec at hand.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::{RunPlan, Spec};

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
    /// The identity (config and plugin code) of the run the status belongs to.
    pub hash: String,
    /// The hash of the config alone, which tells a run redone for new plugin code from one
    /// redone for a new config.
    #[serde(default)]
    pub config_hash: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// Seconds since the Unix epoch.
    pub updated: u64,
}

impl Status {
    /// Whether the status is of a run with `plan`'s config made with other plugin code. A
    /// status written before plugin code was part of a run's identity has only `hash`, the
    /// config hash then.
    pub fn code_changed(&self, plan: &RunPlan) -> bool {
        self.hash != plan.hash && self.config_hash.as_ref().unwrap_or(&self.hash) == &plan.config_hash
    }
}

/// One run's folder.
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(experiment_dir: &Path, plan: &RunPlan) -> Self {
        Self {
            path: experiment_dir
                .join("runs")
                .join(&plan.variant)
                .join(format!("seed-{}", plan.seed)),
        }
    }

    /// The stored status, if any (an unreadable one counts as absent).
    pub fn status(&self) -> Option<Status> {
        let text = std::fs::read_to_string(self.path.join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Starts a run: creates the folder, writes the resolved config, the plugin libraries
    /// the run uses with their digests (`plugins.json`, to see what a run was made with) and
    /// a fresh metrics log.
    pub fn begin(&self, plan: &RunPlan) -> Result<(), StoreError> {
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
        self.set_status(State::Running, plan, None)
    }

    /// Records the state of `plan`'s run.
    pub fn set_status(&self, state: State, plan: &RunPlan, error: Option<String>) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let updated = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let status = Status {
            state,
            hash: plan.hash.clone(),
            config_hash: Some(plan.config_hash.clone()),
            error,
            updated,
        };
        let text = serde_json::to_string_pretty(&status).expect("status serialises");
        write_atomic(&self.path.join("status.json"), text.as_bytes())
    }

    /// Appends one record to `metrics.jsonl`.
    pub fn log_metrics(&self, record: &serde_json::Value) -> Result<(), StoreError> {
        self.append("metrics.jsonl", &format!("{record}\n"))
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

    /// Appends a line to `run.log`.
    pub fn log_line(&self, line: &str) -> Result<(), StoreError> {
        self.append("run.log", &format!("{line}\n"))
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

/// `experiment.json`: what the spec asked for, in spec order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentIndex {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The variant reports compare the others with.
    #[serde(default)]
    pub baseline: Option<String>,
    /// The spec file, as given on the command line.
    pub spec: PathBuf,
    pub runs: Vec<PlannedRun>,
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

/// Writes via a temporary file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_tells_new_plugin_code_from_a_new_config() {
        let text = "[experiment]\nname = \"t\"\n\n[base]\ndata.train = { plugin = \"d\" }\n\
                    masking = { plugin = \"m\" }\nlosses = {}\n";
        let spec = |text: &str| Spec::parse(Path::new("spec.toml"), text, &[]).unwrap();
        let mut plan = spec(text).runs.remove(0);
        let status = |hash: &str, config_hash: Option<&str>| Status {
            state: State::Done,
            hash: hash.into(),
            config_hash: config_hash.map(Into::into),
            error: None,
            updated: 0,
        };
        let old = status(&plan.hash, Some(&plan.config_hash));
        assert!(!old.code_changed(&plan), "the same run");
        plan.hash = "rebound".into();
        assert!(old.code_changed(&plan));
        assert!(
            status(&plan.config_hash, None).code_changed(&plan),
            "a status of before plugin code counted holds the config hash"
        );
        let other = spec(&text.replace("\"d\"", "\"e\"")).runs.remove(0);
        assert!(!old.code_changed(&other), "another config");
    }
}
