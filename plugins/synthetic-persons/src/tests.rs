//! Dataset-level tests through the factory, as the runner uses the plugin.

use std::time::Instant;

use super::*;
use crate::noise::tests::remove_spans;
use crate::noise::WEB_PHRASES;

fn open(options: &str) -> Box<dyn Dataset> {
    Factory
        .open(None, options)
        .unwrap_or_else(|e| panic!("{options}: {e}"))
}

fn load(options: &str, split: SplitKind) -> SplitData {
    open(options)
        .load(split)
        .unwrap_or_else(|e| panic!("{options}: {e}"))
}

fn pixels(image: &ImageRecord) -> &[u8] {
    match &image.source {
        ImageSource::Rgb8 { pixels, .. } => pixels,
        other => panic!("expected raw pixels, got {other:?}"),
    }
}

type FlatImage = (i64, Vec<u8>);
type FlatCaption = (i64, usize, String, Vec<std::ops::Range<usize>>);

/// Everything a load returns, as comparable values.
fn flatten(data: &SplitData) -> (Vec<FlatImage>, Vec<FlatCaption>) {
    let images = data.images.iter().map(|i| (i.pid, pixels(i).to_vec())).collect();
    let captions = data
        .captions
        .iter()
        .map(|c| (c.pid, c.image, c.text.clone(), c.noise_spans.clone()))
        .collect();
    (images, captions)
}

const SMALL: &str = "train_ids = 30\ntest_ids = 10\nval_ids = 5\n";

#[test]
fn registers_one_dataset_under_its_name() {
    let mut registry = Registry::new();
    register(&mut registry).unwrap();
    let entries = registry.into_entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, NAME);
}

#[test]
fn declares_its_noise_spans_complete_labels() {
    assert!(
        open(SMALL).labels_noise(),
        "an oracle masking needs labelled noise"
    );
}

#[test]
fn same_options_give_identical_data_and_another_seed_differs() {
    for split in [SplitKind::Train, SplitKind::Val, SplitKind::Test] {
        let a = flatten(&load(SMALL, split));
        assert_eq!(a, flatten(&load(SMALL, split)), "{split:?}");
        let b = flatten(&load(&format!("{SMALL}seed = 1\n"), split));
        assert_ne!(a.0, b.0, "{split:?} images");
        assert_ne!(a.1, b.1, "{split:?} captions");
    }
}

#[test]
fn the_root_is_ignored() {
    let with_root = Factory
        .open(Some(Path::new("/nonexistent")), SMALL)
        .unwrap()
        .load(SplitKind::Test)
        .unwrap();
    assert_eq!(flatten(&with_root), flatten(&load(SMALL, SplitKind::Test)));
}

#[test]
fn splits_are_disjoint_contiguous_and_sized_by_the_options() {
    let options = "train_ids = 12\nval_ids = 3\ntest_ids = 5\nimages_per_id = 3\ncaptions_per_image = 4\n";
    let dataset = open(options);
    let mut expected_start = 0;
    for (split, ids) in [(SplitKind::Train, 12), (SplitKind::Val, 3), (SplitKind::Test, 5)] {
        let data = dataset.load(split).unwrap();
        assert_eq!(data.images.len(), ids * 3, "{split:?}");
        assert_eq!(data.captions.len(), ids * 3 * 4, "{split:?}");
        let mut pids: Vec<i64> = data.images.iter().map(|i| i.pid).collect();
        pids.dedup();
        assert_eq!(
            pids,
            (expected_start..expected_start + ids as i64).collect::<Vec<_>>(),
            "{split:?}"
        );
        expected_start += ids as i64;
        for caption in &data.captions {
            assert_eq!(data.images[caption.image].pid, caption.pid);
        }
        for image in &data.images {
            let ImageSource::Rgb8 {
                width,
                height,
                pixels,
            } = &image.source
            else {
                unreachable!()
            };
            assert_eq!((*width, *height, pixels.len()), (32, 96, 32 * 96 * 3));
        }
    }
}

#[test]
fn an_empty_split_is_an_error_naming_split_and_option() {
    let err = open("").load(SplitKind::Val).unwrap_err().to_string();
    assert!(err.contains("`val`") && err.contains("`val_ids`"), "{err}");
    let err = open("train_ids = 0")
        .load(SplitKind::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`train`") && err.contains("`train_ids`"), "{err}");
}

#[test]
fn an_unknown_option_is_an_error_naming_the_key() {
    let err = Factory
        .open(None, "images_per_identity = 2")
        .err()
        .expect("unknown key accepted")
        .to_string();
    assert!(err.contains("images_per_identity"), "{err}");
}

#[test]
fn noise_spans_are_exact_and_noise_touches_about_noise_rate_of_train_captions() {
    let noisy = load("", SplitKind::Train);
    let clean = load("noise_rate = 0.0", SplitKind::Train);
    assert_eq!(noisy.captions.len(), clean.captions.len());
    let mut touched = 0;
    let (mut web, mut wrong) = (0, 0);
    for (n, c) in noisy.captions.iter().zip(&clean.captions) {
        assert!(c.noise_spans.is_empty());
        touched += usize::from(!n.noise_spans.is_empty());
        let web_here = n
            .noise_spans
            .iter()
            .filter(|s| WEB_PHRASES.contains(&&n.text[(*s).clone()]))
            .count();
        web += web_here;
        wrong += n.noise_spans.len() - web_here;
        if web_here == n.noise_spans.len() {
            // Web text is inserted into the very caption the clean load has: cutting the
            // spans out gives it back byte for byte.
            assert_eq!(remove_spans(&n.text, &n.noise_spans), c.text);
        } else {
            // A wrong attribute replaces a true one, so the rest of the caption differs.
            assert_ne!(remove_spans(&n.text, &n.noise_spans), c.text);
        }
    }
    // 1600 Bernoulli(0.3) draws: sd ≈ 0.0115, so ±0.05 is over four of them.
    let fraction = touched as f64 / noisy.captions.len() as f64;
    assert!((fraction - 0.3).abs() < 0.05, "noisy fraction {fraction}");
    let share = wrong as f64 / (web + wrong) as f64;
    assert!((share - 0.5).abs() < 0.1, "wrong-attribute share {share}");
}

#[test]
fn test_captions_are_clean_unless_eval_noise_is_set() {
    let test = load("", SplitKind::Test);
    assert!(test.captions.iter().all(|c| c.noise_spans.is_empty()));
    let noisy = load("eval_noise = true\nnoise_rate = 0.5\n", SplitKind::Test);
    assert!(
        noisy
            .captions
            .iter()
            .filter(|c| !c.noise_spans.is_empty())
            .count()
            > 50
    );
    // Noise does not change the images.
    assert_eq!(flatten(&test).0, flatten(&noisy).0);
}

#[test]
fn captions_of_one_identity_differ() {
    let data = load(SMALL, SplitKind::Train);
    for pid in 0..30 {
        let mut texts: Vec<&str> = data
            .captions
            .iter()
            .filter(|c| c.pid == pid)
            .map(|c| c.text.as_str())
            .collect();
        let total = texts.len();
        texts.sort();
        texts.dedup();
        assert!(texts.len() + 1 >= total, "pid {pid}: {texts:?}");
    }
}

/// Mean absolute difference per channel value between two images.
fn distance(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn images_differ_more_between_identities_than_within() {
    let data = load("train_ids = 40\ntest_ids = 1\n", SplitKind::Train);
    let (mut within, mut between) = (Vec::new(), Vec::new());
    for (i, a) in data.images.iter().enumerate() {
        for b in &data.images[i + 1..] {
            let d = distance(pixels(a), pixels(b));
            if a.pid == b.pid {
                within.push(d);
            } else {
                between.push(d);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (within, between) = (mean(&within), mean(&between));
    eprintln!("mean per-value distance: within identity {within:.1}, between identities {between:.1}");
    assert!(
        between > 1.25 * within,
        "within {within:.1}, between {between:.1}"
    );
}

/// The folder cargo builds into (the test binary lives in `<target>/<profile>/deps`).
fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Writes the images of `data` as a PNG grid into `target/<name>`: one block of views per
/// identity, `per_row` blocks per row, each pixel drawn `zoom`×`zoom`.
fn write_sheet(data: &SplitData, per_row: usize, zoom: usize, name: &str) -> std::path::PathBuf {
    let ImageSource::Rgb8 { width, height, .. } = data.images[0].source else {
        unreachable!()
    };
    let (w, h) = (width as usize, height as usize);
    let per_id = data.images.iter().filter(|i| i.pid == data.images[0].pid).count();
    let ids = data.images.len() / per_id;
    let gap = 4;
    let block_w = per_id * (w + 1) + gap;
    let (sheet_w, sheet_h) = (per_row * block_w, ids.div_ceil(per_row) * (h + gap));
    let mut sheet = vec![255u8; sheet_w * zoom * sheet_h * zoom * 3];
    for (n, image) in data.images.iter().enumerate() {
        let (id, view) = (n / per_id, n % per_id);
        let x0 = (id % per_row) * block_w + view * (w + 1);
        let y0 = (id / per_row) * (h + gap);
        for (i, rgb) in pixels(image).chunks(3).enumerate() {
            let (x, y) = (x0 + i % w, y0 + i / w);
            for dy in 0..zoom {
                for dx in 0..zoom {
                    let at = ((y * zoom + dy) * sheet_w * zoom + x * zoom + dx) * 3;
                    sheet[at..at + 3].copy_from_slice(rgb);
                }
            }
        }
    }
    let path = target_dir().join(name);
    std::fs::write(
        &path,
        png::encode_rgb8((sheet_w * zoom) as u32, (sheet_h * zoom) as u32, &sheet),
    )
    .unwrap();
    path
}

/// Sheets and captions for a human to look at, plus the render time per image.
#[test]
fn writes_sample_sheets_and_reports_render_time() {
    let train = load("train_ids = 8\ntest_ids = 1\n", SplitKind::Train);
    let path = write_sheet(&train, 4, 3, "synthetic-persons-sheet.png");
    eprintln!(
        "sample sheet (8 training identities × 4 views at 96×32, 3× zoom): {}",
        path.display()
    );
    // The captions that go with the sheet, noise in [[double brackets]].
    let mut text = String::new();
    for caption in &train.captions {
        let mut marked = caption.text.clone();
        for span in caption.noise_spans.iter().rev() {
            marked.insert_str(span.end, "]]");
            marked.insert_str(span.start, "[[");
        }
        text.push_str(&format!(
            "pid {} image {}: {marked}\n",
            caption.pid, caption.image
        ));
    }
    let path = target_dir().join("synthetic-persons-sheet.txt");
    std::fs::write(&path, text).unwrap();
    eprintln!("its captions: {}", path.display());
    let hires = load(
        "train_ids = 4\ntest_ids = 1\nimages_per_id = 2\nheight = 384\nwidth = 128\n",
        SplitKind::Train,
    );
    let path = write_sheet(&hires, 4, 1, "synthetic-persons-sheet-384.png");
    eprintln!(
        "sample sheet (4 identities × 2 views at 384×128): {}",
        path.display()
    );

    for (height, width) in [(96, 32), (384, 128)] {
        let dataset = open(&format!(
            "train_ids = 50\ntest_ids = 1\nheight = {height}\nwidth = {width}\n"
        ));
        let start = Instant::now();
        let data = dataset.load(SplitKind::Train).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1e3 / data.images.len() as f64;
        eprintln!("{height}×{width}: {ms:.3} ms per image (with its captions)");
    }
}
