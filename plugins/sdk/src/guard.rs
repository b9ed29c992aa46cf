//! Panic containment. Each `cdylib` carries its own copy of `std`, so a panic must never
//! unwind out of plugin code into the runner. Every component registered through
//! [`crate::Registry`] is wrapped in a guard whose methods run the plugin's code under
//! `catch_unwind`; because the wrapper is instantiated inside the plugin, the catching
//! happens with the plugin's own `std`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::dataset::{Dataset, DatasetFactory, SplitData, SplitKind};
use crate::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use crate::masking::{
    Draws, MaskedCaption, MaskingContext, MaskingFactory, MaskingStrategy, ScoreInputs, ScoreOutput,
    ScoringRequest,
};
use crate::{PluginError, Result};

/// Runs `f`, turning a panic into [`PluginError::Panic`].
pub fn guard<T>(during: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        Err(PluginError::Panic {
            during: during.to_string(),
            message,
        })
    })
}

pub(crate) struct Guarded<T>(pub T);

impl<F: DatasetFactory> DatasetFactory for Guarded<F> {
    fn open(&self, root: Option<&std::path::Path>, options: &str) -> Result<Box<dyn Dataset>> {
        guard("DatasetFactory::open", || {
            let dataset = self.0.open(root, options)?;
            Ok(Box::new(Guarded(dataset)) as Box<dyn Dataset>)
        })
    }
}

impl Dataset for Guarded<Box<dyn Dataset>> {
    fn load(&self, split: SplitKind) -> Result<SplitData> {
        guard("Dataset::load", || self.0.load(split))
    }
}

impl<F: MaskingFactory> MaskingFactory for Guarded<F> {
    fn create(&self, ctx: &MaskingContext, options: &str) -> Result<Box<dyn MaskingStrategy>> {
        guard("MaskingFactory::create", || {
            let strategy = self.0.create(ctx, options)?;
            Ok(Box::new(Guarded(strategy)) as Box<dyn MaskingStrategy>)
        })
    }
}

impl MaskingStrategy for Guarded<Box<dyn MaskingStrategy>> {
    fn scoring(&self) -> Option<ScoringRequest> {
        // A plain getter; a panic here would be a plugin bug of the grossest kind, but it
        // is still contained.
        catch_unwind(AssertUnwindSafe(|| self.0.scoring())).unwrap_or(None)
    }
    fn initial_score(&self) -> f32 {
        catch_unwind(AssertUnwindSafe(|| self.0.initial_score())).unwrap_or(0.0)
    }
    fn score(&self, inputs: &ScoreInputs<'_>) -> Result<ScoreOutput> {
        guard("MaskingStrategy::score", || self.0.score(inputs))
    }
    fn mask(&self, tokens: &[i64], scores: &[f32], draws: &mut dyn Draws) -> Result<MaskedCaption> {
        guard("MaskingStrategy::mask", || self.0.mask(tokens, scores, draws))
    }
}

impl<F: LossFactory> LossFactory for Guarded<F> {
    fn build(&self, path: &tch::nn::Path, ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>> {
        guard("LossFactory::build", || {
            let loss = self.0.build(path, ctx, options)?;
            Ok(Box::new(Guarded(loss)) as Box<dyn Loss>)
        })
    }
}

impl Loss for Guarded<Box<dyn Loss>> {
    fn uses_mtp_view(&self) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.0.uses_mtp_view())).unwrap_or(false)
    }
    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        guard("Loss::forward", || self.0.forward(inputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let err = guard::<()>("test", || panic!("boom {}", 7)).unwrap_err();
        assert!(
            matches!(&err, PluginError::Panic { message, .. } if message == "boom 7"),
            "{err}"
        );
    }
}
