//! A typed table's rows judged column by column: each row's score split into its columns'
//! shares (a categorical column's negative log-likelihood, a boolean's cross-entropy, a numeric
//! column's squared error on its scale — times the column's weight; they sum to the score),
//! the columns that contribute most, and reconstructions decoded back to the table's types.

use arrow::array::RecordBatch;
use serde::Serialize;

use crate::data::Matrix;
use crate::data::columns::{Missing, TableColumns};
use crate::error::{Error, Result};
use crate::run::Run;

/// One column's part in a row's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnShare {
    pub column: String,
    /// The row's value, as text (empty where missing).
    pub value: String,
    /// The reconstruction's value: a number in the column's units, a category's most likely
    /// level, a boolean.
    pub reconstructed: String,
    /// The column's weighted loss: its part of the score.
    pub share: f64,
    /// A numeric column's squared error in its own units (`(value − reconstructed)²`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub squared_error: Option<f64>,
}

/// A row's score and the columns that contribute most to it, largest share first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub score: f64,
    pub columns: Vec<ColumnShare>,
}

/// The run's typed columns, or a refusal naming the run.
pub fn columns_of(run: &Run) -> Result<&TableColumns> {
    run.preprocessor.columns.as_ref().ok_or_else(|| {
        Error::invalid(format!(
            "{}: scores split by column (--explain, the columns figure, a table's rows) need a run trained on a typed table; this run's data is {}",
            run.dir.path.display(),
            run.config.data.source
        ))
    })
}

/// One split of a typed run's data (or of the table `cfg` names) in the model's scale, with
/// the rows' carried columns; values of categories never seen in training are read as the
/// "(other)" level and reported in `notes`.
pub fn load_split(
    run: &Run,
    cfg: &crate::data::DataConfig,
    split: crate::data::Split,
    notes: &mut Vec<String>,
) -> Result<(crate::data::Dataset, RecordBatch)> {
    let (raw, carried) = load_split_raw(run, cfg, split, notes)?;
    Ok((run.prepare(raw)?, carried))
}

/// [`load_split`] in the table's own units (before the run's scaling).
pub fn load_split_raw(
    run: &Run,
    cfg: &crate::data::DataConfig,
    split: crate::data::Split,
    notes: &mut Vec<String>,
) -> Result<(crate::data::Dataset, RecordBatch)> {
    crate::data::columns::load_carrying(cfg, split, columns_of(run)?, notes)
}

/// Each row of `x` (the model's scale, as [`Run::load_data`] gives it) explained by its `k`
/// largest columns' shares of the score (`k` 0: every column, in the table's order).
pub fn explain(run: &Run, x: &Matrix, k: usize) -> Result<Vec<Explanation>> {
    let recon = run.model.reconstruct(x)?;
    explain_reconstructed(run, x, &recon, k)
}

/// A typed run's scores of the rows `x` (classes `labels`) by `kind` (as
/// [`crate::eval::anomaly::scores`] gives them, `seed` for a sampled score) and, with
/// `explain` `Some(k)`, each row explained by its `k` largest columns — from one
/// reconstruction.
pub fn scores_explained(
    run: &Run,
    (kind, seed): (crate::eval::anomaly::ScoreKind, u64),
    x: &Matrix,
    labels: Option<&[u32]>,
    explain: Option<usize>,
) -> Result<(Vec<f64>, Option<Vec<Explanation>>)> {
    use crate::eval::anomaly::{ScoreKind, scores, scores_of_run_reconstructions};
    let Some(k) = explain else {
        return Ok((scores(run, x, labels, kind, seed)?, None));
    };
    let recon = run.model.reconstruct_given(x, labels)?;
    let explained = explain_reconstructed(run, x, &recon, k)?;
    let scores = match kind {
        ScoreKind::Loss => explained.iter().map(|e| e.score).collect(),
        ScoreKind::SquaredError => scores_of_run_reconstructions(run, kind, &recon, x),
        ScoreKind::NegativeElbo => scores(run, x, labels, kind, seed)?,
    };
    Ok((scores, Some(explained)))
}

/// [`explain`] with the reconstructions of `x` (the model's outputs) already made.
pub fn explain_reconstructed(
    run: &Run,
    x: &Matrix,
    recon: &Matrix,
    k: usize,
) -> Result<Vec<Explanation>> {
    let columns = columns_of(run)?;
    let output = run
        .model
        .config()
        .columns()
        .expect("a typed run's model has its columns");
    let raw = run.to_raw(x.clone())?;
    let raw_recon = run.to_raw(recon.clone())?;
    let numeric: Vec<Option<usize>> = columns
        .columns
        .iter()
        .zip(columns.starts())
        .map(|(c, start)| (c.kind == crate::data::columns::ColumnKind::Numeric).then_some(start))
        .collect();
    Ok((0..x.rows)
        .map(|i| {
            let shares = output.column_shares(recon.row(i), x.row(i));
            let values = columns.row_text(raw.row(i));
            let rebuilt = columns.row_text(raw_recon.row(i));
            let mut all: Vec<ColumnShare> = columns
                .columns
                .iter()
                .enumerate()
                .map(|(j, c)| ColumnShare {
                    column: c.name.clone(),
                    value: values[j].clone(),
                    reconstructed: rebuilt[j].clone(),
                    share: shares[j],
                    squared_error: numeric[j]
                        .map(|at| (raw.row(i)[at] as f64 - raw_recon.row(i)[at] as f64).powi(2))
                        .filter(|e| !e.is_nan()),
                })
                .collect();
            if k > 0 {
                all.sort_by(|a, b| b.share.total_cmp(&a.share));
                all.truncate(k);
            }
            Explanation {
                score: shares.iter().sum(),
                columns: all,
            }
        })
        .collect())
}

/// How well a typed run reconstructs one column of a data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnQuality {
    pub column: String,
    pub kind: &'static str,
    /// Rows where the column is missing (left out of the figures below).
    pub missing: usize,
    /// A categorical or boolean column: the share of rows whose most likely reconstruction is
    /// the value given.
    pub accuracy: Option<f64>,
    /// A numeric column: the root mean squared error in the column's own units.
    pub rmse: Option<f64>,
    /// The column's mean share of a row's score.
    pub mean_share: f64,
}

/// Each column's reconstruction quality on the rows `x` (the model's scale): what the report
/// shows of a typed run.
pub fn column_quality(run: &Run, x: &Matrix) -> Result<Vec<ColumnQuality>> {
    let columns = columns_of(run)?;
    let explained = explain(run, x, 0)?;
    Ok(columns
        .columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let given: Vec<&ColumnShare> = explained
                .iter()
                .map(|e| &e.columns[j])
                .filter(|s| !s.value.is_empty())
                .collect();
            let n = given.len().max(1) as f64;
            // A numeric column's explanations carry its squared errors in its own units.
            let rmse = (c.kind == crate::data::columns::ColumnKind::Numeric).then(|| {
                let sse: f64 = given.iter().filter_map(|s| s.squared_error).sum();
                (sse / n).sqrt()
            });
            let accuracy = rmse
                .is_none()
                .then(|| given.iter().filter(|s| s.value == s.reconstructed).count() as f64 / n);
            ColumnQuality {
                column: c.name.clone(),
                kind: c.kind_name(),
                missing: x.rows - given.len(),
                accuracy,
                rmse,
                mean_share: explained.iter().map(|e| e.columns[j].share).sum::<f64>()
                    / x.rows.max(1) as f64,
            }
        })
        .collect())
}

/// The reconstructions of the rows `raw` (the table's own units, NaN where missing) as the
/// table's columns and types; with `--missing impute`, the given values kept as they are and
/// only the missing filled (the count filled per column beside).
pub fn reconstructed_table(run: &Run, raw: &Matrix) -> Result<(RecordBatch, Vec<(String, usize)>)> {
    let columns = columns_of(run)?;
    let x = run.to_model_scale("the rows", raw.clone())?;
    let recon = run.to_raw(run.model.reconstruct(&x)?)?;
    let (rows, filled) = match columns.missing {
        Missing::Impute => columns.impute(raw, &recon),
        Missing::Mask => (recon, Vec::new()),
    };
    Ok((columns.decode(&rows)?, filled))
}

/// Writes per-row scores with their explanations and the rows' carried columns: `.csv` has
/// `index,score,anomaly`, the carried columns, then `column_i,value_i,reconstructed_i,share_i`
/// for each explaining column; `.json` is the summary and every row.
pub fn write_explained(
    path: &std::path::Path,
    summary: &crate::eval::anomaly::ScoreSummary,
    flagged: &[bool],
    explanations: &[Explanation],
    carried: &RecordBatch,
) -> Result<()> {
    use std::io::Write;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut outputs = crate::io::OutputSet::default();
    outputs.write(path, |staged| {
        let io = |e| Error::io(staged, e);
        let file = std::fs::File::create(staged).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        match ext {
            "json" => {
                #[derive(Serialize)]
                struct Row<'a> {
                    score: f64,
                    anomaly: bool,
                    explain: &'a [ColumnShare],
                }
                #[derive(Serialize)]
                struct Out<'a> {
                    #[serde(flatten)]
                    summary: &'a crate::eval::anomaly::ScoreSummary,
                    rows: Vec<Row<'a>>,
                }
                let rows = explanations
                    .iter()
                    .zip(flagged)
                    .map(|(e, &anomaly)| Row {
                        score: e.score,
                        anomaly,
                        explain: &e.columns,
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut w, &Out { summary, rows })
                    .map_err(|e| Error::Serialize(e.to_string()))?;
            }
            "csv" => {
                let k = explanations.first().map_or(0, |e| e.columns.len());
                let carried_text = carried_strings(carried)?;
                let mut header = vec!["index".to_string(), "score".into(), "anomaly".into()];
                header.extend(
                    carried
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| crate::data::csv::field(f.name())),
                );
                for i in 1..=k {
                    for part in ["column", "value", "reconstructed", "share"] {
                        header.push(format!("{part}_{i}"));
                    }
                }
                writeln!(w, "{}", header.join(",")).map_err(io)?;
                for (r, (e, flag)) in explanations.iter().zip(flagged).enumerate() {
                    let mut line = vec![
                        r.to_string(),
                        e.score.to_string(),
                        u8::from(*flag).to_string(),
                    ];
                    line.extend(carried_text.iter().map(|c| crate::data::csv::field(&c[r])));
                    for c in &e.columns {
                        line.push(crate::data::csv::field(&c.column));
                        line.push(crate::data::csv::field(&c.value));
                        line.push(crate::data::csv::field(&c.reconstructed));
                        line.push(c.share.to_string());
                    }
                    writeln!(w, "{}", line.join(",")).map_err(io)?;
                }
            }
            _ => {
                return Err(Error::bad_file(
                    path,
                    "explained scores are written as .csv or .json",
                ));
            }
        }
        w.flush().map_err(io)
    })?;
    outputs.commit()
}

/// Each carried column's values as text, column by column.
fn carried_strings(batch: &RecordBatch) -> Result<Vec<Vec<String>>> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default();
    batch
        .columns()
        .iter()
        .map(|a| {
            let f = ArrayFormatter::try_new(a.as_ref(), &options)
                .map_err(|e| Error::invalid(e.to_string()))?;
            Ok((0..a.len()).map(|i| f.value(i).to_string()).collect())
        })
        .collect()
}
