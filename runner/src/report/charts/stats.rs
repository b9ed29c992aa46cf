//! The statistics over seeds that charts draw, read once out of the report's Polars tables
//! into plain vectors that chart code can search by variant, dataset and metric.

use crate::report::tables::{Tables, METRICS};
use crate::report::ReportError;

/// `mean ± std` of one series, the form every chart reads.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: u32,
}

/// The statistics over seeds the charts draw, read out of the Polars tables.
pub struct Stats {
    /// (variant, dataset, metric) → final statistic.
    finals: Vec<(String, String, String, Stat)>,
    /// (variant, dataset, metric, epoch) → statistic.
    curves: Vec<(String, String, String, i64, Stat)>,
}

impl Stats {
    pub fn of(tables: &Tables) -> Result<Self, ReportError> {
        let polars = |source| ReportError::Polars {
            table: "charts",
            source,
        };
        let results = &tables.results;
        let mut finals = Vec::new();
        let variant = results
            .column("variant")
            .and_then(|c| Ok(c.str()?.clone()))
            .map_err(polars)?;
        let dataset = results
            .column("dataset")
            .and_then(|c| Ok(c.str()?.clone()))
            .map_err(polars)?;
        let seeds = results
            .column("seeds")
            .and_then(|c| Ok(c.u32()?.clone()))
            .map_err(polars)?;
        for (m, _) in METRICS {
            let col = |suffix: &str| {
                results
                    .column(&format!("{m}_{suffix}"))
                    .and_then(|c| Ok(c.f64()?.clone()))
                    .map_err(polars)
            };
            let (mean, std) = (col("mean")?, col("std")?);
            for i in 0..results.height() {
                if let (Some(v), Some(d), Some(mean)) = (variant.get(i), dataset.get(i), mean.get(i)) {
                    let stat = Stat {
                        mean,
                        std: std.get(i),
                        n: seeds.get(i).unwrap_or(0),
                    };
                    finals.push((v.to_string(), d.to_string(), m.to_string(), stat));
                }
            }
        }
        let c = &tables.curve_stats;
        let text = |name: &str| c.column(name).and_then(|c| Ok(c.str()?.clone())).map_err(polars);
        let (variant, dataset, metric) = (text("variant")?, text("dataset")?, text("metric")?);
        let epoch = c
            .column("epoch")
            .and_then(|c| Ok(c.cast(&polars::prelude::DataType::Int64)?.i64()?.clone()))
            .map_err(polars)?;
        let float = |name: &str| c.column(name).and_then(|c| Ok(c.f64()?.clone())).map_err(polars);
        let (mean, std) = (float("mean")?, float("std")?);
        let n = c.column("n").and_then(|c| Ok(c.u32()?.clone())).map_err(polars)?;
        let curves = (0..c.height())
            .filter_map(|i| {
                let stat = Stat {
                    mean: mean.get(i)?,
                    std: std.get(i),
                    n: n.get(i)?,
                };
                Some((
                    variant.get(i)?.to_string(),
                    dataset.get(i)?.to_string(),
                    metric.get(i)?.to_string(),
                    epoch.get(i)?,
                    stat,
                ))
            })
            .collect();
        Ok(Self { finals, curves })
    }

    pub fn datasets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, d, _, _) in &self.finals {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }

    pub fn last(&self, variant: &str, dataset: &str, metric: &str) -> Option<Stat> {
        self.finals
            .iter()
            .find(|(v, d, m, _)| v == variant && d == dataset && m == metric)
            .map(|f| f.3)
    }

    pub fn curve(&self, variant: &str, dataset: &str, metric: &str) -> Vec<(i64, Stat)> {
        self.curves
            .iter()
            .filter(|(v, d, m, _, _)| v == variant && d == dataset && m == metric)
            .map(|c| (c.3, c.4))
            .collect()
    }
}
