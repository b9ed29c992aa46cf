//! The score store: one global table of per-token scores, indexed by training sample and
//! carried across epochs (decisions.md: the reference's per-GPU stale tables are a DDP
//! artefact). Masking in epoch e reads the snapshot taken when e starts — the scores of the
//! previous epoch, or the strategy's initial score — while the step's new scores are queued
//! on the device and written back at the end of the epoch, so the step never syncs.

use std::sync::Arc;

use tch::{Device, Kind, Tensor};

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

    /// The table as the data workers read it during an epoch.
    pub fn snapshot(&self) -> Arc<Vec<f32>> {
        Arc::new(self.table.clone())
    }

    /// Queues the scores `[B, L]` of the batch made of `samples`.
    pub fn record(&mut self, samples: Vec<usize>, scores: Tensor) {
        self.pending.push((samples, scores.detach()));
    }

    /// Writes the queued scores into the table (one device→host copy per batch).
    pub fn flush(&mut self) {
        for (samples, scores) in self.pending.drain(..) {
            let host = scores.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let values = Vec::<f32>::try_from(host.view([-1])).expect("float scores convert");
            for (k, &i) in samples.iter().enumerate() {
                self.table[i * self.len..(i + 1) * self.len]
                    .copy_from_slice(&values[k * self.len..(k + 1) * self.len]);
            }
        }
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
    fn scores_reach_the_table_only_when_flushed() {
        let mut store = ScoreStore::new(3, 2, 0.85);
        let before = store.snapshot();
        store.record(
            vec![2, 0],
            Tensor::from_slice(&[0.1f32, 0.2, 0.3, 0.4]).view([2, 2]),
        );
        assert_eq!(store.row(2), [0.85, 0.85]);
        store.flush();
        assert_eq!(store.row(2), [0.1, 0.2]);
        assert_eq!(store.row(0), [0.3, 0.4]);
        assert_eq!(store.row(1), [0.85, 0.85]);
        assert_eq!(
            before[4], 0.85,
            "a snapshot does not change under the epoch's feet"
        );
    }
}
