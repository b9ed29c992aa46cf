//! Starting weights (`model.init`), strictly: the file must provide every parameter of the
//! model except those the run's losses create fresh (an MTP head or an ID classifier that a
//! CLIP file cannot have), with the model's shapes, and nothing the model lacks. A file
//! that lacks encoder tensors would otherwise train a mostly random model without a word.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tch::{nn, Tensor};

use crate::components::{self, ComponentError};
use crate::model::import::{self, ImportError};
use crate::model::weights::{load_named, Strictness, WeightsError};
use crate::model::{Clip, ModelConfig};
use crate::plugin::PluginSet;
use crate::spec::RunConfig;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error(
        "{}: {} parameter(s) of the CLIP encoders are missing: {}. `model.init` must provide every \
         parameter except those the spec's losses create fresh{}; point it at complete weights",
        file.display(), names.len(), preview(names), fresh_note(fresh)
    )]
    MissingEncoder {
        file: PathBuf,
        names: Vec<String>,
        fresh: Vec<(String, usize)>,
    },
}

fn preview(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    shown.join(", ")
        + &if more > 0 {
            format!(", … ({more} more)")
        } else {
            String::new()
        }
}

fn fresh_note(fresh: &[(String, usize)]) -> String {
    if fresh.is_empty() {
        return " (this spec's losses create none)".into();
    }
    let owners: Vec<String> = fresh
        .iter()
        .map(|(o, n)| format!("`{o}`: {n} tensor(s)"))
        .collect();
    format!(" (here {})", owners.join(", "))
}

/// One parameter the model of a run has: its shape, and the loss that creates it (`None`
/// for the CLIP encoders).
struct Param {
    /// `None` when it cannot be known yet (an ID classifier's before the data is read).
    shape: Option<Vec<i64>>,
    owner: Option<String>,
}

/// Every parameter a run's model has: those of the run's store (the encoders, and the loss
/// heads when they are built there too), with each loss then built on a scratch store of its
/// own so that its parameters can be told apart from the encoders'.
pub struct Expected {
    params: BTreeMap<String, Param>,
}

impl Expected {
    /// `model_store` holds the run's model (at least its encoders); the trainer passes its
    /// own store, so no second model is built. `num_classes` sizes an ID classifier; without
    /// the data (validation) loss parameters' shapes are not checked.
    pub fn build(
        plugins: &PluginSet,
        config: &RunConfig,
        model: &ModelConfig,
        model_store: &nn::VarStore,
        num_classes: Option<i64>,
    ) -> Result<Self, ComponentError> {
        let mut params = BTreeMap::new();
        collect(model_store, None, &mut params);
        tch::no_grad(|| -> Result<(), ComponentError> {
            // Inserted after the model's, so a loss's parameters are marked as its own.
            for (name, vs) in components::losses_apart(plugins, config, model, num_classes.unwrap_or(1))? {
                collect(&vs, Some(name), &mut params);
            }
            Ok(())
        })?;
        if num_classes.is_none() {
            for p in params.values_mut().filter(|p| p.owner.is_some()) {
                p.shape = None;
            }
        }
        Ok(Self { params })
    }

    /// Checks `tensors` (read from `file`) against the model and returns the parameters
    /// that start fresh, by owning loss with their count.
    pub fn verify(
        &self,
        tensors: &HashMap<String, Tensor>,
        file: &Path,
    ) -> Result<Vec<(String, usize)>, InitError> {
        let missing = self
            .params
            .iter()
            .filter(|(name, _)| !tensors.contains_key(*name));
        let (fresh, encoder): (Vec<_>, Vec<_>) = missing.partition(|(_, p)| p.owner.is_some());
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, p) in &fresh {
            *counts.entry(p.owner.clone().unwrap_or_default()).or_default() += 1;
        }
        let fresh: Vec<(String, usize)> = counts.into_iter().collect();
        if !encoder.is_empty() {
            return Err(InitError::MissingEncoder {
                file: file.to_path_buf(),
                names: encoder.into_iter().map(|(n, _)| n.clone()).collect(),
                fresh,
            });
        }
        let mut unexpected: Vec<String> = tensors
            .keys()
            .filter(|k| !self.params.contains_key(*k))
            .cloned()
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort();
            return Err(WeightsError::Unexpected {
                file: file.to_path_buf(),
                names: unexpected,
            }
            .into());
        }
        for (name, p) in &self.params {
            let (Some(shape), Some(t)) = (&p.shape, tensors.get(name)) else {
                continue;
            };
            if &t.size() != shape {
                return Err(WeightsError::Shape {
                    file: file.to_path_buf(),
                    name: name.clone(),
                    expected: shape.clone(),
                    found: t.size(),
                }
                .into());
            }
        }
        Ok(fresh)
    }
}

fn collect(vs: &nn::VarStore, owner: Option<String>, into: &mut BTreeMap<String, Param>) {
    for (name, t) in vs.variables() {
        into.insert(
            name,
            Param {
                shape: Some(t.size()),
                owner: owner.clone(),
            },
        );
    }
}

/// Reads `file` in any format `model.init` takes, checks it against `expected` and loads it
/// into `vs`. Returns the loss parameters that start fresh (see [`Expected::verify`]).
pub fn load(
    vs: &nn::VarStore,
    file: &Path,
    model: &ModelConfig,
    expected: &Expected,
) -> Result<Vec<(String, usize)>, InitError> {
    let weights = import::read_weights(file, model)?;
    let fresh = expected.verify(&weights.tensors, file)?;
    // `verify` allowed exactly the loss parameters to be missing.
    let strictness = Strictness {
        allow_missing: true,
        allow_unexpected: false,
    };
    load_named(vs, &weights.tensors, file, strictness)?;
    Ok(fresh)
}

/// Checks `file` against the model of `config` without loading it (`validate`).
pub fn check(
    plugins: &PluginSet,
    config: &RunConfig,
    model: &ModelConfig,
    file: &Path,
) -> Result<(), InitError> {
    let weights = import::read_weights(file, model)?;
    let encoders = nn::VarStore::new(tch::Device::Cpu);
    tch::no_grad(|| Clip::new(&encoders.root(), model));
    Expected::build(plugins, config, model, &encoders, None)?.verify(&weights.tensors, file)?;
    Ok(())
}

/// `losses.mtp: 12 tensor(s), …` for the log line of a run whose loss heads start fresh.
pub fn describe_fresh(fresh: &[(String, usize)]) -> String {
    fresh
        .iter()
        .map(|(o, n)| format!("{o}: {n} tensor(s)"))
        .collect::<Vec<_>>()
        .join(", ")
}
