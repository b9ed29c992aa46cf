//! The datasets' options, as a spec's dataset table (minus `root`, `name`, `split`) or
//! `gadms-run dataset stats --option KEY=VALUE` writes them.

use gadms_plugin::{parse_options, PluginError, Result};
use serde::Deserialize;

/// Options of `cuhk-pedes`, `icfg-pedes` and `rstpreid`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PedesOptions {
    /// Drop samples whose image file is missing instead of failing; the count dropped per
    /// split is printed on stderr. Off: an incomplete download should stop a run.
    pub skip_missing: bool,
}

/// Options of `webperson`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebPersonOptions {
    /// The annotation file, relative to the root. The reference hard-codes its 1 M-image
    /// file `100w.json`; a converted Hugging Face release can use any name.
    pub annotations: String,
    /// Keep only the first `limit` images (in sorted path order), for a subset that loads
    /// quickly; each image gives two samples.
    pub limit: Option<usize>,
    /// As [`PedesOptions::skip_missing`].
    pub skip_missing: bool,
}

impl Default for WebPersonOptions {
    fn default() -> Self {
        Self {
            annotations: "annotations.json".into(),
            limit: None,
            skip_missing: false,
        }
    }
}

impl WebPersonOptions {
    pub fn parse(component: &str, text: &str) -> Result<Self> {
        let options: Self = parse_options(component, text)?;
        if options.limit == Some(0) {
            return Err(PluginError::Options {
                component: component.into(),
                message: "`limit` must be at least 1 (leave it out to load every image)".into(),
            });
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        assert_eq!(
            parse_options::<PedesOptions>("x", "").unwrap(),
            PedesOptions::default()
        );
        assert_eq!(
            WebPersonOptions::parse("x", "").unwrap(),
            WebPersonOptions::default()
        );
    }

    #[test]
    fn options_parse_and_unknown_keys_are_errors_naming_them() {
        let o = WebPersonOptions::parse("w", "annotations = \"100w.json\"\nlimit = 3\nskip_missing = true")
            .unwrap();
        assert_eq!(
            o,
            WebPersonOptions {
                annotations: "100w.json".into(),
                limit: Some(3),
                skip_missing: true
            }
        );
        let err = parse_options::<PedesOptions>("cuhk-pedes", "skip_mising = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("skip_mising") && err.contains("cuhk-pedes"), "{err}");
    }

    #[test]
    fn a_zero_limit_is_an_error() {
        let err = WebPersonOptions::parse("webperson", "limit = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`limit`"), "{err}");
    }
}
