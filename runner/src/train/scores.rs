//! The score store: one global table of per-token scores, indexed by training sample and
//! carried across epochs (decisions.md: the reference's per-GPU stale tables are a DDP
//! artefact). Masking in epoch e reads the snapshot taken when e starts — the scores of the
//! previous epoch, or the strategy's initial score — while the step's new scores are queued
//! on the device and written back at the end of the epoch, so the step never syncs.
//! Across ranks, each rank's scores are gathered at the end of the epoch, so that every
//! rank holds the same global table.

use std::sync::Arc;

use gadms_plugin::masking::NoiseLabelScores;
use tch::{Device, Kind, Tensor};

use crate::dist::{Collective, DistError};

pub struct ScoreStore {
    table: Vec<f32>,
    len: usize,
    pending: Vec<(Vec<usize>, Tensor)>,
}

impl ScoreStore {
    /// `samples` rows of `len` positions, all `initial`.
    pub fn new(samples: usize, len: usize, initial: f32) -> Self {
        Self {
            table: vec![initial; samples * len],
            len,
            pending: Vec::new(),
        }
    }

    /// The oracle's table: per caption and position, the score of its noise label
    /// ([`NoiseLabelScores::score`]). `noise` holds `samples` rows of `len` flags, or is
    /// `None` for a labelled dataset whose captions are all clean. Nothing in the step
    /// writes to it, as an oracle strategy does not score.
    pub fn from_noise_labels(noise: Option<&[Vec<bool>]>, samples: usize, len: usize) -> Self {
        let table = match noise {
            Some(rows) => rows
                .iter()
                .flat_map(|row| row.iter().map(|&n| NoiseLabelScores::score(n)))
                .collect(),
            None => vec![NoiseLabelScores::CLEAN; samples * len],
        };
        debug_assert_eq!(table.len(), samples * len, "one flag per caption and position");
        Self {
            table,
            len,
            pending: Vec::new(),
        }
    }

    /// The table as the data workers read it during an epoch.
    pub fn snapshot(&self) -> Arc<Vec<f32>> {
        Arc::new(self.table.clone())
    }

    /// Queues the scores `[B, L]` of the batch made of `samples`.
    pub fn record(&mut self, samples: Vec<usize>, scores: Tensor) {
        self.pending.push((samples, scores.detach()));
    }

    /// Writes the queued scores of every rank of `collective` into the table, in rank order
    /// (one exchange and one device→host copy).
    pub fn flush(&mut self, collective: &dyn Collective) -> Result<(), DistError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (samples, scores): (Vec<Vec<usize>>, Vec<Tensor>) = self.pending.drain(..).unzip();
        let scores = Tensor::cat(&scores, 0).to_kind(Kind::Float); // [N, L]
        let samples: Vec<i64> = samples.into_iter().flatten().map(|i| i as i64).collect();
        let samples = Tensor::from_slice(&samples).to_device(scores.device()); // [N]
        let samples = collective.all_gather_rows(&samples)?.to_device(Device::Cpu);
        let scores = collective
            .all_gather_rows(&scores)?
            .to_device(Device::Cpu)
            .contiguous();
        let samples = Vec::<i64>::try_from(samples).expect("int64 sample indices convert");
        let values = Vec::<f32>::try_from(scores.view([-1])).expect("float scores convert");
        for (k, &i) in samples.iter().enumerate() {
            let i = i as usize;
            self.table[i * self.len..(i + 1) * self.len]
                .copy_from_slice(&values[k * self.len..(k + 1) * self.len]);
        }
        Ok(())
    }

    /// Row `i` of the table.
    #[cfg(test)]
    fn row(&self, i: usize) -> &[f32] {
        &self.table[i * self.len..(i + 1) * self.len]
    }

    /// The table as a `[samples, len]` tensor (for checkpoints).
    pub fn to_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.table).view([-1, self.len as i64])
    }

    /// Replaces the table with a `[samples, len]` tensor from a checkpoint.
    pub fn load(&mut self, table: &Tensor) -> Result<(), String> {
        let expected = [(self.table.len() / self.len) as i64, self.len as i64];
        if table.size() != expected {
            return Err(format!(
                "score table of shape {:?}, the run has {expected:?}",
                table.size()
            ));
        }
        let values = table.to_kind(Kind::Float).contiguous().view([-1]);
        self.table = Vec::<f32>::try_from(values).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The whole table, row-major `[samples, len]`.
    pub fn table(&self) -> &[f32] {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_table_scores_every_noise_token_below_every_other_position() {
        let noise = vec![
            vec![false, true, true, false],
            vec![false, false, false, false],
            vec![true, false, false, true],
        ];
        let store = ScoreStore::from_noise_labels(Some(&noise), 3, 4);
        let (mut noisy, mut clean) = (Vec::new(), Vec::new());
        for (i, row) in noise.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                let side = if n { &mut noisy } else { &mut clean };
                side.push(store.row(i)[p]);
            }
        }
        let highest_noise = noisy.iter().copied().fold(f32::MIN, f32::max);
        let lowest_clean = clean.iter().copied().fold(f32::MAX, f32::min);
        assert!(highest_noise < lowest_clean, "noise {noisy:?}, clean {clean:?}");
        assert_eq!(store.row(0), [1.0, 0.0, 0.0, 1.0]);
        let unlabelled = ScoreStore::from_noise_labels(None, 2, 3);
        assert_eq!(unlabelled.table(), [1.0; 6], "captions without noise are clean");
    }

    #[test]
    fn scores_reach_the_table_only_when_flushed() {
        let mut store = ScoreStore::new(3, 2, 0.85);
        let before = store.snapshot();
        store.record(
            vec![2, 0],
            Tensor::from_slice(&[0.1f32, 0.2, 0.3, 0.4]).view([2, 2]),
        );
        assert_eq!(store.row(2), [0.85, 0.85]);
        store.flush(&crate::dist::Single).unwrap();
        assert_eq!(store.row(2), [0.1, 0.2]);
        assert_eq!(store.row(0), [0.3, 0.4]);
        assert_eq!(store.row(1), [0.85, 0.85]);
        assert_eq!(
            before[4], 0.85,
            "a snapshot does not change under the epoch's feet"
        );
    }
}
