//! Where each run of a spec stands (`gadms-run status`): read from its folder (status, lock,
//! checkpoint, the SLURM job given it) and, for a run handed to SLURM, from SLURM's queue.

use std::fmt;

use crate::slurm::queue::Queue;
use crate::spec::{RunPlan, Spec};
use crate::store::{RunDir, State, StoreError};
use crate::train::checkpoint;

/// One run's line.
pub struct RunStatus<'a> {
    pub plan: &'a RunPlan,
    /// `pending`, `queued`, `running`, `interrupted`, `done` or `failed`.
    pub state: &'static str,
    pub detail: String,
}

/// The state of every run of `spec`, in spec order; `queue` is `None` where SLURM's queue
/// cannot be read (a queued run is then told by its record alone).
pub fn of_spec<'a>(spec: &'a Spec, queue: Option<&Queue>) -> Result<Vec<RunStatus<'a>>, StoreError> {
    let out = spec.output_dir();
    spec.runs
        .iter()
        .map(|plan| {
            let (state, detail) = of_run(&RunDir::new(&out, plan), plan, queue)?;
            Ok(RunStatus { plan, state, detail })
        })
        .collect()
}

fn of_run(dir: &RunDir, plan: &RunPlan, queue: Option<&Queue>) -> Result<(&'static str, String), StoreError> {
    if let Some(holder) = dir.holder()? {
        return Ok(("running", holder));
    }
    let status = dir.status();
    Ok(match status.as_ref().filter(|s| s.hash == plan.hash) {
        Some(s) if s.state == State::Done => ("done", String::new()),
        Some(s) if s.state == State::Failed => ("failed", s.error.clone().unwrap_or_default()),
        Some(s) if s.state == State::Running => ("interrupted", interrupted(dir, plan)),
        _ => match (dir.job().filter(|j| j.hash == plan.hash), queue) {
            (Some(job), Some(queue)) => match queue.state(&job.id) {
                Some("RUNNING") => ("running", format!("SLURM job {}, starting", job.id)),
                Some(state) => (
                    "queued",
                    format!("SLURM job {} ({})", job.id, state.to_lowercase()),
                ),
                None => (
                    "pending",
                    format!("SLURM job {} ended without starting it", job.id),
                ),
            },
            (Some(job), None) => (
                "queued",
                format!("submitted as SLURM job {} (squeue did not answer)", job.id),
            ),
            (None, _) => match status {
                Some(s) if s.hash != plan.hash => {
                    ("pending", format!("changed: {}", s.changes(plan).join(", ")))
                }
                _ => ("pending", "not started".to_string()),
            },
        },
    })
}

/// What the next `run` (or submission) does with a run whose process ended mid-way.
fn interrupted(dir: &RunDir, plan: &RunPlan) -> String {
    match checkpoint::position(&dir.path).filter(|p| p.hash == plan.hash) {
        Some(p) => format!("stopped; resumes after epoch {}", p.epoch),
        None => "stopped before its first checkpoint; starts again".to_string(),
    }
}

/// The table `gadms-run status` prints, with a count of each state.
pub struct Table<'a>(pub &'a [RunStatus<'a>]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .0
            .iter()
            .map(|s| s.plan.variant.chars().count())
            .max()
            .unwrap_or(0)
            .max(20);
        writeln!(
            f,
            "{:<w$} {:>6}  {:<16}  {:<11}  detail",
            "variant", "seed", "hash", "state"
        )?;
        for s in self.0 {
            writeln!(
                f,
                "{:<w$} {:>6}  {:<16}  {:<11}  {}",
                s.plan.variant, s.plan.seed, s.plan.hash, s.state, s.detail
            )?;
        }
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for s in self.0 {
            match counts.iter_mut().find(|(state, _)| *state == s.state) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.state, 1)),
            }
        }
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        writeln!(f, "{} run(s): {}", self.0.len(), counts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn each_state_comes_from_the_store_and_the_queue() {
        let out = std::env::temp_dir().join(format!("gadms-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let text = format!(
            "[experiment]\nname = \"t\"\nseeds = [1, 2, 3, 4, 5, 6, 7]\noutput = \"{}\"\n\n[base]\n\
             data.train = {{ plugin = \"d\" }}\nmasking = {{ plugin = \"m\" }}\nlosses = {{}}\n",
            out.display()
        );
        let spec = Spec::parse(Path::new("spec.toml"), &text, &[]).unwrap();
        let dirs: Vec<RunDir> = spec
            .runs
            .iter()
            .map(|p| RunDir::new(&spec.output_dir(), p))
            .collect();
        let runs = &spec.runs;
        // Seed 1: nothing stored.
        dirs[1].set_status(State::Pending, &runs[1], None).unwrap();
        dirs[1].set_job("12_1", &runs[1]).unwrap();
        dirs[2].set_status(State::Pending, &runs[2], None).unwrap();
        dirs[2].set_job("12_2", &runs[2]).unwrap();
        dirs[3]
            .set_status(State::Failed, &runs[3], Some("loss is NaN".into()))
            .unwrap();
        dirs[4].set_status(State::Done, &runs[4], None).unwrap();
        dirs[5].set_status(State::Running, &runs[5], None).unwrap();
        let held = dirs[6].lock().unwrap();
        let queue = Queue::parse("12_1 PENDING\n");
        let statuses = of_spec(&spec, Some(&queue)).unwrap();
        let got: Vec<(&str, &str)> = statuses.iter().map(|s| (s.state, s.detail.as_str())).collect();
        assert_eq!(got[0], ("pending", "not started"));
        assert_eq!(got[1], ("queued", "SLURM job 12_1 (pending)"));
        assert_eq!(got[2], ("pending", "SLURM job 12_2 ended without starting it"));
        assert_eq!(got[3], ("failed", "loss is NaN"));
        assert_eq!(got[4], ("done", ""));
        assert_eq!(
            got[5],
            ("interrupted", "stopped before its first checkpoint; starts again")
        );
        assert_eq!(got[6].0, "running");
        assert!(
            got[6].1.starts_with(&format!("pid {}", std::process::id())),
            "the holder: {}",
            got[6].1
        );
        let table = Table(&statuses).to_string();
        assert!(
            table.contains("7 run(s): 2 pending, 1 queued, 1 failed, 1 done, 1 interrupted, 1 running"),
            "{table}"
        );
        drop(held);
        std::fs::remove_dir_all(&out).unwrap();
    }
}
