//! From a non-negative token map to scores in [0, 1] (method spec §2.7), without a host sync.
//!
//! The reference normalises with the min and max of its whole per-GPU batch (128 samples), so
//! a score depends on its batch mates. Here the batch the scorer is handed is cut into groups
//! of `group` consecutive samples (one group when the batch is no larger), so a large
//! single-device batch is normalised as the reference's per-GPU batches were. A group whose
//! map is degenerate (max ≤ min, or NaN anywhere, since NaN compares false) gets zeros.

use gadms_plugin::masking::ScoreOutput;
use gadms_plugin::tch::{Kind, Tensor};

/// How a map `[B, L]` is scaled into [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalisation {
    /// `(e - min) / (max - min)`, min and max over groups of `group` consecutive samples
    /// (GASS: the whole group; the paper's formula: `group = 1`, per sample).
    MinMax { group: i64 },
    /// `e / max` per sample (Grad-ECLIP).
    Max,
}

/// Normalises `map` `[B, L]`; the degenerate count is the number of samples zeroed.
pub fn normalise(map: &Tensor, normalisation: Normalisation) -> ScoreOutput {
    let (min, max) = match normalisation {
        Normalisation::MinMax { group } => (
            per_group(&map.amin(1, false), group, f64::INFINITY, |g| g.amin(1, false)),
            per_group(&map.amax(1, false), group, f64::NEG_INFINITY, |g| {
                g.amax(1, false)
            }),
        ),
        Normalisation::Max => {
            let max = map.amax(1, false);
            (max.zeros_like(), max)
        }
    };
    let valid = max.gt_tensor(&min); // [B]; false for NaN
    let scores = ((map - min.unsqueeze(1)) / (max - &min).unsqueeze(1))
        .where_scalarother(&valid.unsqueeze(1), 0.0)
        .to_kind(Kind::Float);
    ScoreOutput {
        scores,
        degenerate: valid.logical_not().sum(Kind::Int64),
    }
}

/// Reduces per-sample values `[B]` over groups of `group` consecutive samples with
/// `reduce` (`[G, group]` → `[G]`) and hands each sample its group's value, `[B]`. The last
/// group may be short; it is padded with `identity`, the reduction's neutral element.
fn per_group(values: &Tensor, group: i64, identity: f64, reduce: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let b = values.size()[0];
    let group = group.min(b).max(1);
    let groups = (b + group - 1) / group;
    let padded = values
        .pad([0, groups * group - b], "constant", identity)
        .view([groups, group]);
    reduce(&padded)
        .repeat_interleave_self_int(group, 0, None)
        .narrow(0, 0, b)
}
