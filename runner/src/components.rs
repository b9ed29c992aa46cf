//! Turning a run configuration into live plugin components, and checking a spec's plugin
//! names and options before anything trains.

use std::path::Path;

use gadms_plugin::dataset::Dataset;
use gadms_plugin::loss::LossContext;
use gadms_plugin::masking::{MaskingContext, Vocab};
use gadms_plugin::{ComponentKind, MaskingStrategy, PluginError};
use tch::nn;

use crate::model::import::{self, ImportError};
use crate::model::ModelConfig;
use crate::plugin::{LookupError, PluginCode, PluginSet};
use crate::spec::{ComponentConfig, LossConfig, RunConfig, RunPlan, Upstream, DATASET_RUNNER_KEYS};
use crate::train::init::{self, InitError};
use crate::train::schedule::{LrSchedule, ScheduleError};
use crate::train::step::WeightedLoss;

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("`{key}`: {source}")]
    Lookup {
        key: String,
        #[source]
        source: Box<LookupError>,
    },
    #[error("`{key}` (plugin `{plugin}`): {source}")]
    Plugin {
        key: String,
        plugin: String,
        #[source]
        source: Box<PluginError>,
    },
    #[error("`model`: {0}")]
    Model(String),
    #[error("`init`: {0}")]
    Init(#[from] ImportError),
    #[error("`model.init`: {0}")]
    InitWeights(#[from] Box<InitError>),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    Train(String),
    #[error(
        "`masking` (plugin `{masking}`, `{option}`) masks from the training data's noise labels, but \
         `data.train` (dataset `{dataset}`) does not label its noise; train on a dataset that does (e.g. \
         `synthetic-persons`) or choose another scorer"
    )]
    NoNoiseLabels {
        masking: String,
        option: String,
        dataset: String,
    },
}

/// The vocabulary layout of a model config.
pub fn vocab(model: &ModelConfig) -> Vocab {
    Vocab::clip_layout(model.vocab_size)
}

pub fn masking(
    plugins: &PluginSet,
    config: &ComponentConfig,
    model: &ModelConfig,
) -> Result<Box<dyn MaskingStrategy>, ComponentError> {
    let factory = plugins
        .masking(&config.plugin)
        .map_err(|source| ComponentError::Lookup {
            key: "masking.plugin".into(),
            source: Box::new(source),
        })?;
    let ctx = MaskingContext {
        vocab: vocab(model),
        context_length: model.context_length,
    };
    factory
        .create(&ctx, &config.options_text(&[]))
        .map_err(|source| ComponentError::Plugin {
            key: "masking".into(),
            plugin: config.plugin.clone(),
            source: Box::new(source),
        })
}

/// The losses of `config` that a run builds, each with its plugin (the table's key unless
/// `plugin` is given). A loss with weight 0 is off: it is not built, so a variant can drop a
/// loss of the base.
fn built_losses(config: &RunConfig) -> impl Iterator<Item = (&String, &LossConfig, &str)> {
    config
        .losses
        .iter()
        .filter(|(_, l)| l.weight != 0.0)
        .map(|(name, l)| (name, l, l.plugin.as_deref().unwrap_or(name)))
}

/// The code of every plugin component a run of `config` uses (its datasets, masking
/// strategy and the losses it builds), sorted, each once: with the config, a run's identity.
/// A component no library provides is left out; checking or running the config fails on it
/// with the lookup error.
pub fn code(plugins: &PluginSet, config: &RunConfig) -> Vec<PluginCode> {
    let datasets = std::iter::once(&config.data.train)
        .chain(&config.data.eval)
        .map(|d| (ComponentKind::Dataset, d.plugin.as_str()));
    let masking = (ComponentKind::Masking, config.masking.plugin.as_str());
    let losses = built_losses(config).map(|(_, _, plugin)| (ComponentKind::Loss, plugin));
    let mut code: Vec<PluginCode> = datasets
        .chain([masking])
        .chain(losses)
        .filter_map(|(kind, name)| plugins.code(kind, name))
        .collect();
    code.sort();
    code.dedup();
    code
}

/// Builds every loss of `config` under `root` (parameter names at the reference's top level),
/// except those switched off (see [`built_losses`]); for training, on captions made of
/// `caption_tokens` ([`crate::data::loader::TokenizedSplit::token_ids`]).
pub fn losses(
    plugins: &PluginSet,
    config: &RunConfig,
    model: &ModelConfig,
    root: &nn::Path,
    num_classes: i64,
    caption_tokens: Option<Vec<i64>>,
) -> Result<Vec<WeightedLoss>, ComponentError> {
    let ctx = loss_context(model, num_classes, caption_tokens);
    built_losses(config)
        .map(|(name, l, plugin)| {
            Ok(WeightedLoss {
                name: name.clone(),
                weight: l.weight,
                loss: build_loss(plugins, name, l, plugin, &ctx, root)?,
            })
        })
        .collect()
}

/// Each loss of `config` built on a scratch CPU store of its own, with its spec key
/// (`losses.<name>`): which parameters each loss creates.
pub fn losses_apart(
    plugins: &PluginSet,
    config: &RunConfig,
    model: &ModelConfig,
    num_classes: i64,
) -> Result<Vec<(String, nn::VarStore)>, ComponentError> {
    let ctx = loss_context(model, num_classes, None);
    built_losses(config)
        .map(|(name, l, plugin)| {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            build_loss(plugins, name, l, plugin, &ctx, &vs.root())?;
            Ok((format!("losses.{name}"), vs))
        })
        .collect()
}

fn loss_context(model: &ModelConfig, num_classes: i64, caption_tokens: Option<Vec<i64>>) -> LossContext {
    LossContext {
        embed_dim: model.embed_dim,
        vocab: vocab(model),
        num_classes,
        caption_tokens: caption_tokens.map(Into::into),
    }
}

fn build_loss(
    plugins: &PluginSet,
    name: &str,
    config: &LossConfig,
    plugin: &str,
    ctx: &LossContext,
    root: &nn::Path,
) -> Result<Box<dyn gadms_plugin::Loss>, ComponentError> {
    let key = format!("losses.{name}");
    let factory = plugins.loss(plugin).map_err(|source| ComponentError::Lookup {
        key: key.clone(),
        source: Box::new(source),
    })?;
    let options = toml::to_string(&config.options).expect("a TOML table serialises");
    factory
        .build(root, ctx, &options)
        .map_err(|source| ComponentError::Plugin {
            key,
            plugin: plugin.to_string(),
            source: Box::new(source),
        })
}

/// Opens a dataset (reading nothing but its options yet).
pub fn dataset(
    plugins: &PluginSet,
    key: &str,
    config: &ComponentConfig,
    base_dir: &std::path::Path,
) -> Result<Box<dyn Dataset>, ComponentError> {
    let factory = plugins
        .dataset(&config.plugin)
        .map_err(|source| ComponentError::Lookup {
            key: format!("{key}.plugin"),
            source: Box::new(source),
        })?;
    let root = config
        .options
        .get("root")
        .and_then(|v| v.as_str())
        .map(|r| base_dir.join(r));
    factory
        .open(root.as_deref(), &config.options_text(DATASET_RUNNER_KEYS))
        .map_err(|source| ComponentError::Plugin {
            key: key.into(),
            plugin: config.plugin.clone(),
            source: Box::new(source),
        })
}

/// Checks, before anything trains, that every plugin a run names exists and accepts its
/// options (the masking strategy is created, the losses are built on a scratch store, the
/// datasets are opened, which checks their files) and that the initial weights fit the
/// model (every encoder parameter, the model's shapes). Returns notes for the user: a
/// `model.init` naming a run not trained yet is explained, not refused.
pub fn check(plugins: &PluginSet, plan: &RunPlan, base_dir: &Path) -> Result<Vec<String>, ComponentError> {
    let config = &plan.config;
    let model = config.model.resolve().map_err(ComponentError::Model)?;
    LrSchedule::for_training(&config.train)?;
    config.train.augment.validate().map_err(ComponentError::Train)?;
    let strategy = masking(plugins, &config.masking, &model)?;
    let scratch = nn::VarStore::new(tch::Device::Cpu);
    // One class is enough to validate a classifier's options; the real count and the caption
    // tokens come from the data.
    losses(plugins, config, &model, &scratch.root(), 1, None)?;
    let train = dataset(plugins, "data.train", &config.data.train, base_dir)?;
    require_noise_labels(config, strategy.as_ref(), train.as_ref())?;
    for (i, e) in config.data.eval.iter().enumerate() {
        dataset(plugins, &format!("data.eval[{i}]"), e, base_dir)?;
    }
    let mut notes = Vec::new();
    match (plan.init_file(base_dir), plan.upstream.as_deref()) {
        (None, _) => {}
        // A stale checkpoint of a changed upstream is never checked against: `run` retrains it.
        (Some(_), Some(up)) if !up.is_done() => notes.push(untrained_upstream(up, &model)?),
        (Some(file), _) if file.is_file() => {
            // Opening the file first reports a truncated, unknown or refused file as such.
            import::inspect(&file)?;
            init::check(plugins, config, &model, &file).map_err(Box::new)?;
        }
        (Some(_), Some(up)) => notes.push(untrained_upstream(up, &model)?),
        (Some(file), None) => {
            return Err(ComponentError::Model(format!(
                "`init` = {}: no such file; put the weights there (a gadms checkpoint's \
                 `checkpoint/model.safetensors`, OpenAI's ViT-B-16.pt, Hugging Face CLIP safetensors or an \
                 IRRA/GA-DMS .pth) or change the path",
                file.display()
            )))
        }
    }
    Ok(notes)
}

/// A strategy that masks from noise labels (an oracle) needs a training set that labels its
/// noise: without labels it would see every token as clean and quietly mask nothing.
fn require_noise_labels(
    config: &RunConfig,
    strategy: &dyn MaskingStrategy,
    train: &dyn Dataset,
) -> Result<(), ComponentError> {
    match strategy.noise_label_scores() {
        Some(oracle) if !train.labels_noise() => Err(ComponentError::NoNoiseLabels {
            masking: config.masking.plugin.clone(),
            option: oracle.option,
            dataset: config.data.train.plugin.clone(),
        }),
        _ => Ok(()),
    }
}

/// The note for a `model.init` run that has no checkpoint yet, once its model is known to
/// be this run's.
fn untrained_upstream(up: &Upstream, model: &ModelConfig) -> Result<String, ComponentError> {
    let theirs = up.config.model.resolve().map_err(ComponentError::Model)?;
    if &theirs != model {
        return Err(ComponentError::Model(format!(
            "`init` is {}, whose model differs from this run's ({theirs:?} there, {model:?} here); \
             its weights could not be loaded",
            up.describe()
        )));
    }
    let kept = crate::store::RunDir::at(up.run_dir.clone()).finished_in_history(&up.hash);
    let state = match kept {
        Some(kept) => format!(
            "whose finished result with its current recipe is in its history ({}): `gadms-run run` \
             takes it up instead of training it",
            kept.display()
        ),
        None => "not trained yet with its current recipe: `gadms-run run` trains it first".into(),
    };
    Ok(format!(
        "`model.init` is {}, {state} (its model matches)",
        up.describe()
    ))
}
