//! One run, start to finish, in named stages: set-up (device, data, model, components,
//! starting weights: [`super::setup`]), the start (a checkpoint of this run to resume, or a
//! fresh start with an evaluation of the untrained model: [`super::resume`]), the epochs
//! (training steps: [`super::epoch`]; then scores, evaluation and checkpoint:
//! [`super::epoch_end`]), and the session's provenance around them.

use gadms_plugin::PluginError;
use tch::Device;

use super::checkpoint::CheckpointError;
use super::init::InitError;
use super::optim::OptimError;
use super::precision::AutocastError;
use super::schedule::ScheduleError;
use super::setup::Run;
use super::step::StepError;
use crate::components::ComponentError;
use crate::data::loader::DataError;
use crate::data::tokenizer::TokenizerError;
use crate::dist::{DistError, ProcessGroup};
use crate::eval::metrics::RetrievalMetrics;
use crate::eval::retrieval::EvalError;
use crate::plugin::PluginSet;
use crate::progress::Progress;
use crate::spec::RunPlan;
use crate::store::{RunDir, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error("loading `{key}` ({plugin}): {source}")]
    Dataset {
        key: String,
        plugin: String,
        #[source]
        source: Box<PluginError>,
    },
    #[error("`{key}`: {source}")]
    Data {
        key: String,
        #[source]
        source: Box<DataError>,
    },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("`model.init`: {0}")]
    Init(#[from] Box<InitError>),
    #[error("epoch {epoch}, step {step}: {source}")]
    Step {
        epoch: usize,
        step: usize,
        #[source]
        source: Box<StepError>,
    },
    #[error(
        "epoch {epoch}, step {step}: loss `{loss}` is {value}; lower the learning rate or check the data"
    )]
    NonFinite {
        epoch: usize,
        step: usize,
        loss: String,
        value: f64,
    },
    #[error("evaluating `{dataset}` after epoch {epoch}: {source}")]
    Eval {
        dataset: String,
        epoch: usize,
        #[source]
        source: Box<EvalError>,
    },
    #[error("masking the sample captions of the report after epoch {epoch}: {source}")]
    SampleMasking {
        epoch: usize,
        #[source]
        source: Box<PluginError>,
    },
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Checkpoint(#[from] Box<CheckpointError>),
    #[error(transparent)]
    Autocast(#[from] AutocastError),
    #[error(transparent)]
    Dist(#[from] DistError),
    #[error("epoch {epoch}, step {step}: {source}")]
    Update {
        epoch: usize,
        step: usize,
        #[source]
        source: OptimError,
    },
}

impl RunError {
    /// The error of the exchange with the other ranks behind this one, if it is one.
    pub fn dist(&self) -> Option<&DistError> {
        match self {
            Self::Dist(e) => Some(e),
            Self::Step { source, .. } => match source.as_ref() {
                StepError::Gather(e) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<CheckpointError> for RunError {
    fn from(e: CheckpointError) -> Self {
        Self::Checkpoint(Box::new(e))
    }
}

/// What a finished run reports: the evaluation after the last epoch, per dataset, and the
/// device it trained on (with how `auto` chose it).
pub struct RunResult {
    pub last: Vec<(String, RetrievalMetrics)>,
    pub device: String,
}

/// Parses `train.device`, refusing a CUDA device libtorch cannot use: a run asked to train
/// on a GPU never falls back to the CPU.
pub fn device(name: &str) -> Result<Device, String> {
    let cuda = |index: usize| {
        let count = tch::Cuda::device_count() as usize;
        if index < count {
            Ok(Device::Cuda(index))
        } else if count == 0 {
            Err(format!(
                "`train.device` = `{name}`, but libtorch sees no CUDA device (no GPU, or an NVIDIA driver \
                 older than the CUDA 13 build of torch needs; `gadms-run doctor` shows what it sees); \
                 set `train.device = \"cpu\"` to train on the CPU"
            ))
        } else {
            Err(format!(
                "`train.device` = `{name}`, but libtorch sees {count} CUDA device(s), cuda:0 to cuda:{}",
                count - 1
            ))
        }
    };
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(index) => cuda(index),
            None => Err(format!(
                "`train.device` = `{other}`: expected auto, cpu, cuda or cuda:N"
            )),
        },
    }
}

/// Trains and evaluates one run, logging into `dir`. With `resume`, a checkpoint of the
/// same run in `dir` is restored and training continues after its epoch; otherwise any old
/// checkpoint is discarded.
///
/// Across the ranks of `group`, `train.batch_size` is the global batch: each rank trains on
/// its share of it and the ranks average their gradients, so the run computes what one
/// process computes on the global batch. Rank 0 alone logs, evaluates and writes `dir`
/// while the others wait; every rank reads a checkpoint to resume from `dir`, which must
/// therefore be on storage all nodes see.
pub fn train(
    plan: &RunPlan,
    plugins: &PluginSet,
    base_dir: &std::path::Path,
    dir: &RunDir,
    resume: bool,
    progress: &Progress,
    group: &ProcessGroup,
) -> Result<RunResult, RunError> {
    let mut run = Run::set_up(plan, plugins, base_dir, dir, progress, group)?;
    let start = run.start(resume)?;
    let session = run.record_session(start.resumed_after)?;
    let result = run.epochs(start);
    if let Some(session) = session {
        session.finish(if result.is_ok() { "done" } else { "failed" })?;
    }
    Ok(RunResult {
        last: result?,
        device: run.device_summary(),
    })
}

impl Run<'_> {
    /// Every epoch from `start`: train, then (rank 0) scores, evaluation and checkpoint.
    /// Returns the last evaluation.
    fn epochs(&mut self, start: super::resume::Start) -> Result<Vec<(String, RetrievalMetrics)>, RunError> {
        let t = &self.plan.config.train;
        let mut global_step = start.global_step;
        let mut last = start.last;
        let bar = self.progress.run(
            &format!("{} seed {}", self.plan.variant, self.plan.seed),
            ((t.epochs + 1).saturating_sub(start.epoch) * self.steps_per_epoch()) as u64,
        );
        for epoch in start.epoch..=t.epochs {
            self.train_epoch(epoch, &mut global_step, &bar)?;
            if !self.group.is_leader() {
                // Rank 0 evaluates and writes the checkpoint meanwhile.
                self.group.wait_for_leader()?;
                continue;
            }
            last = self.end_epoch(epoch, global_step)?;
            self.group.wait_for_leader()?;
        }
        if last.is_empty() && self.group.is_leader() {
            // Resumed after the last epoch: the run had only its status left to write.
            last = super::resume::read_last_eval(self.dir, t.epochs);
        }
        Ok(last)
    }
}
