//! Training: the loop with its seam for variants' extra steps ([`trainer`]), batches split
//! over the cores ([`shares`]), optimisers, schedules, progress and the resumable state.
//! Orchestration (data, run directory) is in [`crate::fit`].

pub mod batches;
pub mod config;
pub mod finetune;
pub mod optim;
pub mod progress;
pub mod ranks;
pub mod schedule;
pub mod shares;
pub mod state;
pub mod streamed;
pub mod trainer;

pub use config::{OptimizerKind, RankSum, Schedule, TrainConfig};
pub use state::{EpochMetrics, Summary, TrainState};
