//! gadms: a declarative experiment runner for GA-DMS text-based person retrieval.
//!
//! Modules follow the data's way through a run: [`spec`] (parse and expand an experiment)
//! → [`plugin`] (find and load datasets, masking strategies, losses) → [`model`] (the CLIP
//! encoders) → [`train`] (step, optimizer, schedule) → [`eval`] (retrieval metrics).

pub mod plugin;
