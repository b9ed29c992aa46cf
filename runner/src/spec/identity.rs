//! A run's identity: everything that can change its result, and nothing else. Stored
//! results are reused only for the same identity; a run whose identity changed runs again,
//! and its old result moves to the run folder's history.
//!
//! The identity is the hash of named parts, so that a changed run can say what changed:
//! - `config`: the resolved run configuration with its seed, without the keys of
//!   [`EXECUTION_KEYS`] (how a run executes, not what it computes), without `model.init`
//!   and without the datasets' `root` (their contents count instead of their paths, so
//!   moving data or weights keeps the runs);
//! - `model.init`: the digest of the weights file, or the identity of the run it comes from;
//! - `data.train`, `data.eval[i]`: the digest of the files each dataset's records come from
//!   (its annotation file; generated datasets have none, their options say everything);
//! - `plugin code`: kind, name and SHA-256 of each plugin library the run uses;
//! - `gadms code`: the version and source digest of gadms itself, and libtorch's version
//!   ([`crate::provenance::code`]); not the commit, which docs and tests change too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::Value;

use super::config::{CheckpointChoice, ComponentConfig, InitSource, RunConfig, RunRef};
use super::{hash_of, RunPlan, Spec, SpecError};
use crate::plugin::{PluginCode, PluginSet};

/// Keys that cannot change what a run computes, left out of its identity: data-loading
/// threads, libtorch threads and the evaluation batch (they change at most the order of
/// floating-point sums), the logging cadence, which bests are kept as checkpoints, and the
/// device. The device is placement as
/// `--devices` decides it; a run on another device computes the same experiment up to
/// rounding, and `provenance.json` records where each run trained.
pub const EXECUTION_KEYS: &[&str] = &[
    "train.workers",
    "train.threads",
    "train.eval_batch_size",
    "train.log_every",
    "train.device",
    "train.keep_best",
];

/// The part of a resolved configuration (seed included) that the `config` part hashes.
pub fn result_config(resolved: &Value) -> Value {
    let mut value = resolved.clone();
    for key in EXECUTION_KEYS.iter().chain(&["model.init"]) {
        remove_path(&mut value, key);
    }
    if let Some(Value::Table(data)) = value.get_mut("data") {
        if let Some(Value::Table(train)) = data.get_mut("train") {
            train.remove("root");
        }
        if let Some(Value::Array(evals)) = data.get_mut("eval") {
            for e in evals.iter_mut().filter_map(Value::as_table_mut) {
                e.remove("root");
            }
        }
    }
    value
}

fn remove_path(value: &mut Value, path: &str) {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (parents, last),
        None => ("", path),
    };
    let mut table = value;
    for key in parents.split('.').filter(|k| !k.is_empty()) {
        match table.get_mut(key) {
            Some(inner) => table = inner,
            None => return,
        }
    }
    if let Value::Table(t) = table {
        t.remove(last);
    }
}

/// The run another spec's `model.init` names, resolved.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The upstream spec, as a path from the working folder.
    pub spec: PathBuf,
    pub variant: String,
    pub seed: u64,
    pub checkpoint: CheckpointChoice,
    /// The upstream run's identity.
    pub hash: String,
    /// Its run folder.
    pub run_dir: PathBuf,
    /// Its configuration (the model must match this run's).
    pub config: RunConfig,
}

impl Upstream {
    /// Whether the upstream run has finished with its current identity. A finished run whose
    /// recipe changed since is not: `run` trains it again before its weights are read.
    pub fn is_done(&self) -> bool {
        crate::store::RunDir::at(self.run_dir.clone())
            .status()
            .is_some_and(|s| s.hash == self.hash && s.state == crate::store::State::Done)
    }

    /// The weights file this run starts from.
    pub fn weights(&self) -> PathBuf {
        self.run_dir
            .join(self.checkpoint.folder())
            .join("model.safetensors")
    }

    /// `variant `V` seed S of SPEC`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "variant `{}` seed {} of {} ({})",
            self.variant,
            self.seed,
            self.spec.display(),
            self.checkpoint.describe()
        )
    }
}

/// What binding a spec's runs needs: the plugins, and the specs being bound above this one
/// (to refuse an init chain that loops).
pub(super) struct Binder<'a> {
    pub plugins: &'a PluginSet,
    pub chain: Vec<PathBuf>,
}

/// How deep `model.init` may chain runs of other specs.
const MAX_CHAIN: usize = 8;

impl Binder<'_> {
    /// Computes the identity of every run of `spec`.
    pub fn bind(&mut self, spec: &mut Spec) -> Result<(), SpecError> {
        let here = std::fs::canonicalize(&spec.file).unwrap_or_else(|_| spec.file.clone());
        if self.chain.contains(&here) || self.chain.len() >= MAX_CHAIN {
            return Err(SpecError::Structure {
                file: spec.file.clone(),
                message: format!(
                    "`model.init` chains runs of other specs in a loop or deeper than {MAX_CHAIN}: {}",
                    self.chain
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" → ")
                ),
            });
        }
        self.chain.push(here);
        let dir = spec.dir();
        for plan in &mut spec.runs {
            plan.upstream = match &plan.config.model.init {
                Some(InitSource::Run(r)) => Some(Box::new(self.upstream(&spec.file, &dir, plan, r)?)),
                _ => None,
            };
            plan.code = crate::components::code(self.plugins, &plan.config);
            plan.parts = parts(plan, self.plugins, &dir);
            plan.hash = hash_of(&plan.parts);
        }
        self.chain.pop();
        Ok(())
    }

    fn upstream(
        &mut self,
        file: &Path,
        dir: &Path,
        plan: &RunPlan,
        r: &RunRef,
    ) -> Result<Upstream, SpecError> {
        let error = |message: String| SpecError::Init {
            file: file.to_path_buf(),
            variant: plan.variant.clone(),
            message,
        };
        let spec_file = super::tidy(&dir.join(&r.spec));
        let mut upstream = Spec::load(&spec_file, &[]).map_err(|e| error(e.to_string()))?;
        self.bind(&mut upstream)?;
        let found = upstream
            .runs
            .iter()
            .find(|p| p.variant == r.variant && p.seed == r.seed)
            .ok_or_else(|| {
                error(format!(
                    "{} has no run of variant `{}` with seed {}; its runs: {}",
                    spec_file.display(),
                    r.variant,
                    r.seed,
                    upstream
                        .runs
                        .iter()
                        .map(|p| format!("`{}` seed {}", p.variant, p.seed))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        Ok(Upstream {
            spec: spec_file,
            variant: found.variant.clone(),
            seed: found.seed,
            checkpoint: r.checkpoint.clone(),
            hash: found.hash.clone(),
            run_dir: crate::store::RunDir::new(&upstream.output_dir(), found).path,
            config: found.config.clone(),
        })
    }
}

/// The named parts of a bound plan's identity.
fn parts(plan: &RunPlan, plugins: &PluginSet, dir: &Path) -> BTreeMap<String, String> {
    let mut parts = BTreeMap::new();
    parts.insert("config".to_string(), plan.config_hash.clone());
    match (&plan.config.model.init, &plan.upstream) {
        (_, Some(up)) => {
            parts.insert(
                "model.init".into(),
                format!("run {} {}", up.hash, up.checkpoint.folder()),
            );
        }
        (Some(InitSource::File(path)), None) => {
            parts.insert("model.init".into(), file_part(&dir.join(path)));
        }
        _ => {}
    }
    for (key, dataset) in datasets(&plan.config) {
        if let Some(digest) = dataset_part(plugins, &key, dataset, dir) {
            parts.insert(key, digest);
        }
    }
    parts.insert("plugin code".into(), code_part(&plan.code));
    parts.insert("gadms code".into(), crate::provenance::code());
    parts
}

/// Each dataset of a run with its spec key.
fn datasets(config: &RunConfig) -> impl Iterator<Item = (String, &ComponentConfig)> {
    std::iter::once(("data.train".to_string(), &config.data.train)).chain(
        config
            .data
            .eval
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("data.eval[{i}]"), e)),
    )
}

/// A file's digest; a file that cannot be read gets a part that says so, and the checks
/// before training stop on it with the reason.
fn file_part(path: &Path) -> String {
    crate::digest::file(path).unwrap_or_else(|e| format!("unreadable ({e})"))
}

/// The digest of the files a dataset's records come from (`None` for a dataset that has
/// none, like generated ones). A dataset that cannot be opened gets a part that says so.
fn dataset_part(plugins: &PluginSet, key: &str, config: &ComponentConfig, dir: &Path) -> Option<String> {
    let files = match crate::components::dataset(plugins, key, config, dir) {
        Ok(dataset) => dataset.source_files(),
        Err(e) => return Some(format!("unopened ({e})")),
    };
    if files.is_empty() {
        return None;
    }
    // File names (not folders) keep the digest independent of where the data lies.
    let digests: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, file_part(f))
        })
        .collect();
    Some(hash_of(&digests))
}

/// The plugin libraries (kind, name and digest, sorted; not their paths, so that moving a
/// plugin folder keeps the runs).
pub(super) fn code_part(code: &[PluginCode]) -> String {
    #[derive(Serialize)]
    struct Code<'a>(&'a str, &'a str, &'a str);
    hash_of(
        &code
            .iter()
            .map(|c| Code(c.kind, &c.name, &c.sha256))
            .collect::<Vec<_>>(),
    )
}

/// The parts of `new` that differ from `old` (both identities' parts), by name, for the
/// message of a run that runs again.
pub fn changed_parts(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut names: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}
