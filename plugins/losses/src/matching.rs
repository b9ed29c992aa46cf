//! The distribution-matching core shared by SDM and CMPM: both push the softmax over a row of
//! cross-modal scores towards the distribution of same-identity matches in the batch, in both
//! directions, and differ only in the scores and in how the match rows are normalised.

use gadms_plugin::tch::{Kind, Tensor};
use serde::Deserialize;

use crate::features::Pairs;

/// Options of the distribution-matching losses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Options {
    /// Added to the target distribution before its log, so that non-matching pairs (q = 0)
    /// contribute `-log(epsilon)` times their predicted mass (≈ 18.42 for the reference 1e-8).
    pub epsilon: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { epsilon: 1e-8 }
    }
}

/// `Y[i, j] = 1` where `pid_i = pid_j`, else 0: `[B, B]` float32.
pub(crate) fn same_identity(pairs: &Pairs<'_>) -> Tensor {
    let pids = pairs.pids.view([-1, 1]);
    pids.eq_tensor(&pids.tr()).to_kind(Kind::Float)
}

/// `ℓ(i2t) + ℓ(t2i)` with `ℓ(P) = mean_i Σ_j softmax(P)_ij · (log_softmax(P)_ij − log(q_ij + ε))`,
/// the reference's KL of the predicted to the target distribution row by row.
///
/// `i2t`, `t2i`: scores `[B, B]` (row = query); `target`: the match distribution `q` `[B, B]`,
/// symmetric because `Y` is.
pub(crate) fn matching_loss(i2t: &Tensor, t2i: &Tensor, target: &Tensor, epsilon: f64) -> Tensor {
    let log_target = (target + epsilon).log();
    divergence(i2t, &log_target) + divergence(t2i, &log_target)
}

/// `mean_i Σ_j softmax(P)_ij · (log_softmax(P)_ij − log_target_ij)` for `P` `[B, B]`.
fn divergence(logits: &Tensor, log_target: &Tensor) -> Tensor {
    let prob = logits.softmax(1, Kind::Float);
    let log_prob = logits.log_softmax(1, Kind::Float);
    (prob * (log_prob - log_target))
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
}
