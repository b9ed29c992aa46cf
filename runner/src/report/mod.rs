//! Reports for papers, rebuilt from the run store alone: Polars tables (CSV, Parquet,
//! Markdown, LaTeX), plotters charts (SVG and PNG) and a `README.md` that ties them
//! together. Reading the store ([`store`]) → statistics over seeds ([`tables`]) and across
//! experiments with tests against the baseline ([`compare`], [`significance`]) → text
//! tables ([`text_table`], [`diagnostics`]) and charts ([`charts`]) → the report page
//! ([`page`]).
//!
//! A report works on partial results: runs that are missing, failed or still running are
//! listed, never a reason to stop.

pub mod charts;
pub mod compare;
pub mod diagnostics;
pub mod page;
pub mod significance;
pub mod store;
pub mod tables;
pub mod text_table;

use std::path::{Path, PathBuf};

use polars::prelude::*;

use self::compare::Comparison;
use self::store::StoredExperiment;
use self::tables::Tables;
use self::text_table::TextTable;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: no run store here (expected `runs/` or `experiment.json`); pass `reports/<experiment>` or the experiment's spec", dir.display())]
    NotAStore { dir: PathBuf },
    #[error(transparent)]
    Index(#[from] crate::store::IndexError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("building table `{table}`: {source}")]
    Polars {
        table: &'static str,
        #[source]
        source: PolarsError,
    },
    #[error("drawing {}: {message}", path.display())]
    Chart { path: PathBuf, message: String },
    #[error("baseline `{baseline}` is no variant of {experiments} (by label or name); the rows are: {rows}")]
    UnknownBaseline {
        baseline: String,
        experiments: String,
        rows: String,
    },
    #[error("run `{variant}` seed {seed}: {source}")]
    Selection {
        variant: String,
        seed: u64,
        #[source]
        source: crate::eval::selection::SelectionError,
    },
}

/// What a report wrote, and what it could not show.
#[derive(Debug)]
pub struct Report {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// Runs of the matrix without a finished result (missing, failed, pending, running).
    pub incomplete: usize,
}

/// Rebuilds the report of the experiment stored in `experiment_dir`.
pub fn write(experiment_dir: &Path) -> Result<Report, ReportError> {
    write_experiment(&StoredExperiment::read(experiment_dir)?)
}

/// Writes the report of `experiment` into its folder.
pub fn write_experiment(experiment: &StoredExperiment) -> Result<Report, ReportError> {
    let dir = &experiment.dir;
    let tables = Tables::build(experiment)?;
    let comparison = Comparison::build(std::slice::from_ref(experiment), None)?;
    let written = write_tables(
        dir,
        std::slice::from_ref(experiment),
        &comparison,
        &format!("tab:{}-results", experiment.name),
    )?;
    let stats = charts::Stats::of(&tables)?;
    let mut files = written.files.clone();
    let diagnostics = diagnostics::table(experiment, &stats)?;
    if let Some(d) = &diagnostics {
        files.push(save(dir, "diagnostics.md", &d.to_markdown())?);
        files.push(save(dir, "diagnostics.tex", &d.to_latex())?);
    }
    let charts = charts::draw_all(experiment, &stats, &dir.join("charts"))?;
    files.push(save(
        dir,
        "README.md",
        &page::render(experiment, &written, diagnostics.as_ref(), &charts),
    )?);
    for (name, frame) in [
        ("results", &tables.results),
        ("curves", &tables.curves),
        ("runs", &tables.runs),
    ] {
        files.extend(write_frame(dir, name, frame)?);
    }
    files.extend(charts.into_iter().flat_map(|c| c.files));
    Ok(Report {
        dir: dir.clone(),
        files,
        incomplete: experiment.runs.iter().filter(|r| !r.state.is_done()).count(),
    })
}

/// Writes into `out` the report over several experiments: the wide results table, the
/// statistics against `baseline` (a label or variant name; else the first experiment's),
/// the ablation table, and a README linking each experiment's own report.
pub fn write_comparison(
    experiments: &[StoredExperiment],
    baseline: Option<&str>,
    out: &Path,
) -> Result<Report, ReportError> {
    let comparison = Comparison::build(experiments, baseline)?;
    if let Some(b) = baseline.filter(|b| !comparison.rows.iter().any(|r| r.key == *b)) {
        return Err(ReportError::UnknownBaseline {
            baseline: b.to_string(),
            experiments: comparison.experiments.join(", "),
            rows: comparison
                .rows
                .iter()
                .map(|r| format!("`{}`", r.key))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let written = write_tables(out, experiments, &comparison, "tab:results")?;
    let mut files = written.files.clone();
    files.push(save(
        out,
        "README.md",
        &page::render_comparison(experiments, &written, out),
    )?);
    Ok(Report {
        dir: out.to_path_buf(),
        files,
        incomplete: experiments
            .iter()
            .flat_map(|e| &e.runs)
            .filter(|r| !r.state.is_done())
            .count(),
    })
}

/// The tables a report page shows, and the files they were written to.
pub struct Written {
    pub results: TextTable,
    /// Which epoch the results come from, in words.
    pub selection: String,
    pub ablation: Option<TextTable>,
    pub files: Vec<PathBuf>,
}

/// The tables of a report: `results.md`/`.tex` (wide), `statistics.md`/`.csv`/`.parquet`,
/// and `ablation.md`/`.tex` when variants differ.
fn write_tables(
    dir: &Path,
    experiments: &[StoredExperiment],
    comparison: &Comparison,
    label: &str,
) -> Result<Written, ReportError> {
    let results = comparison.table(label);
    let mut files = vec![
        save(dir, "results.md", &results.to_markdown())?,
        save(dir, "results.tex", &results.to_latex())?,
        save(dir, "statistics.md", &comparison.statistics_table().to_markdown())?,
    ];
    let statistics = comparison.statistics().map_err(|source| ReportError::Polars {
        table: "statistics",
        source,
    })?;
    files.extend(write_frame(dir, "statistics", &statistics)?);
    let ablation = tables::ablation(experiments, comparison);
    if let Some(a) = &ablation {
        files.push(save(dir, "ablation.md", &a.to_markdown())?);
        files.push(save(dir, "ablation.tex", &a.to_latex())?);
    }
    Ok(Written {
        results,
        selection: comparison.selection.clone(),
        ablation,
        files,
    })
}

fn save(dir: &Path, name: &str, text: &str) -> Result<PathBuf, ReportError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Writes `frame` as `<name>.csv` and `<name>.parquet`.
fn write_frame(dir: &Path, name: &'static str, frame: &DataFrame) -> Result<[PathBuf; 2], ReportError> {
    let polars = |source| ReportError::Polars { table: name, source };
    let create = |path: &Path| {
        std::fs::File::create(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let csv = dir.join(format!("{name}.csv"));
    let parquet = dir.join(format!("{name}.parquet"));
    let mut frame = frame.clone();
    CsvWriter::new(create(&csv)?)
        .include_header(true)
        .finish(&mut frame)
        .map_err(polars)?;
    ParquetWriter::new(create(&parquet)?)
        .finish(&mut frame)
        .map_err(polars)?;
    Ok([csv, parquet])
}
