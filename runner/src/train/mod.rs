//! Training: learning-rate schedule, optimizer, step and loop.

pub mod checkpoint;
mod fault;
pub mod memory;
pub mod optim;
pub mod precision;
pub mod schedule;
pub mod scores;
pub mod step;
pub mod trainer;
