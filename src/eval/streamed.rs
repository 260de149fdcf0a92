//! A run applied to a table a record batch at a time — codes, reconstructions or anomaly
//! scores written to Parquet as they are computed, with chosen input columns carried through —
//! so that inputs and outputs larger than memory pass through bounded memory.

use std::path::Path;
use std::sync::Arc;

use crate::data::table::feed::{self, Rows, TableData};
use crate::data::table::scan::{self, RowFilter};
use crate::data::table::write::{OutputColumn, ParquetOutput};
use crate::data::table::{Table, TableFormat};
use crate::data::{DataConfig, Matrix, Split};
use crate::error::{Error, Result};
use crate::eval::anomaly::AnomalyDetector;
use crate::io::OutputSet;
use crate::run::Run;

/// What is written for each input row.
pub enum Output<'a> {
    /// The code (column `z`).
    Codes,
    /// The reconstruction (column `x`), in the raw data's scale when `raw`.
    Reconstructions { raw: bool },
    /// The anomaly score (`score`) and whether it passes the detector's threshold
    /// (`anomaly`, 0 or 1).
    Scores(&'a AnomalyDetector),
}

/// Whether `path` names a Parquet output.
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TableFormat::Parquet.extensions().contains(&e))
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
        let spec = match split {
            Split::Test => cfg.test_source.as_deref().unwrap_or(&cfg.source),
            Split::Train => &cfg.source,
        };
        Error::invalid(format!(
            "{spec}: only a table source (parquet:, arrow:, or csv: with --stream) is read in batches"
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

/// Applies `run` to every row of the test split of the table `cfg` names (see
/// [`each_batch`]), writing `out` (Parquet) batch by batch; the file appears complete or not
/// at all. Returns the rows written.
pub fn write(
    run: &Run,
    cfg: &DataConfig,
    kept: &[String],
    output: Output,
    out: &Path,
) -> Result<usize> {
    let mut outputs = OutputSet::default();
    let mut written = 0;
    outputs.write(out, |staged| {
        let mut file = ParquetOutput::create(staged);
        each_batch(run, cfg, Split::Test, kept, |rows| {
            let labels = rows.labels.as_deref();
            let condition = labels.filter(|_| run.model.classes() > 0);
            match &output {
                Output::Codes => {
                    let z = run.model.encode_given(&rows.x, condition)?;
                    let columns = [OutputColumn {
                        name: "z",
                        values: &z,
                    }];
                    file.write(rows.kept.as_ref(), &columns, labels)
                }
                Output::Reconstructions { raw } => {
                    let mut x = run.model.reconstruct_given(&rows.x, condition)?;
                    if *raw {
                        run.preprocessor.invert(&mut x)?;
                    }
                    let columns = [OutputColumn {
                        name: "x",
                        values: &x,
                    }];
                    file.write(rows.kept.as_ref(), &columns, labels)
                }
                Output::Scores(detector) => {
                    let scores = detector.decision_function(run, &rows.x, condition)?;
                    let flagged = detector.label(&scores);
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
            }
        })?;
        written = file.finish()?;
        Ok(())
    })?;
    outputs.commit()?;
    Ok(written)
}
