//! The scorers against the reference's training step on the golden model
//! (`IRRA2.clip_encode_text_dense`, `grad_eclip_enhanced_batched`, `grad_eclip`).

use gadms_golden::{assert_close, Golden};
use gadms_plugin::masking::{MaskingContext, MaskingStrategy, ScoreInputs, ScoringRequest, Vocab};
use gadms_plugin::nn::{BlockInit, LayerNorm, ResidualAttentionBlock};
use gadms_plugin::tch::nn::{Init, VarStore};
use gadms_plugin::tch::{Device, Kind, Tensor};

use super::{gadms, Tensors};
use crate::score::gradient::GradientTrace;
use crate::score::ops::{caption_mask, l2_normalize};
use crate::score::Scorer;
use crate::strategy::Strategy;

/// The golden model's text tail, built from the manifest's config and loaded by the
/// reference's parameter names, and the recorded inputs of its training step.
struct Fixture {
    golden: Golden,
    io: Tensors,
    ctx: MaskingContext,
    layers: i64,
    _store: VarStore,
    blocks: Vec<ResidualAttentionBlock>,
    ln_final: LayerNorm,
    text_projection: Tensor,
    /// `[B, L, W]` (the reference's `mid_text_feats` is `[L, B, W]`).
    text_state: Tensor,
}

impl Fixture {
    fn load() -> Self {
        let golden = Golden::load();
        let config = golden.model_config();
        let get = |key: &str| {
            config[key]
                .as_i64()
                .unwrap_or_else(|| panic!("model config lacks `{key}`"))
        };
        let (width, depth, heads, layers, embed) = (
            get("text_width"),
            get("text_layers"),
            get("text_heads"),
            get("dense_layers_n"),
            get("embed_dim"),
        );
        let special = &config["special_ids_for_this_vocab"];
        let vocab = Vocab::clip_layout(get("vocab_size"));
        assert_eq!(
            special["mask_id"].as_i64(),
            Some(vocab.mask_id),
            "the golden vocabulary has the CLIP layout"
        );
        let ctx = MaskingContext {
            vocab,
            context_length: get("context_length"),
        };

        let mut store = VarStore::new(Device::Cpu);
        let base = store.root() / "base_model";
        let init = BlockInit::clip(width, depth);
        let resblocks = &base / "transformer" / "resblocks";
        let blocks = (depth - layers..depth)
            .map(|i| ResidualAttentionBlock::new(&(&resblocks / i), width, heads, &init))
            .collect();
        let ln_final = LayerNorm::new(&(&base / "ln_final"), width);
        let text_projection = base.var("text_projection", &[width, embed], Init::Const(0.0));
        store
            .load(golden.dir.join("model.safetensors"))
            .expect("load the golden tail by name");
        // Frozen weights: the scorer must build its graph from its own leaf.
        store.freeze();

        let io = Tensors::load(&golden, "model_io.safetensors");
        let text_state = io.get("output/mid_text_feats").permute([1, 0, 2]);
        assert_eq!(
            text_state.size()[1],
            ctx.context_length,
            "mid_text_feats is [L, B, W]"
        );
        Self {
            golden,
            io,
            ctx,
            layers,
            _store: store,
            blocks,
            ln_final,
            text_projection,
            text_state,
        }
    }

    /// The scorer's inputs with `image_cls` (the recorded CLS features unless replaced).
    fn inputs<'a>(&'a self, image_cls: &'a Tensor) -> ScoreInputs<'a> {
        ScoreInputs {
            token_ids: self.io.get("input/caption_ids_ori"),
            eos: self.io.get("input/eos_position"),
            image_cls,
            image_tokens: self.io.get("output/image_feats"),
            text_state: &self.text_state,
            tail_blocks: &self.blocks,
            ln_final: &self.ln_final,
            text_projection: &self.text_projection,
        }
    }

    fn image_cls(&self) -> &Tensor {
        self.io.get("output/i_feats")
    }

    /// A `gadms` strategy re-running the golden model's dense layers, plus `options`.
    fn strategy(&self, options: &str) -> Strategy {
        gadms(&self.ctx, &format!("layers = {}\n{options}", self.layers))
    }

    /// The full trace of a gradient scorer configured by `options`.
    fn trace(&self, options: &str, image_cls: &Tensor) -> GradientTrace {
        match self.strategy(options).scorer {
            Some(Scorer::Gradient { scorer, .. }) => scorer.trace(&self.inputs(image_cls)).expect("trace"),
            other => panic!("{options:?} is not a gradient scorer: {other:?}"),
        }
    }

    /// Compares `ours` with the golden output `name` within the manifest's tolerance.
    fn check(&self, name: &str, ours: &Tensor) {
        let full = format!("output/{name}");
        assert_close(&full, ours, self.io.get(&full), self.golden.atol(&full));
    }
}

fn stack(tensors: impl Iterator<Item = Tensor>) -> Tensor {
    Tensor::stack(&tensors.collect::<Vec<_>>(), 0)
}

fn batch(fixture: &Fixture) -> i64 {
    fixture.text_state.size()[0]
}

#[test]
fn gass_reproduces_every_intermediate_and_the_score_map() {
    let fixture = Fixture::load();
    let group = batch(&fixture);
    let trace = fixture.trace(
        &format!("scorer = \"gass\"\ngroup = {group}"),
        fixture.image_cls(),
    );
    let tail = &trace.tail;
    fixture.check("t_feats_ori_raw", &tail.t_raw);
    fixture.check("t_feats_ori", &l2_normalize(&tail.t_raw));
    fixture.check("cosine", &tail.cosine);
    fixture.check("dense_attn_layer0", &tail.layers[0].attn);
    fixture.check("dense_attn_layer_last", &tail.layers[tail.layers.len() - 1].attn);
    fixture.check(
        "attn_output_grad_at_eos_per_layer",
        &stack(tail.layers.iter().map(|l| l.eos_grad.shallow_clone())),
    );
    fixture.check(
        "enhanced_sim_qk_per_layer",
        &stack(trace.spatial.iter().map(Tensor::shallow_clone)),
    );
    fixture.check("grad_emap", &trace.output.scores);
    assert_eq!(trace.output.degenerate.int64_value(&[]), 0);
}

#[test]
fn grad_eclip_reproduces_plain_similarity_and_its_map() {
    let fixture = Fixture::load();
    let trace = fixture.trace("scorer = \"grad-eclip\"", fixture.image_cls());
    fixture.check(
        "sim_qk_per_layer",
        &stack(trace.spatial.iter().map(Tensor::shallow_clone)),
    );
    fixture.check("grad_eclip_emap", &trace.output.scores);
}

#[test]
fn the_strategy_asks_for_its_tail_and_scores_through_the_trait() {
    let fixture = Fixture::load();
    // One group for the whole batch: the reference's normalisation.
    let strategy = fixture.strategy(&format!("group = {}", batch(&fixture)));
    let tail_layers = usize::try_from(fixture.layers).expect("layer count");
    assert_eq!(strategy.scoring(), Some(ScoringRequest { tail_layers }));
    let output = strategy
        .score(&fixture.inputs(fixture.image_cls()))
        .expect("score");
    assert_eq!(output.scores.kind(), Kind::Float);
    fixture.check("grad_emap", &output.scores);
}

#[test]
fn groups_are_normalised_by_their_own_extremes() {
    let fixture = Fixture::load();
    let whole = fixture
        .trace(&format!("group = {}", batch(&fixture)), fixture.image_cls())
        .output
        .scores;
    let group = 3;
    let grouped = fixture
        .trace(&format!("group = {group}"), fixture.image_cls())
        .output;
    assert_eq!(grouped.degenerate.int64_value(&[]), 0);
    // Each group's min is 0 (masked positions), so grouping rescales each group to its max.
    let expected = Tensor::cat(
        &whole
            .split(group, 0)
            .iter()
            .map(|g| g / g.max())
            .collect::<Vec<_>>(),
        0,
    );
    assert_close("group-wise scores", &grouped.scores, &expected, Some(1e-6));
    for (i, g) in grouped.scores.split(group, 0).iter().enumerate() {
        assert_close(
            &format!("max of group {i}"),
            &g.max(),
            &Tensor::from(1.0f32),
            Some(1e-6),
        );
    }
}

#[test]
fn the_papers_formula_normalises_each_sample() {
    let fixture = Fixture::load();
    let output = fixture
        .trace("scorer = \"gass-paper\"", fixture.image_cls())
        .output;
    assert_eq!(output.degenerate.int64_value(&[]), 0);
    let ones = Tensor::ones([batch(&fixture)], (Kind::Float, Device::Cpu));
    assert_close("row maxima", &output.scores.amax(1, false), &ones, Some(1e-6));
    assert_outside_caption_is_zero(&fixture, &output.scores);
}

#[test]
fn css_scores_caption_tokens_from_the_image_patches() {
    let fixture = Fixture::load();
    let strategy = fixture.strategy(&format!("scorer = \"css\"\ncss_layers = {}", fixture.layers));
    let tail_layers = usize::try_from(fixture.layers).expect("layer count");
    assert_eq!(strategy.scoring(), Some(ScoringRequest { tail_layers }));
    let output = strategy
        .score(&fixture.inputs(fixture.image_cls()))
        .expect("css score");
    assert_eq!(output.degenerate.int64_value(&[]), 0);
    assert_close(
        "css max over the batch",
        &output.scores.max(),
        &Tensor::from(1.0f32),
        Some(1e-6),
    );
    assert!(output.scores.min().double_value(&[]) >= 0.0);
    assert_outside_caption_is_zero(&fixture, &output.scores);
}

/// A batch whose image features are all zero (every cosine 0, every gradient 0) or NaN is
/// degenerate: all-zero scores, every sample counted.
#[test]
fn degenerate_batches_get_zero_scores_and_are_counted() {
    let fixture = Fixture::load();
    let zeros = fixture.image_cls().zeros_like();
    let nans = fixture.image_cls().full_like(f64::NAN);
    for scorer in ["gass", "gass-paper", "grad-eclip"] {
        for (what, image_cls) in [("zero", &zeros), ("NaN", &nans)] {
            let output = fixture.trace(&format!("scorer = \"{scorer}\""), image_cls).output;
            let case = format!("{scorer} with {what} image features");
            assert_eq!(
                output.scores.abs().sum(Kind::Double).double_value(&[]),
                0.0,
                "{case}: scores"
            );
            assert_eq!(
                output.degenerate.int64_value(&[]),
                batch(&fixture),
                "{case}: degenerate count"
            );
        }
    }
}

#[test]
fn inputs_of_the_wrong_shape_are_refused() {
    let fixture = Fixture::load();
    let strategy = fixture.strategy("");
    let mut inputs = fixture.inputs(fixture.image_cls());
    inputs.tail_blocks = &fixture.blocks[1..];
    let err = strategy.score(&inputs).err().expect("too few blocks");
    assert!(err.to_string().contains("text blocks"), "{err}");
    let short_cls = fixture.image_cls().narrow(0, 0, 1);
    let err = strategy
        .score(&fixture.inputs(&short_cls))
        .err()
        .expect("wrong batch");
    assert!(err.to_string().contains("image_cls"), "{err}");
}

fn assert_outside_caption_is_zero(fixture: &Fixture, scores: &Tensor) {
    let outside = 1.0
        - caption_mask(
            fixture.io.get("input/eos_position"),
            scores.size()[1],
            Kind::Float,
        );
    assert_eq!(
        (scores * &outside).abs().sum(Kind::Double).double_value(&[]),
        0.0,
        "score outside 0 < j < eos"
    );
}
