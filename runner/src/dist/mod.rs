//! Data-parallel training across processes, GPUs and machines on existing collective
//! libraries: Gloo for CPU tensors (and the control traffic of every run), NCCL for CUDA
//! tensors.
//!
//! One training is `WORLD_SIZE` processes (ranks) that meet through a rendezvous store
//! ([`rendezvous`]), each with its slice of every global batch. They start from rank 0's
//! weights, average their gradients ([`buckets`]) and compute batch-wide losses on the
//! features gathered from all ranks ([`gather_rows_with_grad`]), so that a distributed run
//! computes what one process computes on the global batch. Rank 0 alone writes the run
//! store and evaluates. [`launch`] starts the ranks of one machine; [`slurm`] takes them
//! from an srun step.

pub mod buckets;
mod collective;
mod gloo;
pub use gloo::availability as gloo_availability;
mod group;
pub mod launch;
mod nccl;
pub mod rendezvous;
pub mod selftest;
pub mod slurm;

use std::time::Duration;

pub use collective::{gather_rows_with_grad, Collective, Single};
pub use group::{DeviceCollective, ProcessGroup};

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("`{var}` = `{value}`: {problem}")]
    Env {
        var: &'static str,
        value: String,
        problem: String,
    },
    #[error("rank {rank}: the rendezvous store {store}: {message}")]
    Store {
        rank: usize,
        store: String,
        message: String,
    },
    #[error(
        "rank 0: the rendezvous store {store} holds the keys of an earlier launch; give every launch an \
         empty folder (or a fresh Redis database)"
    )]
    StaleStore { store: String },
    #[error(
        "rank {rank}: started with WORLD_SIZE={world}, but rank {peer} joined the store {store} with \
         WORLD_SIZE={peer_world}; start every rank with the same WORLD_SIZE"
    )]
    WorldMismatch {
        rank: usize,
        world: usize,
        peer: usize,
        peer_world: String,
        store: String,
    },
    #[error(
        "rank {rank}: rank(s) {missing:?} of WORLD_SIZE={world} did not join through the store {store} \
         within {waited:?}; start every rank 0..{world} with the same WORLD_SIZE and store (the time \
         limit is GADMS_DIST_TIMEOUT, in seconds)"
    )]
    MissingPeers {
        rank: usize,
        world: usize,
        missing: Vec<usize>,
        waited: Duration,
        store: String,
    },
    #[error(
        "rank {rank}: connecting to the other ranks through the store {store}: {message}; check that the \
         nodes reach each other (GLOO_SOCKET_IFNAME picks the network interface)"
    )]
    Connect {
        rank: usize,
        store: String,
        message: String,
    },
    #[error(
        "rank {rank}: {op} failed: {message}. Another rank stopped or became unreachable; its own error \
         names the cause, and starting the same command again resumes from the last checkpoint"
    )]
    Collective {
        rank: usize,
        op: &'static str,
        message: String,
    },
    #[error("rank {rank}: {engine} exchanges {expected} tensors, got one on {found}")]
    Tensor {
        rank: usize,
        engine: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("rank {rank}: cannot sum {kind:?} tensors across ranks (float32/64, int32/64 only)")]
    Kind { rank: usize, kind: tch::Kind },
}

impl DistError {
    /// The error of collective `op` on `rank` that failed with a message, for `map_err`.
    pub(crate) fn collective(rank: usize, op: &'static str) -> impl Fn(String) -> Self + Copy {
        move |message| Self::Collective { rank, op, message }
    }

    /// `Ok` when `tensor` suits `engine` (`fits`), else the error naming what it wants.
    pub(crate) fn require(
        fits: bool,
        rank: usize,
        engine: &'static str,
        expected: &'static str,
        tensor: &tch::Tensor,
    ) -> Result<(), Self> {
        if fits {
            return Ok(());
        }
        Err(Self::Tensor {
            rank,
            engine,
            expected,
            found: format!("{:?} {:?}", tensor.device(), tensor.size()),
        })
    }
}

/// An environment of `vars` for the tests of the parsers that read one (`from_vars`).
#[cfg(test)]
fn environment(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| vars.get(name).cloned()
}
