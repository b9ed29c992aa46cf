//! Image–text contrastive loss (method §4.3, IRRA's `compute_itc`): each image must pick its
//! own caption among the batch's and each caption its own image. Unlike SDM, another sample
//! of the same identity counts as a negative.

use gadms_plugin::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use gadms_plugin::tch::{nn, Kind, Tensor};
use gadms_plugin::{parse_options, Result};
use serde::Deserialize;

use crate::classify::cross_entropy;
use crate::features::{scaled_cosine, Pairs};

pub(crate) const NAME: &str = "itc";

/// ITC has no settings; the struct exists so that any key is rejected by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {}

pub(crate) struct Factory;

impl LossFactory for Factory {
    fn build(&self, _path: &nn::Path, _ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>> {
        let Options {} = parse_options(NAME, options)?;
        Ok(Box::new(Itc))
    }
}

struct Itc;

impl Loss for Itc {
    fn uses_mtp_view(&self) -> bool {
        false
    }

    /// `½ · [CE(s·f·tᵀ, arange(B)) + CE(s·t·fᵀ, arange(B))]` with f, t the L2-normalised
    /// image and text features `[B, E]` and s the runner's logit scale.
    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        let pairs = Pairs::new(NAME, inputs)?;
        let i2t = scaled_cosine(pairs.image, pairs.text, inputs.logit_scale, NAME)?; // [B, B]
        let own = Tensor::arange(pairs.batch(), (Kind::Int64, i2t.device()));
        let loss = (cross_entropy(&i2t, &own, "itc image-to-text")?
            + cross_entropy(&i2t.tr(), &own, "itc text-to-image")?)
            / 2.0;
        Ok(LossOutput::loss_only(loss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    /// Reference: `objectives.compute_itc(i_feats, noise_t_feats, 50)`.
    #[test]
    fn matches_reference_compute_itc() {
        let fx = Fixture::load();
        let itc = fx.build(NAME, |p, ctx, o| Factory.build(p, ctx, o));
        fx.check("output/loss/itc", &itc.forward(&fx.inputs()).unwrap().loss);
    }
}
