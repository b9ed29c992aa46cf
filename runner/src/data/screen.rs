//! Opt-in screening of a split's images before a run uses them (`skip_unreadable = true`
//! in a dataset's table). Every image is decoded once, on several threads; images that are
//! missing or do not decode are dropped together with their captions, and counted. Web-scale
//! data always has a few bad files, and finding one hours into an epoch is worse than a
//! minute of checking up front. Without the option a bad image stops the run with an error
//! that names the sample.

use gadms_plugin::dataset::SplitData;

use super::images::{decode_rgb8, ImageError};

/// What screening removed.
#[derive(Debug)]
pub struct Dropped {
    /// Each unreadable image (its index in the split as loaded) with the reason.
    pub images: Vec<(usize, ImageError)>,
    /// Captions dropped with them.
    pub captions: usize,
}

/// Decodes every image of `data` on `threads` threads and keeps the readable ones.
pub fn drop_unreadable(data: SplitData, threads: usize) -> (SplitData, Dropped) {
    let threads = threads.max(1);
    let chunk = data.images.len().div_ceil(threads).max(1);
    let mut failed: Vec<(usize, ImageError)> = std::thread::scope(|s| {
        let workers: Vec<_> = data
            .images
            .chunks(chunk)
            .enumerate()
            .map(|(c, images)| {
                s.spawn(move || {
                    images
                        .iter()
                        .enumerate()
                        .filter_map(|(i, image)| decode_rgb8(&image.source).err().map(|e| (c * chunk + i, e)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an image check panicked"))
            .collect()
    });
    failed.sort_by_key(|(i, _)| *i);
    if failed.is_empty() {
        return (
            data,
            Dropped {
                images: failed,
                captions: 0,
            },
        );
    }
    // New index of every kept image.
    let mut bad = vec![false; data.images.len()];
    failed.iter().for_each(|(i, _)| bad[*i] = true);
    let mut new_index = vec![usize::MAX; data.images.len()];
    let images: Vec<_> = data
        .images
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !bad[*i])
        .enumerate()
        .map(|(new, (old, image))| {
            new_index[old] = new;
            image
        })
        .collect();
    let before = data.captions.len();
    let captions: Vec<_> = data
        .captions
        .into_iter()
        .filter(|c| !bad[c.image])
        .map(|mut c| {
            c.image = new_index[c.image];
            c
        })
        .collect();
    let dropped = Dropped {
        captions: before - captions.len(),
        images: failed,
    };
    (SplitData { images, captions }, dropped)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gadms_plugin::dataset::{CaptionRecord, ImageRecord, ImageSource};

    use super::*;

    fn image(ok: bool) -> ImageRecord {
        let pixels: Arc<[u8]> = vec![128u8; if ok { 2 * 2 * 3 } else { 5 }].into();
        ImageRecord {
            pid: 0,
            source: ImageSource::Rgb8 {
                width: 2,
                height: 2,
                pixels,
            },
        }
    }

    fn caption(image: usize) -> CaptionRecord {
        CaptionRecord {
            pid: 0,
            image,
            text: format!("caption of image {image}"),
            noise_spans: Vec::new(),
        }
    }

    #[test]
    fn unreadable_images_go_with_their_captions_and_indices_are_remapped() {
        let data = SplitData {
            images: vec![image(true), image(false), image(true), image(false), image(true)],
            captions: (0..5).flat_map(|i| [caption(i), caption(i)]).collect(),
        };
        let (kept, dropped) = drop_unreadable(data, 2);
        assert_eq!(dropped.images.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(dropped.captions, 4);
        assert_eq!(kept.images.len(), 3);
        assert_eq!(
            kept.captions
                .iter()
                .map(|c| (c.image, c.text.as_str()))
                .collect::<Vec<_>>(),
            [
                (0, "caption of image 0"),
                (0, "caption of image 0"),
                (1, "caption of image 2"),
                (1, "caption of image 2"),
                (2, "caption of image 4"),
                (2, "caption of image 4"),
            ]
        );
    }
}
