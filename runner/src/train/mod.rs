//! Training: learning-rate schedule, optimizer, step and the run's stages (set-up, start,
//! epochs, end of epoch), which [`trainer::train`] strings together.

pub mod checkpoint;
mod epoch;
mod epoch_end;
mod fault;
pub mod grad_cache;
pub mod init;
pub mod memory;
pub mod optim;
pub mod precision;
mod resume;
pub mod schedule;
pub mod scores;
pub(crate) mod setup;
pub mod stages;
pub mod step;
pub mod trainer;
