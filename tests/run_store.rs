//! The run store's promises, end to end through the real binary: a run's identity follows
//! what can change its result (its init weights, the run those come from), nothing finished
//! is destroyed (`--force` and changed runs keep the old result in the history, and a run
//! whose identity comes back takes its result up from there), a locked run is left to its
//! holder, every run records its provenance, and a CUDA run never falls back to the CPU.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/tensorboard.rs"]
mod tensorboard;
#[path = "common/tiny.rs"]
mod tiny;

/// Experiment `down`: the tiny run started from `init`, adding a fresh MTP head.
fn downstream(init: &str) -> String {
    tiny::one_run("down").replace("[base.model]", &format!("[base.model]\ninit = {init}"))
        + "\n[base.losses.mtp]\nweight = 0.3\ndepth = 1\n"
}

fn run(spec: &Path, extra: &[&str]) -> (Output, String) {
    cli::gadms_run(
        [OsStr::new("run"), spec.as_os_str()]
            .into_iter()
            .chain(extra.iter().map(OsStr::new)),
    )
}

fn run_dir(dir: &Path, experiment: &str, variant: &str) -> PathBuf {
    dir.join("out")
        .join(experiment)
        .join("runs")
        .join(variant)
        .join("seed-1")
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

/// The run's line of `run --dry-run`.
fn planned(spec: &Path, variant: &str) -> String {
    let (_, text) = run(spec, &["--dry-run"]);
    text.lines()
        .find(|l| l.starts_with(variant))
        .unwrap_or_else(|| panic!("no line for {variant}: {text}"))
        .to_string()
}

/// The TensorBoard event files directly in `folder`.
fn event_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect()
}

/// The entries of a run folder's history.
fn history(run: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(run.join("history"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_run_named_as_init_trains_first_and_its_changes_reach_the_downstream_run() {
    let dir = cli::scratch("store-upstream");
    std::fs::write(dir.join("up.toml"), tiny::one_run("up")).unwrap();
    let down = dir.join("down.toml");
    std::fs::write(
        &down,
        downstream(r#"{ spec = "up.toml", variant = "clip", seed = 1 }"#),
    )
    .unwrap();

    let (out, text) = cli::gadms_run([OsStr::new("validate"), down.as_os_str()]);
    assert!(out.status.success() && text.contains("not trained yet"), "{text}");

    let (out, text) = run(&down, &[]);
    assert!(out.status.success(), "{text}");
    let up_run = run_dir(&dir, "up", "clip");
    assert_eq!(
        read_json(&up_run.join("status.json"))["state"],
        "done",
        "the upstream trained first"
    );
    let log = std::fs::read_to_string(run_dir(&dir, "down", "clip").join("run.log")).unwrap();
    assert!(
        log.contains("fresh: losses.mtp"),
        "only the MTP head starts fresh: {log}"
    );

    let (_, text) = run(&down, &[]);
    assert!(text.contains("finished before; skipped"), "{text}");

    // Another upstream recipe: both runs are new, and the downstream one says why.
    std::fs::write(
        dir.join("up.toml"),
        tiny::one_run("up").replace("lr = 1e-4", "lr = 2e-4"),
    )
    .unwrap();
    assert!(
        planned(&down, "clip").ends_with("run (changed: model.init)"),
        "{}",
        planned(&down, "clip")
    );
    let (out, text) = run(&down, &[]);
    assert!(out.status.success(), "{text}");
    assert_eq!(history(&up_run).len(), 1, "the first upstream result is kept");
    assert_eq!(
        history(&run_dir(&dir, "down", "clip")).len(),
        1,
        "so is the first downstream one"
    );

    // The first recipe again: both first results come back from the histories, untrained.
    std::fs::write(dir.join("up.toml"), tiny::one_run("up")).unwrap();
    let (out, text) = cli::gadms_run([OsStr::new("validate"), down.as_os_str()]);
    assert!(
        out.status.success() && text.contains("takes it up instead of training it"),
        "{text}"
    );
    let (out, text) = run(&down, &[]);
    assert!(
        out.status.success() && text.matches("comes back from history/").count() == 2,
        "{text}"
    );
    assert_eq!(
        history(&up_run).len(),
        1,
        "the second upstream result took its place"
    );

    // A new model in both specs: the upstream's finished checkpoint has the old shapes, and
    // is stale; `validate` says the upstream trains first instead of refusing those shapes.
    for spec in ["up.toml", "down.toml"] {
        let text = std::fs::read_to_string(dir.join(spec)).unwrap();
        std::fs::write(
            dir.join(spec),
            text.replace("text_layers = 2", "text_layers = 2\ncontext_length = 40"),
        )
        .unwrap();
    }
    let (out, text) = cli::gadms_run([OsStr::new("validate"), down.as_os_str()]);
    assert!(
        out.status.success() && text.contains("not trained yet with its current recipe"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_changed_init_file_makes_a_new_run_and_a_partial_one_is_refused() {
    let dir = cli::scratch("store-init-file");
    let up = dir.join("up.toml");
    std::fs::write(&up, tiny::one_run("up")).unwrap();
    let (out, text) = run(&up, &[]);
    assert!(out.status.success(), "{text}");
    let weights = run_dir(&dir, "up", "clip").join("checkpoint/model.safetensors");
    let init = dir.join("init.safetensors");
    std::fs::copy(&weights, &init).unwrap();
    let down = dir.join("down.toml");
    std::fs::write(&down, downstream("\"init.safetensors\"")).unwrap();
    let (out, text) = run(&down, &[]);
    assert!(out.status.success(), "{text}");
    assert!(planned(&down, "clip").ends_with("skip (done)"));

    // The same path, other contents.
    let tensors = tch::Tensor::read_safetensors(&weights).unwrap();
    let changed: Vec<(String, tch::Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t * 0.5)).collect();
    tch::Tensor::write_safetensors(&changed, &init).unwrap();
    assert!(
        planned(&down, "clip").ends_with("run (changed: model.init)"),
        "{}",
        planned(&down, "clip")
    );

    // Weights without an encoder tensor are refused before training, naming it.
    let missing = tensors
        .iter()
        .find(|(n, _)| n.contains("visual."))
        .unwrap()
        .0
        .clone();
    let partial: Vec<(String, tch::Tensor)> = tensors.into_iter().filter(|(n, _)| *n != missing).collect();
    tch::Tensor::write_safetensors(&partial, &init).unwrap();
    let (out, text) = cli::gadms_run([OsStr::new("validate"), down.as_os_str()]);
    assert!(
        !out.status.success()
            && text.contains(missing.as_str())
            && text.contains("CLIP encoders are missing"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn forcing_a_run_keeps_the_old_result_and_records_provenance() {
    let dir = cli::scratch("store-force");
    let spec = dir.join("up.toml");
    std::fs::write(
        &spec,
        tiny::one_run("up").replace("device = \"cpu\"", "device = \"auto\""),
    )
    .unwrap();
    let (out, text) = run(&spec, &[]);
    assert!(out.status.success(), "{text}");
    let run_path = run_dir(&dir, "up", "clip");
    let first = std::fs::read_to_string(run_path.join("metrics.jsonl")).unwrap();
    let status = read_json(&run_path.join("status.json"));

    let provenance = read_json(&run_path.join("provenance.json"));
    let session = &provenance["sessions"][0];
    assert!(
        provenance["gadms"]
            .as_str()
            .unwrap()
            .starts_with(env!("CARGO_PKG_VERSION")),
        "{provenance}"
    );
    assert!(
        provenance["torch"].as_str().is_some_and(|t| !t.is_empty()),
        "{provenance}"
    );
    assert_eq!(session["command"][1], "run", "{session}");
    // `train.precision` is left at `auto`: the device's own precision, said in the record
    // and the log.
    let (precision, on) = if tch::Cuda::is_available() {
        ("bf16", "CUDA")
    } else {
        ("fp32", "the CPU")
    };
    assert_eq!(session["precision"], precision, "{session}");
    let log = std::fs::read_to_string(run_path.join("run.log")).unwrap();
    assert!(
        log.contains(&format!("precision {precision} (auto on {on})")),
        "{log}"
    );
    assert_eq!(session["outcome"], "done", "{session}");
    assert!(
        session["wall_s"].as_f64().unwrap() > 0.0 && session["ended"].is_string(),
        "{session}"
    );
    if !tch::Cuda::is_available() {
        assert_eq!(session["device"]["used"], "cpu", "{session}");
        assert!(
            session["device"]["choice"].as_str().unwrap().contains("auto"),
            "{session}"
        );
        assert!(
            text.contains("cpu (auto:"),
            "the summary says what `auto` chose: {text}"
        );
    }

    let (out, text) = run(&spec, &["--force", "--set", "train.epochs=2"]);
    assert!(out.status.success() && text.contains("kept in"), "{text}");
    let kept = history(&run_path);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].ends_with(format!(
            "{}-{}",
            status["hash"].as_str().unwrap(),
            status["updated"]
        )),
        "{kept:?}"
    );
    assert_eq!(
        std::fs::read_to_string(kept[0].join("metrics.jsonl")).unwrap(),
        first,
        "the old result is intact"
    );
    let again = std::fs::read_to_string(run_path.join("metrics.jsonl")).unwrap();
    assert!(
        again.contains("\"epoch\":2"),
        "the forced run really ran (2 epochs now): {again}"
    );
    assert_eq!(event_files(&kept[0]).len(), 1, "the old curves are kept with it");
    assert_eq!(event_files(&run_path).len(), 1, "the new run starts its own");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_run_whose_identity_comes_back_takes_its_finished_result_from_the_history() {
    let dir = cli::scratch("store-restore");
    let spec = dir.join("up.toml");
    std::fs::write(&spec, tiny::one_run("up")).unwrap();
    let (out, text) = run(&spec, &[]);
    assert!(out.status.success(), "{text}");
    let run_path = run_dir(&dir, "up", "clip");
    let first = std::fs::read_to_string(run_path.join("metrics.jsonl")).unwrap();
    let first_hash = read_json(&run_path.join("status.json"))["hash"].clone();

    // A changed setting is another run: the first result moves to the history.
    let (out, text) = run(&spec, &["--set", "train.epochs=2"]);
    assert!(
        out.status.success() && text.contains("changed since the stored run"),
        "{text}"
    );
    let second = std::fs::read_to_string(run_path.join("metrics.jsonl")).unwrap();
    assert!(second.contains("\"epoch\":2"), "{second}");

    // Set back, it is the first run again: nothing trains, its result is current again.
    assert!(
        planned(&spec, "clip").contains("skip (done; its result comes back from history/"),
        "{}",
        planned(&spec, "clip")
    );
    let (out, text) = run(&spec, &[]);
    assert!(
        out.status.success()
            && text.contains("comes back from history/")
            && text.contains("finished before; skipped"),
        "{text}"
    );
    assert_eq!(read_json(&run_path.join("status.json"))["hash"], first_hash);
    assert_eq!(
        std::fs::read_to_string(run_path.join("metrics.jsonl")).unwrap(),
        first,
        "the first result, as it was"
    );
    let kept = history(&run_path);
    assert_eq!(
        kept.len(),
        1,
        "the two-epoch run took its place in the history: {kept:?}"
    );
    assert_eq!(
        std::fs::read_to_string(kept[0].join("metrics.jsonl")).unwrap(),
        second
    );

    // `--force` trains regardless; the restored result moves to the history again.
    let (out, text) = run(&spec, &["--force"]);
    assert!(
        out.status.success() && !text.contains("comes back from"),
        "{text}"
    );
    assert_eq!(history(&run_path).len(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `(global_step, value)` of `field` in each of `records`, at the step TensorBoard gets.
fn logged(
    records: &[serde_json::Value],
    field: &str,
    step: impl Fn(&serde_json::Value) -> i64,
) -> Vec<(i64, f64)> {
    records
        .iter()
        .map(|r| {
            (
                step(r),
                r[field].as_f64().unwrap_or_else(|| panic!("{field} in {r}")),
            )
        })
        .collect()
}

#[test]
fn tensorboards_reader_sees_the_scalars_of_a_run() {
    let dir = cli::scratch("store-tensorboard");
    let spec = dir.join("tb.toml");
    std::fs::write(
        &spec,
        tiny::one_run("tb").replace("[base.train]", "[base.train]\nlog_every = 1"),
    )
    .unwrap();
    let (out, text) = run(&spec, &[]);
    assert!(out.status.success(), "{text}");
    let run_path = run_dir(&dir, "tb", "clip");
    assert_eq!(event_files(&run_path).len(), 1, "one session, one file");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run_path.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &str| -> Vec<serde_json::Value> {
        records.iter().filter(|r| r["kind"] == kind).cloned().collect()
    };
    let (train, eval) = (of("train"), of("eval"));
    assert!(train.len() > 1 && eval.len() == 2, "{records:?}");

    let seen = tensorboard::scalars(&run_path);
    let same = |tag: &str, expected: Vec<(i64, f64)>| {
        let got = tensorboard::points(&seen, tag);
        assert_eq!(got.len(), expected.len(), "{tag}: {got:?} against {expected:?}");
        for (&(s, v), (es, ev)) in got.iter().zip(&expected) {
            // TensorBoard's scalars are 32-bit floats.
            assert!(
                s == *es && (v - ev).abs() <= 1e-6 * ev.abs().max(1.0),
                "{tag}: {got:?} against {expected:?}"
            );
        }
    };
    let global_step = |r: &serde_json::Value| r["global_step"].as_i64().unwrap();
    for field in ["loss", "loss/itc", "lr", "samples_per_s"] {
        same(&format!("train/{field}"), logged(&train, field, global_step));
    }
    // Evaluations sit at the training step they follow: before training, after the epoch.
    let last_step = global_step(train.last().unwrap());
    let eval_step = |r: &serde_json::Value| if r["epoch"] == 0 { 0 } else { last_step };
    for field in ["R1", "R5", "R10", "mAP", "mINP"] {
        same(&format!("eval/synth/{field}"), logged(&eval, field, eval_step));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_run_another_process_holds_is_skipped_and_left_alone() {
    let dir = cli::scratch("store-lock");
    let spec = dir.join("up.toml");
    std::fs::write(&spec, tiny::one_run("up")).unwrap();
    let run_path = run_dir(&dir, "up", "clip");
    let held = gadms::store::RunDir::at(run_path.clone()).lock().unwrap();
    assert!(planned(&spec, "clip").contains("another gadms-run holds its lock"));
    let (_, text) = run(&spec, &[]);
    assert!(text.contains("another gadms-run is training this run"), "{text}");
    // A run that starts from the held one says so, and trains nothing.
    let down = dir.join("down.toml");
    std::fs::write(
        &down,
        downstream(r#"{ spec = "up.toml", variant = "clip", seed = 1 }"#),
    )
    .unwrap();
    let (out, text) = run(&down, &[]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("which another gadms-run is training") && text.contains("once it has finished"),
        "{text}"
    );
    assert!(
        !run_dir(&dir, "down", "clip").join("status.json").exists(),
        "{text}"
    );
    assert!(
        !run_path.join("status.json").exists(),
        "nothing was written into the held run"
    );
    drop(held);
    let (out, text) = run(&spec, &[]);
    assert!(out.status.success(), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_cuda_run_without_cuda_fails_instead_of_training_on_the_cpu() {
    if tch::Cuda::is_available() {
        return; // the refusal needs a machine without CUDA
    }
    let dir = cli::scratch("store-cuda");
    let spec = dir.join("up.toml");
    std::fs::write(
        &spec,
        tiny::one_run("up").replace("device = \"cpu\"", "device = \"cuda\""),
    )
    .unwrap();
    let (out, text) = run(&spec, &[]);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("libtorch sees no CUDA device"), "{text}");
    let status = read_json(&run_dir(&dir, "up", "clip").join("status.json"));
    assert_eq!(status["state"], "failed");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `train.keep_best = "each"` keeps each test set's own best epoch in `best-<set>/` (the
/// paper's protocol), and `checkpoint = "best:<set>"` fine-tunes from it; asked of a run
/// that did not keep it, the error says what to set.
#[test]
fn a_test_set_s_own_best_is_kept_on_request_and_starts_a_fine_tuning() {
    let dir = cli::scratch("store-best-test");
    let up = dir.join("up.toml");
    let recipe = tiny::one_run("up").replace("epochs = 1", "epochs = 2");
    std::fs::write(&up, &recipe).unwrap();
    let down = dir.join("down.toml");
    let init = r#"{ spec = "up.toml", variant = "clip", seed = 1, checkpoint = "best:synth" }"#;
    std::fs::write(&down, downstream(init)).unwrap();

    let (out, text) = run(&down, &[]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("finished without `best-synth/`") && text.contains("train.keep_best = \"each\""),
        "{text}"
    );

    std::fs::write(
        &up,
        recipe.replace("[base.train]", "[base.train]\nkeep_best = \"each\""),
    )
    .unwrap();
    let (out, text) = run(&up, &["--force"]);
    assert!(out.status.success(), "{text}");
    let up_run = run_dir(&dir, "up", "clip");
    let kept = read_json(&up_run.join("best-synth/best.json"));
    let best_epoch = std::fs::read_to_string(up_run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "eval" && r["dataset"] == "synth")
        .fold((0, f64::NEG_INFINITY), |(e, best), r| {
            let r1 = r["R1"].as_f64().unwrap();
            if r1 > best {
                (r["epoch"].as_u64().unwrap(), r1)
            } else {
                (e, best)
            }
        })
        .0;
    assert_eq!(kept["epoch"].as_u64(), Some(best_epoch), "{kept}");
    assert_eq!(kept["dataset"], "synth");

    let (out, text) = run(&down, &[]);
    assert!(out.status.success(), "{text}");
    let status = read_json(&run_dir(&dir, "down", "clip").join("status.json"));
    assert!(
        status.to_string().contains("best-synth"),
        "the identity names the checkpoint: {status}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
