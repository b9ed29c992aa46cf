//! WebPerson, the pre-training corpus (method spec §7.4), in the layout the reference reads:
//! `<root>/<annotations>`, a JSON list of objects mapping an image path (relative to
//! `<root>/images/`) to `{"caption1", "caption2"}`, and the images under `<root>/images/`.
//!
//! The reference's record rules, kept: captions lose every literal "/n"; image paths are
//! sorted; each image gives two samples, caption1 then caption2, and every sample is its own
//! image entry (image index = sample index), which is what keys the score table by sample.
//! Both captions of an image share one pid, as the reference's loader gives them (it reads
//! its pid counter once per image, method spec §7.4), so SDM counts them as each other's
//! positives. Everything is `train`.
//!
//! The pids are dense, 0 for the first image kept, 1 for the next, where the reference's are
//! 0, 2, 4, … (its counter advances per caption): the ID classifier is sized by the largest
//! pid, so gaps would waste half its rows; SDM and every grouping by pid only compare pids for
//! equality, which dense numbering leaves as the reference has it.
//!
//! The Hugging Face release (parquet shards under `data/`) is read through
//! `gadms-run dataset convert webperson --from <download> --root <root>`, which writes this
//! layout once: converting costs less than decoding parquet on every load, and keeps a
//! parquet dependency out of the plugin.

use std::fmt;
use std::path::{Path, PathBuf};

use gadms_plugin::dataset::{CaptionRecord, ImageRecord, ImageSource, SplitData, SplitKind};
use gadms_plugin::{Dataset, DatasetFactory, PluginError, Result};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::annotations;
use crate::images::ImageFiles;
use crate::options::WebPersonOptions;

pub const NAME: &str = "webperson";

/// The two captions of an image; other fields are ignored.
#[derive(Debug, Deserialize)]
struct Captions {
    caption1: String,
    caption2: String,
}

/// One object of the list: its (image path, captions) entries, in file order. Read as a
/// plain vector because a map per object costs hundreds of bytes for millions of objects.
struct Item(Vec<(String, Captions)>);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping image paths to {caption1, caption2}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(1));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Item(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

pub struct Factory;

impl DatasetFactory for Factory {
    fn open(&self, root: Option<&Path>, options: &str) -> Result<Box<dyn Dataset>> {
        let options = WebPersonOptions::parse(NAME, options)?;
        let root = root.ok_or_else(|| PluginError::Options {
            component: NAME.into(),
            message: "no `root` given; set it to the folder with images/ and the annotation file".into(),
        })?;
        let root = std::path::absolute(root).map_err(|e| PluginError::File {
            path: root.into(),
            message: e.to_string(),
        })?;
        if !root.is_dir() {
            return Err(PluginError::File {
                path: root,
                message: "dataset root is not a folder; set `root` to the folder with images/ \
                          and the annotation file"
                    .into(),
            });
        }
        let annotations = root.join(&options.annotations);
        if !annotations.is_file() {
            return Err(missing_annotations(&root, &options.annotations, annotations));
        }
        let images = root.join("images");
        if !images.is_dir() {
            return Err(PluginError::File {
                path: images,
                message: "missing image folder; WebPerson's images belong in images/ under the root".into(),
            });
        }
        Ok(Box::new(WebPerson {
            annotations,
            images,
            options,
        }))
    }
}

/// Explains what to do, telling the unconverted Hugging Face release apart.
fn missing_annotations(root: &Path, name: &str, annotations: PathBuf) -> PluginError {
    let shards = std::fs::read_dir(root.join("data")).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".parquet")))
    });
    let message = if shards {
        // The command writes the file this dataset's options name.
        let option = if name == WebPersonOptions::default().annotations {
            String::new()
        } else {
            format!(" --annotations {name}")
        };
        format!(
            "missing annotation file; {root} holds the Hugging Face release (data/*.parquet), which \
             this plugin reads once converted: run `gadms-run dataset convert webperson --from {root} \
             --root {root}{option}` (it writes images/ and {name} beside data/; the shards can go \
             afterwards)",
            root = root.display(),
        )
    } else {
        "missing annotation file; set option `annotations` to the JSON's name under the root \
         (the reference's 1 M-image file is `100w.json`)"
            .into()
    };
    PluginError::File {
        path: annotations,
        message,
    }
}

struct WebPerson {
    annotations: PathBuf,
    images: PathBuf,
    options: WebPersonOptions,
}

impl Dataset for WebPerson {
    /// The annotation file lists every image and caption.
    fn source_files(&self) -> Vec<PathBuf> {
        vec![self.annotations.clone()]
    }

    fn load(&self, split: SplitKind) -> Result<SplitData> {
        if split != SplitKind::Train {
            return Err(PluginError::Data(format!(
                "{NAME} has only a train split, `{}` was requested; evaluate on another dataset",
                split.as_str()
            )));
        }
        let items: Vec<Item> = annotations::read_list(&self.annotations)?;
        // (record index, image path, captions), sorted by path as the reference sorts.
        let mut entries: Vec<(usize, String, Captions)> = items
            .into_iter()
            .enumerate()
            .flat_map(|(index, item)| item.0.into_iter().map(move |(path, c)| (index, path, c)))
            .collect();
        entries.sort_by(|a, b| a.1.cmp(&b.1));

        let mut files = ImageFiles::new(&self.images, &self.annotations, self.options.skip_missing);
        let mut data = SplitData::default();
        let limit = self.options.limit.unwrap_or(usize::MAX);
        let mut kept = 0;
        for (index, relative, captions) in entries {
            if kept == limit {
                break;
            }
            let Some(path) = files.resolve(index, &relative)? else {
                continue;
            };
            // Dense per image (see the module doc): the images kept before this one.
            let pid = kept as i64;
            kept += 1;
            for (field, text) in [("caption1", captions.caption1), ("caption2", captions.caption2)] {
                let text = text.replace("/n", "");
                if text.trim().is_empty() {
                    return Err(PluginError::File {
                        path: self.annotations.clone(),
                        message: format!(
                            "record {index}: `{field}` of `{relative}` is empty; fix or remove it"
                        ),
                    });
                }
                let sample = data.captions.len();
                data.images.push(ImageRecord {
                    pid,
                    source: ImageSource::File(path.clone()),
                });
                data.captions.push(CaptionRecord {
                    pid,
                    image: sample,
                    text,
                    noise_spans: Vec::new(),
                });
            }
        }
        files.report_skipped(NAME, split);
        if data.captions.is_empty() {
            return Err(PluginError::File {
                path: self.annotations.clone(),
                message: "the `train` split is empty: no record lists an image (or, with \
                          `skip_missing`, one whose file exists)"
                    .into(),
            });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests;
