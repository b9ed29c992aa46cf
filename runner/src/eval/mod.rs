//! Retrieval evaluation.

pub mod metrics;
pub mod noise;
pub mod retrieval;
pub mod selection;
pub mod standalone;
pub mod token_scores;
