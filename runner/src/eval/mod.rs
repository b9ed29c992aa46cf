//! Retrieval evaluation.

pub mod metrics;
pub mod noise;
pub mod retrieval;
pub mod standalone;
pub mod token_scores;
