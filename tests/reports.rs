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
        "statistics.md",
        "statistics.csv",
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
            // `_{\pm …}` is the results' spread, a subscript in math mode.
            let unescaped = line
                .match_indices(['_', '%'])
                .any(|(i, _)| !line[..i].ends_with('\\') && !line[i..].starts_with("_{\\pm "));
            assert!(!unescaped, "{file}: unescaped `_` or `%` in {line}");
        }
        // Every row has as many cells as the column specification.
        let columns = tex
            .split("\\begin{tabular}{")
            .nth(1)
            .and_then(|t| t.split('}').next())
            .unwrap()
            .len();
        let cells = tex
            .lines()
            .filter(|l| l.trim_end().ends_with("\\\\") && !l.contains("\\multicolumn"));
        for row in cells {
            assert_eq!(row.matches(" & ").count() + 1, columns, "{file}: {row}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The text of the PDF at `path` by poppler's `pdftotext` (which `make test` installs where
/// apt-get can), or `None` without it.
fn pdf_text(path: &Path) -> Option<String> {
    let out = std::process::Command::new("pdftotext")
        .arg(path)
        .arg("-")
        .output()
        .ok()?;
    assert!(out.status.success(), "pdftotext {}: {out:?}", path.display());
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_chart_is_drawn_as_svg_pdf_and_png_and_shows_something() {
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
            !svg.contains("<text") && svg.matches("<path").count() > 50,
            "{name}.svg: the text is outlined"
        );
        let pdf = std::fs::read(dir.join(format!("charts/{name}.pdf"))).unwrap();
        let has = |needle: &[u8]| pdf.windows(needle.len()).any(|w| w == needle);
        assert!(
            pdf.starts_with(b"%PDF-") && has(b"/FontFile2") && has(b"DejaVuSans"),
            "{name}.pdf embeds DejaVu Sans"
        );
        assert!(
            readme.contains(&format!("(charts/{name}.png)")),
            "README embeds {name}"
        );
    }
    // The quantitative charts in the paper style: one and two columns wide (3.5 and 7 in, in
    // points), without the title.
    for name in ["retrieval-toy", "curves", "noise-auroc"] {
        for (suffix, width) in [("1col", "252"), ("2col", "504")] {
            let pdf = std::fs::read(dir.join(format!("charts/paper/{name}-{suffix}.pdf"))).unwrap();
            let text = String::from_utf8_lossy(&pdf);
            assert!(
                text.contains(&format!("/MediaBox [0 0 {width} ")),
                "{name}-{suffix}.pdf size"
            );
            assert!(dir.join(format!("charts/paper/{name}-{suffix}.svg")).exists());
        }
    }
    let Some(paper) = pdf_text(&dir.join("charts/paper/retrieval-toy-2col.pdf")) else {
        eprintln!("pdftotext not found (apt-get install poppler-utils): the charts' labels were not read");
        std::fs::remove_dir_all(dir).unwrap();
        return;
    };
    assert!(
        paper.contains("R@1") && !paper.contains("text-to-image retrieval"),
        "{paper}"
    );
    // Bars and legends name what they show; the scorer-less baseline has no AUROC bar.
    let pdf = |name: &str| pdf_text(&dir.join(format!("charts/{name}.pdf"))).unwrap();
    let bars = pdf("retrieval-toy");
    assert!(
        bars.contains("text-to-image retrieval"),
        "the report's chart has its title"
    );
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
    let auroc = pdf("noise-auroc");
    assert!(auroc.contains("scored") && !auroc.contains("plain") && auroc.contains("chance (0.5)"));
    assert!(auroc.contains("all tokens") && auroc.contains("content words"));
    let tokens = pdf("token-scores-scored");
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
    assert!(dir.join("charts/noise-auroc-strength.svg").exists());
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("(charts/noise-auroc-strength.png)"),
        "README embeds the chart"
    );
    // The SVG's text is outlined; the PDF's is text.
    let Some(text) = pdf_text(&dir.join("charts/noise-auroc-strength.pdf")) else {
        eprintln!("pdftotext not found (apt-get install poppler-utils): the chart's labels were not read");
        std::fs::remove_dir_all(dir).unwrap();
        return;
    };
    for label in ["weak", "strong", "scorer", "model.init.variant", "chance (0.5)"] {
        assert!(text.contains(label), "strength chart lacks `{label}`: {text}");
    }
    assert!(
        !text.contains("scorer["),
        "the line's name leaves the strength out"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The diagnostics table against hand computations on the fixture: `scored` is named the
/// oracle. mAP per seed: plain 12 and 14 (13.00 ± 1.41), masked_50% 16 and 17.5
/// (16.75 ± 1.06), scored 21.25 (one seed), so masked_50% wins (16.75 − 13) / (21.25 − 13)
/// = 45 % of the oracle's gain. Its per-seed differences 4 and 3.5 spread by 0.35, the two
/// means by √(1.06² + 1.41²) = 1.77. Its last content-word AUROCs are 0.7 and 0.8, its last
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
        "| 3.75 ± 0.35 | 1.77 | 45 % |",
        "| 0.75 ± 0.07 |",
        "| 0.30 ± 0.14 | 0.50 ± 0.00 |",
    ] {
        assert!(masked.contains(cell), "{masked} lacks {cell}");
    }
    assert!(
        row("scored").contains("| 8.25 | — | 100 % |"),
        "one seed, no spread: {table}"
    );
    assert!(
        row("plain").contains("| 0.00 | 2.00 | 0 % |"),
        "the baseline's gain has no spread of its own: {table}"
    );
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
    assert!(readme.contains("| late |"), "{readme}");

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

/// `statistics.csv` of `dir`: the row of `variant` and `metric`, by column name.
fn statistics_row(dir: &Path, variant: &str, metric: &str) -> std::collections::HashMap<String, String> {
    let csv = std::fs::read_to_string(dir.join("statistics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[0] == variant && r[3] == metric)
        .unwrap_or_else(|| panic!("no {variant} {metric} in {csv}"));
    header
        .iter()
        .map(|h| h.to_string())
        .zip(row.iter().map(|c| c.to_string()))
        .collect()
}

#[test]
fn the_statistics_match_a_hand_computation() {
    let dir = store("statistics");
    report(&dir);
    let close = |row: &std::collections::HashMap<String, String>, column: &str, want: f64| {
        let got: f64 = row[column]
            .parse()
            .unwrap_or_else(|_| panic!("{column} in {row:?}"));
        assert!((got - want).abs() < 1e-5, "{column}: {got}, by hand {want}");
    };
    // masked_50% against plain on R@1: seeds 1 and 2 give 15, 16 against 10, 12.
    let r1 = statistics_row(&dir, "masked_50%", "R1");
    assert_eq!((r1["n"].as_str(), r1["test_pairs"].as_str()), ("2", "2"));
    close(&r1, "mean", 15.5);
    close(&r1, "std", 0.5f64.sqrt()); // √((0.5² + 0.5²) / 1)
                                      // ± t(0.975; 1) · s / √2 = 12.706205 · 0.707107 / 1.414214 = 6.353102
    close(&r1, "ci95_low", 15.5 - 6.353_102);
    close(&r1, "ci95_high", 15.5 + 6.353_102);
    close(&r1, "delta", 15.5 - 11.0);
    // d = (5, 4): t = 4.5 / (0.707107 / √2) = 9; with one degree of freedom (Cauchy)
    // p = 1 − 2·atan(9)/π = 0.070447.
    close(&r1, "t", 9.0);
    close(&r1, "p", 0.070_447);
    // mAP: d = (4, 3.5), t = 15, p = 1 − 2·atan(15)/π = 0.042379 < 0.05: marked.
    let map = statistics_row(&dir, "masked_50%", "mAP");
    close(&map, "t", 15.0);
    close(&map, "p", 0.042_379);
    let results = std::fs::read_to_string(dir.join("results.md")).unwrap();
    assert!(results.contains("<u>16.75</u> ± 1.06 (+3.75*)"), "{results}");
    assert!(results.contains("<u>15.50</u> ± 0.71 (+4.50) |"), "{results}");
    // One seed of `scored` (seed 2 failed), shared with `plain` (seed 1), whose folders
    // keep their evaluation's 40 queries: no interval, a bootstrap over the queries. On mAP
    // every query gains the same (21.25 − 12), so no resample is as far from the observed
    // difference as 0 is: p = 1 / 5001, the least it gives.
    let scored = statistics_row(&dir, "scored", "mAP");
    assert_eq!(
        ["n", "std", "ci95_low", "test", "test_pairs", "t"].map(|c| scored[c].as_str()),
        ["1", "", "", "bootstrap", "40", ""]
    );
    close(&scored, "delta", 21.25 - 13.0);
    close(&scored, "p", 1.0 / 5001.0);
    assert!(results.contains("**21.25** (+8.25*)"), "{results}");
    // On R@1, 4 of 40 queries gain 100: the resampled mean is 100·k/40 for k ~ Bin(40, 0.1)
    // draws of them; |mean − 10| ≥ 10 for k = 0 or k ≥ 8, p ≈ 0.015 + 0.04 (binomial tails).
    let r1 = statistics_row(&dir, "scored", "R1");
    let p: f64 = r1["p"].parse().unwrap();
    assert!((0.03..0.09).contains(&p), "{r1:?}");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("paired t-test") && readme.contains("t(0.975; n − 1)"),
        "{readme}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The fixture store as experiment `name`, its variants labelled by `labels`.
fn named_store(name: &str, labels: &[(&str, &str)]) -> PathBuf {
    let dir = store(name);
    let index = dir.join("experiment.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    json["name"] = name.into();
    json["presentation"]["labels"] = labels
        .iter()
        .map(|(v, l)| (v.to_string(), serde_json::Value::from(*l)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    json["presentation"]["columns"] = serde_json::json!({"masking.noise_mask": "SDM noise mask"});
    std::fs::write(&index, json.to_string()).unwrap();
    dir
}

#[test]
fn a_report_over_experiments_puts_their_datasets_side_by_side() {
    let a = named_store("cmp-a", &[("masked_50%", "GA-DMS$^\\dagger$")]);
    let b = named_store("cmp-b", &[("masked_50%", "GA-DMS$^\\dagger$")]);
    let out = cli::scratch("report-cmp-out");
    let (status, text) = cli::gadms_run([Path::new("report"), &a, &b, Path::new("--out"), &out]);
    assert!(status.status.success(), "{text}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0], "|  | **cmp-a: toy** |  |  |  |  | **cmp-b: toy** |  |  |  |  |",
        "{md}"
    );
    assert_eq!(
        lines[2],
        format!("| Method |{}", " R@1 | R@5 | R@10 | mAP | mINP |".repeat(2))
    );
    // Rows matched by label across the experiments; best bold, second underlined.
    let row = |key: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("| {key} |")))
            .unwrap()
    };
    assert_eq!(
        row("GA-DMS$^\\dagger$")
            .matches("<u>15.50</u> ± 0.71 (+4.50)")
            .count(),
        2,
        "{md}"
    );
    assert_eq!(row("scored").matches("**20.00** (+9.00)").count(), 2, "{md}");
    assert_eq!(lines.len(), 3 + 4, "one row per variant: {md}");

    let tex = std::fs::read_to_string(out.join("results.tex")).unwrap();
    assert!(tex.contains("\\begin{table*}[t]"), "{tex}");
    assert!(
        tex.contains("\\multicolumn{5}{c}{cmp-a: toy} & \\multicolumn{5}{c}{cmp-b: toy} \\\\"),
        "{tex}"
    );
    assert!(tex.contains("\\cmidrule(lr){2-6} \\cmidrule(lr){7-11}"), "{tex}");
    assert!(
        tex.contains("GA-DMS$^\\dagger$ & $\\underline{15.50}_{\\pm 0.71}$"),
        "{tex}"
    );
    assert!(tex.contains("scored & $\\mathbf{20.00}$"), "{tex}");
    let ablation = std::fs::read_to_string(out.join("ablation.md")).unwrap();
    assert!(
        ablation.starts_with("| Method | losses: mtp weight | SDM noise mask | masking: plugin |"),
        "{ablation}"
    );
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        readme.contains("# cmp-a · cmp-b") && readme.contains("README.md)"),
        "{readme}"
    );
    compile_latex(&out, &["results.tex", "ablation.tex"]);

    // The baseline must be a row.
    let (status, text) = cli::gadms_run([
        Path::new("report"),
        &a,
        &b,
        Path::new("--out"),
        &out,
        Path::new("--baseline"),
        Path::new("nope"),
    ]);
    assert!(
        !status.status.success() && text.contains("baseline `nope`") && text.contains("`scored`"),
        "{text}"
    );
    for dir in [a, b, out] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Compiles `tables` in a minimal article with pdflatex, when Debian's TeX (texlive) is
/// installed (`make test` installs it where apt-get can); says so and checks nothing more
/// where it is not.
fn compile_latex(dir: &Path, tables: &[&str]) {
    if std::process::Command::new("pdflatex")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("pdflatex not found (apt-get install texlive-latex-recommended): the LaTeX tables were checked for structure only");
        return;
    }
    let inputs: String = tables.iter().map(|t| format!("\\input{{{t}}}\n")).collect();
    let document = format!(
        "\\documentclass[twocolumn]{{article}}\n\\usepackage{{booktabs,amssymb,graphicx}}\n\\begin{{document}}\n{inputs}\\end{{document}}\n"
    );
    std::fs::write(dir.join("paper.tex"), document).unwrap();
    let out = std::process::Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "paper.tex"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success() && dir.join("paper.pdf").exists(),
        "pdflatex failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
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
