//! A training across the tasks of a SLURM job step: `srun gadms-run run SPEC` started as N
//! tasks takes each task's rank, the world size and its local device from the variables
//! srun sets, and meets the other tasks in a folder of the experiment's output (a shared
//! file system on a cluster) named after the job and step, so no flag or `torchrun`-style
//! variable is needed.
//!
//! Only an srun step counts (`SLURM_STEP_NUM_TASKS`): a batch script itself, or an array
//! task, sees `SLURM_NTASKS` and `SLURM_PROCID` too, but is one process, and a step of one
//! task is a plain local run.

use std::path::{Path, PathBuf};

use super::rendezvous::{LOCAL_RANK, LOCAL_WORLD_SIZE, RANK, STORE, WORLD_SIZE};
use super::DistError;

pub const STEP_NUM_TASKS: &str = "SLURM_STEP_NUM_TASKS";
pub const PROCID: &str = "SLURM_PROCID";
pub const LOCALID: &str = "SLURM_LOCALID";
pub const STEP_NUM_NODES: &str = "SLURM_STEP_NUM_NODES";
pub const JOB_ID: &str = "SLURM_JOB_ID";
pub const STEP_ID: &str = "SLURM_STEP_ID";
const VISIBLE_DEVICES: &str = "CUDA_VISIBLE_DEVICES";

/// This process as one task of an srun step of several tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub job: String,
    pub step: String,
    /// `SLURM_PROCID`.
    pub rank: usize,
    /// The step's number of tasks.
    pub world: usize,
    /// The CUDA device of this task among those it sees: its number on its node
    /// (`SLURM_LOCALID`), or 0 when SLURM gave the task a GPU of its own
    /// (`--gpus-per-task=1` leaves one device in `CUDA_VISIBLE_DEVICES`).
    pub device: usize,
    /// The step's number of nodes.
    pub nodes: usize,
}

impl Step {
    /// The step of this process's environment; `None` outside an srun step or in a step of
    /// one task.
    pub fn from_env() -> Result<Option<Self>, DistError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, DistError> {
        let number = |name: &'static str| -> Result<Option<usize>, DistError> {
            var(name)
                .map(|v| {
                    v.trim().parse().map_err(|_| DistError::Env {
                        var: name,
                        value: v.clone(),
                        problem: "not a whole number (set by SLURM's srun)".into(),
                    })
                })
                .transpose()
        };
        let Some(world) = number(STEP_NUM_TASKS)?.filter(|&n| n > 1) else {
            return Ok(None);
        };
        let required = |name: &'static str| -> Result<usize, DistError> {
            number(name)?.ok_or_else(|| DistError::Env {
                var: name,
                value: String::new(),
                problem: format!("unset in an srun step of {world} tasks ({STEP_NUM_TASKS})"),
            })
        };
        let rank = required(PROCID)?;
        let local = required(LOCALID)?;
        let own_gpu = var(VISIBLE_DEVICES).is_some_and(|d| !d.is_empty() && !d.contains(','));
        Ok(Some(Self {
            job: var(JOB_ID).unwrap_or_default(),
            step: var(STEP_ID).unwrap_or_default(),
            rank,
            world,
            device: if own_gpu { 0 } else { local },
            nodes: number(STEP_NUM_NODES)?.unwrap_or(1),
        }))
    }

    /// The rendezvous folder of this step under `root` (the experiment's output folder):
    /// one per job and step, so that every srun of a job meets afresh.
    pub fn store(&self, root: &Path) -> PathBuf {
        root.join("rendezvous")
            .join(format!("slurm-{}.{}", self.job, self.step))
    }

    /// The value of a torchrun variable (and `GADMS_STORE`, unless the environment sets
    /// it) that this step stands for; `None` for the others. On one node every rank is
    /// local, which lets the ranks connect over loopback.
    pub fn var(&self, name: &str, root: &Path) -> Option<String> {
        match name {
            WORLD_SIZE => Some(self.world.to_string()),
            RANK => Some(self.rank.to_string()),
            LOCAL_RANK => Some(self.device.to_string()),
            LOCAL_WORLD_SIZE => (self.nodes == 1).then(|| self.world.to_string()),
            STORE => Some(self.store(root).display().to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::environment;

    fn step(vars: &[(&str, &str)]) -> Result<Option<Step>, DistError> {
        Step::from_vars(environment(vars))
    }

    /// What srun sets for the second of two tasks on one node (checked on SLURM 22.05).
    const TASK_1_OF_2: [(&str, &str); 7] = [
        ("SLURM_JOB_ID", "41"),
        ("SLURM_STEP_ID", "0"),
        ("SLURM_STEP_NUM_TASKS", "2"),
        ("SLURM_STEP_NUM_NODES", "1"),
        ("SLURM_NTASKS", "2"),
        ("SLURM_PROCID", "1"),
        ("SLURM_LOCALID", "1"),
    ];

    #[test]
    fn a_task_of_an_srun_step_is_a_rank_of_one_training() {
        let s = step(&TASK_1_OF_2).unwrap().expect("a step of two tasks");
        assert_eq!((s.rank, s.world, s.device, s.nodes), (1, 2, 1, 1));
        let root = Path::new("/shared/out/exp");
        let var = |name| s.var(name, root);
        assert_eq!(var("WORLD_SIZE").as_deref(), Some("2"));
        assert_eq!(var("RANK").as_deref(), Some("1"));
        assert_eq!(var("LOCAL_RANK").as_deref(), Some("1"));
        assert_eq!(
            var("LOCAL_WORLD_SIZE").as_deref(),
            Some("2"),
            "one node: all local"
        );
        assert_eq!(
            var("GADMS_STORE").as_deref(),
            Some("/shared/out/exp/rendezvous/slurm-41.0")
        );
        assert_eq!(
            var("GADMS_DIST_TIMEOUT"),
            None,
            "other variables come from the environment"
        );
    }

    #[test]
    fn a_batch_script_an_array_task_or_a_step_of_one_task_is_a_local_run() {
        let batch = [
            ("SLURM_JOB_ID", "41"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "0"),
        ];
        assert_eq!(
            step(&batch).unwrap(),
            None,
            "no srun step: the batch script itself"
        );
        let array_task = [
            ("SLURM_JOB_ID", "42"),
            ("SLURM_ARRAY_JOB_ID", "40"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_NTASKS", "1"),
            ("SLURM_PROCID", "0"),
        ];
        assert_eq!(step(&array_task).unwrap(), None);
        let one = [
            ("SLURM_STEP_NUM_TASKS", "1"),
            ("SLURM_PROCID", "0"),
            ("SLURM_LOCALID", "0"),
        ];
        assert_eq!(step(&one).unwrap(), None);
        assert_eq!(step(&[]).unwrap(), None);
    }

    #[test]
    fn several_nodes_leave_the_local_world_open_and_own_gpus_are_device_0() {
        let mut vars = TASK_1_OF_2.to_vec();
        vars.retain(|(k, _)| *k != "SLURM_STEP_NUM_NODES");
        vars.extend([("SLURM_STEP_NUM_NODES", "2"), ("CUDA_VISIBLE_DEVICES", "3")]);
        let s = step(&vars).unwrap().unwrap();
        assert_eq!(s.var("LOCAL_WORLD_SIZE", Path::new("/o")), None);
        assert_eq!(s.device, 0, "the one GPU the task sees");
        vars.push(("CUDA_VISIBLE_DEVICES", "0,1"));
        vars.retain(|(k, v)| *k != "CUDA_VISIBLE_DEVICES" || *v == "0,1");
        assert_eq!(
            step(&vars).unwrap().unwrap().device,
            1,
            "shared GPUs: by local id"
        );
    }

    #[test]
    fn a_bad_srun_environment_names_the_variable() {
        let no_rank = step(&[("SLURM_STEP_NUM_TASKS", "2"), ("SLURM_LOCALID", "0")]).unwrap_err();
        assert!(no_rank.to_string().contains("SLURM_PROCID"), "{no_rank}");
        let bad = step(&[("SLURM_STEP_NUM_TASKS", "two")]).unwrap_err();
        assert!(bad.to_string().contains("SLURM_STEP_NUM_TASKS"), "{bad}");
    }
}
