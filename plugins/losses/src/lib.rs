//! The built-in losses of gadms, one module each, as the reference code (GA-DMS on top of
//! IRRA's `objectives.py`) defines them:
//!
//! | name   | pulls together                                                  | owns              |
//! |--------|-----------------------------------------------------------------|-------------------|
//! | `sdm`  | scaled-cosine distribution and same-identity distribution       | nothing           |
//! | `itc`  | each image and its own caption, against the batch (InfoNCE)     | nothing           |
//! | `id`   | both modalities' features and the person id                     | classifier        |
//! | `cmpm` | raw-on-normalised projections and same-identity distribution    | nothing           |
//! | `mtp`  | masked caption tokens and their ids, via the cross-modal decoder | decoder, MLM head |
//!
//! Every loss returns its *unweighted* value; the runner applies the spec's weight. Parameters
//! are built under the path the runner gives (the model store's root), at the reference
//! state-dict names (`classifier.weight`, `mlm_head.fc.weight`, ...).

mod classify;
mod cmpm;
mod features;
mod id;
mod itc;
mod matching;
mod mtp;
mod sdm;
#[cfg(test)]
mod testing;

use gadms_plugin::{Registry, Result};

gadms_plugin::declare_plugin!(register);

fn register(registry: &mut Registry) -> Result<()> {
    registry.loss(
        sdm::NAME,
        "Similarity Distribution Matching: KL from the scaled cosine distribution to the identity distribution",
        sdm::Factory,
    );
    registry.loss(
        itc::NAME,
        "image-text contrastive cross-entropy over the batch",
        itc::Factory,
    );
    registry.loss(
        id::NAME,
        "identity classification of image and text features (owns `classifier`)",
        id::Factory,
    );
    registry.loss(
        cmpm::NAME,
        "Cross-Modal Projection Matching: KL from the raw-on-normalised projections to the identity distribution",
        cmpm::Factory,
    );
    registry.loss(
        mtp::NAME,
        "masked token prediction through IRRA's cross-modal decoder and MLM head (owns them)",
        mtp::Factory,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gadms_plugin::tch::nn::VarStore;
    use gadms_plugin::tch::Device;
    use gadms_plugin::{Component, PluginError, Registration};

    use super::*;
    use crate::testing::Fixture;

    fn registrations() -> Vec<Registration> {
        let mut registry = Registry::new();
        register(&mut registry).expect("registration succeeds");
        registry.into_entries()
    }

    #[test]
    fn registers_the_five_losses() {
        let names: Vec<_> = registrations()
            .iter()
            .map(|r| {
                assert!(
                    matches!(r.component, Component::Loss(_)),
                    "`{}` is not a loss",
                    r.name
                );
                r.name.clone()
            })
            .collect();
        assert_eq!(names, ["sdm", "itc", "id", "cmpm", "mtp"]);
    }

    /// A typo in a spec must fail with the key's name, for every loss.
    #[test]
    fn every_loss_rejects_an_unknown_option_by_name() {
        let fx = Fixture::load();
        for r in registrations() {
            let Component::Loss(factory) = &r.component else {
                unreachable!()
            };
            let vs = VarStore::new(Device::Cpu);
            match factory.build(&vs.root(), &fx.ctx, "no_such_option = 1") {
                Err(PluginError::Options { component, message }) => {
                    assert_eq!(component, r.name);
                    assert!(
                        message.contains("no_such_option"),
                        "`{}`: message lacks the key: {message}",
                        r.name
                    );
                }
                Err(e) => panic!("`{}`: expected an options error, got {e}", r.name),
                Ok(_) => panic!("`{}`: accepted an unknown option", r.name),
            }
        }
    }

    /// Built together as the runner builds them, the losses own exactly the reference's
    /// non-backbone parameters: same names, same shapes, nothing missing, nothing extra.
    #[test]
    fn losses_own_exactly_the_reference_head_parameters() {
        let fx = Fixture::load();
        let vs = VarStore::new(Device::Cpu);
        for r in registrations() {
            let Component::Loss(factory) = &r.component else {
                unreachable!()
            };
            factory.build(&vs.root(), &fx.ctx, &fx.options(&r.name)).unwrap();
        }
        let ours: BTreeMap<_, _> = vs.variables().into_iter().map(|(k, v)| (k, v.size())).collect();
        let reference: BTreeMap<_, _> = fx
            .params
            .iter()
            .filter(|(k, _)| !k.starts_with(testing::BACKBONE_PREFIX))
            .map(|(k, v)| (k.clone(), v.size()))
            .collect();
        assert_eq!(ours, reference);
    }
}
