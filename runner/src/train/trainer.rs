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
use super::precision::{autocast, AutocastError};
use super::schedule::{LrSchedule, LrScheduleConfig, ScheduleError};
use super::scores::ScoreStore;
use super::step::{self, Batch, MtpBatch, StepError};
use crate::components::{self, ComponentError};
use crate::data::images::Augment;
use crate::data::loader::{DataError, EpochData, EpochLoader, HostBatch, TokenizedSplit};
use crate::data::tokenizer::{Tokenizer, TokenizerError};
use crate::eval::metrics::RetrievalMetrics;
use crate::eval::noise::noise_auroc;
use crate::eval::retrieval::{evaluate, EvalError};
use crate::model::weights::{load_named, read_safetensors, Strictness, WeightsError};
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
    #[error("`train`: {0}")]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Checkpoint(#[from] Box<CheckpointError>),
    #[error(transparent)]
    Autocast(#[from] AutocastError),
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

fn load_split(
    plugins: &PluginSet,
    key: &str,
    config: &ComponentConfig,
    kind: SplitKind,
    base_dir: &std::path::Path,
    tokenizer: &Tokenizer,
    context: usize,
) -> Result<TokenizedSplit, RunError> {
    let dataset = components::dataset(plugins, key, config, base_dir)?;
    let data = dataset.load(kind).map_err(|source| RunError::Dataset {
        key: key.into(),
        plugin: config.plugin.clone(),
        source: Box::new(source),
    })?;
    TokenizedSplit::new(kind.as_str(), data, tokenizer, context).map_err(|source| RunError::Data {
        key: key.into(),
        source: Box::new(source),
    })
}

/// Trains and evaluates one run, logging into `dir`. With `resume`, a checkpoint of the
/// same configuration in `dir` is restored and training continues after its epoch;
/// otherwise any old checkpoint is discarded.
pub fn train(
    plan: &RunPlan,
    plugins: &PluginSet,
    base_dir: &std::path::Path,
    dir: &RunDir,
    resume: bool,
    progress: &Progress,
) -> Result<RunResult, RunError> {
    let cfg = &plan.config;
    let t = &cfg.train;
    let model_cfg = cfg
        .model
        .resolve()
        .map_err(|e| RunError::Config(format!("`model`: {e}")))?;
    // `--devices` places each run with GADMS_DEVICE, which is not part of the run's identity.
    let device_name = std::env::var("GADMS_DEVICE").unwrap_or_else(|_| t.device.clone());
    let device = device(&device_name).map_err(RunError::Config)?;
    if t.threads > 0 {
        tch::set_num_threads(t.threads as i32);
    }
    tch::manual_seed(plan.seed as i64);
    let context = model_cfg.context_length as usize;
    let tokenizer = Tokenizer::clip()?;

    let train_split = Arc::new(load_split(
        plugins,
        "data.train",
        &cfg.data.train,
        SplitKind::Train,
        base_dir,
        &tokenizer,
        context,
    )?);
    let mut evals = Vec::new();
    for (i, e) in cfg.data.eval.iter().enumerate() {
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
        let split = load_split(
            plugins,
            &format!("data.eval[{i}]"),
            e,
            kind,
            base_dir,
            &tokenizer,
            context,
        )?;
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
        let tensors = read_safetensors(&file)?;
        // Loss heads may be absent from pretrained weights and stay freshly initialised.
        load_named(
            &vs,
            &tensors,
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

    let schedule = LrSchedule::new(LrScheduleConfig {
        base_lr: t.lr,
        num_epochs: t.epochs,
        warmup_epochs: t.warmup_epochs,
        warmup_factor: t.warmup_factor,
        ..LrScheduleConfig::default()
    })?;
    let mut opt = t.adam.build(&vs);

    let log = |line: String| -> Result<(), RunError> {
        progress.println(&format!("[{} seed {}] {line}", plan.variant, plan.seed));
        Ok(dir.log_line(&line)?)
    };
    log(format!(
        "device {device:?}, {} parameters, {} training captions, {} identities",
        vs.trainable_variables().iter().map(Tensor::numel).sum::<usize>(),
        train_split.len(),
        num_classes
    ))?;

    // Where training starts: after a checkpoint of this configuration, or from scratch.
    let resumed = match checkpoint::position(&dir.path).filter(|p| resume && p.hash == plan.hash) {
        Some(_) => {
            let position = checkpoint::restore(&dir.path, &vs, &mut opt, &mut scores)?;
            dir.keep_metrics_through(position.epoch)?;
            log(format!(
                "resumed after epoch {} (step {})",
                position.epoch, position.global_step
            ))?;
            Some(position)
        }
        None => {
            checkpoint::remove(&dir.path);
            None
        }
    };

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
        None => (1, 0, run_eval(0)?),
    };

    let n = train_split.len();
    let steps_per_epoch = n.div_ceil(t.batch_size.max(1));
    let bar = progress.run(
        &format!("{} seed {}", plan.variant, plan.seed),
        ((t.epochs + 1).saturating_sub(start) * steps_per_epoch) as u64,
    );
    for epoch in start..=t.epochs {
        let lr = schedule.lr(epoch);
        opt.set_lr(lr);
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, &mut Rng::derive(plan.seed, &[epoch as u64, 2]));
        let data = Arc::new(EpochData {
            split: Arc::clone(&train_split),
            masking: Arc::clone(&masking),
            scores: scores.snapshot(),
            image_size: model_cfg.image_size,
            augment: Augment::default(),
            seed: plan.seed,
            epoch: epoch as u64,
        });
        let loader = EpochLoader::spawn(data, order, t.batch_size, t.workers, 2);
        let steps = loader.len();
        let mut window = Window::new();
        for (step, host) in loader.enumerate() {
            let waited = Instant::now();
            let host = host.map_err(|source| RunError::Data {
                key: "data.train".into(),
                source: Box::new(source),
            })?;
            window.data_wait += waited.elapsed().as_secs_f64();
            let batch = to_device(&host, device);
            let out = autocast(t.precision, device, || {
                step::forward(&clip, masking.as_ref(), &losses, &batch)
            })?
            .map_err(|source| RunError::Step {
                epoch,
                step: step + 1,
                source: Box::new(source),
            })?;
            let grads = opt.backward(&out.total);
            opt.step(&grads);
            global_step += 1;
            bar.step();
            window.push(host.samples.len(), step + 1, &out);
            if let Some(s) = out.scores {
                window.degenerate.push(s.degenerate);
                scores.record(host.samples, s.scores);
            }
            if (step + 1) % t.log_every.max(1) == 0 || step + 1 == steps {
                let record = window.flush(epoch, step + 1, global_step, lr)?;
                let loss = record["loss"].as_f64().unwrap_or(f64::NAN);
                let samples_per_s = record["samples_per_s"].as_f64().unwrap_or(0.0);
                bar.status(epoch, t.epochs, loss, samples_per_s);
                log(format!(
                    "epoch {epoch}/{} step {}/{steps} loss {loss:.4} ({samples_per_s:.1} samples/s)",
                    t.epochs,
                    step + 1,
                ))?;
                dir.log_metrics(&record)?;
            }
        }
        scores.flush();
        if let (Some(noise), Some(_)) = (&train_split.noise, masking.scoring()) {
            let vocab = components::vocab(&model_cfg);
            if let Some(auroc) = noise_auroc(scores.table(), context, &train_split.tokens, noise, &vocab) {
                dir.log_metrics(&json!({"kind": "noise", "epoch": epoch, "auroc": auroc}))?;
                log(format!(
                    "epoch {epoch}: noise-token AUROC of the scores {auroc:.3}"
                ))?;
            }
        }
        last = run_eval(epoch)?;
        let position = Position {
            epoch,
            global_step,
            hash: plan.hash.clone(),
        };
        checkpoint::save(&dir.path, &position, &vs, &opt, &scores)?;
        // The best checkpoint is chosen on the first validation set, never on a test split.
        if let Some((name, m)) = evals
            .iter()
            .zip(&last)
            .find(|(e, _)| e.validation)
            .map(|(_, r)| r)
        {
            if checkpoint::improves_best(&dir.path, m.r1) {
                checkpoint::keep_as_best(&dir.path, epoch, name, m.r1)?;
                log(format!(
                    "epoch {epoch}: best so far on {name} (R@1 {:.2}), kept in best/",
                    m.r1
                ))?;
            }
        }
    }
    if last.is_empty() {
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
}

impl Window {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            samples: 0,
            steps: Vec::new(),
            degenerate: Vec::new(),
            data_wait: 0.0,
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

    /// Reads the window back (the log point's one sync), checks every step's losses are
    /// finite — naming the first step and loss that is not — and returns the mean record.
    fn flush(
        &mut self,
        epoch: usize,
        step: usize,
        global_step: usize,
        lr: f64,
    ) -> Result<serde_json::Value, RunError> {
        let mut record =
            json!({"kind": "train", "epoch": epoch, "step": step, "global_step": global_step, "lr": lr});
        let count = self.steps.len().max(1) as f64;
        let mut sums: Vec<(String, f64)> = Vec::new();
        for (s, out) in &self.steps {
            let named = std::iter::once(("loss".to_string(), &out.total))
                .chain(out.losses.iter().map(|(k, v)| (format!("loss/{k}"), v)));
            for (name, value) in named {
                let v = value.to_kind(Kind::Double).double_value(&[]);
                if !v.is_finite() {
                    return Err(RunError::NonFinite {
                        epoch,
                        step: *s,
                        loss: name,
                        value: v,
                    });
                }
                add(&mut sums, name, v);
            }
            for (name, value) in &out.metrics {
                add(
                    &mut sums,
                    name.clone(),
                    value.to_kind(Kind::Double).double_value(&[]),
                );
            }
        }
        for (k, v) in sums {
            record[k] = json!(v / count);
        }
        let degenerate: i64 = self.degenerate.iter().map(|t| t.int64_value(&[])).sum();
        let elapsed = self.started.elapsed().as_secs_f64();
        record["score_degenerate"] = json!(degenerate);
        record["samples_per_s"] = json!(self.samples as f64 / elapsed.max(1e-9));
        record["data_wait_s"] = json!(self.data_wait);
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
