//! The start stage of a run: resume after the checkpoint of this run that rank 0 finds, or
//! start afresh (evaluating the untrained model as epoch 0); every rank then starts from
//! rank 0's weights. Also the session record written once the start is known.

use tch::Tensor;

use super::checkpoint;
use super::setup::Run;
use super::trainer::RunError;
use crate::dist::buckets;
use crate::eval::metrics::RetrievalMetrics;
use crate::provenance::{self, Recorder, Session};
use crate::store::RunDir;

/// Where the epochs start.
pub(super) struct Start {
    /// The first epoch to train.
    pub epoch: usize,
    pub global_step: usize,
    /// The evaluation before the first epoch trained (empty when resuming).
    pub last: Vec<(String, RetrievalMetrics)>,
    /// The epoch the checkpoint resumed from ended, when resuming.
    pub resumed_after: Option<usize>,
}

impl Run<'_> {
    /// Restores the checkpoint of this run (`resume` and one found by rank 0) or discards
    /// any old one and evaluates the untrained model; then broadcasts rank 0's weights.
    pub fn start(&mut self, resume: bool) -> Result<Start, RunError> {
        let found = checkpoint::position(&self.dir.path).filter(|p| resume && p.hash == self.plan.hash);
        let mut start = match self.group.leader_value(i64::from(found.is_some()))? {
            1 => self.restore()?,
            _ => self.fresh(),
        };
        self.broadcast_weights()?;
        if start.resumed_after.is_none() && self.group.is_leader() {
            start.last = self.evaluate(0)?;
        }
        self.group.wait_for_leader()?;
        Ok(start)
    }

    fn restore(&mut self) -> Result<Start, RunError> {
        let position = checkpoint::restore(&self.dir.path, &self.vs, &mut self.opt, &mut self.scores)?;
        if self.group.is_leader() {
            self.dir.keep_metrics_through(position.epoch)?;
        }
        self.log.line(format!(
            "resumed after epoch {} (step {})",
            position.epoch, position.global_step
        ))?;
        Ok(Start {
            epoch: position.epoch + 1,
            global_step: position.global_step,
            last: Vec::new(),
            resumed_after: Some(position.epoch),
        })
    }

    fn fresh(&self) -> Start {
        if self.group.is_leader() {
            checkpoint::remove(&self.dir.path);
        }
        Start {
            epoch: 1,
            global_step: 0,
            last: Vec::new(),
            resumed_after: None,
        }
    }

    /// Every rank starts from rank 0's weights.
    fn broadcast_weights(&self) -> Result<(), RunError> {
        let mut variables: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        buckets::broadcast(
            &*self.collective,
            &variables.iter().map(|(_, v)| v).collect::<Vec<_>>(),
        )?;
        Ok(())
    }

    /// Rank 0 adds this session to the run's `provenance.json`; the returned recorder
    /// completes it when the run ends.
    pub fn record_session(&self, resumed_after: Option<usize>) -> Result<Option<Recorder>, RunError> {
        if !self.group.is_leader() {
            return Ok(None);
        }
        let session = Session {
            command: provenance::command_line(),
            host: provenance::host(),
            device: self.device_record.clone(),
            precision: self.precision.to_string(),
            ranks: self.group.world(),
            started: provenance::now_utc(),
            ended: None,
            wall_s: None,
            outcome: None,
            resumed_after,
        };
        Ok(Some(Recorder::start(&self.dir.path, session)?))
    }
}

/// The evaluation records of `epoch` from the metrics log.
pub(super) fn read_last_eval(dir: &RunDir, epoch: usize) -> Vec<(String, RetrievalMetrics)> {
    dir.metrics()
        .into_iter()
        .filter(|r| r["kind"] == "eval" && r["epoch"] == epoch)
        .map(|r| {
            let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            let metrics = RetrievalMetrics {
                r1: f("R1"),
                r5: f("R5"),
                r10: f("R10"),
                map: f("mAP"),
                minp: f("mINP"),
                cmc: Vec::new(),
                num_queries: r["queries"].as_u64().unwrap_or(0) as usize,
                per_query: Default::default(),
            };
            (r["dataset"].as_str().unwrap_or_default().to_string(), metrics)
        })
        .collect()
}
