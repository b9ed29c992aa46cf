//! Mixed precision: fp32 master weights and optimizer, with an autocast region around the
//! forward. `bf16` autocast runs matrix multiplications in bfloat16 while softmax,
//! LayerNorm and losses stay fp32. It is the default on CUDA, whose tensor cores run it
//! many times faster than fp32; CPUs default to fp32 (those with AVX-512 BF16 multiply about
//! 2.5× faster in bf16, when a spec asks for it). Parity tests use fp32.
//!
//! tch only toggles CUDA autocast with libtorch's default dtype (fp16), so the region is
//! entered through a few lines of C++ (`runner/csrc/autocast.cpp`).

use std::os::raw::c_int;

use serde::{Deserialize, Serialize};
use tch::Device;

/// `train.precision`, as a spec writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    /// The device's own precision: bf16 autocast on CUDA, fp32 on the CPU. Like the device,
    /// it is placement: a spec left at `auto` is one experiment wherever it trains, and each
    /// session's record says which precision it used. `fp32` or `bf16` pins it.
    #[default]
    Auto,
    Fp32,
    Bf16,
}

impl PrecisionChoice {
    /// The precision a run trains in on `device`.
    pub fn on(self, device: Device) -> Precision {
        match self {
            Self::Auto if device.is_cuda() => Precision::Bf16,
            Self::Auto | Self::Fp32 => Precision::Fp32,
            Self::Bf16 => Precision::Bf16,
        }
    }

    /// `precision bf16 (auto on CUDA)`, for a run's log: what it trains in on `device`, and
    /// why when the spec left it to the device.
    pub fn describe_on(self, device: Device) -> String {
        let used = self.on(device);
        match self {
            Self::Auto if device.is_cuda() => format!("precision {used} (auto on CUDA)"),
            Self::Auto => format!("precision {used} (auto on the CPU)"),
            Self::Fp32 | Self::Bf16 => format!("precision {used}"),
        }
    }

    /// What the choice trains in on any device, for `validate`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Auto => "precision auto: bf16 autocast on CUDA, fp32 on the CPU",
            Self::Fp32 => "precision fp32 on every device",
            Self::Bf16 => "precision bf16 autocast on every device",
        }
    }
}

/// The precision a run trains in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Fp32,
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        })
    }
}

extern "C" {
    fn gadms_autocast_enter(device_type: c_int, scalar: c_int) -> c_int;
    fn gadms_autocast_exit(device_type: c_int, was_enabled: c_int) -> c_int;
}

#[derive(Debug, thiserror::Error)]
#[error("libtorch refused to {action} bf16 autocast on {device:?}")]
pub struct AutocastError {
    action: &'static str,
    device: Device,
}

/// Leaves the autocast region when dropped, also on unwinding.
struct Region {
    device_type: c_int,
    was_enabled: c_int,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: plain C function, exceptions are caught on the C++ side.
        let _ = unsafe { gadms_autocast_exit(self.device_type, self.was_enabled) };
    }
}

/// Runs `f` in the autocast region `precision` asks for on `device`.
pub fn autocast<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> Result<T, AutocastError> {
    if precision == Precision::Fp32 {
        return Ok(f());
    }
    let device_type = if device.is_cuda() { 1 } else { 0 };
    // SAFETY: plain C function, exceptions are caught on the C++ side.
    let was_enabled = unsafe { gadms_autocast_enter(device_type, 0) };
    if was_enabled < 0 {
        return Err(AutocastError {
            action: "enter",
            device,
        });
    }
    let _region = Region {
        device_type,
        was_enabled,
    };
    Ok(f())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use gadms_plugin::loss::{LossInputs, LossOutput};
    use gadms_plugin::masking::{Draws, MaskedCaption, ScoreInputs, ScoreOutput, ScoringRequest};
    use gadms_plugin::{Loss, MaskingStrategy};
    use tch::{Kind, Tensor};

    use super::*;
    use crate::dist::Single;
    use crate::model::{Clip, ModelConfig};
    use crate::train::stages::Stages;
    use crate::train::step::{self, Batch, WeightedLoss};

    #[test]
    fn auto_is_bf16_on_cuda_and_fp32_on_the_cpu_and_a_pinned_choice_holds_everywhere() {
        let cuda = Device::Cuda(0);
        assert_eq!(PrecisionChoice::default(), PrecisionChoice::Auto);
        assert_eq!(PrecisionChoice::Auto.on(cuda), Precision::Bf16);
        assert_eq!(PrecisionChoice::Auto.on(Device::Cpu), Precision::Fp32);
        for device in [cuda, Device::Cpu] {
            assert_eq!(PrecisionChoice::Fp32.on(device), Precision::Fp32);
            assert_eq!(PrecisionChoice::Bf16.on(device), Precision::Bf16);
        }
    }

    #[test]
    fn bf16_autocast_runs_matmuls_in_bf16_and_restores_fp32_after() {
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        let inside = autocast(Precision::Bf16, Device::Cpu, || a.matmul(&b)).unwrap();
        assert_eq!(inside.kind(), Kind::BFloat16);
        let relative = ((inside.to_kind(Kind::Float) - a.matmul(&b)).abs().max() / a.matmul(&b).abs().max())
            .double_value(&[]);
        assert!(relative < 2e-2, "bf16 matmul far from fp32: {relative}");
        assert_eq!(
            a.matmul(&b).kind(),
            Kind::Float,
            "autocast is off again after the region"
        );
        assert_eq!(
            autocast(Precision::Fp32, Device::Cpu, || a.matmul(&b))
                .unwrap()
                .kind(),
            Kind::Float
        );
    }

    /// Image–text contrastive cross-entropy (ITC's form); remembers the kind of the image
    /// features it was given.
    struct Contrastive {
        features: Arc<Mutex<Option<Kind>>>,
    }

    impl Loss for Contrastive {
        fn uses_mtp_view(&self) -> bool {
            false
        }

        fn forward(&self, inputs: &LossInputs<'_>) -> gadms_plugin::Result<LossOutput> {
            *self.features.lock().unwrap() = Some(inputs.image_cls.kind());
            let unit = |x: &Tensor| x / x.norm_scalaropt_dim(2, [-1], true);
            let logits = unit(inputs.image_cls).matmul(&unit(inputs.text_eos).tr()) * inputs.logit_scale;
            let targets = Tensor::arange(logits.size()[0], (Kind::Int64, logits.device()));
            Ok(LossOutput::loss_only(logits.cross_entropy_for_logits(&targets)))
        }
    }

    /// A strategy that never scores; the test's batches come masked already.
    struct NoScoring;

    impl MaskingStrategy for NoScoring {
        fn scoring(&self) -> Option<ScoringRequest> {
            None
        }
        fn initial_score(&self) -> f32 {
            0.0
        }
        fn score(&self, _: &ScoreInputs<'_>) -> gadms_plugin::Result<ScoreOutput> {
            unreachable!("the step scores only when scoring() asks for it")
        }
        fn mask(&self, _: &[i64], _: &[f32], _: &mut dyn Draws) -> gadms_plugin::Result<MaskedCaption> {
            unreachable!("the step gets batches, not captions")
        }
    }

    /// Four images and captions `<sot> w w w <eot>` for a one-block tiny CLIP.
    fn batch(config: &ModelConfig) -> Batch {
        let (sot, eot) = (config.vocab_size - 2, config.vocab_size - 1);
        let ids: Vec<i64> = (0..4)
            .flat_map(|i| [sot, 10 + i, 20 + i, 30 + i, eot, 0])
            .collect();
        let ids = Tensor::from_slice(&ids).view([4, 6]);
        let [h, w] = config.image_size;
        Batch {
            images: Tensor::randn([4, 3, h, w], (Kind::Float, Device::Cpu)),
            clean: ids.shallow_clone(),
            alignment: ids,
            mtp: None,
            pids: Tensor::arange(4, (Kind::Int64, Device::Cpu)),
        }
    }

    #[test]
    fn a_bf16_step_computes_in_bf16_and_lands_close_to_fp32() {
        tch::manual_seed(5);
        let config = ModelConfig {
            vision_layers: 1,
            text_layers: 1,
            ..ModelConfig::tiny()
        };
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let clip = Clip::new(&vs.root(), &config);
        let features = Arc::new(Mutex::new(None));
        let losses = [WeightedLoss {
            name: "contrastive".into(),
            weight: 1.0,
            loss: Box::new(Contrastive {
                features: Arc::clone(&features),
            }),
        }];
        let batch = batch(&config);
        // (total loss, kind of the image features the loss saw)
        let step = |precision| {
            let out = autocast(precision, Device::Cpu, || {
                step::forward(
                    &clip,
                    &NoScoring,
                    &losses,
                    &batch,
                    &Single,
                    &mut Stages::default(),
                )
            })
            .unwrap()
            .unwrap();
            (out.total.double_value(&[]), features.lock().unwrap().unwrap())
        };
        let (fp32, fp32_kind) = step(Precision::Fp32);
        let (bf16, bf16_kind) = step(Precision::Bf16);
        assert_eq!((fp32_kind, bf16_kind), (Kind::Float, Kind::BFloat16));
        assert_eq!(fp32, step(Precision::Fp32).0, "fp32 repeats exactly");
        let relative = (bf16 - fp32).abs() / fp32.abs();
        assert!(
            (1e-5..5e-2).contains(&relative),
            "bf16 loss {bf16} vs fp32 {fp32}: relative difference {relative} should be beyond fp32 \
             rounding (1e-7) and within bf16's (1e-2)"
        );
    }
}
