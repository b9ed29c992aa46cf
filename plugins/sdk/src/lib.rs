//! The gadms plugin SDK.
//!
//! A plugin is a `cdylib` that depends on this crate, implements one or more of the three
//! component kinds — [`DatasetFactory`], [`MaskingFactory`], [`LossFactory`] — and names its
//! registration function with [`declare_plugin!`]. The runner finds the library, checks the
//! C-ABI version and the build fingerprint (see [`abi`]) and only then calls into Rust code.
//!
//! Everything that crosses the boundary is a type of this crate or of `tch`, which is why the
//! fingerprint pins the compiler, the SDK and the `tch`/libtorch versions. Options arrive as TOML
//! text that each component deserialises itself ([`parse_options`]).

pub mod abi;
pub mod dataset;
mod error;
mod guard;
pub mod loss;
pub mod masking;
pub mod nn;
mod options;
mod registry;
pub mod rng;

pub use dataset::{Dataset, DatasetFactory};
pub use error::PluginError;
pub use loss::{Loss, LossFactory};
pub use masking::{MaskingFactory, MaskingStrategy};
pub use options::parse_options;
pub use registry::{Component, ComponentKind, Registration, Registry};

/// Re-exported so that plugins use exactly the `tch` the runner was built with.
pub use tch;

/// Result type of every fallible SDK and plugin call.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;
