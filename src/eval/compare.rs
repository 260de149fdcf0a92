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
    test.require_samples("compare on")?;
    let recon = run
        .model
        .reconstruct_given(&test.x, test.labels.as_deref())?;
    let m = reconstruction_metrics(&test.x, &recon, None, None);
    Ok(ComparisonRow {
        method: run.model.config().describe(),
        run: Some(run.dir.path.display().to_string()),
        dims: run.model.latent_dim(),
        mse_per_pixel: m.mse_per_pixel,
        sse_per_image: m.sse_per_image,
    })
}

/// PCA beside trained runs on one test set.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub rows: Vec<ComparisonRow>,
    pub test_origin: String,
    pub test_samples: usize,
    pub features: usize,
    pub train_samples: usize,
    /// Runs whose data scaling differs from the first run's (their errors are in their own
    /// units).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differently_scaled: Vec<String>,
}

/// Reconstruction error of PCA at each of `dims` (and at each run's code size) and of each
/// run, on `data`'s test split. PCA is fitted on the training split, scaled as the first run
/// scales its data (or as `data.scale` says without runs), so the errors share units.
pub fn compare(runs: &[Run], data: &crate::data::DataConfig, dims: &[usize]) -> Result<Comparison> {
    use crate::data::{Preprocessor, Split};
    let train = crate::data::load(data, Split::Train)?;
    let preprocessor = runs.first().map_or_else(
        || Preprocessor::fit(data.scale, &train),
        |r| r.preprocessor.clone(),
    );
    let train = preprocessor.transform(&train)?;
    let test = preprocessor.transform(&crate::data::load(data, Split::Test)?)?;
    train.require_samples("fit PCA on")?;
    test.require_samples("compare on")?;
    let mut dims = dims.to_vec();
    dims.extend(runs.iter().map(|r| r.model.latent_dim()));
    dims.sort_unstable();
    dims.dedup();
    if dims.contains(&0) {
        return Err(Error::invalid("--dims: code sizes must be at least 1"));
    }
    let mut rows = pca_rows(&train.x, &test.x, &dims)?;
    let mut differently_scaled = Vec::new();
    for run in runs {
        if run.preprocessor.scaling != preprocessor.scaling {
            differently_scaled.push(run.dir.path.display().to_string());
        }
        rows.push(run_row(run, &run.load_data(Some(data), Split::Test)?)?);
    }
    Ok(Comparison {
        rows,
        test_origin: test.origin.clone(),
        test_samples: test.len(),
        features: test.dim(),
        train_samples: train.len(),
        differently_scaled,
    })
}
