//! Matrices (codes, outputs, labels) as files, in the format the extension names: `.npy` or
//! `.csv`. Commands check an output's name with [`MatrixFormat::of`] before any work.

use std::path::Path;

use crate::data::{Matrix, csv, npy};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixFormat {
    Npy,
    Csv,
}

impl MatrixFormat {
    /// The format of `path` from its extension; any other is an error naming the file.
    pub fn of(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => Ok(MatrixFormat::Npy),
            Some("csv") => Ok(MatrixFormat::Csv),
            _ => Err(Error::bad_file(path, "output must end in .npy or .csv")),
        }
    }
}

/// Writes `m` (CSV columns named `prefix0`, `prefix1`, ..., then `label` when `labels` are
/// given; NPY holds the values alone).
pub fn write(path: &Path, m: &Matrix, prefix: &str, labels: Option<&[u32]>) -> Result<()> {
    match MatrixFormat::of(path)? {
        MatrixFormat::Npy => npy::write(path, m),
        MatrixFormat::Csv => csv::write(path, m, prefix, labels),
    }
}

/// Writes class labels as one column.
pub fn write_labels(path: &Path, labels: &[u32]) -> Result<()> {
    match MatrixFormat::of(path)? {
        MatrixFormat::Npy => npy::write_labels(path, labels),
        MatrixFormat::Csv => {
            let m = Matrix::new(labels.len(), 1, labels.iter().map(|&v| v as f32).collect())?;
            csv::write(path, &m, "label", None)
        }
    }
}

/// Reads a matrix written by [`write`]; a CSV's `label` column is left out.
pub fn read(path: &Path) -> Result<Matrix> {
    Ok(match MatrixFormat::of(path)? {
        MatrixFormat::Npy => npy::read(path, None)?.x,
        MatrixFormat::Csv => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let first = text.lines().next().unwrap_or("");
            let has_label = first.split(',').any(|f| f.trim() == "label");
            let opts = csv::CsvOptions {
                header: None,
                label_column: has_label.then(|| "label".to_string()),
            };
            csv::read(path, &opts)?.x
        }
    })
}
