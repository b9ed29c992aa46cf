//! The typed run configuration a spec resolves to. Keys that belong to a plugin (its
//! options) are kept as TOML and handed to the plugin, which validates them itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::images::Augment;
use crate::model::ModelConfig;
use crate::train::optim::AdamConfig;
use crate::train::precision::PrecisionChoice;

/// Everything one run needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub model: ModelSpec,
    pub data: DataConfig,
    #[serde(default)]
    pub train: TrainConfig,
    pub masking: ComponentConfig,
    /// Loss name → weight and options. The name is the plugin unless `plugin` is given.
    pub losses: BTreeMap<String, LossConfig>,
    /// Set per run by the expansion (not written in specs).
    #[serde(default)]
    pub seed: u64,
}

/// `[model]`: a preset plus any field of [`ModelConfig`] to override.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Weights to start from: a file in any format `model::import` reads (gadms or Hugging
    /// Face safetensors, OpenAI's TorchScript `ViT-B-16.pt`, an IRRA/GA-DMS `torch.save`
    /// checkpoint), or a run of another spec.
    #[serde(default)]
    pub init: Option<InitSource>,
    #[serde(flatten)]
    pub overrides: toml::Table,
}

/// Where `model.init` comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a weights file (a path), or a run of another spec: { spec = \"file.toml\", variant = \"…\", \
                 seed = N, checkpoint = \"last\", \"best\" or \"best:<test set>\" }"
)]
pub enum InitSource {
    File(PathBuf),
    Run(RunRef),
}

/// A run of another spec whose weights start this one: `run` trains (or reuses) it first,
/// and its identity becomes part of this run's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRef {
    /// The other spec, relative to this spec's folder.
    pub spec: PathBuf,
    pub variant: String,
    pub seed: u64,
    #[serde(default)]
    pub checkpoint: CheckpointChoice,
}

/// Which checkpoint of a run: `"last"`, `"best"` (the best on its validation split) or
/// `"best:<test set>"` (that test set's own best, kept by a run with
/// `train.keep_best = "each"`: the paper's protocol).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CheckpointChoice {
    #[default]
    Last,
    Best,
    BestOn(String),
}

impl CheckpointChoice {
    /// The checkpoint's folder inside a run folder.
    pub fn folder(&self) -> String {
        match self {
            Self::Last => "checkpoint".into(),
            Self::Best => "best".into(),
            Self::BestOn(set) => crate::train::checkpoint::test_best_folder(set),
        }
    }

    /// `its last checkpoint`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Last => "its last checkpoint".into(),
            Self::Best => "its best checkpoint on the validation split".into(),
            Self::BestOn(set) => format!("its best checkpoint on the test set `{set}`"),
        }
    }
}

impl TryFrom<String> for CheckpointChoice {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "last" => Ok(Self::Last),
            "best" => Ok(Self::Best),
            other => match other.strip_prefix("best:") {
                Some(set) if !set.is_empty() => Ok(Self::BestOn(set.to_string())),
                _ => Err(format!(
                    "`checkpoint` = \"{other}\": expected \"last\", \"best\" (on the validation split) or \
                     \"best:<test set name>\""
                )),
            },
        }
    }
}

impl From<CheckpointChoice> for String {
    fn from(choice: CheckpointChoice) -> String {
        match choice {
            CheckpointChoice::Last => "last".into(),
            CheckpointChoice::Best => "best".into(),
            CheckpointChoice::BestOn(set) => format!("best:{set}"),
        }
    }
}

fn default_preset() -> String {
    "tiny".into()
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            preset: default_preset(),
            init: None,
            overrides: toml::Table::new(),
        }
    }
}

impl ModelSpec {
    /// The preset with the overrides applied; unknown keys are errors naming them.
    pub fn resolve(&self) -> Result<ModelConfig, String> {
        let preset = ModelConfig::preset(&self.preset).ok_or_else(|| {
            format!(
                "unknown model preset `{}`; available: {}",
                self.preset,
                ModelConfig::PRESETS.join(", ")
            )
        })?;
        let mut value = toml::Value::try_from(preset).map_err(|e| e.to_string())?;
        super::merge(&mut value, toml::Value::Table(self.overrides.clone()));
        value
            .try_into()
            .map_err(|e: toml::de::Error| format!("model: {}", e.message()))
    }
}

/// A plugin name and its options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentConfig {
    pub plugin: String,
    #[serde(flatten)]
    pub options: toml::Table,
}

impl ComponentConfig {
    /// The options as TOML text for the plugin, without the runner's own `keys`.
    pub fn options_text(&self, runner_keys: &[&str]) -> String {
        let mut t = self.options.clone();
        for k in runner_keys {
            t.remove(*k);
        }
        toml::to_string(&t).expect("a TOML table serialises")
    }
}

/// `[data]`: one training dataset and the datasets evaluated after each epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `{ plugin = "...", root = "...", ...options }`.
    pub train: ComponentConfig,
    /// Evaluation sets; each may carry `name` and `split` (default `test`).
    #[serde(default)]
    pub eval: Vec<ComponentConfig>,
}

/// Keys of a dataset table that the runner reads rather than the plugin.
/// `skip_unreadable = true` drops images that do not decode, with their captions, before
/// the run (see `data::screen`).
pub const DATASET_RUNNER_KEYS: &[&str] = &["root", "name", "split", "skip_unreadable"];

/// One loss.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LossConfig {
    /// Multiplies the loss; 0 turns it off.
    #[serde(default = "one")]
    pub weight: f64,
    /// The loss plugin; defaults to the table's key.
    #[serde(default)]
    pub plugin: Option<String>,
    #[serde(flatten)]
    pub options: toml::Table,
}

fn one() -> f64 {
    1.0
}

/// `[train]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    /// The global batch: what one optimizer step sees, summed over ranks and micro-batches.
    pub batch_size: usize,
    /// The most samples per forward (0 = each rank's whole share of the batch in one).
    /// Smaller than a rank's share, it must divide it, and the step runs over micro-batches
    /// with gradient caching
    /// ([`crate::train::grad_cache`]): the batch-level losses still see the whole global
    /// batch, the token-level losses (MTP) and the scorer's groups each micro-batch.
    pub micro_batch: usize,
    /// Base learning rate of the warm-up + cosine schedule.
    pub lr: f64,
    pub warmup_epochs: usize,
    pub warmup_factor: f64,
    pub adam: AdamConfig,
    /// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `auto` (bf16 on CUDA, fp32 on the CPU), `fp32`, or `bf16` autocast around the
    /// forward (fp32 master weights).
    pub precision: PrecisionChoice,
    /// Steps between log points (the only host reads of losses in an epoch).
    pub log_every: usize,
    /// Data-loading worker threads.
    pub workers: usize,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
    /// libtorch intra-op threads (0 = libtorch's default).
    pub threads: usize,
    /// The train-time image augmentation.
    pub augment: Augment,
    /// Which bests a run keeps beside its last checkpoint, for fine-tuning from them.
    pub keep_best: KeepBest,
}

/// `train.keep_best`: the checkpoints a run keeps besides the last one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepBest {
    /// `best/`: the epoch with the best R@1 on the first validation split, if any.
    #[default]
    Val,
    /// Also `best-<set>/` for each test set's own best epoch (the paper's protocol), at the
    /// cost of a copy of the checkpoint per test set.
    Each,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            micro_batch: 0,
            lr: 1e-5,
            warmup_epochs: 5,
            warmup_factor: 0.1,
            adam: AdamConfig::default(),
            device: "auto".into(),
            precision: PrecisionChoice::Auto,
            log_every: 20,
            workers: 2,
            eval_batch_size: 256,
            threads: 0,
            augment: Augment::default(),
            keep_best: KeepBest::default(),
        }
    }
}
