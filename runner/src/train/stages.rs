//! The stage profile of the training step (`GADMS_PROFILE_STAGES=1`): the device is
//! synchronised and the time taken at the end of each stage of every step, and the epoch's
//! per-stage medians go into the metrics log and one log line.
//!
//! Without a sync the host only measures how fast it queues kernels; with one per stage, each
//! stage's time is what the device spent on it, at the cost of the overlap the syncs break.
//! So the profile is off by default, and when off nothing here syncs or allocates: every
//! [`Stages::lap`] is one branch on an empty `Option`.

use std::time::Instant;

use tch::Device;

/// The environment variable that switches the profile on (`1`).
pub const SWITCH: &str = "GADMS_PROFILE_STAGES";

/// A stage of the training step, in the order the step runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The host batch copied to the device.
    Transfer,
    /// The image encoder.
    Image,
    /// The clean caption through the text blocks before the scorer's tail.
    CleanCaption,
    /// The masking strategy's `score` call: the tail's re-run, its backward, the score maps.
    Score,
    /// The alignment text through the text encoder.
    Alignment,
    /// The MTP text through the text encoder.
    Mtp,
    /// The gathers across ranks and every loss.
    Losses,
    /// The backward and the gradients' average across ranks.
    Backward,
    /// The optimizer's update.
    Optimizer,
}

impl Stage {
    const ALL: [Stage; 9] = [
        Stage::Transfer,
        Stage::Image,
        Stage::CleanCaption,
        Stage::Score,
        Stage::Alignment,
        Stage::Mtp,
        Stage::Losses,
        Stage::Backward,
        Stage::Optimizer,
    ];

    /// The stage's name in the metrics (`<name>_ms`) and the log.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Transfer => "transfer",
            Stage::Image => "image",
            Stage::CleanCaption => "clean_caption",
            Stage::Score => "score",
            Stage::Alignment => "alignment",
            Stage::Mtp => "mtp",
            Stage::Losses => "losses",
            Stage::Backward => "backward",
            Stage::Optimizer => "optimizer",
        }
    }
}

/// The step's stage clock: a [`StageTimer`] when the profile is on, nothing otherwise.
#[derive(Default)]
pub struct Stages(Option<StageTimer>);

impl Stages {
    /// On when `GADMS_PROFILE_STAGES` is `1`, timing the work queued on `device`.
    pub fn from_env(device: Device) -> Self {
        let on = std::env::var(SWITCH).is_ok_and(|v| v == "1");
        Self(on.then(|| StageTimer::new(device)))
    }

    /// Starts a step: waits for the device, so the first stage does not pay for earlier work.
    pub fn start(&mut self) {
        if let Some(t) = &mut self.0 {
            t.start();
        }
    }

    /// Ends `stage`: waits for the device and records the time since the previous mark.
    pub fn lap(&mut self, stage: Stage) {
        if let Some(t) = &mut self.0 {
            t.lap(stage);
        }
    }

    /// The median milliseconds of each stage that ran since the last call, in step order, and
    /// the number of steps; `None` when the profile is off or no step ran.
    pub fn take_medians(&mut self) -> Option<(usize, Vec<(Stage, f64)>)> {
        self.0.as_mut().and_then(StageTimer::take_medians)
    }
}

/// Per-stage times of the steps since the last [`StageTimer::take_medians`].
pub struct StageTimer {
    device: Device,
    mark: Instant,
    /// Milliseconds per step, indexed as [`Stage::ALL`].
    laps: [Vec<f64>; Stage::ALL.len()],
    /// The current step's milliseconds so far: a step over micro-batches passes a stage
    /// once per micro-batch, and its time is the sum.
    current: [Option<f64>; Stage::ALL.len()],
    steps: usize,
}

impl StageTimer {
    fn new(device: Device) -> Self {
        Self {
            device,
            mark: Instant::now(),
            laps: Default::default(),
            current: Default::default(),
            steps: 0,
        }
    }

    fn start(&mut self) {
        self.end_step();
        self.steps += 1;
        self.mark = self.synced_now();
    }

    fn lap(&mut self, stage: Stage) {
        let now = self.synced_now();
        let ms = now.duration_since(self.mark).as_secs_f64() * 1e3;
        *self.current[stage as usize].get_or_insert(0.0) += ms;
        self.mark = now;
    }

    /// Moves the current step's stage times to the step laps.
    fn end_step(&mut self) {
        for (laps, current) in self.laps.iter_mut().zip(&mut self.current) {
            laps.extend(current.take());
        }
    }

    fn take_medians(&mut self) -> Option<(usize, Vec<(Stage, f64)>)> {
        self.end_step();
        let steps = std::mem::take(&mut self.steps);
        let medians = Stage::ALL
            .iter()
            .zip(&mut self.laps)
            .filter_map(|(&stage, laps)| median(std::mem::take(laps)).map(|m| (stage, m)))
            .collect();
        (steps > 0).then_some((steps, medians))
    }

    /// The time once the work queued on the device has finished (CPU work is done when
    /// queued).
    fn synced_now(&self) -> Instant {
        if let Device::Cuda(index) = self.device {
            tch::Cuda::synchronize(index as i64);
        }
        Instant::now()
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5.0]), Some(5.0));
        assert_eq!(median(vec![9.0, 1.0, 4.0]), Some(4.0));
        assert_eq!(median(vec![8.0, 1.0, 4.0, 2.0]), Some(3.0));
    }

    #[test]
    fn each_stage_gets_the_median_of_its_own_laps_and_the_timer_starts_over() {
        let mut t = StageTimer::new(Device::Cpu);
        for image in [3.0, 1.0, 2.0] {
            t.steps += 1;
            t.laps[Stage::Image as usize].push(image);
            t.laps[Stage::Backward as usize].push(image * 10.0);
        }
        let (steps, medians) = t.take_medians().unwrap();
        assert_eq!(steps, 3);
        assert_eq!(medians, [(Stage::Image, 2.0), (Stage::Backward, 20.0)]);
        assert!(t.take_medians().is_none(), "taken laps are gone");
    }

    #[test]
    fn laps_on_the_cpu_measure_the_time_between_marks() {
        let mut stages = Stages(Some(StageTimer::new(Device::Cpu)));
        stages.start();
        std::thread::sleep(std::time::Duration::from_millis(5));
        stages.lap(Stage::Image);
        stages.lap(Stage::Losses);
        let (steps, medians) = stages.take_medians().unwrap();
        assert_eq!(steps, 1);
        assert_eq!(medians[0].0, Stage::Image);
        assert!(medians[0].1 >= 5.0, "{medians:?}");
        assert!(medians[1].1 < medians[0].1, "{medians:?}");
        assert!(Stages::default().take_medians().is_none(), "off records nothing");
    }

    #[test]
    fn a_stage_passed_several_times_in_a_step_counts_its_sum() {
        let mut t = StageTimer::new(Device::Cpu);
        for laps in [[1.0, 2.0], [3.0, 4.0], [10.0, 20.0]] {
            t.start();
            for ms in laps {
                *t.current[Stage::Image as usize].get_or_insert(0.0) += ms;
            }
        }
        let (steps, medians) = t.take_medians().unwrap();
        assert_eq!(steps, 3);
        assert_eq!(
            medians,
            [(Stage::Image, 7.0)],
            "the median of the sums 3, 7 and 30"
        );
    }
}
