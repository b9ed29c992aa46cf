//! Reading an experiment's run store for a report: the run matrix from `experiment.json`
//! (or, for a store without one, the run folders found), and for each run its state,
//! resolved config, metrics log and token-score samples.

use std::path::{Path, PathBuf};

use super::ReportError;
use crate::eval::selection::{self, Selection, SelectionError};
use crate::eval::token_scores::TokenScores;
use crate::spec::Presentation;
use crate::store::{ExperimentIndex, PlannedRun, RunDir, State};

/// Where one run of the matrix stands, as a report sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Done,
    Failed(String),
    Running,
    Pending,
    /// No folder, or a folder holding a run of another configuration.
    Missing,
}

impl RunState {
    pub fn is_done(&self) -> bool {
        *self == Self::Done
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed(_) => "failed",
            Self::Running => "running",
            Self::Pending => "pending",
            Self::Missing => "missing",
        }
    }
}

/// One run of the matrix.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub variant: String,
    pub seed: u64,
    /// The planned run hash (config and plugin code), or the one in the run's status for a
    /// store without index.
    pub hash: Option<String>,
    pub state: RunState,
    /// The resolved config (`config.toml`), when the run started.
    pub config: Option<toml::Table>,
    /// The records of `metrics.jsonl`.
    pub metrics: Vec<serde_json::Value>,
    pub token_scores: Option<TokenScores>,
}

/// An experiment as stored.
#[derive(Debug, Clone)]
pub struct StoredExperiment {
    pub dir: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub baseline: Option<String>,
    /// Which epoch's evaluation the results show.
    pub selection: Selection,
    /// The variant that masks from the noise labels (`experiment.oracle`).
    pub oracle: Option<String>,
    /// The config key path that grades the model's strength (`experiment.strength`).
    pub strength: Option<String>,
    pub spec: Option<PathBuf>,
    /// Variant labels and ablation column names (the spec's, as the index keeps them).
    pub presentation: Presentation,
    /// In spec order (folder name order without an index).
    pub variants: Vec<String>,
    pub runs: Vec<StoredRun>,
}

impl StoredExperiment {
    pub fn read(dir: &Path) -> Result<Self, ReportError> {
        let index = ExperimentIndex::read(dir)?;
        if index.is_none() && !dir.join("runs").is_dir() {
            return Err(ReportError::NotAStore {
                dir: dir.to_path_buf(),
            });
        }
        let planned = match &index {
            Some(i) => i.runs.iter().map(|r| (r.clone(), true)).collect(),
            None => found_runs(&dir.join("runs"))
                .into_iter()
                .map(|r| (r, false))
                .collect::<Vec<_>>(),
        };
        let runs: Vec<StoredRun> = planned
            .into_iter()
            .map(|(plan, hash_known)| read_run(dir, plan, hash_known))
            .collect();
        let mut variants = Vec::new();
        for r in &runs {
            if !variants.contains(&r.variant) {
                variants.push(r.variant.clone());
            }
        }
        let (name, description, baseline, oracle, strength, selection, spec, presentation) = match index {
            Some(i) => (
                i.name,
                i.description,
                i.baseline,
                i.oracle,
                i.strength,
                i.selection,
                Some(i.spec),
                i.presentation,
            ),
            None => {
                let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
                (
                    folder.unwrap_or_default(),
                    None,
                    None,
                    None,
                    None,
                    Selection::default(),
                    None,
                    Presentation::default(),
                )
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            description,
            baseline,
            selection,
            oracle,
            strength,
            spec,
            presentation,
            variants,
            runs,
        })
    }

    /// The finished runs.
    pub fn done(&self) -> impl Iterator<Item = &StoredRun> {
        self.runs.iter().filter(|r| r.state.is_done())
    }

    /// The validation set that chooses under `best-val`: the first finished run's.
    pub fn validation_set(&self) -> Option<String> {
        self.done()
            .find_map(|r| r.config.as_ref().and_then(selection::validation_set))
    }

    /// The selection protocol in words, for captions.
    pub fn selection_text(&self) -> String {
        self.selection.describe(self.validation_set().as_deref())
    }
}

impl StoredRun {
    /// The `eval` records the experiment's selection picks, one per evaluation set.
    pub fn selected_evaluations(
        &self,
        selection: Selection,
    ) -> Result<Vec<&serde_json::Value>, SelectionError> {
        let evals: Vec<&serde_json::Value> = self.metrics.iter().filter(|r| r["kind"] == "eval").collect();
        let validation = self.config.as_ref().and_then(selection::validation_set);
        selection.choose(&evals, validation.as_deref())
    }
}

/// `runs/<variant>/seed-<n>/` folders, sorted by variant and seed; their hash is read
/// from each status.
fn found_runs(runs: &Path) -> Vec<PlannedRun> {
    let mut found: Vec<PlannedRun> = walkdir::WalkDir::new(runs)
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir())
        .filter_map(|e| {
            let seed = e.file_name().to_str()?.strip_prefix("seed-")?.parse().ok()?;
            let variant = e.path().parent()?.file_name()?.to_str()?.to_string();
            let hash = run_dir(e.path()).status().map(|s| s.hash).unwrap_or_default();
            Some(PlannedRun { variant, seed, hash })
        })
        .collect();
    found.sort_by(|a, b| (&a.variant, a.seed).cmp(&(&b.variant, b.seed)));
    found
}

fn run_dir(path: &Path) -> RunDir {
    RunDir::at(path.to_path_buf())
}

fn read_run(experiment: &Path, plan: PlannedRun, hash_known: bool) -> StoredRun {
    let path = experiment
        .join("runs")
        .join(&plan.variant)
        .join(format!("seed-{}", plan.seed));
    let dir = run_dir(&path);
    let status = dir.status().filter(|s| !hash_known || s.hash == plan.hash);
    let state = match &status {
        None => RunState::Missing,
        Some(s) => match s.state {
            State::Done => RunState::Done,
            State::Failed => RunState::Failed(s.error.clone().unwrap_or_default()),
            State::Running => RunState::Running,
            State::Pending => RunState::Pending,
        },
    };
    let present = status.is_some();
    let config = present
        .then(|| std::fs::read_to_string(path.join("config.toml")).ok())
        .flatten()
        .and_then(|text| text.parse::<toml::Table>().ok());
    let metrics = if present { dir.metrics() } else { Vec::new() };
    StoredRun {
        variant: plan.variant,
        seed: plan.seed,
        hash: (!plan.hash.is_empty()).then_some(plan.hash),
        state,
        config,
        metrics,
        token_scores: present.then(|| TokenScores::read(&path)).flatten(),
    }
}
