//! `gadms-run dist-selftest` (hidden): every collective of the group of this process's
//! environment, on CPU tensors whose results each rank can predict. It checks an
//! installation (Gloo, the network, the store) before a long training, and the tests drive
//! the real engine through it.

use tch::{Kind, Tensor};

use super::{gather_rows_with_grad, DistError, ProcessGroup};

#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    #[error(transparent)]
    Dist(#[from] DistError),
    #[error("rank {rank}: {check} gave {found:?}, expected {expected:?}")]
    Wrong {
        rank: usize,
        check: &'static str,
        found: Vec<f64>,
        expected: Vec<f64>,
    },
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).expect("a numeric tensor")
}

/// Runs each check on the control group; returns its names, in order.
pub fn run(group: &ProcessGroup) -> Result<Vec<&'static str>, SelftestError> {
    let c = group.control();
    let (rank, world) = (c.rank() as f64, c.world() as f64);
    let expect = |check: &'static str, t: &Tensor, expected: Vec<f64>| {
        let found = values(t);
        if found == expected {
            Ok(check)
        } else {
            Err(SelftestError::Wrong {
                rank: c.rank(),
                check,
                found,
                expected,
            })
        }
    };
    let ranks: Vec<f64> = (0..c.world()).map(|r| r as f64).collect();
    let mut passed = Vec::new();

    let sum = Tensor::from_slice(&[rank + 1.0, 2.0 * rank]);
    c.all_reduce_sum(&sum)?;
    let total: f64 = ranks.iter().sum();
    passed.push(expect("all-reduce sum", &sum, vec![total + world, 2.0 * total])?);

    let mean = Tensor::from_slice(&[4.0 * rank as f32]);
    c.all_reduce_mean(&mean)?;
    passed.push(expect("all-reduce mean", &mean, vec![4.0 * total / world])?);

    let gathered = c.all_gather(&Tensor::from_slice(&[rank as i64, 10 * rank as i64]).view([1, 2]))?;
    let expected = ranks.iter().flat_map(|&r| [r, 10.0 * r]).collect();
    passed.push(expect("all-gather", &gathered, expected)?);

    // Rank r holds r + 1 rows of the value r.
    let rows = c.all_gather_rows(&Tensor::full(
        [c.rank() as i64 + 1],
        rank,
        (Kind::Float, tch::Device::Cpu),
    ))?;
    let expected = ranks.iter().flat_map(|&r| vec![r; r as usize + 1]).collect();
    passed.push(expect("all-gather of uneven rows", &rows, expected)?);

    let shared = Tensor::from_slice(&[if c.rank() == 0 { 42.0f32 } else { -1.0 }, rank as f32]);
    c.broadcast(&shared)?;
    passed.push(expect("broadcast", &shared, vec![42.0, 0.0])?);

    // Each rank's gradient through its own rows is W times the global loss's.
    let local = Tensor::from_slice(&[rank as f32 + 1.0]).set_requires_grad(true);
    let all = gather_rows_with_grad(c, &local)?;
    let grad = Tensor::run_backward(&[all.sum(Kind::Float)], &[&local], false, false);
    let expected = ranks.iter().map(|r| r + 1.0).collect();
    passed.push(expect("gather with gradient (values)", &all, expected)?);
    passed.push(expect("gather with gradient (gradient)", &grad[0], vec![world])?);

    group.wait_for_leader()?;
    passed.push("barrier");
    Ok(passed)
}
