//! gadms: a declarative experiment runner for GA-DMS text-based person retrieval.
//!
//! Modules follow the data's way through a run: [`plugin`] (find and load datasets, masking
//! strategies, losses) → [`data`] (tokenizer) → [`model`] (the CLIP encoders) → [`train`]
//! (step, optimizer, schedule) → [`eval`] (retrieval metrics).

pub mod data;
pub mod eval;
pub mod model;
pub mod plugin;
pub mod train;
