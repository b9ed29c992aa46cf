//! The data side against `masking.safetensors` (the reference's `FilterDataset`: its
//! probability mapping on a grid of scores, and scripted cases with its recorded draws).

use std::collections::VecDeque;

use gadms_golden::Golden;
use gadms_plugin::masking::{Draws, MaskingStrategy};

use super::{clip_context, gadms, Tensors};
use crate::dual::{DualMasking, MtpRule, SigmoidMap};

const FILE: &str = "masking.safetensors";

/// Replays the reference's recorded draws: `random()` values in order, and
/// `random.choice(range(1, mask_id))` as the recorded index modulo the range's length.
struct Replay {
    uniforms: VecDeque<f64>,
    choices: VecDeque<i64>,
}

impl Draws for Replay {
    fn uniform(&mut self) -> f64 {
        self.uniforms
            .pop_front()
            .expect("drew more uniforms than the reference")
    }

    fn choice(&mut self, n: u64) -> u64 {
        let idx = self
            .choices
            .pop_front()
            .expect("drew more choices than the reference");
        u64::try_from(idx).expect("recorded choice index is non-negative") % n
    }
}

/// How closely our probabilities must match the reference's. The manifest states an rtol
/// per dtype (`"p_* float64: rtol 1e-12; f32 variants: rtol 1e-6; ..."`). Where the reference
/// evaluated the sigmoid in float32 (threshold and exponent rounded to float32) while ours
/// runs in float64 on the same scores, the reference's own rounding, about
/// `|k (x - t)| · ε_f32` relative, is allowed on top.
struct Tolerance {
    rtol: f64,
    /// Machine epsilon of the reference's evaluation, 0 for float64.
    eps: f64,
}

impl Tolerance {
    fn new(golden: &Golden, float32: bool) -> Self {
        let label = if float32 { "f32 variants" } else { "float64" };
        let text = golden.file(FILE)["tolerance"]
            .as_str()
            .expect("masking tolerance text");
        let after = text
            .split(label)
            .nth(1)
            .unwrap_or_else(|| panic!("no `{label}` in {text:?}"));
        let number = after
            .trim_start_matches([':', ' '])
            .trim_start_matches("rtol")
            .trim_start();
        let end = number.find([';', ' ']).unwrap_or(number.len());
        let rtol = number[..end]
            .parse()
            .unwrap_or_else(|e| panic!("rtol of `{label}` in {text:?}: {e}"));
        Self {
            rtol,
            eps: if float32 { f64::from(f32::EPSILON) } else { 0.0 },
        }
    }

    /// Asserts `|ours - reference| <= tol · |reference|` elementwise, where `x` is the
    /// mapping's input at each position (the score, or 1 - score for noise).
    fn check(&self, case: &str, ours: &[f64], reference: &[f64], map: &SigmoidMap, x: impl Fn(usize) -> f64) {
        assert_eq!(ours.len(), reference.len(), "{case}: length");
        for (i, (&o, &r)) in ours.iter().zip(reference).enumerate() {
            let tol = (self.rtol + (map.k * (x(i) - map.threshold)).abs() * self.eps) * r.abs();
            assert!(
                (o - r).abs() <= tol,
                "{case}[{i}]: ours {o:e}, reference {r:e}, |diff| > {tol:e}"
            );
        }
    }
}

/// The default strategy's two sigmoid maps, MTP and noise.
fn default_maps(masking: &DualMasking) -> (SigmoidMap, SigmoidMap) {
    match (masking.mtp, masking.noise) {
        (Some(MtpRule::Informative(mtp)), Some(noise)) => (mtp, noise),
        other => panic!("the default strategy masks both views from scores, got {other:?}"),
    }
}

#[test]
fn default_mappings_are_the_reference_call_args() {
    let golden = Golden::load();
    let strategy = gadms(&clip_context(&golden), "");
    for args in golden.file(FILE)["call_args_f64"]
        .as_array()
        .expect("call_args_f64")
    {
        let arg = |k: &str| args[k].as_f64().unwrap_or_else(|| panic!("call arg `{k}`"));
        let map = SigmoidMap {
            k: arg("k"),
            threshold: arg("threshold"),
            max: arg("max_num"),
        };
        match args["input_is"].as_str() {
            Some("score") => assert_eq!(strategy.masking.mtp, Some(MtpRule::Informative(map)), "{args}"),
            Some("1 - score") => assert_eq!(strategy.masking.noise, Some(map), "{args}"),
            other => panic!("unknown input {other:?}"),
        }
    }
}

/// `grid_scores_*` → `p_mtp_*`, `p_noise_*`.
#[test]
fn probabilities_match_the_reference_grid() {
    let golden = Golden::load();
    let tensors = Tensors::load(&golden, FILE);
    let masking = gadms(&clip_context(&golden), "").masking;
    let (mtp, noise) = default_maps(&masking);
    for (dtype, float32) in [("f64", false), ("f32", true)] {
        let tolerance = Tolerance::new(&golden, float32);
        let s = tensors.vec::<f64>(&format!("grid_scores_{dtype}"));
        let reference = |name: &str| tensors.vec::<f64>(&format!("{name}_{dtype}"));
        let ours = masking.mtp_probabilities(&s).expect("MTP view");
        tolerance.check(&format!("p_mtp_{dtype}"), &ours, &reference("p_mtp"), &mtp, |i| {
            s[i]
        });
        let ours = masking.noise_probabilities(&s).expect("noise masking");
        tolerance.check(
            &format!("p_noise_{dtype}"),
            &ours,
            &reference("p_noise"),
            &noise,
            |i| 1.0 - s[i],
        );
    }
}

/// Every scripted case of the manifest: the recorded draws replayed through our masking give
/// the reference's `mlm_ids`, `mlm_labels` and `noise_text` exactly and use every draw.
#[test]
fn scripted_cases_replay_exactly() {
    let golden = Golden::load();
    let tensors = Tensors::load(&golden, FILE);
    let strategy = gadms(&clip_context(&golden), "");
    let (mtp_map, noise_map) = default_maps(&strategy.masking);
    let cases = golden.file(FILE)["scripted_cases"]
        .as_array()
        .expect("scripted_cases");
    assert!(!cases.is_empty(), "the manifest lists no scripted case");
    for case in cases {
        let index = case["index"].as_u64().expect("case index");
        let name = |t: &str| format!("scripted/{index:02}/{t}");
        let tokens = tensors.vec::<i64>(&name("caption_ids"));
        let sim = tensors.vec::<f64>(&name("sim"));
        let mut draws = Replay {
            uniforms: tensors.vec::<f64>(&name("uniforms_used")).into(),
            choices: tensors.vec::<i64>(&name("choice_idx_used")).into(),
        };
        // Float32 scores: the reference mapped them in float32, and they go through the trait
        // as the runner calls it.
        let float32 = case["sim_dtype"] == "float32";
        let tolerance = Tolerance::new(&golden, float32);
        let p_mtp = strategy.masking.mtp_probabilities(&sim).expect("MTP view");
        tolerance.check(
            &name("p_mtp"),
            &p_mtp,
            &tensors.vec(&name("p_mtp")),
            &mtp_map,
            |i| sim[i],
        );
        let p_noise = strategy.masking.noise_probabilities(&sim).expect("noise masking");
        tolerance.check(
            &name("p_noise"),
            &p_noise,
            &tensors.vec(&name("p_noise")),
            &noise_map,
            |i| 1.0 - sim[i],
        );

        let views = if float32 {
            let scores: Vec<f32> = sim.iter().map(|&s| s as f32).collect();
            assert!(
                scores.iter().zip(&sim).all(|(&a, &b)| f64::from(a) == b),
                "{}: not float32",
                name("sim")
            );
            strategy.mask(&tokens, &scores, &mut draws).expect("mask")
        } else {
            strategy.masking.views(&tokens, &sim, &mut draws)
        };
        let mtp = views.mtp.expect("MTP view");
        assert_eq!(
            mtp.ids,
            tensors.vec::<i64>(&name("mlm_ids")),
            "{}",
            name("mlm_ids")
        );
        assert_eq!(
            mtp.labels,
            tensors.vec::<i64>(&name("mlm_labels")),
            "{}",
            name("mlm_labels")
        );
        assert_eq!(
            views.alignment,
            tensors.vec::<i64>(&name("noise_text")),
            "{}",
            name("noise_text")
        );
        assert!(
            draws.uniforms.is_empty(),
            "case {index}: {} uniforms left over",
            draws.uniforms.len()
        );
        assert!(
            draws.choices.is_empty(),
            "case {index}: {} choices left over",
            draws.choices.len()
        );
    }
}
