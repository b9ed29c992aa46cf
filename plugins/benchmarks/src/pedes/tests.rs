//! The three benchmarks through the factory, on small annotation files written per test.

use serde_json::{json, Value};

use super::*;
use crate::fixture::{relative, Fixture};

fn benchmark(name: &str) -> &'static Benchmark {
    BENCHMARKS.iter().find(|b| b.name == name).unwrap()
}

/// A record with the image path under the benchmark's field name.
fn record(b: &Benchmark, split: &str, id: i64, path: &str, captions: &[&str]) -> Value {
    json!({ "split": split, "id": id, (b.image_field.name()): path, "captions": captions,
            "processed_tokens": [["ignored"]] })
}

/// Writes `<root>/<folder>/<annotations>` and an image file for every record.
fn write(f: &Fixture, b: &Benchmark, records: &[Value]) {
    let json = serde_json::to_vec_pretty(records).unwrap();
    f.write(&format!("{}/{}", b.folder, b.annotations), &json);
    let images = format!("{}/imgs", b.folder);
    f.images(
        &images,
        records.iter().map(|r| r[b.image_field.name()].as_str().unwrap()),
    );
}

fn open(b: &'static Benchmark, root: &Path, options: &str) -> Result<Box<dyn Dataset>> {
    Factory(b).open(Some(root), options)
}

fn load(b: &'static Benchmark, f: &Fixture, split: SplitKind) -> SplitData {
    open(b, &f.root, "").unwrap().load(split).unwrap()
}

fn error(result: Result<impl Sized>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// `(pid, image path under imgs/)` per image and `(pid, image, text)` per caption.
type Flat = (Vec<(i64, String)>, Vec<(i64, usize, String)>);

fn flatten(b: &Benchmark, f: &Fixture, data: &SplitData) -> Flat {
    let imgs = f.path(b.folder).join("imgs");
    let images = data
        .images
        .iter()
        .map(|i| (i.pid, relative(&i.source, &imgs)))
        .collect();
    let captions = data
        .captions
        .iter()
        .map(|c| (c.pid, c.image, c.text.clone()))
        .collect();
    (images, captions)
}

/// Train, test and val records interleaved, as in the real files.
fn mixed(b: &Benchmark) -> Vec<Value> {
    vec![
        record(b, "train", 1, "a/1.jpg", &["c0", "c1"]),
        record(b, "test", 12004, "t/1.jpg", &["q0", "q1"]),
        record(b, "train", 2, "a/2.jpg", &["c2"]),
        record(b, "val", 11005, "v/1.jpg", &["v0"]),
        record(b, "train", 1, "a/3.jpg", &["c3", "c4"]),
        record(b, "test", 12005, "t/2.jpg", &["q2"]),
    ]
}

#[test]
fn cuhk_pedes_splits_pids_image_indices_and_caption_order() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-splits");
    write(&f, b, &mixed(b));
    let s = |t: &str| t.to_string();

    let train = flatten(b, &f, &load(b, &f, SplitKind::Train));
    assert_eq!(train.0, [(0, s("a/1.jpg")), (1, s("a/2.jpg")), (0, s("a/3.jpg"))],);
    assert_eq!(
        train.1,
        [
            (0, 0, s("c0")),
            (0, 0, s("c1")),
            (1, 1, s("c2")),
            (0, 2, s("c3")),
            (0, 2, s("c4"))
        ],
    );

    // Test and val keep the raw ids, even on CUHK-PEDES.
    let test = flatten(b, &f, &load(b, &f, SplitKind::Test));
    assert_eq!(test.0, [(12004, s("t/1.jpg")), (12005, s("t/2.jpg"))]);
    assert_eq!(
        test.1,
        [(12004, 0, s("q0")), (12004, 0, s("q1")), (12005, 1, s("q2"))],
    );
    let val = flatten(b, &f, &load(b, &f, SplitKind::Val));
    assert_eq!(val.0, [(11005, s("v/1.jpg"))]);
    assert_eq!(val.1, [(11005, 0, s("v0"))]);
}

#[test]
fn root_may_be_the_benchmark_folder_itself() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-root");
    write(&f, b, &mixed(b));
    let from_parent = load(b, &f, SplitKind::Train);
    let from_folder = open(b, &f.path(b.folder), "")
        .unwrap()
        .load(SplitKind::Train)
        .unwrap();
    assert_eq!(flatten(b, &f, &from_parent), flatten(b, &f, &from_folder));
}

#[test]
fn each_benchmark_names_its_annotation_file_as_its_source() {
    for b in &BENCHMARKS {
        let f = Fixture::new(&format!("{}-sources", b.name));
        write(&f, b, &mixed(b));
        let annotations = f.path(b.folder).join(b.annotations);
        for root in [f.root.clone(), f.path(b.folder)] {
            let dataset = open(b, &root, "").unwrap();
            assert_eq!(
                dataset.source_files(),
                std::slice::from_ref(&annotations),
                "{}",
                b.name
            );
        }
    }
}

#[test]
fn icfg_pedes_keeps_train_ids_and_has_no_val_split() {
    let b = benchmark("icfg-pedes");
    let f = Fixture::new("icfg");
    write(
        &f,
        b,
        &[
            record(b, "train", 1, "train/1.jpg", &["c1"]),
            record(b, "train", 0, "train/0.jpg", &["c0"]),
            record(b, "test", 3390, "test/1.jpg", &["q0"]),
        ],
    );
    let train = load(b, &f, SplitKind::Train);
    assert_eq!(train.images.iter().map(|i| i.pid).collect::<Vec<_>>(), [1, 0]);
    assert_eq!(
        train
            .captions
            .iter()
            .map(|c| (c.pid, c.image))
            .collect::<Vec<_>>(),
        [(1, 0), (0, 1)]
    );
    let err = error(open(b, &f.root, "").unwrap().load(SplitKind::Val));
    assert!(
        err.contains("ICFG-PEDES.json") && err.contains("`val` split is empty"),
        "{err}"
    );
}

#[test]
fn rstpreid_reads_img_path() {
    let b = benchmark("rstpreid");
    let f = Fixture::new("rstp");
    write(
        &f,
        b,
        &[
            record(b, "train", 0, "0000_c1.jpg", &["c0", "c1"]),
            record(b, "test", 17, "0017_c4.jpg", &["q0", "q1"]),
        ],
    );
    let test = flatten(b, &f, &load(b, &f, SplitKind::Test));
    assert_eq!(test.0, [(17, "0017_c4.jpg".to_string())]);
    assert_eq!(test.1.len(), 2);

    // A record that names its image under the other benchmarks' field.
    let mut wrong = record(b, "train", 0, "0000_c1.jpg", &["c0"]);
    let path = wrong.as_object_mut().unwrap().remove("img_path").unwrap();
    wrong["file_path"] = path;
    f.write(
        "RSTPReid/data_captions.json",
        &serde_json::to_vec(&[wrong]).unwrap(),
    );
    let err = error(open(b, &f.root, "").unwrap().load(SplitKind::Train));
    assert!(
        err.contains("data_captions.json") && err.contains("record 0: missing field `img_path`"),
        "{err}"
    );
}

#[test]
fn train_pids_must_be_contiguous_from_zero() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-pids");
    // Raw ids 1 and 3: pids 0 and 2, so pid 1 is missing.
    write(
        &f,
        b,
        &[
            record(b, "train", 1, "1.jpg", &["a"]),
            record(b, "train", 3, "3.jpg", &["b"]),
        ],
    );
    let err = error(open(b, &f.root, "").unwrap().load(SplitKind::Train));
    assert!(
        err.contains("reid_raw.json") && err.contains("pid 1 is missing") && err.contains("id − 1"),
        "{err}"
    );
    // Raw id 0 on CUHK-PEDES gives pid −1.
    write(
        &f,
        b,
        &[
            record(b, "train", 0, "0.jpg", &["a"]),
            record(b, "train", 1, "1.jpg", &["b"]),
        ],
    );
    let err = error(open(b, &f.root, "").unwrap().load(SplitKind::Train));
    assert!(err.contains("pid -1 is negative"), "{err}");
    // Test pids need not be contiguous.
    write(&f, b, &[record(b, "test", 5, "5.jpg", &["a"])]);
    assert_eq!(load(b, &f, SplitKind::Test).images[0].pid, 5);
}

#[test]
fn missing_root_folder_annotations_or_images_are_errors_naming_the_path() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-missing");
    let err = error(Factory(b).open(None, ""));
    assert!(err.contains("cuhk-pedes") && err.contains("no `root`"), "{err}");

    let err = error(open(b, &f.path("nowhere"), ""));
    assert!(err.contains("nowhere") && err.contains("not a folder"), "{err}");

    let err = error(open(b, &f.root, ""));
    assert!(
        err.contains("CUHK-PEDES/reid_raw.json") && err.contains("missing cuhk-pedes annotation file"),
        "{err}"
    );

    f.write("CUHK-PEDES/reid_raw.json", b"[]");
    let err = error(open(b, &f.root, ""));
    assert!(
        err.contains("CUHK-PEDES/imgs") && err.contains("missing image folder"),
        "{err}"
    );
}

#[test]
fn malformed_annotations_name_line_and_column() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-malformed");
    write(&f, b, &mixed(b));
    f.write(
        "CUHK-PEDES/reid_raw.json",
        b"[{\"split\": \"train\",\n \"id\" 1}]",
    );
    let err = error(open(b, &f.root, "").unwrap().load(SplitKind::Train));
    assert!(
        err.contains("reid_raw.json") && err.contains("line 2 column"),
        "{err}"
    );
}

#[test]
fn a_missing_image_is_an_error_unless_skipped() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-image");
    write(&f, b, &mixed(b));
    f.remove("CUHK-PEDES/imgs/a/2.jpg");
    let err = error(open(b, &f.root, "").unwrap().load(SplitKind::Train));
    assert!(
        err.contains("a/2.jpg") && err.contains("record 2") && err.contains("skip_missing"),
        "{err}"
    );

    let train = open(b, &f.root, "skip_missing = true")
        .unwrap()
        .load(SplitKind::Train)
        .unwrap();
    let (images, captions) = flatten(b, &f, &train);
    assert_eq!(images, [(0, "a/1.jpg".into()), (0, "a/3.jpg".into())]);
    // The image index runs over the images kept.
    assert_eq!(
        captions.iter().map(|c| (c.1, c.2.as_str())).collect::<Vec<_>>(),
        [(0, "c0"), (0, "c1"), (1, "c3"), (1, "c4")]
    );
}

#[test]
fn an_image_path_outside_the_dataset_is_refused() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-escape");
    write(&f, b, &[record(b, "train", 1, "a/1.jpg", &["a"])]);
    f.write("secret.jpg", b"outside");
    for bad in ["../../secret.jpg", f.path("secret.jpg").to_str().unwrap()] {
        let records = [
            record(b, "train", 1, "a/1.jpg", &["a"]),
            record(b, "train", 2, bad, &["b"]),
        ];
        f.write("CUHK-PEDES/reid_raw.json", &serde_json::to_vec(&records).unwrap());
        let err = error(
            open(b, &f.root, "skip_missing = true")
                .unwrap()
                .load(SplitKind::Train),
        );
        assert!(
            err.contains("reid_raw.json") && err.contains("record 1") && err.contains("not inside"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn an_empty_caption_is_an_error_naming_the_record() {
    let b = benchmark("cuhk-pedes");
    let f = Fixture::new("cuhk-caption");
    write(
        &f,
        b,
        &[
            record(b, "test", 1, "1.jpg", &["fine"]),
            record(b, "test", 2, "2.jpg", &["fine", "  "]),
        ],
    );
    let err = error(open(b, &f.root, "").unwrap().load(SplitKind::Test));
    assert!(
        err.contains("reid_raw.json") && err.contains("record 1: caption 1 is empty"),
        "{err}"
    );
}

#[test]
fn an_unknown_option_is_an_error_naming_it() {
    let b = benchmark("rstpreid");
    let f = Fixture::new("rstp-option");
    write(&f, b, &[record(b, "train", 0, "0.jpg", &["a"])]);
    let err = error(open(b, &f.root, "limit = 3"));
    assert!(err.contains("rstpreid") && err.contains("limit"), "{err}");
}
