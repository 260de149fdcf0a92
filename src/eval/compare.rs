//! Autoencoders against PCA at the same code sizes, on the same test set.

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Matrix};
use crate::error::{Error, Result};
use crate::eval::pca::Pca;
use crate::eval::reconstruction_metrics;
use crate::run::Run;

/// Reconstruction error of one method at one code size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// `PCA`, or the run's architecture.
    pub method: String,
    /// The run directory, for autoencoders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub dims: usize,
    pub mse_per_pixel: f64,
    pub sse_per_image: f64,
}

/// PCA fitted on `train` once, at the largest size asked for, and truncated to each of `dims`
/// (its solutions are nested), measured on `test`.
pub fn pca_rows(train: &Matrix, test: &Matrix, dims: &[usize]) -> Result<Vec<ComparisonRow>> {
    let Some(&largest) = dims.iter().max() else {
        return Ok(Vec::new());
    };
    if largest > train.cols {
        return Err(Error::invalid(format!(
            "PCA cannot have {largest} components: the data has {} features",
            train.cols
        )));
    }
    let full = Pca::fit(train, largest)?;
    dims.iter()
        .map(|&k| {
            let pca = full.truncated(k)?;
            let recon = pca.inverse_transform(&pca.transform(test)?)?;
            let m = reconstruction_metrics(test, &recon, None, None);
            Ok(ComparisonRow {
                method: "PCA".into(),
                run: None,
                dims: k,
                mse_per_pixel: m.mse_per_pixel,
                sse_per_image: m.sse_per_image,
            })
        })
        .collect()
}

/// The reconstruction error of a trained run on `test` (already preprocessed for it).
pub fn run_row(run: &Run, test: &Dataset) -> Result<ComparisonRow> {
    let recon = run.model.reconstruct(&test.x)?;
    let m = reconstruction_metrics(&test.x, &recon, None, None);
    Ok(ComparisonRow {
        method: run.model.config().describe(),
        run: Some(run.dir.path.display().to_string()),
        dims: run.model.latent_dim(),
        mse_per_pixel: m.mse_per_pixel,
        sse_per_image: m.sse_per_image,
    })
}
