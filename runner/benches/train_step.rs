//! Training-step benchmark on the CPU: median step time over timed steps after warm-up,
//! samples/s, peak resident memory (fp32), the share of the step spent on the
//! gradient-attention score (measured as the difference to the same step with masking
//! `none`, in the same process), and the same step under bf16 autocast.
//!
//! Configurations: the small golden model at batch 64, the CPU `tiny` preset at batch 64
//! and ViT-B/16 at batch 8, each with
//! the GA-DMS pre-training losses (SDM + 0.3·MTP). Inputs are random: speed does not
//! depend on their values. Run with `make bench` (or `cargo bench -p gadms --bench
//! train_step`); `GADMS_BENCH_STEPS` sets the number of timed steps (default 5) and
//! `GADMS_BENCH_ONLY` a comma-separated list of configs to run (`golden,tiny,vit-b16`).

use std::time::Instant;

use gadms::model::{Clip, ModelConfig, TextTransformer};
use gadms::plugin::{default_search_path, PluginSet};
use gadms::train::optim::AdamConfig;
use gadms::train::precision::{autocast, Precision};
use gadms::train::stages::Stages;
use gadms::train::step::{self, Batch, MtpBatch, WeightedLoss};
use gadms_golden::Golden;

#[path = "../../tests/common/mod.rs"]
mod common;
use gadms_plugin::loss::LossContext;
use gadms_plugin::masking::{MaskingContext, Vocab};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

struct Case {
    name: &'static str,
    config: ModelConfig,
    batch: i64,
    tail: usize,
}

fn golden_case() -> Case {
    let g = Golden::load();
    let tail = common::int(g.model_config(), "dense_layers_n") as usize;
    Case {
        name: "golden config",
        config: common::golden_config(&g),
        batch: 64,
        tail,
    }
}

/// A random batch with captions filling a quarter to half of the context and 15 % of their
/// tokens labelled for MTP.
fn batch(c: &ModelConfig, b: i64) -> Batch {
    let l = c.context_length;
    let vocab = Vocab::clip_layout(c.vocab_size);
    let lengths = Tensor::randint_low(l / 4, l / 2, [b, 1], (Kind::Int64, Device::Cpu));
    let pos = Tensor::arange(l, (Kind::Int64, Device::Cpu)).view([1, l]);
    let content = Tensor::randint_low(1, vocab.mask_id, [b, l], (Kind::Int64, Device::Cpu));
    let ids = content.where_self(
        &pos.lt_tensor(&lengths),
        &Tensor::zeros([b, l], (Kind::Int64, Device::Cpu)),
    );
    let ids = ids.where_self(
        &pos.ne_tensor(&lengths),
        &Tensor::full([b, l], vocab.eot_id, (Kind::Int64, Device::Cpu)),
    );
    let ids = ids.where_self(
        &pos.ne(0),
        &Tensor::full([b, l], vocab.sot_id, (Kind::Int64, Device::Cpu)),
    );
    let labelled = Tensor::rand([b, l], (Kind::Float, Device::Cpu))
        .lt(0.15)
        .logical_and(&pos.gt(0))
        .logical_and(&pos.lt_tensor(&lengths));
    let labels = ids.where_self(&labelled, &Tensor::zeros([b, l], (Kind::Int64, Device::Cpu)));
    let mtp_ids = ids.where_self(
        &labelled.logical_not(),
        &Tensor::full([b, l], vocab.mask_id, (Kind::Int64, Device::Cpu)),
    );
    let positions = labels.view([-1]).ne(0).nonzero().view([-1]);
    let [h, w] = c.image_size;
    Batch {
        images: Tensor::randn([b, 3, h, w], (Kind::Float, Device::Cpu)),
        alignment: TextTransformer::feature_prefix(&ids),
        clean: ids,
        mtp: Some(MtpBatch {
            ids: mtp_ids,
            labels,
            positions,
        }),
        pids: Tensor::arange(b, (Kind::Int64, Device::Cpu)),
    }
}

/// Median seconds per step (forward, backward, Adam) with the given masking.
fn time_steps(case: &Case, plugins: &PluginSet, masking: &str, steps: usize, precision: Precision) -> f64 {
    let c = &case.config;
    let vs = VarStore::new(Device::Cpu);
    let clip = Clip::new(&vs.root(), c);
    let vocab = Vocab::clip_layout(c.vocab_size);
    let ctx = LossContext {
        embed_dim: c.embed_dim,
        vocab,
        num_classes: case.batch,
        caption_tokens: None,
    };
    let build = |n: &str, o: &str| plugins.loss(n).unwrap().build(&vs.root(), &ctx, o).unwrap();
    let losses = vec![
        WeightedLoss {
            name: "sdm".into(),
            weight: 1.0,
            loss: build("sdm", ""),
        },
        WeightedLoss {
            name: "mtp".into(),
            weight: 0.3,
            loss: build("mtp", ""),
        },
    ];
    let options = if masking == "gadms" {
        format!("layers = {}", case.tail)
    } else {
        String::new()
    };
    let masking = plugins
        .masking(masking)
        .unwrap()
        .create(
            &MaskingContext {
                vocab,
                context_length: c.context_length,
            },
            &options,
        )
        .unwrap();
    let mut opt = AdamConfig::default().build(&vs);
    opt.set_lr(1e-5);
    let input = batch(c, case.batch);
    let mut times = Vec::new();
    for i in 0..steps + 2 {
        let start = Instant::now();
        let out = autocast(precision, Device::Cpu, || {
            step::forward(
                &clip,
                masking.as_ref(),
                &losses,
                &input,
                &gadms::dist::Single,
                &mut Stages::default(),
            )
        })
        .unwrap()
        .unwrap();
        let grads = opt.backward(&out.total);
        opt.step(&grads).unwrap();
        let _ = out.total.double_value(&[]); // the step has really finished
        if i >= 2 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let steps: usize = std::env::var("GADMS_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let plugins = PluginSet::discover(&default_search_path());
    assert!(
        plugins.problems.is_empty(),
        "plugin problems: {:?}",
        plugins.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
    );
    println!(
        "CPU training step, {} libtorch threads, median of {steps} steps after 2 warm-up steps",
        tch::get_num_threads()
    );
    println!(
        "{:<16} {:>5} {:>10} {:>10} {:>12} {:>11} {:>13} {:>14}",
        "config",
        "batch",
        "step (s)",
        "samples/s",
        "no-score (s)",
        "score share",
        "peak RSS MiB",
        "bf16 step (s)"
    );
    let only = std::env::var("GADMS_BENCH_ONLY").unwrap_or_else(|_| "golden,tiny,vit-b16".into());
    let cases = [
        ("golden", golden_case()),
        (
            "tiny",
            Case {
                name: "tiny preset",
                config: ModelConfig::tiny(),
                batch: 64,
                tail: 4,
            },
        ),
        (
            "vit-b16",
            Case {
                name: "ViT-B/16",
                config: ModelConfig::vit_b16(),
                batch: 8,
                tail: 8,
            },
        ),
    ];
    for (_, case) in cases
        .iter()
        .filter(|(key, _)| only.split(',').any(|o| o.trim() == *key))
    {
        let with_score = time_steps(case, &plugins, "gadms", steps, Precision::Fp32);
        let without = time_steps(case, &plugins, "none", steps, Precision::Fp32);
        let rss = peak_rss_mib();
        let bf16 = time_steps(case, &plugins, "gadms", steps, Precision::Bf16);
        println!(
            "{:<16} {:>5} {:>10.3} {:>10.1} {:>12.3} {:>10.1}% {:>13.0} {:>14.3}",
            case.name,
            case.batch,
            with_score,
            case.batch as f64 / with_score,
            without,
            100.0 * (with_score - without) / with_score,
            rss,
            bf16
        );
    }
}
