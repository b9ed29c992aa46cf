//! The options of the three strategies, with the reference's defaults, and how each becomes
//! a [`Strategy`].

use gadms_plugin::masking::{MaskingContext, NoiseLabelScores};
use gadms_plugin::Result;
use serde::Deserialize;

use crate::dual::{DualMasking, MtpRule, NoiseCut, SigmoidMap};
use crate::factory::{require, StrategyOptions};
use crate::score::gradient::{GradientMap, GradientScorer};
use crate::score::pooling::MultiScalePooling;
use crate::score::Scorer;
use crate::strategy::Strategy;

/// `none` takes no options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoneOptions {}

impl StrategyOptions for NoneOptions {
    const NAME: &'static str = "none";
    const DESCRIPTION: &'static str = "no masking: the clean caption for alignment, no MTP view";

    fn build(self, ctx: &MaskingContext) -> Result<Strategy> {
        Ok(Strategy {
            scorer: None,
            noise_labels: None,
            // Never read: without a scorer the masking ignores scores.
            initial_score: 0.0,
            masking: DualMasking {
                vocab: ctx.vocab,
                mtp: None,
                noise: None,
                noise_cut: None,
            },
        })
    }
}

/// `random`: IRRA's masked-token prediction (method spec §3.7).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomOptions {
    /// Masking probability of every eligible token.
    rate: f64,
}

impl Default for RandomOptions {
    fn default() -> Self {
        Self { rate: 0.15 }
    }
}

impl StrategyOptions for RandomOptions {
    const NAME: &'static str = "random";
    const DESCRIPTION: &'static str =
        "IRRA: clean alignment text, MTP view with a constant masking rate (15 %)";

    fn build(self, ctx: &MaskingContext) -> Result<Strategy> {
        require::<Self>(is_probability(self.rate), "rate", "in [0, 1]", self.rate)?;
        Ok(Strategy {
            scorer: None,
            noise_labels: None,
            // Never read: without a scorer the masking ignores scores.
            initial_score: 0.0,
            masking: DualMasking {
                vocab: ctx.vocab,
                mtp: Some(MtpRule::Constant(self.rate)),
                noise: None,
                noise_cut: None,
            },
        })
    }
}

/// Which scorer `gadms` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScorerKind {
    /// GASS as the reference codes it (the default).
    Gass,
    /// GASS as the paper writes it.
    GassPaper,
    /// The simpler Grad-ECLIP map.
    GradEclip,
    /// The cosine-similarity baseline of Table 4.
    Css,
    /// Not a scorer: the training data's noise labels (0 on noise, 1 elsewhere), the upper
    /// bound of what masking the noise can win back. Needs a dataset that labels its noise.
    Oracle,
}

impl ScorerKind {
    /// The option value that selects the oracle, as errors name it.
    const ORACLE_OPTION: &'static str = "scorer = \"oracle\"";

    /// The gradient-attention map of a gradient scorer.
    fn gradient_map(self) -> Option<GradientMap> {
        match self {
            Self::Gass => Some(GradientMap::Gass),
            Self::GassPaper => Some(GradientMap::GassPaper),
            Self::GradEclip => Some(GradientMap::GradEclip),
            Self::Css | Self::Oracle => None,
        }
    }
}

/// `gadms`: gradient-attention scores and dual masking (method spec §2–3). Every constant
/// of the reference is an option with the reference's value as default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GadmsOptions {
    scorer: ScorerKind,
    /// Text blocks re-run by the gradient scorers (the last 8).
    layers: usize,
    /// Multi-scale pooling scales of the GASS spatial weight.
    scales: Vec<i64>,
    /// `css`: the text state enters the last `css_layers` blocks.
    css_layers: usize,
    /// Epsilon of the spatial weight's min–max and of the attention modulation.
    eps: f64,
    /// Samples per min–max group (`gass`, `css`); the reference's per-GPU batch.
    group: i64,
    /// The score of a sample never scored.
    initial_score: f32,
    /// Mask noise tokens in the alignment text; `false`: the alignment text is clean.
    noise_mask: bool,
    /// Noise probability `noise_max / (1 + exp(-noise_k ((1 - s) - noise_threshold)))`.
    noise_k: f64,
    noise_threshold: f64,
    noise_max: f64,
    /// Mask exactly the tokens with `1 - s > noise_threshold`, without draws (with `scorer =
    /// "oracle"`: every labelled noise token and nothing else, the perfect noise mask).
    noise_deterministic: bool,
    /// With `noise_deterministic`: remove the cut tokens instead of masking them (see
    /// [`NoiseCut::Drop`]).
    noise_drop: bool,
    /// Informative MTP masking from the scores; `false`: MTP masks every eligible token with
    /// `mtp_random_rate` (IRRA), so a "noise masking only" ablation still trains MTP. To
    /// train without MTP, leave the MTP loss out of the spec: the view is then never encoded.
    mtp_mask: bool,
    /// MTP probability `mtp_max / (1 + exp(-mtp_k (s - mtp_threshold)))`.
    mtp_k: f64,
    mtp_threshold: f64,
    mtp_max: f64,
    mtp_random_rate: f64,
}

impl Default for GadmsOptions {
    fn default() -> Self {
        Self {
            scorer: ScorerKind::Gass,
            layers: 8,
            scales: vec![1, 2],
            css_layers: 2,
            eps: 1e-8,
            group: 128,
            initial_score: 0.85,
            noise_mask: true,
            noise_k: 20.0,
            noise_threshold: 0.9,
            noise_max: 0.2,
            noise_deterministic: false,
            noise_drop: false,
            mtp_mask: true,
            mtp_k: 20.0,
            mtp_threshold: 0.1,
            mtp_max: 0.3,
            mtp_random_rate: 0.15,
        }
    }
}

impl StrategyOptions for GadmsOptions {
    const NAME: &'static str = "gadms";
    const DESCRIPTION: &'static str =
        "GA-DMS: gradient-attention scores; noise tokens masked for alignment, informative ones for MTP";

    fn build(self, ctx: &MaskingContext) -> Result<Strategy> {
        self.validate()?;
        let noise_labels = (self.scorer == ScorerKind::Oracle).then(|| NoiseLabelScores {
            option: ScorerKind::ORACLE_OPTION.into(),
        });
        let noise = SigmoidMap {
            k: self.noise_k,
            threshold: self.noise_threshold,
            max: self.noise_max,
        };
        let informative = SigmoidMap {
            k: self.mtp_k,
            threshold: self.mtp_threshold,
            max: self.mtp_max,
        };
        let mtp = if self.mtp_mask {
            MtpRule::Informative(informative)
        } else {
            MtpRule::Constant(self.mtp_random_rate)
        };
        Ok(Strategy {
            scorer: self.step_scorer(),
            noise_labels,
            initial_score: self.initial_score,
            masking: DualMasking {
                vocab: ctx.vocab,
                mtp: Some(mtp),
                noise: self.noise_mask.then_some(noise),
                noise_cut: self.noise_cut(),
            },
        })
    }
}

impl GadmsOptions {
    /// The scorer the training step runs; `None` for the oracle, whose scores are labels.
    fn step_scorer(&self) -> Option<Scorer> {
        if self.scorer == ScorerKind::Oracle {
            return None;
        }
        Some(match self.scorer.gradient_map() {
            Some(map) => Scorer::Gradient {
                layers: self.layers,
                scorer: GradientScorer {
                    map,
                    pooling: MultiScalePooling::new(self.scales.clone()),
                    eps: self.eps,
                    group: self.group,
                },
            },
            None => Scorer::Css {
                layers: self.css_layers,
                group: self.group,
            },
        })
    }

    /// The deterministic cut the options ask for; `None` for the reference's draw.
    fn noise_cut(&self) -> Option<NoiseCut> {
        match (self.noise_deterministic, self.noise_drop) {
            (false, _) => None,
            (true, false) => Some(NoiseCut::Mask),
            (true, true) => Some(NoiseCut::Drop),
        }
    }

    fn validate(&self) -> Result<()> {
        require::<Self>(
            self.noise_mask || !self.noise_deterministic,
            "noise_deterministic",
            "false when `noise_mask = false` (there is no noise mask to make deterministic)",
            self.noise_deterministic,
        )?;
        require::<Self>(
            self.noise_deterministic || !self.noise_drop,
            "noise_drop",
            "false unless `noise_deterministic = true` (only the deterministic cut can drop tokens)",
            self.noise_drop,
        )?;
        require::<Self>(self.layers >= 1, "layers", "at least 1", self.layers)?;
        require::<Self>(self.css_layers >= 1, "css_layers", "at least 1", self.css_layers)?;
        let scales_ok = !self.scales.is_empty() && self.scales.iter().all(|&s| s >= 1);
        require::<Self>(
            scales_ok,
            "scales",
            "a non-empty list of scales >= 1",
            &self.scales,
        )?;
        require::<Self>(self.group >= 1, "group", "at least 1", self.group)?;
        require::<Self>(
            self.eps.is_finite() && self.eps >= 0.0,
            "eps",
            "finite and >= 0",
            self.eps,
        )?;
        let probabilities = [
            ("initial_score", f64::from(self.initial_score)),
            ("noise_max", self.noise_max),
            ("mtp_max", self.mtp_max),
            ("mtp_random_rate", self.mtp_random_rate),
        ];
        for (key, value) in probabilities {
            require::<Self>(is_probability(value), key, "in [0, 1]", value)?;
        }
        let finite = [
            ("noise_k", self.noise_k),
            ("noise_threshold", self.noise_threshold),
            ("mtp_k", self.mtp_k),
            ("mtp_threshold", self.mtp_threshold),
        ];
        for (key, value) in finite {
            require::<Self>(value.is_finite(), key, "finite", value)?;
        }
        Ok(())
    }
}

fn is_probability(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}
