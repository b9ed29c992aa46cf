//! Running a whole spec: every selected run in order, each isolated — a run that fails is
//! recorded with its error and the others go on — and a summary at the end.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dist::{DistError, ProcessGroup};
use crate::plugin::PluginSet;
use crate::progress::Progress;
use crate::spec::{CheckpointChoice, RunPlan, Spec, Upstream};
use crate::store::{ExperimentIndex, LockError, RunDir, RunLock, State, StoreError, HISTORY};
use crate::train::trainer::RunError;
use crate::train::{checkpoint, trainer};

/// Which runs to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these variants (all when empty).
    pub only: Vec<String>,
    /// Run failed runs again.
    pub rerun_failed: bool,
    /// Run everything selected again, finished or not.
    pub force: bool,
    /// Only the runs with these hashes (all when empty).
    pub runs: Vec<String>,
}

/// What will happen to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run,
    /// An interrupted run (status `running`) with a checkpoint of the same configuration.
    Resume,
    SkipDone,
    SkipFailed,
    NotSelected,
    /// Another process holds the run's lock (it is training the run).
    Busy,
}

impl Selection {
    /// What `run` does with `plan`'s run, whose folder is `dir`, by its stored status (locks
    /// aside: [`Action::Busy`] is for the caller that tried the lock).
    pub fn action(&self, plan: &RunPlan, dir: &RunDir) -> Action {
        if !self.only.is_empty() && !self.only.contains(&plan.variant) {
            return Action::NotSelected;
        }
        if !self.runs.is_empty() && !self.runs.contains(&plan.hash) {
            return Action::NotSelected;
        }
        if self.force {
            return Action::Run;
        }
        match dir.status() {
            // A status written for another configuration does not describe this run.
            Some(s) if s.hash != plan.hash => Action::Run,
            Some(s) if s.state == State::Done => Action::SkipDone,
            Some(s) if s.state == State::Failed && !self.rerun_failed => Action::SkipFailed,
            Some(s)
                if s.state == State::Running
                    && checkpoint::position(&dir.path).is_some_and(|p| p.hash == plan.hash) =>
            {
                Action::Resume
            }
            _ => Action::Run,
        }
    }

    /// The finished result of `plan`'s own identity that `run` takes up from the history of
    /// its folder instead of training, where the folder holds another identity's run now (a
    /// setting was set back, earlier code is built again). `--force` always trains.
    pub fn restorable(&self, plan: &RunPlan, dir: &RunDir) -> Option<PathBuf> {
        let current_is_this_run = dir
            .status()
            .is_some_and(|s| s.hash == plan.hash && s.state != State::Pending);
        if self.force || current_is_this_run || self.action(plan, dir) != Action::Run {
            return None;
        }
        dir.finished_in_history(&plan.hash)
    }
}

/// Width of the variant column of the printed tables: the longest name, 28 at least.
fn variant_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0).max(28)
}

/// The run matrix, as `run --dry-run` prints it.
pub fn plan_table(spec: &Spec, selection: &Selection) -> String {
    let out = spec.output_dir();
    let mut s = format!("experiment `{}` → {}\n", spec.experiment.name, out.display());
    let w = variant_width(spec.runs.iter().map(|p| p.variant.as_str()));
    s += &format!(
        "{:<w$} {:>6}  {:<16}  {:<8}  action\n",
        "variant", "seed", "hash", "state"
    );
    for plan in &spec.runs {
        let dir = RunDir::new(&out, plan);
        let status = dir.status();
        let state = status
            .as_ref()
            .filter(|st| st.hash == plan.hash)
            .map(|st| st.state.as_str())
            .unwrap_or("new");
        let busy = dir.is_locked().unwrap_or(false);
        let action = match selection.action(plan, &dir) {
            Action::NotSelected => "skip (--only)".to_string(),
            _ if busy => "skip (another gadms-run holds its lock)".to_string(),
            Action::Run => match selection.restorable(plan, &dir) {
                Some(kept) => format!("skip (done; its result comes back from {})", history_name(&kept)),
                None => run_reason(status.as_ref(), plan, selection.force),
            },
            Action::Resume => "resume".into(),
            Action::SkipDone => "skip (done)".into(),
            Action::SkipFailed => "skip (failed; --rerun-failed)".into(),
            Action::Busy => unreachable!("`action` leaves locks to the caller"),
        };
        s += &format!(
            "{:<w$} {:>6}  {:<16}  {:<8}  {action}\n",
            plan.variant, plan.seed, plan.hash, state
        );
    }
    s
}

/// `history/<name>`, as the tables show a folder of a run's history.
fn history_name(kept: &Path) -> String {
    let name = kept.file_name().unwrap_or_default().to_string_lossy();
    format!("{HISTORY}/{name}")
}

/// Why a run runs: new, what changed since the stored run, or `--force`.
fn run_reason(status: Option<&crate::store::Status>, plan: &RunPlan, force: bool) -> String {
    match status {
        Some(s) if s.hash != plan.hash => format!("run (changed: {})", s.changes(plan).join(", ")),
        Some(s) if force && s.state != State::Pending => {
            "run (--force; the result is kept in history/)".into()
        }
        _ => "run".into(),
    }
}

/// Writes the experiment's index and marks every run about to start fresh as `pending`, so
/// the store shows the whole matrix from the start; a result of another identity moves to
/// the run's history first. A run with a finished result of its own identity in the history
/// takes that up instead ([`Selection::restorable`]). Runs another process holds are left
/// alone. Returns a line for each stored result that runs again, saying what changed and
/// where the old one went, and for each result taken up from the history.
pub fn mark_pending(spec: &Spec, selection: &Selection) -> Result<Vec<String>, StoreError> {
    let out = spec.output_dir();
    ExperimentIndex::of(spec).write(&out)?;
    let mut notes = take_up_kept(spec, selection)?;
    for plan in &spec.runs {
        let dir = RunDir::new(&out, plan);
        if selection.action(plan, &dir) != Action::Run || dir.is_locked()? {
            continue;
        }
        let status = dir.status();
        if status.as_ref().is_some_and(|s| s.hash == plan.hash) {
            continue; // forced: `RunDir::begin` keeps the old result when the run starts
        }
        let changes = status.map(|s| s.changes(plan)).unwrap_or_default();
        if let Some(kept) = dir.archive()? {
            notes.push(format!(
                "[{} seed {}] changed since the stored run ({}); running it again, the old result is kept in {}",
                plan.variant,
                plan.seed,
                changes.join(", "),
                kept.display()
            ));
        }
        dir.set_status(State::Pending, plan, None)?;
    }
    Ok(notes)
}

/// For every selected run that would train, takes up a finished result of its own identity
/// from its history ([`Selection::restorable`]); runs another process holds are left alone.
/// A line for each.
pub fn take_up_kept(spec: &Spec, selection: &Selection) -> Result<Vec<String>, StoreError> {
    let out = spec.output_dir();
    let mut notes = Vec::new();
    for plan in &spec.runs {
        let dir = RunDir::new(&out, plan);
        if dir.is_locked()? {
            continue;
        }
        if let Some(kept) = selection.restorable(plan, &dir) {
            notes.push(restore(&dir, plan, &kept)?);
        }
    }
    Ok(notes)
}

/// Makes `kept` the run's current result again; the line that says so.
fn restore(dir: &RunDir, plan: &RunPlan, kept: &Path) -> Result<String, StoreError> {
    let from = history_name(kept);
    let displaced = dir.restore(kept)?;
    let aside = displaced
        .map(|d| format!("; the run it replaces is kept in {}", d.display()))
        .unwrap_or_default();
    Ok(format!(
        "[{} seed {}] finished before with this identity: its result comes back from {from} instead of training again{aside}",
        plan.variant, plan.seed
    ))
}

/// One line of the summary.
pub struct Outcome {
    pub variant: String,
    pub seed: u64,
    pub state: &'static str,
    pub detail: String,
}

/// The end-of-command summary.
pub struct Summary {
    pub outcomes: Vec<Outcome>,
}

impl Summary {
    pub fn failed(&self) -> bool {
        self.outcomes.iter().any(|o| o.state == "failed")
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = variant_width(self.outcomes.iter().map(|o| o.variant.as_str()));
        writeln!(f, "{:<w$} {:>6}  {:<8}  detail", "variant", "seed", "result")?;
        for o in &self.outcomes {
            writeln!(f, "{:<w$} {:>6}  {:<8}  {}", o.variant, o.seed, o.state, o.detail)?;
        }
        let failed = self.outcomes.iter().filter(|o| o.state == "failed").count();
        writeln!(f, "{} run(s), {failed} failed", self.outcomes.len())
    }
}

/// Why [`run`] stopped before the end of the spec.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dist(#[from] DistError),
    /// A run trained across ranks failed; the ranks cannot go on together.
    #[error("[{variant} seed {seed}] {message}")]
    AcrossRanks {
        variant: String,
        seed: u64,
        message: String,
    },
}

/// Every [`Action`], numbered for rank 0 to send its choice to the other ranks.
const ACTIONS: [Action; 6] = [
    Action::Run,
    Action::Resume,
    Action::SkipDone,
    Action::SkipFailed,
    Action::NotSelected,
    Action::Busy,
];

/// Rank 0's action for a run, with the run's lock when it is to train: a run that another
/// process holds is [`Action::Busy`], with the holder's description.
fn claim(
    selection: &Selection,
    plan: &RunPlan,
    dir: &RunDir,
) -> Result<(Action, Option<RunLock>, String), StoreError> {
    let action = selection.action(plan, dir);
    if !matches!(action, Action::Run | Action::Resume) {
        return Ok((action, None, String::new()));
    }
    match dir.lock() {
        Ok(lock) => Ok((action, Some(lock), String::new())),
        Err(e @ LockError::Held { .. }) => Ok((Action::Busy, None, e.to_string())),
        Err(LockError::Store(e)) => Err(e),
    }
}

/// How long rank 0, having lost a peer, waits for that peer's word of why it failed (less
/// than the launcher's grace before it stops the ranks).
const FAILURE_WORD: Duration = Duration::from_secs(5);

/// Runs the selected runs of `spec`, each across the ranks of `group`. Rank 0 alone reads
/// and writes the run store; the other ranks follow its choices.
pub fn run(
    spec: &Spec,
    plugins: &PluginSet,
    selection: &Selection,
    group: &ProcessGroup,
) -> Result<Summary, ExperimentError> {
    let out = spec.output_dir();
    let mut outcomes = Vec::new();
    let selected = spec
        .runs
        .iter()
        .filter(|p| selection.action(p, &RunDir::new(&out, p)) != Action::NotSelected);
    let progress = Progress::new(selected.count() as u64);
    if group.is_leader() {
        for note in mark_pending(spec, selection)? {
            progress.println(&note);
        }
    }
    for plan in &spec.runs {
        let dir = RunDir::new(&out, plan);
        let (mine, _lock, busy) = if group.is_leader() {
            claim(selection, plan, &dir)?
        } else {
            (Action::NotSelected, None, String::new())
        };
        let mine = ACTIONS.iter().position(|a| *a == mine);
        let action = ACTIONS[group.leader_value(mine.expect("every action is listed") as i64)? as usize];
        let (state, detail) = match action {
            Action::NotSelected => continue,
            Action::Busy => {
                progress.println(&format!("[{} seed {}] {busy}", plan.variant, plan.seed));
                ("skipped", busy)
            }
            Action::SkipDone => (
                "done",
                "finished before; skipped (use --force to rerun)".to_string(),
            ),
            Action::SkipFailed => {
                let error = dir.status().and_then(|s| s.error).unwrap_or_default();
                (
                    "failed",
                    format!("failed before, skipped (use --rerun-failed): {error}"),
                )
            }
            action @ (Action::Run | Action::Resume) => {
                let resume = action == Action::Resume;
                match (group.is_leader(), resume) {
                    (false, _) => {}
                    (true, true) => dir.set_status(State::Running, plan, None)?,
                    (true, false) => {
                        if let Some(kept) = dir.begin(plan)? {
                            progress.println(&format!(
                                "[{} seed {}] the previous result is kept in {}",
                                plan.variant,
                                plan.seed,
                                kept.display()
                            ));
                        }
                    }
                }
                match trainer::train(plan, plugins, &spec.dir(), &dir, resume, &progress, group) {
                    Ok(result) => {
                        if group.is_leader() {
                            dir.set_status(State::Done, plan, None)?;
                        }
                        let metrics = result
                            .last
                            .iter()
                            .map(|(name, m)| format!("{name}: R@1 {:.2} mAP {:.2}", m.r1, m.map))
                            .collect::<Vec<_>>()
                            .join("; ");
                        ("done", format!("[{}] {metrics}", result.device))
                    }
                    Err(e) if group.world() > 1 => return Err(fail_across_ranks(group, &dir, plan, &e)?),
                    Err(e) => {
                        let message = error_chain(&e);
                        dir.log_line(&format!("failed: {message}"))?;
                        dir.set_status(State::Failed, plan, Some(message.clone()))?;
                        progress.println(&format!(
                            "[{} seed {}] failed: {message}",
                            plan.variant, plan.seed
                        ));
                        ("failed", message)
                    }
                }
            }
        };
        progress.run_done();
        outcomes.push(Outcome {
            variant: plan.variant.clone(),
            seed: plan.seed,
            state,
            detail,
        });
    }
    progress.finish();
    Ok(Summary { outcomes })
}

/// Settles a run that failed on this rank of a training across ranks. Each rank leaves its
/// own error in the rendezvous store, unless all it saw was a lost peer. Rank 0 records the
/// cause as the run's failure — its own error, or the word another rank left — and when
/// there is no cause on record (a process killed, a node lost) it only logs the
/// interruption: the run stays `running`, and the next launch resumes it from its last
/// checkpoint.
fn fail_across_ranks(
    group: &ProcessGroup,
    dir: &RunDir,
    plan: &RunPlan,
    error: &RunError,
) -> Result<ExperimentError, StoreError> {
    let lost_peer = matches!(error.dist(), Some(DistError::Collective { .. }));
    // Errors of the collectives name the rank already.
    let message = match error.dist() {
        Some(_) => error_chain(error),
        None => format!("rank {}: {}", group.rank(), error_chain(error)),
    };
    if !lost_peer {
        group.record_failure(&message);
    }
    let cause = if lost_peer {
        group.recorded_failure(FAILURE_WORD)
    } else {
        Some(message.clone())
    };
    if group.is_leader() {
        match &cause {
            Some(cause) => {
                dir.log_line(&format!("failed: {cause}"))?;
                dir.set_status(State::Failed, plan, Some(cause.clone()))?;
            }
            None => dir.log_line(&format!(
                "interrupted: {message}; the next launch resumes from the last checkpoint"
            ))?,
        }
    }
    Ok(ExperimentError::AcrossRanks {
        variant: plan.variant.clone(),
        seed: plan.seed,
        message: cause.unwrap_or(message),
    })
}

/// Runs the selected runs on several devices at once, one run at a time per device: each
/// run is a child process made by `child(plan, device)` (the same binary, selecting the run
/// by its hash). The summary is read back from the runs' status files.
pub fn run_on_devices(
    spec: &Spec,
    selection: &Selection,
    devices: &[String],
    child: impl Fn(&RunPlan, &str) -> std::process::Command + Sync,
) -> Result<Summary, StoreError> {
    let out = spec.output_dir();
    // First, so that results taken up from the history are not queued.
    for note in mark_pending(spec, selection)? {
        eprintln!("{note}");
    }
    let selected: Vec<&RunPlan> = spec
        .runs
        .iter()
        .filter(|p| selection.action(p, &RunDir::new(&out, p)) != Action::NotSelected)
        .collect();
    let queue = std::sync::Mutex::new(
        selected
            .iter()
            .filter(|p| {
                matches!(
                    selection.action(p, &RunDir::new(&out, p)),
                    Action::Run | Action::Resume
                )
            })
            .copied()
            .collect::<std::collections::VecDeque<_>>(),
    );
    std::thread::scope(|scope| {
        for device in devices {
            let (queue, child) = (&queue, &child);
            scope.spawn(move || loop {
                let Some(plan) = queue.lock().expect("queue lock").pop_front() else {
                    return;
                };
                // The child records its own outcome in the run's status file.
                if let Err(e) = child(plan, device).status() {
                    eprintln!(
                        "[{} seed {}] could not start on {device}: {e}",
                        plan.variant, plan.seed
                    );
                }
            });
        }
    });
    let outcomes = selected
        .into_iter()
        .map(|plan| {
            let status = RunDir::new(&out, plan).status().filter(|s| s.hash == plan.hash);
            let (state, detail) = match status {
                Some(s) if s.state == State::Done => ("done", String::new()),
                Some(s) if s.state == State::Failed => ("failed", s.error.unwrap_or_default()),
                _ => (
                    "failed",
                    "the run's process ended without a result; run again to resume".to_string(),
                ),
            };
            Outcome {
                variant: plan.variant.clone(),
                seed: plan.seed,
                state,
                detail,
            }
        })
        .collect();
    Ok(Summary { outcomes })
}

/// An error with its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s += &format!(": {text}");
        }
        source = cause.source();
    }
    s
}

/// Why the runs a spec's `model.init` names could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("`model.init` names {run}: {source}")]
    Spec {
        run: String,
        #[source]
        source: crate::spec::SpecError,
    },
    #[error("`model.init` names {run}, which cannot start: {source}")]
    Check {
        run: String,
        #[source]
        source: Box<crate::components::ComponentError>,
    },
    #[error("`model.init` names {run}, which did not finish: {detail}")]
    Failed { run: String, detail: String },
    #[error(
        "`model.init` names {run}, which another gadms-run is training ({detail}); run this again once \
         it has finished"
    )]
    Busy { run: String, detail: String },
    #[error("`model.init` names {run}, which finished without `{folder}/`: {fix}")]
    NoCheckpoint {
        run: String,
        folder: String,
        fix: String,
    },
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
}

/// Trains, or finds finished, every run that the selected runs of `spec` start from (their
/// `model.init` names a run of another spec), before those runs start: its own upstream
/// runs first, then the run itself, stored and reported in its own experiment's folder.
/// Returns the summary lines of what ran.
pub fn run_upstreams(
    spec: &Spec,
    plugins: &PluginSet,
    selection: &Selection,
    group: &ProcessGroup,
) -> Result<Vec<Outcome>, UpstreamError> {
    let out = spec.output_dir();
    let selected = |p: &RunPlan| selection.action(p, &RunDir::new(&out, p)) != Action::NotSelected;
    let mut outcomes = Vec::new();
    for up in spec.upstreams(selected) {
        if !up.is_done() {
            outcomes.extend(train_upstream(up, plugins, group)?);
        }
        if !up.weights().is_file() {
            return Err(UpstreamError::NoCheckpoint {
                run: up.describe(),
                folder: up.checkpoint.folder(),
                fix: missing_checkpoint_fix(&up.checkpoint),
            });
        }
    }
    Ok(outcomes)
}

/// Trains upstream run `up` (its own upstreams first); the summary lines of what ran.
fn train_upstream(
    up: &Upstream,
    plugins: &PluginSet,
    group: &ProcessGroup,
) -> Result<Vec<Outcome>, UpstreamError> {
    let spec_error = |source| UpstreamError::Spec {
        run: up.describe(),
        source,
    };
    let mut upstream = Spec::load(&up.spec, &[]).map_err(spec_error)?;
    upstream.bind(plugins).map_err(spec_error)?;
    let plan = upstream.runs.iter().find(|p| p.hash == up.hash);
    if let Some(plan) = plan {
        // As for the spec's own runs: missing data or weights stop before anything trains.
        crate::components::check(plugins, plan, &upstream.dir()).map_err(|source| UpstreamError::Check {
            run: up.describe(),
            source: Box::new(source),
        })?;
    }
    let only_it = Selection {
        runs: vec![up.hash.clone()],
        ..Selection::default()
    };
    let mut outcomes = run_upstreams(&upstream, plugins, &only_it, group)?;
    let summary = run(&upstream, plugins, &only_it, group)?;
    if let Some(o) = summary.outcomes.iter().find(|o| o.state != "done") {
        let run = up.describe();
        let detail = o.detail.clone();
        return Err(match o.state {
            "skipped" => UpstreamError::Busy { run, detail },
            _ => UpstreamError::Failed { run, detail },
        });
    }
    outcomes.extend(summary.outcomes);
    Ok(outcomes)
}

/// What makes a finished run keep the checkpoint `choice` names.
fn missing_checkpoint_fix(choice: &CheckpointChoice) -> String {
    match choice {
        CheckpointChoice::Last => "the run's folder lost it; `gadms-run run` on its spec with `--force` retrains it".into(),
        CheckpointChoice::Best => "a run keeps `best/` only when it evaluates a validation split (a `data.eval` entry \
                                   with `split = \"val\"`); add one, or start from `checkpoint = \"last\"`"
            .into(),
        CheckpointChoice::BestOn(set) => format!(
            "a run keeps a test set's own best only with `train.keep_best = \"each\"` and a `data.eval` entry \
             named `{set}`; set them in its spec and retrain it with `gadms-run run SPEC --force` (the finished \
             result moves to its history)"
        ),
    }
}
