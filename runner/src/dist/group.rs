//! The process group of one `gadms-run` process: its rank among the ranks of a training,
//! the Gloo context that carries the control traffic (decisions, barriers, host tensors),
//! and the rendezvous store, through which NCCL communicators get their ids and a failing
//! rank leaves word of why it failed.

use std::cell::Cell;
use std::ops::Deref;
use std::time::Duration;

use tch::Device;

use super::gloo::Store;
use super::nccl::Nccl;
use super::rendezvous::Rendezvous;
use super::{Collective, DistError, Single};

/// The store key of the first failure a rank recorded.
const FAILURE_KEY: &str = "gadms/failed";

pub struct ProcessGroup {
    local_rank: usize,
    /// Gloo among the ranks, or [`Single`].
    control: Box<dyn Collective>,
    store: Option<Store>,
    timeout: Duration,
    leader_timeout: Duration,
    /// NCCL communicators made so far; numbers their ids' store keys.
    communicators: Cell<usize>,
}

/// The collective for tensors on one device: the control group's for the CPU, a NCCL
/// communicator for a CUDA device.
pub enum DeviceCollective<'a> {
    Control(&'a dyn Collective),
    Nccl(Nccl),
}

impl<'a> Deref for DeviceCollective<'a> {
    type Target = dyn Collective + 'a;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Control(c) => *c,
            Self::Nccl(n) => n,
        }
    }
}

impl ProcessGroup {
    /// A group of one process.
    pub fn single() -> Self {
        Self {
            local_rank: 0,
            control: Box::new(Single),
            store: None,
            timeout: Duration::ZERO,
            leader_timeout: Duration::ZERO,
            communicators: Cell::new(0),
        }
    }

    /// The group the environment describes ([`Rendezvous`]), joined; one process when it
    /// describes none.
    pub fn from_env() -> Result<Self, DistError> {
        Self::join(Rendezvous::from_env()?)
    }

    /// The group of `rendezvous`, joined; one process for `None`.
    pub fn join(rendezvous: Option<Rendezvous>) -> Result<Self, DistError> {
        let Some(rendezvous) = rendezvous else {
            return Ok(Self::single());
        };
        let (store, gloo) = rendezvous.join()?;
        Ok(Self {
            local_rank: rendezvous.local_rank,
            control: Box::new(gloo),
            store: Some(store),
            timeout: rendezvous.timeout,
            leader_timeout: rendezvous.leader_timeout,
            communicators: Cell::new(0),
        })
    }

    pub fn rank(&self) -> usize {
        self.control.rank()
    }

    pub fn world(&self) -> usize {
        self.control.world()
    }

    /// Rank 0: the one rank that writes the run store and evaluates.
    pub fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// The control group (CPU tensors).
    pub fn control(&self) -> &dyn Collective {
        self.control.as_ref()
    }

    /// This rank's device for a run configured for `device`: each rank of a machine takes
    /// its own GPU, `cuda:N` becoming `cuda:N+LOCAL_RANK`.
    pub fn device(&self, device: Device) -> Device {
        match device {
            Device::Cuda(i) => Device::Cuda(i + self.local_rank),
            other => other,
        }
    }

    /// The collective for tensors on `device`; on CUDA a new NCCL communicator, which every
    /// rank must ask for at the same point.
    pub fn on_device(&self, device: Device) -> Result<DeviceCollective<'_>, DistError> {
        let (Device::Cuda(index), Some(store)) = (device, &self.store) else {
            return Ok(DeviceCollective::Control(self.control()));
        };
        let n = self.communicators.get();
        self.communicators.set(n + 1);
        Nccl::connect(
            store,
            &format!("gadms/nccl/{n}"),
            self.rank(),
            self.world(),
            index,
            self.timeout,
        )
        .map(DeviceCollective::Nccl)
    }

    /// Rank 0's `value`, on every rank: how the ranks agree on what rank 0 decided from the
    /// run store, which only it reads.
    pub fn leader_value(&self, value: i64) -> Result<i64, DistError> {
        let t = tch::Tensor::from_slice(&[value]);
        self.control.broadcast(&t)?;
        Ok(t.int64_value(&[0]))
    }

    /// Waits until every rank gets here, for as long as rank 0's evaluation and checkpoint
    /// may take (`GADMS_DIST_LEADER_TIMEOUT`).
    pub fn wait_for_leader(&self) -> Result<(), DistError> {
        self.control.barrier(self.leader_timeout)
    }

    /// Leaves `message` (which names this rank) in the store for the ranks that only see a
    /// lost peer. Best effort: the rank is failing already.
    pub fn record_failure(&self, message: &str) {
        if let Some(store) = &self.store {
            let _ = store.set(FAILURE_KEY, message.as_bytes());
        }
    }

    /// The failure a rank recorded, waiting up to `grace` for one to appear.
    pub fn recorded_failure(&self, grace: Duration) -> Option<String> {
        let value = self.store.as_ref()?.get(FAILURE_KEY, grace).ok()??;
        Some(String::from_utf8_lossy(&value).into_owned())
    }
}
