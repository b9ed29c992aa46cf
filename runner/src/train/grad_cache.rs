//! One training step over several micro-batches with the gradients of one big batch
//! (gradient caching), so that a GPU that holds 128 samples can train with the paper's
//! global batch of 1,024 and SDM still compares each sample with all 1,023 others.
//!
//! Plain gradient accumulation would run SDM on each micro-batch alone. Instead:
//! 1. every micro-batch is encoded without a graph (and scored, as a batch of its own);
//! 2. the batch-level losses — those that do not use the MTP view — run once on the
//!    features of all micro-batches, made leaves of their own; their backward yields the
//!    losses' parameter gradients and the gradient of the loss at every feature;
//! 3. each micro-batch is encoded again with a graph, and its backward starts from those
//!    cached feature gradients, plus its own MTP loss (token-level, as the reference's
//!    per-GPU MTP: the step's MTP is the mean over micro-batches).
//!
//! Step 3 re-encodes with the same inputs, so its features equal step 1's and the chain
//! rule gives exactly the big batch's gradient for the batch-level losses; the price is one
//! more forward of the encoders. Across ranks, the features of every rank's micro-batches
//! are gathered for step 2, so W ranks × K micro-batches compute what one process computes
//! on the global batch with W·K groups of the micro-batch's size.

use gadms_plugin::loss::LossInputs;
use gadms_plugin::masking::ScoreOutput;
use gadms_plugin::MaskingStrategy;
use tch::{Device, Kind, Tensor};

use super::precision::{autocast, Precision};
use super::stages::{Stage, Stages};
use super::step::{self, Batch, StepError, StepOutput, Weighed, WeightedLoss};
use crate::dist::{gather_rows_with_grad, Collective};
use crate::model::{Clip, TextTransformer};

/// What a step needs besides its batches: the model, the strategy and losses, the ranks and
/// the precision of the forward.
pub struct StepParts<'a> {
    pub clip: &'a Clip,
    pub masking: &'a dyn MaskingStrategy,
    pub losses: &'a [WeightedLoss],
    pub collective: &'a dyn Collective,
    pub precision: Precision,
    pub device: Device,
}

/// The step's forward values and the gradient of its total loss at every one of `params`
/// (undefined where the loss does not reach a parameter), over the micro-batches `micro`.
pub fn gradients(
    parts: &StepParts<'_>,
    micro: &[Batch],
    params: &[&Tensor],
    stages: &mut Stages,
) -> Result<(StepOutput, Vec<Tensor>), StepError> {
    let cached = parts.run(|| encode_all(parts, micro, stages))??;
    let (batch_level, at_features) = parts.batch_losses(&cached, params, stages)?;
    let mut weighed = Weighed::empty(parts.device);
    weighed.add(&batch_level.0, 1.0);
    let mut grads = batch_level.1;
    let share = 1.0 / micro.len() as f64;
    for (k, batch) in micro.iter().enumerate() {
        let feature_grads = at_features.rows(k, &cached.sizes);
        let (token_level, micro_grads) = parts.replay(batch, &feature_grads, share, params, stages)?;
        weighed.add(&token_level, share);
        accumulate(&mut grads, micro_grads);
    }
    Ok((weighed.into_output(cached.scores), grads))
}

/// Step 1's outputs: the features of every micro-batch, concatenated, without a graph.
struct Cached {
    /// `[K·m, 1+N, E]`.
    image_tokens: Tensor,
    /// `[K·m, E]`.
    text_eos: Tensor,
    /// `[K·m]`.
    pids: Tensor,
    /// Rows per micro-batch.
    sizes: Vec<i64>,
    scores: Option<ScoreOutput>,
}

/// The gradient of the batch-level losses at the cached features (undefined when no such
/// loss uses them).
struct FeatureGrads {
    image_tokens: Tensor,
    text_eos: Tensor,
}

impl FeatureGrads {
    /// Micro-batch `k`'s rows.
    fn rows(&self, k: usize, sizes: &[i64]) -> FeatureGrads {
        let start: i64 = sizes[..k].iter().sum();
        let rows = |g: &Tensor| match g.defined() {
            true => g.narrow(0, start, sizes[k]),
            false => Tensor::new(),
        };
        FeatureGrads {
            image_tokens: rows(&self.image_tokens),
            text_eos: rows(&self.text_eos),
        }
    }
}

impl StepParts<'_> {
    /// `f` under the run's precision.
    fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, StepError> {
        Ok(autocast(self.precision, self.device, f)?)
    }

    /// The losses that compare the samples of the whole batch.
    fn batch_level(&self) -> impl Iterator<Item = &WeightedLoss> {
        self.losses.iter().filter(|l| !l.loss.uses_mtp_view())
    }

    /// The losses computed per micro-batch.
    fn token_level(&self) -> impl Iterator<Item = &WeightedLoss> {
        self.losses.iter().filter(|l| l.loss.uses_mtp_view())
    }

    /// Step 2: the batch-level losses on the cached features of every rank; their weighed
    /// values with the gradients at `params`, and the gradients at this rank's features.
    fn batch_losses(
        &self,
        cached: &Cached,
        params: &[&Tensor],
        stages: &mut Stages,
    ) -> Result<((Weighed, Vec<Tensor>), FeatureGrads), StepError> {
        let image_tokens = cached.image_tokens.detach().set_requires_grad(true);
        let text_eos = cached.text_eos.detach().set_requires_grad(true);
        let weighed = self.run(|| -> Result<Weighed, StepError> {
            let image_cls = gather_rows_with_grad(self.collective, &image_tokens.select(1, 0))?;
            let text = gather_rows_with_grad(self.collective, &text_eos)?;
            let pids = self.collective.all_gather(&cached.pids)?;
            let inputs = LossInputs {
                image_cls: &image_cls,
                text_eos: &text,
                image_tokens: &image_tokens,
                mtp_tokens: None,
                mtp_labels: None,
                mtp_label_positions: None,
                pids: &pids,
                logit_scale: self.clip.config.logit_scale(),
            };
            Weighed::of(self.batch_level(), &inputs)
        })??;
        stages.lap(Stage::Losses);
        let mut inputs: Vec<&Tensor> = params.to_vec();
        inputs.extend([&image_tokens, &text_eos]);
        let mut grads = match weighed.total.requires_grad() {
            true => Tensor::run_backward(&[&weighed.total], &inputs, false, false),
            false => inputs.iter().map(|_| Tensor::new()).collect(),
        };
        stages.lap(Stage::Backward);
        let text_eos = grads.pop().expect("two feature leaves");
        let image_tokens = grads.pop().expect("two feature leaves");
        Ok((
            (weighed, grads),
            FeatureGrads {
                image_tokens,
                text_eos,
            },
        ))
    }

    /// Step 3 for one micro-batch: encodes it with a graph and back-propagates the cached
    /// feature gradients and `share` × its token-level losses. Returns those losses and the
    /// gradients at `params`.
    fn replay(
        &self,
        batch: &Batch,
        at: &FeatureGrads,
        share: f64,
        params: &[&Tensor],
        stages: &mut Stages,
    ) -> Result<(Weighed, Vec<Tensor>), StepError> {
        let (weighed, surrogate) = self.run(|| -> Result<(Weighed, Tensor), StepError> {
            let image_tokens = step::encode_image(self.clip, batch, stages);
            // Terms whose gradients at the features are the cached ones.
            let mut surrogate = Vec::new();
            if at.image_tokens.defined() {
                surrogate.push(dot(&image_tokens, &at.image_tokens));
            }
            let text_eos = match at.text_eos.defined() {
                true => step::encode_alignment(self.clip, batch, stages),
                false => Tensor::new(),
            };
            if text_eos.defined() {
                surrogate.push(dot(&text_eos, &at.text_eos));
            }
            let mtp_tokens = step::encode_mtp(self.clip, self.token_level(), batch, stages)?;
            let image_cls = image_tokens.select(1, 0);
            let inputs = LossInputs {
                image_cls: &image_cls,
                text_eos: &text_eos,
                image_tokens: &image_tokens,
                mtp_tokens: mtp_tokens.as_ref(),
                mtp_labels: batch.mtp.as_ref().map(|m| &m.labels),
                mtp_label_positions: batch.mtp.as_ref().map(|m| &m.positions),
                pids: &batch.pids,
                logit_scale: self.clip.config.logit_scale(),
            };
            let weighed = Weighed::of(self.token_level(), &inputs)?;
            stages.lap(Stage::Losses);
            surrogate.push(&weighed.total * share);
            let surrogate = surrogate
                .into_iter()
                .reduce(|a, b| a + b)
                .expect("the losses' term");
            Ok((weighed, surrogate))
        })??;
        let grads = Tensor::run_backward(&[&surrogate], params, false, false);
        stages.lap(Stage::Backward);
        Ok((weighed, grads))
    }
}

/// Step 1: every micro-batch's image tokens and alignment feature without a graph, and its
/// scores (each micro-batch is a scoring group of its own).
fn encode_all(parts: &StepParts<'_>, micro: &[Batch], stages: &mut Stages) -> Result<Cached, StepError> {
    let mut image_tokens = Vec::with_capacity(micro.len());
    let mut text_eos = Vec::with_capacity(micro.len());
    let mut scores = Vec::with_capacity(micro.len());
    for batch in micro {
        let eos = TextTransformer::eos_positions(&batch.clean);
        let tokens = tch::no_grad(|| step::encode_image(parts.clip, batch, stages));
        scores.extend(step::scores(
            parts.clip,
            parts.masking,
            batch,
            &eos,
            &tokens,
            stages,
        )?);
        text_eos.push(tch::no_grad(|| step::encode_alignment(parts.clip, batch, stages)));
        image_tokens.push(tokens);
    }
    let pids: Vec<&Tensor> = micro.iter().map(|b| &b.pids).collect();
    Ok(Cached {
        image_tokens: Tensor::cat(&image_tokens, 0),
        text_eos: Tensor::cat(&text_eos, 0),
        pids: Tensor::cat(&pids, 0),
        sizes: micro.iter().map(|b| b.pids.size()[0]).collect(),
        scores: join_scores(scores),
    })
}

/// The micro-batches' scores as one batch's: rows in order, degenerate counts summed.
fn join_scores(parts: Vec<ScoreOutput>) -> Option<ScoreOutput> {
    if parts.is_empty() {
        return None;
    }
    let scores: Vec<&Tensor> = parts.iter().map(|s| &s.scores).collect();
    let degenerate = parts
        .iter()
        .map(|s| s.degenerate.shallow_clone())
        .reduce(|a, b| a + b)
        .expect("not empty");
    Some(ScoreOutput {
        scores: Tensor::cat(&scores, 0),
        degenerate,
    })
}

/// `Σ x · g`, in float32: the surrogate whose gradient at `x` is `g`.
fn dot(x: &Tensor, g: &Tensor) -> Tensor {
    (x.to_kind(Kind::Float) * g.to_kind(Kind::Float)).sum(Kind::Float)
}

/// Adds `more` into `sum`, parameter by parameter; undefined means zero.
fn accumulate(sum: &mut [Tensor], more: Vec<Tensor>) {
    for (s, m) in sum.iter_mut().zip(more) {
        if !m.defined() {
            continue;
        }
        *s = match s.defined() {
            true => &*s + m,
            false => m,
        };
    }
}
