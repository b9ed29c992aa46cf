//! The dataset's options, as a spec's `[dataset.options]` table writes them.

use gadms_plugin::{parse_options, PluginError, Result};
use serde::Deserialize;

use crate::noise::{WrongColour, WrongPlacement};
use crate::NAME;

/// Everything that shapes the generated benchmark. The same options give byte-identical
/// splits, so a spec fully describes its data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Seeds identities, views, captions and noise (each from its own derived stream).
    pub seed: u64,
    /// Identities of the training split; their pids are `0..train_ids`.
    pub train_ids: usize,
    /// Identities of the validation split (pids after the training ones); 0 = no split.
    pub val_ids: usize,
    /// Identities of the test split (pids after the validation ones).
    pub test_ids: usize,
    /// Views (pose, background, lighting) rendered per identity.
    pub images_per_id: usize,
    /// Captions written per image.
    pub captions_per_image: usize,
    /// Fraction of training captions that receive injected noise phrases.
    pub noise_rate: f64,
    /// Of the injected phrases, the fraction that state a wrong attribute in place of the
    /// true one the caption would have stated (a hallucination); the others are irrelevant
    /// web text inserted beside the true ones. GA-DMS targets both kinds.
    pub wrong_attribute_share: f64,
    /// Which wrong value a wrong attribute states: `"any"` other value of its slot,
    /// or the same item in a colour seen nowhere on the person (`"absent"`) or on another of
    /// its parts (`"elsewhere"`), to tell apart what an image refutes from what only the
    /// binding of colours to parts refutes.
    pub wrong_colour: WrongColour,
    /// Whether a wrong attribute takes the place of a true one the caption would have stated
    /// (`"replace"`, a hallucination the caption makes instead of the truth) or comes beside
    /// the caption's true facts about a slot it leaves unstated (`"add"`, so that masking
    /// exactly the noise gives back the clean caption).
    pub wrong_placement: WrongPlacement,
    /// Noise sentences drawn for each noisy caption (fewer where an added wrong attribute
    /// finds no unstated slot left); unset: one, or two with probability 0.25.
    pub noise_sentences: Option<usize>,
    /// Inject noise into validation and test captions too (off: evaluation queries are clean,
    /// as in the benchmarks whose annotations were checked by hand).
    pub eval_noise: bool,
    /// Image height in pixels.
    pub height: u32,
    /// Image width in pixels.
    pub width: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 0,
            train_ids: 200,
            val_ids: 0,
            test_ids: 50,
            images_per_id: 4,
            captions_per_image: 2,
            noise_rate: 0.3,
            wrong_attribute_share: 0.5,
            wrong_colour: WrongColour::Any,
            wrong_placement: WrongPlacement::Replace,
            noise_sentences: None,
            eval_noise: false,
            height: 96,
            width: 32,
        }
    }
}

/// Below this the figure's limbs are thinner than a pixel and identities blur together.
const MIN_HEIGHT: u32 = 48;
const MIN_WIDTH: u32 = 16;

impl Options {
    /// Parses and checks the TOML options text.
    pub fn parse(text: &str) -> Result<Self> {
        let options: Self = parse_options(NAME, text)?;
        options.validate()?;
        Ok(options)
    }

    fn validate(&self) -> Result<()> {
        let invalid = |message: String| {
            Err(PluginError::Options {
                component: NAME.into(),
                message,
            })
        };
        if self.images_per_id == 0 {
            return invalid("`images_per_id` must be at least 1".into());
        }
        if self.captions_per_image == 0 {
            return invalid("`captions_per_image` must be at least 1".into());
        }
        for (key, value) in [
            ("noise_rate", self.noise_rate),
            ("wrong_attribute_share", self.wrong_attribute_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return invalid(format!("`{key}` must lie in [0, 1], got {value}"));
            }
        }
        if self.noise_sentences == Some(0) {
            return invalid("`noise_sentences` must be at least 1 (leave it out for one or two)".into());
        }
        if self.height < MIN_HEIGHT || self.width < MIN_WIDTH {
            return invalid(format!(
                "images must be at least {MIN_HEIGHT}×{MIN_WIDTH} (`height` × `width`), got {}×{}",
                self.height, self.width
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = Options::parse("seed = 1\nnoise_ratio = 0.2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("noise_ratio") && err.contains(NAME), "{err}");
    }

    #[test]
    fn wrong_colour_takes_its_three_names_and_names_itself_on_others() {
        for (text, wrong) in [
            ("wrong_colour = \"any\"", WrongColour::Any),
            ("wrong_colour = \"absent\"", WrongColour::Absent),
            ("wrong_colour = \"elsewhere\"", WrongColour::Elsewhere),
        ] {
            assert_eq!(Options::parse(text).unwrap().wrong_colour, wrong);
        }
        let err = Options::parse("wrong_colour = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nowhere") && err.contains("absent"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_errors_naming_the_key() {
        for (text, key) in [
            ("noise_rate = 1.5", "noise_rate"),
            ("wrong_attribute_share = -0.1", "wrong_attribute_share"),
            ("images_per_id = 0", "images_per_id"),
            ("captions_per_image = 0", "captions_per_image"),
            ("noise_sentences = 0", "noise_sentences"),
            ("height = 8", "height"),
        ] {
            let err = Options::parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
