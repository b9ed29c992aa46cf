//! Identity loss (method §1.7, §4.4, IRRA's `compute_id`): one linear classifier over person
//! ids, shared by the image and the text side, on the *unnormalised* features.

use gadms_plugin::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use gadms_plugin::nn::Linear;
use gadms_plugin::tch::{nn, Kind, Tensor};
use gadms_plugin::{parse_options, PluginError, Result};
use serde::Deserialize;

use crate::classify::{accuracy, cross_entropy};
use crate::features::Pairs;

pub(crate) const NAME: &str = "id";

/// Standard deviation of the classifier weight's initialisation (IRRA: N(0, 0.001²), bias 0).
const CLASSIFIER_INIT_STD: f64 = 0.001;

/// Options of the ID loss.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    /// Classifier outputs; the dataset's number of training identities when unset. (The
    /// GA-DMS code used the number of training *captions*; IRRA, and gadms, the identities.)
    num_classes: Option<i64>,
}

pub(crate) struct Factory;

impl LossFactory for Factory {
    fn build(&self, path: &nn::Path, ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>> {
        Ok(Box::new(Id::new(path, ctx, options)?))
    }
}

pub(crate) struct Id {
    /// `classifier`: `weight` `[C, E]`, `bias` `[C]`.
    pub classifier: Linear,
}

impl Id {
    pub fn new(path: &nn::Path, ctx: &LossContext, options: &str) -> Result<Self> {
        let options: Options = parse_options(NAME, options)?;
        let num_classes = options.num_classes.unwrap_or(ctx.num_classes);
        if num_classes < 1 {
            return Err(PluginError::Options {
                component: NAME.to_string(),
                message: format!("num_classes must be at least 1, got {num_classes}"),
            });
        }
        let classifier = Linear::new(
            &(path / "classifier"),
            ctx.embed_dim,
            num_classes,
            CLASSIFIER_INIT_STD,
            true,
        );
        Ok(Self { classifier })
    }

    /// Class logits `[B, C]` float32 of features `[B, E]`.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        let logits = features
            .f_linear(&self.classifier.weight, Some(&self.classifier.bias))
            .map_err(PluginError::tensor("id classifier"))?;
        Ok(logits.to_kind(Kind::Float))
    }
}

impl Loss for Id {
    fn uses_mtp_view(&self) -> bool {
        false
    }

    /// `½ · [CE(cls(f_img), pid) + CE(cls(f_txt), pid)]`, with the argmax accuracies of both
    /// sides as `id_img_acc` and `id_txt_acc`.
    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        let pairs = Pairs::new(NAME, inputs)?;
        let image = self.logits(pairs.image)?;
        let text = self.logits(pairs.text)?;
        let loss = (cross_entropy(&image, pairs.pids, "id loss, image side")?
            + cross_entropy(&text, pairs.pids, "id loss, text side")?)
            / 2.0;
        let metrics = vec![
            ("id_img_acc".to_string(), accuracy(&image, pairs.pids)),
            ("id_txt_acc".to_string(), accuracy(&text, pairs.pids)),
        ];
        Ok(LossOutput { loss, metrics })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    /// Reference: `objectives.compute_id(classifier(i_feats), classifier(noise_t_feats), pids)`,
    /// its accuracies, and the gradient of that loss with respect to `classifier.weight`.
    #[test]
    fn matches_reference_compute_id() {
        let fx = Fixture::load();
        let id = fx.build(NAME, Id::new);
        let inputs = fx.inputs();
        fx.check("output/id_image_logits", &id.logits(inputs.image_cls).unwrap());
        fx.check("output/id_text_logits", &id.logits(inputs.text_eos).unwrap());

        let out = id.forward(&inputs).unwrap();
        // The reference's `loss/id` carries the ID weight; ours is unweighted.
        let weighted = &out.loss * fx.config_f64("id_loss_weight");
        fx.check("output/loss/id", &weighted);
        for (name, value) in &out.metrics {
            fx.check(&format!("output/metric/{name}"), value);
        }
        assert_eq!(out.metrics.len(), 2);

        weighted.backward();
        fx.check("output/grad_id/classifier.weight", &id.classifier.weight.grad());
    }

    /// Method §1.7: weight ~ N(0, 0.001²), bias 0.
    #[test]
    fn classifier_initialisation_follows_irra() {
        let fx = Fixture::load();
        let vs = nn::VarStore::new(gadms_plugin::tch::Device::Cpu);
        let id = Id::new(&vs.root(), &fx.ctx, "").unwrap();
        let std = id.classifier.weight.std(true).double_value(&[]);
        assert!(
            (std / 0.001 - 1.0).abs() < 0.1,
            "classifier.weight std {std}, expected 0.001"
        );
        assert_eq!(id.classifier.bias.abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn num_classes_option_overrides_the_context() {
        let fx = Fixture::load();
        let vs = nn::VarStore::new(gadms_plugin::tch::Device::Cpu);
        let id = Id::new(&vs.root(), &fx.ctx, "num_classes = 3").unwrap();
        assert_eq!(id.classifier.weight.size(), [3, fx.ctx.embed_dim]);
    }
}
