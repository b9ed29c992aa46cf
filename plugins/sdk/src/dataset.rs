//! Dataset plugins: they know a benchmark's files and rules (splits, pids, image ids) and
//! hand the runner plain records. Decoding, augmentation, tokenisation and batching belong
//! to the runner, so every dataset gets the same pipeline.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Result;

/// Which part of a benchmark to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitKind {
    Train,
    Val,
    Test,
}

impl SplitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }
}

/// Where an image's pixels come from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// A JPEG or PNG file (already resolved against the dataset root).
    File(PathBuf),
    /// Encoded JPEG/PNG bytes, e.g. from a parquet shard.
    Encoded(Arc<[u8]>),
    /// Raw RGB8 pixels, row-major, as a generator renders them.
    Rgb8 {
        width: u32,
        height: u32,
        pixels: Arc<[u8]>,
    },
}

/// One gallery image.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// Person identity, in `0..num_ids` for training splits.
    pub pid: i64,
    pub source: ImageSource,
}

/// One caption of one image.
#[derive(Debug, Clone)]
pub struct CaptionRecord {
    pub pid: i64,
    /// Index into [`SplitData::images`].
    pub image: usize,
    pub text: String,
    /// Byte ranges of `text` known to be noise (synthetic data only; empty otherwise). The
    /// runner maps them to token positions to measure how well a scorer finds noise, and an
    /// oracle masking ([`crate::masking::MaskingStrategy::noise_label_scores`]) masks them.
    pub noise_spans: Vec<Range<usize>>,
}

/// A loaded split: images and the captions that describe them. Training iterates over
/// captions (one record per caption, as the reference does); evaluation queries with the
/// captions against the gallery of images.
#[derive(Debug, Clone, Default)]
pub struct SplitData {
    pub images: Vec<ImageRecord>,
    pub captions: Vec<CaptionRecord>,
}

/// An opened dataset.
pub trait Dataset: Send + Sync {
    /// Loads one split. An empty or missing split is an error naming the split and the file.
    fn load(&self, split: SplitKind) -> Result<SplitData>;

    /// The files whose contents define this dataset's records (annotation files, never
    /// images); the runner digests them into a run's identity. Generated datasets have none.
    ///
    /// Fixed once the dataset is open: the SDK reads it right after
    /// [`DatasetFactory::open`] and answers later calls from that; a panic here fails the
    /// opening (a [`crate::PluginError::Panic`] naming the method).
    fn source_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// Whether [`CaptionRecord::noise_spans`] are complete labels: every noise phrase of every
    /// caption is marked, so a caption without spans is known to be clean (a generator that
    /// injects the noise itself knows it). An oracle masking needs such labels; a benchmark
    /// whose noise nobody marked keeps the default `false`, and a run that asks for an oracle
    /// on it is refused before training.
    ///
    /// Fixed once the dataset is open, like [`Self::source_files`].
    fn labels_noise(&self) -> bool {
        false
    }
}

/// Creates datasets from a root folder (absent for generated data) and TOML options.
pub trait DatasetFactory: Send + Sync {
    fn open(&self, root: Option<&Path>, options: &str) -> Result<Box<dyn Dataset>>;
}
