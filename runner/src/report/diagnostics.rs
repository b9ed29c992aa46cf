//! The report's diagnostics table: per variant and evaluation set, how much of the noise's
//! cost the variant wins back — its mAP gain over the baseline, and that gain as a share of
//! the oracle's (`experiment.oracle`, the variant that masks exactly the labelled noise) —
//! with two spreads: that of the gain itself, the sample std of the per-seed differences
//! (variants of one seed share its data order and initialisation, so what a seed does to both
//! cancels), and the seeds' spread `√(s² + s_b²)` of the two means; beside what explains it: how well its scores find the noise (the noise-token AUROC, over
//! all tokens and over content words) and whether the encoders collapsed (the mean pairwise
//! cosine of the evaluation's image and text features).

use std::collections::{BTreeMap, HashMap};

use super::charts::{Stat, Stats};
use super::significance::sample_variance;
use super::store::StoredExperiment;
use super::tables::{finals, IMAGE_COSINE, NOISE_AUROC, NOISE_AUROC_CONTENT, TEXT_COSINE, TRAIN};
use super::text_table::{self, Cell, Rank, TextTable};
use super::ReportError;

/// The metric the gains are of.
const METRIC: &str = "mAP";

/// The baseline and the oracle, when the experiment names both, with every variant's final
/// mAP per seed.
struct Bounds<'a> {
    baseline: &'a str,
    oracle: &'a str,
    seeds: SeedValues,
}

/// (variant, dataset) → seed → final mAP.
type SeedValues = HashMap<(String, String), BTreeMap<u64, f64>>;

fn seed_values(experiment: &StoredExperiment) -> Result<SeedValues, ReportError> {
    let mut out = SeedValues::new();
    for f in finals(experiment)?.into_iter().filter(|f| f.metric == METRIC) {
        out.entry((f.variant, f.dataset))
            .or_default()
            .insert(f.seed, f.value);
    }
    Ok(out)
}

/// The sample std of `variant − baseline` over the seeds both ran; `None` below two.
fn paired_spread(variant: &BTreeMap<u64, f64>, baseline: &BTreeMap<u64, f64>) -> Option<f64> {
    let d: Vec<f64> = variant
        .iter()
        .filter_map(|(seed, v)| Some(v - baseline.get(seed)?))
        .collect();
    sample_variance(&d).map(f64::sqrt)
}

/// `(variant − baseline) / (oracle − baseline)` of the seed means; `None` where a mean is
/// missing or the oracle gains nothing (no gain to share).
pub fn oracle_share(variant: f64, baseline: f64, oracle: f64) -> Option<f64> {
    let bound = oracle - baseline;
    (bound != 0.0).then(|| (variant - baseline) / bound)
}

/// The table, `None` when no finished run logged any of its diagnostics.
pub fn table(experiment: &StoredExperiment, stats: &Stats) -> Result<Option<TextTable>, ReportError> {
    let bounds = match experiment.baseline.as_deref().zip(experiment.oracle.as_deref()) {
        Some((baseline, oracle)) => Some(Bounds {
            baseline,
            oracle,
            seeds: seed_values(experiment)?,
        }),
        None => None,
    };
    let mut header = vec!["Variant".to_string(), "Dataset".into()];
    if bounds.is_some() {
        header.extend([
            "mAP − baseline".into(),
            "seeds' spread √(s² + s_b²)".into(),
            "share of the oracle's gain".into(),
        ]);
    }
    header.extend(
        [NOISE_AUROC, NOISE_AUROC_CONTENT, IMAGE_COSINE, TEXT_COSINE]
            .iter()
            .map(|m| m.to_string()),
    );
    let last = |v: &str, d: &str, m: &str| stats.curve(v, d, m).last().map(|(_, s)| *s);
    let mut any = false;
    let mut rows = Vec::new();
    for variant in &experiment.variants {
        for dataset in stats.datasets() {
            let diagnostics = [
                last(variant, TRAIN, NOISE_AUROC),
                last(variant, TRAIN, NOISE_AUROC_CONTENT),
                last(variant, &dataset, IMAGE_COSINE),
                last(variant, &dataset, TEXT_COSINE),
            ];
            any |= diagnostics.iter().any(Option::is_some);
            let mut row = vec![Cell::Text(variant.clone()), Cell::Text(dataset.clone())];
            if let Some(b) = &bounds {
                row.extend(gain_cells(stats, variant, &dataset, b));
            }
            row.extend(diagnostics.into_iter().map(stat_cell));
            rows.push(row);
        }
    }
    Ok(any.then(|| TextTable {
        caption: caption(experiment, bounds.as_ref()),
        label: format!("tab:{}-diagnostics", experiment.name),
        header,
        groups: Vec::new(),
        rows,
    }))
}

/// The mAP gain over the baseline (the difference of the seed means, ± the std of the
/// per-seed differences), the seeds' spread of the two means, and the gain's share of the
/// oracle's. The baseline's own row has no spread of its gain: its differences are all 0.
fn gain_cells(stats: &Stats, variant: &str, dataset: &str, b: &Bounds<'_>) -> [Cell; 3] {
    let map = |v: &str| stats.last(v, dataset, METRIC);
    let (Some(v), Some(base)) = (map(variant), map(b.baseline)) else {
        return [Cell::Missing, Cell::Missing, Cell::Missing];
    };
    let seeds = |v: &str| b.seeds.get(&(v.to_string(), dataset.to_string()));
    let paired = match (seeds(variant), seeds(b.baseline)) {
        (Some(v), Some(base)) if variant != b.baseline => paired_spread(v, base),
        _ => None,
    };
    let unpaired = v.std.zip(base.std).map(|(s, sb)| (s * s + sb * sb).sqrt());
    let share = map(b.oracle)
        .and_then(|o| oracle_share(v.mean, base.mean, o.mean))
        .map_or(Cell::Missing, |s| Cell::Text(format!("{:.0} %", s * 100.0)));
    let spread = unpaired.map_or(Cell::Missing, |s| Cell::Text(format!("{s:.2}")));
    [plain_stat(v.mean - base.mean, paired), spread, share]
}

fn stat_cell(stat: Option<Stat>) -> Cell {
    stat.map_or(Cell::Missing, |s| plain_stat(s.mean, s.std))
}

/// A mean ± std cell without baseline difference, test or rank.
fn plain_stat(mean: f64, std: Option<f64>) -> Cell {
    Cell::Stat(text_table::Stat {
        mean,
        std,
        delta: None,
        significant: false,
        rank: Rank::Other,
    })
}

fn caption(experiment: &StoredExperiment, bounds: Option<&Bounds<'_>>) -> String {
    let gain = match bounds {
        Some(b) => format!(
            "the mAP gain over `{}` (± the sample std of the per-seed differences: runs of one seed \
             share its data order and initialisation), the seeds' spread √(s² + s_b²) of the two means, \
             and the gain's share of the gain of the oracle `{}`, which masks exactly the labelled noise; ",
            b.baseline, b.oracle
        ),
        None => String::new(),
    };
    format!(
        "{}: after the last epoch, mean ± sample std over seeds, {gain}the noise-token AUROC of the \
         scores over all maskable tokens and over content words only (function words left out), and the \
         mean pairwise cosine of the evaluation's image and text features (near 1: collapsed).",
        experiment.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_the_gain_over_the_baseline_in_units_of_the_oracles() {
        assert_eq!(oracle_share(32.0, 30.0, 34.0), Some(0.5));
        assert_eq!(
            oracle_share(28.0, 30.0, 34.0),
            Some(-0.5),
            "a loss is a negative share"
        );
        assert_eq!(oracle_share(34.0, 30.0, 34.0), Some(1.0));
        assert_eq!(oracle_share(31.0, 30.0, 30.0), None, "no oracle gain to share");
    }
}
