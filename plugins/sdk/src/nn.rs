//! CLIP's transformer building blocks, shared by the runner's encoders and by plugins (the
//! MTP loss's cross-modal transformer, the gradient-attention scorer's re-run of the last
//! text blocks). Parameter names follow the reference state dict: `attn.in_proj_weight`,
//! `attn.out_proj.weight`, `ln_1`, `mlp.c_fc`, `mlp.c_proj`, `ln_2`, `resblocks.N`.
//!
//! Tensors are batch-first: `[B, L, W]`.

use tch::nn::{self, Init};
use tch::{Kind, Tensor};

/// LayerNorm with CLIP's epsilon. Computed in float32 whatever the input dtype (the
/// reference upcasts), and cast back.
#[derive(Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    dim: i64,
}

impl LayerNorm {
    pub fn new(p: &nn::Path, dim: i64) -> Self {
        Self {
            weight: p.var("weight", &[dim], Init::Const(1.0)),
            bias: p.var("bias", &[dim], Init::Const(0.0)),
            dim,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let y =
            x.to_kind(Kind::Float)
                .layer_norm([self.dim], Some(&self.weight), Some(&self.bias), 1e-5, true);
        if kind == Kind::Float {
            y
        } else {
            y.to_kind(kind)
        }
    }
}

/// A bias-carrying linear layer stored as `weight` `[out, in]` and `bias` `[out]`.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    /// Weight ~ N(0, std²); bias ~ U(±1/√in) as PyTorch's default, or zeros.
    pub fn new(p: &nn::Path, input: i64, output: i64, std: f64, zero_bias: bool) -> Self {
        let bound = 1.0 / (input as f64).sqrt();
        let bias_init = if zero_bias {
            Init::Const(0.0)
        } else {
            Init::Uniform {
                lo: -bound,
                up: bound,
            }
        };
        Self {
            weight: p.var(
                "weight",
                &[output, input],
                Init::Randn {
                    mean: 0.0,
                    stdev: std,
                },
            ),
            bias: p.var("bias", &[output], bias_init),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

/// x · sigmoid(1.702 x), CLIP's activation.
pub fn quick_gelu(x: &Tensor) -> Tensor {
    x * (x * 1.702).sigmoid()
}

/// Standard deviations of CLIP's initialisation for a stack of `layers` blocks of `width`.
#[derive(Debug, Clone, Copy)]
pub struct BlockInit {
    pub attn_std: f64,
    pub proj_std: f64,
    pub fc_std: f64,
}

impl BlockInit {
    pub fn clip(width: i64, layers: i64) -> Self {
        let w = width as f64;
        Self {
            attn_std: w.powf(-0.5),
            proj_std: w.powf(-0.5) * (2.0 * layers as f64).powf(-0.5),
            fc_std: (2.0 * w).powf(-0.5),
        }
    }
}

/// Multi-head attention with PyTorch's packed `in_proj_weight` `[3W, W]`.
#[derive(Debug)]
pub struct MultiheadAttention {
    pub in_proj_weight: Tensor,
    pub in_proj_bias: Tensor,
    pub out_proj: Linear,
    pub heads: i64,
    width: i64,
}

/// Intermediates of one block re-run with a single attention head over the full width (the
/// gradient-attention scorer's surrogate). All `[B, L, W]` except `attn` `[B, L, L]`.
pub struct DenseTrace {
    /// Queries before scaling.
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
    /// Attention probabilities.
    pub attn: Tensor,
    /// `attn · v`, before `out_proj`; the tensor the scorer differentiates against.
    pub attn_output: Tensor,
}

impl MultiheadAttention {
    pub fn new(p: &nn::Path, width: i64, heads: i64, init: &BlockInit) -> Self {
        Self {
            in_proj_weight: p.var(
                "in_proj_weight",
                &[3 * width, width],
                Init::Randn {
                    mean: 0.0,
                    stdev: init.attn_std,
                },
            ),
            in_proj_bias: p.var("in_proj_bias", &[3 * width], Init::Const(0.0)),
            out_proj: Linear::new(&(p / "out_proj"), width, width, init.proj_std, true),
            heads,
            width,
        }
    }

    fn split_heads(&self, x: &Tensor) -> Tensor {
        let (b, l, _) = x.size3().unwrap();
        x.view([b, l, self.heads, self.width / self.heads])
            .transpose(1, 2) // [B, H, L, Dh]
    }

    /// Self-attention (`causal` masks j > i) with fused scaled-dot-product attention.
    pub fn forward_self(&self, x: &Tensor, causal: bool) -> Tensor {
        let qkv = x
            .linear(&self.in_proj_weight, Some(&self.in_proj_bias))
            .chunk(3, -1);
        self.attend(&qkv[0], &qkv[1], &qkv[2], causal)
    }

    /// Cross-attention: queries from `q_in` `[B, Lq, W]`, keys and values from `kv_in`
    /// `[B, Lk, W]`.
    pub fn forward_cross(&self, q_in: &Tensor, kv_in: &Tensor) -> Tensor {
        let w = self.width;
        let q = q_in.linear(
            &self.in_proj_weight.narrow(0, 0, w),
            Some(&self.in_proj_bias.narrow(0, 0, w)),
        );
        let kv = kv_in.linear(
            &self.in_proj_weight.narrow(0, w, 2 * w),
            Some(&self.in_proj_bias.narrow(0, w, 2 * w)),
        );
        let kv = kv.chunk(2, -1);
        self.attend(&q, &kv[0], &kv[1], false)
    }

    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, causal: bool) -> Tensor {
        let (b, l, _) = q.size3().unwrap();
        let y = Tensor::scaled_dot_product_attention::<Tensor>(
            &self.split_heads(q),
            &self.split_heads(k),
            &self.split_heads(v),
            None,
            0.0,
            causal,
            None,
            false,
        ); // [B, H, L, Dh]
        self.out_proj
            .forward(&y.transpose(1, 2).reshape([b, l, self.width]))
    }

    /// Single-head causal attention over the full width with every intermediate kept;
    /// returns the block's attention-branch output (after `out_proj`) and the trace.
    pub fn forward_dense_traced(&self, x: &Tensor) -> (Tensor, DenseTrace) {
        let qkv = x
            .linear(&self.in_proj_weight, Some(&self.in_proj_bias))
            .chunk(3, -1);
        let (q, k, v) = (&qkv[0], &qkv[1], &qkv[2]);
        let l = x.size()[1];
        let logits = (q * (self.width as f64).powf(-0.5)).matmul(&k.transpose(1, 2)); // [B, L, L]
        let future = Tensor::ones([l, l], (Kind::Bool, x.device())).triu(1);
        let attn = logits
            .masked_fill(&future, f64::NEG_INFINITY)
            .softmax(-1, logits.kind());
        let attn_output = attn.matmul(v);
        let out = self.out_proj.forward(&attn_output);
        (
            out,
            DenseTrace {
                q: q.shallow_clone(),
                k: k.shallow_clone(),
                v: v.shallow_clone(),
                attn,
                attn_output,
            },
        )
    }
}

/// The MLP of a block: `c_fc` → QuickGELU → `c_proj`.
#[derive(Debug)]
pub struct Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
}

impl Mlp {
    pub fn new(p: &nn::Path, width: i64, init: &BlockInit) -> Self {
        Self {
            c_fc: Linear::new(&(p / "c_fc"), width, 4 * width, init.fc_std, false),
            c_proj: Linear::new(&(p / "c_proj"), 4 * width, width, init.proj_std, false),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.c_proj.forward(&quick_gelu(&self.c_fc.forward(x)))
    }
}

/// A pre-LN residual block: `x += attn(ln_1(x)); x += mlp(ln_2(x))`.
#[derive(Debug)]
pub struct ResidualAttentionBlock {
    pub attn: MultiheadAttention,
    pub ln_1: LayerNorm,
    pub mlp: Mlp,
    pub ln_2: LayerNorm,
}

impl ResidualAttentionBlock {
    pub fn new(p: &nn::Path, width: i64, heads: i64, init: &BlockInit) -> Self {
        Self {
            attn: MultiheadAttention::new(&(p / "attn"), width, heads, init),
            ln_1: LayerNorm::new(&(p / "ln_1"), width),
            mlp: Mlp::new(&(p / "mlp"), width, init),
            ln_2: LayerNorm::new(&(p / "ln_2"), width),
        }
    }

    pub fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        let x = x + self.attn.forward_self(&self.ln_1.forward(x), causal);
        &x + self.mlp.forward(&self.ln_2.forward(&x))
    }

    /// The block with single-head causal attention, keeping the attention intermediates.
    pub fn forward_dense_traced(&self, x: &Tensor) -> (Tensor, DenseTrace) {
        let (a, trace) = self.attn.forward_dense_traced(&self.ln_1.forward(x));
        let x = x + a;
        let x = &x + self.mlp.forward(&self.ln_2.forward(&x));
        (x, trace)
    }
}

/// A stack of blocks under `resblocks.N`.
#[derive(Debug)]
pub struct Transformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
}

impl Transformer {
    pub fn new(p: &nn::Path, width: i64, layers: i64, heads: i64, init: &BlockInit) -> Self {
        let p = p / "resblocks";
        Self {
            resblocks: (0..layers)
                .map(|i| ResidualAttentionBlock::new(&(&p / i), width, heads, init))
                .collect(),
        }
    }

    /// Runs blocks `range` of the stack.
    pub fn forward_range(&self, x: &Tensor, range: std::ops::Range<usize>, causal: bool) -> Tensor {
        self.resblocks[range]
            .iter()
            .fold(x.shallow_clone(), |x, block| block.forward(&x, causal))
    }

    pub fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        self.forward_range(x, 0..self.resblocks.len(), causal)
    }
}
