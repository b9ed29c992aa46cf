//! Per-epoch learning rate: the reference's `LRSchedulerWithWarmup` in `cosine` mode
//! (method spec §5.3).
//!
//! The reference steps its scheduler once after every epoch, so epoch `e` (1-based) trains
//! with one learning rate for all of its iterations. With `t = e − 1`, `w` warm-up epochs and
//! `T` epochs in all:
//!
//! - `t < w`, linear warm-up: `base · (f·(1 − t/w) + t/w)`, rising from `f·base` towards
//!   `base` (`f` = warm-up factor); constant warm-up: `base · f`;
//! - `t ≥ w`: `target + (base − target) · ½(1 + cos(π·(t − w)/(T − w)))`, so epoch `w + 1`
//!   trains at `base` and the last epoch just above `target`.
//!
//! The arithmetic follows the reference expression by expression, so the values agree with
//! its float64 output to the last bit or two. The reference's other modes (`step`, `exp`,
//! `poly`, `linear`) are not used by GA-DMS and are not provided.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::spec::TrainConfig;

/// How the learning rate behaves during the warm-up epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarmupMethod {
    /// Linear ramp from `warmup_factor · base_lr` (first epoch) towards `base_lr`.
    #[default]
    Linear,
    /// `warmup_factor · base_lr` throughout the warm-up.
    Constant,
}

/// The schedule's settings, as a spec writes them. Every key is optional; the defaults are
/// the reference's (`utils/options.py`): base lr 1e-5, 60 epochs, 5 linear warm-up epochs
/// starting at 0.1 × base, cosine decay to 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrScheduleConfig {
    /// Peak learning rate, reached at the first epoch after the warm-up (reference `--lr`).
    pub base_lr: f64,
    /// Total number of epochs `T` (reference `--num_epoch`).
    pub num_epochs: usize,
    /// Number of warm-up epochs `w`; must be below `num_epochs` so that the cosine phase has
    /// at least one epoch.
    pub warmup_epochs: usize,
    /// Fraction `f` of `base_lr` the warm-up starts from.
    pub warmup_factor: f64,
    pub warmup_method: WarmupMethod,
    /// Learning rate the cosine decays towards (reached one epoch after the last).
    pub target_lr: f64,
}

impl Default for LrScheduleConfig {
    fn default() -> Self {
        Self {
            base_lr: 1e-5,
            num_epochs: 60,
            warmup_epochs: 5,
            warmup_factor: 0.1,
            warmup_method: WarmupMethod::Linear,
            target_lr: 0.0,
        }
    }
}

/// A schedule setting that cannot produce a usable learning rate; `key` is the config key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid lr schedule: `{key}` = {value}: {reason}")]
pub struct ScheduleError {
    pub key: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A validated warm-up + cosine schedule; [`LrSchedule::lr`] gives each epoch's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    config: LrScheduleConfig,
}

impl LrSchedule {
    /// The schedule a spec's `[train]` table asks for (the other settings at the
    /// reference's defaults); an error names the spec's key.
    pub fn for_training(train: &TrainConfig) -> Result<Self, ScheduleError> {
        Self::new(LrScheduleConfig {
            base_lr: train.lr,
            num_epochs: train.epochs,
            warmup_epochs: train.warmup_epochs,
            warmup_factor: train.warmup_factor,
            ..LrScheduleConfig::default()
        })
        .map_err(|e| ScheduleError {
            key: match e.key {
                "base_lr" => "train.lr",
                "num_epochs" => "train.epochs",
                "warmup_epochs" => "train.warmup_epochs",
                "warmup_factor" => "train.warmup_factor",
                other => other,
            },
            ..e
        })
    }
}

impl LrSchedule {
    /// Checks the settings: at least one epoch, fewer warm-up epochs than epochs, finite
    /// non-negative rates and factor, and a positive base rate.
    pub fn new(config: LrScheduleConfig) -> Result<Self, ScheduleError> {
        let invalid = |key, value: &dyn std::fmt::Display, reason| {
            Err(ScheduleError {
                key,
                value: value.to_string(),
                reason,
            })
        };
        let c = &config;
        if c.num_epochs == 0 {
            return invalid("num_epochs", &c.num_epochs, "training needs at least one epoch");
        }
        if c.warmup_epochs >= c.num_epochs {
            return invalid(
                "warmup_epochs",
                &c.warmup_epochs,
                "must be below the number of epochs: the cosine phase needs at least one epoch",
            );
        }
        if !(c.base_lr.is_finite() && c.base_lr > 0.0) {
            return invalid("base_lr", &c.base_lr, "must be finite and positive");
        }
        if !(c.target_lr.is_finite() && c.target_lr >= 0.0) {
            return invalid("target_lr", &c.target_lr, "must be finite and non-negative");
        }
        if !(c.warmup_factor.is_finite() && c.warmup_factor >= 0.0) {
            return invalid(
                "warmup_factor",
                &c.warmup_factor,
                "must be finite and non-negative",
            );
        }
        Ok(Self { config })
    }

    /// Total number of epochs `T`.
    pub fn num_epochs(&self) -> usize {
        self.config.num_epochs
    }

    /// Learning rate of epoch `epoch` (1-based, `1..=num_epochs`).
    ///
    /// # Panics
    /// When `epoch` is 0 or beyond `num_epochs`: the reference's cosine would rise again
    /// past the last epoch, so asking for it is a bug in the caller.
    pub fn lr(&self, epoch: usize) -> f64 {
        let c = &self.config;
        assert!(
            (1..=c.num_epochs).contains(&epoch),
            "epoch {epoch} is outside the schedule's 1..={} (epochs are 1-based)",
            c.num_epochs
        );
        let t = epoch - 1;
        if t < c.warmup_epochs {
            let factor = match c.warmup_method {
                WarmupMethod::Constant => c.warmup_factor,
                WarmupMethod::Linear => {
                    let alpha = t as f64 / c.warmup_epochs as f64;
                    c.warmup_factor * (1.0 - alpha) + alpha
                }
            };
            return c.base_lr * factor;
        }
        let ratio = (t - c.warmup_epochs) as f64 / (c.num_epochs - c.warmup_epochs) as f64;
        let factor = 0.5 * (1.0 + (PI * ratio).cos());
        c.target_lr + (c.base_lr - c.target_lr) * factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gadms_golden::Golden;
    use serde_json::Value;

    /// The config the reference ran for one manifest setting (`pretrain`, `finetune`,
    /// `defaults`).
    fn reference_config(setting: &Value) -> LrScheduleConfig {
        assert_eq!(setting["mode"], "cosine", "only the cosine mode is reproduced");
        let usize_of =
            |key: &str| setting[key].as_u64().unwrap_or_else(|| panic!("`{key}` missing")) as usize;
        let f64_of = |key: &str| setting[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing"));
        LrScheduleConfig {
            base_lr: f64_of("base_lr"),
            num_epochs: usize_of("num_epoch"),
            warmup_epochs: usize_of("warmup_epochs"),
            warmup_factor: f64_of("warmup_factor"),
            warmup_method: serde_json::from_value(setting["warmup_method"].clone()).unwrap(),
            target_lr: f64_of("target_lr"),
        }
    }

    #[test]
    fn golden_schedules_match_every_epoch() {
        let golden = Golden::load();
        let file = golden.file("schedule.safetensors");
        let tensors = golden.tensors("schedule.safetensors");
        for name in ["pretrain", "finetune", "defaults"] {
            let schedule = LrSchedule::new(reference_config(&file[name])).unwrap();
            for series in ["lr_per_epoch", "lr_logged_get_lr"] {
                let key = format!("{name}/{series}");
                let reference = Vec::<f64>::try_from(&tensors[&key]).unwrap();
                assert_eq!(reference.len(), schedule.num_epochs(), "{key}: epoch count");
                for (e, &want) in reference.iter().enumerate() {
                    let got = schedule.lr(e + 1);
                    let rel = (got - want).abs() / want.abs();
                    assert!(
                        rel <= 1e-12,
                        "{key} epoch {}: ours {got:e}, reference {want:e}",
                        e + 1
                    );
                }
            }
        }
    }

    #[test]
    fn defaults_are_the_reference_defaults() {
        let golden = Golden::load();
        let reference = reference_config(&golden.file("schedule.safetensors")["defaults"]);
        assert_eq!(LrScheduleConfig::default(), reference);
    }

    #[test]
    fn spec_keys_override_defaults_and_unknown_keys_are_rejected() {
        let config: LrScheduleConfig =
            toml::from_str("num_epochs = 30\nwarmup_method = \"constant\"").unwrap();
        assert_eq!(
            config,
            LrScheduleConfig {
                num_epochs: 30,
                warmup_method: WarmupMethod::Constant,
                ..LrScheduleConfig::default()
            }
        );
        let err = toml::from_str::<LrScheduleConfig>("num_epoch = 30").unwrap_err();
        assert!(err.to_string().contains("num_epoch"), "{err}");
        assert!(toml::from_str::<LrScheduleConfig>("warmup_method = \"cubic\"").is_err());
    }

    #[test]
    fn constant_warmup_holds_the_factor_then_decays() {
        let config = LrScheduleConfig {
            base_lr: 2.0,
            num_epochs: 6,
            warmup_epochs: 2,
            warmup_factor: 0.25,
            warmup_method: WarmupMethod::Constant,
            target_lr: 1.0,
        };
        let schedule = LrSchedule::new(config).unwrap();
        let lrs: Vec<f64> = (1..=6).map(|e| schedule.lr(e)).collect();
        let cosine = |ratio: f64| 1.0 + (2.0 - 1.0) * (0.5 * (1.0 + (PI * ratio).cos()));
        assert_eq!(lrs, [0.5, 0.5, 2.0, cosine(0.25), cosine(0.5), cosine(0.75)]);
    }

    #[test]
    fn invalid_settings_name_their_key() {
        let cases = [
            (
                LrScheduleConfig {
                    num_epochs: 0,
                    ..Default::default()
                },
                "num_epochs",
            ),
            (
                LrScheduleConfig {
                    num_epochs: 5,
                    warmup_epochs: 5,
                    ..Default::default()
                },
                "warmup_epochs",
            ),
            (
                LrScheduleConfig {
                    base_lr: 0.0,
                    ..Default::default()
                },
                "base_lr",
            ),
            (
                LrScheduleConfig {
                    target_lr: f64::NAN,
                    ..Default::default()
                },
                "target_lr",
            ),
            (
                LrScheduleConfig {
                    warmup_factor: -0.1,
                    ..Default::default()
                },
                "warmup_factor",
            ),
        ];
        for (config, key) in cases {
            let err = LrSchedule::new(config).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
    }

    #[test]
    #[should_panic(expected = "1-based")]
    fn epoch_zero_panics() {
        LrSchedule::new(LrScheduleConfig::default()).unwrap().lr(0);
    }
}
