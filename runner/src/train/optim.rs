//! The optimizer: Adam with L2 weight decay added to the gradient (torch.optim.Adam, not
//! AdamW), as the reference builds it, with the learning rate set once per epoch.
//!
//! Parameter groups: the GA-DMS code gives every parameter the same learning rate and decay
//! (`uniform`, the pre-training recipe). IRRA's fine-tuning rules (`irra`) scale the rate of
//! the new modules and of biases and drop the decay of biases; decisions.md has fine-tuning
//! follow IRRA.

use std::ffi::{c_char, c_int, c_void};

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::shim::call;

/// How parameters are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamGroups {
    /// One learning rate and one decay for every parameter (GA-DMS).
    #[default]
    Uniform,
    /// IRRA: names containing `cross` get `new_module_lr_factor`; biases then get
    /// `bias_lr_factor` and `bias_weight_decay`; names containing `classifier` or `mlm_head`
    /// get `new_module_lr_factor` last (IRRA's order, so their biases keep the ×5).
    Irra,
}

/// Adam hyperparameters; the defaults are the reference's (method §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 coefficient, applied to every parameter (biases, LayerNorms and embeddings too).
    pub weight_decay: f64,
    pub groups: ParamGroups,
    pub new_module_lr_factor: f64,
    pub bias_lr_factor: f64,
    pub bias_weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-3,
            weight_decay: 4e-5,
            groups: ParamGroups::Uniform,
            new_module_lr_factor: 5.0,
            bias_lr_factor: 2.0,
            bias_weight_decay: 0.0,
        }
    }
}

/// Learning-rate factor and weight decay of one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupRule {
    pub lr_factor: f64,
    pub weight_decay: f64,
}

impl AdamConfig {
    /// The rule for the parameter called `name`.
    pub fn rule(&self, name: &str) -> GroupRule {
        let mut rule = GroupRule {
            lr_factor: 1.0,
            weight_decay: self.weight_decay,
        };
        if self.groups == ParamGroups::Irra {
            if name.contains("cross") {
                rule.lr_factor = self.new_module_lr_factor;
            }
            if name.contains("bias") {
                rule = GroupRule {
                    lr_factor: self.bias_lr_factor,
                    weight_decay: self.bias_weight_decay,
                };
            }
            if name.contains("classifier") || name.contains("mlm_head") {
                rule.lr_factor = self.new_module_lr_factor;
            }
        }
        rule
    }

    /// An optimizer over every trainable variable of `vs`, in name order.
    pub fn build(&self, vs: &nn::VarStore) -> Adam {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(name, tensor)| Param {
                rule: self.rule(&name),
                name,
                tensor,
                state: None,
            })
            .collect();
        Adam {
            config: self.clone(),
            params,
            lr: 0.0,
        }
    }
}

/// One parameter and its Adam moments (allocated at its first update, as PyTorch does).
struct Param {
    name: String,
    tensor: Tensor,
    rule: GroupRule,
    state: Option<Moments>,
}

struct Moments {
    m: Tensor,
    v: Tensor,
    /// Updates so far, a 0-dim float tensor on the parameter's device, as the fused kernel
    /// reads it (and torch.optim keeps it).
    steps: Tensor,
}

impl Moments {
    fn zeros(param: &Tensor) -> Self {
        Self {
            m: param.zeros_like(),
            v: param.zeros_like(),
            steps: Self::steps(0, param.device()),
        }
    }

    fn steps(count: i64, device: tch::Device) -> Tensor {
        Tensor::from(count as f32).to_device(device)
    }
}

extern "C" {
    fn gadms_fused_adam(
        params: *const *const c_void,
        grads: *const *const c_void,
        exp_avgs: *const *const c_void,
        exp_avg_sqs: *const *const c_void,
        steps: *const *const c_void,
        count: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
}

#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error("optimizer state for `{name}`: {problem}")]
    State { name: String, problem: String },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error("the fused Adam update failed: {0}")]
    Kernel(String),
}

/// Adam as `torch.optim.Adam` computes it (L2 decay added to the gradient, bias-corrected
/// moments, `eps` added after the square root). The state is kept here, so that checkpoints
/// hold the moments and a run resumes exactly; the update is libtorch's fused kernel.
///
/// Gradients come from [`Adam::backward`] rather than accumulating in `.grad`: a parameter
/// the loss does not reach gets no gradient and is skipped, as PyTorch skips a parameter
/// whose `.grad` is `None`.
pub struct Adam {
    config: AdamConfig,
    params: Vec<Param>,
    lr: f64,
}

impl Adam {
    /// Sets the base learning rate; each parameter gets its group's factor of it.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Gradients of `loss` with respect to every parameter, in parameter order; undefined
    /// where the loss does not depend on the parameter.
    pub fn backward(&self, loss: &Tensor) -> Vec<Tensor> {
        Tensor::run_backward(&[loss], &self.params(), false, false)
    }

    /// The parameters, in the order of [`Adam::backward`]'s gradients.
    pub fn params(&self) -> Vec<&Tensor> {
        self.params.iter().map(|p| &p.tensor).collect()
    }

    /// Names of the parameters, in the order of [`Adam::backward`]'s gradients.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| p.name.as_str())
    }

    /// One update with `grads` (from [`Adam::backward`]): one call of libtorch's fused Adam
    /// kernel per parameter group (`csrc/fused_adam.cpp`), over every parameter with a
    /// gradient.
    pub fn step(&mut self, grads: &[Tensor]) -> Result<(), OptimError> {
        let AdamConfig {
            beta1, beta2, eps, ..
        } = self.config;
        for rule in self.rules() {
            let mut group: [Vec<*const c_void>; 5] = Default::default();
            for (p, g) in self.params.iter_mut().zip(grads) {
                if p.rule != rule || !g.defined() {
                    continue;
                }
                let state = p.state.get_or_insert_with(|| Moments::zeros(&p.tensor));
                for (list, tensor) in group
                    .iter_mut()
                    .zip([&p.tensor, g, &state.m, &state.v, &state.steps])
                {
                    list.push(tensor.as_ptr().cast());
                }
            }
            let [params, grads, m, v, steps] = &group;
            if params.is_empty() {
                continue;
            }
            let lr = self.lr * rule.lr_factor;
            // SAFETY: five arrays of `params.len()` live tensors, one device and dtype (the
            // model's parameters, their gradients and moments); the shim catches every C++
            // exception. No gradient mode: the kernel updates leaf tensors in place.
            tch::no_grad(|| {
                call(|err, len| unsafe {
                    gadms_fused_adam(
                        params.as_ptr(),
                        grads.as_ptr(),
                        m.as_ptr(),
                        v.as_ptr(),
                        steps.as_ptr(),
                        params.len(),
                        lr,
                        beta1,
                        beta2,
                        rule.weight_decay,
                        eps,
                        err,
                        len,
                    )
                })
            })
            .map_err(OptimError::Kernel)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`m/<name>`, `v/<name>`, `steps/<name>`), for
    /// checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .filter_map(|p| p.state.as_ref().map(|s| (p, s)))
            .flat_map(|(p, s)| {
                [
                    (format!("m/{}", p.name), s.m.shallow_clone()),
                    (format!("v/{}", p.name), s.v.shallow_clone()),
                    (
                        format!("steps/{}", p.name),
                        Tensor::from(s.steps.double_value(&[]) as i64),
                    ),
                ]
            })
            .collect()
    }

    /// Restores moments written by [`Adam::state`].
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<(), OptimError> {
        for p in &mut self.params {
            let (Some(m), Some(v), Some(steps)) = (
                tensors.get(&format!("m/{}", p.name)),
                tensors.get(&format!("v/{}", p.name)),
                tensors.get(&format!("steps/{}", p.name)),
            ) else {
                p.state = None;
                continue;
            };
            if m.size() != p.tensor.size() || v.size() != p.tensor.size() {
                return Err(OptimError::State {
                    name: p.name.clone(),
                    problem: format!("moments of shape {:?}, parameter {:?}", m.size(), p.tensor.size()),
                });
            }
            let device = p.tensor.device();
            p.state = Some(Moments {
                m: m.to_device(device).copy(),
                v: v.to_device(device).copy(),
                steps: Moments::steps(steps.int64_value(&[]), device),
            });
        }
        Ok(())
    }

    /// Distinct group rules in use.
    pub fn rules(&self) -> Vec<GroupRule> {
        let mut rules: Vec<GroupRule> = Vec::new();
        for p in &self.params {
            if !rules.contains(&p.rule) {
                rules.push(p.rule);
            }
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irra_rules_follow_the_reference_order() {
        let c = AdamConfig {
            groups: ParamGroups::Irra,
            ..AdamConfig::default()
        };
        let rule = |n: &str| {
            let r = c.rule(n);
            (r.lr_factor, r.weight_decay)
        };
        assert_eq!(
            rule("base_model.transformer.resblocks.0.mlp.c_fc.weight"),
            (1.0, 4e-5)
        );
        assert_eq!(
            rule("base_model.transformer.resblocks.0.mlp.c_fc.bias"),
            (2.0, 0.0)
        );
        assert_eq!(rule("cross_attn.in_proj_weight"), (5.0, 4e-5));
        assert_eq!(rule("cross_attn.in_proj_bias"), (2.0, 0.0));
        assert_eq!(rule("mlm_head.fc.bias"), (5.0, 0.0));
        assert_eq!(rule("classifier.weight"), (5.0, 4e-5));
        let uniform = AdamConfig::default();
        assert_eq!(
            uniform.rule("classifier.bias"),
            GroupRule {
                lr_factor: 1.0,
                weight_decay: 4e-5
            }
        );
    }

    #[test]
    fn updates_equal_libtorchs_adam_and_skip_parameters_without_gradient() {
        use tch::nn::OptimizerConfig;
        let config = AdamConfig {
            eps: 1e-8,
            ..AdamConfig::default()
        };
        let make = || {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            tch::manual_seed(0);
            let w = vs.root().var(
                "w",
                &[4, 3],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            );
            let unused = vs.root().var("unused", &[2], nn::Init::Const(1.0));
            (vs, w, unused)
        };
        let (vs_ours, w_ours, unused) = make();
        let (vs_ref, w_ref, _) = make();
        let mut ours = config.build(&vs_ours);
        ours.set_lr(0.1);
        let mut reference = nn::Adam {
            beta1: 0.9,
            beta2: 0.999,
            wd: 4e-5,
            eps: 1e-8,
            amsgrad: false,
        }
        .build(&vs_ref, 0.1)
        .unwrap();
        let x = Tensor::randn([5, 4], (tch::Kind::Float, tch::Device::Cpu));
        for _ in 0..5 {
            let grads = ours.backward(&x.matmul(&w_ours).pow_tensor_scalar(2).sum(tch::Kind::Float));
            ours.step(&grads).unwrap();
            reference.backward_step(&x.matmul(&w_ref).pow_tensor_scalar(2).sum(tch::Kind::Float));
        }
        let diff = (&w_ours - &w_ref).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "ours vs libtorch Adam after 5 steps: {diff}");
        assert!(
            unused.equal(&Tensor::ones([2], (tch::Kind::Float, tch::Device::Cpu))),
            "no gradient, no update"
        );
        assert_eq!(ours.state().len(), 3, "moments of `w` only");
    }

    #[test]
    fn the_optimizer_has_one_group_per_distinct_rule() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let _a = (&root / "cross_attn").var("weight", &[2], nn::Init::Const(1.0));
        let _b = (&root / "cross_attn").var("bias", &[2], nn::Init::Const(1.0));
        let _c = (&root / "base").var("weight", &[2], nn::Init::Const(1.0));
        let irra = AdamConfig {
            groups: ParamGroups::Irra,
            ..AdamConfig::default()
        }
        .build(&vs);
        assert_eq!(irra.rules().len(), 3);
        assert_eq!(AdamConfig::default().build(&vs).rules().len(), 1);
    }
}
