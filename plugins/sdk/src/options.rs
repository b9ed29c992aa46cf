use serde::de::DeserializeOwned;

use crate::PluginError;

/// Deserialises a component's options from the TOML text the runner hands over.
///
/// Option structs should use `#[serde(deny_unknown_fields, default)]` so that a typo in a
/// spec is an error naming the key rather than a silently ignored setting.
pub fn parse_options<T: DeserializeOwned>(component: &str, text: &str) -> Result<T, PluginError> {
    toml::from_str(text).map_err(|e| PluginError::Options {
        component: component.to_string(),
        message: e.message().to_string(),
    })
}
