//! The runner end to end, driving the real binary on a tiny synthetic spec: training and
//! evaluation write a run folder; finished runs are skipped, unless the code of a plugin
//! they use changed; a failing variant (a plugin option the model cannot satisfy, a
//! diverging loss) is recorded and the others go on.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/tensorboard.rs"]
mod tensorboard;

const SPEC: &str = r#"
[experiment]
name = "tiny"
seeds = [3]
output = "out"

[base.model]
preset = "tiny"
vision_layers = 1
text_layers = 2

[base.data]
train = { plugin = "synthetic-persons", train_ids = 6, images_per_id = 2, test_ids = 4, val_ids = 2 }
eval = [
  { plugin = "synthetic-persons", name = "synth", split = "test", train_ids = 6, images_per_id = 2, test_ids = 4, val_ids = 2 },
  { plugin = "synthetic-persons", name = "synth-val", split = "val", train_ids = 6, images_per_id = 2, test_ids = 4, val_ids = 2 },
]

[base.train]
epochs = 2
warmup_epochs = 1
batch_size = 8
lr = 1e-4
device = "cpu"
log_every = 2

[base.masking]
plugin = "gadms"
layers = 2

[base.losses]
sdm = {}
mtp = { weight = 0.3, depth = 1 }

[[variant]]
name = "ga-dms"

[[variant]]
name = "tail-too-long"
masking = { layers = 3 }

[[variant]]
name = "diverges"
train = { lr = 1e30 }

[[variant]]
name = "template-plugin"
masking = { plugin = "every-nth", n = 2 }
"#;

fn setup(name: &str) -> PathBuf {
    let dir = cli::scratch(&format!("runs-{name}"));
    std::fs::write(dir.join("spec.toml"), SPEC).unwrap();
    dir
}

fn run(dir: &Path, extra: &[&str]) -> (Output, String) {
    run_spec(&dir.join("spec.toml"), extra)
}

fn run_spec(spec: &Path, extra: &[&str]) -> (Output, String) {
    cli::gadms_run(
        [OsStr::new("run"), spec.as_os_str()]
            .into_iter()
            .chain(extra.iter().map(OsStr::new)),
    )
}

fn status(dir: &Path, variant: &str) -> serde_json::Value {
    let path = dir.join("out/tiny/runs").join(variant).join("seed-3/status.json");
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[test]
fn runs_are_isolated_recorded_and_skipped_when_done() {
    let dir = setup("isolation");
    let (out, text) = run(&dir, &[]);
    assert!(
        !out.status.success(),
        "a failed run makes the command fail:\n{text}"
    );

    assert_eq!(status(&dir, "ga-dms")["state"], "done", "{text}");
    let metrics = std::fs::read_to_string(dir.join("out/tiny/runs/ga-dms/seed-3/metrics.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let evals: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "eval" && r["dataset"] == "synth")
        .collect();
    assert_eq!(
        evals
            .iter()
            .map(|r| r["epoch"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(evals.iter().all(|r| r["mAP"].as_f64().unwrap() > 0.0));
    // The best checkpoint is chosen on the validation split, never on the test split.
    let best: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/tiny/runs/ga-dms/seed-3/best/best.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(best["dataset"], "synth-val", "{best}");
    let val_r1: Vec<f64> = records
        .iter()
        .filter(|r| r["kind"] == "eval" && r["dataset"] == "synth-val" && r["epoch"] != 0)
        .map(|r| r["R1"].as_f64().unwrap())
        .collect();
    assert_eq!(
        best["r1"].as_f64().unwrap(),
        val_r1.iter().cloned().fold(f64::MIN, f64::max),
        "{best}"
    );
    // The synthetic captions carry labelled noise: each epoch reports how well the scores find it.
    let auroc: Vec<f64> = records
        .iter()
        .filter(|r| r["kind"] == "noise")
        .map(|r| r["auroc"].as_f64().unwrap())
        .collect();
    assert!(
        auroc.len() == 2 && auroc.iter().all(|a| (0.0..=1.0).contains(a)),
        "{auroc:?}"
    );
    let train: Vec<_> = records.iter().filter(|r| r["kind"] == "train").collect();
    assert!(
        !train.is_empty()
            && train
                .iter()
                .all(|r| r["loss/mtp"].as_f64().is_some() && r["samples_per_s"].as_f64().unwrap() > 0.0)
    );

    let tail = status(&dir, "tail-too-long");
    assert_eq!(tail["state"], "failed");
    assert!(
        tail["error"]
            .as_str()
            .unwrap()
            .contains("re-runs the last 3 text blocks but the model has only 2"),
        "{tail}"
    );
    let diverged = status(&dir, "diverges");
    assert_eq!(diverged["state"], "failed");
    let error = diverged["error"].as_str().unwrap();
    assert!(
        error.contains("epoch 1, step")
            && error.contains("loss `loss")
            && (error.contains("NaN") || error.contains("inf")),
        "{error}"
    );
    assert_eq!(
        status(&dir, "template-plugin")["state"],
        "done",
        "the template plugin works by name: {text}"
    );
    assert!(text.contains("4 run(s), 2 failed"), "{text}");
    // The report follows the runs, failed runs listed with their error.
    let readme = std::fs::read_to_string(dir.join("out/tiny/README.md")).unwrap();
    assert!(
        readme.contains("| diverges | 3 |") && readme.contains("| failed | epoch 1, step"),
        "{readme}"
    );
    let samples: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/tiny/runs/ga-dms/seed-3/token-scores.json")).unwrap(),
    )
    .unwrap();
    let captions = samples["captions"].as_array().unwrap();
    assert!(
        !captions.is_empty()
            && captions.iter().all(|c| {
                let n = c["tokens"].as_array().unwrap().len();
                n > 0
                    && ["scores", "noise_masked", "mtp_masked", "true_noise"]
                        .iter()
                        .all(|k| c[k].as_array().unwrap().len() == n)
            }),
        "{samples}"
    );

    // A CPU run repeats exactly from its seed: forcing it again gives the same losses.
    let losses = |m: &str| -> Vec<String> {
        m.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["kind"] == "train" || r["kind"] == "eval")
            .map(|r| format!("{} {} {} {}", r["epoch"], r["step"], r["loss"], r["mAP"]))
            .collect()
    };
    let (_, text) = run(&dir, &["--only", "ga-dms", "--force"]);
    let again = std::fs::read_to_string(dir.join("out/tiny/runs/ga-dms/seed-3/metrics.jsonl")).unwrap();
    let kept: Vec<_> = std::fs::read_dir(dir.join("out/tiny/runs/ga-dms/seed-3/history"))
        .unwrap()
        .map(|e| e.unwrap().path().join("metrics.jsonl"))
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the forced run ran afresh, keeping the first: {text}"
    );
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), metrics);
    assert_eq!(losses(&metrics), losses(&again), "{text}");

    // Again: the finished run is skipped, the failed ones are reported without rerunning.
    let (_, text) = run(&dir, &[]);
    assert!(
        text.contains("finished before; skipped") && text.contains("failed before, skipped"),
        "{text}"
    );
    // `--rerun-failed` runs a failed run again (and it fails again); `--only` limits the runs.
    let (_, text) = run(&dir, &["--only", "diverges", "--rerun-failed"]);
    assert!(
        text.contains("1 run(s), 1 failed") && !text.contains("skipped"),
        "{text}"
    );
    // A changed configuration is a new run, whatever the old status said.
    let (out, text) = run(&dir, &["--only", "tail-too-long", "--set", "masking.layers=2"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(status(&dir, "tail-too-long")["state"], "done");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dry_run_prints_the_matrix_with_hashes() {
    let dir = setup("dry");
    let (out, text) = run(&dir, &["--dry-run"]);
    assert!(out.status.success(), "{text}");
    for variant in ["ga-dms", "tail-too-long", "diverges", "template-plugin"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(variant))
            .unwrap_or_else(|| panic!("{text}"));
        let hash = line
            .split_whitespace()
            .find(|w| w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(hash.is_some() && line.ends_with("run"), "{line}");
    }
    assert!(!dir.join("out").exists(), "a dry run writes nothing");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A scratch folder with the `ga-dms` variant alone, trained 4 epochs on more data: the run
/// of the resume tests.
fn resume_setup(name: &str) -> PathBuf {
    let spec = SPEC
        .replace("epochs = 2", "epochs = 4")
        .replace(
            "train_ids = 6, images_per_id = 2",
            "train_ids = 12, images_per_id = 4",
        )
        .split("[[variant]]")
        .next()
        .unwrap()
        .to_string()
        + "[[variant]]\nname = \"ga-dms\"\n";
    let dir = setup(name);
    std::fs::write(dir.join("spec.toml"), spec).unwrap();
    dir
}

/// The logged losses, evaluations and noise AUROCs of the `ga-dms` run in `dir`.
fn record(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("out/tiny/runs/ga-dms/seed-3/metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] != "noise" || r["auroc"].is_number())
        .map(|r| {
            format!(
                "{} {} {} {} {} {}",
                r["kind"], r["epoch"], r["step"], r["loss"], r["mAP"], r["auroc"]
            )
        })
        .collect()
}

/// A scalar tag's points: steps, with the values where they are reproducible.
type Curve = (String, Vec<(i64, Option<f64>)>);

/// The curves TensorBoard shows of the `ga-dms` run in `dir`: every tag's steps, with the
/// values of the losses, evaluations and noise AUROCs (timings differ from run to run).
fn curves(dir: &Path) -> Vec<Curve> {
    let run = dir.join("out/tiny/runs/ga-dms/seed-3");
    tensorboard::scalars(&run)
        .into_iter()
        .map(|(tag, points)| {
            let measured = ["train/loss", "eval/", "noise/"]
                .iter()
                .any(|p| tag.starts_with(p));
            let points = points
                .into_iter()
                .map(|(step, v)| (step, measured.then_some(v)))
                .collect();
            (tag, points)
        })
        .collect()
}

#[test]
fn an_interrupted_run_resumes_from_its_checkpoint_with_the_same_losses() {
    let whole = resume_setup("resume-whole");
    let (out, text) = run(&whole, &[]);
    assert!(out.status.success(), "{text}");

    let cut = resume_setup("resume-cut");
    let mut child = cli::command()
        .arg("run")
        .arg(cut.join("spec.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let position = cut.join("out/tiny/runs/ga-dms/seed-3/checkpoint/position.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !std::fs::read_to_string(&position).is_ok_and(|p| p.contains("\"epoch\": 1")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after epoch 1"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL, mid-way through epoch 2
    child.wait().unwrap();
    assert_eq!(
        status(&cut, "ga-dms")["state"],
        "running",
        "killed, so still marked running"
    );

    let (_, text) = run(&cut, &["--dry-run"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ga-dms") && l.ends_with("resume")),
        "{text}"
    );
    let (out, text) = run(&cut, &[]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("resumed after epoch"), "{text}");
    assert_eq!(
        record(&whole),
        record(&cut),
        "the resumed run logs exactly what the uninterrupted one did"
    );
    let events = std::fs::read_dir(cut.join("out/tiny/runs/ga-dms/seed-3"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tfevents")
        })
        .count();
    assert_eq!(events, 2, "each session writes its own event file");
    let seen = curves(&cut);
    assert!(seen.iter().any(|(tag, _)| tag == "noise/auroc"), "{seen:?}");
    assert_eq!(
        curves(&whole),
        seen,
        "TensorBoard shows the resumed run as the uninterrupted one: the interrupted session's \
         events past the checkpoint are dropped"
    );
    std::fs::remove_dir_all(whole).unwrap();
    std::fs::remove_dir_all(cut).unwrap();
}

#[test]
fn a_run_killed_inside_the_checkpoint_switch_resumes_with_the_same_losses() {
    use std::os::unix::process::ExitStatusExt;
    let whole = resume_setup("switch-whole");
    let (out, text) = run(&whole, &[]);
    assert!(out.status.success(), "{text}");
    let run_dir = |dir: &Path| dir.join("out/tiny/runs/ga-dms/seed-3");
    let best = |dir: &Path| std::fs::read_to_string(run_dir(dir).join("best/best.json")).unwrap();
    // Killed at epoch 2 with its checkpoint folder complete and the link not yet switched,
    // and then with the link switched and the folder of epoch 1 not yet removed: the
    // checkpoint found is that of epoch 1, then that of epoch 2.
    for (point, found) in [("checkpoint-switch", 1), ("checkpoint-cleanup", 2)] {
        let cut = resume_setup(point);
        let out = cli::command()
            .arg("run")
            .arg(cut.join("spec.toml"))
            .env("GADMS_FAULT", format!("{point}:2"))
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), Some(6), "no abort at {point}: {out:?}");
        assert_eq!(status(&cut, "ga-dms")["state"], "running", "{point}");
        let checkpoint = run_dir(&cut).join("checkpoint");
        for file in ["model.safetensors", "optimizer.safetensors", "scores.safetensors"] {
            assert!(checkpoint.join(file).is_file(), "{point}: no {file}");
        }
        let position: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(checkpoint.join("position.json")).unwrap())
                .unwrap();
        assert_eq!(position["epoch"], found, "{point}");

        let (out, text) = run(&cut, &[]);
        assert!(out.status.success(), "{point}: {text}");
        assert!(
            text.contains(&format!("resumed after epoch {found}")),
            "{point}: {text}"
        );
        assert_eq!(
            record(&whole),
            record(&cut),
            "{point}: the resumed run logs exactly what the uninterrupted one did"
        );
        assert_eq!(best(&whole), best(&cut), "{point}");
        let mut left: Vec<String> = std::fs::read_dir(run_dir(&cut))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("checkpoint"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["checkpoint", "checkpoint.e4"],
            "{point}: leftovers removed"
        );
        std::fs::remove_dir_all(cut).unwrap();
    }
    std::fs::remove_dir_all(whole).unwrap();
}

#[test]
fn a_finished_run_is_redone_when_a_plugin_library_it_uses_changes() {
    // A copy of the binary with copies of the plugin libraries beside it: the only plugins
    // it finds are these, which the test can change.
    let dir = setup("plugin-code");
    let spec = SPEC
        .replace("epochs = 2\nwarmup_epochs = 1", "epochs = 1\nwarmup_epochs = 0")
        .split("[[variant]]")
        .next()
        .unwrap()
        .to_string()
        + "[[variant]]\nname = \"ga-dms\"\n";
    std::fs::write(dir.join("spec.toml"), spec).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let built = Path::new(env!("CARGO_BIN_EXE_gadms-run")).parent().unwrap();
    let lib = |name: &str| format!("lib{name}{}", std::env::consts::DLL_SUFFIX);
    let exe = bin.join("gadms-run");
    std::fs::copy(built.join("gadms-run"), &exe).unwrap();
    for name in [
        "gadms_synthetic_persons",
        "gadms_masking",
        "gadms_losses",
        "gadms_template_masking",
    ] {
        std::fs::copy(built.join(lib(name)), bin.join(lib(name))).unwrap();
    }
    let run = |extra: &[&str]| {
        let mut c = std::process::Command::new(&exe);
        c.env("GADMS_PLUGIN_PATH", "")
            .arg("run")
            .arg(dir.join("spec.toml"))
            .args(extra);
        let (out, text) = cli::output(c);
        assert!(out.status.success(), "{text}");
        text
    };
    let planned = |text: &str| -> String {
        let line = text.lines().find(|l| l.starts_with("ga-dms"));
        line.unwrap_or_else(|| panic!("{text}")).to_string()
    };
    let append = |name: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(bin.join(lib(name)))
            .unwrap();
        std::io::Write::write_all(&mut f, b"rebuilt").unwrap();
    };

    run(&[]);
    let first = status(&dir, "ga-dms");
    assert_eq!(first["state"], "done");
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/tiny/runs/ga-dms/seed-3/plugins.json")).unwrap(),
    )
    .unwrap();
    let masking = recorded
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "masking")
        .unwrap_or_else(|| panic!("{recorded}"));
    let digest = |name: &str| gadms::digest::sha256_hex(&std::fs::read(bin.join(lib(name))).unwrap());
    assert!(
        masking["name"] == "gadms" && masking["sha256"] == digest("gadms_masking"),
        "{recorded}"
    );
    assert_eq!(
        recorded.as_array().unwrap().len(),
        4,
        "synthetic-persons, gadms, sdm, mtp: {recorded}"
    );

    // Nothing changed, or only a library the run does not use: the run is skipped.
    append("gadms_template_masking");
    assert!(planned(&run(&["--dry-run"])).ends_with("skip (done)"));
    assert!(run(&[]).contains("finished before; skipped"));

    append("gadms_masking");
    let line = planned(&run(&["--dry-run"]));
    assert!(line.ends_with("run (changed: plugin code)"), "{line}");
    let text = run(&[]);
    assert!(
        text.contains("[ga-dms seed 3] changed since the stored run (plugin code); running it again"),
        "{text}"
    );
    let second = status(&dir, "ga-dms");
    assert!(
        second["state"] == "done"
            && second["hash"] != first["hash"]
            && second["parts"]["config"] == first["parts"]["config"]
            && second["parts"]["plugin code"] != first["parts"]["plugin code"]
            && line.contains(second["hash"].as_str().unwrap()),
        "{first} {second}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The paper-scale specs, without their data and weights, stop before anything trains and
/// say what is missing; given stand-ins in the layout they expect (annotation files, and
/// weights with every parameter of their ViT-B/16 in its shape), they validate, which checks
/// every plugin option and the weights' names and shapes.
#[test]
fn the_paper_scale_specs_stop_without_data_and_validate_with_stand_ins() {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    let specs = [
        "ablation-masking.toml",
        "pretrain-webperson.toml",
        "pretrain-webperson-paper.toml",
        "finetune-cuhk-pedes.toml",
        "finetune-icfg-pedes.toml",
        "finetune-rstpreid.toml",
    ];
    for spec in &specs {
        let (out, text) = run_spec(&experiments.join(spec), &["--set", "train.device=\"cpu\""]);
        assert!(!out.status.success(), "{spec}: {text}");
        let says_what_is_missing = ["no such file", "missing annotation", "root is not a folder"];
        assert!(
            says_what_is_missing.iter().any(|m| text.contains(m)),
            "{spec}: {text}"
        );
        assert!(!text.contains("epoch 1"), "{spec}: nothing trained: {text}");
    }

    let dir = cli::scratch("paper-stand-ins");
    std::fs::create_dir_all(dir.join("experiments")).unwrap();
    for spec in &specs {
        std::fs::copy(experiments.join(spec), dir.join("experiments").join(spec)).unwrap();
    }
    for (annotations, images) in [
        ("data/WebPerson/annotations.json", "data/WebPerson/images"),
        ("data/CUHK-PEDES/reid_raw.json", "data/CUHK-PEDES/imgs"),
        ("data/ICFG-PEDES/ICFG-PEDES.json", "data/ICFG-PEDES/imgs"),
        ("data/RSTPReid/data_captions.json", "data/RSTPReid/imgs"),
    ] {
        std::fs::create_dir_all(dir.join(images)).unwrap();
        std::fs::write(dir.join(annotations), "[]").unwrap();
    }
    let stand_in = |spec: &Path| {
        let model = gadms::spec::Spec::load(spec, &[]).unwrap().runs[0]
            .config
            .model
            .resolve()
            .unwrap();
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        gadms::model::Clip::new(&vs.root(), &model);
        let file = dir.join("weights/clip-vit-b16.safetensors");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        vs.save(&file).unwrap();
    };
    stand_in(&dir.join("experiments/pretrain-webperson.toml"));
    // The global batch each recipe names, how one process and 8 GPUs cut it, and the
    // precision the step runs in.
    let batches = [
        (
            "ablation-masking.toml",
            "batch 1024 per step in forwards of at most 128: on 1 process 8 micro-batches",
        ),
        (
            "pretrain-webperson.toml",
            "batch 1024 per step in forwards of at most 128: on 1 process 8 micro-batches",
        ),
        (
            "pretrain-webperson-paper.toml",
            "batch 512 per step in forwards of at most 128",
        ),
        (
            "finetune-cuhk-pedes.toml",
            "batch 64 per step, shared evenly by the ranks",
        ),
        (
            "finetune-icfg-pedes.toml",
            "batch 64 per step, shared evenly by the ranks",
        ),
        (
            "finetune-rstpreid.toml",
            "batch 64 per step, shared evenly by the ranks, one forward each; precision auto: bf16 \
             autocast on CUDA, fp32 on the CPU",
        ),
    ];
    for (spec, batch) in batches {
        let path = dir.join("experiments").join(spec);
        let (out, text) = cli::gadms_run([OsStr::new("validate"), path.as_os_str()]);
        assert!(out.status.success(), "{spec}: {text}");
        assert!(text.contains(batch), "{spec} should say `{batch}`: {text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The demo's specs validate as they are: the ablation's `model.init` names the tiny CLIP's
/// run, which `validate` explains (not trained yet, or checked against the model once it is)
/// instead of failing on a checkpoint that does not exist yet.
#[test]
fn the_quickstart_specs_validate() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/quickstart");
    for spec in [
        "pretrain-clip.toml",
        "noise-effect.toml",
        "demo.toml",
        "ablation-masking.toml",
    ] {
        let (out, text) = cli::gadms_run([OsStr::new("validate"), quickstart.join(spec).as_os_str()]);
        assert!(out.status.success(), "{spec}: {text}");
    }
}

#[test]
fn devices_run_one_process_per_device_and_collect_the_outcomes() {
    let dir = setup("devices");
    let (out, text) = run(
        &dir,
        &[
            "--devices",
            "cpu,cpu",
            "--only",
            "ga-dms",
            "--only",
            "template-plugin",
            "--only",
            "tail-too-long",
        ],
    );
    assert!(!out.status.success(), "one run fails: {text}");
    assert!(text.contains("3 run(s), 1 failed"), "{text}");
    assert_eq!(status(&dir, "ga-dms")["state"], "done");
    assert_eq!(status(&dir, "template-plugin")["state"], "done");
    let failed = status(&dir, "tail-too-long");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("re-runs the last 3 text blocks"),
        "{failed}"
    );
    // The device is not part of a run's identity: a plain run afterwards skips them.
    let (_, text) = run(&dir, &["--only", "ga-dms"]);
    assert!(text.contains("finished before; skipped"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every record of the metrics log in run folder `run`, in order.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    let path = run.join("metrics.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The losses `train` records of `variant`'s run logged, in order.
fn train_losses(dir: &Path, variant: &str) -> Vec<f64> {
    metrics(&dir.join("out/tiny/runs").join(variant).join("seed-3"))
        .into_iter()
        .filter(|r| r["kind"] == "train")
        .map(|r| r["loss"].as_f64().unwrap())
        .collect()
}

/// The `run` arguments that train one epoch of the `ga-dms` variant, without warm-up.
const ONE_GA_DMS_EPOCH: [&str; 6] = [
    "--only",
    "ga-dms",
    "--set",
    "train.epochs=1",
    "--set",
    "train.warmup_epochs=0",
];

/// `train.precision = "bf16"` changes the numbers a run computes (a CPU run otherwise repeats
/// exactly from its seed), and only by bf16's rounding.
#[test]
fn a_run_trains_under_bf16_autocast() {
    let dir = setup("bf16");
    let one_epoch = ONE_GA_DMS_EPOCH;
    let (out, text) = run(&dir, &one_epoch);
    assert!(out.status.success(), "{text}");
    let fp32 = train_losses(&dir, "ga-dms");
    let bf16_run: Vec<&str> = one_epoch
        .into_iter()
        .chain(["--set", "train.precision=\"bf16\""])
        .collect();
    let (out, text) = run(&dir, &bf16_run);
    assert!(out.status.success(), "{text}");
    let bf16 = train_losses(&dir, "ga-dms");
    assert!(
        !fp32.is_empty() && fp32.len() == bf16.len() && bf16.iter().all(|l| l.is_finite()),
        "fp32 {fp32:?}, bf16 {bf16:?}"
    );
    // The first logged loss: bf16's rounding has had the fewest steps to compound.
    let relative = (bf16[0] - fp32[0]).abs() / fp32[0].abs();
    assert!(
        (1e-6..5e-2).contains(&relative),
        "bf16 {bf16:?} vs fp32 {fp32:?}: the first losses differ by {relative}, expected bf16 rounding"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `losses.mtp.vocabulary = "captions"` trains: the runner hands the training captions'
/// tokens to the loss (without them it refuses to train), and the first step's MTP loss,
/// from the same weights and draws, is below the full vocabulary's (a smaller normaliser).
#[test]
fn an_mtp_over_the_caption_tokens_trains_with_the_captions_tokens() {
    let dir = setup("mtp-captions");
    let first_mtp_loss = |extra: &[&str]| {
        let args: Vec<&str> = ONE_GA_DMS_EPOCH
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let (out, text) = run(&dir, &args);
        assert!(out.status.success(), "{text}");
        metrics(&dir.join("out/tiny/runs/ga-dms/seed-3"))
            .into_iter()
            .find(|r| r["kind"] == "train")
            .and_then(|r| r["loss/mtp"].as_f64())
            .unwrap_or_else(|| panic!("no MTP loss logged: {text}"))
    };
    let full = first_mtp_loss(&[]);
    let captions = first_mtp_loss(&["--set", "losses.mtp.vocabulary=\"captions\""]);
    assert!(
        captions.is_finite() && captions < full,
        "captions {captions} vs full {full}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// One epoch of the `ga-dms` variant in `dir` with the stage profile on, and `extra`
/// arguments.
fn profiled_ga_dms_epoch(dir: &Path, extra: &[&str]) -> (Output, String) {
    let mut command = cli::command();
    command
        .env("GADMS_PROFILE_STAGES", "1")
        .arg("run")
        .arg(dir.join("spec.toml"))
        .args(ONE_GA_DMS_EPOCH)
        .args(extra);
    cli::output(command)
}

/// `GADMS_PROFILE_STAGES=1` adds one `stages` record per epoch, with a positive median for
/// every stage the GA-DMS step runs, and one log line.
#[test]
fn the_stage_profile_records_every_stage_of_the_step() {
    let dir = setup("stages");
    let (out, text) = profiled_ga_dms_epoch(&dir, &[]);
    assert!(out.status.success(), "{text}");
    let records: Vec<serde_json::Value> = metrics(&dir.join("out/tiny/runs/ga-dms/seed-3"))
        .into_iter()
        .filter(|r| r["kind"] == "stages")
        .collect();
    assert_eq!(records.len(), 1, "one record per epoch: {records:?}");
    let stages = [
        "transfer",
        "image",
        "clean_caption",
        "score",
        "alignment",
        "mtp",
        "losses",
        "backward",
        "optimizer",
    ];
    for stage in stages {
        let ms = records[0][format!("{stage}_ms")].as_f64();
        assert!(ms.is_some_and(|ms| ms > 0.0), "{stage}: {}", records[0]);
    }
    let log = std::fs::read_to_string(dir.join("out/tiny/runs/ga-dms/seed-3/run.log")).unwrap();
    assert!(
        log.contains("epoch 1 stages, median ms of"),
        "no stage line: {log}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `train.micro_batch` below the batch trains over micro-batches with gradient caching: the
/// run finishes, its log says how the batch is cut, its steps per epoch stay the batch's,
/// and every stage of the step is still timed.
#[test]
fn a_run_over_micro_batches_trains_with_the_batch_s_steps() {
    let dir = setup("micro");
    let (out, text) = profiled_ga_dms_epoch(&dir, &["--set", "train.micro_batch=4"]);
    assert!(out.status.success(), "{text}");
    let run = dir.join("out/tiny/runs/ga-dms/seed-3");
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(
        log.contains("batch 8 = 1 rank × 2 micro-batches of 4 (gradient caching)"),
        "{log}"
    );
    let records = metrics(&run);
    let last_train = records.iter().rfind(|r| r["kind"] == "train").unwrap();
    let captions: u64 = log
        .split(" training captions")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no caption count in the log: {log}"));
    assert_eq!(
        last_train["step"].as_u64(),
        Some(captions.div_ceil(8)),
        "steps of the batch, not of the micro-batch: {last_train}"
    );
    assert!(
        last_train["loss/mtp"].as_f64().is_some_and(f64::is_finite),
        "{last_train}"
    );
    let stages = records.iter().find(|r| r["kind"] == "stages").unwrap();
    for stage in ["image", "score", "alignment", "mtp", "losses", "backward"] {
        let ms = stages[format!("{stage}_ms")].as_f64();
        assert!(ms.is_some_and(|ms| ms > 0.0), "{stage}: {stages}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

const ORACLE_SPEC: &str = r#"
[experiment]
name = "oracle"
seeds = [1]
output = "out"
baseline = "plain"
oracle = "perfect noise mask"

[base.model]
preset = "tiny"
vision_layers = 1
text_layers = 2

[base.data]
train = { plugin = "synthetic-persons", train_ids = 6, images_per_id = 2, test_ids = 3, val_ids = 2, noise_rate = 0.8 }
eval = [{ plugin = "synthetic-persons", name = "synth", train_ids = 6, images_per_id = 2, test_ids = 3, val_ids = 2 }]

[base.train]
epochs = 1
warmup_epochs = 0
batch_size = 8
lr = 1e-4
device = "cpu"

[base.masking]
plugin = "gadms"
scorer = "oracle"

[base.losses]
sdm = {}
mtp = { weight = 0.3, depth = 1 }

[[variant]]
name = "plain"
masking = { plugin = "none" }
losses = { mtp = { weight = 0.0 } }

[[variant]]
name = "oracle scores"

[[variant]]
name = "perfect noise mask"
masking = { noise_deterministic = true }

[[variant]]
name = "noise removed"
masking = { noise_deterministic = true, noise_drop = true }
"#;

/// The records of one run of the oracle spec's store.
fn oracle_records(dir: &Path, variant: &str) -> Vec<serde_json::Value> {
    metrics(&dir.join("out/oracle/runs").join(variant).join("seed-1"))
}

/// The sampled captions of one run's `token-scores.json` that carry labelled noise.
fn noisy_samples(dir: &Path, variant: &str) -> Vec<serde_json::Value> {
    let path = dir
        .join("out/oracle/runs")
        .join(variant)
        .join("seed-1/token-scores.json");
    let sheet: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let captions: Vec<serde_json::Value> = sheet["captions"].as_array().unwrap().clone();
    let noisy: Vec<_> = captions
        .into_iter()
        .filter(|c| c["true_noise"].as_array().unwrap().iter().any(|f| f == true))
        .collect();
    assert!(!noisy.is_empty(), "{variant}: no noisy caption was sampled");
    noisy
}

fn flags(caption: &serde_json::Value, key: &str) -> Vec<bool> {
    caption[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_bool().unwrap())
        .collect()
}

/// `scorer = "oracle"` trains from the dataset's noise labels, through the SDK: every
/// labelled noise token scores below every other token, its noise AUROCs are 1, the
/// deterministic noise cut masks (or drops, and the step then reads the shorter text's own
/// EOS) exactly the noise and the probabilistic one nothing but noise (besides the
/// at-least-one fallback on the first word). The evaluations log the
/// feature cosines, and the report shares each variant's gain out in units of the oracle's.
#[test]
fn an_oracle_masks_the_labelled_noise_and_the_report_measures_variants_against_it() {
    let dir = cli::scratch("runs-oracle");
    std::fs::write(dir.join("spec.toml"), ORACLE_SPEC).unwrap();
    let (out, text) = run(&dir, &[]);
    assert!(out.status.success(), "{text}");

    for variant in ["oracle scores", "perfect noise mask", "noise removed"] {
        for caption in noisy_samples(&dir, variant) {
            let noise = flags(&caption, "true_noise");
            let scores: Vec<f64> = caption["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_f64().unwrap())
                .collect();
            let highest_noise = noise
                .iter()
                .zip(&scores)
                .filter(|(n, _)| **n)
                .map(|(_, s)| *s)
                .fold(f64::MIN, f64::max);
            let lowest_clean = noise
                .iter()
                .zip(&scores)
                .filter(|(n, _)| !**n)
                .map(|(_, s)| *s)
                .fold(f64::MAX, f64::min);
            assert!(highest_noise < lowest_clean, "{variant}: {caption}");
            let masked = flags(&caption, "noise_masked");
            if variant != "oracle scores" {
                assert_eq!(
                    masked, noise,
                    "{variant}: the alignment text drops all noise, nothing else: {caption}"
                );
            } else {
                let stray = (1..masked.len()).any(|t| masked[t] && !noise[t]);
                assert!(!stray, "{variant}: a clean token masked: {caption}");
            }
        }
        let records = oracle_records(&dir, variant);
        let auroc = records
            .iter()
            .find(|r| r["kind"] == "noise")
            .unwrap_or_else(|| panic!("{variant}: no AUROC"));
        assert_eq!(
            (auroc["auroc"].as_f64(), auroc["auroc_content"].as_f64()),
            (Some(1.0), Some(1.0))
        );
    }
    for r in oracle_records(&dir, "plain")
        .iter()
        .filter(|r| r["kind"] == "eval")
    {
        for key in ["image_cosine", "text_cosine"] {
            let cosine = r[key].as_f64().unwrap_or_else(|| panic!("{key} missing: {r}"));
            assert!((-1.0..=1.0).contains(&cosine), "{r}");
        }
    }
    let readme = std::fs::read_to_string(dir.join("out/oracle/README.md")).unwrap();
    assert!(
        readme.contains("## Diagnostics") && readme.contains("share of the oracle's gain"),
        "{readme}"
    );
    let diagnostics = readme.split("## Diagnostics").nth(1).unwrap();
    let perfect_row = diagnostics
        .lines()
        .find(|l| l.starts_with("| perfect noise mask |"))
        .unwrap();
    assert!(perfect_row.contains("| 100 % |"), "{perfect_row}");
    assert!(dir.join("out/oracle/charts/collapse.png").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A dataset that does not label its noise (a real benchmark, here with stand-in files) is
/// refused for the oracle before anything trains, naming the dataset and the option.
#[test]
fn an_oracle_on_a_dataset_without_noise_labels_is_refused_naming_both() {
    let dir = cli::scratch("runs-oracle-unlabelled");
    std::fs::create_dir_all(dir.join("data/CUHK-PEDES/imgs")).unwrap();
    std::fs::write(dir.join("data/CUHK-PEDES/reid_raw.json"), "[]").unwrap();
    let spec = ORACLE_SPEC.replace(
        "train = { plugin = \"synthetic-persons\", train_ids = 6, images_per_id = 2, test_ids = 3, val_ids = 2, noise_rate = 0.8 }",
        "train = { plugin = \"cuhk-pedes\", root = \"data\" }",
    );
    std::fs::write(dir.join("spec.toml"), spec).unwrap();
    for command in ["validate", "run"] {
        let (out, text) = cli::gadms_run([OsStr::new(command), dir.join("spec.toml").as_os_str()]);
        assert!(!out.status.success(), "{command}: {text}");
        for needle in [
            "`cuhk-pedes`",
            "`scorer = \"oracle\"`",
            "does not label its noise",
            "oracle scores",
        ] {
            assert!(text.contains(needle), "{command}: `{needle}` missing in {text}");
        }
        assert!(!text.contains("epoch 1"), "{command}: nothing trains: {text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
