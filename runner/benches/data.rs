//! Data-pipeline benchmark: images per second per core through the training transform
//! (decode, resize, flip, pad-and-crop, normalise, random erasing) at 384×128, for raw
//! generated pixels and for JPEG bytes, on one thread (the loader's workers each use one).
//! Run with `cargo bench -p gadms --bench data`.

use std::sync::Arc;
use std::time::Instant;

use gadms::data::images::{decode, train_transform, Augment};
use gadms_plugin::dataset::ImageSource;
use gadms_plugin::rng::Rng;

const SIZE: [i64; 2] = [384, 128];
const IMAGES: usize = 200;

/// Smooth colour fields with noise, like photographs rather than flat test patterns, so
/// JPEG does real work.
fn pixels(seed: u64, width: u32, height: u32) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..width * height)
        .flat_map(|i| {
            let (x, y) = ((i % width) as f64, (i / width) as f64);
            let noise = rng.next_f64() * 40.0;
            [
                (128.0 + 100.0 * (x / 17.0).sin() + noise) as u8,
                (128.0 + 100.0 * (y / 23.0).cos() + noise) as u8,
                (128.0 + 60.0 * ((x + y) / 31.0).sin() + noise) as u8,
            ]
        })
        .collect()
}

fn time(label: &str, sources: &[ImageSource]) {
    let aug = Augment::default();
    let mut rng = Rng::new(1);
    let start = Instant::now();
    for s in sources {
        let img = decode(s).expect("bench images decode");
        let _ = train_transform(&img, SIZE, &aug, &mut rng);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label:<34} {:>8.0} images/s per core  ({:.2} ms/image)",
        sources.len() as f64 / secs,
        1e3 * secs / sources.len() as f64
    );
}

fn main() {
    tch::set_num_threads(1);
    let (w, h) = (SIZE[1] as u32, SIZE[0] as u32);
    let raw: Vec<ImageSource> = (0..IMAGES)
        .map(|i| ImageSource::Rgb8 {
            width: w,
            height: h,
            pixels: Arc::from(pixels(i as u64, w, h)),
        })
        .collect();
    let jpeg: Vec<ImageSource> = (0..IMAGES)
        .map(|i| {
            let img = image::RgbImage::from_raw(w, h, pixels(i as u64, w, h)).expect("sizes match");
            let mut bytes = std::io::Cursor::new(Vec::new());
            img.write_to(&mut bytes, image::ImageFormat::Jpeg)
                .expect("JPEG encodes");
            ImageSource::Encoded(Arc::from(bytes.into_inner()))
        })
        .collect();
    // Person crops arrive at about their final size; a larger source also pays the resize.
    let (bw, bh) = (w * 3 / 2, h * 3 / 2);
    let larger: Vec<ImageSource> = (0..IMAGES)
        .map(|i| {
            let img = image::RgbImage::from_raw(bw, bh, pixels(i as u64, bw, bh)).expect("sizes match");
            let mut bytes = std::io::Cursor::new(Vec::new());
            img.write_to(&mut bytes, image::ImageFormat::Jpeg)
                .expect("JPEG encodes");
            ImageSource::Encoded(Arc::from(bytes.into_inner()))
        })
        .collect();
    println!(
        "training transform at {}×{}, 1 thread, {IMAGES} images each",
        SIZE[0], SIZE[1]
    );
    time("raw RGB (generated data)", &raw);
    time("JPEG 384×128", &jpeg);
    time(&format!("JPEG {bh}×{bw} (resized)"), &larger);
}
