//! Text-to-image retrieval on a held-out split: the gallery images and the query captions
//! are encoded once, in batches, and the similarity is streamed block by block into the
//! metric accumulator, so no [queries × gallery] matrix is ever materialised whole. The
//! same features give the collapse diagnostic ([`FeatureCosines`]).

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

/// The mean cosine between the features of two different items, per modality, of one
/// evaluation: near 1 when an encoder maps every input to nearly one direction (collapse,
/// which retrieval then cannot separate), far below for spread features. `None` for a set of
/// fewer than two items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureCosines {
    /// Over the gallery images.
    pub image: Option<f64>,
    /// Over the query captions.
    pub text: Option<f64>,
}

impl FeatureCosines {
    /// The `metrics.jsonl` keys of the diagnostic, as they join an evaluation's record.
    pub const IMAGE_KEY: &str = "image_cosine";
    pub const TEXT_KEY: &str = "text_cosine";

    /// Adds both values to an evaluation's record (null where undefined).
    pub fn add_to(&self, record: &mut serde_json::Value) {
        record[Self::IMAGE_KEY] = self.image.into();
        record[Self::TEXT_KEY] = self.text.into();
    }
}

/// Running sum of unit feature rows, for their mean pairwise cosine.
struct CosineSum {
    sum: Option<Tensor>,
    count: usize,
}

impl CosineSum {
    fn new() -> Self {
        Self { sum: None, count: 0 }
    }

    /// Adds unit rows `[n, E]`.
    fn add(&mut self, unit_rows: &Tensor) {
        let block = unit_rows.sum_dim_intlist([0i64].as_slice(), false, Kind::Double);
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + block,
            None => block,
        });
        self.count += unit_rows.size()[0] as usize;
    }

    /// The mean of `x_i · x_j` over ordered pairs `i ≠ j`: `(|Σ x_i|² − n) / (n (n − 1))`,
    /// since every unit row's product with itself is 1.
    fn mean(&self) -> Option<f64> {
        let n = self.count as f64;
        let sum = self.sum.as_ref().filter(|_| self.count >= 2)?;
        let squared = sum.dot(sum).double_value(&[]);
        Some((squared - n) / (n * (n - 1.0)))
    }
}

/// Queries per similarity block.
const QUERY_BLOCK: usize = 512;

fn normalise(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12)
}

/// Evaluates `clip` on `split` (captions query the split's images), with the spread of the
/// features it compared.
pub fn evaluate(
    clip: &Clip,
    split: &TokenizedSplit,
    device: Device,
    batch: usize,
) -> Result<(RetrievalMetrics, FeatureCosines), EvalError> {
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
        let mut image_cosine = CosineSum::new();
        image_cosine.add(&gallery);
        let mut text_cosine = CosineSum::new();
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
            text_cosine.add(&q);
            let pids = &query_pids[b * QUERY_BLOCK..b * QUERY_BLOCK + chunk.len()];
            acc.add_block(
                &q.matmul(&gallery.tr()),
                &Tensor::from_slice(pids).to_device(device),
            )?;
        }
        let cosines = FeatureCosines {
            image: image_cosine.mean(),
            text: text_cosine.mean(),
        };
        Ok((acc.finish()?, cosines))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_rows(rows: &[[f64; 2]]) -> Tensor {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        normalise(&Tensor::from_slice(&flat).view([rows.len() as i64, 2]))
    }

    /// Three features at 0°, 90° and 45°: the pairwise cosines are 0, √½ and √½, mean √2/3,
    /// whether the rows arrive in one block or two.
    #[test]
    fn the_mean_pairwise_cosine_is_that_of_every_pair_of_distinct_rows() {
        let rows = [[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]];
        let expected = 2f64.sqrt() / 3.0;
        let mut whole = CosineSum::new();
        whole.add(&unit_rows(&rows));
        let mut blocks = CosineSum::new();
        blocks.add(&unit_rows(&rows[..1]));
        blocks.add(&unit_rows(&rows[1..]));
        for sum in [whole, blocks] {
            let mean = sum.mean().unwrap();
            assert!((mean - expected).abs() < 1e-12, "{mean} vs {expected}");
        }
        let mut collapsed = CosineSum::new();
        collapsed.add(&unit_rows(&[[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]]));
        assert!((collapsed.mean().unwrap() - 1.0).abs() < 1e-12);
        let mut one = CosineSum::new();
        one.add(&unit_rows(&rows[..1]));
        assert_eq!(one.mean(), None, "one feature has no pair");
    }

    #[test]
    fn the_cosines_join_the_evaluation_record() {
        let mut record = serde_json::json!({"kind": "eval"});
        FeatureCosines {
            image: Some(0.25),
            text: None,
        }
        .add_to(&mut record);
        assert_eq!(record["image_cosine"], 0.25);
        assert!(record["text_cosine"].is_null());
    }
}
