//! Options and captions a user can get wrong, and the switches of the three strategies.

use gadms_plugin::masking::{MaskingContext, MaskingStrategy, Vocab};
use gadms_plugin::rng::Rng;
use gadms_plugin::PluginError;

use crate::factory::{create, StrategyOptions};
use crate::options::{GadmsOptions, NoneOptions, RandomOptions};

fn ctx() -> MaskingContext {
    MaskingContext {
        vocab: Vocab::clip_layout(100),
        context_length: 8,
    }
}

/// The option error of `O` for `options`; panics unless it is one naming `O` and `needle`.
fn refused<O: StrategyOptions>(options: &str, needle: &str) {
    match create::<O>(&ctx(), options) {
        Err(PluginError::Options { component, message }) => {
            assert_eq!(component, O::NAME);
            assert!(
                message.contains(needle),
                "{options:?}: {message:?} does not name `{needle}`"
            );
        }
        Err(e) => panic!("{options:?}: not an options error: {e}"),
        Ok(_) => panic!("{options:?} was accepted"),
    }
}

#[test]
fn unknown_keys_and_bad_values_are_option_errors_naming_the_key() {
    refused::<GadmsOptions>("layerz = 8", "layerz");
    refused::<GadmsOptions>("scorer = \"gas\"", "gas");
    refused::<RandomOptions>("ratio = 0.2", "ratio");
    refused::<NoneOptions>("rate = 0.2", "rate");
    refused::<RandomOptions>("rate = 1.5", "rate");
    refused::<GadmsOptions>("scales = []", "scales");
    refused::<GadmsOptions>("scales = [1, 0]", "scales");
    refused::<GadmsOptions>("group = 0", "group");
    refused::<GadmsOptions>("layers = 0", "layers");
    refused::<GadmsOptions>("noise_max = -0.1", "noise_max");
    refused::<GadmsOptions>("mtp_k = nan", "mtp_k");
}

#[test]
fn short_captions_and_mismatched_scores() {
    let strategy = create::<GadmsOptions>(&ctx(), "").expect("defaults");
    let mut rng = Rng::new(1);
    for tokens in [vec![], vec![ctx().vocab.sot_id]] {
        let scores = vec![0.5; tokens.len()];
        let views = strategy
            .mask(&tokens, &scores, &mut rng)
            .expect("a short caption is no error");
        assert_eq!(views.alignment, tokens);
        assert_eq!(views.mtp.expect("MTP view").ids, tokens);
    }
    let err = strategy
        .mask(&[98, 5, 99], &[0.5], &mut rng)
        .expect_err("one score for three positions");
    assert!(matches!(err, PluginError::Data(_)), "{err}");
}

#[test]
fn each_strategy_builds_the_views_its_options_ask_for() {
    let ctx = ctx();
    let tokens = [ctx.vocab.sot_id, 5, 6, 7, ctx.vocab.eot_id, 0, 0, 0];
    let labels_everywhere = [0, 5, 6, 7, 0, 0, 0, 0];
    let scores = [0.5f32; 8];
    let mut rng = Rng::new(7);

    let none = create::<NoneOptions>(&ctx, "").expect("none");
    assert_eq!(none.scoring(), None);
    let views = none.mask(&tokens, &scores, &mut rng).expect("none");
    assert_eq!((views.alignment.as_slice(), views.mtp), (tokens.as_slice(), None));

    let random = create::<RandomOptions>(&ctx, "rate = 1.0").expect("random");
    assert_eq!(random.scoring(), None);
    let views = random.mask(&tokens, &scores, &mut rng).expect("random");
    assert_eq!(views.alignment, tokens);
    assert_eq!(views.mtp.expect("MTP view").labels, labels_everywhere);

    let plain = create::<GadmsOptions>(
        &ctx,
        "noise_mask = false\nmtp_mask = false\nmtp_random_rate = 1.0",
    )
    .expect("gadms");
    assert!(plain.scoring().is_some());
    let views = plain.mask(&tokens, &scores, &mut rng).expect("gadms");
    assert_eq!(
        views.alignment, tokens,
        "no noise masking: the clean caption, no at-least-one"
    );
    assert_eq!(
        views.mtp.expect("MTP view").labels,
        labels_everywhere,
        "random MTP at the given rate"
    );
}
