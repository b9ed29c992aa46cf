use std::path::PathBuf;

/// An error raised inside a plugin. It crosses the plugin boundary as a value (never as an
/// unwinding panic), so it carries only owned data.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The component's options did not deserialise; `message` comes from the TOML parser and
    /// names the offending key.
    #[error("invalid options for `{component}`: {message}")]
    Options { component: String, message: String },
    /// A file the component needs is missing or unreadable.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// Bad input data (a sample, a caption, a split) that the user must fix.
    #[error("{0}")]
    Data(String),
    /// A libtorch call failed (shape, dtype, device).
    #[error("tensor operation failed in {context}: {source}")]
    Tensor {
        context: String,
        #[source]
        source: tch::TchError,
    },
    /// The plugin panicked; the panic was caught inside the plugin.
    #[error("plugin panicked in {during}: {message}")]
    Panic { during: String, message: String },
}

impl PluginError {
    /// Wraps a libtorch error with the name of the operation that raised it.
    pub fn tensor(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> Self {
        let context = context.into();
        move |source| Self::Tensor { context, source }
    }
}
