//! Reports for papers, rebuilt from the run store alone: Polars tables (CSV, Parquet,
//! Markdown, LaTeX), plotters charts (SVG and PNG) and a `README.md` that ties them
//! together. Reading the store ([`store`]) → statistics over seeds ([`tables`]) → text
//! tables ([`text_table`], [`diagnostics`]) and charts ([`charts`]) → the report page
//! ([`page`]).
//!
//! A report works on partial results: runs that are missing, failed or still running are
//! listed, never a reason to stop.

pub mod charts;
pub mod diagnostics;
pub mod page;
pub mod store;
pub mod tables;
pub mod text_table;

use std::path::{Path, PathBuf};

use polars::prelude::*;

use self::store::StoredExperiment;
use self::tables::Tables;

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
    let experiment = StoredExperiment::read(experiment_dir)?;
    let tables = Tables::build(&experiment)?;
    let mut files = Vec::new();
    let mut save = |name: &str, text: &str| -> Result<(), ReportError> {
        let path = experiment_dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
        files.push(path);
        Ok(())
    };
    let results = tables.results_text(&experiment);
    save("results.md", &results.to_markdown())?;
    save("results.tex", &results.to_latex())?;
    let ablation = tables::ablation(&experiment);
    if let Some(a) = &ablation {
        save("ablation.md", &a.to_markdown())?;
        save("ablation.tex", &a.to_latex())?;
    }
    let stats = charts::Stats::of(&tables)?;
    let diagnostics = diagnostics::table(&experiment, &stats);
    if let Some(d) = &diagnostics {
        save("diagnostics.md", &d.to_markdown())?;
        save("diagnostics.tex", &d.to_latex())?;
    }
    let charts = charts::draw_all(&experiment, &stats, &experiment_dir.join("charts"))?;
    save(
        "README.md",
        &page::render(
            &experiment,
            &results,
            ablation.as_ref(),
            diagnostics.as_ref(),
            &charts,
        ),
    )?;
    for (name, frame) in [
        ("results", &tables.results),
        ("curves", &tables.curves),
        ("runs", &tables.runs),
    ] {
        files.extend(write_frame(experiment_dir, name, frame)?);
    }
    files.extend(charts.into_iter().flat_map(|c| c.files));
    Ok(Report {
        dir: experiment_dir.to_path_buf(),
        files,
        incomplete: experiment.runs.iter().filter(|r| !r.state.is_done()).count(),
    })
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
