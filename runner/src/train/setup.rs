//! The set-up stage of a run: the device, the data (training split and evaluation sets,
//! screened and tokenised), the model with its starting weights, the plugin components,
//! the optimizer and the collective the ranks train through.

use std::path::Path;
use std::sync::Arc;

use gadms_plugin::dataset::SplitKind;
use gadms_plugin::MaskingStrategy;
use tch::{nn, Device, Tensor};

use super::init::{self, Expected};
use super::optim::Adam;
use super::precision::Precision;
use super::schedule::LrSchedule;
use super::scores::ScoreStore;
use super::step::WeightedLoss;
use super::trainer::{device, RunError};
use crate::components;
use crate::data::loader::TokenizedSplit;
use crate::data::screen;
use crate::data::tokenizer::Tokenizer;
use crate::dist::{DeviceCollective, ProcessGroup};
use crate::model::flops::{StepWork, MTP_DEFAULT_DEPTH};
use crate::model::{Clip, ModelConfig};
use crate::plugin::PluginSet;
use crate::progress::Progress;
use crate::provenance::{self, DeviceRecord};
use crate::spec::{ComponentConfig, RunConfig, RunPlan};
use crate::store::RunDir;

/// An evaluation set of the run.
pub(crate) struct EvalSet {
    pub name: String,
    pub split: TokenizedSplit,
    /// A validation split: the one that selects the best checkpoint.
    pub validation: bool,
}

/// Log lines of a run: on the terminal (through the progress bars) and in `run.log`, by
/// rank 0 only.
pub(super) struct RunLog<'a> {
    progress: &'a Progress,
    dir: &'a RunDir,
    label: String,
    leader: bool,
}

impl RunLog<'_> {
    pub fn line(&self, line: String) -> Result<(), RunError> {
        if !self.leader {
            return Ok(());
        }
        self.progress.println(&format!("[{}] {line}", self.label));
        Ok(self.dir.log_line(&line)?)
    }
}

/// Everything a run trains with, built once.
pub(super) struct Run<'a> {
    pub plan: &'a RunPlan,
    pub dir: &'a RunDir,
    pub group: &'a ProcessGroup,
    pub progress: &'a Progress,
    pub log: RunLog<'a>,
    pub model_cfg: ModelConfig,
    pub device: Device,
    pub device_record: DeviceRecord,
    /// `train.precision` on this device.
    pub precision: Precision,
    pub tokenizer: Tokenizer,
    pub train_split: Arc<TokenizedSplit>,
    pub evals: Vec<EvalSet>,
    pub vs: nn::VarStore,
    pub clip: Clip,
    pub losses: Vec<WeightedLoss>,
    pub masking: Arc<dyn MaskingStrategy>,
    pub scores: ScoreStore,
    pub work: StepWork,
    pub schedule: LrSchedule,
    pub opt: Adam,
    pub collective: DeviceCollective<'a>,
    /// This rank's share of the global batch.
    pub batches: Batches,
}

impl<'a> Run<'a> {
    pub fn set_up(
        plan: &'a RunPlan,
        plugins: &PluginSet,
        base_dir: &Path,
        dir: &'a RunDir,
        progress: &'a Progress,
        group: &'a ProcessGroup,
    ) -> Result<Self, RunError> {
        let cfg = &plan.config;
        let t = &cfg.train;
        let model_cfg = cfg
            .model
            .resolve()
            .map_err(|e| RunError::Config(format!("`model`: {e}")))?;
        let (device, device_record) = place(&t.device, group)?;
        let precision = t.precision.on(device);
        if t.threads > 0 {
            tch::set_num_threads(t.threads as i32);
        }
        tch::manual_seed(plan.seed as i64);
        let log = RunLog {
            progress,
            dir,
            label: format!("{} seed {}", plan.variant, plan.seed),
            leader: group.is_leader(),
        };
        let tokenizer = Tokenizer::clip()?;
        let note = |line| log.line(line);
        let loader = SplitLoader {
            plugins,
            base_dir,
            tokenizer: &tokenizer,
            context: model_cfg.context_length as usize,
            note: &note,
        };
        let train_split = Arc::new(loader.load("data.train", &cfg.data.train, SplitKind::Train)?);
        // Rank 0 alone evaluates.
        let evals = if group.is_leader() {
            loader.eval_sets(&cfg.data.eval)?
        } else {
            Vec::new()
        };
        let num_classes = train_split.data.captions.iter().map(|c| c.pid).max().unwrap_or(0) + 1;

        let vs = nn::VarStore::new(device);
        let clip = Clip::new(&vs.root(), &model_cfg);
        let losses = components::losses(
            plugins,
            cfg,
            &model_cfg,
            &vs.root(),
            num_classes,
            Some(train_split.token_ids()),
        )?;
        if let Some(file) = plan.init_file(base_dir) {
            let expected = Expected::build(plugins, cfg, &model_cfg, &vs, Some(num_classes))?;
            let fresh = init::load(&vs, &file, &model_cfg, &expected).map_err(Box::new)?;
            if !fresh.is_empty() {
                log.line(format!(
                    "started from {}; fresh: {}",
                    file.display(),
                    init::describe_fresh(&fresh)
                ))?;
            }
        }
        let masking: Arc<dyn MaskingStrategy> =
            Arc::from(components::masking(plugins, &cfg.masking, &model_cfg)?);
        let context = model_cfg.context_length as usize;
        let scores = match masking.noise_label_scores() {
            // The oracle: `components::check` refused a training set without noise labels.
            Some(_) => {
                ScoreStore::from_noise_labels(train_split.noise.as_deref(), train_split.len(), context)
            }
            None => ScoreStore::new(train_split.len(), context, masking.initial_score()),
        };
        let work = StepWork {
            score_tail: masking.scoring().map(|r| r.tail_layers as i64),
            mtp_depth: mtp_depth(cfg, &losses),
        };
        let schedule = LrSchedule::for_training(t)?;
        let opt = t.adam.build(&vs);
        // Rank 0 loads the evaluation sets too; the others wait for it as for its evaluations.
        group.wait_for_leader()?;
        let collective = group.on_device(device)?;
        let batches = Batches::new(t.batch_size, t.micro_batch, group.world())?;
        log.line(format!(
            "device {}, {}, {} parameters, {} training captions, {} identities, {}",
            device_record.used,
            t.precision.describe_on(device),
            vs.trainable_variables().iter().map(Tensor::numel).sum::<usize>(),
            train_split.len(),
            num_classes,
            batches.describe(t.batch_size, group.world()),
        ))?;
        Ok(Self {
            plan,
            dir,
            group,
            progress,
            log,
            model_cfg,
            device,
            device_record,
            precision,
            tokenizer,
            train_split,
            evals,
            vs,
            clip,
            losses,
            masking,
            scores,
            work,
            schedule,
            opt,
            collective,
            batches,
        })
    }

    /// Steps of one epoch on this rank.
    pub fn steps_per_epoch(&self) -> usize {
        self.train_split
            .len()
            .div_ceil(self.group.world())
            .div_ceil(self.batches.rank.max(1))
    }

    /// `cpu (auto: …)`, for the run's line in the summary.
    pub fn device_summary(&self) -> String {
        match &self.device_record.choice {
            Some(choice) => format!("{} ({choice})", self.device_record.used),
            None => self.device_record.used.clone(),
        }
    }
}

/// The device this rank trains on and its record. `--devices` places each run with
/// `GADMS_DEVICE`, which is not part of the run's identity; `auto` says what it chose and why.
fn place(configured: &str, group: &ProcessGroup) -> Result<(Device, DeviceRecord), RunError> {
    let requested = std::env::var("GADMS_DEVICE").unwrap_or_else(|_| configured.to_string());
    let device = group.device(device(&requested).map_err(RunError::Config)?);
    let (used, gpu) = match device {
        Device::Cuda(i) => (format!("cuda:{i}"), provenance::gpus().into_iter().nth(i)),
        _ => ("cpu".to_string(), None),
    };
    let choice = (requested == "auto").then(|| match device {
        Device::Cuda(_) => "auto: CUDA is available".to_string(),
        _ => "auto: libtorch sees no CUDA device, so the CPU".to_string(),
    });
    Ok((
        device,
        DeviceRecord {
            requested,
            used,
            choice,
            gpu,
        },
    ))
}

/// How a step's global batch is cut: into the ranks' equal shares, and each share into
/// micro-batches of one forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batches {
    /// Samples of one rank per step.
    pub rank: usize,
    /// Samples per forward; the loader's batch.
    pub micro: usize,
}

impl Batches {
    /// `batch_size` over `world` ranks, in forwards of at most `micro_batch` samples (0: one
    /// per rank); both cuts must be even. A spec thus names the forward a GPU holds, and
    /// runs unchanged on as many GPUs as share the batch without micro-batches.
    pub fn new(batch_size: usize, micro_batch: usize, world: usize) -> Result<Self, RunError> {
        if !batch_size.is_multiple_of(world) {
            return Err(RunError::Config(format!(
                "`train.batch_size` = {batch_size} is the global batch, shared evenly by the {world} ranks; \
                 make it a multiple of {world}"
            )));
        }
        let rank = batch_size / world;
        let micro = match micro_batch {
            m if m == 0 || m >= rank => rank,
            m if rank.is_multiple_of(m) => m,
            m => {
                return Err(RunError::Config(format!(
                    "`train.micro_batch` = {m} must divide each rank's share of the batch, \
                     `train.batch_size` {batch_size} / {world} ranks = {rank}; pick a divisor of {rank}, \
                     or 0 (or {rank} and more) for one forward per rank"
                )))
            }
        };
        Ok(Self { rank, micro })
    }

    /// Forwards per step, and so the loader's batches per step.
    pub fn per_step(&self) -> usize {
        self.rank / self.micro
    }

    /// `batch 1024 = 1 rank × 8 micro-batches of 128 (gradient caching)`, for the log.
    pub fn describe(&self, batch_size: usize, world: usize) -> String {
        let ranks = if world == 1 { "rank" } else { "ranks" };
        match self.per_step() {
            1 => format!("batch {batch_size} = {world} {ranks} × {}", self.rank),
            k => format!(
                "batch {batch_size} = {world} {ranks} × {k} micro-batches of {} (gradient caching)",
                self.micro
            ),
        }
    }
}

/// The cross-modal depth of the loss that reads the MTP view (its `depth` option, or the
/// `mtp` plugin's default), for the FLOP count; `None` without such a loss.
fn mtp_depth(cfg: &RunConfig, losses: &[WeightedLoss]) -> Option<i64> {
    let name = &losses.iter().find(|l| l.loss.uses_mtp_view())?.name;
    let options = &cfg.losses.get(name)?.options;
    Some(
        options
            .get("depth")
            .and_then(toml::Value::as_integer)
            .unwrap_or(MTP_DEFAULT_DEPTH),
    )
}

/// What loading any split of a run needs (a run's set-up, and `gadms-run eval`).
pub(crate) struct SplitLoader<'a> {
    pub plugins: &'a PluginSet,
    /// The spec's folder, which relative dataset paths start from.
    pub base_dir: &'a Path,
    pub tokenizer: &'a Tokenizer,
    /// The model's context length, which captions are tokenised to.
    pub context: usize,
    /// Where a line about the data goes (a run's log, or the terminal).
    pub note: &'a dyn Fn(String) -> Result<(), RunError>,
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
                (self.note)(format!(
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

    /// The evaluation sets (`data.eval`), each with its `name` (default: the plugin) and
    /// `split` (`val` or `test`, the default).
    pub fn eval_sets(&self, configs: &[ComponentConfig]) -> Result<Vec<EvalSet>, RunError> {
        configs
            .iter()
            .enumerate()
            .map(|(i, e)| {
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
                    .map_or_else(|| e.plugin.clone(), String::from);
                Ok(EvalSet {
                    name,
                    split: self.load(&format!("data.eval[{i}]"), e, kind)?,
                    validation: kind == SplitKind::Val,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_batch_is_cut_into_rank_shares_and_micro_batches() {
        let plain = Batches::new(1024, 0, 8).unwrap();
        assert_eq!((plain.rank, plain.micro, plain.per_step()), (128, 128, 1));
        let cached = Batches::new(1024, 128, 1).unwrap();
        assert_eq!((cached.rank, cached.micro, cached.per_step()), (1024, 128, 8));
        assert_eq!(
            cached.describe(1024, 1),
            "batch 1024 = 1 rank × 8 micro-batches of 128 (gradient caching)"
        );
        assert_eq!(
            Batches::new(1024, 128, 8).unwrap(),
            plain,
            "a micro-batch of a rank's share is one forward"
        );
    }

    #[test]
    fn uneven_cuts_are_refused_naming_the_key() {
        let ranks = Batches::new(100, 0, 8).unwrap_err().to_string();
        assert!(
            ranks.contains("`train.batch_size` = 100") && ranks.contains("multiple of 8"),
            "{ranks}"
        );
        assert_eq!(
            Batches::new(512, 128, 8).unwrap(),
            Batches::new(512, 0, 8).unwrap(),
            "a micro-batch above a rank's share is one forward"
        );
        for micro in [48, 100] {
            let e = Batches::new(1024, micro, 8).unwrap_err().to_string();
            assert!(
                e.contains(&format!("`train.micro_batch` = {micro}")) && e.contains("divisor of 128"),
                "{e}"
            );
        }
    }
}
