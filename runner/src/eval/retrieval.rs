//! Text-to-image retrieval on a held-out split: the gallery images and the query captions
//! are encoded once, in batches, and the similarity is streamed block by block into the
//! metric accumulator, so no [queries × gallery] matrix is ever materialised whole.

use tch::{Device, Kind, Tensor};

use super::metrics::{MetricsError, RetrievalAccumulator, RetrievalMetrics};
use crate::data::images::{decode, eval_transform, ImageError};
use crate::data::loader::TokenizedSplit;
use crate::model::{Clip, TextTransformer};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("gallery image {index} (pid {pid}): {source}")]
    Image {
        index: usize,
        pid: i64,
        #[source]
        source: ImageError,
    },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Queries per similarity block.
const QUERY_BLOCK: usize = 512;

fn normalise(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12)
}

/// Evaluates `clip` on `split` (captions query the split's images).
pub fn evaluate(
    clip: &Clip,
    split: &TokenizedSplit,
    device: Device,
    batch: usize,
) -> Result<RetrievalMetrics, EvalError> {
    tch::no_grad(|| {
        let data = &split.data;
        let size = clip.config.image_size;
        let mut gallery = Vec::new();
        for (chunk_index, chunk) in data.images.chunks(batch.max(1)).enumerate() {
            let imgs = chunk
                .iter()
                .enumerate()
                .map(|(k, im)| {
                    decode(&im.source)
                        .map(|t| eval_transform(&t, size))
                        .map_err(|source| EvalError::Image {
                            index: chunk_index * batch + k,
                            pid: im.pid,
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let feats = clip
                .visual
                .forward(&Tensor::stack(&imgs, 0).to_device(device))
                .select(1, 0);
            gallery.push(normalise(&feats.to_kind(Kind::Float)));
        }
        let gallery = Tensor::cat(&gallery, 0); // [G, E]
        let gallery_pids =
            Tensor::from_slice(&data.images.iter().map(|i| i.pid).collect::<Vec<_>>()).to_device(device);
        let mut acc = RetrievalAccumulator::new(&gallery_pids, 10)?;

        let len = split.tokens[0].len() as i64;
        let query_pids: Vec<i64> = data.captions.iter().map(|c| c.pid).collect();
        for (b, chunk) in split.tokens.chunks(QUERY_BLOCK).enumerate() {
            let flat: Vec<i64> = chunk.iter().flatten().copied().collect();
            let ids = Tensor::from_slice(&flat).view([chunk.len() as i64, len]);
            let texts: Vec<Tensor> = ids
                .split(batch.max(1) as i64, 0)
                .iter()
                .map(|t| {
                    clip.text
                        .encode(&TextTransformer::feature_prefix(t).to_device(device))
                })
                .collect();
            let q = normalise(&Tensor::cat(&texts, 0).to_kind(Kind::Float)); // [q, E]
            let pids = &query_pids[b * QUERY_BLOCK..b * QUERY_BLOCK + chunk.len()];
            acc.add_block(
                &q.matmul(&gallery.tr()),
                &Tensor::from_slice(pids).to_device(device),
            )?;
        }
        Ok(acc.finish()?)
    })
}
