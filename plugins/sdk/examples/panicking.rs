//! A deliberately broken plugin, loaded only by the runner's tests (`tests/plugins.rs`): its
//! masking strategy `panicking-scorer` panics in `scoring()` and its loss `panicking-loss`
//! in `uses_mtp_view()`, the configuration getters the SDK reads once when it creates a
//! component. A run using either must fail naming the plugin, the component and the panic.
//!
//! Built as a `cdylib` example it lands in `target/<profile>/examples/`, which plugin
//! discovery skips, so no user ever finds it on the default search path.

use gadms_plugin::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use gadms_plugin::masking::{
    Draws, MaskedCaption, MaskingContext, MaskingFactory, MaskingStrategy, ScoreInputs, ScoreOutput,
    ScoringRequest,
};
use gadms_plugin::tch::{self, Kind};
use gadms_plugin::{PluginError, Registry, Result};

gadms_plugin::declare_plugin!(register);

fn register(registry: &mut Registry) -> Result<()> {
    registry.masking(
        "panicking-scorer",
        "test plugin: keeps captions as they are, panics when asked whether it scores",
        ScorerFactory,
    );
    registry.loss(
        "panicking-loss",
        "test plugin: squared distance of the pair, panics when asked about the MTP view",
        LossMaker,
    );
    Ok(())
}

struct ScorerFactory;

impl MaskingFactory for ScorerFactory {
    fn create(&self, _: &MaskingContext, _: &str) -> Result<Box<dyn MaskingStrategy>> {
        Ok(Box::new(PanickingScorer))
    }
}

struct PanickingScorer;

impl MaskingStrategy for PanickingScorer {
    fn scoring(&self) -> Option<ScoringRequest> {
        panic!("the scorer lost its tail layers")
    }

    fn initial_score(&self) -> f32 {
        0.0
    }

    fn score(&self, _: &ScoreInputs<'_>) -> Result<ScoreOutput> {
        Err(PluginError::Data(
            "panicking-scorer cannot score: its scoring() panics".into(),
        ))
    }

    fn mask(&self, tokens: &[i64], _: &[f32], _: &mut dyn Draws) -> Result<MaskedCaption> {
        Ok(MaskedCaption {
            alignment: tokens.to_vec(),
            mtp: None,
        })
    }
}

struct LossMaker;

impl LossFactory for LossMaker {
    fn build(&self, _: &tch::nn::Path, _: &LossContext, _: &str) -> Result<Box<dyn Loss>> {
        Ok(Box::new(PanickingLoss))
    }
}

struct PanickingLoss;

impl Loss for PanickingLoss {
    fn uses_mtp_view(&self) -> bool {
        panic!("the loss forgot which views it needs")
    }

    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        let loss = (inputs.image_cls - inputs.text_eos).square().mean(Kind::Float);
        Ok(LossOutput::loss_only(loss))
    }
}
