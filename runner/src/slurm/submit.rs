//! `gadms-run run SPEC --slurm`: which of the selected runs to hand to SLURM, and handing
//! them over. A run is submitted when `run` would train it here and nothing trains or waits
//! to train it already: not finished (nor failed, without `--rerun-failed`), not locked by a
//! process training it, not queued in a job SLURM still holds. The task that starts it
//! decides again through the run's lock, as a local `run` does.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::batch::{report_script, ArrayJob};
use super::queue::Queue;
use super::SlurmError;
use crate::experiment::{Action, Selection};
use crate::spec::{RunPlan, Spec};
use crate::store::{RunDir, State};

/// What a submission does with one selected run.
pub struct Choice<'a> {
    pub plan: &'a RunPlan,
    /// Why it is submitted, or why not.
    pub reason: String,
    pub submit: bool,
}

/// The selected runs of `spec`, each with whether it is submitted and why.
pub fn choose<'a>(
    spec: &'a Spec,
    selection: &Selection,
    queue: &Queue,
) -> Result<Vec<Choice<'a>>, SlurmError> {
    let out = spec.output_dir();
    let mut choices = Vec::new();
    for plan in &spec.runs {
        let dir = RunDir::new(&out, plan);
        let (submit, reason) = match selection.action(plan, &dir) {
            Action::NotSelected => continue,
            Action::SkipDone => (false, "done".to_string()),
            Action::SkipFailed => (false, "failed before (--rerun-failed submits it again)".into()),
            Action::Busy => (false, "running".into()),
            // Only a dry run sees these: a submission takes them up first.
            Action::Run if selection.restorable(plan, &dir).is_some() => (
                false,
                "done before with this identity (its result comes back from history/)".into(),
            ),
            action @ (Action::Run | Action::Resume) => match (dir.holder()?, queued(&dir, plan, queue)) {
                (Some(holder), _) => (false, format!("running ({holder})")),
                (None, Some(job)) => (false, format!("queued already, {job}")),
                (None, None) if action == Action::Resume => (true, "resumes from its checkpoint".into()),
                (None, None) => (true, "new".into()),
            },
        };
        choices.push(Choice { plan, reason, submit });
    }
    Ok(choices)
}

/// The job SLURM holds for `plan`'s run, as `job <id> <state>`.
fn queued(dir: &RunDir, plan: &RunPlan, queue: &Queue) -> Option<String> {
    let job = dir.job().filter(|j| j.hash == plan.hash)?;
    let state = queue.state(&job.id)?;
    Some(format!("job {} {}", job.id, state.to_lowercase()))
}

/// A submission of `runs` of `spec`.
pub struct Request<'a> {
    pub spec: &'a Spec,
    pub runs: Vec<&'a RunPlan>,
    /// The command line of a task without its run (`gadms-run … run SPEC …`).
    pub run_command: Vec<String>,
    /// `gadms-run report DIR`.
    pub report_command: Vec<String>,
}

/// What was submitted: the array's job id, the report job's, the jobs the array waits for
/// (of the runs its runs start from), and where the scripts and the tasks' logs are.
pub struct Submitted {
    pub array: String,
    pub report: String,
    pub after: Vec<String>,
    pub log_dir: PathBuf,
}

impl Request<'_> {
    /// `<output>/<experiment>/slurm/`, absolute (the tasks start wherever sbatch was run):
    /// the scripts submitted and the tasks' logs.
    pub fn log_dir(&self) -> PathBuf {
        let dir = self.spec.output_dir().join("slurm");
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// The array's script and the report job's.
    pub fn scripts(&self) -> (String, String) {
        let log_dir = self.log_dir();
        let name = &self.spec.experiment.name;
        let array = ArrayJob {
            name,
            resources: &self.spec.slurm,
            log_dir: &log_dir,
            runs: &self.runs,
            command: &self.run_command,
        };
        let report = report_script(name, &self.spec.slurm, &log_dir, &self.report_command);
        (array.script(), report)
    }

    /// Marks the runs pending, submits the array (with `sbatch_args` on sbatch's command
    /// line, after the jobs of the runs they start from, see [`Self::upstream_jobs`]) and the
    /// report job after it, and records each run's task in its folder.
    pub fn submit(
        &self,
        selection: &Selection,
        queue: &Queue,
        sbatch_args: &[String],
    ) -> Result<Submitted, SlurmError> {
        let upstream = self.upstream_jobs(queue)?;
        crate::experiment::mark_pending(self.spec, selection)?;
        let log_dir = self.log_dir();
        std::fs::create_dir_all(&log_dir).map_err(|source| SlurmError::Io {
            path: log_dir.clone(),
            source,
        })?;
        let (array_script, report_script) = self.scripts();
        let after_upstream =
            (!upstream.is_empty()).then(|| format!("--dependency=afterok:{}", upstream.join(":")));
        let args: Vec<String> = after_upstream
            .into_iter()
            .chain(sbatch_args.iter().cloned())
            .collect();
        let array = sbatch(&log_dir, "array", &array_script, &args)?;
        let out = self.spec.output_dir();
        for (task, plan) in self.runs.iter().enumerate() {
            RunDir::new(&out, plan).set_job(&format!("{array}_{task}"), plan)?;
        }
        let after = [
            format!("--dependency=afterany:{array}"),
            "--kill-on-invalid-dep=yes".to_string(),
        ];
        let args: Vec<String> = after.into_iter().chain(sbatch_args.iter().cloned()).collect();
        let report = sbatch(&log_dir, "report", &report_script, &args)?;
        Ok(Submitted {
            array,
            report,
            after: upstream,
            log_dir,
        })
    }

    /// A run that starts from another run's weights (`model.init`) needs that run finished,
    /// since a task trains its own run only: the SLURM jobs of such runs that are queued or
    /// running (their tasks), for the array to start after. A run that is neither finished
    /// nor in the queue is an error.
    fn upstream_jobs(&self, queue: &Queue) -> Result<Vec<String>, SlurmError> {
        let mut jobs: Vec<String> = Vec::new();
        for plan in &self.runs {
            let Some(up) = plan.upstream.as_deref() else {
                continue;
            };
            let dir = RunDir::at(up.run_dir.clone());
            let done = dir
                .status()
                .is_some_and(|s| s.hash == up.hash && s.state == State::Done);
            let queued = dir
                .job()
                .filter(|j| j.hash == up.hash && queue.state(&j.id).is_some());
            match (done, queued) {
                (true, _) => {}
                (false, Some(job)) if jobs.contains(&job.id) => {}
                (false, Some(job)) => jobs.push(job.id),
                (false, None) => {
                    return Err(SlurmError::Upstream {
                        variant: plan.variant.clone(),
                        upstream: up.describe(),
                    })
                }
            }
        }
        Ok(jobs)
    }
}

/// Writes `script` into `dir` and submits it; returns the job id. The script is kept as
/// `<job id>-<kind>.sh`, a record of what ran.
fn sbatch(dir: &Path, kind: &str, script: &str, args: &[String]) -> Result<String, SlurmError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SlurmError::Io { path, source }
    };
    let file = dir.join(format!("submitting-{}-{kind}.sh", std::process::id()));
    std::fs::write(&file, script).map_err(io(&file))?;
    let mut c = Command::new("sbatch");
    c.arg("--parsable").args(args).arg(&file);
    let printed = output(c, "sbatch");
    let printed = match printed {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            return Err(e);
        }
    };
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let id = printed.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SlurmError::JobId { output: printed });
    }
    let kept = dir.join(format!("{id}-{kind}.sh"));
    std::fs::rename(&file, &kept).map_err(io(&kept))?;
    Ok(id)
}

/// Runs a SLURM client command; returns what it printed, or the error naming it.
pub(crate) fn output(mut command: Command, name: &'static str) -> Result<String, SlurmError> {
    let out = command.output().map_err(|source| SlurmError::Missing {
        command: name,
        source,
    })?;
    if !out.status.success() {
        return Err(SlurmError::Failed {
            command: format!("{command:?}"),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
