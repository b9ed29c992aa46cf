//! The report's Polars tables: the final evaluation of every finished run, its mean and
//! standard deviation over seeds per variant (with the change against the baseline), the
//! per-epoch curves as a long table, and the run matrix with each run's state.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

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

    /// The main table for papers: one row per variant and dataset.
    pub fn results_text(&self, experiment: &StoredExperiment) -> TextTable {
        let mut header = vec!["Variant".to_string(), "Dataset".into(), "n".into()];
        header.extend(METRICS.iter().map(|(_, shown)| shown.to_string()));
        let text = |c: &str| self.results.column(c).ok().and_then(|c| c.str().ok().cloned());
        let float = |c: &str| self.results.column(c).ok().and_then(|c| c.f64().ok().cloned());
        let (variants, datasets) = (text("variant"), text("dataset"));
        let seeds = self
            .results
            .column("seeds")
            .ok()
            .and_then(|c| c.u32().ok().cloned());
        let rows = (0..self.results.height())
            .map(|i| {
                let get_text = |c: &Option<StringChunked>| match c.as_ref().and_then(|c| c.get(i)) {
                    Some(t) => Cell::Text(t.to_string()),
                    None => Cell::Missing,
                };
                let mut row = vec![
                    get_text(&variants),
                    get_text(&datasets),
                    Cell::Text(seeds.as_ref().and_then(|s| s.get(i)).unwrap_or(0).to_string()),
                ];
                row.extend(METRICS.iter().map(|(m, _)| {
                    let at = |suffix: &str| float(&format!("{m}_{suffix}")).and_then(|c| c.get(i));
                    match at("mean") {
                        Some(mean) => Cell::Stat {
                            mean,
                            std: at("std"),
                            delta: at("delta"),
                        },
                        None => Cell::Missing,
                    }
                }));
                row
            })
            .collect();
        let against = match &experiment.baseline {
            Some(b) => format!("; in parentheses the difference of means against `{b}`"),
            None => String::new(),
        };
        TextTable {
            caption: format!(
                "{}: text-to-image retrieval (%) {}, mean ± sample std over n seeds{against}.",
                experiment.name,
                experiment.selection_text()
            ),
            label: format!("tab:{}-results", experiment.name),
            header,
            rows,
        }
    }
}

/// `variant, seed, dataset, metric, value`: the evaluation of every finished run that the
/// experiment's selection protocol picks (by default the last).
fn final_evaluation(experiment: &StoredExperiment) -> Result<DataFrame, ReportError> {
    let mut rows = LongRows::default();
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
                if let Some(v) = r[m].as_f64() {
                    rows.push(run, epoch, r["dataset"].as_str().unwrap_or(""), m, v);
                }
            }
        }
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

/// The ablation view (the paper's Table 4): per variant, every config key whose value
/// differs between variants — switches as ✓/✗, other values as written, `·` where a
/// variant leaves the key at the plugin's default. `None` with fewer than two variants
/// or nothing that differs.
pub fn ablation(experiment: &StoredExperiment) -> Option<TextTable> {
    let configs: Vec<(&str, BTreeMap<String, toml::Value>)> = experiment
        .variants
        .iter()
        .filter_map(|v| {
            let config = experiment
                .runs
                .iter()
                .filter(|r| &r.variant == v)
                .find_map(|r| r.config.as_ref())?;
            let mut flat = BTreeMap::new();
            flatten("", config, &mut flat);
            flat.remove("seed");
            Some((v.as_str(), flat))
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
    let mut header = vec!["Variant".to_string()];
    header.extend(keys.iter().map(|k| k.to_string()));
    let rows = configs
        .iter()
        .map(|(v, c)| {
            let mut row = vec![Cell::Text(v.to_string())];
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
            "{}: what each variant sets (keys of the resolved config that differ between variants; · = the plugin's default).",
            experiment.name
        ),
        label: format!("tab:{}-ablation", experiment.name),
        header,
        rows,
    })
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
