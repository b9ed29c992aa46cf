//! The paper's main table over one or more experiments: a row per variant (variants of
//! different experiments with the same label, or else the same name, share a row), a column
//! group per evaluation dataset with the retrieval metrics under each; per cell the mean
//! over seeds, its spread and interval, and the difference from the baseline with a paired
//! test over the seeds both ran ([`significance`]).

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use super::significance::{self, Test};
use super::store::StoredExperiment;
use super::tables::{finals, row_cell, Final, METRICS};
use super::text_table::{Cell, Rank, Stat, TextTable};
use super::ReportError;
use crate::store::RunDir;

/// A row: the variants shown under one label.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The label (TeX allowed), or the variant name when the variant has none.
    pub key: String,
    /// Whether `key` is a spec's label (printed as written in LaTeX) rather than a name.
    pub labelled: bool,
}

/// A column group: one evaluation dataset of one experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub experiment: usize,
    pub dataset: String,
    /// The dataset's name, prefixed with the experiment's where several experiments
    /// evaluate a dataset of that name.
    pub title: String,
}

/// The statistics of one cell: a row's runs on one group's dataset, one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub row: usize,
    pub group: usize,
    pub metric: &'static str,
    /// Value per seed.
    pub values: BTreeMap<u64, f64>,
    pub mean: f64,
    /// Sample standard deviation, with two seeds or more.
    pub std: Option<f64>,
    /// Half-width of the 95 % confidence interval of the mean, with two seeds or more.
    pub ci: Option<f64>,
    /// Mean minus the baseline's mean, for a row other than the baseline's.
    pub delta: Option<f64>,
    /// The paired t-test against the baseline over the seeds both ran.
    pub test: Option<Test>,
}

/// One or more experiments side by side.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub experiments: Vec<String>,
    /// Which epoch the numbers come from, in words (the experiments' selection protocol).
    pub selection: String,
    pub rows: Vec<Row>,
    pub groups: Vec<Group>,
    /// The baseline's row key.
    pub baseline: Option<String>,
    pub summaries: Vec<Summary>,
}

impl Comparison {
    /// Compares the finished runs of `experiments`, against `baseline` (a label or variant
    /// name) or else the first experiment's baseline.
    pub fn build(experiments: &[StoredExperiment], baseline: Option<&str>) -> Result<Self, ReportError> {
        let finals = experiments.iter().map(finals).collect::<Result<Vec<_>, _>>()?;
        let rows = rows(experiments);
        let groups = groups(experiments, &finals);
        let baseline = baseline.map(String::from).or_else(|| {
            let first = experiments.first()?;
            Some(row_key(first, first.baseline.as_deref()?))
        });
        let cells = Cells::collect(experiments, &finals, &rows, &groups);
        let base_row = baseline
            .as_ref()
            .and_then(|b| rows.iter().position(|r| &r.key == b));
        let summaries = cells
            .values
            .iter()
            .map(|(&(row, group, metric), values)| {
                let base = base_row
                    .filter(|&b| b != row)
                    .filter(|&b| cells.values.contains_key(&(b, group, metric)));
                summary(
                    (row, group, METRICS[metric].0),
                    values,
                    base.map(|b| &cells.values[&(b, group, metric)]),
                    base.and_then(|b| cells.test((row, group, metric), b)),
                )
            })
            .collect();
        Ok(Self {
            experiments: experiments.iter().map(|e| e.name.clone()).collect(),
            selection: selection_text(experiments),
            rows,
            groups,
            baseline,
            summaries,
        })
    }

    fn summary(&self, row: usize, group: usize, metric: &str) -> Option<&Summary> {
        self.summaries
            .iter()
            .find(|s| s.row == row && s.group == group && s.metric == metric)
    }

    /// The wide table: the rows' labels, then per group the metrics, each cell mean ± std
    /// (difference from the baseline, `*` when significant); per column the best mean bold
    /// and the second underlined.
    pub fn table(&self, label: &str) -> TextTable {
        let mut header = vec!["Method".to_string()];
        let mut groups = Vec::new();
        for g in &self.groups {
            header.extend(METRICS.iter().map(|(_, shown)| shown.to_string()));
            groups.push((g.title.clone(), METRICS.len()));
        }
        let ranks: HashMap<(usize, usize, &str), Rank> = self.ranks();
        let rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(ri, row)| {
                let mut cells = vec![row_cell(row)];
                for gi in 0..self.groups.len() {
                    cells.extend(METRICS.iter().map(|(m, _)| match self.summary(ri, gi, m) {
                        Some(s) => Cell::Stat(Stat {
                            mean: s.mean,
                            std: s.std,
                            delta: s.delta,
                            significant: s.test.is_some_and(|t| t.significant()),
                            rank: ranks.get(&(ri, gi, *m)).copied().unwrap_or(Rank::Other),
                        }),
                        None => Cell::Missing,
                    }));
                }
                cells
            })
            .collect();
        let against = match &self.baseline {
            Some(b) => format!(
                "; in parentheses the difference from {b}, * where its test (paired t over the \
                 seeds both ran, or bootstrap over queries with one seed) gives p < 0.05"
            ),
            None => String::new(),
        };
        TextTable {
            caption: format!(
                "{}: text-to-image retrieval (%) {}, mean ± sample std over seeds{against}; best \
                 per column in bold, second underlined.",
                self.experiments.join(", "),
                self.selection
            ),
            label: label.to_string(),
            header,
            groups,
            rows,
        }
    }

    /// Best and second-best (higher is better for every retrieval metric) per column; ties
    /// share a rank.
    fn ranks(&self) -> HashMap<(usize, usize, &str), Rank> {
        let mut ranks = HashMap::new();
        for gi in 0..self.groups.len() {
            for (m, _) in METRICS {
                let column: Vec<&Summary> = self
                    .summaries
                    .iter()
                    .filter(|s| s.group == gi && s.metric == m)
                    .collect();
                let mut means: Vec<f64> = column.iter().map(|s| s.mean).collect();
                means.sort_by(|a, b| b.total_cmp(a));
                means.dedup();
                for s in column {
                    let rank = match means.iter().position(|&v| v == s.mean) {
                        Some(0) => Rank::Best,
                        Some(1) => Rank::Second,
                        _ => Rank::Other,
                    };
                    ranks.insert((s.row, gi, m), rank);
                }
            }
        }
        ranks
    }

    /// Every cell's statistics, long: `variant, experiment, dataset, metric, n, mean, std,
    /// ci95_low, ci95_high, delta, test` (`paired t` or `bootstrap`), `test_pairs` (seeds or
    /// queries), `t, p`.
    pub fn statistics(&self) -> PolarsResult<DataFrame> {
        let s = &self.summaries;
        let column = |f: &dyn Fn(&Summary) -> Option<f64>| s.iter().map(f).collect::<Vec<_>>();
        DataFrame::new_infer_height(vec![
            Column::new(
                "variant".into(),
                s.iter()
                    .map(|s| self.rows[s.row].key.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "experiment".into(),
                s.iter()
                    .map(|s| self.experiments[self.groups[s.group].experiment].as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "dataset".into(),
                s.iter()
                    .map(|s| self.groups[s.group].dataset.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new("metric".into(), s.iter().map(|s| s.metric).collect::<Vec<_>>()),
            Column::new(
                "n".into(),
                s.iter().map(|s| s.values.len() as u32).collect::<Vec<_>>(),
            ),
            Column::new("mean".into(), column(&|s| Some(s.mean))),
            Column::new("std".into(), column(&|s| s.std)),
            Column::new("ci95_low".into(), column(&|s| Some(s.mean - s.ci?))),
            Column::new("ci95_high".into(), column(&|s| Some(s.mean + s.ci?))),
            Column::new("delta".into(), column(&|s| s.delta)),
            Column::new(
                "test".into(),
                s.iter()
                    .map(|s| s.test.map(|t| t.method.name()))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "test_pairs".into(),
                s.iter()
                    .map(|s| s.test.map(|t| t.pairs as u32))
                    .collect::<Vec<_>>(),
            ),
            Column::new("t".into(), column(&|s| s.test?.statistic)),
            Column::new("p".into(), column(&|s| Some(s.test?.p))),
        ])
    }

    /// The statistics as a Markdown-ready table: a row per variant, dataset and metric.
    pub fn statistics_table(&self) -> TextTable {
        let header = [
            "Variant",
            "Dataset",
            "Metric",
            "n",
            "mean ± std",
            "95 % CI",
            "Δ",
            "test",
            "p",
        ]
        .map(String::from)
        .to_vec();
        let number =
            |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or(Cell::Missing, |v| Cell::Text(f(v)));
        let rows = self
            .summaries
            .iter()
            .map(|s| {
                let shown = METRICS
                    .iter()
                    .find(|(m, _)| *m == s.metric)
                    .map_or(s.metric, |m| m.1);
                vec![
                    row_cell(&self.rows[s.row]),
                    Cell::Text(self.groups[s.group].title.clone()),
                    Cell::Text(shown.to_string()),
                    Cell::Text(s.values.len().to_string()),
                    Cell::Stat(Stat {
                        mean: s.mean,
                        std: s.std,
                        delta: None,
                        significant: false,
                        rank: Rank::Other,
                    }),
                    number(s.ci, &|ci| format!("[{:.2}, {:.2}]", s.mean - ci, s.mean + ci)),
                    number(s.delta, &|d| format!("{d:+.2}")),
                    s.test.map_or(Cell::Missing, |t| {
                        Cell::Text(format!("{} ({})", t.method.name(), t.pairs))
                    }),
                    number(s.test.map(|t| t.p), &|p| {
                        let shown = if p < 0.001 {
                            "< 0.001".to_string()
                        } else {
                            format!("{p:.3}")
                        };
                        format!("{shown}{}", if p < significance::ALPHA { " *" } else { "" })
                    }),
                ]
            })
            .collect();
        TextTable {
            caption: format!(
                "{}: per variant, dataset and metric, the seeds (n), mean ± sample std, the 95 % \
                 confidence interval of the mean, the difference from the baseline and its test \
                 (paired t over seeds, or bootstrap over queries with one seed; pairs in \
                 parentheses) with p.",
                self.experiments.join(", ")
            ),
            label: format!("tab:{}-statistics", self.experiments.join("-")),
            header,
            groups: Vec::new(),
            rows,
        }
    }
}

/// The statistics of the cell at `(row, group, metric)`, with `base` the baseline's values
/// of the same cell and `test` the test against them.
fn summary(
    (row, group, metric): (usize, usize, &'static str),
    values: &BTreeMap<u64, f64>,
    base: Option<&BTreeMap<u64, f64>>,
    test: Option<Test>,
) -> Summary {
    let n = values.len();
    let mean = values.values().sum::<f64>() / n as f64;
    let std =
        (n > 1).then(|| (values.values().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    let delta = base.map(|b| mean - b.values().sum::<f64>() / b.len() as f64);
    Summary {
        row,
        group,
        metric,
        values: values.clone(),
        mean,
        std,
        ci: std.and_then(|s| significance::ci_half_width(s, n)),
        delta,
        test,
    }
}

/// The finished runs' final values, placed in the table.
struct Cells<'a> {
    groups: &'a [Group],
    /// (row, group, metric index) → value per seed.
    values: BTreeMap<(usize, usize, usize), BTreeMap<u64, f64>>,
    /// (row, group, seed) → the run's folder and the epoch of its final evaluation.
    runs: HashMap<(usize, usize, u64), (RunDir, u64)>,
}

impl<'a> Cells<'a> {
    fn collect(
        experiments: &[StoredExperiment],
        finals: &[Vec<Final>],
        rows: &[Row],
        groups: &'a [Group],
    ) -> Self {
        let mut cells = Self {
            groups,
            values: BTreeMap::new(),
            runs: HashMap::new(),
        };
        for (ei, (e, finals)) in experiments.iter().zip(finals).enumerate() {
            for f in finals {
                let key = row_key(e, &f.variant);
                let row = rows
                    .iter()
                    .position(|r| r.key == key)
                    .expect("rows cover every variant");
                let group = groups
                    .iter()
                    .position(|g| g.experiment == ei && g.dataset == f.dataset)
                    .expect("groups cover every dataset");
                let metric = METRICS
                    .iter()
                    .position(|(m, _)| *m == f.metric)
                    .expect("a known metric");
                cells
                    .values
                    .entry((row, group, metric))
                    .or_default()
                    .insert(f.seed, f.value);
                let dir = e
                    .dir
                    .join("runs")
                    .join(&f.variant)
                    .join(format!("seed-{}", f.seed));
                cells
                    .runs
                    .insert((row, group, f.seed), (RunDir::at(dir), f.epoch));
            }
        }
        cells
    }

    /// The test of the cell at `(row, group, metric)` against row `base`'s: a paired t-test
    /// over the seeds both ran, or with one shared seed a bootstrap over the queries of the
    /// two runs' final evaluations (when their folders kept them).
    fn test(&self, (row, group, metric): (usize, usize, usize), base: usize) -> Option<Test> {
        let values = &self.values[&(row, group, metric)];
        let base_values = self.values.get(&(base, group, metric))?;
        let shared: Vec<u64> = values
            .keys()
            .filter(|s| base_values.contains_key(s))
            .copied()
            .collect();
        let m = METRICS[metric].0;
        match shared[..] {
            [seed] => significance::bootstrap(
                &self.per_query(row, group, seed, m)?,
                &self.per_query(base, group, seed, m)?,
            ),
            _ => significance::paired_t(
                &shared.iter().map(|s| values[s]).collect::<Vec<_>>(),
                &shared.iter().map(|s| base_values[s]).collect::<Vec<_>>(),
            ),
        }
    }

    /// The per-query values of `metric` in a run's final evaluation, when its folder kept
    /// them for that epoch.
    fn per_query(&self, row: usize, group: usize, seed: u64, metric: &str) -> Option<Vec<f64>> {
        let (dir, epoch) = self.runs.get(&(row, group, seed))?;
        let (kept, queries) = dir.queries(&self.groups[group].dataset)?;
        (kept == *epoch).then(|| queries.values(metric)).flatten()
    }
}

/// A variant's row: its label, or else its name.
pub fn row_key(experiment: &StoredExperiment, variant: &str) -> String {
    experiment
        .presentation
        .labels
        .get(variant)
        .cloned()
        .unwrap_or_else(|| variant.to_string())
}

/// The rows: every variant of every experiment, in spec order, one per label (or name).
fn rows(experiments: &[StoredExperiment]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for e in experiments {
        for v in &e.variants {
            let row = match e.presentation.labels.get(v) {
                Some(label) => Row {
                    key: label.clone(),
                    labelled: true,
                },
                None => Row {
                    key: v.clone(),
                    labelled: false,
                },
            };
            if !rows.iter().any(|r| r.key == row.key) {
                rows.push(row);
            }
        }
    }
    rows
}

/// The experiments' selection protocol in words, or a pointer to each report when they
/// differ.
fn selection_text(experiments: &[StoredExperiment]) -> String {
    let mut texts: Vec<String> = experiments.iter().map(StoredExperiment::selection_text).collect();
    texts.dedup();
    match &texts[..] {
        [one] => one.clone(),
        _ => "at the epoch each experiment's own selection protocol picks (see its report)".into(),
    }
}

/// The column groups: each experiment's evaluation datasets, in order of appearance.
fn groups(experiments: &[StoredExperiment], finals: &[Vec<Final>]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (ei, finals) in finals.iter().enumerate() {
        for f in finals {
            if !groups
                .iter()
                .any(|g| g.experiment == ei && g.dataset == f.dataset)
            {
                groups.push(Group {
                    experiment: ei,
                    dataset: f.dataset.clone(),
                    title: f.dataset.clone(),
                });
            }
        }
    }
    let shared = |d: &str| groups.iter().filter(|g| g.dataset == d).count() > 1;
    let titles: Vec<String> = groups
        .iter()
        .map(|g| match shared(&g.dataset) {
            true => format!("{}: {}", experiments[g.experiment].name, g.dataset),
            false => g.dataset.clone(),
        })
        .collect();
    for (g, title) in groups.iter_mut().zip(titles) {
        g.title = title;
    }
    groups
}
