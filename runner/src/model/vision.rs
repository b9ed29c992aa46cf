use gadms_plugin::nn::{BlockInit, LayerNorm, Transformer};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use super::ModelConfig;

/// ViT image encoder. Unlike CLIP's `encode_image`, `forward` keeps all tokens: the MTP
/// decoder attends to the patches, retrieval uses token 0 (CLS).
#[derive(Debug)]
pub struct VisionTransformer {
    pub conv1: Tensor,
    pub class_embedding: Tensor,
    pub positional_embedding: Tensor,
    pub ln_pre: LayerNorm,
    pub transformer: Transformer,
    pub ln_post: LayerNorm,
    pub proj: Tensor,
    stride: i64,
}

impl VisionTransformer {
    pub fn new(p: &nn::Path, c: &ModelConfig) -> Self {
        let w = c.vision_width;
        let scale = (w as f64).powf(-0.5);
        let (ny, nx) = c.grid();
        let fan_in = (3 * c.patch_size * c.patch_size) as f64;
        let bound = 1.0 / fan_in.sqrt();
        Self {
            conv1: (p / "conv1").var(
                "weight",
                &[w, 3, c.patch_size, c.patch_size],
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            ),
            class_embedding: p.var(
                "class_embedding",
                &[w],
                Init::Randn {
                    mean: 0.0,
                    stdev: scale,
                },
            ),
            positional_embedding: p.var(
                "positional_embedding",
                &[1 + ny * nx, w],
                Init::Randn {
                    mean: 0.0,
                    stdev: scale,
                },
            ),
            ln_pre: LayerNorm::new(&(p / "ln_pre"), w),
            transformer: Transformer::new(
                &(p / "transformer"),
                w,
                c.vision_layers,
                c.vision_heads,
                &BlockInit::clip(w, c.vision_layers),
            ),
            ln_post: LayerNorm::new(&(p / "ln_post"), w),
            proj: p.var(
                "proj",
                &[w, c.embed_dim],
                Init::Randn {
                    mean: 0.0,
                    stdev: scale,
                },
            ),
            stride: c.stride,
        }
    }

    /// `images` `[B, 3, H, W]` (normalised) → all tokens after `ln_post` and `proj`,
    /// `[B, 1 + rows·cols, E]`; token 0 is CLS.
    pub fn forward(&self, images: &Tensor) -> Tensor {
        let x = images.conv2d(
            &self.conv1,
            None::<Tensor>,
            [self.stride, self.stride],
            [0, 0],
            [1, 1],
            1,
        ); // [B, W, ny, nx]
        let (b, w, _, _) = x.size4().unwrap();
        let x = x.reshape([b, w, -1]).permute([0, 2, 1]); // [B, N, W], row-major patches
        let cls = self.class_embedding.to_kind(x.kind()).expand([b, 1, w], true);
        let kind = x.kind();
        let x = Tensor::cat(&[cls, x], 1) + self.positional_embedding.to_kind(kind);
        let x = self.transformer.forward(&self.ln_pre.forward(&x), false);
        self.ln_post.forward(&x).matmul(&self.proj.to_kind(x.kind()))
    }
}

/// Resizes a ViT position embedding `[1 + h·w, W]` from a `(h, w)` grid to `(rows, cols)`:
/// row 0 (CLS) is kept, the grid is resized with bilinear interpolation
/// (align_corners = false, no antialiasing), as IRRA's loader does for 384×128 inputs.
pub fn resize_position_embedding(pe: &Tensor, from: (i64, i64), to: (i64, i64)) -> Tensor {
    let width = pe.size()[1];
    let cls = pe.narrow(0, 0, 1);
    let grid = pe
        .narrow(0, 1, from.0 * from.1)
        .reshape([1, from.0, from.1, width])
        .permute([0, 3, 1, 2]);
    let resized = grid
        .to_kind(Kind::Float)
        .upsample_bilinear2d([to.0, to.1], false, None, None);
    let rows = resized
        .permute([0, 2, 3, 1])
        .reshape([to.0 * to.1, width])
        .to_kind(pe.kind());
    Tensor::cat(&[cls, rows], 0)
}
