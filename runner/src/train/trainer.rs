//! One run, start to finish: build the components from the resolved config, load the
//! data, then per epoch set the learning rate, stream batches through the step, write the
//! scores back and evaluate. Losses are read back to the host only at log points.

use std::sync::Arc;
use std::time::Instant;

use gadms_plugin::dataset::SplitKind;
use gadms_plugin::rng::Rng;
use gadms_plugin::PluginError;
use serde_json::json;
use tch::{nn, Device, Kind, Tensor};

use super::checkpoint::{self, CheckpointError, Position};
use super::memory;
use super::optim::OptimError;
use super::precision::{autocast, AutocastError};
use super::schedule::{LrSchedule, ScheduleError};
use super::scores::ScoreStore;
use super::step::{self, Batch, MtpBatch, StepError};
use crate::components::{self, ComponentError};
use crate::data::loader::{DataError, EpochData, EpochLoader, HostBatch, TokenizedSplit};
use crate::data::screen;
use crate::data::tokenizer::{Tokenizer, TokenizerError};
use crate::dist::{buckets, Collective, DistError, ProcessGroup};
use crate::eval::metrics::RetrievalMetrics;
use crate::eval::noise::noise_auroc;
use crate::eval::retrieval::{evaluate, EvalError};
use crate::eval::token_scores::TokenScores;
use crate::model::flops::{BatchShape, StepWork, MTP_DEFAULT_DEPTH};
use crate::model::import::{self, ImportError};
use crate::model::weights::{load_named, Strictness, WeightsError};
use crate::model::Clip;
use crate::plugin::PluginSet;
use crate::progress::Progress;
use crate::spec::{ComponentConfig, RunPlan};
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
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Import(#[from] ImportError),
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

/// What a finished run reports: the evaluation after the last epoch, per dataset.
pub struct RunResult {
    pub last: Vec<(String, RetrievalMetrics)>,
}

/// Parses `train.device`.
pub fn device(name: &str) -> Result<Device, String> {
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("`train.device` = `{other}`: expected auto, cpu, cuda or cuda:N")),
    }
}

struct EvalSet {
    name: String,
    split: TokenizedSplit,
    /// A validation split: the one that selects the best checkpoint.
    validation: bool,
}

/// What loading any split of a run needs.
struct SplitLoader<'a> {
    plugins: &'a PluginSet,
    base_dir: &'a std::path::Path,
    tokenizer: &'a Tokenizer,
    context: usize,
    log: &'a dyn Fn(String) -> Result<(), RunError>,
}

impl SplitLoader<'_> {
    /// Loads the `kind` split of the dataset at spec key `key`, screened for unreadable
    /// images when the dataset sets `skip_unreadable`, and tokenises it.
    fn load(&self, key: &str, config: &ComponentConfig, kind: SplitKind) -> Result<TokenizedSplit, RunError> {
        let dataset = components::dataset(self.plugins, key, config, self.base_dir)?;
        let mut data = dataset.load(kind).map_err(|source| RunError::Dataset {
            key: key.into(),
            plugin: config.plugin.clone(),
            source: Box::new(source),
        })?;
        let skip = config
            .options
            .get("skip_unreadable")
            .and_then(toml::Value::as_bool);
        if skip == Some(true) {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            let (kept, dropped) = screen::drop_unreadable(data, threads);
            data = kept;
            if let Some((index, first)) = dropped.images.first() {
                (self.log)(format!(
                    "`{key}`: skipped {} unreadable image(s) and their {} caption(s) (`skip_unreadable`); \
                     the first, image {index}: {first}",
                    dropped.images.len(),
                    dropped.captions
                ))?;
            }
        }
        TokenizedSplit::new(kind.as_str(), data, self.tokenizer, self.context).map_err(|source| {
            RunError::Data {
                key: key.into(),
                source: Box::new(source),
            }
        })
    }
}

/// Trains and evaluates one run, logging into `dir`. With `resume`, a checkpoint of the
/// same configuration in `dir` is restored and training continues after its epoch;
/// otherwise any old checkpoint is discarded.
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
    let cfg = &plan.config;
    let t = &cfg.train;
    let model_cfg = cfg
        .model
        .resolve()
        .map_err(|e| RunError::Config(format!("`model`: {e}")))?;
    // `--devices` places each run with GADMS_DEVICE, which is not part of the run's identity.
    let device_name = std::env::var("GADMS_DEVICE").unwrap_or_else(|_| t.device.clone());
    let device = group.device(device(&device_name).map_err(RunError::Config)?);
    if t.threads > 0 {
        tch::set_num_threads(t.threads as i32);
    }
    tch::manual_seed(plan.seed as i64);
    let context = model_cfg.context_length as usize;
    let tokenizer = Tokenizer::clip()?;
    let log = |line: String| -> Result<(), RunError> {
        if !group.is_leader() {
            return Ok(());
        }
        progress.println(&format!("[{} seed {}] {line}", plan.variant, plan.seed));
        Ok(dir.log_line(&line)?)
    };

    let loader = SplitLoader {
        plugins,
        base_dir,
        tokenizer: &tokenizer,
        context,
        log: &log,
    };
    let train_split = Arc::new(loader.load("data.train", &cfg.data.train, SplitKind::Train)?);
    let mut evals = Vec::new();
    // Rank 0 alone evaluates.
    for (i, e) in cfg.data.eval.iter().enumerate().filter(|_| group.is_leader()) {
        let kind = match e.options.get("split").and_then(|v| v.as_str()).unwrap_or("test") {
            "val" => SplitKind::Val,
            "test" => SplitKind::Test,
            other => {
                return Err(RunError::Config(format!(
                    "`data.eval[{i}].split` = `{other}`: expected `val` or `test`"
                )))
            }
        };
        let name = e
            .options
            .get("name")
            .and_then(|v| v.as_str())
            .map(String::from)
            .unwrap_or_else(|| e.plugin.clone());
        let split = loader.load(&format!("data.eval[{i}]"), e, kind)?;
        evals.push(EvalSet {
            name,
            split,
            validation: kind == SplitKind::Val,
        });
    }
    let num_classes = train_split.data.captions.iter().map(|c| c.pid).max().unwrap_or(0) + 1;

    let vs = nn::VarStore::new(device);
    let clip = Clip::new(&vs.root(), &model_cfg);
    let losses = components::losses(plugins, cfg, &model_cfg, &vs.root(), num_classes)?;
    if let Some(init) = &cfg.model.init {
        let file = base_dir.join(init);
        // Any supported format: gadms or Hugging Face safetensors, OpenAI's TorchScript
        // archive, an IRRA/GA-DMS torch.save checkpoint.
        let weights = import::read_weights(&file, &model_cfg)?;
        // Loss heads may be absent from pretrained weights and stay freshly initialised.
        load_named(
            &vs,
            &weights.tensors,
            &file,
            Strictness {
                allow_missing: true,
                allow_unexpected: false,
            },
        )?;
    }
    let masking: Arc<dyn gadms_plugin::MaskingStrategy> =
        Arc::from(components::masking(plugins, &cfg.masking, &model_cfg)?);
    let mut scores = ScoreStore::new(train_split.len(), context, masking.initial_score());
    let work = StepWork {
        score_tail: masking.scoring().map(|r| r.tail_layers as i64),
        mtp_depth: mtp_depth(cfg, &losses),
    };

    let schedule = LrSchedule::for_training(t)?;
    let mut opt = t.adam.build(&vs);
    // Rank 0 loads the evaluation sets too; the others wait for it as for its evaluations.
    group.wait_for_leader()?;
    let collective = group.on_device(device)?;
    let world = group.world();
    if !t.batch_size.is_multiple_of(world) {
        return Err(RunError::Config(format!(
            "`train.batch_size` = {} is the global batch, shared evenly by the {world} ranks; make it a \
             multiple of {world}",
            t.batch_size
        )));
    }
    let rank_batch = t.batch_size / world;

    log(format!(
        "device {device:?}, {} parameters, {} training captions, {} identities",
        vs.trainable_variables().iter().map(Tensor::numel).sum::<usize>(),
        train_split.len(),
        num_classes
    ))?;

    // Where training starts: after a checkpoint of this configuration, or from scratch, as
    // rank 0 finds it.
    let found = checkpoint::position(&dir.path).filter(|p| resume && p.hash == plan.hash);
    let resumed = match group.leader_value(i64::from(found.is_some()))? {
        1 => {
            let position = checkpoint::restore(&dir.path, &vs, &mut opt, &mut scores)?;
            if group.is_leader() {
                dir.keep_metrics_through(position.epoch)?;
            }
            log(format!(
                "resumed after epoch {} (step {})",
                position.epoch, position.global_step
            ))?;
            Some(position)
        }
        _ => {
            if group.is_leader() {
                checkpoint::remove(&dir.path);
            }
            None
        }
    };
    // Every rank starts from rank 0's weights.
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    buckets::broadcast(
        &*collective,
        &variables.iter().map(|(_, v)| v).collect::<Vec<_>>(),
    )?;

    let run_eval = |epoch: usize| -> Result<Vec<(String, RetrievalMetrics)>, RunError> {
        let mut out = Vec::new();
        for e in &evals {
            let m =
                evaluate(&clip, &e.split, device, t.eval_batch_size).map_err(|source| RunError::Eval {
                    dataset: e.name.clone(),
                    epoch,
                    source: Box::new(source),
                })?;
            dir.log_metrics(&json!({"kind": "eval", "epoch": epoch, "dataset": e.name,
                "R1": m.r1, "R5": m.r5, "R10": m.r10, "mAP": m.map, "mINP": m.minp, "queries": m.num_queries}))?;
            log(format!(
                "epoch {epoch} {}: R@1 {:.2} R@5 {:.2} R@10 {:.2} mAP {:.2} mINP {:.2}",
                e.name, m.r1, m.r5, m.r10, m.map, m.minp
            ))?;
            out.push((e.name.clone(), m));
        }
        Ok(out)
    };
    let (start, mut global_step, mut last) = match &resumed {
        Some(p) => (p.epoch + 1, p.global_step, Vec::new()),
        None if group.is_leader() => (1, 0, run_eval(0)?),
        None => (1, 0, Vec::new()),
    };
    group.wait_for_leader()?;

    let n = train_split.len();
    let steps_per_epoch = n.div_ceil(world).div_ceil(rank_batch.max(1));
    let bar = progress.run(
        &format!("{} seed {}", plan.variant, plan.seed),
        ((t.epochs + 1).saturating_sub(start) * steps_per_epoch) as u64,
    );
    for epoch in start..=t.epochs {
        let lr = schedule.lr(epoch);
        opt.set_lr(lr);
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, &mut Rng::derive(plan.seed, &[epoch as u64, 2]));
        let order = shard(order, group.rank(), world);
        let data = Arc::new(EpochData {
            split: Arc::clone(&train_split),
            masking: Arc::clone(&masking),
            scores: scores.snapshot(),
            image_size: model_cfg.image_size,
            augment: t.augment,
            seed: plan.seed,
            epoch: epoch as u64,
        });
        let loader = EpochLoader::spawn(data, order, rank_batch, t.workers, 2);
        let steps = loader.len();
        let mut window = Window::new();
        let mut ready = Instant::now();
        for (step, host) in loader.enumerate() {
            // The loader blocks until a batch is ready: the time since the previous step
            // ended is this step's wait for data.
            window.data_wait += ready.elapsed().as_secs_f64();
            let host = host.map_err(|source| RunError::Data {
                key: "data.train".into(),
                source: Box::new(source),
            })?;
            let labelled = host
                .mtp
                .as_ref()
                .map_or(0, |(_, _, positions)| positions.size()[0]);
            let shape = BatchShape {
                samples: host.samples.len() as i64,
                alignment_len: host.alignment.size()[1],
                labelled,
            };
            window.flops += work.flops(&model_cfg, shape).total();
            let batch = to_device(&host, device);
            let out = autocast(t.precision, device, || {
                step::forward(&clip, masking.as_ref(), &losses, &batch, &*collective)
            })?
            .map_err(|source| RunError::Step {
                epoch,
                step: step + 1,
                source: Box::new(source),
            })?;
            let grads = buckets::average_gradients(&*collective, opt.backward(&out.total))?;
            opt.step(&grads).map_err(|source| RunError::Update {
                epoch,
                step: step + 1,
                source,
            })?;
            global_step += 1;
            bar.step();
            window.push(host.samples.len(), step + 1, &out);
            if let Some(s) = out.scores {
                window.degenerate.push(s.degenerate);
                scores.record(host.samples, s.scores);
            }
            if (step + 1) % t.log_every.max(1) == 0 || step + 1 == steps {
                let mut record = window.flush(epoch, step + 1, global_step, lr, &*collective)?;
                if let Some(peak) = memory::take_peak(device) {
                    record["gpu_peak_mib"] = json!(peak as f64 / (1 << 20) as f64);
                }
                let loss = record["loss"].as_f64().unwrap_or(f64::NAN);
                let samples_per_s = record["samples_per_s"].as_f64().unwrap_or(0.0);
                let tflop_per_s = record["tflop_per_s"].as_f64().unwrap_or(0.0);
                bar.status(epoch, t.epochs, loss, samples_per_s);
                log(format!(
                    "epoch {epoch}/{} step {}/{steps} loss {loss:.4} ({samples_per_s:.1} samples/s, \
                     {tflop_per_s:.2} TFLOP/s)",
                    t.epochs,
                    step + 1,
                ))?;
                if group.is_leader() {
                    dir.log_metrics(&record)?;
                }
            }
            ready = Instant::now();
        }
        scores.flush(&*collective)?;
        if !group.is_leader() {
            // Rank 0 evaluates and writes the checkpoint meanwhile.
            group.wait_for_leader()?;
            continue;
        }
        if let (Some(noise), Some(_)) = (&train_split.noise, masking.scoring()) {
            let vocab = components::vocab(&model_cfg);
            if let Some(auroc) = noise_auroc(scores.table(), context, &train_split.tokens, noise, &vocab) {
                dir.log_metrics(&json!({"kind": "noise", "epoch": epoch, "auroc": auroc}))?;
                log(format!(
                    "epoch {epoch}: noise-token AUROC of the scores {auroc:.3}"
                ))?;
            }
        }
        TokenScores::sample(
            epoch,
            &train_split,
            &tokenizer,
            masking.as_ref(),
            scores.table(),
            6,
        )
        .map_err(|source| RunError::SampleMasking {
            epoch,
            source: Box::new(source),
        })?
        .write(&dir.path)?;
        last = run_eval(epoch)?;
        let position = Position {
            epoch,
            global_step,
            hash: plan.hash.clone(),
        };
        // The best checkpoint is chosen on the first validation set, never on a test split.
        let validation = evals
            .iter()
            .zip(&last)
            .find(|(e, _)| e.validation)
            .map(|(_, (name, m))| (name.as_str(), m.r1));
        if let Some(best) = checkpoint::commit(&dir.path, &position, &vs, &opt, &scores, validation)? {
            log(format!(
                "epoch {epoch}: best so far on {} (R@1 {:.2}), kept in best/",
                best.dataset, best.r1
            ))?;
        }
        group.wait_for_leader()?;
    }
    if last.is_empty() && group.is_leader() {
        // Resumed after the last epoch: the run had only its status left to write.
        last = read_last_eval(dir, t.epochs);
    }
    Ok(RunResult { last })
}

/// The evaluation records of `epoch` from the metrics log.
fn read_last_eval(dir: &RunDir, epoch: usize) -> Vec<(String, RetrievalMetrics)> {
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
            };
            (r["dataset"].as_str().unwrap_or_default().to_string(), metrics)
        })
        .collect()
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

/// The cross-modal depth of the loss that reads the MTP view (its `depth` option, or the
/// `mtp` plugin's default), for the FLOP count; `None` without such a loss.
fn mtp_depth(cfg: &crate::spec::RunConfig, losses: &[step::WeightedLoss]) -> Option<i64> {
    let name = &losses.iter().find(|l| l.loss.uses_mtp_view())?.name;
    let options = &cfg.losses.get(name)?.options;
    Some(
        options
            .get("depth")
            .and_then(toml::Value::as_integer)
            .unwrap_or(MTP_DEFAULT_DEPTH),
    )
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
