//! Principal component analysis, in scikit-learn's shape: fit, transform, inverse_transform,
//! components, mean and explained variance. The baseline every autoencoder is compared with.

use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::error::{Error, Result};

/// Rows per block when accumulating the covariance, so memory stays O(d²) for any n.
const BLOCK_ROWS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Per-feature mean of the training data.
    pub mean: Vec<f64>,
    /// `components[k]` is the k-th principal direction (unit length), largest variance first.
    pub components: Vec<Vec<f64>>,
    /// Variance of the training data along each component (divided by n - 1, as scikit-learn).
    pub explained_variance: Vec<f64>,
    /// Each component's share of the total variance.
    pub explained_variance_ratio: Vec<f64>,
}

impl Pca {
    /// Fits `k` components to the rows of `x` through the eigendecomposition of the covariance,
    /// which costs O(n d²) and O(d²) memory whatever the number of samples.
    pub fn fit(x: &Matrix, k: usize) -> Result<Self> {
        Self::fit_centered(x, k, true)
    }

    /// Truncated SVD of `x` itself, not centred: latent semantic analysis (scikit-learn's
    /// `TruncatedSVD`), whose components are the top right singular vectors. `mean` is zero,
    /// and the "variances" are the mean squared projections.
    pub fn fit_uncentered(x: &Matrix, k: usize) -> Result<Self> {
        Self::fit_centered(x, k, false)
    }

    fn fit_centered(x: &Matrix, k: usize, center: bool) -> Result<Self> {
        let (n, d) = (x.rows, x.cols);
        if n < 2 || k == 0 || k > d {
            return Err(Error::invalid(format!(
                "PCA needs at least 2 samples and 1 <= components <= features; got {n} samples, {d} features, {k} components"
            )));
        }
        let (mean, cov) = moments(x, center);
        let total: f64 = (0..d).map(|j| cov[(j, j)]).sum();
        let eig = cov
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::invalid(format!("PCA eigendecomposition failed: {e:?}")))?;
        let (u, s) = (eig.U(), eig.S().column_vector());
        // Eigenvalues come in increasing order; take the largest k.
        let mut components = Vec::with_capacity(k);
        let mut explained_variance = Vec::with_capacity(k);
        for c in (d - k..d).rev() {
            let mut v: Vec<f64> = (0..d).map(|i| u[(i, c)]).collect();
            // Fix the sign so results do not depend on the solver: largest entry positive.
            let big = v
                .iter()
                .cloned()
                .fold(0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            components.push(v);
            explained_variance.push(s[c].max(0.0));
        }
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        Ok(Self {
            mean,
            components,
            explained_variance,
            explained_variance_ratio,
        })
    }

    pub fn n_components(&self) -> usize {
        self.components.len()
    }

    /// The first `k` components only: PCA's solutions are nested, so one fit at the largest
    /// size serves every smaller one.
    pub fn truncated(&self, k: usize) -> Result<Self> {
        if k == 0 || k > self.n_components() {
            return Err(Error::invalid(format!(
                "cannot keep {k} of {} PCA components",
                self.n_components()
            )));
        }
        Ok(Self {
            mean: self.mean.clone(),
            components: self.components[..k].to_vec(),
            explained_variance: self.explained_variance[..k].to_vec(),
            explained_variance_ratio: self.explained_variance_ratio[..k].to_vec(),
        })
    }

    /// Writes the fitted PCA as JSON (atomically), like a model's config beside its weights.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        crate::io::write_json(path, self)
    }

    pub fn load(path: &std::path::Path) -> Result<Self> {
        let pca: Self = crate::io::read_json(path)?;
        let d = pca.mean.len();
        let k = pca.components.len();
        if k == 0
            || pca.components.iter().any(|c| c.len() != d)
            || pca.explained_variance.len() != k
            || pca.explained_variance_ratio.len() != k
        {
            return Err(Error::BadFile {
                path: path.to_path_buf(),
                msg: "inconsistent PCA: components, mean and variances disagree in size".into(),
            });
        }
        Ok(pca)
    }

    fn check(&self, m: &Matrix, want: usize, what: &str) -> Result<()> {
        if m.cols != want {
            return Err(Error::mismatch(format!(
                "PCA expects {what} of {want} values, got {}",
                m.cols
            )));
        }
        Ok(())
    }

    /// Coordinates of the rows of `x` along the components.
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        self.check(x, self.mean.len(), "inputs")?;
        let k = self.n_components();
        let mut out = Vec::with_capacity(x.rows * k);
        for i in 0..x.rows {
            let row = x.row(i);
            for c in &self.components {
                let dot: f64 = row
                    .iter()
                    .zip(&self.mean)
                    .zip(c)
                    .map(|((v, m), w)| (*v as f64 - m) * w)
                    .sum();
                out.push(dot as f32);
            }
        }
        Matrix::new(x.rows, k, out)
    }

    /// Points in input space for the coordinates `z`.
    pub fn inverse_transform(&self, z: &Matrix) -> Result<Matrix> {
        self.check(z, self.n_components(), "coordinates")?;
        let d = self.mean.len();
        let mut out = Vec::with_capacity(z.rows * d);
        for i in 0..z.rows {
            let mut row = self.mean.clone();
            for (c, &a) in self.components.iter().zip(z.row(i)) {
                for (r, w) in row.iter_mut().zip(c) {
                    *r += a as f64 * w;
                }
            }
            out.extend(row.iter().map(|v| *v as f32));
        }
        Matrix::new(z.rows, d, out)
    }
}

/// The rows' mean and their covariance about it (`center`) or about the origin, in f64, with
/// the unbiased 1/(n − 1); the products are taken in blocks of rows so memory stays
/// O(block × features). Needs at least 2 rows.
pub fn moments(x: &Matrix, center: bool) -> (Vec<f64>, Mat<f64>) {
    let (n, d) = (x.rows, x.cols);
    let mut mean = vec![0f64; d];
    if center {
        for i in 0..n {
            for (m, v) in mean.iter_mut().zip(x.row(i)) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
    }
    let mut cov = Mat::<f64>::zeros(d, d);
    for start in (0..n).step_by(BLOCK_ROWS) {
        let rows = BLOCK_ROWS.min(n - start);
        let block = Mat::<f64>::from_fn(rows, d, |i, j| x.row(start + i)[j] as f64 - mean[j]);
        cov += block.transpose() * &block;
    }
    cov *= faer::Scale(1.0 / (n - 1) as f64);
    (mean, cov)
}
