//! Training: learning-rate schedule, optimizer, step and loop.

pub mod schedule;
