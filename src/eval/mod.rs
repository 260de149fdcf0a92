//! Evaluation of trained runs.

pub mod metrics;

pub use metrics::{ClassMetrics, ReconMetrics, reconstruction_metrics};

use crate::data::Dataset;
use crate::error::Result;
use crate::run::Run;

/// Reconstruction metrics of `run` on `data` (already preprocessed, e.g. by [`Run::load_data`]).
pub fn evaluate(run: &Run, data: &Dataset) -> Result<ReconMetrics> {
    let recon = run.model.reconstruct(&data.x)?;
    Ok(reconstruction_metrics(
        &data.x,
        &recon,
        data.labels.as_deref(),
        data.class_names.as_deref(),
    ))
}
