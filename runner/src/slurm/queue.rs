//! What SLURM holds now: this user's jobs that have not ended (pending, running,
//! completing, …), each array task on its own, as `squeue` lists them.

use std::collections::BTreeMap;
use std::process::Command;

use super::SlurmError;

/// This user's jobs in the queue, by id (`1234`, or `1234_5` for task 5 of array job 1234).
#[derive(Debug, Clone, Default)]
pub struct Queue {
    jobs: BTreeMap<String, String>,
}

impl Queue {
    /// The queue as `squeue` shows it now.
    pub fn read() -> Result<Self, SlurmError> {
        let mut c = Command::new("squeue");
        c.args(["--me", "--noheader", "--array", "--format=%i %T"]);
        Ok(Self::parse(&super::submit::output(c, "squeue")?))
    }

    /// squeue's `%i %T` lines.
    pub(crate) fn parse(text: &str) -> Self {
        let jobs = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, state)| (id.trim().to_string(), state.trim().to_string()))
            .collect();
        Self { jobs }
    }

    /// The state of job `id` (`PENDING`, `RUNNING`, …) while SLURM holds it.
    pub fn state(&self, id: &str) -> Option<&str> {
        self.jobs.get(id).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_array_task_is_a_job_of_its_own() {
        let q = Queue::parse("12_0 RUNNING\n12_1 PENDING\n13 PENDING\n");
        assert_eq!(q.state("12_0"), Some("RUNNING"));
        assert_eq!(q.state("12_1"), Some("PENDING"));
        assert_eq!(q.state("13"), Some("PENDING"));
        assert_eq!(q.state("12_2"), None, "ended or never submitted");
    }
}
