//! The collective interface every engine implements — all-reduce, all-gather, broadcast,
//! barrier on whole tensors — and [`Single`], the world of one process, where each is the
//! identity. Training code calls the interface and never asks how many processes there are,
//! so a run of one process and a run of many take the same code path.

use std::time::Duration;

use tch::Tensor;

use super::DistError;

pub trait Collective {
    /// This process's rank, `0..world`.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn world(&self) -> usize;

    /// Sums `tensor` (contiguous) over the ranks, in place.
    fn all_reduce_sum(&self, tensor: &Tensor) -> Result<(), DistError>;

    /// Every rank's `tensor` (same shape and kind on every rank), concatenated along the
    /// first dimension in rank order: `[n, ...]` → `[world · n, ...]`.
    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor, DistError>;

    /// Rank 0's values of `tensor` (contiguous; same shape and kind on every rank), written
    /// into `tensor` on every rank.
    fn broadcast(&self, tensor: &Tensor) -> Result<(), DistError>;

    /// Returns once every rank has called it, or fails after `timeout`.
    fn barrier(&self, timeout: Duration) -> Result<(), DistError>;

    /// Averages `tensor` over the ranks, in place.
    fn all_reduce_mean(&self, tensor: &Tensor) -> Result<(), DistError> {
        self.all_reduce_sum(tensor)?;
        if self.world() > 1 {
            let _ = tensor.shallow_clone().g_div_scalar_(self.world() as f64);
        }
        Ok(())
    }

    /// [`Collective::all_gather`] where ranks may hold different numbers of rows: the
    /// counts are exchanged first and the rows padded to the largest for the exchange.
    fn all_gather_rows(&self, tensor: &Tensor) -> Result<Tensor, DistError> {
        if self.world() == 1 {
            return Ok(tensor.shallow_clone());
        }
        let rows = tensor.size()[0];
        let counts = self.all_gather(&Tensor::from_slice(&[rows]).to_device(tensor.device()))?;
        let counts = Vec::<i64>::try_from(counts.to_device(tch::Device::Cpu)).expect("int64 counts");
        let most = counts.iter().copied().max().unwrap_or(0);
        let mut shape = tensor.size();
        shape[0] = most - rows;
        let padded = Tensor::cat(
            &[
                tensor.contiguous(),
                tensor.new_zeros(&shape[..], (tensor.kind(), tensor.device())),
            ],
            0,
        );
        let all = self.all_gather(&padded)?;
        let parts: Vec<Tensor> = counts
            .iter()
            .enumerate()
            .map(|(r, &n)| all.narrow(0, r as i64 * most, n))
            .collect();
        Ok(Tensor::cat(&parts, 0))
    }
}

/// One process: nothing to exchange.
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }

    fn world(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _tensor: &Tensor) -> Result<(), DistError> {
        Ok(())
    }

    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor, DistError> {
        Ok(tensor.shallow_clone())
    }

    fn broadcast(&self, _tensor: &Tensor) -> Result<(), DistError> {
        Ok(())
    }

    fn barrier(&self, _timeout: Duration) -> Result<(), DistError> {
        Ok(())
    }
}

/// The rows `[B, ...]` of every rank, `[world · B, ...]` in rank order, for a loss that
/// compares each sample with the whole global batch (method §4.2, SDM over gathered
/// features). The other ranks' rows carry no gradient; this rank's rows are `local` with
/// its gradient multiplied by the world size W. Each rank's backward thus yields the
/// global loss's gradient through its own samples only, and the average over ranks that the
/// gradient all-reduce takes restores the exact gradient one process computes on the
/// global batch — for losses with parameters of their own too, whose gradient every rank
/// computes in full from the gathered rows. The values are `local`'s exactly.
pub fn gather_rows_with_grad(collective: &dyn Collective, local: &Tensor) -> Result<Tensor, DistError> {
    let world = collective.world();
    if world == 1 {
        return Ok(local.shallow_clone());
    }
    let all = collective.all_gather(&local.detach().contiguous())?;
    let scaled = local * world as f64;
    // Forward: `local` plus an exact zero; backward: W · the incoming gradient.
    let live = local.detach() + (&scaled - scaled.detach());
    let mut parts = all.split(local.size()[0], 0);
    parts[collective.rank()] = live;
    Ok(Tensor::cat(&parts, 0))
}

#[cfg(test)]
mod tests {
    use tch::Kind;

    use super::*;

    #[test]
    fn a_single_process_passes_everything_through() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        Single.all_reduce_mean(&t).unwrap();
        Single.broadcast(&t).unwrap();
        assert!(Single.all_gather(&t).unwrap().equal(&t));
        assert!(Single.all_gather_rows(&t).unwrap().equal(&t));
        let x = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let g = gather_rows_with_grad(&Single, &x).unwrap();
        let grads = Tensor::run_backward(&[g.sum(Kind::Float)], &[&x], false, false);
        assert!(grads[0].equal(&Tensor::from_slice(&[1.0f32, 1.0])));
    }
}
