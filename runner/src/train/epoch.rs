//! The training stage of an epoch: the epoch's order, sharded across ranks, streamed through
//! the data workers and the step; losses come back to the host only at log points.

use std::sync::Arc;
use std::time::Instant;

use gadms_plugin::rng::Rng;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use super::grad_cache::{self, StepParts};
use super::memory;
use super::precision::autocast;
use super::setup::Run;
use super::stages::{Stage, Stages};
use super::step::{self, Batch, MtpBatch};
use super::trainer::RunError;
use crate::data::loader::{EpochData, EpochLoader, HostBatch};
use crate::dist::{buckets, Collective};
use crate::model::flops::BatchShape;
use crate::progress::RunProgress;

impl Run<'_> {
    /// Trains one epoch at its learning rate, logging every `train.log_every` steps, and
    /// exchanges the epoch's token scores among the ranks.
    pub fn train_epoch(
        &mut self,
        epoch: usize,
        global_step: &mut usize,
        bar: &RunProgress,
    ) -> Result<(), RunError> {
        let lr = self.schedule.lr(epoch);
        self.opt.set_lr(lr);
        let mut loader = self.epoch_loader(epoch);
        let per_step = self.batches.per_step();
        let steps = loader.len().div_ceil(per_step);
        let mut window = Window::new();
        let mut stages = Stages::from_env(self.device);
        let mut ready = Instant::now();
        for step in 1..=steps {
            // The loader blocks until a batch is ready: the time since the previous step
            // ended is this step's wait for data.
            let micro = loader
                .by_ref()
                .take(per_step)
                .collect::<Result<Vec<HostBatch>, _>>()
                .map_err(|source| RunError::Data {
                    key: "data.train".into(),
                    source: Box::new(source),
                })?;
            window.data_wait += ready.elapsed().as_secs_f64();
            self.step(epoch, step, micro, &mut window, &mut stages)?;
            *global_step += 1;
            bar.step();
            if step % self.plan.config.train.log_every.max(1) == 0 || step == steps {
                self.log_point(&mut window, epoch, (step, steps), *global_step, lr, bar)?;
            }
            ready = Instant::now();
        }
        self.scores.flush(&*self.collective)?;
        self.stage_report(epoch, &mut stages)
    }

    /// The epoch's stage profile, when on: one `stages` record of per-stage median
    /// milliseconds into the metrics log and one line.
    fn stage_report(&self, epoch: usize, stages: &mut Stages) -> Result<(), RunError> {
        let Some((steps, medians)) = stages.take_medians() else {
            return Ok(());
        };
        let mut record = json!({"kind": "stages", "epoch": epoch, "steps": steps});
        for (stage, ms) in &medians {
            record[format!("{}_ms", stage.name())] = json!(ms);
        }
        let table: Vec<String> = medians
            .iter()
            .map(|(stage, ms)| format!("{} {ms:.2}", stage.name()))
            .collect();
        self.log.line(format!(
            "epoch {epoch} stages, median ms of {steps} steps: {}",
            table.join(", ")
        ))?;
        if self.group.is_leader() {
            self.dir.log_metrics(&record)?;
        }
        Ok(())
    }

    /// The epoch's batches: the run's order for `epoch`, this rank's share of it.
    fn epoch_loader(&self, epoch: usize) -> EpochLoader {
        let t = &self.plan.config.train;
        let mut order: Vec<usize> = (0..self.train_split.len()).collect();
        shuffle(&mut order, &mut Rng::derive(self.plan.seed, &[epoch as u64, 2]));
        let order = shard(order, self.group.rank(), self.group.world());
        let data = Arc::new(EpochData {
            split: Arc::clone(&self.train_split),
            masking: Arc::clone(&self.masking),
            scores: self.scores.snapshot(),
            image_size: self.model_cfg.image_size,
            augment: t.augment,
            seed: self.plan.seed,
            epoch: epoch as u64,
        });
        EpochLoader::spawn(data, order, self.batches.micro, t.workers, 2)
    }

    /// One step over the step's micro-batches: the gradients (one forward, or gradient
    /// caching over several), averaged across ranks, then Adam; the scores it computed go
    /// to the score store.
    fn step(
        &mut self,
        epoch: usize,
        step: usize,
        micro: Vec<HostBatch>,
        window: &mut Window,
        stages: &mut Stages,
    ) -> Result<(), RunError> {
        window.flops += micro
            .iter()
            .map(|host| self.work.flops(&self.model_cfg, shape(host)).total())
            .sum::<u64>();
        stages.start();
        let batches: Vec<Batch> = micro.iter().map(|host| to_device(host, self.device)).collect();
        stages.lap(Stage::Transfer);
        let (out, grads) = self
            .gradients(&batches, stages)
            .map_err(|source| RunError::Step {
                epoch,
                step,
                source: Box::new(source),
            })?;
        let grads = buckets::average_gradients(&*self.collective, grads)?;
        stages.lap(Stage::Backward);
        self.opt
            .step(&grads)
            .map_err(|source| RunError::Update { epoch, step, source })?;
        stages.lap(Stage::Optimizer);
        let samples: Vec<usize> = micro.into_iter().flat_map(|host| host.samples).collect();
        window.push(samples.len(), step, &out);
        if let Some(s) = out.scores {
            window.degenerate.push(s.degenerate);
            self.scores.record(samples, s.scores);
        }
        Ok(())
    }

    /// The step's forward values and parameter gradients: one forward and backward for one
    /// batch, gradient caching for several.
    fn gradients(
        &self,
        batches: &[Batch],
        stages: &mut Stages,
    ) -> Result<(step::StepOutput, Vec<Tensor>), step::StepError> {
        let parts = StepParts {
            clip: &self.clip,
            masking: self.masking.as_ref(),
            losses: &self.losses,
            collective: &*self.collective,
            precision: self.precision,
            device: self.device,
        };
        if let [batch] = batches {
            let out = autocast(parts.precision, parts.device, || {
                step::forward(
                    parts.clip,
                    parts.masking,
                    parts.losses,
                    batch,
                    parts.collective,
                    stages,
                )
            })??;
            let grads = self.opt.backward(&out.total);
            return Ok((out, grads));
        }
        grad_cache::gradients(&parts, batches, &self.opt.params(), stages)
    }

    /// A log point: the window's mean record into the metrics log, a line, the bar.
    fn log_point(
        &self,
        window: &mut Window,
        epoch: usize,
        (step, steps): (usize, usize),
        global_step: usize,
        lr: f64,
        bar: &RunProgress,
    ) -> Result<(), RunError> {
        let epochs = self.plan.config.train.epochs;
        let mut record = window.flush(epoch, step, global_step, lr, &*self.collective)?;
        if let Some(peak) = memory::take_peak(self.device) {
            record["gpu_peak_mib"] = json!(peak as f64 / (1 << 20) as f64);
        }
        let loss = record["loss"].as_f64().unwrap_or(f64::NAN);
        let samples_per_s = record["samples_per_s"].as_f64().unwrap_or(0.0);
        let tflop_per_s = record["tflop_per_s"].as_f64().unwrap_or(0.0);
        bar.status(epoch, epochs, loss, samples_per_s);
        self.log.line(format!(
            "epoch {epoch}/{epochs} step {step}/{steps} loss {loss:.4} ({samples_per_s:.1} samples/s, \
             {tflop_per_s:.2} TFLOP/s)"
        ))?;
        if self.group.is_leader() {
            self.dir.log_metrics(&record)?;
        }
        Ok(())
    }
}

/// Rank `rank`'s share of an epoch's `order` among `world` ranks, as PyTorch's
/// `DistributedSampler` deals it (method §5.5): the order padded to a multiple of `world` by
/// repeating its head, then every `world`-th position from `rank` on. Every rank gets as
/// many samples, so every step's global batch has the same share from each rank, and the
/// ranks' batches of one step together hold the positions of one process's batch.
fn shard(order: Vec<usize>, rank: usize, world: usize) -> Vec<usize> {
    let padded = order.len().div_ceil(world) * world;
    order
        .iter()
        .cycle()
        .take(padded)
        .skip(rank)
        .step_by(world)
        .copied()
        .collect()
}

/// Fisher–Yates with the run's generator.
fn shuffle(order: &mut [usize], rng: &mut Rng) {
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

/// What the FLOP count needs of a batch.
fn shape(host: &HostBatch) -> BatchShape {
    BatchShape {
        samples: host.samples.len() as i64,
        alignment_len: host.alignment.size()[1],
        labelled: host
            .mtp
            .as_ref()
            .map_or(0, |(_, _, positions)| positions.size()[0]),
    }
}

fn to_device(h: &HostBatch, device: Device) -> Batch {
    Batch {
        images: h.images.to_device(device),
        clean: h.clean.to_device(device),
        alignment: h.alignment.to_device(device),
        mtp: h.mtp.as_ref().map(|(ids, labels, positions)| MtpBatch {
            ids: ids.to_device(device),
            labels: labels.to_device(device),
            positions: positions.to_device(device),
        }),
        pids: h.pids.to_device(device),
    }
}

/// The steps since the last log point, kept as device tensors until then.
struct Window {
    started: Instant,
    samples: usize,
    steps: Vec<(usize, step::StepOutput)>,
    degenerate: Vec<Tensor>,
    data_wait: f64,
    /// Analytical FLOPs of the window's steps ([`StepWork::flops`]).
    flops: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            samples: 0,
            steps: Vec::new(),
            degenerate: Vec::new(),
            data_wait: 0.0,
            flops: 0,
        }
    }

    fn push(&mut self, samples: usize, step: usize, out: &step::StepOutput) {
        self.samples += samples;
        let kept = step::StepOutput {
            total: out.total.detach(),
            losses: out.losses.iter().map(|(k, v)| (k.clone(), v.detach())).collect(),
            metrics: out.metrics.iter().map(|(k, v)| (k.clone(), v.detach())).collect(),
            scores: None,
        };
        self.steps.push((step, kept));
    }

    /// Reads the window back (the log point's one sync), averaged over the ranks of
    /// `collective`, checks every step's losses are finite — naming the first step and loss
    /// that is not — and returns the mean record.
    fn flush(
        &mut self,
        epoch: usize,
        step: usize,
        global_step: usize,
        lr: f64,
        collective: &dyn Collective,
    ) -> Result<serde_json::Value, RunError> {
        let mut record =
            json!({"kind": "train", "epoch": epoch, "step": step, "global_step": global_step, "lr": lr});
        let count = self.steps.len().max(1) as f64;
        // Every value of the window in one tensor: one exchange averages it over the ranks,
        // one read brings it to the host. Losses are checked, metrics are not.
        let mut keys: Vec<(usize, String, bool)> = Vec::new();
        let mut values: Vec<Tensor> = Vec::new();
        for (s, out) in &self.steps {
            let losses = std::iter::once(("loss".to_string(), &out.total))
                .chain(out.losses.iter().map(|(k, v)| (format!("loss/{k}"), v)))
                .map(|(k, v)| (k, v, true));
            let metrics = out.metrics.iter().map(|(k, v)| (k.clone(), v, false));
            for (name, value, checked) in losses.chain(metrics) {
                keys.push((*s, name, checked));
                values.push(value.to_kind(Kind::Double).reshape([1]));
            }
        }
        let degenerate_from = values.len();
        values.extend(
            self.degenerate
                .iter()
                .map(|t| t.to_kind(Kind::Double).reshape([1])),
        );
        let all = Tensor::cat(&values, 0);
        collective.all_reduce_mean(&all)?;
        let all = Vec::<f64>::try_from(all.to_device(Device::Cpu))?;
        let mut sums: Vec<(String, f64)> = Vec::new();
        for ((s, name, checked), &v) in keys.into_iter().zip(&all) {
            if checked && !v.is_finite() {
                return Err(RunError::NonFinite {
                    epoch,
                    step: s,
                    loss: name,
                    value: v,
                });
            }
            add(&mut sums, name, v);
        }
        for (k, v) in sums {
            record[k] = json!(v / count);
        }
        // Counts and rates of the whole training: this rank's times the number of ranks.
        let world = collective.world() as f64;
        let degenerate: f64 = all[degenerate_from..].iter().sum::<f64>() * world;
        let elapsed = self.started.elapsed().as_secs_f64();
        record["score_degenerate"] = json!(degenerate.round() as i64);
        record["samples_per_s"] = json!(self.samples as f64 * world / elapsed.max(1e-9));
        record["data_wait_s"] = json!(self.data_wait);
        record["flops_per_step"] = json!(self.flops as f64 * world / count);
        record["tflop_per_s"] = json!(self.flops as f64 * world / elapsed.max(1e-9) / 1e12);
        record["elapsed_s"] = json!(elapsed);
        *self = Self::new();
        Ok(record)
    }
}

fn add(sums: &mut Vec<(String, f64)>, name: String, v: f64) {
    match sums.iter_mut().find(|(k, _)| *k == name) {
        Some((_, s)) => *s += v,
        None => sums.push((name, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_share_an_epoch_as_the_distributed_sampler_does() {
        let order = vec![4, 0, 3, 1, 2];
        assert_eq!(shard(order.clone(), 0, 1), order, "one rank takes everything");
        // Padded with the head to 6, then dealt in turn.
        assert_eq!(shard(order.clone(), 0, 2), [4, 3, 2]);
        assert_eq!(shard(order.clone(), 1, 2), [0, 1, 4]);
        let three: Vec<Vec<usize>> = (0..3).map(|r| shard(order.clone(), r, 3)).collect();
        assert_eq!(three, [vec![4, 1], vec![0, 2], vec![3, 4]]);
    }
}
