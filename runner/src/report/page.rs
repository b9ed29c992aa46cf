//! The report's `README.md`: what was compared and how, the tables, the charts, and the
//! state of every run — so a reader sees what is missing before trusting a number.

use std::fmt::Write;

use super::charts::Drawn;
use super::store::{RunState, StoredExperiment};
use super::text_table::TextTable;

pub fn render(
    experiment: &StoredExperiment,
    results: &TextTable,
    ablation: Option<&TextTable>,
    diagnostics: Option<&TextTable>,
    charts: &[Drawn],
) -> String {
    let mut s = format!("# {}\n\n", experiment.name);
    if let Some(d) = &experiment.description {
        writeln!(s, "{d}\n").unwrap();
    }
    if let Some(spec) = &experiment.spec {
        writeln!(s, "Spec: `{}`. ", spec.display()).unwrap();
    }
    let seeds: Vec<u64> = {
        let mut v: Vec<u64> = experiment.runs.iter().map(|r| r.seed).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let done = experiment.done().count();
    writeln!(
        s,
        "{} variant(s) × seeds {:?}: {done} of {} runs finished. Rebuild this page with \
         `gadms-run report {}`.\n",
        experiment.variants.len(),
        seeds,
        experiment.runs.len(),
        experiment.dir.display()
    )
    .unwrap();

    s += "## Results\n\n";
    writeln!(s, "{}\n", results.caption).unwrap();
    s += &results.to_markdown();
    writeln!(
        s,
        "\nEach number is the retrieval metric (%) of the evaluation {}.",
        experiment.selection_text()
    )
    .unwrap();
    s += "Error terms are the sample standard deviation (n − 1 in the denominator) over the \
          n finished seeds of a variant; with one seed there is none. Runs that did not \
          finish are not counted (see *Runs*). Tables: `results.csv`, `results.parquet`, \
          `results.tex` (booktabs); per-epoch values of every run: `curves.csv`, \
          `curves.parquet`.\n\n";

    if let Some(a) = ablation {
        s += "## What varies\n\n";
        writeln!(s, "{}\n", a.caption).unwrap();
        s += &a.to_markdown();
        s += "\nAlso as `ablation.tex`.\n\n";
    }

    if let Some(d) = diagnostics {
        s += "## Diagnostics\n\n";
        writeln!(s, "{}\n", d.caption).unwrap();
        s += &d.to_markdown();
        s += "\nThe share of the oracle's gain says how much of what masking the noise can win \
              back on this data a variant wins; it means little unless the oracle's gain is above \
              its spread. Also as `diagnostics.tex`; per epoch in `curves.csv`.\n\n";
    }

    if !charts.is_empty() {
        s += "## Charts\n\n";
        for c in charts {
            writeln!(
                s,
                "### {}\n\n![{}]({}.png)\n\n(SVG: `{}.svg`)\n",
                c.title, c.title, c.stem, c.stem
            )
            .unwrap();
        }
    }

    s += "## Runs\n\n| variant | seed | hash | state | note |\n| :-- | --: | :-- | :-- | :-- |\n";
    for r in &experiment.runs {
        let note = match &r.state {
            RunState::Failed(e) => e.replace('|', "\\|").replace('\n', " "),
            RunState::Missing => "no result in the store; `gadms-run run SPEC` trains it".into(),
            RunState::Running => "started, not finished (or interrupted; a rerun resumes it)".into(),
            RunState::Pending => "not started".into(),
            RunState::Done => String::new(),
        };
        writeln!(
            s,
            "| {} | {} | `{}` | {} | {note} |",
            r.variant.replace('|', "\\|"),
            r.seed,
            r.hash.as_deref().unwrap_or("?"),
            r.state.label()
        )
        .unwrap();
    }
    s
}
