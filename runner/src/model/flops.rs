//! Analytical FLOPs of one GA-DMS training step, from the model's shapes (method §1.1–1.9):
//! the numerator of model FLOPs utilisation (MFU), which `benches/gpu.sh` divides by the
//! card's measured bf16 matrix-multiply rate.
//!
//! Only matrix products are counted (linear layers, the patch convolution, the two products
//! of every attention), at 2 FLOPs per multiply–add: they are what a matrix unit's peak
//! measures, and everything else (norms, softmax, activations, losses' elementwise work, the
//! optimizer) is a few percent of them at most. Attention is counted over the full square,
//! causal or not, as PyTorch's own counter does. The counted algorithm is gadms's step
//! (`train::step`): a backward product costs twice its forward, except where only one
//! operand needs a gradient (the patch convolution, whose input is the image, and the
//! scorer's backward pass, which asks for activations only); the scorer re-runs the last
//! text blocks once and differentiates them in one pass; the vocabulary projection runs at
//! labelled positions only. `benches/pytorch_step.py --algorithm gadms --count-flops`
//! computes the same step under `torch.utils.flop_counter`, and a test holds the two
//! together.

use super::ModelConfig;

/// The `mtp` loss's cross-modal depth when its options leave `depth` out (the reference's
/// `--cmt_depth`).
pub const MTP_DEFAULT_DEPTH: i64 = 4;

/// What a run's step computes besides the image encoder, the alignment text and SDM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepWork {
    /// Text blocks the gradient-attention scorer re-runs; `None` when the masking strategy
    /// does not score in the step.
    pub score_tail: Option<i64>,
    /// Blocks of the MTP loss's cross-modal transformer; `None` without an MTP loss.
    pub mtp_depth: Option<i64>,
}

/// The sizes of one step's batch that its work depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    pub samples: i64,
    /// Positions of the alignment text, which is encoded up to the batch's latest EOS only
    /// (`TextTransformer::feature_prefix`); every other text runs over the full context.
    pub alignment_len: i64,
    /// MTP targets in the batch.
    pub labelled: i64,
}

/// FLOPs of one training step by part, forward and backward together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepFlops {
    /// The image encoder.
    pub image: u64,
    /// The text encodes with gradient: the alignment caption (up to the latest EOS) and,
    /// with MTP, the MTP caption.
    pub text: u64,
    /// The clean caption up to the scorer's tail, the tail's re-run and its backward pass,
    /// and the token maps.
    pub score: u64,
    /// The cross-modal decoder and the MLM head at the labelled positions.
    pub mtp: u64,
    /// The similarity matrix of SDM.
    pub sdm: u64,
}

impl StepFlops {
    pub fn total(&self) -> u64 {
        self.image + self.text + self.score + self.mtp + self.sdm
    }
}

impl StepWork {
    /// The FLOPs of one step on a batch of `shape`.
    pub fn flops(&self, c: &ModelConfig, shape: BatchShape) -> StepFlops {
        let BatchShape {
            samples: b,
            alignment_len,
            labelled,
        } = shape;
        let (rows, cols) = c.grid();
        let tokens = rows * cols + 1;
        let l = c.context_length;
        let (vw, tw, e) = (c.vision_width, c.text_width, c.embed_dim);

        let patch_embedding = 2 * b * (tokens - 1) * vw * 3 * c.patch_size * c.patch_size;
        let vision = c.vision_layers * block(b, tokens, vw) + linear(b * tokens, vw, e);
        // Forward, then the weight gradient only: the image needs none.
        let image = 2 * patch_embedding + 3 * vision;

        let encode = |len| 3 * (c.text_layers * block(b, len, tw) + linear(b * len, tw, e));
        let text = encode(alignment_len) + self.mtp_depth.map_or(0, |_| encode(l));

        let score = self.score_tail.map_or(0, |tail| {
            let head = (c.text_layers - tail) * block(b, l, tw);
            // Single-head attention over the full width costs what the model's heads cost.
            let rerun = tail * block(b, l, tw);
            let pooled = linear(b, tw, e) + 2 * b * b * e;
            // The backward pass yields the attention outputs' gradients: each product's
            // gradient with respect to its activation input only, down to the first re-run
            // block's attention output.
            let backward = pooled
                + (tail - 1) * (block_linears(b, l, tw) + 2 * attention(b, l, l, tw))
                + linear(b * l, tw, tw)
                + mlp(b * l, tw);
            // Per layer: the EOS query against every key, the gradient against every value.
            let maps = tail * 2 * (2 * b * l * tw);
            // Per layer: the queries and the keys pooled in pairs and resized back to L by an
            // [L, ceil(L / 2)] interpolation matrix (multi-scale pooling at scales [1, 2]).
            let pooling = tail * 2 * (2 * b * l * ((l + 1) / 2) * tw);
            head + rerun + pooled + backward + maps + pooling
        });

        let mtp = self.mtp_depth.map_or(0, |depth| {
            let cross = linear(b * l, e, e) + linear(b * tokens, e, 2 * e) + attention(b, l, tokens, e);
            let decoder = cross + linear(b * l, e, e) + depth * block(b, l, e);
            let head = linear(labelled, e, e) + linear(labelled, e, c.vocab_size);
            3 * (decoder + head)
        });

        StepFlops {
            image: image as u64,
            text: text as u64,
            score: score as u64,
            mtp: mtp as u64,
            sdm: (3 * 2 * b * b * e) as u64,
        }
    }
}

/// Forward FLOPs of `rows` × `input` times `input` × `output`.
fn linear(rows: i64, input: i64, output: i64) -> i64 {
    2 * rows * input * output
}

/// Forward FLOPs of attention's two products (scores and weighted values) for `queries`
/// against `keys` in `batch` samples, summed over heads.
fn attention(batch: i64, queries: i64, keys: i64, width: i64) -> i64 {
    2 * 2 * batch * queries * keys * width
}

fn mlp(rows: i64, width: i64) -> i64 {
    linear(rows, width, 4 * width) + linear(rows, 4 * width, width)
}

/// A residual block's linear layers: the packed q/k/v projection, the output projection
/// and the MLP.
fn block_linears(batch: i64, tokens: i64, width: i64) -> i64 {
    let rows = batch * tokens;
    linear(rows, width, 3 * width) + linear(rows, width, width) + mlp(rows, width)
}

/// Forward FLOPs of a residual attention block over `tokens` positions.
fn block(batch: i64, tokens: i64, width: i64) -> i64 {
    block_linears(batch, tokens, width) + attention(batch, tokens, tokens, width)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use serde_json::Value;

    use super::*;

    const GADMS: StepWork = StepWork {
        score_tail: Some(8),
        mtp_depth: Some(4),
    };

    /// A ViT-B/16 batch whose alignment text runs over the whole context.
    fn full(samples: i64, labelled: i64) -> BatchShape {
        BatchShape {
            samples,
            alignment_len: 77,
            labelled,
        }
    }

    /// Hand count of one ViT-B/16 block (768 wide, 193 tokens, batch 1): 24·T·W² for the
    /// linears and 4·T²·W for attention.
    #[test]
    fn a_vit_block_is_24_t_w2_plus_4_t2_w() {
        let (t, w) = (193, 768);
        assert_eq!(block(1, t, w), 24 * t * w * w + 4 * t * t * w);
    }

    #[test]
    fn every_part_scales_linearly_with_the_batch_but_sdm_and_the_score_cosine() {
        let c = ModelConfig::vit_b16();
        let (one, two) = (GADMS.flops(&c, full(64, 0)), GADMS.flops(&c, full(128, 0)));
        assert_eq!(two.image, 2 * one.image);
        assert_eq!(two.text, 2 * one.text);
        assert_eq!(two.mtp, 2 * one.mtp);
        assert_eq!(two.sdm, 4 * one.sdm);
        assert!(two.score > 2 * one.score, "the B×B cosine grows quadratically");
    }

    #[test]
    fn parts_switch_off_with_the_work() {
        let c = ModelConfig::vit_b16();
        let plain = StepWork {
            score_tail: None,
            mtp_depth: None,
        }
        .flops(&c, full(128, 640));
        let gadms = GADMS.flops(&c, full(128, 640));
        assert_eq!((plain.score, plain.mtp), (0, 0));
        assert_eq!(plain.image, gadms.image);
        assert_eq!(2 * plain.text, gadms.text, "MTP adds a second text encode");
        let short = GADMS.flops(
            &c,
            BatchShape {
                alignment_len: 30,
                ..full(128, 640)
            },
        );
        assert_eq!(
            (gadms.text - short.text) as i64,
            3 * c.text_layers * (block(128, 77, 512) - block(128, 30, 512)) + 3 * linear(128 * 47, 512, 512),
            "a shorter alignment text saves its encode's positions"
        );
        let head = 3 * (linear(640, 512, 512) + linear(640, 512, 49408));
        assert_eq!(gadms.mtp - GADMS.flops(&c, full(128, 0)).mtp, head as u64);
    }

    /// The count agrees with PyTorch's own counter (`torch.utils.flop_counter`) on the same
    /// step computed the way gadms computes it, for the golden model (8 re-run blocks of 9)
    /// and the tiny preset (the CLIP vocabulary, 4 of 4). The two were equal to the FLOP
    /// when this was written; the margin leaves room for a counter that learns an op more.
    #[test]
    fn matches_pytorchs_flop_counter_on_the_gadms_step() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = std::env::var_os("GADMS_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        let out = Command::new(&python)
            .arg(root.join("benches/pytorch_step.py"))
            .args([
                "golden",
                "tiny",
                "--algorithm",
                "gadms",
                "--count-flops",
                "--batch",
                "16",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} (set GADMS_PYTHON): {e}", python.display()));
        assert!(
            out.status.success(),
            "pytorch_step.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = String::from_utf8(out.stdout).unwrap();
        let mut seen = 0;
        for line in lines.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let m = &r["model"];
            let int = |k: &str| m[k].as_i64().unwrap();
            let config = ModelConfig {
                embed_dim: int("embed"),
                image_size: [m["img"][0].as_i64().unwrap(), m["img"][1].as_i64().unwrap()],
                patch_size: int("patch"),
                stride: int("stride"),
                vision_width: int("vw"),
                vision_layers: int("vl"),
                vision_heads: int("vh"),
                context_length: int("ctx"),
                vocab_size: int("vocab"),
                text_width: int("tw"),
                text_layers: int("tl"),
                text_heads: int("th"),
                temperature: 0.02,
            };
            let work = StepWork {
                score_tail: Some(int("dense")),
                mtp_depth: Some(r["mtp_depth"].as_i64().unwrap()),
            };
            let shape = BatchShape {
                samples: r["batch"].as_i64().unwrap(),
                alignment_len: r["alignment_len"].as_i64().unwrap(),
                labelled: r["labelled"].as_i64().unwrap(),
            };
            let ours = work.flops(&config, shape).total() as f64;
            let theirs = r["flops"].as_f64().unwrap();
            let off = (ours / theirs - 1.0).abs();
            assert!(
                off < 0.005,
                "{}: ours {ours:e}, PyTorch's counter {theirs:e} ({:.2} % off)",
                r["config"],
                100.0 * off
            );
            seen += 1;
        }
        assert_eq!(seen, 2, "expected two configurations, got:\n{lines}");
    }
}
