//! One GA-DMS training forward: encoders, optional token scoring, the losses.
//!
//! The order follows the reference pre-training forward (method §1.9): image tokens; the
//! clean caption through the text blocks before the scorer's tail (only when the masking
//! strategy scores); the scorer; the alignment text at the *clean* caption's EOS; the MTP
//! text when a loss wants it; every loss on the same features. Nothing here reads a value
//! back to the host: losses and metrics stay tensors until a log point.
//!
//! Across ranks, the losses see the global batch: the image and text features and the person
//! ids of every rank, gathered ([`gather_rows_with_grad`]). A loss that compares the samples
//! of a batch (SDM, method §4.2) thus compares all of them, as one process would, and a
//! per-sample loss averages over them all; token-level inputs stay this rank's.

use gadms_plugin::loss::{LossInputs, LossOutput};
use gadms_plugin::masking::{ScoreInputs, ScoreOutput};
use gadms_plugin::{Loss, MaskingStrategy, PluginError};
use tch::Tensor;

use super::stages::{Stage, Stages};
use crate::dist::{gather_rows_with_grad, Collective, DistError};
use crate::model::{Clip, TextTransformer};

/// A collated training batch on the training device.
pub struct Batch {
    /// `[B, 3, H, W]` float, normalised.
    pub images: Tensor,
    /// Clean caption ids `[B, L]`.
    pub clean: Tensor,
    /// Alignment-text ids `[B, L]` (noise tokens masked, or the clean ids).
    pub alignment: Tensor,
    /// The MTP view, when the masking strategy made one.
    pub mtp: Option<MtpBatch>,
    /// Person ids `[B]`.
    pub pids: Tensor,
}

/// MTP inputs: ids `[B, L]`, labels `[B, L]` (0 = no target) and the flat positions of the
/// labels `[M]`, computed on the host by the collator.
pub struct MtpBatch {
    pub ids: Tensor,
    pub labels: Tensor,
    pub positions: Tensor,
}

/// A loss with the weight the spec gives it.
pub struct WeightedLoss {
    pub name: String,
    pub weight: f64,
    pub loss: Box<dyn Loss>,
}

/// What one forward produced.
pub struct StepOutput {
    /// Σ weight · loss, the tensor to differentiate.
    pub total: Tensor,
    /// Each loss, weighted, by name.
    pub losses: Vec<(String, Tensor)>,
    /// Metrics reported by the losses, prefixed with the loss name (`mtp/mlm_acc`).
    pub metrics: Vec<(String, Tensor)>,
    /// Token scores of the batch, when the strategy scores.
    pub scores: Option<ScoreOutput>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("masking strategy failed while scoring: {0}")]
    Scoring(#[source] PluginError),
    #[error("loss `{name}` failed: {source}")]
    Loss {
        name: String,
        #[source]
        source: PluginError,
    },
    #[error(
        "loss `{0}` needs the masked-token-prediction view, but the masking strategy makes none; \
         use a strategy with MTP masking (e.g. `random` or `gadms`) or drop the loss"
    )]
    NoMtpView(String),
    #[error(
        "the masking strategy re-runs the last {tail} text blocks but the model has only {layers}; \
         lower the strategy's `layers` option"
    )]
    TailTooLong { tail: usize, layers: usize },
    #[error("gathering the batch's features from the other ranks: {0}")]
    Gather(#[from] DistError),
    #[error(transparent)]
    Autocast(#[from] super::precision::AutocastError),
}

/// Runs the forward of one step, this rank's part of the global batch of `collective`'s
/// ranks. Gradients flow from `total` into the encoders and the losses' own parameters; the
/// scorer's gradients never reach a parameter. `stages` marks the end of each stage.
pub fn forward(
    clip: &Clip,
    masking: &dyn MaskingStrategy,
    losses: &[WeightedLoss],
    batch: &Batch,
    collective: &dyn Collective,
    stages: &mut Stages,
) -> Result<StepOutput, StepError> {
    let eos = TextTransformer::eos_positions(&batch.clean); // [B]
    let image_tokens = encode_image(clip, batch, stages); // [B, 1+N, E]
    let scores = scores(clip, masking, batch, &eos, &image_tokens, stages)?;
    let text_eos = encode_alignment(clip, batch, stages); // [B, E]
    let mtp_tokens = encode_mtp(clip, losses.iter(), batch, stages)?;

    let image_cls = gather_rows_with_grad(collective, &image_tokens.select(1, 0))?; // [W·B, E]
    let text_eos = gather_rows_with_grad(collective, &text_eos)?; // [W·B, E]
    let pids = collective.all_gather(&batch.pids)?; // [W·B]
    let inputs = LossInputs {
        image_cls: &image_cls,
        text_eos: &text_eos,
        image_tokens: &image_tokens,
        mtp_tokens: mtp_tokens.as_ref(),
        mtp_labels: batch.mtp.as_ref().map(|m| &m.labels),
        mtp_label_positions: batch.mtp.as_ref().map(|m| &m.positions),
        pids: &pids,
        logit_scale: clip.config.logit_scale(),
    };
    let weighed = Weighed::of(losses.iter(), &inputs)?;
    stages.lap(Stage::Losses);
    Ok(weighed.into_output(scores))
}

/// The image encoder's tokens `[B, 1+N, E]`; the CLS feature is token 0.
pub(super) fn encode_image(clip: &Clip, batch: &Batch, stages: &mut Stages) -> Tensor {
    let tokens = clip.visual.forward(&batch.images);
    stages.lap(Stage::Image);
    tokens
}

/// The alignment text's feature at its own EOS `[B, E]`: the clean caption's position when
/// masking replaced tokens, an earlier one when a noise cut dropped some.
pub(super) fn encode_alignment(clip: &Clip, batch: &Batch, stages: &mut Stages) -> Tensor {
    let tokens = clip.text.encode_tokens(&batch.alignment); // [B, L, E]
    let features = TextTransformer::at_eos(&tokens, &TextTransformer::eos_positions(&batch.alignment));
    stages.lap(Stage::Alignment);
    features
}

/// The MTP text's features at every position `[B, L, E]`, when one of `losses` wants them.
pub(super) fn encode_mtp<'l>(
    clip: &Clip,
    mut losses: impl Iterator<Item = &'l WeightedLoss>,
    batch: &Batch,
    stages: &mut Stages,
) -> Result<Option<Tensor>, StepError> {
    let Some(wants) = losses.find(|l| l.loss.uses_mtp_view()) else {
        return Ok(None);
    };
    let mtp = batch
        .mtp
        .as_ref()
        .ok_or_else(|| StepError::NoMtpView(wants.name.clone()))?;
    let tokens = clip.text.encode_tokens(&mtp.ids);
    stages.lap(Stage::Mtp);
    Ok(Some(tokens))
}

/// The batch's token scores, when the masking strategy scores.
pub(super) fn scores(
    clip: &Clip,
    masking: &dyn MaskingStrategy,
    batch: &Batch,
    eos: &Tensor,
    image_tokens: &Tensor,
    stages: &mut Stages,
) -> Result<Option<ScoreOutput>, StepError> {
    masking
        .scoring()
        .map(|request| {
            score(
                clip,
                masking,
                request.tail_layers,
                batch,
                eos,
                image_tokens,
                stages,
            )
        })
        .transpose()
}

/// Σ weight · loss over some of the step's losses, with each weighted loss and the losses'
/// metrics, all still on the device.
pub(super) struct Weighed {
    pub total: Tensor,
    pub losses: Vec<(String, Tensor)>,
    pub metrics: Vec<(String, Tensor)>,
}

impl Weighed {
    /// Runs `losses` on `inputs`.
    pub fn of<'l>(
        losses: impl Iterator<Item = &'l WeightedLoss>,
        inputs: &LossInputs<'_>,
    ) -> Result<Self, StepError> {
        let mut parts: Vec<(String, Tensor)> = Vec::new();
        let mut metrics = Vec::new();
        for l in losses {
            let LossOutput { loss, metrics: m } =
                l.loss.forward(inputs).map_err(|source| StepError::Loss {
                    name: l.name.clone(),
                    source,
                })?;
            parts.push((l.name.clone(), loss * l.weight));
            metrics.extend(m.into_iter().map(|(k, v)| (format!("{}/{k}", l.name), v)));
        }
        let total = parts
            .iter()
            .map(|(_, weighted)| weighted.shallow_clone())
            .reduce(|a, b| a + b)
            .unwrap_or_else(|| Tensor::zeros([], (tch::Kind::Float, inputs.pids.device())));
        Ok(Self {
            total,
            losses: parts,
            metrics,
        })
    }

    /// Nothing yet, to [`Weighed::add`] to.
    pub fn empty(device: tch::Device) -> Self {
        Self {
            total: Tensor::zeros([], (tch::Kind::Float, device)),
            losses: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// Adds `scale` × `other`, value by value; a name not seen before starts at zero.
    pub fn add(&mut self, other: &Weighed, scale: f64) {
        self.total = &self.total + other.total.detach() * scale;
        for (mine, theirs) in [
            (&mut self.losses, &other.losses),
            (&mut self.metrics, &other.metrics),
        ] {
            for (name, value) in theirs {
                let scaled = value.detach().to_kind(tch::Kind::Float) * scale;
                match mine.iter_mut().find(|(k, _)| k == name) {
                    Some((_, sum)) => *sum = &*sum + scaled,
                    None => mine.push((name.clone(), scaled)),
                }
            }
        }
    }

    pub fn into_output(self, scores: Option<ScoreOutput>) -> StepOutput {
        StepOutput {
            total: self.total,
            losses: self.losses,
            metrics: self.metrics,
            scores,
        }
    }
}

/// The clean caption up to the scorer's tail (no gradient needed there), then the
/// strategy's own scoring on detached features.
fn score(
    clip: &Clip,
    masking: &dyn MaskingStrategy,
    tail: usize,
    batch: &Batch,
    eos: &Tensor,
    image_tokens: &Tensor,
    stages: &mut Stages,
) -> Result<ScoreOutput, StepError> {
    let blocks = &clip.text.transformer.resblocks;
    let head = blocks.len().checked_sub(tail).ok_or(StepError::TailTooLong {
        tail,
        layers: blocks.len(),
    })?;
    let text_state = tch::no_grad(|| clip.text.hidden(&batch.clean, head)); // [B, L, W]
    stages.lap(Stage::CleanCaption);
    let image_tokens = image_tokens.detach();
    let image_cls = image_tokens.select(1, 0);
    let inputs = ScoreInputs {
        token_ids: &batch.clean,
        eos,
        image_cls: &image_cls,
        image_tokens: &image_tokens,
        text_state: &text_state,
        tail_blocks: &blocks[head..],
        ln_final: &clip.text.ln_final,
        text_projection: &clip.text.text_projection,
    };
    let scores = masking.score(&inputs).map_err(StepError::Scoring);
    stages.lap(Stage::Score);
    scores
}
