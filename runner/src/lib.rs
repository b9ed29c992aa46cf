//! gadms: a declarative experiment runner for GA-DMS text-based person retrieval.
//!
//! Modules follow the data's way through a run: [`plugin`] (find and load datasets, masking
//! strategies, losses) → [`data`] (tokenizer) → [`model`] (the CLIP encoders) → [`train`]
//! (step, optimizer, schedule) → [`eval`] (retrieval metrics) → [`store`] (run folders) →
//! [`report`] (tables and charts).

pub mod components;
pub mod data;
pub mod digest;
pub mod dist;
pub mod doctor;
pub mod eval;
pub mod experiment;
pub mod model;
pub mod plugin;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod shim;
pub mod slurm;
pub mod spec;
pub mod status;
pub mod store;
pub mod template;
pub mod tensorboard;
pub mod train;
