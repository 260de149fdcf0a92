//! Data: loading (IDX, CSV, NPY, the built-in `shapes`), preprocessing, splitting and batching.
//!
//! Everything is held on the host as a dense row-major `f32` matrix, one sample per row, with
//! the sample's natural shape kept beside it so that images can be drawn and reshaped.

pub mod batch;
pub mod columns;
pub mod corrupt;
pub mod csv;
pub mod fetch;
pub mod idx;
pub mod images;
pub mod labelled;
pub mod matrix_file;
pub mod npy;
pub mod paired;
pub mod preprocess;
pub mod series;
pub mod shapes;
pub mod spec;
pub mod table;
pub mod text;

pub use batch::{BatchOrder, train_val_indices, train_val_split};
pub use corrupt::Corruption;
pub use labelled::{LabelChoice, UNLABELLED};
pub use preprocess::{Preprocessor, Scaling};
pub use spec::{DataConfig, DataSource, Split, load, load_with_vocabulary, text_vocabulary};

use crate::error::{Error, Result};

/// A dense row-major matrix of `f32`: `rows` samples of `cols` features.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::invalid(format!(
                "matrix of {rows}x{cols} needs {} values, got {}",
                rows.saturating_mul(cols),
                data.len()
            )));
        }
        Ok(Self { rows, cols, data })
    }

    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }

    /// `(min, max)` over all values.
    pub fn value_range(&self) -> (f32, f32) {
        self.data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// The first `n` rows (all of them if `n` is larger).
    pub fn head(&self, n: usize) -> Matrix {
        let n = n.min(self.rows);
        Matrix {
            rows: n,
            cols: self.cols,
            data: self.data[..n * self.cols].to_vec(),
        }
    }
}

/// Appends `row` and then the one-hot of `class` among `classes` to `out`: a row as a
/// conditional model takes it.
pub fn push_with_one_hot(out: &mut Vec<f32>, row: &[f32], class: usize, classes: usize) {
    out.extend_from_slice(row);
    out.extend((0..classes).map(|c| if c == class { 1.0 } else { 0.0 }));
}

/// What the raw values were before preprocessing, which decides the default scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// Bytes 0..=255 (images): scaled to [0, 1] by default.
    U8,
    /// Arbitrary real numbers: left as they are by default.
    Float,
}

/// Class `class`'s name among `names`, or its number where there are none (or too few).
pub fn class_name(names: Option<&[String]>, class: usize) -> String {
    names
        .and_then(|n| n.get(class).cloned())
        .unwrap_or_else(|| class.to_string())
}

/// A set of samples, optionally labelled.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// One sample per row.
    pub x: Matrix,
    /// Class index per sample, if the source has labels.
    pub labels: Option<Vec<u32>>,
    /// Names of the classes, indexed by label, when known.
    pub class_names: Option<Vec<String>>,
    /// The shape of one sample: `[channels, height, width]` for images, `[features]` otherwise.
    pub sample_shape: Vec<usize>,
    pub value_kind: ValueKind,
    /// Where the data came from, for messages and reports.
    pub origin: String,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.x.rows
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows == 0
    }

    /// Refuses an empty split where a figure is computed from its rows: an error, an accuracy
    /// or a comparison of no rows means nothing. `purpose` completes "no samples to …".
    pub fn require_samples(&self, purpose: &str) -> Result<()> {
        if self.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no samples to {purpose} (is a limit 0?)",
                self.origin
            )));
        }
        Ok(())
    }

    pub fn dim(&self) -> usize {
        self.x.cols
    }

    /// `(height, width, channels)` when samples are images.
    pub fn image_dims(&self) -> Option<(usize, usize, usize)> {
        match self.sample_shape.as_slice() {
            [c, h, w] if *c == 1 || *c == 3 => Some((*h, *w, *c)),
            [h, w] => Some((*h, *w, 1)),
            _ => None,
        }
    }

    /// The samples at `indices` (labels follow).
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            x: self.x.select_rows(indices),
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            class_names: self.class_names.clone(),
            sample_shape: self.sample_shape.clone(),
            value_kind: self.value_kind,
            origin: self.origin.clone(),
        }
    }

    /// The first `n` samples.
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.subset(&(0..n).collect::<Vec<_>>())
    }

    /// Number of classes: from the names if known, else one more than the largest label.
    pub fn num_classes(&self) -> usize {
        if let Some(names) = &self.class_names {
            return names.len();
        }
        // Rows marked unlabelled (for a semi-supervised model) name no class.
        self.labels
            .as_ref()
            .and_then(|l| l.iter().filter(|&&c| c != UNLABELLED).max())
            .map_or(0, |&m| m as usize + 1)
    }

    /// Checks the invariants every loader promises: not empty, finite, labels of the right count.
    pub fn validate(&self) -> Result<()> {
        self.validate_values(false)
    }

    /// [`Self::validate`], with missing values (NaN) allowed where `missing_allowed` (a typed
    /// table's); infinities never are.
    pub fn validate_values(&self, missing_allowed: bool) -> Result<()> {
        if self.is_empty() || self.dim() == 0 {
            return Err(Error::bad_file(&self.origin, "dataset is empty"));
        }
        let bad = |v: &f32| !(v.is_finite() || (missing_allowed && v.is_nan()));
        if let Some(pos) = self.x.data.iter().position(bad) {
            return Err(Error::bad_file(
                &self.origin,
                format!(
                    "sample {} feature {} is not a finite number",
                    pos / self.dim(),
                    pos % self.dim()
                ),
            ));
        }
        if let Some(labels) = &self.labels
            && labels.len() != self.len()
        {
            return Err(Error::bad_file(
                &self.origin,
                format!("{} labels for {} samples", labels.len(), self.len()),
            ));
        }
        Ok(())
    }
}
