//! WebPerson through the factory, on small annotation files written per test.

use serde_json::{json, Value};

use super::*;
use crate::fixture::{relative, Fixture};

/// Writes `<root>/annotations.json` and an image file for every key.
fn write(f: &Fixture, items: &Value) {
    f.write("annotations.json", &serde_json::to_vec_pretty(items).unwrap());
    for item in items.as_array().unwrap() {
        f.images("images", item.as_object().unwrap().keys().map(String::as_str));
    }
}

fn open(f: &Fixture, options: &str) -> Result<Box<dyn Dataset>> {
    Factory.open(Some(&f.root), options)
}

fn load(f: &Fixture, options: &str) -> Result<SplitData> {
    open(f, options)?.load(SplitKind::Train)
}

fn error(result: Result<impl Sized>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// `(pid, image, image path under images/, text)` per sample.
fn samples(f: &Fixture, data: &SplitData) -> Vec<(i64, usize, String, String)> {
    let images = f.path("images");
    data.captions
        .iter()
        .map(|c| {
            let image = &data.images[c.image];
            assert_eq!(image.pid, c.pid, "an image entry's pid is its caption's");
            (c.pid, c.image, relative(&image.source, &images), c.text.clone())
        })
        .collect()
}

fn captions(one: &str, two: &str) -> Value {
    json!({ "caption1": one, "caption2": two, "other": 1 })
}

/// Three images in unsorted order, one object holding two of them.
fn corpus() -> Value {
    json!([
        { "shard_1/b.jpg": captions("b one", "b two") },
        { "shard_0/z.jpg": captions("z one/n", "z/n two"),
          "shard_1/a.jpg": captions("a one", "a two") },
    ])
}

#[test]
fn sorted_paths_two_samples_each_and_one_dense_identity_per_image() {
    let f = Fixture::new("web-ok");
    write(&f, &corpus());
    let s = |t: &str| t.to_string();
    assert_eq!(
        samples(&f, &load(&f, "").unwrap()),
        [
            (0, 0, s("shard_0/z.jpg"), s("z one")),
            (0, 1, s("shard_0/z.jpg"), s("z two")),
            (1, 2, s("shard_1/a.jpg"), s("a one")),
            (1, 3, s("shard_1/a.jpg"), s("a two")),
            (2, 4, s("shard_1/b.jpg"), s("b one")),
            (2, 5, s("shard_1/b.jpg"), s("b two")),
        ]
    );
}

/// SDM's positives are the pairs of equal pids: the two captions of one image must be one
/// (the reference reads its pid counter once per image), captions of two images never.
#[test]
fn captions_share_their_images_pid_and_only_it() {
    let f = Fixture::new("web-pid-per-image");
    write(
        &f,
        &json!([{ "p/two.jpg": captions("first", "second") }, { "p/other.jpg": captions("x", "y") }]),
    );
    let samples = samples(&f, &load(&f, "").unwrap());
    let pid_of = |text: &str| samples.iter().find(|s| s.3 == text).unwrap().0;
    assert_eq!(pid_of("first"), pid_of("second"), "{samples:?}");
    assert_eq!(pid_of("x"), pid_of("y"), "{samples:?}");
    assert_ne!(pid_of("first"), pid_of("x"), "{samples:?}");
    // Each caption is still its own image entry, so the score table stays keyed by sample.
    let images: Vec<usize> = samples.iter().map(|s| s.1).collect();
    assert_eq!(images, [0, 1, 2, 3]);
}

#[test]
fn the_annotation_file_the_options_name_is_the_source() {
    let f = Fixture::new("web-sources");
    write(&f, &corpus());
    assert_eq!(open(&f, "").unwrap().source_files(), [f.path("annotations.json")]);
    std::fs::copy(f.path("annotations.json"), f.path("100w.json")).unwrap();
    let named = open(&f, "annotations = \"100w.json\"").unwrap();
    assert_eq!(named.source_files(), [f.path("100w.json")]);
}

#[test]
fn limit_and_annotation_name_are_options() {
    let f = Fixture::new("web-options");
    write(&f, &corpus());
    std::fs::rename(f.path("annotations.json"), f.path("100w.json")).unwrap();
    let data = load(&f, "annotations = \"100w.json\"\nlimit = 2").unwrap();
    let paths: Vec<String> = samples(&f, &data).into_iter().map(|s| s.2).collect();
    assert_eq!(
        paths,
        ["shard_0/z.jpg", "shard_0/z.jpg", "shard_1/a.jpg", "shard_1/a.jpg"]
    );
}

#[test]
fn only_train_exists() {
    let f = Fixture::new("web-splits");
    write(&f, &corpus());
    for split in [SplitKind::Val, SplitKind::Test] {
        let err = error(open(&f, "").unwrap().load(split));
        assert!(
            err.contains("only a train split") && err.contains(split.as_str()),
            "{err}"
        );
    }
}

#[test]
fn missing_root_annotations_or_images_are_errors_naming_the_fix() {
    let f = Fixture::new("web-missing");
    let err = error(Factory.open(None, ""));
    assert!(err.contains("webperson") && err.contains("no `root`"), "{err}");

    let err = error(Factory.open(Some(&f.path("nowhere")), ""));
    assert!(err.contains("nowhere") && err.contains("not a folder"), "{err}");

    let err = error(open(&f, ""));
    assert!(
        err.contains("annotations.json") && err.contains("`annotations`") && err.contains("100w.json"),
        "{err}"
    );

    f.write("annotations.json", b"[]");
    let err = error(open(&f, ""));
    assert!(
        err.contains("images") && err.contains("missing image folder"),
        "{err}"
    );

    f.images("images", ["a.jpg"]);
    let err = error(load(&f, ""));
    assert!(err.contains("`train` split is empty"), "{err}");
}

#[test]
fn parquet_shards_without_annotations_ask_for_the_conversion() {
    let f = Fixture::new("web-parquet");
    f.write("data/train-00000-of-00002.parquet", b"PAR1");
    let err = error(open(&f, ""));
    assert!(
        err.contains("data/*.parquet")
            && err.contains("gadms-run dataset convert webperson --from")
            && err.contains(&f.root.display().to_string()),
        "{err}"
    );
    // A named annotation file is what the command is told to write.
    let err = error(open(&f, "annotations = \"100w.json\""));
    assert!(
        err.contains("--annotations 100w.json` (it writes images/ and 100w.json"),
        "{err}"
    );
    // Without shards the message is about the file name instead.
    f.remove("data/train-00000-of-00002.parquet");
    let err = error(open(&f, ""));
    assert!(
        !err.contains("dataset convert") && err.contains("100w.json"),
        "{err}"
    );
}

#[test]
fn bad_records_are_errors_naming_record_and_field() {
    let f = Fixture::new("web-records");
    write(&f, &corpus());
    let broken = json!([{ "a.jpg": captions("x", "y") }, { "b.jpg": { "caption1": "x" } }]);
    f.write("annotations.json", &serde_json::to_vec(&broken).unwrap());
    let err = error(load(&f, ""));
    assert!(
        err.contains("annotations.json")
            && err.contains("record 1, at `b.jpg`")
            && err.contains("`caption2`"),
        "{err}"
    );

    f.write(
        "annotations.json",
        b"[{\"a.jpg\": \n {\"caption1\": \"x\" \"caption2\": \"y\"}}]",
    );
    let err = error(load(&f, ""));
    assert!(
        err.contains("malformed JSON") && err.contains("line 2 column"),
        "{err}"
    );

    let empty = json!([{ "shard_1/a.jpg": captions("fine", "/n/n ") }]);
    f.write("annotations.json", &serde_json::to_vec(&empty).unwrap());
    let err = error(load(&f, ""));
    assert!(
        err.contains("record 0") && err.contains("`caption2` of `shard_1/a.jpg` is empty"),
        "{err}"
    );

    let escape = json!([{ "../annotations.json": captions("x", "y") }]);
    f.write("annotations.json", &serde_json::to_vec(&escape).unwrap());
    let err = error(load(&f, "skip_missing = true"));
    assert!(err.contains("record 0") && err.contains("not inside"), "{err}");
}

#[test]
fn missing_images_fail_or_are_skipped_with_contiguous_pids() {
    let f = Fixture::new("web-skip");
    write(&f, &corpus());
    f.remove("images/shard_1/a.jpg");
    let err = error(load(&f, ""));
    assert!(
        err.contains("shard_1/a.jpg") && err.contains("record 1") && err.contains("skip_missing"),
        "{err}"
    );
    let data = load(&f, "skip_missing = true\nlimit = 2").unwrap();
    let kept: Vec<(i64, String)> = samples(&f, &data).into_iter().map(|s| (s.0, s.2)).collect();
    // The limit counts the images kept.
    assert_eq!(
        kept,
        [
            (0, "shard_0/z.jpg".into()),
            (0, "shard_0/z.jpg".into()),
            (1, "shard_1/b.jpg".into()),
            (1, "shard_1/b.jpg".into())
        ]
    );
}
