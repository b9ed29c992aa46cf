//! The report's Polars tables: the final evaluation of every finished run, its mean and
//! standard deviation over seeds per variant (with the change against the baseline), the
//! per-epoch curves as a long table, and the run matrix with each run's state.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use super::compare::{row_key, Comparison, Row};
use super::store::{StoredExperiment, StoredRun};
use super::text_table::{Cell, TextTable};
use super::ReportError;
use crate::eval::retrieval::FeatureCosines;

/// The retrieval metrics, as logged and as papers print them.
pub const METRICS: [(&str, &str); 5] = [
    ("R1", "R@1"),
    ("R5", "R@5"),
    ("R10", "R@10"),
    ("mAP", "mAP"),
    ("mINP", "mINP"),
];

/// The pseudo-dataset of training-side curves (losses, the noise-token AUROC).
pub const TRAIN: &str = "train";
/// The metric name of the noise-token AUROC of a run's scores.
pub const NOISE_AUROC: &str = "noise AUROC";
/// The same AUROC over content words only (`eval::function_words`).
pub const NOISE_AUROC_CONTENT: &str = "noise AUROC (content words)";
/// The collapse diagnostic of an evaluation: the mean pairwise cosine of its image features
/// and of its text features (`eval::retrieval::FeatureCosines`), per evaluation dataset.
pub const IMAGE_COSINE: &str = "image cosine";
pub const TEXT_COSINE: &str = "text cosine";

pub struct Tables {
    /// Per variant and evaluation dataset: `seeds`, and per metric `<m>_mean`, `<m>_std`
    /// (null for one seed) and `<m>_delta` (difference of means against the baseline).
    pub results: DataFrame,
    /// Long: `variant, seed, epoch, dataset, metric, value` of every finished run.
    pub curves: DataFrame,
    /// `curves` over seeds: `variant, dataset, metric, epoch, mean, std, n`.
    pub curve_stats: DataFrame,
    /// `variant, seed, hash, state, error`.
    pub runs: DataFrame,
}

fn polars(table: &'static str) -> impl FnOnce(PolarsError) -> ReportError {
    move |source| ReportError::Polars { table, source }
}

impl Tables {
    pub fn build(experiment: &StoredExperiment) -> Result<Self, ReportError> {
        let finals = final_evaluation(experiment)?;
        let final_stats = over_seeds(&finals, &["variant", "dataset", "metric"], "final evaluation")?;
        let curves = curves(experiment).map_err(polars("curves"))?;
        Ok(Self {
            results: results(&final_stats, &experiment.variants, experiment.baseline.as_deref())
                .map_err(polars("results"))?,
            curve_stats: over_seeds(&curves, &["variant", "dataset", "metric", "epoch"], "curves")?,
            curves,
            runs: runs(experiment).map_err(polars("runs"))?,
        })
    }
}

/// One metric of a finished run's selected evaluation of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Final {
    pub variant: String,
    pub seed: u64,
    pub epoch: u64,
    pub dataset: String,
    pub metric: &'static str,
    pub value: f64,
}

/// The evaluation of every finished run that the experiment's selection protocol picks
/// (by default the last), in run order.
pub fn finals(experiment: &StoredExperiment) -> Result<Vec<Final>, ReportError> {
    let mut out = Vec::new();
    for run in experiment.done() {
        let chosen =
            run.selected_evaluations(experiment.selection)
                .map_err(|source| ReportError::Selection {
                    variant: run.variant.clone(),
                    seed: run.seed,
                    source,
                })?;
        for r in chosen {
            let epoch = r["epoch"].as_u64().unwrap_or(0);
            for (m, _) in METRICS {
                if let Some(value) = r[m].as_f64() {
                    out.push(Final {
                        variant: run.variant.clone(),
                        seed: run.seed,
                        epoch,
                        dataset: r["dataset"].as_str().unwrap_or("").to_string(),
                        metric: m,
                        value,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `variant, seed, dataset, metric, value`: [`finals`] as a table.
fn final_evaluation(experiment: &StoredExperiment) -> Result<DataFrame, ReportError> {
    let mut rows = LongRows::default();
    for f in finals(experiment)? {
        rows.variant.push(f.variant);
        rows.seed.push(f.seed);
        rows.epoch.push(f.epoch);
        rows.dataset.push(f.dataset);
        rows.metric.push(f.metric.to_string());
        rows.value.push(f.value);
    }
    rows.frame(false).map_err(polars("final evaluation"))
}

/// `variant, seed, epoch, dataset, metric, value` of every finished run: the training
/// losses averaged over each epoch's log records, each evaluation with its feature cosines,
/// the noise-token AUROCs (all tokens, content words).
fn curves(experiment: &StoredExperiment) -> PolarsResult<DataFrame> {
    let mut rows = LongRows::default();
    for run in experiment.done() {
        // (epoch, loss name) → (sum, count), in epoch order.
        let mut losses: BTreeMap<(u64, String), (f64, u32)> = BTreeMap::new();
        for r in &run.metrics {
            let epoch = r["epoch"].as_u64().unwrap_or(0);
            match r["kind"].as_str() {
                Some("train") => {
                    let Some(fields) = r.as_object() else { continue };
                    for (k, v) in fields.iter().filter(|(k, _)| k.starts_with("loss")) {
                        if let Some(v) = v.as_f64() {
                            let e = losses.entry((epoch, k.clone())).or_default();
                            *e = (e.0 + v, e.1 + 1);
                        }
                    }
                }
                Some("eval") => {
                    let dataset = r["dataset"].as_str().unwrap_or("");
                    let logged = METRICS.iter().map(|&(m, _)| (m, m));
                    let cosines = [
                        (FeatureCosines::IMAGE_KEY, IMAGE_COSINE),
                        (FeatureCosines::TEXT_KEY, TEXT_COSINE),
                    ];
                    for (key, metric) in logged.chain(cosines) {
                        if let Some(v) = r[key].as_f64() {
                            rows.push(run, epoch, dataset, metric, v);
                        }
                    }
                }
                Some("noise") => {
                    for (key, metric) in [("auroc", NOISE_AUROC), ("auroc_content", NOISE_AUROC_CONTENT)] {
                        if let Some(v) = r[key].as_f64() {
                            rows.push(run, epoch, TRAIN, metric, v);
                        }
                    }
                }
                _ => {}
            }
        }
        for ((epoch, name), (sum, count)) in losses {
            rows.push(run, epoch, TRAIN, &name, sum / f64::from(count));
        }
    }
    rows.frame(true)
}

/// Rows of a long table, gathered column-wise.
#[derive(Default)]
struct LongRows {
    variant: Vec<String>,
    seed: Vec<u64>,
    epoch: Vec<u64>,
    dataset: Vec<String>,
    metric: Vec<String>,
    value: Vec<f64>,
}

impl LongRows {
    fn push(&mut self, run: &StoredRun, epoch: u64, dataset: &str, metric: &str, value: f64) {
        self.variant.push(run.variant.clone());
        self.seed.push(run.seed);
        self.epoch.push(epoch);
        self.dataset.push(dataset.to_string());
        self.metric.push(metric.to_string());
        self.value.push(value);
    }

    fn frame(self, with_epoch: bool) -> PolarsResult<DataFrame> {
        let mut columns = vec![
            Column::new("variant".into(), self.variant),
            Column::new("seed".into(), self.seed),
        ];
        if with_epoch {
            columns.push(Column::new("epoch".into(), self.epoch));
        }
        columns.extend([
            Column::new("dataset".into(), self.dataset),
            Column::new("metric".into(), self.metric),
            Column::new("value".into(), self.value),
        ]);
        DataFrame::new_infer_height(columns)
    }
}

/// Mean, sample standard deviation (null below two seeds) and count of `value` per group
/// of `keys`, groups in the order they first appear.
fn over_seeds(frame: &DataFrame, keys: &[&str], table: &'static str) -> Result<DataFrame, ReportError> {
    let summarise = |group: DataFrame| -> PolarsResult<DataFrame> {
        let values = group.column("value")?.f64()?;
        let n = values.len() as u32;
        let mut row = group.select(keys.iter().copied())?.head(Some(1));
        row.with_column(Column::new("mean".into(), [values.mean()]))?;
        row.with_column(Column::new("std".into(), [values.std(1).filter(|_| n > 1)]))?;
        row.with_column(Column::new("n".into(), [n]))?;
        Ok(row)
    };
    if frame.height() == 0 {
        // No finished run yet: the same columns, no rows.
        let mut empty = frame.select(keys.iter().copied()).map_err(polars(table))?;
        for (name, dtype) in [
            ("mean", DataType::Float64),
            ("std", DataType::Float64),
            ("n", DataType::UInt32),
        ] {
            empty
                .with_column(Column::new_empty(name.into(), &dtype))
                .map_err(polars(table))?;
        }
        return Ok(empty);
    }
    frame
        .group_by_stable(keys.iter().copied())
        .and_then(|g| g.apply(summarise))
        .map_err(polars(table))
}

/// The wide results table from the final evaluation's statistics.
/// Mean, standard deviation and seed count of one metric.
type MeanStdN = (Option<f64>, Option<f64>, u32);

/// Variants without a finished run get a row with no dataset and no statistics, so the
/// table shows them as missing.
fn results(stats: &DataFrame, variants: &[String], baseline: Option<&str>) -> PolarsResult<DataFrame> {
    let variant = stats.column("variant")?.str()?;
    let dataset = stats.column("dataset")?.str()?;
    let metric = stats.column("metric")?.str()?;
    let (mean, std, n) = (
        stats.column("mean")?.f64()?,
        stats.column("std")?.f64()?,
        stats.column("n")?.u32()?,
    );
    // (variant, dataset) in order of appearance, and every statistic by (variant, dataset, metric).
    let mut keys: Vec<(&str, &str)> = Vec::new();
    let mut by_key: HashMap<(&str, &str, &str), MeanStdN> = HashMap::new();
    for i in 0..stats.height() {
        let (v, d, m) = (
            variant.get(i).unwrap_or(""),
            dataset.get(i).unwrap_or(""),
            metric.get(i).unwrap_or(""),
        );
        if !keys.contains(&(v, d)) {
            keys.push((v, d));
        }
        by_key.insert((v, d, m), (mean.get(i), std.get(i), n.get(i).unwrap_or(0)));
    }
    let mut rows: Vec<(&str, Option<&str>)> = Vec::new();
    for v in variants {
        let before = rows.len();
        rows.extend(keys.iter().filter(|k| k.0 == v).map(|&(v, d)| (v, Some(d))));
        if rows.len() == before {
            rows.push((v, None));
        }
    }
    let stat = |v: &str, d: Option<&str>, m: &str| {
        d.and_then(|d| by_key.get(&(v, d, m)).copied())
            .unwrap_or((None, None, 0))
    };
    let mut columns = vec![
        Column::new("variant".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        Column::new("dataset".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
        Column::new(
            "seeds".into(),
            rows.iter()
                .map(|&(v, d)| stat(v, d, "R1").2)
                .collect::<Vec<u32>>(),
        ),
    ];
    for (m, _) in METRICS {
        let delta = |&(v, d): &(&str, Option<&str>)| {
            let b = baseline.filter(|&b| b != v)?;
            Some(stat(v, d, m).0? - stat(b, d, m).0?)
        };
        let (means, stds): (Vec<_>, Vec<_>) = rows
            .iter()
            .map(|&(v, d)| (stat(v, d, m).0, stat(v, d, m).1))
            .unzip();
        columns.push(Column::new(format!("{m}_mean").into(), means));
        columns.push(Column::new(format!("{m}_std").into(), stds));
        columns.push(Column::new(
            format!("{m}_delta").into(),
            rows.iter().map(delta).collect::<Vec<_>>(),
        ));
    }
    DataFrame::new_infer_height(columns)
}

/// The run matrix: `variant, seed, hash, state, error`.
fn runs(experiment: &StoredExperiment) -> PolarsResult<DataFrame> {
    let r = &experiment.runs;
    DataFrame::new_infer_height(vec![
        Column::new(
            "variant".into(),
            r.iter().map(|r| r.variant.as_str()).collect::<Vec<_>>(),
        ),
        Column::new("seed".into(), r.iter().map(|r| r.seed).collect::<Vec<_>>()),
        Column::new(
            "hash".into(),
            r.iter().map(|r| r.hash.as_deref()).collect::<Vec<_>>(),
        ),
        Column::new(
            "state".into(),
            r.iter().map(|r| r.state.label()).collect::<Vec<_>>(),
        ),
        Column::new(
            "error".into(),
            r.iter()
                .map(|r| match &r.state {
                    super::store::RunState::Failed(e) => Some(e.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
    ])
}

/// The ablation view (the paper's Table 4): per row of `comparison`, every config key
/// whose value differs between rows — switches as ✓/✗, other values as written, `default`
/// where a variant leaves the key at the plugin's default — headed by the spec's
/// `[report.columns]` names or else by readable forms of the keys. Each row shows the config
/// of its first variant found. `None` with fewer than two rows or nothing that differs.
pub fn ablation(experiments: &[StoredExperiment], comparison: &Comparison) -> Option<TextTable> {
    let configs: Vec<(Cell, BTreeMap<String, toml::Value>)> = comparison
        .rows
        .iter()
        .filter_map(|row| {
            let config = experiments.iter().find_map(|e| {
                e.runs
                    .iter()
                    .filter(|r| row_key(e, &r.variant) == row.key)
                    .find_map(|r| r.config.as_ref())
            })?;
            let mut flat = BTreeMap::new();
            flatten("", config, &mut flat);
            flat.remove("seed");
            Some((row_cell(row), flat))
        })
        .collect();
    if configs.len() < 2 {
        return None;
    }
    let mut keys: Vec<&String> = configs.iter().flat_map(|(_, c)| c.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| configs.iter().any(|(_, c)| c.get(*k) != configs[0].1.get(*k)));
    if keys.is_empty() {
        return None;
    }
    let names = |k: &str| -> String {
        experiments
            .iter()
            .find_map(|e| e.presentation.columns.get(k).cloned())
            .unwrap_or_else(|| readable(k))
    };
    let mut header = vec!["Method".to_string()];
    header.extend(keys.iter().map(|k| names(k)));
    let rows = configs
        .iter()
        .map(|(label, c)| {
            let mut row = vec![label.clone()];
            row.extend(keys.iter().map(|k| match c.get(*k) {
                Some(toml::Value::Boolean(b)) => Cell::Check(*b),
                Some(toml::Value::String(s)) => Cell::Text(s.clone()),
                Some(other) => Cell::Text(other.to_string()),
                None => Cell::Default,
            }));
            row
        })
        .collect();
    Some(TextTable {
        caption: format!(
            "{}: what each variant sets (settings of the resolved config that differ between \
             variants; default = the plugin's default).",
            comparison.experiments.join(", ")
        ),
        label: format!("tab:{}-ablation", comparison.experiments.join("-")),
        header,
        groups: Vec::new(),
        rows,
    })
}

/// A row's first cell: a label as written (TeX in LaTeX), a variant name as text.
pub fn row_cell(row: &Row) -> Cell {
    if row.labelled {
        Cell::Tex(row.key.clone())
    } else {
        Cell::Text(row.key.clone())
    }
}

/// A config key as a column name without `[report.columns]`: its section, then the rest
/// with spaces (`masking.noise_mask` → `masking: noise mask`).
fn readable(key: &str) -> String {
    match key.split_once('.') {
        Some((section, rest)) => format!("{section}: {}", rest.replace(['.', '_'], " ")),
        None => key.replace('_', " "),
    }
}

/// Dotted keys of every non-table value (arrays compare as a whole).
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}
