//! Images: decoding, and the reference transforms (method §5.4) as tensor operations.
//!
//! Train: resize to the model's input, horizontal flip (p 0.5), pad 10 px with black and
//! crop back at a random offset, normalise with CLIP's mean/std, then random erasing (p 0.5,
//! area 2–40 %, log-uniform aspect 0.3–3.3, up to 10 attempts) filled with the *mean
//! numbers* after normalisation — the reference's quirk, kept. Test: resize and normalise.

use std::borrow::Cow;
use std::path::PathBuf;

use gadms_plugin::dataset::ImageSource;
use gadms_plugin::rng::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// CLIP's normalisation constants.
pub const MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Parameters of the train-time augmentation (`[train.augment]`); the defaults are the
/// reference's, which were chosen for 384×128 inputs: a small model's 96×32 images may want a
/// smaller `pad` and less erasing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Probability of a horizontal flip.
    pub flip: f64,
    /// Black border added on every side before the random crop back to size, in pixels.
    pub pad: i64,
    /// Probability of random erasing.
    pub erase: f64,
    /// Range of the erased area as a fraction of the image.
    pub erase_area: (f64, f64),
    /// Range of the erased rectangle's aspect ratio (drawn log-uniformly).
    pub erase_ratio: (f64, f64),
}

impl Augment {
    /// Checks the settings; the error names the key under `train.augment` and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let probability = |key: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("`train.augment.{key}` = {p}: a probability, in [0, 1]"))
            }
        };
        probability("flip", self.flip)?;
        probability("erase", self.erase)?;
        if self.pad < 0 {
            return Err(format!("`train.augment.pad` = {}: pixels, at least 0", self.pad));
        }
        let (lo, hi) = self.erase_area;
        if !(0.0 < lo && lo <= hi && hi <= 1.0) {
            return Err(format!(
                "`train.augment.erase_area` = [{lo}, {hi}]: fractions of the image with 0 < low ≤ high ≤ 1"
            ));
        }
        let (lo, hi) = self.erase_ratio;
        if !(0.0 < lo && lo <= hi && hi.is_finite()) {
            return Err(format!(
                "`train.augment.erase_ratio` = [{lo}, {hi}]: aspect ratios with 0 < low ≤ high"
            ));
        }
        Ok(())
    }
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            flip: 0.5,
            pad: 10,
            erase: 0.5,
            erase_area: (0.02, 0.4),
            erase_ratio: (0.3, 3.3),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: cannot decode image: {message}")]
    Decode { what: String, message: String },
    #[error("{}: cannot read image: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {width}×{height} RGB image needs {expected} bytes, got {found}")]
    Size {
        what: String,
        width: u32,
        height: u32,
        expected: usize,
        found: usize,
    },
}

/// Decodes an image to `[3, H, W]` float in [0, 1].
pub fn decode(source: &ImageSource) -> Result<Tensor, ImageError> {
    let (pixels, width, height) = decode_rgb8(source)?;
    Ok(from_rgb8(&pixels, width, height))
}

/// Decodes an image to RGB8 pixels with its width and height — all a check of whether it
/// is readable needs (`data::screen`), without the float conversion.
pub fn decode_rgb8(source: &ImageSource) -> Result<(Cow<'_, [u8]>, u32, u32), ImageError> {
    let rgb = match source {
        ImageSource::Rgb8 {
            width,
            height,
            pixels,
        } => {
            let expected = (*width as usize) * (*height as usize) * 3;
            if pixels.len() != expected {
                return Err(ImageError::Size {
                    what: "generated image".into(),
                    width: *width,
                    height: *height,
                    expected,
                    found: pixels.len(),
                });
            }
            return Ok((Cow::Borrowed(&pixels[..]), *width, *height));
        }
        ImageSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
                path: path.clone(),
                source,
            })?;
            decode_bytes(&bytes, &path.display().to_string())?
        }
        ImageSource::Encoded(bytes) => decode_bytes(bytes, "embedded image")?,
    };
    let (width, height) = rgb.dimensions();
    Ok((Cow::Owned(rgb.into_raw()), width, height))
}

fn decode_bytes(bytes: &[u8], what: &str) -> Result<image::RgbImage, ImageError> {
    image::load_from_memory(bytes)
        .map(|img| img.to_rgb8())
        .map_err(|e| ImageError::Decode {
            what: what.to_string(),
            message: e.to_string(),
        })
}

fn from_rgb8(pixels: &[u8], width: u32, height: u32) -> Tensor {
    Tensor::from_slice(pixels)
        .view([height as i64, width as i64, 3])
        .permute([2, 0, 1])
        .to_kind(Kind::Float)
        / 255.0
}

/// Resizes `[3, h, w]` to `[3, H, W]` like PIL's `Image.resize(..., BILINEAR)`, which the
/// reference's `T.Resize` runs: a triangle filter whose support widens with the shrink
/// factor, so shrinking averages every source pixel instead of sampling a few (plain
/// bilinear on a 700×250 → 384×128 shrink misses PIL by up to ~140 of 255 levels), and
/// plain bilinear with pixel centres at +0.5 when enlarging. No-op when the size matches.
fn resize(img: &Tensor, size: [i64; 2]) -> Tensor {
    let s = img.size();
    if s[1] == size[0] && s[2] == size[1] {
        return img.shallow_clone();
    }
    img.unsqueeze(0)
        .internal_upsample_bilinear2d_aa(size, false, None, None)
        .squeeze_dim(0)
}

fn normalise(img: &Tensor) -> Tensor {
    let mean = Tensor::from_slice(&MEAN).to_kind(Kind::Float).view([3, 1, 1]);
    let std = Tensor::from_slice(&STD).to_kind(Kind::Float).view([3, 1, 1]);
    (img - mean) / std
}

/// The evaluation transform: `[3, h, w]` in [0, 1] → normalised `[3, H, W]`.
pub fn eval_transform(img: &Tensor, size: [i64; 2]) -> Tensor {
    normalise(&resize(img, size))
}

/// The training transform, drawing from `rng`.
pub fn train_transform(img: &Tensor, size: [i64; 2], aug: &Augment, rng: &mut Rng) -> Tensor {
    let [h, w] = size;
    let mut x = resize(img, size);
    if rng.next_f64() < aug.flip {
        x = x.flip([2]);
    }
    if aug.pad > 0 {
        let p = aug.pad;
        let padded = x.constant_pad_nd([p, p, p, p]);
        let top = rng.below((2 * p + 1) as u64) as i64;
        let left = rng.below((2 * p + 1) as u64) as i64;
        x = padded.narrow(1, top, h).narrow(2, left, w);
    }
    let x = normalise(&x);
    if rng.next_f64() < aug.erase {
        erase(&x, aug, rng);
    }
    x
}

/// torchvision's RandomErasing with `value` = the mean numbers (written after
/// normalisation, so the patch is not the mean colour).
fn erase(x: &Tensor, aug: &Augment, rng: &mut Rng) {
    let (_, h, w) = x.size3().unwrap();
    let area = (h * w) as f64;
    let (lo, hi) = (aug.erase_ratio.0.ln(), aug.erase_ratio.1.ln());
    for _ in 0..10 {
        let target = area * (aug.erase_area.0 + rng.next_f64() * (aug.erase_area.1 - aug.erase_area.0));
        let ratio = (lo + rng.next_f64() * (hi - lo)).exp();
        let eh = (target * ratio).sqrt().round() as i64;
        let ew = (target / ratio).sqrt().round() as i64;
        if eh < h && ew < w && eh > 0 && ew > 0 {
            let top = rng.below((h - eh + 1) as u64) as i64;
            let left = rng.below((w - ew + 1) as u64) as i64;
            for (c, m) in MEAN.iter().enumerate() {
                let _ = x.get(c as i64).narrow(0, top, eh).narrow(1, left, ew).fill_(*m);
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn checker(w: u32, h: u32) -> ImageSource {
        let pixels: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                if (i % w + i / w).is_multiple_of(2) {
                    [255, 0, 0]
                } else {
                    [0, 0, 255]
                }
            })
            .collect();
        ImageSource::Rgb8 {
            width: w,
            height: h,
            pixels: Arc::from(pixels),
        }
    }

    #[test]
    fn decode_resize_and_normalise() {
        let img = decode(&checker(4, 6)).unwrap();
        assert_eq!(img.size(), [3, 6, 4]);
        assert_eq!(img.double_value(&[0, 0, 0]), 1.0);
        let x = eval_transform(&img, [12, 8]);
        assert_eq!(x.size(), [3, 12, 8]);
        let red_at_origin = x.double_value(&[0, 0, 0]);
        assert!(
            (red_at_origin - (1.0 - MEAN[0]) / STD[0]).abs() < 1e-5,
            "{red_at_origin}"
        );
    }

    #[test]
    fn train_transform_is_deterministic_per_rng_and_keeps_the_shape() {
        let img = decode(&checker(32, 96)).unwrap();
        let a = train_transform(&img, [96, 32], &Augment::default(), &mut Rng::new(3));
        let b = train_transform(&img, [96, 32], &Augment::default(), &mut Rng::new(3));
        assert_eq!(a.size(), [3, 96, 32]);
        assert!(a.equal(&b));
    }

    /// The model input of the tests, `[height, width]`.
    const SIZE: [i64; 2] = [96, 32];

    /// RGB noise of [`SIZE`] (so resizing does nothing), in [0, 1] as [`decode`] gives it.
    fn noise() -> Tensor {
        let [h, w] = SIZE;
        let mut rng = Rng::new(11);
        let pixels: Vec<u8> = (0..h * w * 3).map(|_| rng.below(256) as u8).collect();
        from_rgb8(&pixels, w as u32, h as u32)
    }

    /// Only the augmentation `on` sets, every other one off.
    fn only(on: impl FnOnce(&mut Augment)) -> Augment {
        let mut aug = Augment {
            flip: 0.0,
            pad: 0,
            erase: 0.0,
            ..Augment::default()
        };
        on(&mut aug);
        aug
    }

    #[test]
    fn with_everything_off_training_sees_the_eval_image() {
        let img = noise();
        let out = train_transform(&img, SIZE, &only(|_| {}), &mut Rng::new(1));
        assert!(out.equal(&eval_transform(&img, SIZE)));
    }

    #[test]
    fn a_flip_mirrors_the_eval_image_along_its_width() {
        let img = noise();
        let eval = eval_transform(&img, SIZE);
        let out = train_transform(&img, SIZE, &only(|a| a.flip = 1.0), &mut Rng::new(1));
        assert!(out.equal(&eval.flip([2])));
        assert!(!out.equal(&eval), "the noise image is not symmetric");
    }

    /// The offset `(top, left)` of the one window of `padded` equal to `out`.
    fn window_of(out: &Tensor, padded: &Tensor, pad: i64) -> (i64, i64) {
        let [h, w] = SIZE;
        let offsets = 0..=2 * pad;
        let matches: Vec<(i64, i64)> = offsets
            .clone()
            .flat_map(|top| offsets.clone().map(move |left| (top, left)))
            .filter(|&(top, left)| out.equal(&padded.narrow(1, top, h).narrow(2, left, w)))
            .collect();
        assert_eq!(matches.len(), 1, "windows equal to the output: {matches:?}");
        matches[0]
    }

    #[test]
    fn pad_and_crop_is_a_shifted_window_of_the_black_padded_image() {
        let pad = 4;
        let img = noise();
        // Black (0) borders, normalised like the image: the border is -mean/std.
        let padded = normalise(&img.constant_pad_nd([pad, pad, pad, pad]));
        let aug = only(|a| a.pad = pad);
        let offsets: std::collections::BTreeSet<(i64, i64)> = (0..24)
            .map(|seed| {
                let out = train_transform(&img, SIZE, &aug, &mut Rng::new(seed));
                window_of(&out, &padded, pad)
            })
            .collect();
        assert!(
            offsets.len() > 8 && offsets.iter().any(|&(top, left)| top != pad && left != pad),
            "crops land all over the padded image: {offsets:?}"
        );
    }

    #[test]
    fn erasing_fills_one_rectangle_of_the_set_area_with_the_mean_numbers() {
        let img = noise();
        let eval = eval_transform(&img, SIZE);
        let (lo, hi) = (0.1, 0.2);
        let aug = only(|a| {
            a.erase = 1.0;
            a.erase_area = (lo, hi);
            a.erase_ratio = (1.0, 2.0);
        });
        let [h, w] = SIZE;
        for seed in 0..8 {
            let out = train_transform(&img, SIZE, &aug, &mut Rng::new(seed));
            let changed = out.ne_tensor(&eval).any_dim(0, false); // [H, W]
            let at = Vec::<i64>::try_from(changed.nonzero().reshape([-1])).unwrap();
            assert!(!at.is_empty(), "seed {seed}: nothing erased");
            let (rows, cols): (Vec<i64>, Vec<i64>) = at.chunks(2).map(|p| (p[0], p[1])).unzip();
            let (top, left) = (*rows.iter().min().unwrap(), *cols.iter().min().unwrap());
            let eh = rows.iter().max().unwrap() - top + 1;
            let ew = cols.iter().max().unwrap() - left + 1;
            let fraction = (eh * ew) as f64 / (h * w) as f64;
            // The sides are rounded from the drawn area, which moves it by a few percent.
            assert!(
                (0.9 * lo..=1.1 * hi).contains(&fraction),
                "seed {seed}: {eh}×{ew} erased"
            );
            let patch = out.narrow(1, top, eh).narrow(2, left, ew);
            let mean = Tensor::from_slice(&MEAN).to_kind(Kind::Float).view([3, 1, 1]);
            assert!(
                patch.equal(&mean.expand_as(&patch)),
                "seed {seed}: not the mean numbers"
            );
            let outside = Tensor::ones([h, w], (Kind::Bool, tch::Device::Cpu));
            let _ = outside.narrow(0, top, eh).narrow(1, left, ew).fill_(0);
            assert!(
                out.masked_select(&outside).equal(&eval.masked_select(&outside)),
                "seed {seed}: a pixel outside the rectangle changed"
            );
        }
    }

    #[test]
    fn a_wrong_pixel_count_and_a_corrupt_file_are_errors() {
        let bad = ImageSource::Rgb8 {
            width: 4,
            height: 4,
            pixels: Arc::from(vec![0u8; 5]),
        };
        assert!(decode(&bad).unwrap_err().to_string().contains("needs 48 bytes"));
        let corrupt = ImageSource::Encoded(Arc::from(b"not an image".to_vec()));
        assert!(decode(&corrupt)
            .unwrap_err()
            .to_string()
            .contains("cannot decode"));
    }
}
