//! `gadms-run dataset convert webperson` end to end: Hugging Face-layout parquet shards,
//! written here with Polars, become the layout the `webperson` plugin reads, and the real
//! plugin library (`cargo build --release -p gadms-benchmarks -p gadms` first) loads it with
//! the reference's record rules. Bad shards end in errors that name the shard and the row or
//! column.

use std::path::{Path, PathBuf};

use gadms::data::convert;
use gadms::plugin::{default_search_path, PluginSet};
use gadms_plugin::dataset::{ImageSource, SplitKind};
use polars::prelude::*;

#[path = "common/cli.rs"]
mod cli;

/// One row of a shard; `None` writes a null.
#[derive(Clone)]
struct Row {
    bytes: Option<Vec<u8>>,
    /// The HF Image struct's own `path` field, which the converter ignores.
    image_file: Option<&'static str>,
    path: Option<&'static str>,
    caption1: Option<&'static str>,
    caption2: Option<&'static str>,
}

fn row(path: &'static str, seed: u8, caption1: &'static str, caption2: &'static str) -> Row {
    Row {
        bytes: Some(png(seed)),
        image_file: None,
        path: Some(path),
        caption1: Some(caption1),
        caption2: Some(caption2),
    }
}

/// A real PNG, of a size and colour that differ per seed.
fn png(seed: u8) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(3 + u32::from(seed), 2, image::Rgb([seed * 40, 90, 200 - seed]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// Writes `rows` as a shard with the HF features (`image` = struct {bytes, path}, then
/// `image_path`, `caption1`, `caption2`) plus an extra column, `row_group` rows per row
/// group; `drop` leaves a column out.
fn shard(file: &Path, rows: &[Row], row_group: usize, drop: Option<&str>) {
    let n = rows.len();
    let bytes = Series::new(
        "bytes".into(),
        rows.iter().map(|r| r.bytes.as_deref()).collect::<Vec<_>>(),
    );
    let image_file = Series::new(
        "path".into(),
        rows.iter().map(|r| r.image_file).collect::<Vec<_>>(),
    );
    let image = StructChunked::from_series("image".into(), n, [bytes, image_file].iter())
        .unwrap()
        .into_series();
    let text = |name: &str, f: fn(&Row) -> Option<&'static str>| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let columns = vec![
        image.into_column(),
        text("image_path", |r| r.path),
        text("caption1", |r| r.caption1),
        text("caption2", |r| r.caption2),
        Column::new("source".into(), vec![7i64; n]),
    ];
    let mut frame = DataFrame::new_infer_height(
        columns
            .into_iter()
            .filter(|c| Some(c.name().as_str()) != drop)
            .collect(),
    )
    .unwrap();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    ParquetWriter::new(std::fs::File::create(file).unwrap())
        .with_row_group_size(Some(row_group))
        .finish(&mut frame)
        .unwrap();
}

/// A shard whose `image` column is plain bytes instead of the HF struct, and which has only
/// the four columns.
fn plain_shard(file: &Path, rows: &[Row]) {
    let mut frame = polars::df!(
        "image" => rows.iter().map(|r| r.bytes.as_deref()).collect::<Vec<_>>(),
        "image_path" => rows.iter().map(|r| r.path).collect::<Vec<_>>(),
        "caption1" => rows.iter().map(|r| r.caption1).collect::<Vec<_>>(),
        "caption2" => rows.iter().map(|r| r.caption2).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    ParquetWriter::new(std::fs::File::create(file).unwrap())
        .finish(&mut frame)
        .unwrap();
}

/// A download in the HF layout: `data/train-0000{0,1}-of-00002.parquet`, paths unsorted
/// across and within the shards, captions with the literal "/n" the reference deletes.
fn download(dir: &Path) -> Vec<Row> {
    let first = vec![
        row("shard_1/b.png", 1, "b one", "b two"),
        Row {
            image_file: Some("ignored.png"),
            ..row("shard_0/z.png", 2, "z one/n", "z/n two")
        },
    ];
    let second = vec![
        row("shard_1/a.png", 3, "a one", "a two"),
        row("c.png", 4, "c one", "c two"),
        row("shard_0/y/x.png", 5, "x one", "x two"),
    ];
    shard(&dir.join("data/train-00000-of-00002.parquet"), &first, 10, None);
    // Row groups of one row: the second shard is read in several batches when the batch
    // limit is small.
    shard(&dir.join("data/train-00001-of-00002.parquet"), &second, 1, None);
    first.into_iter().chain(second).collect()
}

fn convert(args: &[&Path]) -> (std::process::Output, String) {
    let mut all = vec![Path::new("dataset"), Path::new("convert"), Path::new("webperson")];
    all.extend_from_slice(args);
    cli::gadms_run(all)
}

/// `(image path under images/, caption)` per sample, checking pid = image = sample index.
fn samples(root: &Path, options: &str) -> Vec<(String, String)> {
    let plugins = PluginSet::discover(&default_search_path());
    let data = plugins
        .dataset("webperson")
        .unwrap()
        .open(Some(root), options)
        .unwrap()
        .load(SplitKind::Train)
        .unwrap();
    let images = std::path::absolute(root.join("images")).unwrap();
    data.captions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            assert_eq!(
                (c.pid, c.image, data.images[i].pid),
                (i as i64 / 2, i, i as i64 / 2)
            );
            let ImageSource::File(file) = &data.images[i].source else {
                panic!("expected an image file, got {:?}", data.images[i].source)
            };
            let relative = file.strip_prefix(&images).unwrap().to_string_lossy().into_owned();
            (relative, c.text.clone())
        })
        .collect()
}

fn expected_samples() -> Vec<(String, String)> {
    [
        ("c.png", "c one"),
        ("c.png", "c two"),
        ("shard_0/y/x.png", "x one"),
        ("shard_0/y/x.png", "x two"),
        ("shard_0/z.png", "z one"),
        ("shard_0/z.png", "z two"),
        ("shard_1/a.png", "a one"),
        ("shard_1/a.png", "a two"),
        ("shard_1/b.png", "b one"),
        ("shard_1/b.png", "b two"),
    ]
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .to_vec()
}

fn assert_images(root: &Path, rows: &[Row]) {
    for r in rows {
        let written = std::fs::read(root.join("images").join(r.path.unwrap())).unwrap();
        assert!(
            &written == r.bytes.as_ref().unwrap(),
            "{}: bytes differ",
            r.path.unwrap()
        );
    }
}

#[test]
fn converted_shards_load_with_the_reference_record_rules() {
    let dir = cli::scratch("convert-ok");
    let rows = download(&dir);
    let out = dir.join("out");
    let (status, text) = convert(&[Path::new("--from"), &dir, Path::new("--root"), &out]);
    assert!(status.status.success(), "{text}");
    for line in [
        "shard 1/2",
        "train-00000-of-00002.parquet: 2 images",
        "shard 2/2",
        "train-00001-of-00002.parquet: 3 images",
        "converted 2 shard(s): 5 images, 10 captions",
        "check it with: gadms-run dataset stats --plugin webperson --root",
    ] {
        assert!(text.contains(line), "`{line}` not in\n{text}");
    }
    let image_bytes: usize = rows.iter().map(|r| r.bytes.as_ref().unwrap().len()).sum();
    assert!(
        text.contains(&format!("wrote {image_bytes} bytes of images")),
        "{text}"
    );

    // The annotation file is the reference's layout: a list of one-key objects.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("annotations.json")).unwrap()).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(
        items[1],
        serde_json::json!({"shard_0/z.png": {"caption1": "z one/n", "caption2": "z/n two"}}),
        "captions are written unchanged; the plugin cleans them"
    );
    assert!(!out.join("annotations.json.partial").exists());
    assert_images(&out, &rows);

    // The plugin, without options: sorted paths, caption1 then caption2, "/n" deleted.
    assert_eq!(samples(&out, ""), expected_samples());
    let (status, stats) = cli::gadms_run([
        Path::new("dataset"),
        Path::new("stats"),
        Path::new("--plugin"),
        Path::new("webperson"),
        Path::new("--root"),
        &out,
    ]);
    assert!(status.status.success(), "{stats}");
    for line in [
        "identities          5",
        "images              10",
        "captions            10",
    ] {
        assert!(stats.contains(line), "`{line}` not in\n{stats}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn batches_shard_files_names_and_reconversion() {
    let dir = cli::scratch("convert-batches");
    let rows = download(&dir);
    let shards = [
        dir.join("data/train-00000-of-00002.parquet"),
        dir.join("data/train-00001-of-00002.parquet"),
    ];
    // Every row group its own batch, through the library.
    let out = dir.join("out");
    let mut done = Vec::new();
    let summary = convert::convert_webperson_in_batches(&shards, &out, "100w.json", 1, |d| {
        done.push((d.number, d.images))
    })
    .unwrap();
    assert_eq!(done, [(1, 2), (2, 3)]);
    assert_eq!((summary.shards, summary.images, summary.captions), (2, 5, 10));
    assert_eq!(
        summary.annotation_bytes,
        std::fs::metadata(out.join("100w.json")).unwrap().len()
    );
    assert_eq!(samples(&out, "annotations = \"100w.json\""), expected_samples());

    // Shard files named directly, into a root converted before: overwritten.
    shard(
        &shards[1],
        &[row("shard_1/a.png", 9, "new a", "new a two")],
        10,
        None,
    );
    let (status, text) = convert(&[
        Path::new("--from"),
        &shards[1],
        Path::new("--root"),
        &out,
        Path::new("--annotations"),
        Path::new("100w.json"),
    ]);
    assert!(status.status.success(), "{text}");
    assert!(
        text.contains("converted 1 shard(s): 1 images") && text.contains("--option annotations=100w.json"),
        "{text}"
    );
    assert_eq!(std::fs::read(out.join("images/shard_1/a.png")).unwrap(), png(9));
    let s = |p: &str, t: &str| (p.to_string(), t.to_string());
    assert_eq!(
        samples(&out, "annotations = \"100w.json\""),
        [s("shard_1/a.png", "new a"), s("shard_1/a.png", "new a two")]
    );

    // A folder of shards without data/ works too, and so does an `image` column of plain
    // bytes; a folder without shards is an error.
    let flat = dir.join("flat");
    plain_shard(&flat.join("part-1.parquet"), &rows[..2]);
    let (status, text) = convert(&[Path::new("--from"), &flat, Path::new("--root"), &dir.join("o2")]);
    assert!(status.status.success() && text.contains("2 images"), "{text}");
    assert_images(&dir.join("o2"), &rows[..2]);
    let s = |p: &str, t: &str| (p.to_string(), t.to_string());
    assert_eq!(
        samples(&dir.join("o2"), ""),
        [
            s("shard_0/z.png", "z one"),
            s("shard_0/z.png", "z two"),
            s("shard_1/b.png", "b one"),
            s("shard_1/b.png", "b two")
        ]
    );
    plain_shard(
        &flat.join("part-1.parquet"),
        &[Row {
            bytes: None,
            ..row("q.png", 1, "a", "b")
        }],
    );
    let (status, text) = convert(&[Path::new("--from"), &flat, Path::new("--root"), &dir.join("o2")]);
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("part-1.parquet, row 0 (counting from 0): `image` is null"),
        "{text}"
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (status, text) = convert(&[Path::new("--from"), &empty, Path::new("--root"), &dir.join("o3")]);
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("empty")
            && text.contains("no parquet shards found")
            && text.contains("data/train-*.parquet"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Converts a download whose second shard holds `bad`; returns the output root and the
/// command's text after checking that it failed.
fn failing(name: &str, bad: &[Row], drop: Option<&str>) -> (PathBuf, PathBuf, String) {
    let dir = cli::scratch(name);
    shard(
        &dir.join("data/train-00000-of-00002.parquet"),
        &[
            row("good/1.png", 1, "one", "two"),
            row("good/2.png", 2, "one", "two"),
        ],
        10,
        None,
    );
    shard(&dir.join("data/train-00001-of-00002.parquet"), bad, 1, drop);
    let out = dir.join("out");
    let (status, text) = convert(&[Path::new("--from"), &dir, Path::new("--root"), &out]);
    assert_eq!(status.status.code(), Some(1), "{text}");
    // Nothing looks complete; the images written before the error stay.
    assert!(!out.join("annotations.json").exists(), "{text}");
    assert!(!out.join("annotations.json.partial").exists(), "{text}");
    assert_eq!(std::fs::read(out.join("images/good/2.png")).unwrap(), png(2));
    (dir, out, text)
}

#[test]
fn a_missing_column_names_the_shard_the_column_and_those_found() {
    let (dir, _, text) = failing("convert-column", &[row("x.png", 3, "a", "b")], Some("caption2"));
    assert!(
        text.contains("train-00001-of-00002.parquet")
            && text.contains("missing column `caption2`")
            && text.contains("columns found: `image`, `image_path`, `caption1`, `source`"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_image_path_leaving_images_names_the_shard_and_row() {
    let bad = [
        row("ok/3.png", 3, "a", "b"),
        row("ok/../../escape.png", 4, "a", "b"),
    ];
    let (dir, out, text) = failing("convert-escape", &bad, None);
    assert!(
        text.contains("train-00001-of-00002.parquet, row 1 (counting from 0)")
            && text.contains("image_path `ok/../../escape.png`")
            && text.contains("make it a relative path"),
        "{text}"
    );
    assert!(!out.join("escape.png").exists() && !dir.join("escape.png").exists());
    for absolute in ["/tmp/abs.png", ""] {
        let (dir, _, text) = failing("convert-absolute", &[row(absolute, 3, "a", "b")], None);
        assert!(
            text.contains("train-00001-of-00002.parquet, row 0")
                && text.contains("is empty, absolute or has `..`"),
            "{text}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_duplicate_image_path_names_both_rows() {
    let bad = [row("x.png", 3, "a", "b"), row("./good/2.png", 4, "a", "b")];
    let (dir, out, text) = failing("convert-duplicate", &bad, None);
    assert!(
        text.contains("train-00001-of-00002.parquet, row 1 (counting from 0): image_path `./good/2.png`")
            && text.contains("already used by")
            && text.contains("train-00000-of-00002.parquet, row 1"),
        "{text}"
    );
    // The first row's image was not overwritten.
    assert_eq!(std::fs::read(out.join("images/good/2.png")).unwrap(), png(2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn null_values_name_the_shard_row_and_field() {
    let nulls = [
        (
            Row {
                caption2: None,
                ..row("n.png", 3, "a", "b")
            },
            "`caption2` is null",
        ),
        (
            Row {
                bytes: None,
                ..row("n.png", 3, "a", "b")
            },
            "`image.bytes` is null",
        ),
        (
            Row {
                path: None,
                ..row("n.png", 3, "a", "b")
            },
            "`image_path` is null",
        ),
    ];
    for (bad, message) in nulls {
        let (dir, _, text) = failing("convert-null", &[row("m.png", 5, "a", "b"), bad], None);
        assert!(
            text.contains("train-00001-of-00002.parquet, row 1 (counting from 0)") && text.contains(message),
            "{text}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
