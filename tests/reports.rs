//! `gadms-run report` on a hand-made run store (tests/fixtures/report/store): three
//! finished variants, one of them with a failed seed, and a variant with a missing and a
//! running seed. Tables must equal the golden files in tests/fixtures/report/expected
//! (`GADMS_BLESS=1` rewrites them after a deliberate change; review the diff), charts must
//! exist in both formats and show something.

use std::path::{Path, PathBuf};

use polars::prelude::*;

#[path = "common/cli.rs"]
mod cli;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/report")
}

/// A copy of the fixture store, so the report writes into scratch space.
fn store(name: &str) -> PathBuf {
    let dir = cli::scratch(&format!("report-{name}"));
    for entry in walkdir::WalkDir::new(fixtures().join("store")) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(fixtures().join("store")).unwrap();
        let to = dir.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    dir
}

fn report(dir: &Path) -> String {
    let (out, text) = cli::gadms_run([Path::new("report"), dir]);
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn tables_match_the_golden_files() {
    let dir = store("golden");
    let text = report(&dir);
    assert!(text.contains("3 run(s) without a finished result"), "{text}");
    let bless = std::env::var_os("GADMS_BLESS").is_some();
    for file in [
        "results.csv",
        "results.md",
        "results.tex",
        "ablation.md",
        "ablation.tex",
        "runs.csv",
    ] {
        let got = std::fs::read_to_string(dir.join(file)).unwrap();
        let golden = fixtures().join("expected").join(file);
        if bless {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap();
        assert_eq!(got, want, "{file} differs from {}", golden.display());
    }
    // The Parquet file holds the same table as the CSV.
    let parquet = ParquetReader::new(std::fs::File::open(dir.join("results.parquet")).unwrap())
        .finish()
        .unwrap();
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(parquet.height(), csv.lines().count() - 1);
    assert_eq!(
        parquet
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(","),
        csv.lines().next().unwrap()
    );
    let r1 = parquet.column("R1_mean").unwrap().f64().unwrap();
    assert_eq!(r1.get(1), Some(15.5));
    assert_eq!(r1.get(3), None, "a variant without a finished run has no mean");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_curves_are_a_long_table_of_every_finished_run() {
    let dir = store("curves");
    report(&dir);
    let csv = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("variant,seed,epoch,dataset,metric,value"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // Failed and running runs are left out.
    assert!(rows
        .iter()
        .all(|r| !(r[0] == "scored" && r[1] == "2") && r[0] != "late"));
    // The epoch loss is the mean of the epoch's log records: (2.6 + 0.6 + 2.4 + 0.6) / 2.
    assert!(
        rows.iter().any(|r| r[..5] == ["plain", "1", "1", "train", "loss"]
            && (r[5].parse::<f64>().unwrap() - 3.1).abs() < 1e-9),
        "{csv}"
    );
    assert!(rows
        .iter()
        .any(|r| r[..5] == ["scored", "1", "2", "train", "noise AUROC"]));
    assert!(rows
        .iter()
        .any(|r| r[..5] == ["masked_50%", "2", "0", "toy", "mINP"]));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_latex_tables_are_balanced_and_escaped() {
    let dir = store("latex");
    report(&dir);
    for file in ["results.tex", "ablation.tex"] {
        let tex = std::fs::read_to_string(dir.join(file)).unwrap();
        for env in ["table", "tabular"] {
            assert_eq!(tex.matches(&format!("\\begin{{{env}}}")).count(), 1, "{file}");
            assert_eq!(tex.matches(&format!("\\end{{{env}}}")).count(), 1, "{file}");
        }
        for rule in ["\\toprule", "\\midrule", "\\bottomrule"] {
            assert_eq!(tex.matches(rule).count(), 1, "{file}: {rule}");
        }
        assert_eq!(
            tex.matches('{').count(),
            tex.matches('}').count(),
            "{file}: braces"
        );
        // The variant `masked_50%` must not start a subscript or a comment.
        assert!(tex.contains("masked\\_50\\%"), "{file}: {tex}");
        let body = tex.lines().filter(|l| !l.starts_with('%'));
        for line in body {
            let unescaped = line
                .match_indices(['_', '%'])
                .any(|(i, _)| !line[..i].ends_with('\\'));
            assert!(!unescaped, "{file}: unescaped `_` or `%` in {line}");
        }
        // Every row has as many cells as the column specification.
        let columns = tex
            .split("\\begin{tabular}{")
            .nth(1)
            .and_then(|t| t.split('}').next())
            .unwrap()
            .len();
        for row in tex.lines().filter(|l| l.trim_end().ends_with("\\\\")) {
            assert_eq!(row.matches(" & ").count() + 1, columns, "{file}: {row}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_chart_is_drawn_as_svg_and_png_and_shows_something() {
    let dir = store("charts");
    report(&dir);
    let charts = [
        "retrieval-toy",
        "curves",
        "collapse",
        "noise-auroc",
        "token-scores-scored",
    ];
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for name in charts {
        let png = image::open(dir.join(format!("charts/{name}.png")))
            .unwrap_or_else(|e| panic!("{name}.png: {e}"))
            .to_rgb8();
        let pixels = png.pixels().count();
        let inked = png.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        let mut colours: Vec<[u8; 3]> = png.pixels().map(|p| p.0).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(
            png.width() >= 1000 && png.height() >= 200,
            "{name}: {:?}",
            png.dimensions()
        );
        assert!(
            inked * 50 > pixels,
            "{name}: only {inked} of {pixels} pixels drawn"
        );
        assert!(colours.len() > 20, "{name}: {} colours", colours.len());
        let svg = std::fs::read_to_string(dir.join(format!("charts/{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.len() > 2000, "{name}.svg");
        assert!(
            readme.contains(&format!("(charts/{name}.png)")),
            "README embeds {name}"
        );
    }
    // Bars and legends name what they show; the scorer-less baseline has no AUROC bar.
    let bars = std::fs::read_to_string(dir.join("charts/retrieval-toy.svg")).unwrap();
    for label in [
        "plain (baseline)",
        "masked_50%",
        "scored",
        "late",
        "R@1",
        "mAP",
        "no finished run",
    ] {
        assert!(bars.contains(label), "retrieval chart lacks `{label}`");
    }
    let auroc = std::fs::read_to_string(dir.join("charts/noise-auroc.svg")).unwrap();
    assert!(auroc.contains("scored") && !auroc.contains("plain") && auroc.contains("chance (0.5)"));
    assert!(auroc.contains("all tokens") && auroc.contains("content words"));
    let tokens = std::fs::read_to_string(dir.join("charts/token-scores-scored.svg")).unwrap();
    for token in ["woman", "click", "backpack", "masked for MTP", "injected noise"] {
        assert!(tokens.contains(token), "token chart lacks `{token}`");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// `experiment.strength` names a config key; the fixture's two scoring variants become one
/// swept variant `scorer` at two strengths (`weak` and `strong` of `model.init.variant`), so
/// the chart has one line through two points. Without the key there is no such chart.
#[test]
fn the_noise_auroc_is_drawn_against_the_strength_the_spec_names() {
    let dir = store("strength");
    report(&dir);
    assert!(
        !dir.join("charts/noise-auroc-strength.png").exists(),
        "drawn without `strength`"
    );

    let index = dir.join("experiment.json");
    let mut text = std::fs::read_to_string(&index).unwrap();
    for (variant, strength) in [("masked_50%", "weak"), ("scored", "strong")] {
        let swept = format!("scorer[model.init.variant={strength}]");
        let runs = dir.join("runs");
        std::fs::rename(runs.join(variant), runs.join(&swept)).unwrap();
        for seed in ["seed-1", "seed-2"] {
            let config = runs.join(&swept).join(seed).join("config.toml");
            let mut toml = std::fs::read_to_string(&config).unwrap();
            toml.push_str(&format!("\n[model.init]\nvariant = \"{strength}\"\n"));
            std::fs::write(&config, toml).unwrap();
        }
        text = text.replace(&format!("\"{variant}\""), &format!("\"{swept}\""));
    }
    let mut experiment: serde_json::Value = serde_json::from_str(&text).unwrap();
    experiment["strength"] = "model.init.variant".into();
    std::fs::write(&index, experiment.to_string()).unwrap();
    report(&dir);

    let png = image::open(dir.join("charts/noise-auroc-strength.png"))
        .unwrap()
        .to_rgb8();
    let inked = png.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        png.width() >= 1000 && inked * 50 > png.pixels().count(),
        "{:?}, {inked} inked",
        png.dimensions()
    );
    let svg = std::fs::read_to_string(dir.join("charts/noise-auroc-strength.svg")).unwrap();
    for label in ["weak", "strong", "scorer", "model.init.variant", "chance (0.5)"] {
        assert!(svg.contains(label), "strength chart lacks `{label}`");
    }
    assert!(
        !svg.contains("scorer["),
        "the line's name leaves the strength out"
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("(charts/noise-auroc-strength.png)"),
        "README embeds the chart"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The diagnostics table against hand computations on the fixture: `scored` is named the
/// oracle. mAP means: plain 13.00 (± 1.41), masked_50% 16.75 (± 1.06), scored 21.25 (one
/// seed), so masked_50% wins (16.75 − 13) / (21.25 − 13) = 45 % of the oracle's gain, with a
/// spread of √(1.06² + 1.41²) = 1.77. Its last content-word AUROCs are 0.7 and 0.8, its last
/// image cosines 0.2 and 0.4.
#[test]
fn the_diagnostics_measure_each_variant_against_the_oracle() {
    let dir = store("diagnostics");
    let report_alone = |dir: &Path| {
        report(dir);
        std::fs::read_to_string(dir.join("diagnostics.md")).unwrap()
    };
    let without = report_alone(&dir);
    assert!(!without.contains("share"), "no oracle, no share: {without}");
    assert!(without.contains("noise AUROC (content words)"), "{without}");

    let index = dir.join("experiment.json");
    let mut experiment: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    experiment["oracle"] = "scored".into();
    std::fs::write(&index, experiment.to_string()).unwrap();
    let table = report_alone(&dir);
    let row = |variant: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| {variant} |")))
            .unwrap_or_else(|| panic!("no row of {variant}: {table}"))
            .to_string()
    };
    let masked = row("masked_50%");
    for cell in [
        "| 3.75 ± 1.77 | 45 % |",
        "| 0.75 ± 0.07 |",
        "| 0.30 ± 0.14 | 0.50 ± 0.00 |",
    ] {
        assert!(masked.contains(cell), "{masked} lacks {cell}");
    }
    assert!(row("scored").contains("| 8.25 | 100 % |"), "{table}");
    assert!(row("plain").contains("| 0.00 ± 2.00 | 0 % |"), "{table}");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("## Diagnostics") && readme.contains("the oracle `scored`"),
        "{readme}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn partial_results_are_reported_not_fatal() {
    let dir = store("partial");
    // Only the failed run and the running one remain; nothing has finished.
    for gone in ["plain", "masked_50%"] {
        std::fs::remove_dir_all(dir.join("runs").join(gone)).unwrap();
    }
    std::fs::remove_dir_all(dir.join("runs/scored/seed-1")).unwrap();
    let text = report(&dir);
    assert!(text.contains("8 run(s) without a finished result"), "{text}");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("0 of 8 runs finished"), "{readme}");
    assert!(
        readme.contains("| scored | 2 | `c2c2c2c2c2c2c2c2` | failed | epoch 2, step 3"),
        "{readme}"
    );
    assert!(
        readme.contains("| plain | 1 | `a1a1a1a1a1a1a1a1` | missing |"),
        "{readme}"
    );
    assert!(readme.contains("| late | — | 0 | — |"), "{readme}");

    // A store without an index (written by hand) is read from its folders.
    std::fs::remove_file(dir.join("experiment.json")).unwrap();
    let text = report(&dir);
    assert!(text.contains("2 run(s) without a finished result"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_folder_that_is_no_store_is_named_in_the_error() {
    let dir = cli::scratch("report-empty");
    let (out, text) = cli::gadms_run([Path::new("report"), &dir]);
    assert!(!out.status.success());
    assert!(
        text.contains(&dir.display().to_string()) && text.contains("no run store here"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `experiment.selection = "best-test"` reports each run's best epoch on the test set itself
/// (the mean of those over seeds), says so in the caption; `best-val` without a validation
/// set is refused naming the key.
#[test]
fn the_selection_protocol_picks_the_epoch_and_is_named() {
    let dir = store("selection");
    let index = dir.join("experiment.json");
    let with = |selection: &str| {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
        json["selection"] = selection.into();
        std::fs::write(&index, json.to_string()).unwrap();
    };
    // The fixture's R@1 rises every epoch; make one run peak before its last epoch.
    let peaked = dir.join("runs/plain/seed-1/metrics.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&peaked)
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            if r["kind"] == "eval" && r["epoch"] == 1 {
                r["R1"] = 30.0.into();
            }
            r.to_string()
        })
        .collect();
    std::fs::write(&peaked, lines.join("\n")).unwrap();
    with("best-test");
    report(&dir);
    // By hand: per finished run, the highest R@1 over its epochs; averaged over the seeds.
    let mut best: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for run in ["plain", "masked_50%", "scored"]
        .iter()
        .flat_map(|v| [format!("{v}/seed-1"), format!("{v}/seed-2")])
    {
        let path = dir.join("runs").join(&run);
        let status = std::fs::read_to_string(path.join("status.json")).unwrap();
        if !status.contains("\"done\"") {
            continue;
        }
        let r1 = std::fs::read_to_string(path.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["kind"] == "eval")
            .map(|r| r["R1"].as_f64().unwrap())
            .fold(f64::NEG_INFINITY, f64::max);
        best.entry(run.split('/').next().unwrap().into())
            .or_default()
            .push(r1);
    }
    let results = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(dir.join("results.csv")))
        .unwrap()
        .finish()
        .unwrap();
    let variants = results.column("variant").unwrap().str().unwrap().clone();
    let r1 = results.column("R1_mean").unwrap().f64().unwrap().clone();
    let mut checked = 0;
    for (variant, values) in &best {
        let row = (0..results.height())
            .find(|&i| variants.get(i) == Some(variant.as_str()))
            .unwrap();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!(
            (r1.get(row).unwrap() - mean).abs() < 1e-9,
            "{variant}: {:?} vs {mean}",
            r1.get(row)
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "the fixture's variants with finished runs");
    let page = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(page.contains("the paper's protocol"), "{page}");

    with("best-val");
    let (out, text) = cli::gadms_run([Path::new("report"), &dir]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("`experiment.selection = \"best-val\"`") && text.contains("split = \"val\""),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
