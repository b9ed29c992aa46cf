//! Masked token prediction (method §1.6, §4.6; IRRA's MLM): the masked caption's tokens are
//! decoded against the image tokens and the masked ones are predicted over the vocabulary.
//!
//! The vocabulary projection, by far the largest matmul, runs only at the labelled rows
//! (decisions.md): the data pipeline hands their flat positions over, so selecting them needs
//! no host sync, and the mean cross-entropy over them equals the reference's cross-entropy
//! with `ignore_index = 0` over every row.
//!
//! With `vocabulary = "captions"` the softmax runs over the tokens of the training captions
//! only (decisions.md): few on generated captions, against CLIP's 49 408, whose projection
//! is a third of a CPU step with MTP there. It is not the reference's loss: the tokens no
//! caption holds, which no label can be, leave the normaliser.

mod decoder;
mod head;

use gadms_plugin::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use gadms_plugin::nn::BlockInit;
use gadms_plugin::tch::{nn, Device, Tensor};
use gadms_plugin::{parse_options, PluginError, Result};
use serde::Deserialize;

use crate::classify::{accuracy, cross_entropy};
use decoder::CrossModalDecoder;
use head::MlmHead;

pub(crate) const NAME: &str = "mtp";

/// Options of the MTP loss.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    /// Blocks of the cross-modal transformer (the reference's `--cmt_depth`).
    depth: i64,
    /// Attention heads of the cross-attention and of every block; `embed_dim / 64` when unset.
    heads: Option<i64>,
    /// The tokens the head predicts over.
    vocabulary: Vocabulary,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            depth: 4,
            heads: None,
            vocabulary: Vocabulary::Full,
        }
    }
}

/// `vocabulary`: what the softmax of the masked tokens runs over.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Vocabulary {
    /// Every token, as the reference.
    Full,
    /// The tokens of the training captions (`LossContext::caption_tokens`).
    Captions,
}

/// The head's classes under `vocabulary = "captions"`.
struct Classes {
    /// The caption tokens, ascending `[C]` int64: the rows of `fc` projected to.
    ids: Tensor,
    /// Each vocabulary id's class `[V]` int64; −1 for an id no caption holds.
    class_of: Tensor,
}

impl Classes {
    fn new(tokens: &[i64], vocab_size: i64, device: Device) -> Result<Self> {
        let mut class_of = vec![-1i64; vocab_size as usize];
        for (class, &id) in tokens.iter().enumerate() {
            let slot = usize::try_from(id)
                .ok()
                .and_then(|i| class_of.get_mut(i))
                .ok_or_else(|| {
                    PluginError::Data(format!(
                        "`mtp`: caption token {id} lies outside the model's vocabulary of {vocab_size}"
                    ))
                })?;
            *slot = class as i64;
        }
        Ok(Self {
            ids: Tensor::from_slice(tokens).to_device(device),
            class_of: Tensor::from_slice(&class_of).to_device(device),
        })
    }
}

/// What the head projects to: the whole vocabulary, or the caption tokens (`None` where the
/// loss was built without them, to list its parameters: training it is then an error).
enum Projection {
    Vocabulary,
    Captions(Option<Classes>),
}

pub(crate) struct Factory;

impl LossFactory for Factory {
    fn build(&self, path: &nn::Path, ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>> {
        Ok(Box::new(Mtp::new(path, ctx, options)?))
    }
}

pub(crate) struct Mtp {
    pub decoder: CrossModalDecoder,
    pub head: MlmHead,
    projection: Projection,
    embed_dim: i64,
}

impl Mtp {
    pub fn new(path: &nn::Path, ctx: &LossContext, options: &str) -> Result<Self> {
        let options: Options = parse_options(NAME, options)?;
        let width = ctx.embed_dim;
        let heads = options.heads.unwrap_or(width / 64);
        if options.depth < 1 || heads < 1 || width % heads != 0 {
            return Err(PluginError::Options {
                component: NAME.to_string(),
                message: format!(
                    "need depth >= 1 and a head count that divides embed_dim {width}; got depth {}, heads {heads}",
                    options.depth
                ),
            });
        }
        let projection = match options.vocabulary {
            Vocabulary::Full => Projection::Vocabulary,
            Vocabulary::Captions => Projection::Captions(
                ctx.caption_tokens
                    .as_deref()
                    .map(|tokens| Classes::new(tokens, ctx.vocab.size, path.device()))
                    .transpose()?,
            ),
        };
        let init = BlockInit::clip(width, options.depth);
        Ok(Self {
            decoder: CrossModalDecoder::new(path, width, options.depth, heads, &init),
            head: MlmHead::new(&(path / "mlm_head"), width, ctx.vocab.size, &init),
            projection,
            embed_dim: width,
        })
    }

    /// The logits of the decoded rows `[M, E]` and their targets: vocabulary ids `[M]`, or
    /// under `vocabulary = "captions"` the classes of those ids.
    fn logits_and_targets(&self, rows: &Tensor, labels: Tensor) -> Result<(Tensor, Tensor)> {
        match &self.projection {
            Projection::Vocabulary => Ok((self.head.forward(rows, None), labels)),
            Projection::Captions(Some(c)) => Ok((
                self.head.forward(rows, Some(&c.ids)),
                c.class_of.index_select(0, &labels),
            )),
            Projection::Captions(None) => Err(PluginError::Data(
                "`mtp` with `vocabulary = \"captions\"` needs the training captions' tokens, which \
                 the runner hands over when it trains; this loss was built without them"
                    .to_string(),
            )),
        }
    }
}

impl Loss for Mtp {
    fn uses_mtp_view(&self) -> bool {
        true
    }

    /// Mean cross-entropy of the vocabulary logits at the labelled rows `[M, V]` (or `[M, C]`
    /// over the caption tokens) against their labels `[M]`, with the argmax accuracy there as
    /// `mlm_acc`. With no labelled row the mean is NaN, as in the reference.
    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        let view = MtpView::new(inputs, self.embed_dim)?;
        let decoded = self
            .decoder
            .forward(view.tokens, inputs.image_tokens)
            .reshape([-1, self.embed_dim]); // [B*L, E]
        let rows = decoded
            .f_index_select(0, view.positions)
            .map_err(PluginError::tensor("mtp labelled rows"))?; // [M, E]
        let labels = view.labels.reshape([-1]).index_select(0, view.positions); // [M]
        let (logits, targets) = self.logits_and_targets(&rows, labels)?; // [M, V or C], [M]
        let loss = cross_entropy(
            &logits,
            &targets,
            "mtp cross-entropy (under `vocabulary = \"captions\"`, is a label no caption token?)",
        )?;
        Ok(LossOutput {
            loss,
            metrics: vec![("mlm_acc".to_string(), accuracy(&logits, &targets))],
        })
    }
}

/// The MTP view of a step, checked against the decoder: tokens `[B, L, E]`, labels `[B, L]`
/// int64 and the flat positions `b * L + t` of the labelled ones `[M]` int64.
struct MtpView<'a> {
    tokens: &'a Tensor,
    labels: &'a Tensor,
    positions: &'a Tensor,
}

impl<'a> MtpView<'a> {
    fn new(inputs: &LossInputs<'a>, embed_dim: i64) -> Result<Self> {
        let (Some(tokens), Some(labels), Some(positions)) =
            (inputs.mtp_tokens, inputs.mtp_labels, inputs.mtp_label_positions)
        else {
            return Err(PluginError::Data(
                "`mtp` needs the MTP view (tokens, labels and label positions), but the step has none; \
                 use a masking strategy that makes one"
                    .to_string(),
            ));
        };
        let (t, i, l, p) = (
            tokens.size(),
            inputs.image_tokens.size(),
            labels.size(),
            positions.size(),
        );
        let fits = t.len() == 3
            && t[2] == embed_dim
            && i.len() == 3
            && i[0] == t[0]
            && i[2] == embed_dim
            && l == t[..2]
            && p.len() == 1;
        if !fits {
            return Err(PluginError::Data(format!(
                "`mtp` expects MTP tokens [B, L, {embed_dim}], image tokens [B, N, {embed_dim}], labels [B, L] \
                 and label positions [M]; got {t:?}, {i:?}, {l:?} and {p:?}"
            )));
        }
        Ok(Self {
            tokens,
            labels,
            positions,
        })
    }
}

#[cfg(test)]
mod tests {
    use gadms_golden::assert_close;

    use super::*;
    use crate::testing::Fixture;

    fn build(fx: &Fixture) -> Mtp {
        fx.build(NAME, Mtp::new)
    }

    /// Reference: `IRRA2.cross_former(mlm_feats, image_feats, image_feats)`, and `mlm_head`'s
    /// logits and argmax at the rows where `mlm_labels != 0`.
    #[test]
    fn decoder_and_head_match_the_reference() {
        let fx = Fixture::load();
        let mtp = build(&fx);
        let inputs = fx.inputs();
        let positions = inputs.mtp_label_positions.unwrap();
        assert_close(
            "output/mlm_label_flat_positions",
            positions,
            fx.tensor("output/mlm_label_flat_positions"),
            None,
        );

        let decoded = mtp
            .decoder
            .forward(inputs.mtp_tokens.unwrap(), inputs.image_tokens);
        fx.check("output/cross_former_out", &decoded);
        let rows = decoded.reshape([-1, fx.ctx.embed_dim]).index_select(0, positions);
        let logits = mtp.head.forward(&rows, None);
        fx.check("output/mlm_scores_at_labels", &logits);
        let name = "output/mlm_pred_all";
        let reference_pred = fx.tensor(name).index_select(0, positions);
        assert_close(
            name,
            &logits.argmax(-1, false),
            &reference_pred,
            fx.golden.atol(name),
        );
    }

    /// Reference: `compute_mlm(scores, labels)` (cross-entropy, `ignore_index = 0`, over every
    /// row) and `mlm_acc`.
    #[test]
    fn loss_and_accuracy_match_the_reference() {
        let fx = Fixture::load();
        let out = build(&fx).forward(&fx.inputs()).unwrap();
        fx.check("output/loss/mlm_unweighted", &out.loss);
        let [(name, acc)] = &out.metrics[..] else {
            panic!("expected one metric, got {}", out.metrics.len())
        };
        fx.check(&format!("output/metric/{name}"), acc);
    }

    /// Method §1.6 (IRRA's init): weights ~ N(0, std²) with CLIP's stds for a stack of
    /// `depth` blocks, attention biases 0, other biases ~ U(±1/√fan_in), LayerNorms 1 and 0.
    #[test]
    fn initialisation_follows_irra() {
        let fx = Fixture::load();
        let vs = nn::VarStore::new(gadms_plugin::tch::Device::Cpu);
        Mtp::new(&vs.root(), &fx.ctx, &fx.options(NAME)).unwrap();
        let width = fx.ctx.embed_dim as f64;
        let attn_std = width.powf(-0.5);
        let proj_std = attn_std * (2.0 * fx.config_f64("cmt_depth")).powf(-0.5);
        let fc_std = (2.0 * width).powf(-0.5);
        let vars = vs.variables();
        let value = |x: Tensor| x.double_value(&[]);
        let module = |name: &str| name.rsplit('.').nth(1).unwrap_or_default().to_string();
        for (name, var) in &vars {
            let normal_std = [
                ("attn.in_proj_weight", attn_std),
                ("out_proj.weight", proj_std),
                ("mlp.c_fc.weight", fc_std),
                ("mlp.c_proj.weight", proj_std),
                ("mlm_head.dense.weight", fc_std),
                ("mlm_head.fc.weight", proj_std),
            ]
            .into_iter()
            .find_map(|(suffix, std)| name.ends_with(suffix).then_some(std));
            let constant = if module(name).starts_with("ln") && name.ends_with(".weight") {
                Some(1.0)
            } else if module(name).starts_with("ln")
                || name.ends_with("in_proj_bias")
                || name.ends_with("out_proj.bias")
            {
                Some(0.0)
            } else {
                None
            };
            if let Some(std) = normal_std {
                let ours = value(var.std(true));
                assert!(
                    (ours / std - 1.0).abs() < 0.05,
                    "`{name}`: std {ours}, expected {std}"
                );
            } else if let Some(constant) = constant {
                assert_eq!(
                    value((var - constant).abs().max()),
                    0.0,
                    "`{name}`: expected all {constant}"
                );
            } else {
                let weight = name.strip_suffix(".bias").map(|m| &vars[&format!("{m}.weight")]);
                let fan_in = weight
                    .unwrap_or_else(|| panic!("`{name}` has no init rule"))
                    .size()[1];
                let bound = 1.0 / (fan_in as f64).sqrt();
                assert!(
                    value(var.abs().max()) <= bound,
                    "`{name}`: outside U(±1/√{fan_in})"
                );
            }
        }
    }

    /// The labels of the golden step, ascending and without repeats, and the loss built over
    /// them plus `extra` ids as its caption tokens.
    fn over_caption_tokens(fx: &Fixture, keep: impl Fn(i64) -> bool, extra: &[i64]) -> (Vec<i64>, Mtp) {
        let inputs = fx.inputs();
        let labels = inputs
            .mtp_labels
            .unwrap()
            .reshape([-1])
            .index_select(0, inputs.mtp_label_positions.unwrap());
        let mut tokens: Vec<i64> = Vec::<i64>::try_from(&labels).unwrap();
        tokens.retain(|&t| keep(t));
        tokens.extend_from_slice(extra);
        tokens.sort_unstable();
        tokens.dedup();
        let ctx = LossContext {
            caption_tokens: Some(tokens.clone().into()),
            ..fx.ctx.clone()
        };
        let options = format!("{}\nvocabulary = \"captions\"", fx.options(NAME));
        let mtp = fx.build(NAME, |path, _, _| Mtp::new(path, &ctx, &options));
        (tokens, mtp)
    }

    /// `vocabulary = "captions"`: the cross-entropy of the full head's logits at the caption
    /// tokens' columns only, each label renumbered to its token's place among them.
    #[test]
    fn the_captions_vocabulary_is_the_softmax_over_their_tokens() {
        let fx = Fixture::load();
        let (tokens, restricted) = over_caption_tokens(&fx, |_| true, &[1, 2, 3]);
        let inputs = fx.inputs();
        let positions = inputs.mtp_label_positions.unwrap();
        let full = build(&fx);
        let rows = full
            .decoder
            .forward(inputs.mtp_tokens.unwrap(), inputs.image_tokens)
            .reshape([-1, fx.ctx.embed_dim])
            .index_select(0, positions);
        let columns = Tensor::from_slice(&tokens);
        let logits = full.head.forward(&rows, None).index_select(1, &columns);
        let labels: Vec<i64> = Vec::try_from(
            inputs
                .mtp_labels
                .unwrap()
                .reshape([-1])
                .index_select(0, positions),
        )
        .unwrap();
        let classes: Vec<i64> = labels
            .iter()
            .map(|l| tokens.binary_search(l).unwrap() as i64)
            .collect();
        let expected = logits.cross_entropy_for_logits(&Tensor::from_slice(&classes));
        let got = restricted.forward(&inputs).unwrap().loss;
        assert_close("mtp loss over the caption tokens", &got, &expected, Some(1e-5));
        let whole = full.forward(&inputs).unwrap().loss;
        assert!(
            (whole.double_value(&[]) - got.double_value(&[])).abs() > 1e-3,
            "the full vocabulary's loss is the larger normaliser's: {whole} vs {got}"
        );
    }

    #[test]
    fn a_label_outside_the_caption_tokens_is_an_error() {
        let fx = Fixture::load();
        let inputs = fx.inputs();
        let first = inputs
            .mtp_labels
            .unwrap()
            .reshape([-1])
            .index_select(0, inputs.mtp_label_positions.unwrap())
            .int64_value(&[0]);
        let (_, mtp) = over_caption_tokens(&fx, |t| t != first, &[]);
        match mtp.forward(&inputs) {
            Err(PluginError::Tensor { context, .. }) => assert!(context.contains("captions"), "{context}"),
            Err(e) => panic!("expected a tensor error, got {e}"),
            Ok(_) => panic!("a label outside the caption tokens was trained on"),
        }
    }

    #[test]
    fn the_captions_vocabulary_needs_the_tokens_and_takes_only_the_models() {
        let fx = Fixture::load();
        let vs = nn::VarStore::new(gadms_plugin::tch::Device::Cpu);
        let options = format!("{}\nvocabulary = \"captions\"", fx.options(NAME));
        let listed = Mtp::new(&vs.root(), &fx.ctx, &options).unwrap();
        match listed.forward(&fx.inputs()) {
            Err(PluginError::Data(message)) => assert!(message.contains("captions' tokens"), "{message}"),
            Err(e) => panic!("expected a data error, got {e}"),
            Ok(_) => panic!("trained over the captions' tokens without them"),
        }
        let ctx = LossContext {
            caption_tokens: Some(vec![5, fx.ctx.vocab.size].into()),
            ..fx.ctx.clone()
        };
        match Mtp::new(&vs.root(), &ctx, &options) {
            Err(PluginError::Data(message)) => {
                assert!(message.contains("outside the model's vocabulary"), "{message}")
            }
            Err(e) => panic!("expected a data error, got {e}"),
            Ok(_) => panic!("a token beyond the vocabulary was taken"),
        }
    }

    #[test]
    fn missing_mtp_view_is_an_error() {
        let fx = Fixture::load();
        let mtp = build(&fx);
        assert!(mtp.uses_mtp_view());
        let inputs = LossInputs {
            mtp_tokens: None,
            mtp_labels: None,
            mtp_label_positions: None,
            ..fx.inputs()
        };
        match mtp.forward(&inputs) {
            Err(PluginError::Data(message)) => assert!(message.contains("MTP view"), "{message}"),
            Err(e) => panic!("expected a data error, got {e}"),
            Ok(_) => panic!("mtp ran without an MTP view"),
        }
    }

    #[test]
    fn mismatched_width_is_an_error() {
        let fx = Fixture::load();
        let inputs = fx.inputs();
        let narrow = inputs.mtp_tokens.unwrap().narrow(2, 0, fx.ctx.embed_dim - 1);
        let inputs = LossInputs {
            mtp_tokens: Some(&narrow),
            ..inputs
        };
        assert!(matches!(build(&fx).forward(&inputs), Err(PluginError::Data(_))));
    }

    #[test]
    fn heads_must_divide_the_width() {
        let fx = Fixture::load();
        let vs = nn::VarStore::new(gadms_plugin::tch::Device::Cpu);
        let options = format!("heads = {}", fx.ctx.embed_dim + 1);
        assert!(matches!(
            Mtp::new(&vs.root(), &fx.ctx, &options),
            Err(PluginError::Options { .. })
        ));
    }
}
