//! Checkpoints: everything a run needs to continue exactly where an epoch ended — the
//! weights (safetensors, reference names), the Adam moments, the score store and the
//! position (epoch, step). The data order and every random draw are functions of (seed,
//! epoch, sample), so no generator state needs saving. `best` holds a copy of the
//! checkpoint with the best R@1 on the run's validation split, with `best.json` saying
//! which epoch and split; with `train.keep_best = "each"`, `best-<set>` holds each test
//! set's own best (the paper's selection protocol), kept the same way.
//!
//! # Layout and crash safety
//!
//! Each checkpoint is a folder `checkpoint.e<epoch>/` whose `position.json` is written last,
//! and `checkpoint` is a symbolic link to the current one (so `checkpoint/model.safetensors`
//! is the latest weights); likewise `best` → `best.e<epoch>/`, with `best.json` written last.
//! An epoch's [`commit`] writes the new folder beside the current one, syncs it to disk,
//! switches the link with one `rename` of a fresh link over it (atomic on POSIX), then
//! removes the previous folder. When the epoch improves the best, `best` is switched to it
//! before `checkpoint` is. So at every instant — a kill or a power loss at any point —
//! `checkpoint` names a complete checkpoint, and `best` is never older than the checkpoint
//! that counted it: a kill before the `checkpoint` switch resumes from the previous epoch
//! and redoes this one (deterministically), finding `best` already kept for it if it had
//! been switched; an epoch already kept stays kept.
//!
//! The current folder, in every state a kill can leave:
//! - `checkpoint` is a link: its target, if complete (a link to a folder a kill left half
//!   removed counts as none). Other `checkpoint.e<N>/` folders are leftovers — one never
//!   switched to, or one not yet removed — and are never read; the next commit removes them.
//! - `checkpoint` is a real folder: a store of the previous layout. It is current, and the
//!   next switch moves it to `checkpoint.old/` just before putting the link in its place.
//! - there is no `checkpoint`: `checkpoint.old/` if complete (a kill during that move, or
//!   between the two renames of the previous layout), else none, and the run starts from
//!   scratch (a folder never switched to may lack its `best`).
//!
//! [`super::fault`] can stop the process at the switches, for the tests.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::fault;
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

/// `best/best.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Best {
    pub epoch: usize,
    pub dataset: String,
    pub r1: f64,
}

const WEIGHTS: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const SCORES: &str = "scores.safetensors";
const POSITION: &str = "position.json";
const BEST_JSON: &str = "best.json";

/// The files of a checkpoint, `position.json` (written last) at the end.
const CHECKPOINT_FILES: [&str; 4] = [WEIGHTS, OPTIMIZER, SCORES, POSITION];

const BEST_FILES: [&str; 5] = [WEIGHTS, OPTIMIZER, SCORES, POSITION, BEST_JSON];

const CHECKPOINT: Slot = Slot {
    name: Cow::Borrowed("checkpoint"),
    files: &CHECKPOINT_FILES,
};
const BEST: Slot = Slot {
    name: Cow::Borrowed("best"),
    files: &BEST_FILES,
};
/// The prefix of the slots of the test sets' own bests.
const TEST_BEST_PREFIX: &str = "best-";

/// The folder in a run folder that keeps test set `dataset`'s own best: `best-<dataset>`,
/// with characters other than letters, digits, `-` and `_` replaced by `_`.
pub fn test_best_folder(dataset: &str) -> String {
    let safe: String = dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{TEST_BEST_PREFIX}{safe}")
}

/// An evaluation of the epoch that may make it a kept best.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub dataset: &'a str,
    pub r1: f64,
    /// `best/` for the validation split, or the test set's own `best-<set>/`.
    pub kept_as: Kept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Validation,
    OwnTestBest,
}

impl Candidate<'_> {
    fn slot(&self) -> Slot {
        match self.kept_as {
            Kept::Validation => BEST,
            Kept::OwnTestBest => Slot {
                name: Cow::Owned(test_best_folder(self.dataset)),
                files: &BEST_FILES,
            },
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io { path, source }
}

/// Commits the end of an epoch: writes its checkpoint and, for each of `candidates` that
/// beats the best kept in its slot, keeps the epoch there, switching every best before
/// `checkpoint` (see the module doc). Returns the bests this epoch became.
pub fn commit(
    run: &Path,
    position: &Position,
    vs: &VarStore,
    opt: &Adam,
    scores: &ScoreStore,
    candidates: &[Candidate<'_>],
) -> Result<Vec<Best>, CheckpointError> {
    write_checkpoint(run, position, vs, opt, scores)?;
    let mut kept = Vec::new();
    for candidate in candidates {
        let slot = candidate.slot();
        let best = Best {
            epoch: position.epoch,
            dataset: candidate.dataset.to_string(),
            r1: candidate.r1,
        };
        if improves_best(&slot, run, &best) {
            write_best(&slot, run, &best)?;
            slot.switch(run, best.epoch)?;
            kept.push(best);
        }
    }
    CHECKPOINT.switch(run, position.epoch)?;
    // An epoch that keeps a best as it was removes leftovers of an interrupted commit of
    // that best too.
    for candidate in candidates {
        candidate.slot().clear(run);
    }
    Ok(kept)
}

/// The position of the checkpoint of `run`, if there is a complete one.
pub fn position(run: &Path) -> Option<Position> {
    read_json(&CHECKPOINT.current(run)?.join(POSITION))
}

/// Deletes the checkpoints of `run` (a fresh start), its bests included.
pub fn remove(run: &Path) {
    CHECKPOINT.remove(run);
    BEST.remove(run);
    for slot in test_best_slots(run) {
        slot.remove(run);
    }
}

/// The slots of test sets' own bests found in `run`: every `best-<set>` name, whatever
/// state a kill left it in (a link, a folder, only `.e<N>` folders).
fn test_best_slots(run: &Path) -> Vec<Slot> {
    let Ok(entries) = std::fs::read_dir(run) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(TEST_BEST_PREFIX))
        .map(|n| n.split('.').next().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| Slot {
            name: Cow::Owned(name),
            files: &BEST_FILES,
        })
        .collect()
}

/// Loads the checkpoint of `run` into the model, the optimizer and the score store.
pub fn restore(
    run: &Path,
    vs: &VarStore,
    opt: &mut Adam,
    scores: &mut ScoreStore,
) -> Result<Position, CheckpointError> {
    let dir = CHECKPOINT.current(run).ok_or_else(|| CheckpointError::State {
        path: CHECKPOINT.link(run),
        message: "no complete checkpoint".into(),
    })?;
    let position = read_json(&dir.join(POSITION)).ok_or_else(|| CheckpointError::State {
        path: dir.join(POSITION),
        message: "malformed".into(),
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

/// The best kept so far in `slot`, if any.
fn current_best(slot: &Slot, run: &Path) -> Option<Best> {
    read_json(&slot.current(run)?.join(BEST_JSON))
}

/// Whether `candidate` beats the best kept so far (true when there is none). An epoch
/// already kept stays as kept: a commit interrupted after switching `best` redoes the
/// epoch, which on a device that is not bitwise deterministic may score a little
/// differently, and the folder kept for it is the current one, not to be overwritten.
fn improves_best(slot: &Slot, run: &Path, candidate: &Best) -> bool {
    current_best(slot, run).is_none_or(|kept| kept.epoch != candidate.epoch && candidate.r1 > kept.r1)
}

/// Writes `checkpoint.e<epoch>/`, `position.json` last.
fn write_checkpoint(
    run: &Path,
    position: &Position,
    vs: &VarStore,
    opt: &Adam,
    scores: &ScoreStore,
) -> Result<(), CheckpointError> {
    let dir = CHECKPOINT.prepare(run, position.epoch)?;
    let mut weights: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(&dir.join(WEIGHTS), &weights)?;
    write_tensors(&dir.join(OPTIMIZER), &opt.state())?;
    write_tensors(&dir.join(SCORES), &[("scores".to_string(), scores.to_tensor())])?;
    write_json(&dir.join(POSITION), position)
}

/// Writes `<slot>.e<epoch>/`: a copy of the checkpoint of that epoch, `best.json` last.
fn write_best(slot: &Slot, run: &Path, best: &Best) -> Result<(), CheckpointError> {
    let from = CHECKPOINT.folder(run, best.epoch);
    let dir = slot.prepare(run, best.epoch)?;
    for name in CHECKPOINT_FILES {
        std::fs::copy(from.join(name), dir.join(name)).map_err(io(&from.join(name)))?;
        sync(&dir.join(name))?;
    }
    write_json(&dir.join(BEST_JSON), best)
}

fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), CheckpointError> {
    Tensor::write_safetensors(tensors, path).map_err(|source| CheckpointError::Tensor {
        path: path.to_path_buf(),
        source,
    })?;
    sync(path)
}

/// Writes the file that completes a folder, and syncs the folder.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CheckpointError> {
    let text = serde_json::to_string_pretty(value).expect("checkpoint records serialise");
    std::fs::write(path, text).map_err(io(path))?;
    sync(path)?;
    sync(path.parent().expect("a file in a folder"))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Flushes a file or a folder (its entries) to disk, so that a switch never lands before
/// what it points to.
fn sync(path: &Path) -> Result<(), CheckpointError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// A name in the run folder, a symbolic link to the current one of its folders
/// `<name>.e<epoch>/` (see the module doc).
struct Slot {
    name: Cow<'static, str>,
    /// The files of a complete folder.
    files: &'static [&'static str],
}

impl Slot {
    fn link(&self, run: &Path) -> PathBuf {
        run.join(self.name.as_ref())
    }

    fn sibling(&self, run: &Path, suffix: &str) -> PathBuf {
        run.join(format!("{}.{suffix}", self.name))
    }

    fn folder(&self, run: &Path, epoch: usize) -> PathBuf {
        self.sibling(run, &format!("e{epoch}"))
    }

    /// The complete folder the slot designates, if any.
    fn current(&self, run: &Path) -> Option<PathBuf> {
        let link = self.link(run);
        let designated = if link.symlink_metadata().is_ok() {
            link
        } else {
            self.sibling(run, "old")
        };
        self.complete(&designated).then_some(designated)
    }

    /// Whether `dir` holds every file of the slot: a kill while writing it leaves out the
    /// last, one while removing it whichever went first.
    fn complete(&self, dir: &Path) -> bool {
        self.files.iter().all(|f| dir.join(f).is_file())
    }

    /// An empty `<name>.e<epoch>/`, replacing a leftover of an interrupted commit of that
    /// epoch (never the current folder: that is an earlier epoch's, or for `best` an epoch
    /// that [`improves_best`] does not write again).
    fn prepare(&self, run: &Path, epoch: usize) -> Result<PathBuf, CheckpointError> {
        let dir = self.folder(run, epoch);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(dir)
    }

    /// Makes the complete `<name>.e<epoch>/` current, then removes the others.
    fn switch(&self, run: &Path, epoch: usize) -> Result<(), CheckpointError> {
        fault::point(&format!("{}-switch", self.name), epoch);
        self.relink(run, epoch)?;
        fault::point(&format!("{}-cleanup", self.name), epoch);
        self.clear(run);
        Ok(())
    }

    /// Points the link at `<name>.e<epoch>/` with one rename of a fresh link over it.
    fn relink(&self, run: &Path, epoch: usize) -> Result<(), CheckpointError> {
        let link = self.link(run);
        let fresh = self.sibling(run, "link");
        let _ = std::fs::remove_file(&fresh);
        std::os::unix::fs::symlink(format!("{}.e{epoch}", self.name), &fresh).map_err(io(&fresh))?;
        if is_real_folder(&link) {
            // The previous layout: a link cannot be renamed over a folder, so the folder moves
            // aside, where it stays current until the link is there.
            let old = self.sibling(run, "old");
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            std::fs::rename(&link, &old).map_err(io(&link))?;
        }
        std::fs::rename(&fresh, &link).map_err(io(&fresh))?;
        sync(run)
    }

    /// Removes the leftovers of interrupted commits: every folder of the slot but the one
    /// the link designates. Only once there is a link (or a folder of the previous layout)
    /// in place: without one, `<name>.old/` may be current.
    fn clear(&self, run: &Path) {
        let link = self.link(run);
        if link.symlink_metadata().is_ok() {
            let target = std::fs::read_link(&link).ok();
            self.remove_folders(run, target.as_deref().and_then(Path::file_name));
        }
    }

    /// Removes the slot: `<name>.old/` first (with the link gone it would be current), then
    /// the link, then the folders.
    fn remove(&self, run: &Path) {
        let _ = std::fs::remove_dir_all(self.sibling(run, "old"));
        let link = self.link(run);
        let _ = if is_real_folder(&link) {
            std::fs::remove_dir_all(&link)
        } else {
            std::fs::remove_file(&link)
        };
        self.remove_folders(run, None);
    }

    /// Removes `<name>.old/`, the fresh link and the previous layout's `<name>.tmp/` of
    /// interrupted switches, and the folders `<name>.e<epoch>/` but `keep`. A failure leaves
    /// a folder that is never read, and that the next commit tries again to remove.
    fn remove_folders(&self, run: &Path, keep: Option<&OsStr>) {
        let _ = std::fs::remove_dir_all(self.sibling(run, "old"));
        let _ = std::fs::remove_dir_all(self.sibling(run, "tmp"));
        let _ = std::fs::remove_file(self.sibling(run, "link"));
        let prefix = format!("{}.e", self.name);
        let Ok(entries) = std::fs::read_dir(run) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let epoch = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix)?.parse::<usize>().ok());
            if epoch.is_some() && Some(name.as_os_str()) != keep {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A folder that is not a symbolic link.
fn is_real_folder(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::optim::AdamConfig;
    use tch::nn;

    /// A training state whose weights and scores all equal `value`, with Adam moments (of
    /// a step at learning rate 0, which leaves the weights as they are).
    fn state(value: f64) -> (VarStore, Adam, ScoreStore) {
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs.root().var("w", &[3], nn::Init::Const(value));
        let mut opt = AdamConfig::default().build(&vs);
        let grads = opt.backward(&w.sum(tch::Kind::Float));
        opt.step(&grads).unwrap();
        (vs, opt, ScoreStore::new(2, 3, value as f32))
    }

    /// Commits epoch `epoch`, with weights and scores equal to `epoch`, and validation R@1 `r1`.
    fn commit_epoch(run: &Path, epoch: usize, r1: f64) -> Option<Best> {
        let (vs, opt, scores) = state(epoch as f64);
        let position = Position {
            epoch,
            global_step: 10 * epoch,
            hash: "h".into(),
        };
        let validation = Candidate {
            dataset: "val",
            r1,
            kept_as: Kept::Validation,
        };
        let kept = commit(run, &position, &vs, &opt, &scores, &[validation]).unwrap();
        kept.into_iter().next()
    }

    /// Commits epoch `epoch` as a process killed at `point` of it would.
    fn commit_killed(run: &Path, epoch: usize, r1: f64, point: &str) {
        let killed = fault::killed_at(&format!("{point}:{epoch}"), || commit_epoch(run, epoch, r1));
        assert!(
            killed.is_err(),
            "the commit of epoch {epoch} never reached {point}"
        );
    }

    /// The epoch a resume finds, after checking that the weights and the scores it loads
    /// are that epoch's.
    fn resumed(run: &Path) -> Option<usize> {
        let found = position(run)?;
        let (vs, mut opt, mut scores) = state(-1.0);
        let restored = restore(run, &vs, &mut opt, &mut scores).unwrap();
        assert_eq!(restored.epoch, found.epoch);
        assert_eq!(vs.variables()["w"].double_value(&[0]), found.epoch as f64);
        assert_eq!(scores.table()[0], found.epoch as f32);
        Some(found.epoch)
    }

    /// The epoch and R@1 of `best/`, after checking that its weights are that epoch's.
    fn kept_best(run: &Path) -> Option<(usize, f64)> {
        let best = current_best(&BEST, run)?;
        let weights = read_safetensors(&run.join("best").join(WEIGHTS)).unwrap();
        assert_eq!(weights["w"].double_value(&[0]), best.epoch as f64);
        Some((best.epoch, best.r1))
    }

    /// The entries of the run folder.
    fn listing(run: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(run)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gadms-checkpoint-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_kill_anywhere_in_a_commit_leaves_a_complete_checkpoint_and_a_best_as_new() {
        // Epoch 2 improves the best of epoch 1; killed at each point of its commit, a
        // resume finds epoch 1 or 2, and a best at least as new.
        for (point, found, best) in [
            ("best-switch", 1, (1, 0.5)),
            ("best-cleanup", 1, (2, 0.7)),
            ("checkpoint-switch", 1, (2, 0.7)),
            ("checkpoint-cleanup", 2, (2, 0.7)),
        ] {
            let run = scratch(point);
            commit_epoch(&run, 1, 0.5);
            commit_killed(&run, 2, 0.7, point);
            assert_eq!(
                (resumed(&run), kept_best(&run)),
                (Some(found), Some(best)),
                "{point}"
            );
            // The resumed run goes on; its next commit removes the leftovers.
            for epoch in found + 1..=3 {
                commit_epoch(&run, epoch, [0.0, 0.5, 0.7, 0.6][epoch]);
            }
            assert_eq!(
                (resumed(&run), kept_best(&run)),
                (Some(3), Some((2, 0.7))),
                "{point}"
            );
            assert_eq!(
                listing(&run),
                ["best", "best.e2", "checkpoint", "checkpoint.e3"],
                "{point}"
            );
            assert!(run.join("checkpoint").symlink_metadata().unwrap().is_symlink());
            std::fs::remove_dir_all(run).unwrap();
        }
    }

    #[test]
    fn a_kill_before_the_checkpoint_switch_redoes_the_epoch_and_finds_its_best_kept() {
        let run = scratch("best-ahead");
        commit_epoch(&run, 1, 0.5);
        commit_killed(&run, 2, 0.7, "checkpoint-switch");
        assert_eq!((resumed(&run), kept_best(&run)), (Some(1), Some((2, 0.7))));
        // The redone epoch scores a little higher (a device that is not bitwise
        // deterministic): the epoch stays as kept, its folder whole.
        assert!(commit_epoch(&run, 2, 0.8).is_none());
        assert_eq!((resumed(&run), kept_best(&run)), (Some(2), Some((2, 0.7))));
        // Later epochs compete as usual.
        assert!(commit_epoch(&run, 3, 0.6).is_none());
        assert_eq!(commit_epoch(&run, 4, 0.9).map(|b| b.epoch), Some(4));
        assert_eq!(kept_best(&run), Some((4, 0.9)));
        assert_eq!(listing(&run), ["best", "best.e4", "checkpoint", "checkpoint.e4"]);
        std::fs::remove_dir_all(run).unwrap();
    }

    #[test]
    fn folders_never_switched_to_or_half_removed_are_never_read() {
        let run = scratch("strays");
        // A first commit killed before its switches: complete folders, no checkpoint (the
        // run starts from scratch, and its start removes them).
        commit_killed(&run, 1, 0.5, "best-switch");
        assert_eq!(listing(&run), ["best.e1", "checkpoint.e1"]);
        assert_eq!(resumed(&run), None);
        remove(&run);
        assert!(listing(&run).is_empty(), "{:?}", listing(&run));
        // A later one killed before its switch: the complete stray is ignored, and the
        // redone epoch replaces it.
        commit_epoch(&run, 1, 0.5);
        commit_killed(&run, 2, 0.4, "checkpoint-switch");
        assert!(run.join("checkpoint.e2").join(POSITION).is_file());
        assert_eq!(resumed(&run), Some(1));
        commit_epoch(&run, 2, 0.4);
        assert_eq!(resumed(&run), Some(2));
        assert_eq!(listing(&run), ["best", "best.e1", "checkpoint", "checkpoint.e2"]);
        // A fresh start killed while removing the current folder: its position is still
        // there, its weights are not; a resume finds no checkpoint rather than failing.
        std::fs::remove_file(run.join("checkpoint.e2").join(WEIGHTS)).unwrap();
        assert_eq!(resumed(&run), None);
        remove(&run);
        assert!(listing(&run).is_empty(), "{:?}", listing(&run));
        std::fs::remove_dir_all(run).unwrap();
    }

    #[test]
    fn each_test_set_keeps_its_own_best_and_a_fresh_start_removes_them() {
        let run = scratch("test-bests");
        // R@1 per epoch: validation, test set `A/1` (a name to make safe), test set `B`.
        for (epoch, [val, a, b]) in [[0.5, 0.2, 0.9], [0.6, 0.4, 0.1], [0.4, 0.3, 0.2]]
            .into_iter()
            .enumerate()
        {
            let (vs, opt, scores) = state((epoch + 1) as f64);
            let position = Position {
                epoch: epoch + 1,
                global_step: epoch + 1,
                hash: "h".into(),
            };
            let candidates = [
                ("val", val, Kept::Validation),
                ("A/1", a, Kept::OwnTestBest),
                ("B", b, Kept::OwnTestBest),
            ]
            .map(|(dataset, r1, kept_as)| Candidate { dataset, r1, kept_as });
            commit(&run, &position, &vs, &opt, &scores, &candidates).unwrap();
        }
        let kept = |folder: &str| {
            let best: Best = read_json(&run.join(folder).join(BEST_JSON)).unwrap();
            let weights = read_safetensors(&run.join(folder).join(WEIGHTS)).unwrap();
            assert_eq!(weights["w"].double_value(&[0]), best.epoch as f64, "{folder}");
            (best.epoch, best.dataset)
        };
        assert_eq!(kept("best"), (2, "val".into()));
        assert_eq!(test_best_folder("A/1"), "best-A_1");
        assert_eq!(kept("best-A_1"), (2, "A/1".into()));
        assert_eq!(kept("best-B"), (1, "B".into()));
        assert_eq!(
            listing(&run),
            [
                "best",
                "best-A_1",
                "best-A_1.e2",
                "best-B",
                "best-B.e1",
                "best.e2",
                "checkpoint",
                "checkpoint.e3"
            ]
        );
        remove(&run);
        assert!(listing(&run).is_empty(), "{:?}", listing(&run));
        std::fs::remove_dir_all(run).unwrap();
    }

    #[test]
    fn a_store_of_the_previous_layout_resumes_and_moves_to_links() {
        // What the previous layout wrote: real `checkpoint/` and `best/` folders.
        let legacy = |name: &str| {
            let run = scratch(name);
            commit_epoch(&run, 1, 0.5);
            for slot in [CHECKPOINT, BEST] {
                std::fs::remove_file(slot.link(&run)).unwrap();
                std::fs::rename(slot.folder(&run, 1), slot.link(&run)).unwrap();
            }
            assert!(is_real_folder(&run.join("checkpoint")));
            run
        };
        let run = legacy("legacy");
        assert_eq!((resumed(&run), kept_best(&run)), (Some(1), Some((1, 0.5))));
        assert_eq!(commit_epoch(&run, 2, 0.7).map(|b| b.epoch), Some(2));
        assert_eq!((resumed(&run), kept_best(&run)), (Some(2), Some((2, 0.7))));
        assert_eq!(listing(&run), ["best", "best.e2", "checkpoint", "checkpoint.e2"]);
        std::fs::remove_dir_all(run).unwrap();

        // Killed while moving to links: the old folder moved aside, the link not yet there.
        let run = legacy("legacy-moving");
        std::fs::rename(run.join("checkpoint"), run.join("checkpoint.old")).unwrap();
        assert_eq!(resumed(&run), Some(1));

        // The previous layout killed between its two renames, the same state (with its
        // complete new checkpoint in `checkpoint.tmp/`, which is not read).
        let run = legacy("legacy-between-renames");
        commit_killed(&run, 2, 0.4, "checkpoint-switch");
        std::fs::rename(run.join("checkpoint"), run.join("checkpoint.old")).unwrap();
        std::fs::rename(run.join("checkpoint.e2"), run.join("checkpoint.tmp")).unwrap();
        assert_eq!(resumed(&run), Some(1));
        commit_epoch(&run, 2, 0.4);
        // No new best: `best/` stays the old folder until there is one.
        assert_eq!((resumed(&run), kept_best(&run)), (Some(2), Some((1, 0.5))));
        assert!(is_real_folder(&run.join("best")));
        assert_eq!(listing(&run), ["best", "checkpoint", "checkpoint.e2"]);
        std::fs::remove_dir_all(run).unwrap();
    }
}
