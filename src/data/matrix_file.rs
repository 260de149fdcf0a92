//! Matrices (codes, outputs, labels) as files, in the format the extension names: `.npy` or
//! `.csv`. Commands check an output's name with [`MatrixFormat::of`] before any work.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use npyz::WriterBuilder;

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

/// A matrix file written a block of rows at a time, so that the codes or outputs of a table
/// larger than memory never sit in memory whole: the format of its name, the layout of
/// [`write`] (CSV's `label` column is there when the blocks carry labels; the width is the
/// first block's), NPY's row count filled in by [`MatrixWriter::finish`].
pub struct MatrixWriter {
    path: PathBuf,
    prefix: String,
    /// Set by the first block.
    cols: Option<usize>,
    format: MatrixFormat,
    open: Option<OpenMatrix>,
    rows: usize,
}

enum OpenMatrix {
    Npy(npyz::NpyWriter<f32, BufWriter<File>>),
    Csv {
        file: BufWriter<File>,
        labelled: bool,
    },
}

impl MatrixWriter {
    /// Starts `path` (a staging file: the caller moves it into place when complete); nothing
    /// is written before the first block.
    pub fn create(path: &Path, prefix: &str) -> Result<Self> {
        Ok(Self {
            format: MatrixFormat::of(path)?,
            path: path.to_path_buf(),
            prefix: prefix.to_string(),
            cols: None,
            open: None,
            rows: 0,
        })
    }

    fn open(&mut self, cols: usize, labelled: bool) -> Result<&mut OpenMatrix> {
        if self.open.is_none() {
            self.cols = Some(cols);
            let file = BufWriter::new(File::create(&self.path).map_err(|e| self.io(e))?);
            self.open = Some(match self.format {
                MatrixFormat::Npy => OpenMatrix::Npy(
                    npyz::WriteOptions::new()
                        .default_dtype()
                        .writer(file)
                        .begin_2d(cols as u64)
                        .map_err(|e| self.io(e))?,
                ),
                MatrixFormat::Csv => {
                    let mut file = file;
                    csv::write_header(&mut file, cols, &self.prefix, labelled)
                        .map_err(|e| self.io(e))?;
                    OpenMatrix::Csv { file, labelled }
                }
            });
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    fn io(&self, e: std::io::Error) -> crate::error::Error {
        Error::io(&self.path, e)
    }

    /// Appends the rows of `m`, each with its label when `labels` are given (CSV only; every
    /// block must then carry them as the first did).
    pub fn append(&mut self, m: &Matrix, labels: Option<&[u32]>) -> Result<()> {
        if let Some(cols) = self.cols.filter(|&c| c != m.cols) {
            return Err(Error::invalid(format!(
                "{}: a block of {} columns after {cols} columns",
                self.path.display(),
                m.cols,
            )));
        }
        let path = self.path.clone();
        match self.open(m.cols, labels.is_some())? {
            OpenMatrix::Npy(w) => w.extend(m.data.iter().copied()),
            OpenMatrix::Csv { labelled, .. } if *labelled != labels.is_some() => {
                return Err(Error::invalid(format!(
                    "{}: a block {} labels after one {}",
                    path.display(),
                    if labels.is_some() { "with" } else { "without" },
                    if *labelled { "with" } else { "without" },
                )));
            }
            OpenMatrix::Csv { file, .. } => csv::write_rows(file, m, labels),
        }
        .map_err(|e| Error::io(&path, e))?;
        self.rows += m.rows;
        Ok(())
    }

    /// Completes the file; returns the rows written. A file without a row is refused (its
    /// width would be unknown), as Parquet outputs refuse it.
    pub fn finish(self) -> Result<usize> {
        let path = self.path;
        let Some(open) = self.open else {
            return Err(Error::bad_file(&path, "no rows to write"));
        };
        match open {
            OpenMatrix::Npy(w) => w.finish(),
            OpenMatrix::Csv { mut file, .. } => file.flush(),
        }
        .map_err(|e| Error::io(&path, e))?;
        Ok(self.rows)
    }
}

/// Class labels written a block at a time, in the layout of [`write_labels`].
pub struct LabelsWriter {
    path: PathBuf,
    open: LabelsOut,
}

enum LabelsOut {
    Npy(npyz::NpyWriter<i64, BufWriter<File>>),
    Csv(BufWriter<File>),
}

impl LabelsWriter {
    /// Starts `path` (a staging file: the caller moves it into place when complete).
    pub fn create(path: &Path) -> Result<Self> {
        let io = |e| Error::io(path, e);
        let format = MatrixFormat::of(path)?;
        let mut file = BufWriter::new(File::create(path).map_err(io)?);
        let open = match format {
            MatrixFormat::Npy => LabelsOut::Npy(
                npyz::WriteOptions::new()
                    .default_dtype()
                    .writer(file)
                    .begin_1d()
                    .map_err(io)?,
            ),
            MatrixFormat::Csv => {
                csv::write_header(&mut file, 1, "label", false).map_err(io)?;
                LabelsOut::Csv(file)
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            open,
        })
    }

    pub fn append(&mut self, labels: &[u32]) -> Result<()> {
        match &mut self.open {
            LabelsOut::Npy(w) => w.extend(labels.iter().map(|&l| i64::from(l))),
            LabelsOut::Csv(file) => labels.iter().try_for_each(|l| writeln!(file, "{l}")),
        }
        .map_err(|e| Error::io(&self.path, e))
    }

    pub fn finish(self) -> Result<()> {
        match self.open {
            LabelsOut::Npy(w) => w.finish(),
            LabelsOut::Csv(mut file) => file.flush(),
        }
        .map_err(|e| Error::io(&self.path, e))
    }
}
