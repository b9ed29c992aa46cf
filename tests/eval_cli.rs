//! `gadms-run eval` through the real binary: a run's own weights, evaluated on their own on
//! the run's evaluation sets, give the run's last evaluation, recorded like a run's; a
//! result is never overwritten implicitly.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/tiny.rs"]
mod tiny;

fn gadms_run(args: &[&OsStr]) -> (Output, String) {
    cli::gadms_run(args)
}

fn records(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The eval records of `dataset` in `metrics.jsonl`.
fn evals_of(file: &Path, dataset: &str) -> Vec<serde_json::Value> {
    records(file)
        .into_iter()
        .filter(|r| r["kind"] == "eval" && r["dataset"] == dataset)
        .collect()
}

#[test]
fn a_runs_weights_evaluated_alone_give_its_last_evaluation_and_a_result_is_not_overwritten() {
    let dir = cli::scratch("eval-cli");
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, tiny::one_run("evals")).unwrap();
    let (out, text) = gadms_run(&[OsStr::new("run"), spec.as_os_str()]);
    assert!(out.status.success(), "{text}");
    let run = dir.join("out/evals/runs/clip/seed-1");
    let trained = evals_of(&run.join("metrics.jsonl"), "synth");
    let last = trained.last().expect("the run evaluated `synth`");

    let eval = [
        OsStr::new("eval"),
        spec.as_os_str(),
        OsStr::new("--weights"),
        run.as_os_str(),
        OsStr::new("--name"),
        OsStr::new("trained"),
    ];
    let (out, text) = gadms_run(&eval);
    assert!(out.status.success(), "{text}");
    let result = dir.join("out/evals/eval/trained");
    let alone = evals_of(&result.join("metrics.jsonl"), "synth");
    assert_eq!(alone.len(), 1, "{alone:?}");
    assert_eq!(alone[0]["epoch"], 0);
    for key in ["R1", "R5", "R10", "mAP", "mINP"] {
        let (a, b) = (alone[0][key].as_f64().unwrap(), last[key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-6, "{key}: alone {a}, in the run {b}");
    }
    assert_eq!(alone[0]["queries"], last["queries"]);
    let map = format!("{:.2}", last["mAP"].as_f64().unwrap());
    let row = text
        .lines()
        .find(|l| l.starts_with("synth "))
        .unwrap_or_else(|| panic!("no table row for `synth`: {text}"));
    assert!(
        row.split_whitespace().any(|cell| cell == map),
        "mAP {map} not in `{row}`"
    );
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.join("provenance.json")).unwrap()).unwrap();
    let weights = run.join("checkpoint/model.safetensors");
    assert_eq!(facts["weights"].as_str(), weights.to_str());
    assert_eq!(
        facts["weights_digest"].as_str(),
        Some(gadms::digest::file(&weights).unwrap().as_str())
    );

    let before = std::fs::read_to_string(result.join("metrics.jsonl")).unwrap();
    let (out, text) = gadms_run(&eval);
    assert!(
        !out.status.success(),
        "a second eval named `trained` was not refused: {text}"
    );
    assert!(
        text.contains(&result.display().to_string()) && text.contains("--name"),
        "the refusal names neither the folder nor `--name`: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(result.join("metrics.jsonl")).unwrap(),
        before
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
