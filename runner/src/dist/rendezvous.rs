//! How the ranks of one training find each other: torchrun's environment (`WORLD_SIZE`,
//! `RANK`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`) plus a store that every rank reaches —
//! `GADMS_STORE`, a folder on a filesystem all nodes share, or `redis://HOST:PORT`.
//!
//! Before Gloo connects, each rank announces its world size in the store, so that a rank
//! started with another `WORLD_SIZE`, or one that never starts, is an error naming the
//! ranks, the store and the fix within `GADMS_DIST_TIMEOUT` rather than a hang.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::gloo::{Endpoint, Gloo, Store};
use super::slurm::Step;
use super::DistError;

pub const WORLD_SIZE: &str = "WORLD_SIZE";
pub const RANK: &str = "RANK";
pub const LOCAL_RANK: &str = "LOCAL_RANK";
pub const LOCAL_WORLD_SIZE: &str = "LOCAL_WORLD_SIZE";
pub const STORE: &str = "GADMS_STORE";
/// Seconds a rendezvous or one collective may take (default [`DEFAULT_TIMEOUT`]).
pub const TIMEOUT: &str = "GADMS_DIST_TIMEOUT";
/// Seconds the other ranks wait for rank 0's evaluation and checkpoint after an epoch
/// (default [`DEFAULT_LEADER_TIMEOUT`]).
pub const LEADER_TIMEOUT: &str = "GADMS_DIST_LEADER_TIMEOUT";
/// The network interface to listen on, as PyTorch names it.
pub const SOCKET_IFNAME: &str = "GLOO_SOCKET_IFNAME";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_LEADER_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Where the rendezvous store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAddress {
    Folder(PathBuf),
    Redis { host: String, port: u16 },
}

impl StoreAddress {
    /// `redis://HOST[:PORT]` (port 6379 by default), or a folder.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(address) = text.strip_prefix("redis://") else {
            if text.is_empty() {
                return Err("empty; give a folder every rank can reach, or redis://HOST:PORT".into());
            }
            return Ok(Self::Folder(PathBuf::from(text)));
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .map_err(|_| format!("`{port}` is not a port number (redis://HOST:PORT)"))?,
            ),
            None => (address, 6379),
        };
        Ok(Self::Redis {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for StoreAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder(path) => write!(f, "{}", path.display()),
            Self::Redis { host, port } => write!(f, "redis://{host}:{port}"),
        }
    }
}

/// One rank's view of the training it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendezvous {
    pub rank: usize,
    pub world: usize,
    /// The rank among those on this machine: its CUDA device.
    pub local_rank: usize,
    /// The number of ranks on this machine.
    pub local_world: Option<usize>,
    pub store: StoreAddress,
    pub timeout: Duration,
    pub leader_timeout: Duration,
    pub interface: Option<String>,
}

impl Rendezvous {
    /// The rendezvous of this process's environment; `None` when `WORLD_SIZE` is unset or 1
    /// without a store. (`WORLD_SIZE=1` with a store makes a group of one that still runs the
    /// engines: a check of NCCL on a machine with one GPU.)
    pub fn from_env() -> Result<Option<Self>, DistError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`], or when `WORLD_SIZE` is unset, the rendezvous of the srun step
    /// this process is a task of ([`Step`]), meeting in a folder under `store_root` unless
    /// `GADMS_STORE` names another store.
    pub fn from_env_or_slurm(store_root: &Path) -> Result<Option<Self>, DistError> {
        Self::from_env_or_step(|name| std::env::var(name).ok(), store_root)
    }

    fn from_env_or_step(
        env: impl Fn(&str) -> Option<String>,
        store_root: &Path,
    ) -> Result<Option<Self>, DistError> {
        if env(WORLD_SIZE).is_some() {
            return Self::from_vars(env);
        }
        let Some(step) = Step::from_vars(&env)? else {
            return Self::from_vars(env);
        };
        Self::from_vars(|name| match name {
            STORE => env(name).or_else(|| step.var(name, store_root)),
            _ => step.var(name, store_root).or_else(|| env(name)),
        })
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, DistError> {
        let number = |name: &'static str| -> Result<Option<usize>, DistError> {
            var(name)
                .map(|v| {
                    v.trim().parse().map_err(|_| DistError::Env {
                        var: name,
                        value: v.clone(),
                        problem: "not a whole number".into(),
                    })
                })
                .transpose()
        };
        let seconds = |name: &'static str, default: Duration| -> Result<Duration, DistError> {
            Ok(number(name)?.map_or(default, |s| Duration::from_secs(s as u64)))
        };
        let world = number(WORLD_SIZE)?.unwrap_or(1);
        let store = var(STORE);
        if world == 0 {
            return Err(DistError::Env {
                var: WORLD_SIZE,
                value: "0".into(),
                problem: "a training has at least one rank".into(),
            });
        }
        if world == 1 && store.is_none() {
            return Ok(None);
        }
        let rank = number(RANK)?.ok_or_else(|| DistError::Env {
            var: RANK,
            value: String::new(),
            problem: format!("unset, but WORLD_SIZE={world}; give every process its rank 0..{world}"),
        })?;
        if rank >= world {
            return Err(DistError::Env {
                var: RANK,
                value: rank.to_string(),
                problem: format!("not below WORLD_SIZE={world}; ranks are 0..{world}"),
            });
        }
        let store = store.unwrap_or_default();
        let store = StoreAddress::parse(&store).map_err(|problem| DistError::Env {
            var: STORE,
            value: store.clone(),
            problem,
        })?;
        Ok(Some(Self {
            rank,
            world,
            local_rank: number(LOCAL_RANK)?.unwrap_or(0),
            local_world: number(LOCAL_WORLD_SIZE)?,
            store,
            timeout: seconds(TIMEOUT, DEFAULT_TIMEOUT)?,
            leader_timeout: seconds(LEADER_TIMEOUT, DEFAULT_LEADER_TIMEOUT)?,
            interface: var(SOCKET_IFNAME).filter(|i| !i.is_empty()),
        }))
    }

    /// Where this rank listens: the interface asked for; loopback when every rank runs on
    /// this machine; else the machine's host name.
    fn endpoint(&self) -> Endpoint {
        match (&self.interface, self.local_world) {
            (Some(iface), _) => Endpoint::Interface(iface.clone()),
            (None, Some(local)) if local == self.world => Endpoint::Host("127.0.0.1".into()),
            (None, _) => Endpoint::Host(
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "localhost".into()),
            ),
        }
    }

    fn store_error(&self) -> impl FnOnce(String) -> DistError + '_ {
        move |message| DistError::Store {
            rank: self.rank,
            store: self.store.to_string(),
            message,
        }
    }

    /// Opens the store, checks that every rank joins with the same world size, and connects
    /// Gloo among all ranks.
    pub fn join(&self) -> Result<(Store, Gloo), DistError> {
        let store = Store::open(&self.store).map_err(self.store_error())?;
        let key = |r: usize| format!("gadms/join/{r}");
        if self.rank == 0
            && store
                .get(&key(0), Duration::ZERO)
                .map_err(self.store_error())?
                .is_some()
        {
            return Err(DistError::StaleStore {
                store: self.store.to_string(),
            });
        }
        store
            .set(&key(self.rank), self.world.to_string().as_bytes())
            .map_err(self.store_error())?;
        // Every rank waits for every other one, so that each names the ranks missing.
        let deadline = Instant::now() + self.timeout;
        let mut missing = Vec::new();
        for peer in (0..self.world).filter(|&r| r != self.rank) {
            let left = deadline.saturating_duration_since(Instant::now());
            match store.get(&key(peer), left).map_err(self.store_error())? {
                None => missing.push(peer),
                Some(value) => {
                    let theirs = String::from_utf8_lossy(&value).into_owned();
                    if theirs != self.world.to_string() {
                        return Err(DistError::WorldMismatch {
                            rank: self.rank,
                            world: self.world,
                            peer,
                            peer_world: theirs,
                            store: self.store.to_string(),
                        });
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Err(DistError::MissingPeers {
                rank: self.rank,
                world: self.world,
                missing,
                waited: self.timeout,
                store: self.store.to_string(),
            });
        }
        let gloo = Gloo::connect(&store, self.rank, self.world, &self.endpoint(), self.timeout).map_err(
            |message| DistError::Connect {
                rank: self.rank,
                store: self.store.to_string(),
                message,
            },
        )?;
        Ok((store, gloo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::environment;

    fn parse(vars: &[(&str, &str)]) -> Result<Option<Rendezvous>, DistError> {
        Rendezvous::from_vars(environment(vars))
    }

    #[test]
    fn one_process_needs_no_rendezvous() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[("WORLD_SIZE", "1"), ("RANK", "0")]).unwrap(), None);
        let one = parse(&[("WORLD_SIZE", "1"), ("RANK", "0"), ("GADMS_STORE", "/s")]).unwrap();
        assert_eq!(
            one.map(|r| r.world),
            Some(1),
            "a group of one, to check the engines"
        );
    }

    #[test]
    fn reads_torchruns_environment_and_the_store() {
        let r = parse(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("GADMS_STORE", "redis://head:7000"),
            ("GADMS_DIST_TIMEOUT", "5"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((r.rank, r.world, r.local_rank, r.local_world), (3, 4, 1, Some(2)));
        assert_eq!(
            r.store,
            StoreAddress::Redis {
                host: "head".into(),
                port: 7000
            }
        );
        assert_eq!(r.timeout, Duration::from_secs(5));
        assert_eq!(r.leader_timeout, DEFAULT_LEADER_TIMEOUT);
        assert_eq!(
            StoreAddress::parse("/shared/rdzv").unwrap(),
            StoreAddress::Folder("/shared/rdzv".into())
        );
    }

    fn parse_with_slurm(vars: &[(&str, &str)]) -> Result<Option<Rendezvous>, DistError> {
        Rendezvous::from_env_or_step(environment(vars), Path::new("/shared/exp"))
    }

    const SRUN_TASK_1_OF_2: [(&str, &str); 6] = [
        ("SLURM_JOB_ID", "7"),
        ("SLURM_STEP_ID", "3"),
        ("SLURM_STEP_NUM_TASKS", "2"),
        ("SLURM_STEP_NUM_NODES", "1"),
        ("SLURM_PROCID", "1"),
        ("SLURM_LOCALID", "1"),
    ];

    #[test]
    fn an_srun_step_of_several_tasks_is_a_rendezvous_in_the_experiments_folder() {
        let r = parse_with_slurm(&SRUN_TASK_1_OF_2).unwrap().expect("two ranks");
        assert_eq!((r.rank, r.world, r.local_rank, r.local_world), (1, 2, 1, Some(2)));
        assert_eq!(
            r.store,
            StoreAddress::Folder("/shared/exp/rendezvous/slurm-7.3".into())
        );
        assert!(
            matches!(r.endpoint(), Endpoint::Host(h) if h == "127.0.0.1"),
            "one node: loopback"
        );
        let mut vars = SRUN_TASK_1_OF_2.to_vec();
        vars.push(("GADMS_STORE", "redis://head:7000"));
        let r = parse_with_slurm(&vars).unwrap().unwrap();
        assert_eq!(r.store.to_string(), "redis://head:7000", "GADMS_STORE wins");
    }

    #[test]
    fn torchruns_variables_win_over_slurms_and_one_task_is_local() {
        let mut vars = SRUN_TASK_1_OF_2.to_vec();
        vars.extend([("WORLD_SIZE", "4"), ("RANK", "3"), ("GADMS_STORE", "/s")]);
        let r = parse_with_slurm(&vars).unwrap().unwrap();
        assert_eq!(
            (r.rank, r.world),
            (3, 4),
            "a launcher inside the job set its own ranks"
        );
        let one = [
            ("SLURM_STEP_NUM_TASKS", "1"),
            ("SLURM_PROCID", "0"),
            ("SLURM_LOCALID", "0"),
        ];
        assert_eq!(parse_with_slurm(&one).unwrap(), None);
    }

    #[test]
    fn a_bad_environment_names_the_variable_and_the_fix() {
        let no_rank = parse(&[("WORLD_SIZE", "2"), ("GADMS_STORE", "/tmp/s")]).unwrap_err();
        assert!(no_rank.to_string().contains("RANK"), "{no_rank}");
        let too_big = parse(&[("WORLD_SIZE", "2"), ("RANK", "2"), ("GADMS_STORE", "/s")]).unwrap_err();
        assert!(too_big.to_string().contains("ranks are 0..2"), "{too_big}");
        let no_store = parse(&[("WORLD_SIZE", "2"), ("RANK", "0")]).unwrap_err();
        assert!(no_store.to_string().contains("GADMS_STORE"), "{no_store}");
    }
}
