//! Retrieval evaluation.

pub mod metrics;
