//! The optimizer: Adam with L2 weight decay added to the gradient (torch.optim.Adam, not
//! AdamW), as the reference builds it, with the learning rate set once per epoch.

use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};

/// Adam hyperparameters; the defaults are the reference's (method §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 coefficient, applied to every parameter (biases, LayerNorms and embeddings too).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-3,
            weight_decay: 4e-5,
        }
    }
}

impl AdamConfig {
    /// An optimizer over every trainable variable of `vs`. libtorch's Adam skips
    /// parameters whose gradient is undefined (e.g. a classifier no active loss uses), as
    /// PyTorch's does.
    pub fn build(&self, vs: &nn::VarStore, lr: f64) -> Result<nn::Optimizer, tch::TchError> {
        nn::Adam {
            beta1: self.beta1,
            beta2: self.beta2,
            wd: self.weight_decay,
            eps: self.eps,
            amsgrad: false,
        }
        .build(vs, lr)
    }
}
