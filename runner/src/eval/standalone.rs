//! Weights evaluated on their own (`gadms-run eval`): a zero-shot CLIP or a fine-tuned
//! checkpoint, on a spec's evaluation sets, with the pieces a run evaluates with (the
//! variant's model, its evaluation sets, [`evaluate`]), so the numbers compare with a run's.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{nn, Device};

use super::metrics::RetrievalMetrics;
use super::retrieval::{evaluate, EvalError};
use crate::data::tokenizer::{Tokenizer, TokenizerError};
use crate::model::import::{self, ImportError};
use crate::model::weights::{load_named, Strictness, WeightsError};
use crate::model::{Clip, ModelConfig};
use crate::plugin::PluginSet;
use crate::provenance;
use crate::spec::{RunPlan, Spec};
use crate::store::{write_atomic, StoreError};
use crate::train::setup::SplitLoader;
use crate::train::trainer::{device, RunError};

#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error("{}: no variant `{wanted}`; the spec has: {}", spec.display(), variants.join(", "))]
    UnknownVariant {
        spec: PathBuf,
        wanted: String,
        variants: Vec<String>,
    },
    #[error("{}: {} variants ({}); choose one with `--variant`", spec.display(), variants.len(), variants.join(", "))]
    AmbiguousVariant { spec: PathBuf, variants: Vec<String> },
    #[error("{}: the spec has no evaluation sets; add `data.eval`", spec.display())]
    NoEvalSets { spec: PathBuf },
    #[error("{}: a result of this name exists already; give another `--name` (or remove the folder)", dir.display())]
    Exists { dir: PathBuf },
    #[error("`model`: {0}")]
    Model(String),
    #[error("`train.device`: {0}")]
    Device(String),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Data(#[from] RunError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("{} (evaluation builds only the CLIP encoders, so the file must hold all of them)", .0)]
    Weights(#[from] WeightsError),
    #[error("evaluating `{dataset}`: {source}")]
    Eval {
        dataset: String,
        #[source]
        source: EvalError,
    },
    #[error("cannot digest {}: {source}", file.display())]
    Digest {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The run of `variant` (its first seed: seeds share the model and the evaluation sets), or
/// of the spec's only variant when none is named.
pub fn variant_plan<'a>(spec: &'a Spec, variant: Option<&str>) -> Result<&'a RunPlan, StandaloneError> {
    let variants: Vec<String> = spec
        .runs
        .iter()
        .map(|r| r.variant.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let wanted = match (variant, variants.as_slice()) {
        (Some(v), _) => v.to_string(),
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(StandaloneError::AmbiguousVariant {
                spec: spec.file.clone(),
                variants,
            })
        }
    };
    spec.runs
        .iter()
        .find(|r| r.variant == wanted)
        .ok_or_else(|| StandaloneError::UnknownVariant {
            spec: spec.file.clone(),
            wanted,
            variants,
        })
}

/// `<experiment dir>/eval/<name>`, refused when it exists: an earlier result is never
/// replaced implicitly.
pub fn result_dir(experiment_dir: &Path, name: &str) -> Result<PathBuf, StandaloneError> {
    let dir = experiment_dir.join("eval").join(name);
    if dir.exists() {
        return Err(StandaloneError::Exists { dir });
    }
    Ok(dir)
}

/// Facts of an evaluation (`provenance.json` of its folder): what was evaluated, how, where.
#[derive(Debug, Clone, Serialize)]
pub struct EvalProvenance {
    pub gadms: String,
    pub commit: String,
    pub torch: String,
    pub command: Vec<String>,
    pub host: String,
    pub device: String,
    pub started: String,
    pub spec: PathBuf,
    pub variant: String,
    pub config_hash: String,
    pub weights: PathBuf,
    /// [`crate::digest::file`] of `weights`.
    pub weights_digest: String,
}

/// An evaluation's metrics per evaluation set, in the spec's order, with its facts.
#[derive(Debug)]
pub struct Evaluation {
    pub results: Vec<(String, RetrievalMetrics)>,
    pub provenance: EvalProvenance,
}

impl Evaluation {
    /// Writes `metrics.jsonl` (a run's eval records, at epoch 0) and `provenance.json` into
    /// `dir`, which must not exist yet.
    pub fn write(&self, dir: &Path) -> Result<(), StandaloneError> {
        let store_error = |source| StoreError {
            path: dir.to_path_buf(),
            source,
        };
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(store_error)?;
        }
        std::fs::create_dir(dir).map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => StandaloneError::Exists { dir: dir.into() },
            _ => store_error(e).into(),
        })?;
        let records: String = self
            .results
            .iter()
            .map(|(name, m)| format!("{}\n", m.record(0, name)))
            .collect();
        write_atomic(&dir.join("metrics.jsonl"), records.as_bytes())?;
        let facts = serde_json::to_string_pretty(&self.provenance).expect("provenance serialises");
        Ok(write_atomic(&dir.join("provenance.json"), facts.as_bytes())?)
    }
}

/// Evaluates `weights` (any format `model.init` takes) with the model of `plan` on its
/// evaluation sets. `note` receives lines about the data (skipped unreadable images).
pub fn evaluate_weights(
    spec: &Spec,
    plan: &RunPlan,
    plugins: &PluginSet,
    weights: &Path,
    note: &dyn Fn(String) -> Result<(), RunError>,
) -> Result<Evaluation, StandaloneError> {
    let cfg = &plan.config;
    if cfg.data.eval.is_empty() {
        return Err(StandaloneError::NoEvalSets {
            spec: spec.file.clone(),
        });
    }
    let model_cfg = cfg.model.resolve().map_err(StandaloneError::Model)?;
    let device = device(&cfg.train.device).map_err(StandaloneError::Device)?;
    if cfg.train.threads > 0 {
        tch::set_num_threads(cfg.train.threads as i32);
    }
    let started = provenance::now_utc();
    let weights_digest = crate::digest::file(weights).map_err(|source| StandaloneError::Digest {
        file: weights.into(),
        source,
    })?;
    let vs = nn::VarStore::new(device);
    let clip = load_clip(&vs, &model_cfg, weights)?;
    let tokenizer = Tokenizer::clip()?;
    let base_dir = spec.dir();
    let loader = SplitLoader {
        plugins,
        base_dir: &base_dir,
        tokenizer: &tokenizer,
        context: model_cfg.context_length as usize,
        note,
    };
    let results = loader
        .eval_sets(&cfg.data.eval)?
        .into_iter()
        .map(|set| {
            evaluate(&clip, &set.split, device, cfg.train.eval_batch_size)
                .map(|(m, _)| (set.name.clone(), m))
                .map_err(|source| StandaloneError::Eval {
                    dataset: set.name,
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Evaluation {
        results,
        provenance: EvalProvenance {
            gadms: provenance::build().into(),
            commit: gadms_build_info::COMMIT.into(),
            torch: provenance::torch_version(),
            command: provenance::command_line(),
            host: provenance::host(),
            device: device_name(device),
            started,
            spec: spec.file.clone(),
            variant: plan.variant.clone(),
            config_hash: plan.config_hash.clone(),
            weights: weights.into(),
            weights_digest,
        },
    })
}

/// The CLIP encoders of `model` on `vs`, with every parameter from `file`; the file's other
/// tensors (a checkpoint's loss heads) play no part in retrieval and are ignored.
fn load_clip(vs: &nn::VarStore, model: &ModelConfig, file: &Path) -> Result<Clip, StandaloneError> {
    let clip = Clip::new(&vs.root(), model);
    let weights = import::read_weights(file, model)?;
    let strictness = Strictness {
        allow_missing: false,
        allow_unexpected: true,
    };
    load_named(vs, &weights.tensors, file, strictness)?;
    Ok(clip)
}

fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}
