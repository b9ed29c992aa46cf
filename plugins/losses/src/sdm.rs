//! Similarity Distribution Matching (method §4.1, IRRA's `compute_sdm`): the softmax over each
//! row of scaled cosine similarities is pulled towards the distribution of same-identity
//! matches, image-to-text and text-to-image.

use gadms_plugin::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use gadms_plugin::tch::nn;
use gadms_plugin::{parse_options, Result};

use crate::features::{scaled_cosine, Pairs};
use crate::matching::{matching_loss, same_identity, Options};

pub(crate) const NAME: &str = "sdm";

pub(crate) struct Factory;

impl LossFactory for Factory {
    fn build(&self, _path: &nn::Path, _ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>> {
        let Options { epsilon } = parse_options(NAME, options)?;
        Ok(Box::new(Sdm { epsilon }))
    }
}

struct Sdm {
    epsilon: f64,
}

impl Loss for Sdm {
    fn uses_mtp_view(&self) -> bool {
        false
    }

    /// `ℓ(s·f·tᵀ) + ℓ(s·t·fᵀ)` against `q = Y / rowsum(Y)`, with f, t the L2-normalised image
    /// and text features `[B, E]` and s the runner's logit scale.
    ///
    /// In a distributed run each rank computes this on the features gathered from all ranks
    /// (method §4.2, `LossInputs`).
    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        let pairs = Pairs::new(NAME, inputs)?;
        let t2i = scaled_cosine(pairs.text, pairs.image, inputs.logit_scale, NAME)?; // [B, B]
        let matches = same_identity(&pairs);
        let target = &matches / matches.sum_dim_intlist(1, true, matches.kind());
        let loss = matching_loss(&t2i.tr(), &t2i, &target, self.epsilon);
        Ok(LossOutput::loss_only(loss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    /// Reference: `objectives.compute_sdm_ddp(i_feats, noise_t_feats, pids, 50)` with world
    /// size 1, and `objectives.compute_sdm` on the same features.
    #[test]
    fn matches_reference_compute_sdm() {
        let fx = Fixture::load();
        let sdm = fx.build(NAME, |p, ctx, o| Factory.build(p, ctx, o));
        let out = sdm.forward(&fx.inputs()).unwrap();
        fx.check("output/loss/sdm", &out.loss);
        fx.check("output/loss/sdm_single_process", &out.loss);
    }
}
