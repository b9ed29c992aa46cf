//! The golden fixture of the parity tests: the reference step's features and head parameters
//! (`model_io.safetensors`, `model.safetensors`) and a loss context built from the manifest's
//! `config`, so that a golden set of other sizes runs through the same tests.

use std::collections::HashMap;

use gadms_golden::{assert_close, Golden};
use gadms_plugin::loss::{LossContext, LossInputs};
use gadms_plugin::masking::Vocab;
use gadms_plugin::nn::{BlockInit, LayerNorm, Transformer};
use gadms_plugin::tch::{self, nn, Device, Tensor};
use gadms_plugin::Result;

/// Prefix of the backbone's parameters in the reference state dict; everything else belongs
/// to a loss.
pub(crate) const BACKBONE_PREFIX: &str = "base_model.";

pub(crate) struct Fixture {
    pub golden: Golden,
    /// `model_io.safetensors`: inputs and outputs of the reference training step.
    io: HashMap<String, Tensor>,
    /// `model.safetensors`: every parameter under its reference name.
    pub params: HashMap<String, Tensor>,
    pub ctx: LossContext,
    /// The MTP view's text features `[B, L, E]`: `input/mlm_ids` through the reference text
    /// encoder (see [`encode_text`] for why the fixture computes them).
    pub mtp_tokens: Tensor,
    /// Flat positions `b * L + t` of the non-zero `input/mlm_labels` `[M]`, as the runner
    /// derives them.
    pub label_positions: Tensor,
}

impl Fixture {
    pub fn load() -> Self {
        let golden = Golden::load();
        let io = golden.tensors("model_io.safetensors");
        let params = golden.tensors("model.safetensors");
        let config = golden.model_config();
        let int = |key: &str| config_i64(&golden, key);
        let special = |key: &str| {
            config["special_ids_for_this_vocab"][key]
                .as_i64()
                .unwrap_or_else(|| panic!("config lacks `{key}`"))
        };
        let vocab = Vocab {
            size: int("vocab_size"),
            mask_id: special("mask_id"),
            sot_id: special("sot_id"),
            eot_id: special("eot_id"),
        };
        let ctx = LossContext {
            embed_dim: int("embed_dim"),
            vocab,
            num_classes: int("num_classes"),
            caption_tokens: None,
        };
        let label_positions = io["input/mlm_labels"].reshape([-1]).nonzero().squeeze_dim(1);
        let mtp_tokens = encode_text(&golden, &params, &io["input/mlm_ids"]);
        Self {
            golden,
            io,
            params,
            ctx,
            mtp_tokens,
            label_positions,
        }
    }

    pub fn config_i64(&self, key: &str) -> i64 {
        config_i64(&self.golden, key)
    }

    pub fn config_f64(&self, key: &str) -> f64 {
        self.golden.model_config()[key]
            .as_f64()
            .unwrap_or_else(|| panic!("config lacks number `{key}`"))
    }

    /// The options that give a loss the golden model's shape (the cross-modal decoder's depth
    /// and heads; the other losses need none).
    pub fn options(&self, loss: &str) -> String {
        match loss {
            crate::mtp::NAME => {
                format!(
                    "depth = {}\nheads = {}",
                    self.config_i64("cmt_depth"),
                    self.config_i64("cross_heads")
                )
            }
            _ => String::new(),
        }
    }

    pub fn tensor(&self, name: &str) -> &Tensor {
        self.io
            .get(name)
            .unwrap_or_else(|| panic!("model_io.safetensors has no `{name}`"))
    }

    /// The reference step as the runner would hand it over: SDM's features (image CLS, noise
    /// text at the clean caption's EOS), all image tokens and the MTP view.
    pub fn inputs(&self) -> LossInputs<'_> {
        LossInputs {
            image_cls: self.tensor("output/i_feats"),
            text_eos: self.tensor("output/noise_t_feats"),
            image_tokens: self.tensor("output/image_feats"),
            mtp_tokens: Some(&self.mtp_tokens),
            mtp_labels: Some(self.tensor("input/mlm_labels")),
            mtp_label_positions: Some(&self.label_positions),
            pids: self.tensor("input/pids"),
            logit_scale: self.config_f64("logit_scale"),
        }
    }

    /// Builds a loss with `new` on a fresh CPU float32 store with [`Self::options`] and loads
    /// its parameters from the reference.
    pub fn build<L>(&self, loss: &str, new: impl FnOnce(&nn::Path, &LossContext, &str) -> Result<L>) -> L {
        let vs = nn::VarStore::new(Device::Cpu);
        let built = new(&vs.root(), &self.ctx, &self.options(loss)).unwrap();
        load_reference(&self.params, &vs);
        built
    }

    /// Compares `ours` with the golden output `name` within the manifest's tolerance.
    pub fn check(&self, name: &str, ours: &Tensor) {
        assert_close(name, ours, self.tensor(name), self.golden.atol(name));
    }
}

fn config_i64(golden: &Golden, key: &str) -> i64 {
    golden.model_config()[key]
        .as_i64()
        .unwrap_or_else(|| panic!("config lacks integer `{key}`"))
}

fn param<'a>(params: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    params
        .get(name)
        .unwrap_or_else(|| panic!("model.safetensors has no `{name}`"))
}

/// Copies every variable of `vs` from the reference parameter of the same name. A name the
/// reference lacks, or has in another shape, fails the test.
fn load_reference(params: &HashMap<String, Tensor>, vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let reference = param(params, &name);
            assert_eq!(
                var.size(),
                reference.size(),
                "`{name}`: shape (ours vs reference)"
            );
            var.copy_(reference);
        }
    });
}

/// The reference `base_model.encode_text` in training mode: token and positional embedding,
/// every text block with causal multi-head attention, `ln_final`, and every position times
/// `text_projection`: ids `[B, L]` → `[B, L, E]`.
///
/// The golden `output/mlm_text_feats_all` should be this for `input/mlm_ids`, but it holds the
/// encoding of `input/noise_text` (bit-identical to it), while the golden decoder output
/// `output/cross_former_out` was computed from the encoding of `input/mlm_ids`. So the fixture
/// encodes the MTP view itself; `text_encoder_reproduces_the_reference` checks this encoder
/// against the golden noise-text features.
fn encode_text(golden: &Golden, params: &HashMap<String, Tensor>, ids: &Tensor) -> Tensor {
    let (width, layers) = (
        config_i64(golden, "text_width"),
        config_i64(golden, "text_layers"),
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root() / "base_model";
    let init = BlockInit::clip(width, layers);
    let heads = config_i64(golden, "text_heads");
    let transformer = Transformer::new(&(&root / "transformer"), width, layers, heads, &init);
    let ln_final = LayerNorm::new(&(&root / "ln_final"), width);
    load_reference(params, &vs);
    tch::no_grad(|| {
        let (b, l) = ids.size2().unwrap();
        let tokens = param(params, "base_model.token_embedding.weight").index_select(0, &ids.reshape([-1]));
        let x = tokens.view([b, l, width]) + param(params, "base_model.positional_embedding");
        ln_final
            .forward(&transformer.forward(&x, true))
            .matmul(param(params, "base_model.text_projection"))
    })
}

mod tests {
    use gadms_plugin::tch::Kind;

    use super::*;

    /// The fixture's text encoder against the reference: `input/noise_text` encoded and taken
    /// at the clean caption's EOS must give `output/noise_t_feats`.
    #[test]
    fn text_encoder_reproduces_the_reference() {
        let fx = Fixture::load();
        let encoded = encode_text(&fx.golden, &fx.params, fx.tensor("input/noise_text"));
        let eos = fx.tensor("input/eos_position");
        let rows = Tensor::arange(eos.size()[0], (Kind::Int64, Device::Cpu));
        let at_eos = encoded.index(&[Some(rows), Some(eos.shallow_clone())]);
        fx.check("output/noise_t_feats", &at_eos);
    }
}
