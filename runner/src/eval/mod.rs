//! Retrieval evaluation.

pub mod metrics;
pub mod retrieval;
