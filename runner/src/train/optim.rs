//! The optimizer: Adam with L2 weight decay added to the gradient (torch.optim.Adam, not
//! AdamW), as the reference builds it, with the learning rate set once per epoch.
//!
//! Parameter groups: the GA-DMS code gives every parameter the same learning rate and decay
//! (`uniform`, the pre-training recipe). IRRA's fine-tuning rules (`irra`) scale the rate of
//! the new modules and of biases and drop the decay of biases; decisions.md has fine-tuning
//! follow IRRA.

use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};

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

    /// An optimizer over every trainable variable of `vs`, grouped by [`Self::rule`].
    /// libtorch's Adam skips parameters whose gradient is undefined (e.g. a classifier no
    /// active loss uses), as PyTorch's does.
    pub fn build(&self, vs: &nn::VarStore, lr: f64) -> Result<Optimizer, tch::TchError> {
        let mut rules: Vec<GroupRule> = Vec::new();
        {
            let mut vars = vs.variables_.lock().expect("var store lock");
            let names: Vec<(String, usize)> = vars
                .named_variables
                .iter()
                .map(|(name, t)| (name.clone(), t.data_ptr() as usize))
                .collect();
            for var in vars.trainable_variables.iter_mut() {
                let ptr = var.tensor.data_ptr() as usize;
                let rule = names
                    .iter()
                    .find(|(_, p)| *p == ptr)
                    .map(|(n, _)| self.rule(n))
                    .unwrap_or(self.rule(""));
                var.group = match rules.iter().position(|r| *r == rule) {
                    Some(g) => g,
                    None => {
                        rules.push(rule);
                        rules.len() - 1
                    }
                };
            }
        }
        let adam = nn::Adam {
            beta1: self.beta1,
            beta2: self.beta2,
            wd: self.weight_decay,
            eps: self.eps,
            amsgrad: false,
        };
        let mut optimizer = Optimizer {
            inner: adam.build(vs, lr)?,
            rules,
        };
        optimizer.set_lr(lr);
        Ok(optimizer)
    }
}

/// Adam with its groups' rules.
pub struct Optimizer {
    inner: nn::Optimizer,
    rules: Vec<GroupRule>,
}

impl Optimizer {
    /// Sets the base learning rate; each group gets its factor of it, and its decay.
    pub fn set_lr(&mut self, lr: f64) {
        for (g, rule) in self.rules.iter().enumerate() {
            self.inner.set_lr_group(g, lr * rule.lr_factor);
            self.inner.set_weight_decay_group(g, rule.weight_decay);
        }
    }

    pub fn zero_grad(&mut self) {
        self.inner.zero_grad();
    }

    pub fn step(&mut self) {
        self.inner.step();
    }

    /// The distinct group rules, in group order.
    pub fn rules(&self) -> &[GroupRule] {
        &self.rules
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
        .build(&vs, 1e-5)
        .unwrap();
        assert_eq!(irra.rules().len(), 3);
        assert_eq!(AdamConfig::default().build(&vs, 1e-5).unwrap().rules().len(), 1);
    }
}
