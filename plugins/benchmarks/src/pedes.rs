//! CUHK-PEDES, ICFG-PEDES and RSTPReid: one loader, parameterised by where each keeps its
//! files, what it calls the image path and how it numbers training identities.
//!
//! Each annotation file is a JSON list with one object per image (method spec §7.2):
//! `split` ("train", "test", anything else is val), `id`, the image path and `captions`.
//! The reference's rules, kept:
//!
//! - train: the split's images in file order, each caption a sample of its image; pid is
//!   `id − 1` for CUHK-PEDES and `id` for the others, and the pids must be exactly
//!   `0..N` (the identity classifier's classes);
//! - test and val: images in file order as the gallery, their captions in the same order as
//!   the queries; pid is the raw `id`.
//!
//! `root` is the reference's `--root_dir`, the folder that contains `CUHK-PEDES/` (or
//! `ICFG-PEDES/`, `RSTPReid/`), or that benchmark folder itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gadms_plugin::dataset::{CaptionRecord, ImageRecord, ImageSource, SplitData, SplitKind};
use gadms_plugin::{parse_options, Dataset, DatasetFactory, PluginError, Result};
use serde::Deserialize;

use crate::annotations;
use crate::images::ImageFiles;
use crate::options::PedesOptions;

/// What sets one benchmark apart from the others.
#[derive(Debug)]
pub struct Benchmark {
    pub name: &'static str,
    pub description: &'static str,
    /// The benchmark's folder under the root.
    pub folder: &'static str,
    /// The annotation file in that folder.
    pub annotations: &'static str,
    pub image_field: ImageField,
    /// Subtracted from `id` to give a training pid.
    pub train_pid_offset: i64,
}

pub const BENCHMARKS: [Benchmark; 3] = [
    Benchmark {
        name: "cuhk-pedes",
        description: "CUHK-PEDES (CUHK-PEDES/reid_raw.json); train, val, test",
        folder: "CUHK-PEDES",
        annotations: "reid_raw.json",
        image_field: ImageField::FilePath,
        train_pid_offset: 1,
    },
    Benchmark {
        name: "icfg-pedes",
        description: "ICFG-PEDES (ICFG-PEDES/ICFG-PEDES.json); train, test",
        folder: "ICFG-PEDES",
        // IRRA's README says `ICFG_PEDES.json`; its code, followed here, opens this name.
        annotations: "ICFG-PEDES.json",
        image_field: ImageField::FilePath,
        train_pid_offset: 0,
    },
    Benchmark {
        name: "rstpreid",
        description: "RSTPReid (RSTPReid/data_captions.json); train, val, test",
        folder: "RSTPReid",
        annotations: "data_captions.json",
        image_field: ImageField::ImgPath,
        train_pid_offset: 0,
    },
];

/// The record field that holds the image path, relative to the benchmark's `imgs/`.
#[derive(Debug, Clone, Copy)]
pub enum ImageField {
    FilePath,
    ImgPath,
}

impl ImageField {
    fn name(self) -> &'static str {
        match self {
            Self::FilePath => "file_path",
            Self::ImgPath => "img_path",
        }
    }

    fn get(self, record: &Record) -> Option<&str> {
        match self {
            Self::FilePath => record.file_path.as_deref(),
            Self::ImgPath => record.img_path.as_deref(),
        }
    }
}

/// One image of an annotation file; other fields (`processed_tokens`) are ignored.
#[derive(Debug, Deserialize)]
struct Record {
    split: String,
    id: i64,
    captions: Vec<String>,
    file_path: Option<String>,
    img_path: Option<String>,
}

/// The reference's split rule: "train", "test", and every other value is val.
fn split_of(value: &str) -> SplitKind {
    match value {
        "train" => SplitKind::Train,
        "test" => SplitKind::Test,
        _ => SplitKind::Val,
    }
}

pub struct Factory(pub &'static Benchmark);

impl DatasetFactory for Factory {
    fn open(&self, root: Option<&Path>, options: &str) -> Result<Box<dyn Dataset>> {
        let benchmark = self.0;
        let options: PedesOptions = parse_options(benchmark.name, options)?;
        let folder = benchmark.locate(root)?;
        Ok(Box::new(Pedes {
            benchmark,
            annotations: folder.join(benchmark.annotations),
            images: folder.join("imgs"),
            options,
        }))
    }
}

impl Benchmark {
    /// The benchmark folder: `<root>/<folder>` when it exists, else `root` itself when it
    /// holds the annotation file. Checks that the annotation file and `imgs/` exist, as the
    /// reference does before reading anything.
    fn locate(&self, root: Option<&Path>) -> Result<PathBuf> {
        let Some(root) = root else {
            return Err(PluginError::Options {
                component: self.name.into(),
                message: format!(
                    "no `root` given; set it to the folder that contains {}/ (or to {0}/ itself)",
                    self.folder
                ),
            });
        };
        let root = std::path::absolute(root).map_err(|e| PluginError::File {
            path: root.into(),
            message: e.to_string(),
        })?;
        if !root.is_dir() {
            return Err(PluginError::File {
                path: root,
                message: format!(
                    "dataset root is not a folder; set `root` to the folder that contains {}/",
                    self.folder
                ),
            });
        }
        let nested = root.join(self.folder);
        let folder = if nested.is_dir() || !root.join(self.annotations).is_file() {
            nested
        } else {
            root
        };
        let annotations = folder.join(self.annotations);
        if !annotations.is_file() {
            return Err(PluginError::File {
                path: annotations,
                message: format!(
                    "missing {} annotation file; `root` must be the folder that contains \
                     {}/ (or {1}/ itself) with {} and imgs/ inside",
                    self.name, self.folder, self.annotations
                ),
            });
        }
        let images = folder.join("imgs");
        if !images.is_dir() {
            return Err(PluginError::File {
                path: images,
                message: format!(
                    "missing image folder; {}'s images belong in imgs/ next to {}",
                    self.name, self.annotations
                ),
            });
        }
        Ok(folder)
    }

    fn pid(&self, split: SplitKind, id: i64) -> i64 {
        match split {
            SplitKind::Train => id - self.train_pid_offset,
            SplitKind::Val | SplitKind::Test => id,
        }
    }

    fn pid_rule(&self) -> String {
        match self.train_pid_offset {
            0 => "train pid = id".into(),
            offset => format!("train pid = id − {offset}"),
        }
    }
}

struct Pedes {
    benchmark: &'static Benchmark,
    annotations: PathBuf,
    images: PathBuf,
    options: PedesOptions,
}

impl Pedes {
    fn error(&self, message: String) -> PluginError {
        PluginError::File {
            path: self.annotations.clone(),
            message,
        }
    }

    /// The reference asserts that training pids are `0..N` with none left out, since they
    /// index the identity classifier.
    fn check_train_pids(&self, images: &[ImageRecord]) -> Result<()> {
        let pids: BTreeSet<i64> = images.iter().map(|i| i.pid).collect();
        let gap = (0..).zip(&pids).find(|&(want, &got)| want != got);
        let Some((want, &got)) = gap else {
            return Ok(());
        };
        let problem = if got < 0 {
            format!("pid {got} is negative")
        } else {
            format!("pid {want} is missing")
        };
        Err(self.error(format!(
            "train pids must be exactly 0..{} ({}), but {problem}; the training records \
             must number their identities without gaps",
            pids.len(),
            self.benchmark.pid_rule()
        )))
    }
}

impl Dataset for Pedes {
    /// The annotation file holds every record of every split.
    fn source_files(&self) -> Vec<PathBuf> {
        vec![self.annotations.clone()]
    }

    fn load(&self, split: SplitKind) -> Result<SplitData> {
        let records: Vec<Record> = annotations::read_list(&self.annotations)?;
        let mut files = ImageFiles::new(&self.images, &self.annotations, self.options.skip_missing);
        let mut data = SplitData::default();
        let field = self.benchmark.image_field;
        for (index, record) in records.iter().enumerate() {
            if split_of(&record.split) != split {
                continue;
            }
            let relative = field
                .get(record)
                .ok_or_else(|| self.error(format!("record {index}: missing field `{}`", field.name())))?;
            let Some(path) = files.resolve(index, relative)? else {
                continue;
            };
            let pid = self.benchmark.pid(split, record.id);
            let image = data.images.len();
            data.images.push(ImageRecord {
                pid,
                source: ImageSource::File(path),
            });
            for (number, text) in record.captions.iter().enumerate() {
                if text.trim().is_empty() {
                    return Err(self.error(format!(
                        "record {index}: caption {number} is empty; fix or remove it"
                    )));
                }
                data.captions.push(CaptionRecord {
                    pid,
                    image,
                    text: text.clone(),
                    noise_spans: Vec::new(),
                });
            }
        }
        files.report_skipped(self.benchmark.name, split);
        if data.images.is_empty() {
            let which = match split {
                SplitKind::Train | SplitKind::Test => format!("`split` = \"{}\"", split.as_str()),
                SplitKind::Val => "a `split` other than \"train\" and \"test\"".into(),
            };
            return Err(self.error(format!(
                "the `{}` split is empty: no record with {which} has an image",
                split.as_str()
            )));
        }
        if split == SplitKind::Train {
            self.check_train_pids(&data.images)?;
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests;
