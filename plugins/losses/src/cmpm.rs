//! Cross-Modal Projection Matching (method §4.5, IRRA's `compute_cmpm`): like SDM, but the
//! scores are the raw features of one modality projected on the normalised features of the
//! other (no temperature), and the match rows are L2- rather than sum-normalised.

use gadms_plugin::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use gadms_plugin::tch::{nn, Tensor};
use gadms_plugin::{parse_options, PluginError, Result};

use crate::features::{l2_normalise, Pairs};
use crate::matching::{matching_loss, same_identity, Options};

pub(crate) const NAME: &str = "cmpm";

pub(crate) struct Factory;

impl LossFactory for Factory {
    fn build(&self, _path: &nn::Path, _ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>> {
        let Options { epsilon } = parse_options(NAME, options)?;
        Ok(Box::new(Cmpm { epsilon }))
    }
}

struct Cmpm {
    epsilon: f64,
}

impl Loss for Cmpm {
    fn uses_mtp_view(&self) -> bool {
        false
    }

    /// `ℓ(f·t̂ᵀ) + ℓ(t·f̂ᵀ)` against `q̃ = Y / ‖Y_row‖₂`, with f, t the raw image and text
    /// features `[B, E]` and f̂, t̂ their L2-normalised rows. The logit scale is not used.
    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        let pairs = Pairs::new(NAME, inputs)?;
        let project = |x: &Tensor, onto: &Tensor| {
            x.f_matmul(&l2_normalise(onto).tr())
                .map_err(PluginError::tensor("cmpm projection"))
        };
        let i2t = project(pairs.image, pairs.text)?; // [B, B]
        let t2i = project(pairs.text, pairs.image)?; // [B, B]
        let matches = same_identity(&pairs);
        let target = &matches / matches.norm_scalaropt_dim(2, [1], true);
        let loss = matching_loss(&i2t, &t2i, &target, self.epsilon);
        Ok(LossOutput::loss_only(loss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    /// Reference: `objectives.compute_cmpm(i_feats, noise_t_feats, pids)`.
    #[test]
    fn matches_reference_compute_cmpm() {
        let fx = Fixture::load();
        let cmpm = fx.build(NAME, |p, ctx, o| Factory.build(p, ctx, o));
        fx.check("output/loss/cmpm", &cmpm.forward(&fx.inputs()).unwrap().loss);
    }
}
