//! `gadms-run run SPEC --nproc-per-node N`: starts this machine's ranks of a training as
//! child processes of the same command, with torchrun's environment, and watches them. When
//! one fails, the others get [`GRACE`] to notice the lost peer and stop on their own (rank 0
//! records the cause in the run's status meanwhile); then they are killed, and the error
//! names the rank that failed first. A rank also dies with the launcher, so that no rank
//! outlives a launcher that was killed.

use std::ffi::{c_int, c_ulong};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::rendezvous::{StoreAddress, LOCAL_RANK, LOCAL_WORLD_SIZE, RANK, STORE, WORLD_SIZE};

/// How long the other ranks may take to stop on their own once one has failed.
const GRACE: Duration = Duration::from_secs(10);

extern "C" {
    /// Linux's `prctl(2)`.
    fn prctl(option: c_int, ...) -> c_int;
}

/// `PR_SET_PDEATHSIG`: the signal a process gets when its parent dies.
const PR_SET_PDEATHSIG: c_int = 1;
const SIGKILL: c_ulong = 9;

/// This machine's part of a training.
#[derive(Debug, Clone)]
pub struct Launch {
    pub nproc_per_node: usize,
    pub nnodes: usize,
    pub node_rank: usize,
    pub store: StoreAddress,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("--node-rank {node_rank} is not below --nnodes {nnodes}; nodes are numbered 0..{nnodes}")]
    NodeRank { node_rank: usize, nnodes: usize },
    #[error("cannot start rank {rank}: {source}")]
    Spawn {
        rank: usize,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "rank {rank} {how}, the first of this machine's ranks to fail; its error is above{}",
        stopped_note(.stopped)
    )]
    RankFailed {
        rank: usize,
        how: String,
        stopped: Vec<usize>,
    },
}

fn stopped_note(stopped: &[usize]) -> String {
    if stopped.is_empty() {
        String::new()
    } else {
        format!("; stopped the rank(s) {stopped:?} still running")
    }
}

impl Launch {
    /// The global rank of this machine's `local` rank.
    fn rank(&self, local: usize) -> usize {
        self.node_rank * self.nproc_per_node + local
    }

    /// Starts the ranks (each a `command()` with the rendezvous in its environment) and
    /// waits for them all.
    pub fn run(&self, command: impl Fn() -> Command) -> Result<(), LaunchError> {
        if self.node_rank >= self.nnodes {
            return Err(LaunchError::NodeRank {
                node_rank: self.node_rank,
                nnodes: self.nnodes,
            });
        }
        let world = self.nproc_per_node * self.nnodes;
        let mut ranks = Vec::with_capacity(self.nproc_per_node);
        for local in 0..self.nproc_per_node {
            let rank = self.rank(local);
            let mut c = command();
            c.env(WORLD_SIZE, world.to_string())
                .env(RANK, rank.to_string())
                .env(LOCAL_RANK, local.to_string())
                .env(LOCAL_WORLD_SIZE, self.nproc_per_node.to_string())
                .env(STORE, self.store.to_string())
                .env("GADMS_PLAIN_PROGRESS", "1");
            // SAFETY: between fork and exec only an async-signal-safe system call is made.
            unsafe {
                c.pre_exec(|| match prctl(PR_SET_PDEATHSIG, SIGKILL) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                });
            }
            match c.spawn() {
                Ok(child) => ranks.push((rank, child)),
                Err(source) => {
                    stop(&mut ranks);
                    return Err(LaunchError::Spawn { rank, source });
                }
            }
        }
        watch(ranks)
    }
}

/// Waits for every rank; after the first failure and [`GRACE`], kills those still running.
fn watch(mut ranks: Vec<(usize, Child)>) -> Result<(), LaunchError> {
    let mut first: Option<(usize, ExitStatus, Instant)> = None;
    loop {
        let mut running = false;
        for (rank, child) in &mut ranks {
            match child.try_wait() {
                Ok(Some(status)) if !status.success() && first.is_none() => {
                    first = Some((*rank, status, Instant::now()));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => running = true,
            }
        }
        let grace_over = first.as_ref().is_some_and(|(_, _, at)| at.elapsed() > GRACE);
        if !running || grace_over {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopped = stop(&mut ranks);
    match first {
        None => Ok(()),
        Some((rank, status, _)) => Err(LaunchError::RankFailed {
            rank,
            how: describe(status),
            stopped,
        }),
    }
}

/// Kills the ranks still running; returns their numbers.
fn stop(ranks: &mut [(usize, Child)]) -> Vec<usize> {
    let mut stopped = Vec::new();
    for (rank, child) in ranks.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            stopped.push(*rank);
        }
        let _ = child.wait();
    }
    stopped
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}
