//! A run applied to a table a record batch at a time — codes, reconstructions or anomaly
//! scores written as they are computed (Parquet with chosen input columns carried through,
//! or `.npy`/`.csv` in the layout of whole-matrix outputs) — so that inputs and outputs
//! larger than memory pass through bounded memory.

use std::path::Path;
use std::sync::Arc;

use crate::data::matrix_file::{LabelsWriter, MatrixFormat, MatrixWriter};
use crate::data::table::feed::{self, Rows, TableData};
use crate::data::table::scan::{self, RowFilter};
use crate::data::table::write::{OutputColumn, ParquetOutput};
use crate::data::table::{Table, TableFormat};
use crate::data::{DataConfig, Matrix, Split};
use crate::error::{Error, Result};
use crate::eval::anomaly::{AnomalyDetector, ScoreSummary, ScoresFormat, ScoresWriter, truth};
use crate::io::OutputSet;
use crate::run::Run;

/// What is written for each input row.
pub enum Output<'a> {
    /// The code (column `z`).
    Codes,
    /// A codebook model's index per position (column `z`).
    CodebookIndices,
    /// The reconstruction (column `x`), in the raw data's scale when `raw`.
    Reconstructions { raw: bool },
    /// The anomaly score (`score`) and whether it passes the detector's threshold
    /// (`anomaly`, 0 or 1), judged against the truth the labels give under the
    /// `anomaly_classes`/`normal_classes` rule of [`truth`].
    Scores {
        detector: &'a AnomalyDetector,
        anomaly_classes: Option<&'a [u32]>,
        normal_classes: Option<&'a [u32]>,
    },
}

/// Where the outputs go.
pub struct Destination<'a> {
    /// `.parquet`, `.npy` or `.csv` (`.json` too for scores): the format of whole outputs.
    /// None for scores only summarised.
    pub out: Option<&'a Path>,
    /// The rows' labels in a file of their own (`.npy` or `.csv`), when they have labels.
    pub labels_out: Option<&'a Path>,
    /// Input columns copied beside each output row (Parquet outputs only).
    pub kept: &'a [String],
}

/// What [`write`] wrote.
pub struct Written {
    pub rows: usize,
    /// For scores: the counts and, where the labels give the truth, ROC AUC and average
    /// precision. Memory holds one score per row for it (8 bytes), never the rows.
    pub summary: Option<ScoreSummary>,
}

/// Whether `path` names a Parquet output.
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TableFormat::Parquet.extensions().contains(&e))
}

/// Whether a run's outputs on `split` of `cfg`'s data are computed a batch at a time: when
/// the data is a table read in batches, or the output is Parquet (then the data must be one).
/// Columns to keep are refused for data that is not a table.
pub fn applies(
    cfg: &DataConfig,
    split: Split,
    out: Option<&Path>,
    kept: &[String],
) -> Result<bool> {
    if cfg.is_typed() {
        // A typed table is read whole, its rows encoded by the run's columns.
        if out.is_some_and(is_parquet) || !kept.is_empty() {
            return Err(Error::invalid(
                "a typed table's codes are written as .npy or .csv (a table is read whole, and its carried columns go with scores and reconstructions): use another --out, without --keep-columns",
            ));
        }
        return Ok(false);
    }
    let streamed = out.is_some_and(is_parquet) || cfg.streamed_split(split)?.is_some();
    if !streamed && !kept.is_empty() {
        return Err(Error::invalid(
            "--keep-columns: only the rows of a table source (parquet:, arrow:, or a source read \
             with --stream) carry input columns",
        ));
    }
    Ok(streamed)
}

/// Every row of one split of the table `cfg` names, in file order, preprocessed as `run`
/// was trained, handed to `each` a record batch at a time with its kept columns: the
/// training split keeps the run's row filter (`--train-classes`, `--limit`), the test split
/// reads the test table (or the table itself) up to `--test-limit`.
pub fn each_batch(
    run: &Run,
    cfg: &DataConfig,
    split: Split,
    kept: &[String],
    mut each: impl FnMut(Rows) -> Result<()>,
) -> Result<()> {
    let source = cfg.streamed_split(split)?.ok_or_else(|| {
        Error::invalid(format!(
            "{}: only a table source (parquet:, arrow:, or a source read with --stream) is \
             read in batches",
            cfg.split_source(split)
        ))
    })?;
    let table = Table::open(&source.path, source.format, &cfg.column_choice(kept))?;
    let (filter, classes) = match split {
        Split::Train => (cfg.row_filter(), cfg.train_classes.clone()),
        Split::Test => (
            RowFilter {
                classes: None,
                limit: cfg.test_limit,
            },
            None,
        ),
    };
    let index = scan::scan(&table, &filter)?.index;
    run.check_width(&source.path.display().to_string(), index.width)?;
    let data = Arc::new(TableData {
        table,
        index,
        classes,
    });
    let mut binarizer = crate::run::eval_binarizer();
    for rows in feed::sequential(data) {
        let mut rows = rows?;
        run.prepare_rows(&mut rows.x, &mut binarizer)?;
        each(rows)?;
    }
    Ok(())
}

/// The file an output's rows go to, in the format its name says.
enum Sink {
    /// No file: scores only summarised.
    Nowhere,
    Parquet(Box<ParquetOutput>),
    Matrix(MatrixWriter),
    Scores(ScoresWriter),
}

impl Sink {
    /// Checks `out` against what `output` writes before any work: an unknown extension, or
    /// kept columns that only Parquet carries, are refused naming the file or the flag.
    fn create(out: &Path, staged: &Path, output: &Output, kept: &[String]) -> Result<Self> {
        if is_parquet(out) {
            return Ok(Sink::Parquet(Box::new(ParquetOutput::create(staged))));
        }
        if !kept.is_empty() {
            return Err(Error::bad_file(
                out,
                "--keep-columns: only .parquet outputs carry input columns",
            ));
        }
        Ok(match output {
            Output::Scores { .. } => {
                ScoresFormat::of(out)?;
                Sink::Scores(ScoresWriter::create(staged)?)
            }
            Output::Codes | Output::CodebookIndices => {
                MatrixFormat::of(out)?;
                Sink::Matrix(MatrixWriter::create(staged, "z")?)
            }
            Output::Reconstructions { .. } => {
                MatrixFormat::of(out)?;
                Sink::Matrix(MatrixWriter::create(staged, "x")?)
            }
        })
    }

    /// Appends one batch's outputs.
    fn append(&mut self, rows: &Rows, batch: Batch) -> Result<()> {
        let labels = rows.labels.as_deref();
        match (self, batch) {
            (Sink::Parquet(file), Batch::Column { name, values }) => {
                file.write(rows.kept.as_ref(), &[OutputColumn { name, values }], labels)
            }
            (Sink::Parquet(file), Batch::Scores { scores, flagged }) => {
                let n = scores.len();
                let score = Matrix::new(n, 1, scores.iter().map(|&s| s as f32).collect())?;
                let anomaly = Matrix::new(
                    n,
                    1,
                    flagged.iter().map(|&f| f32::from(u8::from(f))).collect(),
                )?;
                let columns = [
                    OutputColumn {
                        name: "score",
                        values: &score,
                    },
                    OutputColumn {
                        name: "anomaly",
                        values: &anomaly,
                    },
                ];
                file.write(rows.kept.as_ref(), &columns, labels)
            }
            (Sink::Nowhere, _) => Ok(()),
            (Sink::Matrix(file), Batch::Column { values, .. }) => file.append(values, labels),
            (Sink::Scores(file), Batch::Scores { scores, flagged }) => file.append(scores, flagged),
            // Sink::create picks the sink from the output, so these never meet.
            (Sink::Matrix(_), Batch::Scores { .. }) | (Sink::Scores(_), Batch::Column { .. }) => {
                Err(Error::invalid(
                    "an output written to a file of another kind",
                ))
            }
        }
    }
}

/// One batch's outputs.
enum Batch<'a> {
    Column {
        name: &'static str,
        values: &'a Matrix,
    },
    Scores {
        scores: &'a [f64],
        flagged: &'a [bool],
    },
}

/// Applies `run` to every row of `split` of the table `cfg` names (see [`each_batch`]),
/// writing `dest` batch by batch; the files appear complete or not at all.
pub fn write(
    run: &Run,
    cfg: &DataConfig,
    split: Split,
    output: Output,
    dest: &Destination,
) -> Result<Written> {
    let mut outputs = OutputSet::default();
    if let Some(path) = dest.labels_out {
        MatrixFormat::of(path)?;
    }
    let mut sink = match dest.out {
        Some(out) => {
            let staged = outputs.stage(out)?;
            Sink::create(out, &staged, &output, dest.kept)?
        }
        None => Sink::Nowhere,
    };
    let mut labels_file = match dest.labels_out {
        Some(path) => Some(LabelsWriter::create(&outputs.stage(path)?)?),
        None => None,
    };
    let mut rows_written = 0;
    // Scores are kept (8 bytes a row) for the summary: ROC AUC ranks all of them.
    let (mut scores, mut flags, mut all_labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut labelled = true;
    each_batch(run, cfg, split, dest.kept, |rows| {
        let labels = rows.labels.as_deref();
        let condition = labels.filter(|_| run.model.classes() > 0);
        match &output {
            Output::Codes | Output::CodebookIndices => {
                let z = match output {
                    Output::CodebookIndices => run.codebook_indices(&rows.x)?,
                    _ => run.model.encode_given(&rows.x, condition)?,
                };
                sink.append(
                    &rows,
                    Batch::Column {
                        name: "z",
                        values: &z,
                    },
                )?;
            }
            Output::Reconstructions { raw } => {
                let mut x = run.model.reconstruct_given(&rows.x, condition)?;
                if *raw {
                    run.preprocessor.invert(&mut x)?;
                }
                sink.append(
                    &rows,
                    Batch::Column {
                        name: "x",
                        values: &x,
                    },
                )?;
            }
            Output::Scores { detector, .. } => {
                let batch_scores = detector.decision_function(run, &rows.x, condition)?;
                let flagged = detector.label(&batch_scores);
                sink.append(
                    &rows,
                    Batch::Scores {
                        scores: &batch_scores,
                        flagged: &flagged,
                    },
                )?;
                scores.extend_from_slice(&batch_scores);
                flags.extend_from_slice(&flagged);
                match labels {
                    Some(l) => all_labels.extend_from_slice(l),
                    None => labelled = false,
                }
            }
        }
        if let (Some(file), Some(l)) = (labels_file.as_mut(), labels) {
            file.append(l)?;
        }
        rows_written += rows.x.rows;
        Ok(())
    })?;
    let summary = match &output {
        Output::Scores {
            detector,
            anomaly_classes,
            normal_classes,
        } => {
            let labels = (labelled && !scores.is_empty()).then_some(all_labels.as_slice());
            let truth = truth(labels, *anomaly_classes, *normal_classes, run);
            Some(ScoreSummary::new(
                detector,
                &scores,
                &flags,
                truth.as_deref(),
            ))
        }
        _ => None,
    };
    match sink {
        Sink::Nowhere => {}
        Sink::Parquet(file) => {
            file.finish()?;
        }
        Sink::Matrix(file) => {
            file.finish()?;
        }
        Sink::Scores(file) => {
            let summary = summary.as_ref().expect("scores have a summary");
            file.finish(summary, &scores, &flags)?
        }
    }
    if let Some(file) = labels_file {
        file.finish()?;
    }
    outputs.commit()?;
    Ok(Written {
        rows: rows_written,
        summary,
    })
}
