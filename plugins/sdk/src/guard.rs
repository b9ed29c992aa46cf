//! Panic containment. Each `cdylib` carries its own copy of `std`, so a panic must never
//! unwind out of plugin code into the runner. Every component registered through
//! [`crate::Registry`] is wrapped in a guard whose methods run the plugin's code under
//! `catch_unwind`; because the wrapper is instantiated inside the plugin, the catching
//! happens with the plugin's own `std`.
//!
//! Methods that return a plain value have no channel for an error, so they are the
//! component's fixed configuration (`MaskingStrategy::scoring`, `initial_score`,
//! `noise_label_scores`, `Loss::uses_mtp_view`, `Dataset::source_files`, `labels_noise`): the guarded factory reads each once, when
//! it creates the component, and a panic there fails the creation with
//! [`PluginError::Panic`] naming the getter. A broken getter thus stops the run instead of
//! being replaced by a default that would train without, say, scoring.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use crate::dataset::{Dataset, DatasetFactory, SplitData, SplitKind};
use crate::loss::{Loss, LossContext, LossFactory, LossInputs, LossOutput};
use crate::masking::{
    Draws, MaskedCaption, MaskingContext, MaskingFactory, MaskingStrategy, NoiseLabelScores, ScoreInputs,
    ScoreOutput, ScoringRequest,
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

/// Reads one configuration getter under [`guard`].
fn read<T>(during: &str, getter: impl FnOnce() -> T) -> Result<T> {
    guard(during, || Ok(getter()))
}

/// A registered factory; what it creates comes back guarded too.
pub(crate) struct Guarded<T>(pub T);

impl<F: DatasetFactory> DatasetFactory for Guarded<F> {
    fn open(&self, root: Option<&std::path::Path>, options: &str) -> Result<Box<dyn Dataset>> {
        guard("DatasetFactory::open", || {
            let inner = self.0.open(root, options)?;
            let source_files = read("Dataset::source_files", || inner.source_files())?;
            let labels_noise = read("Dataset::labels_noise", || inner.labels_noise())?;
            Ok(Box::new(GuardedDataset {
                inner,
                source_files,
                labels_noise,
            }) as Box<dyn Dataset>)
        })
    }
}

/// An opened dataset with its configuration, read at opening.
struct GuardedDataset {
    inner: Box<dyn Dataset>,
    source_files: Vec<PathBuf>,
    labels_noise: bool,
}

impl Dataset for GuardedDataset {
    fn load(&self, split: SplitKind) -> Result<SplitData> {
        guard("Dataset::load", || self.inner.load(split))
    }
    fn source_files(&self) -> Vec<PathBuf> {
        self.source_files.clone()
    }
    fn labels_noise(&self) -> bool {
        self.labels_noise
    }
}

impl<F: MaskingFactory> MaskingFactory for Guarded<F> {
    fn create(&self, ctx: &MaskingContext, options: &str) -> Result<Box<dyn MaskingStrategy>> {
        guard("MaskingFactory::create", || {
            let inner = self.0.create(ctx, options)?;
            let scoring = read("MaskingStrategy::scoring", || inner.scoring())?;
            let initial_score = read("MaskingStrategy::initial_score", || inner.initial_score())?;
            let noise_label_scores = read("MaskingStrategy::noise_label_scores", || {
                inner.noise_label_scores()
            })?;
            Ok(Box::new(GuardedStrategy {
                inner,
                scoring,
                initial_score,
                noise_label_scores,
            }) as Box<dyn MaskingStrategy>)
        })
    }
}

/// A created strategy with its configuration, read at creation.
struct GuardedStrategy {
    inner: Box<dyn MaskingStrategy>,
    scoring: Option<ScoringRequest>,
    initial_score: f32,
    noise_label_scores: Option<NoiseLabelScores>,
}

impl MaskingStrategy for GuardedStrategy {
    fn scoring(&self) -> Option<ScoringRequest> {
        self.scoring
    }
    fn initial_score(&self) -> f32 {
        self.initial_score
    }
    fn noise_label_scores(&self) -> Option<NoiseLabelScores> {
        self.noise_label_scores.clone()
    }
    fn score(&self, inputs: &ScoreInputs<'_>) -> Result<ScoreOutput> {
        guard("MaskingStrategy::score", || self.inner.score(inputs))
    }
    fn mask(&self, tokens: &[i64], scores: &[f32], draws: &mut dyn Draws) -> Result<MaskedCaption> {
        guard("MaskingStrategy::mask", || self.inner.mask(tokens, scores, draws))
    }
}

impl<F: LossFactory> LossFactory for Guarded<F> {
    fn build(&self, path: &tch::nn::Path, ctx: &LossContext, options: &str) -> Result<Box<dyn Loss>> {
        guard("LossFactory::build", || {
            let inner = self.0.build(path, ctx, options)?;
            let uses_mtp_view = read("Loss::uses_mtp_view", || inner.uses_mtp_view())?;
            Ok(Box::new(GuardedLoss { inner, uses_mtp_view }) as Box<dyn Loss>)
        })
    }
}

/// A built loss with its configuration, read at building.
struct GuardedLoss {
    inner: Box<dyn Loss>,
    uses_mtp_view: bool,
}

impl Loss for GuardedLoss {
    fn uses_mtp_view(&self) -> bool {
        self.uses_mtp_view
    }
    fn forward(&self, inputs: &LossInputs<'_>) -> Result<LossOutput> {
        guard("Loss::forward", || self.inner.forward(inputs))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::masking::Vocab;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let err = guard::<()>("test", || panic!("boom {}", 7)).unwrap_err();
        assert!(
            matches!(&err, PluginError::Panic { message, .. } if message == "boom 7"),
            "{err}"
        );
    }

    /// A component of every kind whose getter named `panics_in` panics; `reads` counts the
    /// getter calls that reach it.
    #[derive(Clone, Default)]
    struct Broken {
        panics_in: &'static str,
        reads: Arc<AtomicUsize>,
    }

    impl Broken {
        fn get<T>(&self, getter: &str, value: T) -> T {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.panics_in == getter {
                panic!("broken {getter}");
            }
            value
        }
    }

    fn unused<T>() -> Result<T> {
        Err(PluginError::Data("not called by these tests".into()))
    }

    impl MaskingStrategy for Broken {
        fn scoring(&self) -> Option<ScoringRequest> {
            self.get(
                "MaskingStrategy::scoring",
                Some(ScoringRequest { tail_layers: 2 }),
            )
        }
        fn initial_score(&self) -> f32 {
            self.get("MaskingStrategy::initial_score", 0.85)
        }
        fn noise_label_scores(&self) -> Option<NoiseLabelScores> {
            self.get("MaskingStrategy::noise_label_scores", Some(oracle()))
        }
        fn score(&self, _: &ScoreInputs<'_>) -> Result<ScoreOutput> {
            unused()
        }
        fn mask(&self, _: &[i64], _: &[f32], _: &mut dyn Draws) -> Result<MaskedCaption> {
            unused()
        }
    }

    impl Loss for Broken {
        fn uses_mtp_view(&self) -> bool {
            self.get("Loss::uses_mtp_view", true)
        }
        fn forward(&self, _: &LossInputs<'_>) -> Result<LossOutput> {
            unused()
        }
    }

    impl Dataset for Broken {
        fn load(&self, _: SplitKind) -> Result<SplitData> {
            unused()
        }
        fn source_files(&self) -> Vec<PathBuf> {
            self.get("Dataset::source_files", vec![PathBuf::from("labels.json")])
        }
        fn labels_noise(&self) -> bool {
            self.get("Dataset::labels_noise", true)
        }
    }

    fn oracle() -> NoiseLabelScores {
        NoiseLabelScores {
            option: "scorer = \"oracle\"".into(),
        }
    }

    impl MaskingFactory for Broken {
        fn create(&self, _: &MaskingContext, _: &str) -> Result<Box<dyn MaskingStrategy>> {
            Ok(Box::new(self.clone()))
        }
    }

    impl LossFactory for Broken {
        fn build(&self, _: &tch::nn::Path, _: &LossContext, _: &str) -> Result<Box<dyn Loss>> {
            Ok(Box::new(self.clone()))
        }
    }

    impl DatasetFactory for Broken {
        fn open(&self, _: Option<&std::path::Path>, _: &str) -> Result<Box<dyn Dataset>> {
            Ok(Box::new(self.clone()))
        }
    }

    const VOCAB: Vocab = Vocab {
        size: 10,
        mask_id: 7,
        sot_id: 8,
        eot_id: 9,
    };

    fn create(f: &Broken) -> Result<Box<dyn MaskingStrategy>> {
        let ctx = MaskingContext {
            vocab: VOCAB,
            context_length: 4,
        };
        Guarded(f.clone()).create(&ctx, "")
    }

    fn build(f: &Broken) -> Result<Box<dyn Loss>> {
        let store = tch::nn::VarStore::new(tch::Device::Cpu);
        let ctx = LossContext {
            embed_dim: 4,
            vocab: VOCAB,
            num_classes: 1,
            caption_tokens: None,
        };
        Guarded(f.clone()).build(&store.root(), &ctx, "")
    }

    fn open(f: &Broken) -> Result<Box<dyn Dataset>> {
        Guarded(f.clone()).open(None, "")
    }

    /// The error of creating a component whose getter `getter` panics.
    fn creation_error(getter: &'static str) -> PluginError {
        let f = Broken {
            panics_in: getter,
            ..Broken::default()
        };
        let failed = match getter.split("::").next().unwrap() {
            "MaskingStrategy" => create(&f).err(),
            "Loss" => build(&f).err(),
            _ => open(&f).err(),
        };
        failed.unwrap_or_else(|| panic!("a panic in {getter} was not reported"))
    }

    #[test]
    fn a_panicking_getter_fails_the_creation_naming_the_getter() {
        for getter in [
            "MaskingStrategy::scoring",
            "MaskingStrategy::initial_score",
            "MaskingStrategy::noise_label_scores",
            "Loss::uses_mtp_view",
            "Dataset::source_files",
            "Dataset::labels_noise",
        ] {
            let err = creation_error(getter);
            assert!(
                matches!(&err, PluginError::Panic { during, message }
                    if during == getter && *message == format!("broken {getter}")),
                "{getter}: {err}"
            );
        }
    }

    #[test]
    fn getters_are_read_once_at_creation_and_answered_from_the_wrapper() {
        let f = Broken::default();
        let strategy = create(&f).unwrap();
        let loss = build(&f).unwrap();
        let dataset = open(&f).unwrap();
        assert_eq!(f.reads.load(Ordering::SeqCst), 6);
        for _ in 0..3 {
            assert_eq!(strategy.scoring(), Some(ScoringRequest { tail_layers: 2 }));
            assert_eq!(strategy.initial_score(), 0.85);
            assert_eq!(strategy.noise_label_scores(), Some(oracle()));
            assert!(loss.uses_mtp_view());
            assert_eq!(dataset.source_files(), [PathBuf::from("labels.json")]);
            assert!(dataset.labels_noise());
        }
        assert_eq!(f.reads.load(Ordering::SeqCst), 6, "no getter ran again");
    }
}
