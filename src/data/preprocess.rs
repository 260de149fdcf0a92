//! Per-feature affine preprocessing `x' = (x - offset) * scale`, fitted on training data and
//! saved with the run so that evaluation and encoding see exactly what training saw.

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Matrix, ValueKind};
use crate::error::{Error, Result};

/// How raw values are scaled before they reach the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// `unit` for byte images, `none` for real-valued data.
    #[default]
    Auto,
    /// Divide bytes by 255 (images to [0, 1]).
    Unit,
    /// Per-feature min-max to [0, 1], fitted on the training set.
    Minmax,
    /// Per-feature zero mean and unit variance, fitted on the training set.
    Standardize,
    /// Per-feature median to 0 and interquartile range to 1, fitted on the training set: a
    /// few extreme values (the anomalies themselves) move neither. Needs the data in memory.
    Robust,
    /// Leave values as they are.
    None,
}

impl Scaling {
    /// Resolves `Auto` for the given data.
    pub fn resolve(self, kind: ValueKind) -> Scaling {
        match (self, kind) {
            (Scaling::Auto, ValueKind::U8) => Scaling::Unit,
            (Scaling::Auto, ValueKind::Float) => Scaling::None,
            (s, _) => s,
        }
    }

    /// Whether the scaled values live in [0, 1], which makes a sigmoid output and BCE natural.
    pub fn is_unit_range(self) -> bool {
        matches!(self, Scaling::Unit | Scaling::Minmax)
    }
}

/// A fitted preprocessing step. `offset` and `scale` have one entry (shared) or one per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub scaling: Scaling,
    pub offset: Vec<f32>,
    pub scale: Vec<f32>,
    /// A typed table's columns (kinds, levels, weights), which turn its rows into the
    /// features `offset` and `scale` then scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<crate::data::columns::TableColumns>,
}

impl Preprocessor {
    pub fn identity() -> Self {
        Self {
            scaling: Scaling::None,
            offset: vec![0.0],
            scale: vec![1.0],
            columns: None,
        }
    }

    /// Fits `scaling` on `train`.
    pub fn fit(scaling: Scaling, train: &Dataset) -> Self {
        Self::fit_matrix(scaling.resolve(train.value_kind), &train.x)
    }

    /// Fits an already resolved `scaling` on the rows of `x`.
    pub fn fit_matrix(scaling: Scaling, x: &Matrix) -> Self {
        match scaling {
            Scaling::None | Scaling::Auto => Self::identity(),
            Scaling::Unit => Self {
                scaling,
                offset: vec![0.0],
                scale: vec![1.0 / 255.0],
                columns: None,
            },
            Scaling::Minmax => {
                let mut lo = vec![f32::INFINITY; x.cols];
                let mut hi = vec![f32::NEG_INFINITY; x.cols];
                for i in 0..x.rows {
                    for (j, &v) in x.row(i).iter().enumerate() {
                        lo[j] = lo[j].min(v);
                        hi[j] = hi[j].max(v);
                    }
                }
                Self::minmax(lo, &hi)
            }
            Scaling::Standardize => {
                let n = x.rows as f64;
                let mut mean = vec![0f64; x.cols];
                for i in 0..x.rows {
                    for (j, &v) in x.row(i).iter().enumerate() {
                        mean[j] += v as f64;
                    }
                }
                mean.iter_mut().for_each(|m| *m /= n);
                let mut var = vec![0f64; x.cols];
                for i in 0..x.rows {
                    for (j, &v) in x.row(i).iter().enumerate() {
                        var[j] += (v as f64 - mean[j]).powi(2);
                    }
                }
                Self::standardize(mean, var.iter().map(|v| v / n))
            }
            Scaling::Robust => {
                let mut column = Vec::with_capacity(x.rows);
                let (mut median, mut scale) = (Vec::new(), Vec::new());
                for j in 0..x.cols {
                    column.clear();
                    column.extend((0..x.rows).map(|i| x.row(i)[j] as f64));
                    let q = |p| quantile(&column, p);
                    let iqr = q(0.75) - q(0.25);
                    median.push(q(0.5) as f32);
                    scale.push(if iqr > 1e-12 { (1.0 / iqr) as f32 } else { 1.0 });
                }
                Self {
                    scaling,
                    offset: median,
                    scale,
                    columns: None,
                }
            }
        }
    }

    /// Fits `scaling` on the numeric features of a typed table's rows `x` (each over the
    /// values it has: missing ones are NaN), leaving its 0/1 features (booleans, one-hots) as
    /// they are; `auto` standardises. The columns go with it, replayed with the scaling.
    pub fn fit_typed(
        scaling: Scaling,
        x: &Matrix,
        columns: crate::data::columns::TableColumns,
    ) -> Self {
        let scaling = match scaling {
            Scaling::Auto => Scaling::Standardize,
            s => s,
        };
        let numeric = columns.numeric_features();
        let (mut offset, mut scale) = (vec![0f32; x.cols], vec![1f32; x.cols]);
        let mut values = Vec::with_capacity(x.rows);
        for j in (0..x.cols).filter(|&j| numeric[j]) {
            values.clear();
            values.extend((0..x.rows).map(|i| x.row(i)[j]).filter(|v| !v.is_nan()));
            if values.is_empty() {
                continue;
            }
            let column = Matrix {
                rows: values.len(),
                cols: 1,
                data: values.clone(),
            };
            let fitted = Self::fit_matrix(scaling, &column);
            offset[j] = fitted.offset[0];
            scale[j] = fitted.scale[0];
        }
        Self {
            scaling,
            offset,
            scale,
            columns: Some(columns),
        }
    }

    /// Fits an already resolved `scaling` from statistics gathered in one streaming pass
    /// (a table too large to hold); equal to [`Self::fit_matrix`] on the same rows up to the
    /// rounding of the one-pass variance. Robust scaling needs quantiles, which one pass does
    /// not keep: refused.
    pub fn from_stats(
        scaling: Scaling,
        stats: &crate::data::table::scan::ColumnStats,
    ) -> Result<Self> {
        Ok(match scaling {
            Scaling::None | Scaling::Auto | Scaling::Unit => {
                Self::fit_matrix(scaling, &Matrix::zeros(0, stats.min.len()))
            }
            Scaling::Minmax => Self::minmax(stats.min.clone(), &stats.max),
            Scaling::Standardize => {
                Self::standardize(stats.mean.clone(), stats.variance().into_iter())
            }
            Scaling::Robust => return Err(robust_needs_memory()),
        })
    }

    fn minmax(lo: Vec<f32>, hi: &[f32]) -> Self {
        let scale = lo
            .iter()
            .zip(hi)
            .map(|(l, h)| if h > l { 1.0 / (h - l) } else { 1.0 })
            .collect();
        Self {
            scaling: Scaling::Minmax,
            offset: lo,
            scale,
            columns: None,
        }
    }

    /// From each feature's mean and population variance.
    fn standardize(mean: Vec<f64>, variance: impl Iterator<Item = f64>) -> Self {
        let scale = variance
            .map(|v| {
                let sd = v.sqrt();
                if sd > 1e-12 { (1.0 / sd) as f32 } else { 1.0 }
            })
            .collect();
        Self {
            scaling: Scaling::Standardize,
            offset: mean.into_iter().map(|m| m as f32).collect(),
            scale,
            columns: None,
        }
    }

    /// `(min, max)` of the preprocessed values of data whose raw per-feature extremes are
    /// `lo` and `hi` (the transform is increasing in every feature).
    pub fn range_of(&self, lo: &[f32], hi: &[f32]) -> (f32, f32) {
        let mut range = (f32::INFINITY, f32::NEG_INFINITY);
        for j in 0..lo.len() {
            let (o, s) = (Self::at(&self.offset, j), Self::at(&self.scale, j));
            range.0 = range.0.min((lo[j] - o) * s);
            range.1 = range.1.max((hi[j] - o) * s);
        }
        range
    }

    fn check_width(&self, cols: usize) -> Result<()> {
        for v in [&self.offset, &self.scale] {
            if v.len() != 1 && v.len() != cols {
                return Err(Error::mismatch(format!(
                    "preprocessing was fitted on {} features, data has {cols}",
                    v.len()
                )));
            }
        }
        Ok(())
    }

    fn at(v: &[f32], j: usize) -> f32 {
        if v.len() == 1 { v[0] } else { v[j] }
    }

    /// Applies the transform in place.
    pub fn apply(&self, m: &mut Matrix) -> Result<()> {
        self.check_width(m.cols)?;
        let cols = m.cols;
        for (k, v) in m.data.iter_mut().enumerate() {
            let j = k % cols;
            *v = (*v - Self::at(&self.offset, j)) * Self::at(&self.scale, j);
        }
        Ok(())
    }

    /// Maps model-space values back to the raw data space.
    pub fn invert(&self, m: &mut Matrix) -> Result<()> {
        self.check_width(m.cols)?;
        let cols = m.cols;
        for (k, v) in m.data.iter_mut().enumerate() {
            let j = k % cols;
            *v = *v / Self::at(&self.scale, j) + Self::at(&self.offset, j);
        }
        Ok(())
    }

    /// A copy of `data` with the transform applied.
    pub fn transform(&self, data: &Dataset) -> Result<Dataset> {
        let mut out = data.clone();
        self.apply(&mut out.x)?;
        Ok(out)
    }
}

/// Why robust scaling is refused for a streamed table: one pass keeps means and extremes, not
/// the quartiles.
pub(crate) fn robust_needs_memory() -> Error {
    Error::invalid(
        "--scale robust needs the data in memory (medians and quartiles), and a streamed table is read in one pass: use --scale standardize, or read a CSV or NPY file whole (without --stream)",
    )
}

/// The `q`-quantile of `values` with linear interpolation (NumPy's default, which PyOD uses
/// for its threshold).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}
