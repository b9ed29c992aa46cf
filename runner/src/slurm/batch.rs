//! The sbatch scripts of a submission: a job array whose task `i` runs the `i`-th pending run
//! by its identity (`gadms-run run SPEC --run HASH`), and a job that writes the report once
//! the array has ended. Each task asks for what the spec's `[slurm]` table says one run needs.

use std::path::Path;

use serde::Deserialize;

use crate::spec::RunPlan;

/// `[slurm]`: what one run asks SLURM for, each key an `#SBATCH` line of every task. sbatch
/// options given on the command line (`gadms-run run SPEC --slurm -- --time=1:00:00`) win
/// over these.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// The time limit of one run, as sbatch takes it (`12:00:00`, `2-00:00:00`).
    pub time: Option<String>,
    /// GPUs of one run; with more than one, the run trains across them, a process each
    /// (`--nproc-per-node`).
    #[serde(default)]
    pub gpus: usize,
    /// CPU cores of one run.
    pub cpus: Option<usize>,
    /// Memory of one run, as sbatch takes it (`64G`).
    pub mem: Option<String>,
    /// Further sbatch options, each as on sbatch's command line (`--qos=high`); they apply to
    /// the report job too.
    #[serde(default)]
    pub directives: Vec<String>,
}

impl Resources {
    /// A directive that is not an option (`qos=high` for `--qos=high`), which sbatch would
    /// ignore in a script, named with the fix.
    pub fn check(&self) -> Result<(), String> {
        match self.directives.iter().find(|d| !d.starts_with('-')) {
            Some(d) => Err(format!(
                "`{d}` is not an sbatch option; write it as on sbatch's command line (`--{d}`)"
            )),
            None => Ok(()),
        }
    }

    /// The `#SBATCH` options every job of a submission shares: where and how long.
    fn shared(&self) -> Vec<String> {
        let mut options = Vec::new();
        let mut named = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                options.push(format!("--{name}={v}"));
            }
        };
        named("partition", &self.partition);
        named("account", &self.account);
        named("time", &self.time);
        options.extend(self.directives.iter().cloned());
        options
    }

    /// The `#SBATCH` options of one run's task.
    fn of_a_run(&self) -> Vec<String> {
        let mut options = vec!["--ntasks=1".to_string(), "--nodes=1".to_string()];
        if let Some(cpus) = self.cpus {
            options.push(format!("--cpus-per-task={cpus}"));
        }
        if self.gpus > 0 {
            options.push(format!("--gres=gpu:{}", self.gpus));
        }
        if let Some(mem) = &self.mem {
            options.push(format!("--mem={mem}"));
        }
        options.extend(self.shared());
        options
    }
}

/// The job array of a submission.
pub struct ArrayJob<'a> {
    /// The experiment's name (the jobs are `gadms-<name>`).
    pub name: &'a str,
    pub resources: &'a Resources,
    /// Where the tasks' logs go (`<array job>_<task>.log`).
    pub log_dir: &'a Path,
    /// Task `i` runs `runs[i]`.
    pub runs: &'a [&'a RunPlan],
    /// The command line of a task without its run: `gadms-run … run SPEC …`.
    pub command: &'a [String],
}

impl ArrayJob<'_> {
    pub fn script(&self) -> String {
        let mut options = vec![
            format!("--job-name=gadms-{}", self.name),
            format!("--array=0-{}", self.runs.len().saturating_sub(1)),
        ];
        options.extend(self.resources.of_a_run());
        options.push(format!("--output={}", self.log_dir.join("%A_%a.log").display()));
        let mut command = self.command.to_vec();
        if self.resources.gpus > 1 {
            command.extend(["--nproc-per-node".to_string(), self.resources.gpus.to_string()]);
        }
        let mut s = header(&options);
        s += &format!(
            "#\n# One task per run of experiment `{}`, by its identity:\n",
            self.name
        );
        for (i, plan) in self.runs.iter().enumerate() {
            s += &format!(
                "#   task {i}: {} seed {} ({})\n",
                plan.variant, plan.seed, plan.hash
            );
        }
        let hashes: Vec<&str> = self.runs.iter().map(|p| p.hash.as_str()).collect();
        s += &format!("set -euo pipefail\nruns=({})\n", hashes.join(" "));
        s += &format!(
            "exec {} --run \"${{runs[$SLURM_ARRAY_TASK_ID]}}\"\n",
            shell_words(&command)
        );
        s
    }
}

/// The job that writes the report after the array: `command` is `gadms-run report DIR`.
pub fn report_script(name: &str, resources: &Resources, log_dir: &Path, command: &[String]) -> String {
    let mut options = vec![
        format!("--job-name=gadms-{name}-report"),
        "--ntasks=1".to_string(),
    ];
    options.extend(resources.shared());
    options.push(format!("--output={}", log_dir.join("%j-report.log").display()));
    header(&options) + &format!("set -euo pipefail\nexec {}\n", shell_words(command))
}

fn header(options: &[String]) -> String {
    let mut s = "#!/bin/bash\n".to_string();
    for o in options {
        s += &format!("#SBATCH {o}\n");
    }
    s
}

/// `words` as one shell command line, each word quoted where it needs to be.
fn shell_words(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn spec() -> Spec {
        let text =
            "[experiment]\nname = \"abl\"\nseeds = [1, 2]\n\n[base]\ndata.train = { plugin = \"d\" }\n\
                    masking = { plugin = \"m\" }\nlosses = {}\n";
        Spec::parse(Path::new("spec.toml"), text, &[]).unwrap()
    }

    #[test]
    fn each_task_runs_one_run_by_its_hash_with_the_resources_of_one_run() {
        let spec = spec();
        let runs: Vec<&RunPlan> = spec.runs.iter().collect();
        let resources = Resources {
            partition: Some("gpu".into()),
            gpus: 2,
            cpus: Some(8),
            time: Some("4:00:00".into()),
            directives: vec!["--qos=high".into()],
            ..Resources::default()
        };
        let command = ["/opt/gadms-run", "run", "/x/my spec.toml"].map(String::from);
        let script = ArrayJob {
            name: "abl",
            resources: &resources,
            log_dir: Path::new("/x/out/abl/slurm"),
            runs: &runs,
            command: &command,
        }
        .script();
        for line in [
            "#SBATCH --array=0-1",
            "#SBATCH --ntasks=1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --gres=gpu:2",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=4:00:00",
            "#SBATCH --qos=high",
            "#SBATCH --output=/x/out/abl/slurm/%A_%a.log",
        ] {
            assert!(script.lines().any(|l| l == line), "no `{line}` in\n{script}");
        }
        let hashes = format!("runs=({} {})", runs[0].hash, runs[1].hash);
        assert!(script.contains(&hashes), "{script}");
        assert!(
            script.contains(
                "exec /opt/gadms-run run '/x/my spec.toml' --nproc-per-node 2 --run \"${runs[$SLURM_ARRAY_TASK_ID]}\""
            ),
            "two GPUs: the run trains across both\n{script}"
        );
    }

    #[test]
    fn the_report_job_shares_where_and_how_long_but_not_the_gpus() {
        let resources = Resources {
            account: Some("lab".into()),
            gpus: 4,
            ..Resources::default()
        };
        let command = ["gadms-run", "report", "/x/out/it's"].map(String::from);
        let script = report_script("abl", &resources, Path::new("/l"), &command);
        assert!(script.contains("#SBATCH --account=lab\n"), "{script}");
        assert!(!script.contains("gres"), "{script}");
        assert!(
            script.ends_with("exec gadms-run report '/x/out/it'\\''s'\n"),
            "{script}"
        );
    }

    #[test]
    fn a_directive_must_be_an_option() {
        let bad = Resources {
            directives: vec!["qos=high".into()],
            ..Resources::default()
        };
        assert!(bad.check().unwrap_err().contains("`--qos=high`"));
    }
}
