//! Checkpoints: everything a run needs to continue exactly where an epoch ended — the
//! weights (safetensors, reference names), the Adam moments, the score store and the
//! position (epoch, step). The data order and every random draw are functions of (seed,
//! epoch, sample), so no generator state needs saving.
//!
//! A checkpoint is written into `checkpoint.tmp/` and then renamed over `checkpoint/`, so
//! a kill during the write leaves the previous checkpoint intact. `best/` holds a copy of
//! the checkpoint with the best R@1 on the run's validation split, with `best.json` saying
//! which epoch and split.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::optim::{Adam, OptimError};
use super::scores::ScoreStore;
use crate::model::weights::{load_named, read_safetensors, Strictness, WeightsError};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {}: {source}", path.display())]
    Tensor {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("checkpoint {}: unreadable state: {message}", path.display())]
    State { path: PathBuf, message: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Optimizer(#[from] OptimError),
}

/// Where a checkpoint stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Position {
    /// The last finished epoch.
    pub epoch: usize,
    pub global_step: usize,
    /// The hash (config and plugin code) of the run that wrote it; a checkpoint of another
    /// run is ignored.
    pub hash: String,
}

const WEIGHTS: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const SCORES: &str = "scores.safetensors";
const POSITION: &str = "position.json";

fn folder(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// Writes the checkpoint of `run` after an epoch.
pub fn save(
    run: &Path,
    position: &Position,
    vs: &VarStore,
    opt: &Adam,
    scores: &ScoreStore,
) -> Result<(), CheckpointError> {
    let tmp = run.join("checkpoint.tmp");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let write = |name: &str, tensors: &[(String, Tensor)]| {
        let path = tmp.join(name);
        Tensor::write_safetensors(tensors, &path).map_err(|source| CheckpointError::Tensor { path, source })
    };
    let mut weights: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    write(WEIGHTS, &weights)?;
    write(OPTIMIZER, &opt.state())?;
    write(SCORES, &[("scores".to_string(), scores.to_tensor())])?;
    let text = serde_json::to_string_pretty(position).expect("position serialises");
    std::fs::write(tmp.join(POSITION), text).map_err(io(&tmp.join(POSITION)))?;
    let dest = folder(run);
    let old = run.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(&dest, &old).map_err(io(&dest))?;
    }
    std::fs::rename(&tmp, &dest).map_err(io(&tmp))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The position of the checkpoint of `run`, if there is a readable one.
pub fn position(run: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(folder(run).join(POSITION)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Deletes the checkpoints of `run` (a fresh start).
pub fn remove(run: &Path) {
    let _ = std::fs::remove_dir_all(folder(run));
    let _ = std::fs::remove_dir_all(run.join("best"));
}

/// Loads the checkpoint of `run` into the model, the optimizer and the score store.
pub fn restore(
    run: &Path,
    vs: &VarStore,
    opt: &mut Adam,
    scores: &mut ScoreStore,
) -> Result<Position, CheckpointError> {
    let dir = folder(run);
    let position = position(run).ok_or_else(|| CheckpointError::State {
        path: dir.join(POSITION),
        message: "missing or malformed".into(),
    })?;
    let weights = dir.join(WEIGHTS);
    load_named(vs, &read_safetensors(&weights)?, &weights, Strictness::default())?;
    opt.load_state(&read_safetensors(&dir.join(OPTIMIZER))?)?;
    let table: HashMap<String, Tensor> = read_safetensors(&dir.join(SCORES))?;
    let table = table.get("scores").ok_or_else(|| CheckpointError::State {
        path: dir.join(SCORES),
        message: "no `scores` tensor".into(),
    })?;
    scores.load(table).map_err(|message| CheckpointError::State {
        path: dir.join(SCORES),
        message,
    })?;
    Ok(position)
}

/// `best/best.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Best {
    pub epoch: usize,
    pub dataset: String,
    pub r1: f64,
}

/// Whether `r1` beats the best checkpoint of `run` so far (true when there is none).
pub fn improves_best(run: &Path, r1: f64) -> bool {
    let best = std::fs::read_to_string(run.join("best/best.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Best>(&t).ok());
    best.is_none_or(|b| r1 > b.r1)
}

/// Copies the current checkpoint to `best/` (through `best.tmp/`, then a rename).
pub fn keep_as_best(run: &Path, epoch: usize, dataset: &str, r1: f64) -> Result<(), CheckpointError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    let tmp = run.join("best.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for name in [WEIGHTS, OPTIMIZER, SCORES, POSITION] {
        let from = folder(run).join(name);
        std::fs::copy(&from, tmp.join(name)).map_err(io(&from))?;
    }
    let best = Best {
        epoch,
        dataset: dataset.to_string(),
        r1,
    };
    std::fs::write(
        tmp.join("best.json"),
        serde_json::to_string_pretty(&best).expect("best serialises"),
    )
    .map_err(io(&tmp))?;
    let dest = run.join("best");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).map_err(io(&tmp))
}
