//! Turning dataset records into model inputs.

pub mod tokenizer;
