//! Retrieval evaluation.

pub mod function_words;
pub mod metrics;
pub mod noise;
pub mod retrieval;
pub mod selection;
pub mod standalone;
pub mod token_scores;
