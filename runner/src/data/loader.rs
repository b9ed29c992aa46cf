//! The training data path: captions are tokenised once, then each epoch worker threads
//! build batches ahead of the step — decode, augment, mask with the strategy from the
//! scores of the previous epoch, collate — so the step does not wait on data.
//!
//! Every random draw comes from a generator derived from (seed, epoch, sample), so a batch
//! is the same whichever worker builds it and whenever (e.g. after a resume).

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use gadms_plugin::dataset::SplitData;
use gadms_plugin::masking::MaskedCaption;
use gadms_plugin::rng::Rng;
use gadms_plugin::{MaskingStrategy, PluginError};
use tch::Tensor;

use super::images::{decode, train_transform, Augment, ImageError};
use super::tokenizer::Tokenizer;
use crate::model::TextTransformer;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the {split} split is empty; check the dataset's files and options")]
    EmptySplit { split: String },
    #[error("caption {index} (pid {pid}) is empty; fix or drop it in the annotations")]
    EmptyCaption { index: usize, pid: i64 },
    #[error("caption {index} refers to image {image}, but the split has {images} images")]
    DanglingImage {
        index: usize,
        image: usize,
        images: usize,
    },
    #[error(
        "sample {index} (pid {pid}): {source}; replace the file, or set `skip_unreadable = true` on the \
         dataset to drop unreadable images before training"
    )]
    Image {
        index: usize,
        pid: i64,
        #[source]
        source: ImageError,
    },
    #[error("masking caption {index}: {source}")]
    Masking {
        index: usize,
        #[source]
        source: PluginError,
    },
    #[error("a data worker stopped unexpectedly (it panicked); see the message above")]
    WorkerLost,
}

/// A split with its captions tokenised.
pub struct TokenizedSplit {
    pub data: SplitData,
    /// Clean ids per caption, each of the model's context length.
    pub tokens: Vec<Vec<i64>>,
    /// Per caption and position, whether the token lies in a known noise span; `None` when
    /// the dataset marks no noise (every real benchmark).
    pub noise: Option<Vec<Vec<bool>>>,
}

impl TokenizedSplit {
    /// Checks the split and tokenises every caption to `context_length` positions.
    pub fn new(
        split: &str,
        data: SplitData,
        tokenizer: &Tokenizer,
        context_length: usize,
    ) -> Result<Self, DataError> {
        if data.captions.is_empty() || data.images.is_empty() {
            return Err(DataError::EmptySplit { split: split.into() });
        }
        for (index, c) in data.captions.iter().enumerate() {
            if c.text.trim().is_empty() {
                return Err(DataError::EmptyCaption { index, pid: c.pid });
            }
            if c.image >= data.images.len() {
                return Err(DataError::DanglingImage {
                    index,
                    image: c.image,
                    images: data.images.len(),
                });
            }
        }
        let tokenized: Vec<_> = data
            .captions
            .iter()
            .map(|c| tokenizer.tokenize_with_offsets(&c.text, context_length))
            .collect();
        let noise = data.captions.iter().any(|c| !c.noise_spans.is_empty()).then(|| {
            data.captions
                .iter()
                .zip(&tokenized)
                .map(|(c, t)| {
                    let mut flags = vec![false; context_length];
                    for span in &c.noise_spans {
                        t.positions_overlapping(span.clone())
                            .for_each(|p| flags[p] = true);
                    }
                    flags
                })
                .collect()
        });
        let tokens = tokenized.into_iter().map(|t| t.ids).collect();
        Ok(Self { data, tokens, noise })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Every token id of the captions but the padding (0), ascending: what a loss can
    /// restrict its vocabulary to (`LossContext::caption_tokens`).
    pub fn token_ids(&self) -> Vec<i64> {
        let ids: std::collections::BTreeSet<i64> = self
            .tokens
            .iter()
            .flatten()
            .copied()
            .filter(|&id| id != 0)
            .collect();
        ids.into_iter().collect()
    }
}

/// A collated batch on the host.
pub struct HostBatch {
    /// Indices of the captions in the split (the score table's rows).
    pub samples: Vec<usize>,
    pub images: Tensor,
    pub clean: Tensor,
    pub alignment: Tensor,
    /// `(ids, labels, flat label positions)`.
    pub mtp: Option<(Tensor, Tensor, Tensor)>,
    pub pids: Tensor,
}

/// What every worker shares during an epoch.
pub struct EpochData {
    pub split: Arc<TokenizedSplit>,
    pub masking: Arc<dyn MaskingStrategy>,
    /// Score table snapshot taken when the epoch starts, `[N · L]` row-major.
    pub scores: Arc<Vec<f32>>,
    pub image_size: [i64; 2],
    pub augment: Augment,
    pub seed: u64,
    pub epoch: u64,
}

/// Batches of one epoch, in order, built by `workers` threads.
pub struct EpochLoader {
    receivers: Vec<Receiver<Result<HostBatch, DataError>>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    batches: usize,
}

impl EpochLoader {
    /// `order` is the epoch's sample order; it is cut into batches of `batch_size` (the last
    /// one may be smaller, as the reference's `drop_last = false`).
    pub fn spawn(
        data: Arc<EpochData>,
        order: Vec<usize>,
        batch_size: usize,
        workers: usize,
        prefetch: usize,
    ) -> Self {
        let chunks: Arc<Vec<Vec<usize>>> =
            Arc::new(order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect());
        let workers = workers.max(1).min(chunks.len().max(1));
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel(prefetch.max(1));
            let (data, chunks) = (Arc::clone(&data), Arc::clone(&chunks));
            handles.push(std::thread::spawn(move || {
                tch::set_num_threads(1);
                for chunk in chunks.iter().skip(w).step_by(workers) {
                    if tx.send(collate(&data, chunk)).is_err() {
                        return; // the consumer stopped early
                    }
                }
            }));
            receivers.push(rx);
        }
        Self {
            receivers,
            handles,
            next: 0,
            batches: chunks.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.batches
    }

    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }
}

impl Iterator for EpochLoader {
    type Item = Result<HostBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.batches {
            return None;
        }
        let rx = &self.receivers[self.next % self.receivers.len()];
        self.next += 1;
        Some(rx.recv().unwrap_or(Err(DataError::WorkerLost)))
    }
}

impl Drop for EpochLoader {
    fn drop(&mut self) {
        self.receivers.clear(); // unblocks workers waiting to send
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Builds one batch from sample indices.
fn collate(d: &EpochData, samples: &[usize]) -> Result<HostBatch, DataError> {
    let split = &d.split;
    let len = split.tokens[0].len();
    let mut images = Vec::with_capacity(samples.len());
    let mut masked: Vec<MaskedCaption> = Vec::with_capacity(samples.len());
    for &i in samples {
        let caption = &split.data.captions[i];
        let image = &split.data.images[caption.image];
        let pixels = decode(&image.source).map_err(|source| DataError::Image {
            index: i,
            pid: caption.pid,
            source,
        })?;
        let mut rng = Rng::derive(d.seed, &[d.epoch, i as u64, 0]);
        images.push(train_transform(&pixels, d.image_size, &d.augment, &mut rng));
        let mut draws = Rng::derive(d.seed, &[d.epoch, i as u64, 1]);
        let scores = &d.scores[i * len..(i + 1) * len];
        masked.push(
            d.masking
                .mask(&split.tokens[i], scores, &mut draws)
                .map_err(|source| DataError::Masking { index: i, source })?,
        );
    }
    let n = samples.len();
    let mtp = if masked.iter().all(|m| m.mtp.is_some()) && !masked.is_empty() {
        let views: Vec<_> = masked.iter().map(|m| m.mtp.as_ref().expect("checked")).collect();
        let labels = rows(n, len, |k| &views[k].labels);
        let positions: Vec<i64> = views
            .iter()
            .enumerate()
            .flat_map(|(k, v)| {
                v.labels
                    .iter()
                    .enumerate()
                    .filter(|(_, &l)| l != 0)
                    .map(move |(t, _)| (k * len + t) as i64)
            })
            .collect();
        Some((
            rows(n, len, |k| &views[k].ids),
            labels,
            Tensor::from_slice(&positions),
        ))
    } else {
        None
    };
    Ok(HostBatch {
        samples: samples.to_vec(),
        images: Tensor::stack(&images, 0),
        clean: rows(n, len, |k| &split.tokens[samples[k]]),
        // Only the alignment text's EOS feature is used, so it is encoded up to the batch's
        // latest EOS (the clean and MTP texts feed every position to the scorer and decoder).
        alignment: TextTransformer::feature_prefix(&rows(n, len, |k| &masked[k].alignment)),
        mtp,
        pids: Tensor::from_slice(
            &samples
                .iter()
                .map(|&i| split.data.captions[i].pid)
                .collect::<Vec<_>>(),
        ),
    })
}

/// Stacks `n` id rows of length `len` into `[n, len]`.
fn rows<'a>(n: usize, len: usize, row: impl Fn(usize) -> &'a [i64]) -> Tensor {
    let flat: Vec<i64> = (0..n).flat_map(|k| row(k).iter().copied()).collect();
    Tensor::from_slice(&flat).view([n as i64, len as i64])
}
