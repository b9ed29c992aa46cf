//! Progress of a command: a bar per run (epoch, step, loss, samples/s, ETA) under a bar
//! across all runs. Bars are drawn only when stderr is a terminal; otherwise the same log
//! lines go to stderr plainly, so CI logs and redirected output stay readable.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress display of one `gadms-run run`.
pub struct Progress {
    multi: Option<MultiProgress>,
    overall: ProgressBar,
}

impl Progress {
    /// A display for `runs` runs; hidden unless stderr is a terminal and
    /// `GADMS_PLAIN_PROGRESS` is unset (runs started by `--devices` share their parent's
    /// terminal and print plain lines).
    pub fn new(runs: u64) -> Self {
        if !std::io::stderr().is_terminal() || std::env::var_os("GADMS_PLAIN_PROGRESS").is_some() {
            return Self {
                multi: None,
                overall: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(runs));
        overall.set_style(
            ProgressStyle::with_template("runs {pos}/{len} [{bar:30}] {elapsed_precise} elapsed, ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self {
            multi: Some(multi),
            overall,
        }
    }

    /// A bar for one run of `steps` training steps.
    pub fn run(&self, label: &str, steps: u64) -> RunProgress {
        let Some(multi) = &self.multi else {
            return RunProgress {
                bar: ProgressBar::hidden(),
            };
        };
        let bar = multi.insert_before(&self.overall, ProgressBar::new(steps));
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] step {pos}/{len} {msg} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        RunProgress { bar }
    }

    /// Prints a log line above the bars (or plainly, without a terminal).
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// One run is over (finished, failed or skipped).
    pub fn run_done(&self) {
        self.overall.inc(1);
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

/// The bar of one run.
pub struct RunProgress {
    bar: ProgressBar,
}

impl RunProgress {
    /// One step done.
    pub fn step(&self) {
        self.bar.inc(1);
    }

    /// Updates the message at a log point.
    pub fn status(&self, epoch: usize, epochs: usize, loss: f64, samples_per_s: f64) {
        self.bar.set_message(format!(
            "epoch {epoch}/{epochs} loss {loss:.4} {samples_per_s:.0} samples/s"
        ));
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
