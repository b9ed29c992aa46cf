//! `gadms-run dataset stats` end to end: the real binary loads datasets through the built
//! plugins (`cargo build --release -p gadms-benchmarks -p gadms` first) and prints per-split
//! counts; bad input ends in a clear message and a failing exit, never a crash.

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "common/cli.rs"]
mod cli;

/// Runs `gadms-run dataset stats ARGS`; returns the output, stdout and stderr.
fn stats(args: &[&str]) -> (Output, String, String) {
    let (out, _) = cli::gadms_run(["dataset", "stats"].iter().chain(args));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// The value printed after `label` in the block of `split` (`<dataset> <split>:`).
fn value<'a>(stdout: &'a str, dataset: &str, split: &str, label: &str) -> &'a str {
    let header = format!("{dataset} {split}:");
    let block = stdout
        .split_once(&header)
        .unwrap_or_else(|| panic!("no `{header}` block in\n{stdout}"))
        .1;
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` in the {split} block of\n{stdout}"))
        .trim()
}

fn scratch(name: &str) -> PathBuf {
    cli::scratch(&format!("datasets-{name}"))
}

/// A CUHK-PEDES folder: 3 train images of 2 identities (5 captions), 2 test images of one
/// identity (3 captions, one of 80 words), no val split. Image files are never decoded.
fn cuhk_pedes(root: &Path) {
    let long = vec!["word"; 80].join(" ");
    let records = [
        (
            "train",
            1,
            "train/1.jpg",
            vec!["a man in a red coat", "he carries a bag"],
        ),
        ("train", 2, "train/2.jpg", vec!["a woman with long hair"]),
        (
            "train",
            1,
            "train/3.jpg",
            vec!["the man wears black shoes", "red coat"],
        ),
        (
            "test",
            12004,
            "test/1.jpg",
            vec!["a person in blue", long.as_str()],
        ),
        ("test", 12004, "test/2.jpg", vec!["blue jeans"]),
    ];
    let dir = root.join("CUHK-PEDES");
    let mut json = Vec::new();
    for (split, id, path, captions) in records {
        let file = dir.join("imgs").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, b"jpeg").unwrap();
        let captions: Vec<String> = captions.iter().map(|c| format!("{c:?}")).collect();
        json.push(format!(
            r#"{{"split": "{split}", "id": {id}, "file_path": "{path}", "captions": [{}]}}"#,
            captions.join(", ")
        ));
    }
    std::fs::write(dir.join("reid_raw.json"), format!("[{}]", json.join(",\n"))).unwrap();
}

#[test]
fn cuhk_pedes_counts_per_split() {
    let root = scratch("cuhk");
    cuhk_pedes(&root);
    let (out, stdout, stderr) = stats(&["--plugin", "cuhk-pedes", "--root", root.to_str().unwrap()]);
    assert!(out.status.success(), "{stdout}{stderr}");
    for (split, identities, images, captions, per_image) in
        [("train", "2", "3", "5", "1.67"), ("test", "1", "2", "3", "1.50")]
    {
        assert_eq!(value(&stdout, "cuhk-pedes", split, "identities"), identities);
        assert_eq!(value(&stdout, "cuhk-pedes", split, "images"), images);
        assert_eq!(value(&stdout, "cuhk-pedes", split, "captions "), captions);
        assert_eq!(
            value(&stdout, "cuhk-pedes", split, "captions per image"),
            per_image
        );
    }
    assert!(
        value(&stdout, "cuhk-pedes", "test", "caption tokens").ends_with("max 80"),
        "{stdout}"
    );
    assert!(
        value(&stdout, "cuhk-pedes", "test", "truncated").starts_with("1 "),
        "{stdout}"
    );
    assert!(
        value(&stdout, "cuhk-pedes", "train", "truncated").starts_with("0 "),
        "{stdout}"
    );
    // The fixture has no val records: reported, skipped, not fatal.
    assert!(!stdout.contains("cuhk-pedes val:"), "{stdout}");
    assert!(
        stderr.contains("cuhk-pedes val: not loaded") && stderr.contains("`val` split is empty"),
        "{stderr}"
    );

    // A split asked for by name must load.
    let (out, _, stderr) = stats(&[
        "--plugin",
        "cuhk-pedes",
        "--root",
        root.to_str().unwrap(),
        "--split",
        "val",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("cannot load the `val` split of `cuhk-pedes`"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn synthetic_persons_needs_no_root_and_takes_options() {
    let (out, stdout, stderr) = stats(&[
        "--plugin",
        "synthetic-persons",
        "--split",
        "train",
        "--split",
        "test",
        "--option",
        "train_ids=3",
        "--option",
        "test_ids = 2",
        "--option",
        "images_per_id=2",
    ]);
    assert!(out.status.success(), "{stdout}{stderr}");
    for (split, ids) in [("train", 3), ("test", 2)] {
        let value = |label| value(&stdout, "synthetic-persons", split, label);
        assert_eq!(value("identities"), ids.to_string());
        assert_eq!(value("images"), (ids * 2).to_string());
        assert_eq!(value("captions "), (ids * 2 * 2).to_string());
    }
}

#[test]
fn a_bad_root_or_option_is_a_clear_error() {
    let missing = scratch("bad-root").join("nowhere");
    let (out, stdout, stderr) = stats(&["--plugin", "cuhk-pedes", "--root", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot open dataset `cuhk-pedes`")
            && stderr.contains("nowhere")
            && stderr.contains("not a folder"),
        "{stderr}"
    );

    let (out, _, stderr) = stats(&["--plugin", "cuhk-pedes", "--root", ".", "--option", "limit=3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("limit"), "{stderr}");

    let (out, _, stderr) = stats(&["--plugin", "no-such-dataset"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("unknown dataset plugin `no-such-dataset`") && stderr.contains("cuhk-pedes"),
        "{stderr}"
    );
}

/// A CUHK-PEDES folder with real PNG images (plain colours per identity), one of which is
/// replaced by bytes that are no image.
fn cuhk_pedes_with_a_corrupt_image(root: &Path) {
    let dir = root.join("CUHK-PEDES");
    let mut json = Vec::new();
    for i in 0..8u8 {
        let (split, id) = if i < 6 {
            ("train", 1 + i64::from(i / 2))
        } else {
            ("test", 12004)
        };
        let path = format!("{split}/{i}.png");
        let file = dir.join("imgs").join(&path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        if i == 3 {
            std::fs::write(&file, b"not a png at all").unwrap();
        } else {
            image::RgbImage::from_pixel(16, 8, image::Rgb([40 * i, 200 - 20 * i, 90]))
                .save(&file)
                .unwrap();
        }
        json.push(format!(
            r#"{{"split": "{split}", "id": {id}, "file_path": "{path}", "captions": ["a person in colour {i}", "picture {i}"]}}"#
        ));
    }
    std::fs::write(dir.join("reid_raw.json"), format!("[{}]", json.join(",\n"))).unwrap();
}

#[test]
fn an_unreadable_image_stops_a_run_by_name_or_is_skipped_and_counted() {
    let root = scratch("corrupt");
    cuhk_pedes_with_a_corrupt_image(&root);
    let spec = |skip: bool| {
        format!(
            r#"
[experiment]
name = "corrupt"
output = "out"

[base.model]
preset = "tiny"
vision_layers = 1
text_layers = 1

[base.data]
train = {{ plugin = "cuhk-pedes", root = "CUHK-PEDES", skip_unreadable = {skip} }}
eval = [{{ plugin = "cuhk-pedes", root = "CUHK-PEDES", split = "test" }}]

[base.train]
epochs = 2
warmup_epochs = 1
batch_size = 4
device = "cpu"

[base.masking]
plugin = "none"

[base.losses]
sdm = {{}}

[[variant]]
name = "v"
"#
        )
    };
    std::fs::write(root.join("strict.toml"), spec(false)).unwrap();
    let (out, text) = cli::gadms_run([Path::new("run"), &root.join("strict.toml")]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("3.png") && text.contains("skip_unreadable = true"),
        "the error names the file and the option: {text}"
    );

    std::fs::write(root.join("lenient.toml"), spec(true)).unwrap();
    let (out, text) = cli::gadms_run([Path::new("run"), &root.join("lenient.toml")]);
    assert!(out.status.success(), "{text}");
    let log = std::fs::read_to_string(root.join("out/corrupt/runs/v/seed-0/run.log")).unwrap();
    assert!(
        log.contains("skipped 1 unreadable image(s) and their 2 caption(s)") && log.contains("3.png"),
        "{log}"
    );
    assert!(log.contains("10 training captions"), "{log}");
    std::fs::remove_dir_all(root).unwrap();
}
