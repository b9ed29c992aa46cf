//! Retrieval evaluation.

pub mod function_words;
pub mod metrics;
pub mod noise;
pub mod retrieval;
pub mod standalone;
pub mod token_scores;
