//! The report's diagnostics table: per variant and evaluation set, how much of the noise's
//! cost the variant wins back — its mAP gain over the baseline, and that gain as a share of
//! the oracle's (`experiment.oracle`, the variant that masks exactly the labelled noise) —
//! beside what explains it: how well its scores find the noise (the noise-token AUROC, over
//! all tokens and over content words) and whether the encoders collapsed (the mean pairwise
//! cosine of the evaluation's image and text features).

use super::charts::{Stat, Stats};
use super::store::StoredExperiment;
use super::tables::{IMAGE_COSINE, NOISE_AUROC, NOISE_AUROC_CONTENT, TEXT_COSINE, TRAIN};
use super::text_table::{self, Cell, Rank, TextTable};

/// The baseline and the oracle, when the experiment names both.
struct Bounds<'a> {
    baseline: &'a str,
    oracle: &'a str,
}

/// `(variant − baseline) / (oracle − baseline)` of the seed means; `None` where a mean is
/// missing or the oracle gains nothing (no gain to share).
pub fn oracle_share(variant: f64, baseline: f64, oracle: f64) -> Option<f64> {
    let bound = oracle - baseline;
    (bound != 0.0).then(|| (variant - baseline) / bound)
}

/// The table, `None` when no finished run logged any of its diagnostics.
pub fn table(experiment: &StoredExperiment, stats: &Stats) -> Option<TextTable> {
    let bounds = experiment
        .baseline
        .as_deref()
        .zip(experiment.oracle.as_deref())
        .map(|(baseline, oracle)| Bounds { baseline, oracle });
    let mut header = vec!["Variant".to_string(), "Dataset".into()];
    if bounds.is_some() {
        header.extend(["mAP − baseline".into(), "share of the oracle's gain".into()]);
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
    any.then(|| TextTable {
        caption: caption(experiment, bounds.as_ref()),
        label: format!("tab:{}-diagnostics", experiment.name),
        header,
        groups: Vec::new(),
        rows,
    })
}

/// The mAP gain over the baseline (± the spread of one seed's difference, `√(s² + s_b²)`)
/// and its share of the oracle's gain.
fn gain_cells(stats: &Stats, variant: &str, dataset: &str, b: &Bounds<'_>) -> [Cell; 2] {
    let map = |v: &str| stats.last(v, dataset, "mAP");
    let (Some(v), Some(base)) = (map(variant), map(b.baseline)) else {
        return [Cell::Missing, Cell::Missing];
    };
    let spread = v.std.zip(base.std).map(|(s, sb)| (s * s + sb * sb).sqrt());
    let gain = plain_stat(v.mean - base.mean, spread);
    let share = map(b.oracle)
        .and_then(|o| oracle_share(v.mean, base.mean, o.mean))
        .map_or(Cell::Missing, |s| Cell::Text(format!("{:.0} %", s * 100.0)));
    [gain, share]
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
            "the mAP gain over `{}` (± √(s² + s_b²) of the two variants' seed stds) and its share of the \
             gain of the oracle `{}`, which masks exactly the labelled noise; ",
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
