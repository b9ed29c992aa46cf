//! The git checkout gadms was built from.

/// The commit's full hash; empty when the sources were not a git checkout.
pub const COMMIT: &str = env!("GADMS_COMMIT");

/// Whether tracked files differed from [`COMMIT`] when this was built.
pub const DIRTY: bool = !env!("GADMS_DIRTY").is_empty();
