//! Training across processes on the CPU with Gloo, driving the real binary: the collectives
//! among 2 and 3 processes; 2 and 3 ranks training exactly as one process on the same
//! global batch (weights, per-step SDM and ID losses, one global score table); a killed rank
//! stopping the others and the run resuming from its checkpoint; an error on the ranks
//! named; a missing peer or a wrong world size failing within the timeout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use tch::Tensor;

#[path = "common/cli.rs"]
mod cli;

/// A small run: 24 captions, a global batch of 6 (2 or 3 per rank), one libtorch thread per
/// process (the ranks share the machine's cores). `gadms` masking scores every step, so the
/// score table is gathered; it only changes the masks of later epochs.
const SPEC: &str = r#"
[experiment]
name = "dist"
seeds = [5]
output = "out"

[base.model]
preset = "tiny"
vision_layers = 1
text_layers = 2

[base.data]
train = { plugin = "synthetic-persons", train_ids = 6, images_per_id = 2, test_ids = 2, val_ids = 2 }
eval = [
  { plugin = "synthetic-persons", name = "synth-val", split = "val", train_ids = 6, images_per_id = 2, test_ids = 2, val_ids = 2 },
]

[base.train]
epochs = 1
warmup_epochs = 0
batch_size = 6
lr = 1e-4
device = "cpu"
log_every = 1
threads = 1
workers = 1

[base.masking]
plugin = "gadms"
layers = 2

[base.losses]
sdm = {}
id = { weight = 0.5 }

[[variant]]
name = "v"
"#;

/// Every process a test starts ends within this, or the test fails.
const LIMIT: Duration = Duration::from_secs(90);

fn setup(name: &str) -> PathBuf {
    let dir = cli::scratch(&format!("dist-{name}"));
    std::fs::write(dir.join("spec.toml"), SPEC).unwrap();
    dir
}

fn run_dir(dir: &Path) -> PathBuf {
    dir.join("out/dist/runs/v/seed-5")
}

/// Waits for `child`, killing it and failing the test after [`LIMIT`].
fn finish(mut child: Child, what: &str) -> (Output, String) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("{what} did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// `gadms-run ARGS` in `dir`, to its end.
fn gadms(dir: &Path, args: &[&str]) -> (Output, String) {
    let child = cli::command()
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, &format!("gadms-run {}", args.join(" ")))
}

/// Rank `rank` of `world` started by hand, torchrun style, meeting in `store`, giving up on
/// its peers after `timeout` seconds.
fn rank(dir: &Path, store: &Path, rank: usize, world: usize, timeout: u64, args: &[&str]) -> Child {
    cli::command()
        .current_dir(dir)
        .args(args)
        .env("WORLD_SIZE", world.to_string())
        .env("RANK", rank.to_string())
        .env("LOCAL_WORLD_SIZE", world.to_string())
        .env("GADMS_STORE", store)
        .env("GADMS_DIST_TIMEOUT", timeout.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn tensors(file: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .into_iter()
        .collect()
}

fn train_records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir(dir).join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "train")
        .collect()
}

fn status(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir(dir).join("status.json")).unwrap()).unwrap()
}

#[test]
fn collectives_give_every_rank_the_expected_values() {
    for world in [2, 3] {
        let dir = cli::scratch(&format!("dist-selftest-{world}"));
        let store = dir.join("store");
        let ranks: Vec<Child> = (0..world)
            .map(|r| rank(&dir, &store, r, world, 30, &["dist-selftest"]))
            .collect();
        for (r, child) in ranks.into_iter().enumerate() {
            let (out, text) = finish(child, &format!("rank {r} of {world}"));
            assert!(out.status.success(), "rank {r} of {world}:\n{text}");
            for check in [
                "all-reduce sum",
                "all-reduce mean",
                "all-gather",
                "all-gather of uneven rows",
                "broadcast",
                "gather with gradient (values)",
                "gather with gradient (gradient)",
                "barrier",
            ] {
                assert!(
                    text.contains(&format!("rank {r} of {world}: {check} ok")),
                    "rank {r} of {world} lacks `{check}`:\n{text}"
                );
            }
        }
    }
}

/// Parameters after one epoch (4 steps) and every step's losses: 2 and 3 ranks against one
/// process on the same global batch. SDM over the gathered features equals SDM on the
/// concatenated batch, so `loss/sdm` agrees step by step.
#[test]
fn ranks_train_as_one_process_on_the_global_batch() {
    let one = setup("one");
    let (out, text) = gadms(&one, &["run", "spec.toml"]);
    assert!(out.status.success(), "one process:\n{text}");
    let weights = tensors(&run_dir(&one).join("checkpoint/model.safetensors"));
    let losses = train_records(&one);
    assert_eq!(losses.len(), 4, "24 captions in global batches of 6");

    // (ranks, `train.micro_batch`): SDM and ID compare the whole global batch, so gradient
    // caching over micro-batches, alone or across ranks, computes the same step too.
    for (world, micro) in [(2, 0), (3, 0), (1, 2), (2, 1)] {
        let dir = setup(&format!("ranks-{world}-micro-{micro}"));
        let (ranks, micro_batch) = (world.to_string(), format!("train.micro_batch={micro}"));
        let (out, text) = gadms(
            &dir,
            &[
                "run",
                "spec.toml",
                "--nproc-per-node",
                &ranks,
                "--set",
                &micro_batch,
            ],
        );
        let case = format!("{world} ranks, micro-batches of {micro}");
        assert!(out.status.success(), "{case}:\n{text}");
        assert_eq!(status(&dir)["state"], "done", "{text}");

        let theirs = tensors(&run_dir(&dir).join("checkpoint/model.safetensors"));
        assert_eq!(theirs.len(), weights.len());
        for (name, w) in &weights {
            let diff = (w - &theirs[name]).abs().max().double_value(&[]);
            assert!(
                diff < 1e-5,
                "`{name}` after one epoch: {case} differs from one process by {diff}"
            );
        }

        let records = train_records(&dir);
        assert_eq!(records.len(), losses.len(), "rank 0 alone logs, once per step");
        for (a, b) in losses.iter().zip(&records) {
            for key in ["loss/sdm", "loss/id", "loss"] {
                let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                    "step {}: `{key}` is {x} in one process, {y} with {case}",
                    a["step"]
                );
            }
        }

        // One global table: every sample was scored on some rank and reached rank 0's table.
        let table = &tensors(&run_dir(&dir).join("checkpoint/scores.safetensors"))["scores"];
        let initial = table.ones_like() * 0.85;
        let untouched = (table - initial)
            .abs()
            .sum_dim_intlist(1, false, tch::Kind::Float)
            .eq(0.0);
        assert_eq!(
            untouched.sum(tch::Kind::Int64).int64_value(&[]),
            0,
            "{case}: rows still at the initial score"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("out/dist"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("rendezvous"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "the launcher removes its store folder: {leftovers:?}"
        );
    }
}

/// Rank 1 killed after the first checkpoint: rank 0 stops within the timeout naming the lost
/// peer and leaves the run `running`; the same command then resumes it.
#[test]
fn a_killed_rank_stops_the_others_and_the_run_resumes() {
    let dir = setup("resume");
    let epochs = ["--set", "train.epochs=4"];
    let args: Vec<&str> = ["run", "spec.toml"].into_iter().chain(epochs).collect();
    let store = dir.join("store");
    let leader = rank(&dir, &store, 0, 2, 30, &args);
    let mut other = rank(&dir, &store, 1, 2, 30, &args);
    let position = run_dir(&dir).join("checkpoint/position.json");
    let started = Instant::now();
    while !position.exists() {
        assert!(started.elapsed() < LIMIT, "no checkpoint within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    other.kill().unwrap();
    let _ = other.wait();
    let (out, text) = finish(leader, "rank 0 after its peer was killed");
    assert!(!out.status.success(), "rank 0 went on without its peer:\n{text}");
    assert!(
        text.contains("rank 0:") && text.contains("starting the same command again resumes"),
        "rank 0 names itself and the way on:\n{text}"
    );
    assert_eq!(status(&dir)["state"], "running", "an interruption is no failure");

    let launched: Vec<&str> = args.iter().copied().chain(["--nproc-per-node", "2"]).collect();
    let (out, text) = gadms(&dir, &launched);
    assert!(out.status.success(), "resumed run:\n{text}");
    assert!(text.contains("resumed after epoch"), "{text}");
    assert_eq!(status(&dir)["state"], "done", "{text}");
    let epochs: Vec<u64> = train_records(&dir)
        .iter()
        .filter(|r| r["step"] == 4)
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4], "each epoch logged once");
}

/// A diverging run fails on every rank; the launcher names the rank that ended first and
/// the run's status names the rank and the loss.
#[test]
fn an_error_on_the_ranks_ends_them_all_and_is_named() {
    let dir = setup("diverge");
    let (out, text) = gadms(
        &dir,
        &[
            "run",
            "spec.toml",
            "--set",
            "train.lr=1e30",
            "--nproc-per-node",
            "2",
        ],
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("exited with status 1"),
        "the launcher names the rank:\n{text}"
    );
    let status = status(&dir);
    assert_eq!(status["state"], "failed", "{text}");
    let error = status["error"].as_str().unwrap();
    assert!(error.starts_with("rank ") && error.contains("loss `"), "{error}");
}

#[test]
fn a_missing_peer_or_a_wrong_world_size_fails_within_the_timeout() {
    let dir = cli::scratch("dist-missing");
    let started = Instant::now();
    // Ranks 0 and 1 of 3; rank 2 never comes.
    let store = dir.join("missing");
    let ranks: Vec<Child> = (0..2)
        .map(|r| rank(&dir, &store, r, 3, 3, &["dist-selftest"]))
        .collect();
    for (r, child) in ranks.into_iter().enumerate() {
        let (out, text) = finish(child, &format!("rank {r}"));
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains(&format!("rank {r}: rank(s) [2] of WORLD_SIZE=3 did not join"))
                && text.contains("GADMS_DIST_TIMEOUT"),
            "rank {r}:\n{text}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a 3 s timeout took {:?}",
        started.elapsed()
    );

    let store = dir.join("mismatch");
    let zero = rank(&dir, &store, 0, 2, 3, &["dist-selftest"]);
    let (out, text) = finish(rank(&dir, &store, 1, 3, 3, &["dist-selftest"]), "rank 1");
    assert!(!out.status.success());
    assert!(
        text.contains("rank 1: started with WORLD_SIZE=3, but rank 0 joined")
            && text.contains("WORLD_SIZE=2"),
        "{text}"
    );
    let (out, text) = finish(zero, "rank 0");
    assert!(!out.status.success());
    assert!(text.contains("rank 0: started with WORLD_SIZE=2"), "{text}");

    // A training started alone as rank 0 of 2 stops too, before training anything.
    let spec = setup("alone");
    let (out, text) = finish(
        rank(&spec, &spec.join("store"), 0, 2, 3, &["run", "spec.toml"]),
        "a lone rank 0",
    );
    assert!(!out.status.success());
    assert!(
        text.contains("rank(s) [1] of WORLD_SIZE=2 did not join"),
        "{text}"
    );
}
