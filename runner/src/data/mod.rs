//! Turning dataset records into model inputs.

pub mod convert;
pub mod images;
pub mod loader;
pub mod screen;
pub mod stats;
pub mod tokenizer;
