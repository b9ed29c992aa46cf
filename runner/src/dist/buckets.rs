//! Many tensors exchanged as a few flat buffers: one collective per bucket of about
//! [`BUCKET_BYTES`] instead of one per parameter, whose fixed cost (a round trip per peer)
//! would dominate for the hundreds of small tensors of a transformer (biases, norms).

use std::ops::Range;

use tch::Tensor;

use super::{Collective, DistError};

/// Target size of one flat buffer (PyTorch DDP's default bucket is 25 MiB).
const BUCKET_BYTES: usize = 32 << 20;

/// `tensors` packed in order into flat buffers of one kind each, with the range of
/// `tensors` each holds.
fn pack(tensors: &[&Tensor]) -> Vec<(Range<usize>, Tensor)> {
    let mut buckets = Vec::new();
    let mut start = 0;
    while start < tensors.len() {
        let kind = tensors[start].kind();
        let mut end = start;
        let mut size = 0;
        while end < tensors.len() && tensors[end].kind() == kind && (end == start || size < BUCKET_BYTES) {
            size += tensors[end].numel() * kind.elt_size_in_bytes();
            end += 1;
        }
        let flat: Vec<Tensor> = tensors[start..end].iter().map(|t| t.reshape([-1])).collect();
        buckets.push((start..end, Tensor::cat(&flat, 0)));
        start = end;
    }
    buckets
}

/// The pieces of `flat` shaped as `tensors`.
fn unpack<'a>(flat: &'a Tensor, tensors: &'a [&Tensor]) -> impl Iterator<Item = Tensor> + 'a {
    let mut offset = 0;
    tensors.iter().map(move |t| {
        let n = t.numel() as i64;
        let piece = flat.narrow(0, offset, n).view(t.size().as_slice());
        offset += n;
        piece
    })
}

/// Overwrites `tensors` (parameters included: the copy is not recorded by autograd) with
/// rank 0's values.
pub fn broadcast(collective: &dyn Collective, tensors: &[&Tensor]) -> Result<(), DistError> {
    if collective.world() == 1 {
        return Ok(());
    }
    for (range, flat) in pack(tensors) {
        collective.broadcast(&flat)?;
        tch::no_grad(|| {
            for (t, piece) in tensors[range.clone()].iter().zip(unpack(&flat, &tensors[range])) {
                t.shallow_clone().copy_(&piece);
            }
        });
    }
    Ok(())
}

/// Each gradient averaged over the ranks. Undefined gradients (parameters the loss does not
/// reach) are left out and stay undefined: which parameters the losses reach follows from
/// the configuration, not from the batch, so it is the same set on every rank. The averaged
/// gradients are views of the exchanged buffers.
pub fn average_gradients(collective: &dyn Collective, grads: Vec<Tensor>) -> Result<Vec<Tensor>, DistError> {
    if collective.world() == 1 {
        return Ok(grads);
    }
    let defined: Vec<usize> = (0..grads.len()).filter(|&i| grads[i].defined()).collect();
    let tensors: Vec<&Tensor> = defined.iter().map(|&i| &grads[i]).collect();
    let mut averaged: Vec<Tensor> = Vec::with_capacity(tensors.len());
    for (range, flat) in pack(&tensors) {
        collective.all_reduce_mean(&flat)?;
        averaged.extend(unpack(&flat, &tensors[range]).collect::<Vec<_>>());
    }
    let mut grads = grads;
    for (i, g) in defined.into_iter().zip(averaged) {
        grads[i] = g;
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    #[test]
    fn packing_keeps_order_splits_by_kind_and_unpacks_to_the_same_values() {
        let a = Tensor::arange(6, (Kind::Float, Device::Cpu)).view([2, 3]);
        let b = Tensor::arange(4, (Kind::Int64, Device::Cpu));
        let c = Tensor::ones([5], (Kind::Int64, Device::Cpu));
        let tensors = [&a, &b, &c];
        let buckets = pack(&tensors);
        assert_eq!(
            buckets.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
            [0..1, 1..3]
        );
        let pieces: Vec<Tensor> = buckets
            .iter()
            .flat_map(|(r, flat)| unpack(flat, &tensors[r.clone()]).collect::<Vec<_>>())
            .collect();
        for (t, p) in tensors.iter().zip(&pieces) {
            assert!(t.equal(p));
        }
    }
}
