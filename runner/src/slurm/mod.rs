//! Running an experiment's runs on a SLURM cluster: [`submit`] hands the pending runs of a
//! spec to `sbatch` as one job array, a task per run by its identity, and a job after it that
//! writes the report; [`queue`] reads what SLURM holds now, so that a run queued already is
//! not submitted twice and `gadms-run status` can say where each run is. The `[slurm]` table
//! of a spec ([`Resources`]) says what each task asks for. (A training across the tasks of an
//! srun step is [`crate::dist::slurm`].)

pub mod batch;
pub mod queue;
pub mod submit;

use std::path::PathBuf;

pub use batch::Resources;

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(
        "cannot run `{command}`: {source}; submitting to SLURM needs its client commands (sbatch, \
         squeue) on this machine's PATH, and SLURM_CONF naming the cluster's slurm.conf where it is \
         not the default"
    )]
    Missing {
        command: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("sbatch printed `{output}`, not a job id")]
    JobId { output: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "`model.init` of variant `{variant}` names {upstream}, which has not finished and is not queued; \
         submit that spec first (`gadms-run run UPSTREAM.toml --slurm`): this array then starts once \
         that run's task has succeeded"
    )]
    Upstream { variant: String, upstream: String },
}

/// The SLURM job this process is part of, as squeue names it: `<array job>_<task>` for an
/// array task, else the job id; `None` outside SLURM.
pub fn this_job() -> Option<String> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(array), Some(task)) => Some(format!("{array}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}
