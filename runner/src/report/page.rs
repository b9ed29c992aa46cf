//! The report's `README.md`: what was compared and how, the tables, the charts, and the
//! state of every run — so a reader sees what is missing before trusting a number.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use super::charts::Drawn;
use super::significance;
use super::store::{RunState, StoredExperiment};
use super::text_table::TextTable;
use super::Written;

/// The README of one experiment's report.
pub fn render(
    experiment: &StoredExperiment,
    tables: &Written,
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

    s += &tables_sections(
        tables,
        "`results.csv`, `results.parquet` (per variant and dataset), `curves.csv`, \
         `curves.parquet` (every run's values per epoch), ",
    );

    if let Some(d) = diagnostics {
        s += "## Diagnostics\n\n";
        writeln!(s, "{}\n", d.caption).unwrap();
        s += &d.to_markdown();
        s += "\nThe share of the oracle's gain says how much of what masking the noise can win \
              back on this data a variant wins; it means little unless the oracle's gain is above \
              its spread. Of the two spreads, the per-seed differences' is the gain's own; the seeds' \
              spread of the means also holds what a seed does to every variant alike, so a gain \
              above it is clear even to a reader who compares the means alone. Also as \
              `diagnostics.tex`; per epoch in `curves.csv`.\n\n";
    }

    if !charts.is_empty() {
        s += "## Charts\n\nEach also as SVG (text outlined) and PDF (font embedded); the bars and \
              curves also in a paper style, without title or note, one and two columns wide: \
              `charts/paper/<name>-1col.pdf`, `-2col.pdf`.\n\n";
        for c in charts {
            writeln!(
                s,
                "### {}\n\n![{}]({}.png)\n\n(`{}.svg`, `{}.pdf`)\n",
                c.title, c.title, c.stem, c.stem, c.stem
            )
            .unwrap();
        }
    }

    s += "## Runs\n\nEvery run writes TensorBoard event files into its folder as it trains: \
          `tensorboard --logdir` this folder shows the curves of all runs side by side.\n\n\
          | variant | seed | hash | state | note |\n| :-- | --: | :-- | :-- | :-- |\n";
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

/// The results, statistics and ablation sections every report page has. `frames` names the
/// page's own data files beside the statistics.
fn tables_sections(tables: &Written, frames: &str) -> String {
    let mut s = String::from("## Results\n\n");
    writeln!(s, "{}\n", tables.results.caption).unwrap();
    s += &tables.results.to_markdown();
    writeln!(
        s,
        "\nEach number is the retrieval metric (%) of the evaluation {}; runs that did not \
         finish are not counted. Also as `results.tex` (booktabs; a `table*` with several \
         datasets).\n\n## Statistics\n",
        tables.selection
    )
    .unwrap();
    s += significance::METHOD;
    writeln!(
        s,
        "\n\nEvery cell's seeds, interval and test: `statistics.md`; data: {frames}\
         `statistics.csv`, `statistics.parquet`.\n"
    )
    .unwrap();
    if let Some(a) = &tables.ablation {
        s += "## What varies\n\n";
        writeln!(s, "{}\n", a.caption).unwrap();
        s += &a.to_markdown();
        s += "\nAlso as `ablation.tex`. Name the columns in the spec with `[report.columns]` \
              (`\"masking.noise_mask\" = \"SDM noise mask\"`) and the variants with \
              `label`.\n\n";
    }
    s
}

/// The README of a report over several experiments, written into `out`.
pub fn render_comparison(experiments: &[StoredExperiment], tables: &Written, out: &Path) -> String {
    let names: Vec<&str> = experiments.iter().map(|e| e.name.as_str()).collect();
    let mut s = format!("# {}\n\n", names.join(" · "));
    s += "| experiment | runs finished | report |\n| :-- | --: | :-- |\n";
    for e in experiments {
        writeln!(
            s,
            "| {} | {} of {} | [{}]({}) |",
            e.name,
            e.done().count(),
            e.runs.len(),
            e.dir.display(),
            relative(&e.dir.join("README.md"), out).display()
        )
        .unwrap();
    }
    let dirs: Vec<String> = experiments.iter().map(|e| e.dir.display().to_string()).collect();
    writeln!(
        s,
        "\nRebuild this page with `gadms-run report {} --out {}`; each experiment's own report \
         has its charts and runs.\n",
        dirs.join(" "),
        out.display()
    )
    .unwrap();
    s += &tables_sections(tables, "");
    s
}

fn parts(path: &Path) -> Vec<Component<'_>> {
    path.components().filter(|c| *c != Component::CurDir).collect()
}

/// `path` as seen from the folder `from` (a relative one is taken from the working folder).
fn relative(path: &Path, from: &Path) -> PathBuf {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, from) = (absolute(path), absolute(from));
    let (to, base) = (parts(&path), parts(&from));
    let shared = to.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in shared..base.len() {
        out.push("..");
    }
    for c in &to[shared..] {
        out.push(c.as_os_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_between_folders_climbs_to_their_common_folder() {
        assert_eq!(
            relative(Path::new("/r/a/README.md"), Path::new("/r/paper/tables")),
            Path::new("../../a/README.md")
        );
        assert_eq!(
            relative(Path::new("./x/README.md"), Path::new("x")),
            Path::new("README.md")
        );
    }
}
