//! The oracle: `scorer = "oracle"` asks for the noise labels as scores and scores nothing in
//! the step; with the labels' scores the dual masking masks the noise, and its deterministic
//! noise mask masks all of it and nothing else.

use gadms_plugin::masking::{MaskingContext, MaskingStrategy, NoiseLabelScores, Vocab};
use gadms_plugin::rng::Rng;
use gadms_plugin::PluginError;

use crate::factory::create;
use crate::options::GadmsOptions;

fn ctx() -> MaskingContext {
    MaskingContext {
        vocab: Vocab::clip_layout(100),
        context_length: 12,
    }
}

fn strategy(options: &str) -> Box<dyn MaskingStrategy> {
    Box::new(create::<GadmsOptions>(&ctx(), options).unwrap_or_else(|e| panic!("{options:?}: {e}")))
}

/// sot, 8 words (noise at 3, 4 and 7), eot, padding; and the oracle's scores of them.
fn caption() -> (Vec<i64>, Vec<bool>, Vec<f32>) {
    let tokens = vec![98, 10, 11, 12, 13, 14, 15, 16, 17, 99, 0, 0];
    let noise: Vec<bool> = (0..12).map(|p| [3, 4, 7].contains(&p)).collect();
    let scores = noise.iter().map(|&n| NoiseLabelScores::score(n)).collect();
    (tokens, noise, scores)
}

#[test]
fn the_oracle_takes_the_noise_labels_and_scores_nothing_in_the_step() {
    let oracle = strategy("scorer = \"oracle\"");
    assert_eq!(oracle.scoring(), None, "the step has nothing to score");
    let labels = oracle
        .noise_label_scores()
        .expect("the oracle asks for the noise labels");
    assert_eq!(labels.option, "scorer = \"oracle\"");
    for scorer in ["gass", "gass-paper", "grad-eclip", "css"] {
        let s = strategy(&format!("scorer = \"{scorer}\""));
        assert!(
            s.scoring().is_some() && s.noise_label_scores().is_none(),
            "{scorer}"
        );
    }
}

#[test]
fn the_deterministic_noise_mask_masks_every_noise_token_and_nothing_else() {
    let s = strategy("scorer = \"oracle\"\nnoise_deterministic = true");
    let (tokens, noise, scores) = caption();
    let mask_id = ctx().vocab.mask_id;
    for seed in 0..20 {
        let views = s.mask(&tokens, &scores, &mut Rng::new(seed)).unwrap();
        let expected: Vec<i64> = tokens
            .iter()
            .zip(&noise)
            .map(|(&t, &n)| if n { mask_id } else { t })
            .collect();
        assert_eq!(views.alignment, expected, "seed {seed}");
        assert!(views.mtp.is_some(), "the MTP view stays");
    }
}

#[test]
fn the_dropping_noise_cut_leaves_the_caption_without_its_noise() {
    let s = strategy("scorer = \"oracle\"\nnoise_deterministic = true\nnoise_drop = true");
    let (tokens, _, scores) = caption();
    let views = s.mask(&tokens, &scores, &mut Rng::new(0)).unwrap();
    assert_eq!(views.alignment, vec![98, 10, 11, 14, 15, 17, 99, 0, 0, 0, 0, 0]);
    let eot = views
        .alignment
        .iter()
        .enumerate()
        .max_by_key(|&(_, &t)| t)
        .unwrap()
        .0;
    assert_eq!(eot, 6, "the EOT, the largest id, moved up with the text");
}

#[test]
fn a_dropping_noise_cut_needs_the_deterministic_cut() {
    match create::<GadmsOptions>(&ctx(), "scorer = \"oracle\"\nnoise_drop = true") {
        Err(PluginError::Options { message, .. }) => assert!(message.contains("noise_drop"), "{message}"),
        Err(e) => panic!("not an options error: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn the_probabilistic_oracle_masks_noise_only_as_its_probabilities_allow() {
    let s = strategy("scorer = \"oracle\"");
    let (tokens, noise, scores) = caption();
    let (mut noise_changed, mut noise_seen) = (0, 0);
    for seed in 0..2000 {
        let views = s.mask(&tokens, &scores, &mut Rng::new(seed)).unwrap();
        for p in 0..tokens.len() {
            let changed = views.alignment[p] != tokens[p];
            if noise[p] {
                noise_seen += 1;
                noise_changed += usize::from(changed);
            } else if p != 1 {
                // Position 1 is the at-least-one fallback of a draw that selects nothing.
                assert!(!changed, "seed {seed}: clean position {p} masked");
            }
        }
    }
    // p(noise) = 0.2 / (1 + e^{-20 (1 - 0.9)}) ≈ 0.176; 90 % of the selected change.
    let rate = noise_changed as f64 / noise_seen as f64;
    assert!(
        (0.13..0.19).contains(&rate),
        "noise tokens changed at rate {rate}"
    );
}

#[test]
fn a_deterministic_noise_mask_needs_the_noise_mask() {
    match create::<GadmsOptions>(&ctx(), "noise_mask = false\nnoise_deterministic = true") {
        Err(PluginError::Options { message, .. }) => {
            assert!(message.contains("noise_deterministic"), "{message}")
        }
        Err(e) => panic!("not an options error: {e}"),
        Ok(_) => panic!("accepted"),
    }
}
