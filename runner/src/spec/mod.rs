//! Experiment specs: a TOML file with `[experiment]`, a `[base]` run configuration and
//! `[[variant]]` tables deep-merged over it, and an optional `[slurm]` table of what one run
//! asks a SLURM cluster for (no part of a run's identity). Expanding a spec gives one
//! [`RunPlan`] per variant × seed, each with the fully resolved configuration and its hash;
//! once the plugins are loaded, [`Spec::bind`] completes each run's identity (see
//! [`identity`]).

mod config;
mod env;
pub mod identity;
mod merge;
mod sweep;

use std::collections::BTreeMap;

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Value;

use crate::plugin::{PluginCode, PluginSet};

pub use config::{
    CheckpointChoice, ComponentConfig, DataConfig, InitSource, KeepBest, LossConfig, ModelSpec, RunConfig,
    RunRef, TrainConfig, DATASET_RUNNER_KEYS,
};
pub use identity::Upstream;
pub use merge::{merge, value_at};
pub use sweep::name_without;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read spec {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("{}{}: key `{path}`: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        path: String,
        message: String,
    },
    #[error("{}: {message}", file.display())]
    Structure { file: PathBuf, message: String },
    #[error("{}: variant `{variant}`: `model.init`: {message}", file.display())]
    Init {
        file: PathBuf,
        variant: String,
        message: String,
    },
    #[error("{}: --set `{assignment}`: {message}", file.display())]
    Override {
        file: PathBuf,
        assignment: String,
        message: String,
    },
}

/// `experiment.strength` must be set in every run: a run without it would have no place on
/// the report's strength axis.
fn check_strength(
    file: &Path,
    text: &str,
    experiment: &Experiment,
    runs: &[RunPlan],
) -> Result<(), SpecError> {
    let Some(path) = &experiment.strength else {
        return Ok(());
    };
    let unset = runs
        .iter()
        .find(|r| r.resolved.as_table().and_then(|t| value_at(t, path)).is_none());
    match unset {
        None => Ok(()),
        Some(run) => Err(SpecError::Invalid {
            file: file.into(),
            line: line_of(text, "strength"),
            path: "experiment.strength".into(),
            message: format!(
                "variant `{}` sets no `{path}`; name a key every variant sets (e.g. `model.init.variant`)",
                run.variant
            ),
        }),
    }
}

/// `experiment.baseline` and `experiment.oracle` must each name a variant (a swept one by
/// its full name): a misspelt name would silently leave the report without its comparison.
fn check_named_variants(
    file: &Path,
    text: &str,
    experiment: &Experiment,
    names: &std::collections::BTreeSet<String>,
) -> Result<(), SpecError> {
    for (key, named) in [("baseline", &experiment.baseline), ("oracle", &experiment.oracle)] {
        if let Some(name) = named.as_ref().filter(|n| !names.contains(*n)) {
            let known: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            return Err(SpecError::Invalid {
                file: file.into(),
                line: line_of(text, key),
                path: format!("experiment.{key}"),
                message: format!("`{name}` is no variant; the variants are {}", known.join(", ")),
            });
        }
    }
    Ok(())
}

/// `[experiment]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Where `<name>/runs/…` goes, relative to the spec's folder.
    #[serde(default = "default_output")]
    pub output: PathBuf,
    /// Extra plugin folders, relative to the spec's folder.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// The variant other variants are compared with in reports.
    #[serde(default)]
    pub baseline: Option<String>,
    /// The variant whose masking knows the noise (`scorer = "oracle"`): reports give each
    /// variant's mAP gain over the baseline as a share of the oracle's gain.
    #[serde(default)]
    pub oracle: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Which epoch the report's numbers come from (last, best on validation, or each test
    /// set's best: the paper's protocol).
    #[serde(default)]
    pub selection: crate::eval::selection::Selection,
    /// A config key path whose value grades the model's strength (e.g. `model.init.variant`
    /// swept over runs of differently trained models): the report then draws the noise-token
    /// AUROC of the first epoch's scores against it, the values in spec order, one line per
    /// variant name with the value left out.
    #[serde(default)]
    pub strength: Option<String>,
}

/// How reports name what a spec defines: a display label per variant (variants of several
/// experiments with the same label share a row; TeX is allowed, the LaTeX tables print it
/// as written) from `[[variant]] label`, and names for the ablation table's config keys
/// from `[report.columns]` (`"masking.noise_mask" = "SDM noise mask"`). Neither is part of
/// a run's identity: renaming never retrains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Presentation {
    /// Variant name → label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Dotted config key → column name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
}

/// `[report]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportTable {
    #[serde(default)]
    columns: BTreeMap<String, String>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

fn default_output() -> PathBuf {
    PathBuf::from("reports")
}

/// One run of an experiment: a variant with a seed.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub variant: String,
    pub seed: u64,
    pub config: RunConfig,
    /// The resolved configuration as TOML (written into the run folder).
    pub resolved: Value,
    /// First 16 hex digits of the SHA-256 of the part of the configuration that can change
    /// a result ([`identity::result_config`]).
    pub config_hash: String,
    /// The code of the plugins the run uses (empty until [`Spec::bind`]).
    pub code: Vec<PluginCode>,
    /// The run `model.init` names, when it names one (resolved by [`Spec::bind`]).
    pub upstream: Option<Box<Upstream>>,
    /// The named parts of the identity (only `config` until [`Spec::bind`]).
    pub parts: BTreeMap<String, String>,
    /// The run's identity: the hash of `parts`. Stored results are reused only for the
    /// same identity.
    pub hash: String,
}

impl RunPlan {
    /// The weights file the run starts from, if any: `model.init`'s file (relative to
    /// `base_dir`, the spec's folder) or the checkpoint of the run it names.
    pub fn init_file(&self, base_dir: &Path) -> Option<PathBuf> {
        match (&self.config.model.init, &self.upstream) {
            (_, Some(up)) => Some(up.weights()),
            (Some(InitSource::File(path)), None) => Some(base_dir.join(path)),
            _ => None,
        }
    }
}

/// A parsed spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub file: PathBuf,
    pub experiment: Experiment,
    /// `[slurm]`: the resources of one run's task on a cluster.
    pub slurm: crate::slurm::Resources,
    pub runs: Vec<RunPlan>,
    pub presentation: Presentation,
    /// The spec's text, to point errors found later (plugin options) at a line.
    text: String,
}

impl Spec {
    /// Reads, merges, overrides (`key.path=value`) and validates the types of a spec.
    /// Plugin names and options are checked later against the loaded plugins.
    pub fn load(file: &Path, overrides: &[String]) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(file).map_err(|source| SpecError::Read {
            file: file.into(),
            source,
        })?;
        Self::parse(file, &text, overrides)
    }

    /// What [`Spec::load`] does to a spec's text, reading `${env:NAME}` from the process
    /// environment.
    pub fn parse(file: &Path, text: &str, overrides: &[String]) -> Result<Self, SpecError> {
        Self::parse_with_env(file, text, overrides, &|name| std::env::var(name).ok())
    }

    /// [`Spec::parse`] with the environment given as a lookup (tests pass a fixed one).
    fn parse_with_env(
        file: &Path,
        text: &str,
        overrides: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SpecError> {
        let mut root: toml::Table = text.parse().map_err(|e: toml::de::Error| SpecError::Syntax {
            file: file.into(),
            message: e.to_string(),
        })?;
        interpolate_env(file, text, &mut root, env)?;
        let structure = |message: String| SpecError::Structure {
            file: file.into(),
            message,
        };
        for key in root.keys() {
            if !["experiment", "base", "variant", "report", "slurm"].contains(&key.as_str()) {
                return Err(SpecError::Invalid {
                    file: file.into(),
                    line: line_of(text, key),
                    path: key.clone(),
                    message: "unknown top-level table; expected `experiment`, `base`, `variant`, `report` or `slurm`"
                        .into(),
                });
            }
        }
        // `--set experiment.key=value` and `--set slurm.key=value` change those tables; any
        // other key path is relative to the run configuration.
        let (table_overrides, overrides): (Vec<&String>, Vec<&String>) = overrides
            .iter()
            .partition(|o| o.starts_with("experiment.") || o.starts_with("slurm."));
        let experiment_table = root
            .remove("experiment")
            .ok_or_else(|| structure("missing `[experiment]` table".into()))?;
        let experiment_table = overridden(file, "experiment", experiment_table, &table_overrides)?;
        let experiment: Experiment = deserialize(file, text, "experiment", experiment_table)?;
        let slurm_table = root
            .remove("slurm")
            .unwrap_or_else(|| Value::Table(Default::default()));
        let slurm_table = overridden(file, "slurm", slurm_table, &table_overrides)?;
        let slurm: crate::slurm::Resources = deserialize(file, text, "slurm", slurm_table)?;
        slurm.check().map_err(|message| SpecError::Invalid {
            file: file.into(),
            line: line_of(text, "directives"),
            path: "slurm.directives".into(),
            message,
        })?;
        if experiment.seeds.is_empty() {
            return Err(structure(
                "`experiment.seeds` is empty; give at least one seed".into(),
            ));
        }
        let base = root
            .remove("base")
            .unwrap_or_else(|| Value::Table(Default::default()));
        let variants = match root.remove("variant") {
            None => vec![toml::Table::from_iter([(
                "name".to_string(),
                Value::String("base".into()),
            )])],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Table(t) => Ok(t),
                    _ => Err(structure("each `[[variant]]` must be a table".into())),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(structure(
                    "`variant` must be an array of tables (`[[variant]]`)".into(),
                ))
            }
        };

        let report: ReportTable = match root.remove("report") {
            Some(table) => deserialize(file, text, "report", table)?,
            None => ReportTable::default(),
        };
        let mut presentation = Presentation {
            labels: BTreeMap::new(),
            columns: report.columns,
        };
        let mut runs = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, mut v) in variants.into_iter().enumerate() {
            let name = match v.remove("name") {
                Some(Value::String(s)) if !s.is_empty() => s,
                _ => {
                    return Err(structure(format!(
                        "variant #{} has no `name` (a non-empty string)",
                        i + 1
                    )))
                }
            };
            let label = match v.remove("label") {
                None => None,
                Some(Value::String(s)) if !s.is_empty() => Some(s),
                Some(_) => {
                    return Err(structure(format!(
                        "variant `{name}`: `label` must be a non-empty string (its name in reports)"
                    )))
                }
            };
            let points =
                sweep::points(v.remove("sweep")).map_err(|e| structure(format!("variant `{name}`: {e}")))?;
            for point in points {
                if let Some(label) = &label {
                    presentation
                        .labels
                        .insert(sweep::name(&name, &point), sweep::name(label, &point));
                }
                let name = sweep::name(&name, &point);
                if !names.insert(name.clone()) {
                    return Err(structure(format!(
                        "two variants are named `{name}`; names identify run folders"
                    )));
                }
                let mut resolved = base.clone();
                merge(&mut resolved, Value::Table(v.clone()));
                for (path, value) in point {
                    merge::set_path(&mut resolved, &path, value)
                        .map_err(|e| structure(format!("variant `{name}`: sweep key `{path}`: {e}")))?;
                }
                runs.extend(Self::plans(file, text, &experiment, &overrides, name, resolved)?);
            }
        }
        check_named_variants(file, text, &experiment, &names)?;
        check_strength(file, text, &experiment, &runs)?;
        Ok(Self {
            file: file.into(),
            experiment,
            slurm,
            runs,
            presentation,
            text: text.to_string(),
        })
    }

    /// `file:line` of the first line setting `key` (e.g. an option a plugin rejected), or
    /// the file alone.
    /// A key path (`losses.mtp`, `data.eval[1]`) is found by its last key when the spec
    /// writes it as a table entry.
    pub fn locate(&self, key: &str) -> String {
        let leaf = key
            .rsplit('.')
            .next()
            .unwrap_or(key)
            .split('[')
            .next()
            .unwrap_or(key);
        match line_of(&self.text, key).or_else(|| line_of(&self.text, leaf)) {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    /// The runs of one resolved variant: overrides applied, typed, one per seed.
    fn plans(
        file: &Path,
        text: &str,
        experiment: &Experiment,
        overrides: &[&String],
        name: String,
        mut resolved: Value,
    ) -> Result<Vec<RunPlan>, SpecError> {
        for &assignment in overrides {
            // Variants may differ in what an override selects (`data.eval[name]`).
            merge::apply_override(&mut resolved, assignment).map_err(|message| SpecError::Override {
                file: file.into(),
                assignment: assignment.clone(),
                message: format!("{message} (in variant `{name}`)"),
            })?;
        }
        let config: RunConfig =
            deserialize(file, text, "base", resolved.clone()).map_err(|e| with_variant(e, &name))?;
        let plans = experiment.seeds.iter().map(|&seed| {
            let mut with_seed = resolved.clone();
            if let Value::Table(t) = &mut with_seed {
                t.insert("seed".into(), Value::Integer(seed as i64));
            }
            let config_hash = hash_of(&identity::result_config(&with_seed));
            let parts = BTreeMap::from([("config".to_string(), config_hash.clone())]);
            RunPlan {
                variant: name.clone(),
                seed,
                config: config.clone(),
                resolved: with_seed,
                hash: hash_of(&parts),
                parts,
                config_hash,
                code: Vec::new(),
                upstream: None,
            }
        });
        Ok(plans.collect())
    }

    /// Completes each run's identity with what the plugins and the files tell: the digests
    /// of its input files and datasets, the code of its plugins and of gadms, and the
    /// identity of the run its `model.init` names (that spec is read and bound too). Call
    /// it once the plugins are loaded, before anything compares run hashes; every process
    /// that loads the same libraries (device children, ranks) computes the same hashes.
    pub fn bind(&mut self, plugins: &PluginSet) -> Result<(), SpecError> {
        identity::Binder {
            plugins,
            chain: Vec::new(),
        }
        .bind(self)
    }

    /// The runs that the selected runs' `model.init` names, each once, in spec order.
    pub fn upstreams<'a>(&'a self, selected: impl Fn(&RunPlan) -> bool + 'a) -> Vec<&'a Upstream> {
        let mut out: Vec<&Upstream> = Vec::new();
        for up in self
            .runs
            .iter()
            .filter(|p| selected(p))
            .filter_map(|p| p.upstream.as_deref())
        {
            if !out.iter().any(|o| o.hash == up.hash) {
                out.push(up);
            }
        }
        out
    }

    /// Folder of the spec file; relative paths in the spec are resolved against it.
    pub fn dir(&self) -> PathBuf {
        self.file.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// `<output>/<experiment name>`, without `..` steps that can be dropped, so messages show
    /// the folder as a reader would type it.
    pub fn output_dir(&self) -> PathBuf {
        tidy(
            &self
                .dir()
                .join(&self.experiment.output)
                .join(&self.experiment.name),
        )
    }

    /// The variant names, in spec order.
    pub fn variants(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for r in &self.runs {
            if !seen.contains(&r.variant.as_str()) {
                seen.push(r.variant.as_str());
            }
        }
        seen
    }
}

/// Substitutes `${env:…}` in every string of the spec (see [`env`]); an error names the key
/// path as the spec writes it (`base.data.eval[1].root`, `variant[0].data.train.root`) and
/// the line of the interpolation.
fn interpolate_env(
    file: &Path,
    text: &str,
    root: &mut toml::Table,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SpecError> {
    for (key, value) in root.iter_mut() {
        env::interpolate(value, key, lookup).map_err(|f| SpecError::Invalid {
            file: file.into(),
            // The string's line; one written with TOML escapes is not found.
            line: text.lines().position(|l| l.contains(&f.text)).map(|i| i + 1),
            path: f.path,
            message: f.error.message(),
        })?;
    }
    Ok(())
}

/// `table` (the spec's `[name]`) with the `--set name.key=value` among `overrides` applied.
fn overridden(file: &Path, name: &str, mut table: Value, overrides: &[&String]) -> Result<Value, SpecError> {
    let prefix = format!("{name}.");
    for assignment in overrides.iter().filter(|o| o.starts_with(&prefix)) {
        merge::apply_override(&mut table, &assignment[prefix.len()..]).map_err(|message| {
            SpecError::Override {
                file: file.into(),
                assignment: assignment.to_string(),
                message,
            }
        })?;
    }
    Ok(table)
}

fn with_variant(e: SpecError, variant: &str) -> SpecError {
    match e {
        SpecError::Invalid {
            file,
            line,
            path,
            message,
        } => SpecError::Invalid {
            file,
            line,
            path,
            message: format!("{message} (in variant `{variant}`)"),
        },
        other => other,
    }
}

/// Deserialises `value` into `T`, reporting the full key path (`train.epochs`) and the line
/// where that key appears in the spec text, when it can be found.
fn deserialize<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    prefix: &str,
    value: Value,
) -> Result<T, SpecError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            prefix.to_string()
        } else {
            format!("{prefix}.{inner}")
        };
        let last = inner.rsplit('.').next().unwrap_or(&inner).to_string();
        SpecError::Invalid {
            file: file.into(),
            line: line_of(text, &last),
            path,
            message: e.into_inner().message().trim().to_string(),
        }
    })
}

/// 1-based line of the first `key =` or `[..key]` in the spec text.
fn line_of(text: &str, key: &str) -> Option<usize> {
    if key.is_empty() || key == "." {
        return None;
    }
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            let bare = t.trim_start_matches('[').trim_start_matches('"');
            (t.starts_with(key) && t[key.len()..].trim_start().starts_with('='))
                || (t.starts_with('[') && bare.trim_end_matches(']').rsplit('.').next() == Some(key))
                || t.contains(&format!(" {key} ="))
                || t.contains(&format!("{{{key} ="))
        })
        .map(|i| i + 1)
}

/// Canonical hash of a resolved configuration or an identity (tables are sorted maps, so
/// equal configs serialise identically).
fn hash_of(value: &impl Serialize) -> String {
    let canonical = serde_json::to_string(value).expect("TOML values and strings serialise to JSON");
    let mut hex = crate::digest::sha256_hex(canonical.as_bytes());
    hex.truncate(16);
    hex
}

/// `a/b/../../c` → `c`, lexically (links are not resolved).
fn tidy(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
