//! Typed tables: columns of different kinds — numbers, booleans, categories — with missing
//! values, turned into the model's rows and back.
//!
//! A column's kind comes from its Arrow type: numbers are numeric, booleans boolean, strings and
//! dictionaries categorical, dates and times carried through to outputs (not features);
//! `--categorical` reads numbers (codes) as categories, `--ignore-columns` carries any column
//! instead of learning it. A string column whose every value differs (an id) is carried too.
//!
//! A row becomes: each numeric column's value (scaled afterwards by the run's
//! [`Preprocessor`](crate::data::Preprocessor), which leaves the other features as they are),
//! each boolean's 0 or 1, each categorical column's one-hot over its levels. Levels seen fewer
//! than `--min-category-count` times in the training file are pooled into one [`OTHER`] level,
//! which also takes a value never seen in training when another file is scored (counted and
//! reported, never refused). A missing value is NaN in every feature of its column: the model
//! leaves it out of the loss and reads it as 0 (see [`crate::model::columns`]).
//!
//! [`TableColumns`] is fitted once, stored in the run's `preprocess.json` and replayed by every
//! command, the server and Python; [`TableColumns::decode`] runs it backwards (a category's
//! string, a boolean, a number in its own units).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::data::table::{ColumnChoice, Table, TableFormat, feed, is_text, scan};
use crate::data::{DataConfig, DataSource, Dataset, Matrix, ValueKind};
use crate::error::{Error, Result};

/// The level that pools a categorical column's rare values, and takes values never seen in
/// training.
pub const OTHER: &str = "(other)";
/// Fewest rows of the training file a level needs to be a level of its own (fewer: pooled in
/// [`OTHER`]), unless `--min-category-count` says otherwise.
pub const DEFAULT_MIN_CATEGORY_COUNT: usize = 5;
/// Rows from which a string column whose values all differ is taken for an id (carried, not
/// learned).
pub const ID_MIN_ROWS: usize = 20;

/// What a typed table does with missing values. Either way they are left out of the loss and
/// read as 0 by the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// Reconstructions are the model's for every value.
    #[default]
    Mask,
    /// Reconstructions keep the values given and fill the missing ones with the model's
    /// (an imputation), counted per column.
    Impute,
}

/// A column's kind and what it was fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ColumnKind {
    Numeric,
    Boolean,
    /// Its levels in feature order, [`OTHER`] last, and the training values pooled in
    /// [`OTHER`] for rarity (not reported as unseen when another file has them).
    Categorical {
        levels: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pooled: Vec<String>,
    },
}

/// One feature column of a typed table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypedColumn {
    pub name: String,
    #[serde(flatten)]
    pub kind: ColumnKind,
    /// The column's weight in the loss and the score.
    pub weight: f32,
    /// The Arrow type training read, named when another file's type differs.
    pub arrow_type: String,
}

impl TypedColumn {
    pub fn width(&self) -> usize {
        match &self.kind {
            ColumnKind::Categorical { levels, .. } => levels.len(),
            _ => 1,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Categorical { .. } => "categorical",
        }
    }
}

/// A typed table's columns as fitted on the training file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableColumns {
    /// The feature columns, in row order.
    pub columns: Vec<TypedColumn>,
    /// Columns read but not learned, carried through to outputs.
    pub carried: Vec<String>,
    pub missing: Missing,
}

/// A typed table read whole: every column but the label, and the labels.
#[derive(Debug, Clone)]
pub struct TypedTable {
    pub batch: RecordBatch,
    pub labels: Option<Vec<u32>>,
    pub class_names: Option<Vec<String>>,
    pub path: PathBuf,
}

/// A typed table's rows for the model, with what did not fit the fitted columns.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Numbers in their own units (before scaling), NaN where missing.
    pub x: Matrix,
    /// Per categorical column: how many values were not levels of training, and a few of them.
    pub unseen: Vec<Unseen>,
}

/// Values of a categorical column never seen in training (mapped to [`OTHER`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unseen {
    pub column: String,
    pub count: usize,
    pub examples: Vec<String>,
}

impl std::fmt::Display for Unseen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column '{}': {} value(s) never seen in training (e.g. '{}') read as '{OTHER}'",
            self.column,
            self.count,
            self.examples.join("', '")
        )
    }
}

impl DataConfig {
    /// Whether the table is read as a typed one: a run found it is, or its settings are given.
    pub fn is_typed(&self) -> bool {
        self.typed || self.asks_for_typed_table()
    }

    /// Whether a typed table's settings are given (which makes a table a typed one).
    pub fn asks_for_typed_table(&self) -> bool {
        self.categorical.is_some()
            || self.ignore_columns.is_some()
            || self.column_weights.is_some()
            || self.missing.is_some()
            || self.min_category_count.is_some()
    }

    pub(crate) fn validate_typed(&self) -> Result<()> {
        if self.min_category_count == Some(0) {
            return Err(Error::invalid("--min-category-count must be at least 1"));
        }
        weights_of(self)?;
        if self.is_typed() && self.stream {
            return Err(Error::invalid(
                "a typed table is read whole (its levels and scaling come from its rows): leave out --stream",
            ));
        }
        if self.asks_for_typed_table() && self.is_series() {
            return Err(Error::invalid(
                "--categorical, --ignore-columns, --column-weights, --missing and --min-category-count describe a typed table, not a time series (--window)",
            ));
        }
        Ok(())
    }
}

/// The table `spec` names when `cfg` reads it as a typed table: a CSV, Parquet or Arrow source
/// whose feature columns are not all numbers, or one given a typed table's settings
/// (`--categorical`, `--ignore-columns`, `--column-weights`, `--missing`,
/// `--min-category-count`). `None`: read as before.
pub fn typed_source(cfg: &DataConfig, spec: &str) -> Result<Option<(PathBuf, TableFormat)>> {
    if cfg.is_series() {
        return Ok(None);
    }
    let (path, format) = match DataSource::parse(spec)? {
        DataSource::Csv(path) => (path, TableFormat::Csv),
        DataSource::Table { path, format }
            if matches!(
                format,
                TableFormat::Csv | TableFormat::Parquet | TableFormat::Arrow
            ) =>
        {
            (path, format)
        }
        _ if cfg.is_typed() => {
            return Err(Error::invalid(format!(
                "--categorical, --ignore-columns, --column-weights, --missing and --min-category-count describe a table's columns: '{spec}' is not a CSV, Parquet or Arrow table"
            )));
        }
        _ => return Ok(None),
    };
    if cfg.is_typed() {
        return Ok(Some((path, format)));
    }
    // The first file's types say (the table's files are checked against each other when it is
    // read); a table that does not open is not typed here: the reader it goes to says why.
    let Ok(schema) = crate::data::table::first_schema(&path, format) else {
        return Ok(None);
    };
    let Ok(layout) = crate::data::table::Layout::of(&schema, &carry_all(cfg), &path) else {
        return Ok(None);
    };
    let features = feature_fields(&schema, cfg, layout.label.as_deref(), &path)?;
    // Strings, categories and booleans make a table typed; numbers, and lists or bytes of
    // them (an image per row), are read as rows of numbers as before.
    let typed = features
        .iter()
        .any(|f| is_text(f.data_type()) || *f.data_type() == DataType::Boolean);
    if typed && cfg.stream {
        return Err(Error::bad_file(
            &path,
            "its columns are not all numbers, so it is a typed table, which is read whole (its levels and scaling come from its rows): leave out --stream",
        ));
    }
    Ok(typed.then_some((path, format)))
}

/// One split of a typed table read with a run's fitted `columns` (values it never saw reported
/// in `notes`), restricted as the split is (`--train-classes`, limits).
pub fn load(
    cfg: &DataConfig,
    split: crate::data::Split,
    columns: &TableColumns,
    notes: &mut Vec<String>,
) -> Result<Dataset> {
    Ok(load_carrying(cfg, split, columns, notes)?.0)
}

/// [`load`], with the rows' carried columns (the run's, where this file has them) beside.
pub fn load_carrying(
    cfg: &DataConfig,
    split: crate::data::Split,
    columns: &TableColumns,
    notes: &mut Vec<String>,
) -> Result<(Dataset, RecordBatch)> {
    let spec = cfg.split_source(split);
    let Some((path, format)) = typed_source(
        &DataConfig {
            typed: true,
            ..cfg.clone()
        },
        spec,
    )?
    else {
        unreachable!("a typed config names a table or is refused");
    };
    let table = read(cfg, &path, format)?;
    let data = columns.dataset(&table, notes)?;
    // The rows `restrict` keeps, in order, for the carried columns to follow.
    let mut rows: Vec<usize> = match (split, &cfg.train_classes, &data.labels) {
        (crate::data::Split::Train, Some(keep), Some(labels)) => (0..data.len())
            .filter(|&i| keep.contains(&labels[i]))
            .collect(),
        _ => (0..data.len()).collect(),
    };
    let data = crate::data::spec::restrict(cfg, split, data)?;
    rows.truncate(data.len());
    let schema = table.batch.schema();
    let carried: Vec<usize> = columns
        .carried
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .collect();
    let projected = table
        .batch
        .project(&carried)
        .map_err(|e| crate::data::table::arrow_error(&path, "", e))?;
    let indices = arrow::array::UInt32Array::from_iter_values(rows.iter().map(|&r| r as u32));
    let carried = arrow::compute::take_record_batch(&projected, &indices)
        .map_err(|e| crate::data::table::arrow_error(&path, "", e))?;
    Ok((data, carried))
}

/// The choice that reads every column but the label as it is.
fn carry_all(cfg: &DataConfig) -> ColumnChoice {
    ColumnChoice {
        carry_only: true,
        ..cfg.column_choice(&[])
    }
}

/// Dates, times and durations: carried through, not learned.
fn is_carried_type(t: &DataType) -> bool {
    t.is_temporal() || matches!(t, DataType::Duration(_) | DataType::Interval(_))
}

/// The schema's candidate feature columns: `--columns`, or every column but the label and
/// the ignored ones.
fn feature_fields<'s>(
    schema: &'s Schema,
    cfg: &DataConfig,
    label: Option<&str>,
    path: &Path,
) -> Result<Vec<&'s Field>> {
    let ignored = cfg.ignore_columns.clone().unwrap_or_default();
    let named = |name: &String| -> Result<&'s Field> {
        schema
            .field_with_name(name)
            .map_err(|_| crate::data::table::no_such_column(schema, name, path))
    };
    for name in ignored.iter().chain(cfg.categorical.iter().flatten()) {
        named(name)?;
    }
    for (name, _) in weights_of(cfg)? {
        named(&name)?;
    }
    match &cfg.columns {
        Some(names) => names.iter().map(named).collect(),
        None => Ok(schema
            .fields()
            .iter()
            .map(|f| f.as_ref())
            .filter(|f| Some(f.name().as_str()) != label && !ignored.contains(f.name()))
            .collect()),
    }
}

/// Reads the typed table `path` whole: every column but the label, and the labels.
pub fn read(cfg: &DataConfig, path: &Path, format: TableFormat) -> Result<TypedTable> {
    let table = Table::open(path, format, &carry_all(cfg))?;
    let scanned = scan::scan(&table, &scan::RowFilter::default())?;
    let data = Arc::new(feed::TableData {
        table,
        index: scanned.index,
        classes: None,
    });
    let schema = Arc::new(Schema::new(
        data.table
            .schema
            .fields()
            .iter()
            .filter(|f| Some(f.name()) != data.table.layout.label.as_ref())
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let mut batches = Vec::new();
    let mut labels = data.table.layout.label.as_ref().map(|_| Vec::new());
    for rows in feed::sequential(data.clone()) {
        let rows = rows?;
        if let (Some(all), Some(l)) = (&mut labels, rows.labels) {
            all.extend(l);
        }
        let kept = rows.kept.ok_or_else(|| {
            Error::bad_file(path, "the table's columns were not read (no columns?)")
        })?;
        batches.push(kept);
    }
    // A partitioned table's files may give their columns in different orders: the schema's.
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    b.column_by_name(f.name()).cloned().ok_or_else(|| {
                        Error::bad_file(path, format!("column '{}' was not read", f.name()))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| crate::data::table::arrow_error(path, "", e))
        })
        .collect::<Result<_>>()?;
    let batch = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| crate::data::table::arrow_error(path, "", e))?;
    if batch.num_rows() == 0 {
        return Err(Error::bad_file(path, "the table has no rows"));
    }
    Ok(TypedTable {
        batch,
        labels,
        class_names: data.index.class_names.clone(),
        path: path.to_path_buf(),
    })
}

/// A column's values as strings (a category's name): text as it is, a whole number without
/// a decimal point, `None` where missing.
fn category_strings(column: &ArrayRef, name: &str, path: &Path) -> Result<Vec<Option<String>>> {
    let t = column.data_type();
    if t.is_floating() {
        let f = arrow::compute::cast(column, &DataType::Float64)
            .map_err(|e| crate::data::table::arrow_error(path, &format!("column '{name}'"), e))?;
        let f = f.as_primitive::<arrow::datatypes::Float64Type>();
        return Ok((0..f.len())
            .map(|i| f.is_valid(i).then(|| level_of_number(f.value(i))))
            .collect());
    }
    let s = arrow::compute::cast(column, &DataType::Utf8)
        .map_err(|e| crate::data::table::arrow_error(path, &format!("column '{name}'"), e))?;
    let s = s.as_string::<i32>();
    Ok((0..s.len())
        .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
        .collect())
}

/// A number as a category's name: a whole number without a decimal point (`3`, not `3.0`,
/// however the file stored it).
fn level_of_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

/// `--column-weights`, parsed.
fn weights_of(cfg: &DataConfig) -> Result<HashMap<String, f32>> {
    cfg.column_weights
        .iter()
        .flatten()
        .map(|s| parse_weight(s).map_err(|e| Error::invalid(format!("--column-weights: {e}"))))
        .collect()
}

impl TableColumns {
    /// Fits the columns of `table` as `cfg` says: kinds, levels (from the whole training
    /// file), weights. Says in `notes` what it decided on its own (ids carried, levels pooled).
    pub fn fit(table: &TypedTable, cfg: &DataConfig, notes: &mut Vec<String>) -> Result<Self> {
        let path = &table.path;
        let schema = table.batch.schema();
        let fields = feature_fields(&schema, cfg, None, path)?;
        let forced: Vec<String> = cfg.categorical.clone().unwrap_or_default();
        let weights = weights_of(cfg)?;
        let min_count = cfg.min_category_count.unwrap_or(DEFAULT_MIN_CATEGORY_COUNT);
        let rows = table.batch.num_rows();
        let mut columns = Vec::new();
        let mut carried: Vec<String> = cfg.ignore_columns.clone().unwrap_or_default();
        for field in fields {
            let name = field.name();
            let t = field.data_type();
            let column = table
                .batch
                .column_by_name(name)
                .expect("the table holds every column but the label");
            if column.logical_null_count() == rows {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "column '{name}' has no values (every row is missing): leave it out with --ignore-columns {name}"
                    ),
                ));
            }
            let categorical = forced.contains(name) || is_text(t);
            let kind = if categorical {
                let values = category_strings(column, name, path)?;
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for v in values.iter().flatten() {
                    *counts.entry(v.as_str()).or_default() += 1;
                }
                if !forced.contains(name)
                    && cfg.columns.is_none()
                    && rows >= ID_MIN_ROWS
                    && counts.len() == rows
                {
                    notes.push(format!(
                        "column '{name}' has a different value in every row: carried as an id, not learned (name it in --categorical to learn it)"
                    ));
                    carried.push(name.clone());
                    continue;
                }
                let (kept, rare): (Vec<_>, Vec<_>) =
                    counts.iter().partition(|(_, c)| **c >= min_count);
                let mut levels: Vec<String> = kept.iter().map(|(v, _)| v.to_string()).collect();
                let pooled: Vec<String> = rare.iter().map(|(v, _)| v.to_string()).collect();
                if !pooled.is_empty() {
                    notes.push(format!(
                        "column '{name}': {} of {} levels seen fewer than {min_count} times pooled into '{OTHER}'",
                        pooled.len(),
                        counts.len()
                    ));
                }
                if levels.iter().any(|l| l == OTHER) {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "column '{name}' has a value '{OTHER}', the name aekit gives pooled levels"
                        ),
                    ));
                }
                levels.push(OTHER.to_string());
                ColumnKind::Categorical { levels, pooled }
            } else if *t == DataType::Boolean {
                ColumnKind::Boolean
            } else if t.is_numeric() {
                ColumnKind::Numeric
            } else if is_carried_type(t) {
                carried.push(name.clone());
                continue;
            } else {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "column '{name}' is {t}: a typed table's columns are numbers, booleans, strings or categories (carry it with --ignore-columns {name})"
                    ),
                ));
            };
            let weight = weights.get(name).copied().unwrap_or(1.0);
            columns.push(TypedColumn {
                name: name.clone(),
                kind,
                weight,
                arrow_type: t.to_string(),
            });
        }
        for name in weights.keys() {
            if !columns.iter().any(|c| &c.name == name) {
                return Err(Error::invalid(format!(
                    "--column-weights: column '{name}' is not a feature column"
                )));
            }
        }
        if columns.is_empty() {
            return Err(Error::bad_file(path, "the table has no feature columns"));
        }
        Ok(Self {
            columns,
            carried,
            missing: cfg.missing.unwrap_or_default(),
        })
    }

    /// Features per row.
    pub fn width(&self) -> usize {
        self.columns.iter().map(TypedColumn::width).sum()
    }

    /// Where each column's features start.
    pub fn starts(&self) -> Vec<usize> {
        self.columns
            .iter()
            .scan(0, |at, c| {
                let start = *at;
                *at += c.width();
                Some(start)
            })
            .collect()
    }

    /// Which features are numbers (scaled by the run's preprocessing); the others are 0/1.
    pub fn numeric_features(&self) -> Vec<bool> {
        let mut numeric = Vec::with_capacity(self.width());
        for c in &self.columns {
            numeric.extend(std::iter::repeat_n(
                c.kind == ColumnKind::Numeric,
                c.width(),
            ));
        }
        numeric
    }

    /// The rows of `batch` (read from `path`) as the model's features, in their own units.
    pub fn encode(&self, batch: &RecordBatch, path: &Path) -> Result<Encoded> {
        let rows = batch.num_rows();
        let width = self.width();
        let mut x = vec![0f32; rows * width];
        let mut unseen = Vec::new();
        for (c, start) in self.columns.iter().zip(self.starts()) {
            let name = &c.name;
            let column = batch.column_by_name(name).ok_or_else(|| {
                Error::bad_file(
                    path,
                    format!("column '{name}' ({} in training) is missing", c.kind_name()),
                )
            })?;
            let t = column.data_type();
            let type_changed = || {
                Error::bad_file(
                    path,
                    format!(
                        "column '{name}' is {t} here and was {} in training ({}): a column keeps its type between files",
                        c.arrow_type,
                        c.kind_name()
                    ),
                )
            };
            let cell = |r: usize| r * width + start;
            match &c.kind {
                ColumnKind::Numeric => {
                    if !t.is_numeric() {
                        return Err(type_changed());
                    }
                    let f = arrow::compute::cast(column, &DataType::Float64).map_err(|e| {
                        crate::data::table::arrow_error(path, &format!("column '{name}'"), e)
                    })?;
                    let f = f.as_primitive::<arrow::datatypes::Float64Type>();
                    for r in 0..rows {
                        x[cell(r)] = if f.is_valid(r) {
                            let v = f.value(r);
                            if !v.is_finite() {
                                return Err(Error::bad_file(
                                    path,
                                    format!(
                                        "column '{name}' row {r} is {v}, not a finite number (leave it empty for a missing value)"
                                    ),
                                ));
                            }
                            v as f32
                        } else {
                            f32::NAN
                        };
                    }
                }
                ColumnKind::Boolean => {
                    if *t != DataType::Boolean {
                        return Err(type_changed());
                    }
                    let b = column.as_boolean();
                    for r in 0..rows {
                        x[cell(r)] = if b.is_valid(r) {
                            f32::from(u8::from(b.value(r)))
                        } else {
                            f32::NAN
                        };
                    }
                }
                ColumnKind::Categorical { levels, pooled } => {
                    let pooled: std::collections::HashSet<&str> =
                        pooled.iter().map(String::as_str).collect();
                    let was_text = c.arrow_type.contains("Utf8");
                    if was_text != is_text(t) || !(is_text(t) || t.is_numeric()) {
                        return Err(type_changed());
                    }
                    let index: HashMap<&str, usize> = levels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (l.as_str(), i))
                        .collect();
                    let other = levels.len() - 1;
                    let mut report = Unseen {
                        column: name.clone(),
                        count: 0,
                        examples: Vec::new(),
                    };
                    for (r, v) in category_strings(column, name, path)?.iter().enumerate() {
                        let row = &mut x[cell(r)..cell(r) + levels.len()];
                        match v {
                            None => row.fill(f32::NAN),
                            Some(v) => {
                                let level = index.get(v.as_str()).copied();
                                row[level.unwrap_or(other)] = 1.0;
                                if level.is_none() && !pooled.contains(v.as_str()) {
                                    report.count += 1;
                                    if report.examples.len() < 3 && !report.examples.contains(v) {
                                        report.examples.push(v.clone());
                                    }
                                }
                            }
                        }
                    }
                    if report.count > 0 {
                        unseen.push(report);
                    }
                }
            }
        }
        Ok(Encoded {
            x: Matrix::new(rows, width, x)?,
            unseen,
        })
    }

    /// Rows in the model's features (their own units: after
    /// [`Preprocessor::invert`](crate::data::Preprocessor::invert)) back as the table's
    /// columns: a number, a boolean (probability ≥ ½), a category's most likely level.
    pub fn decode(&self, x: &Matrix) -> Result<RecordBatch> {
        if x.cols != self.width() {
            return Err(Error::mismatch(format!(
                "rows have {} features, the table's columns {}",
                x.cols,
                self.width()
            )));
        }
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (c, start) in self.columns.iter().zip(self.starts()) {
            let values = (0..x.rows).map(|r| &x.row(r)[start..start + c.width()]);
            let (t, array): (DataType, ArrayRef) = match &c.kind {
                ColumnKind::Numeric => (
                    DataType::Float64,
                    Arc::new(Float64Array::from_iter(
                        values.map(|v| (!v[0].is_nan()).then_some(v[0] as f64)),
                    )),
                ),
                ColumnKind::Boolean => (
                    DataType::Boolean,
                    Arc::new(BooleanArray::from_iter(
                        values.map(|v| (!v[0].is_nan()).then_some(v[0] >= 0.5)),
                    )),
                ),
                ColumnKind::Categorical { levels, .. } => (
                    DataType::Utf8,
                    Arc::new(StringArray::from_iter(
                        values.map(|v| most_likely(v).map(|i| levels[i].as_str())),
                    )),
                ),
            };
            fields.push(Field::new(&c.name, t, true));
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| Error::invalid(format!("decoding rows: {e}")))
    }

    /// Rows given as JSON objects (`{"column": value, ...}`, a request's) as a record batch of
    /// the columns training read: numbers (or null) for a numeric column, true/false for a
    /// boolean, strings for a categorical column of text (numbers for one of codes). A column
    /// left out of an object is missing in that row; a key that is no column is refused.
    pub fn batch_from_json(
        &self,
        rows: &[serde_json::Map<String, serde_json::Value>],
    ) -> Result<RecordBatch> {
        use serde_json::Value;
        for (r, row) in rows.iter().enumerate() {
            if let Some(key) = row
                .keys()
                .find(|k| !self.columns.iter().any(|c| &c.name == *k) && !self.carried.contains(k))
            {
                return Err(Error::invalid(format!(
                    "row {r}: '{key}' is not a column of the run (columns: {})",
                    self.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for c in &self.columns {
            let name = &c.name;
            let wrong = |r: usize, v: &Value, want: &str| {
                Error::invalid(format!("row {r}: column '{name}' takes {want}, not {v}"))
            };
            let cells = rows.iter().map(|row| row.get(name).unwrap_or(&Value::Null));
            let text_levels = c.arrow_type.contains("Utf8");
            let (t, array): (DataType, ArrayRef) = match &c.kind {
                ColumnKind::Boolean => (
                    DataType::Boolean,
                    Arc::new(
                        cells
                            .enumerate()
                            .map(|(r, v)| match v {
                                Value::Null => Ok(None),
                                Value::Bool(b) => Ok(Some(*b)),
                                v => Err(wrong(r, v, "true, false or null")),
                            })
                            .collect::<Result<BooleanArray>>()?,
                    ),
                ),
                // A category may be given as its text or as a number, whichever the column's
                // levels are.
                ColumnKind::Categorical { .. } if text_levels => (
                    DataType::Utf8,
                    Arc::new(
                        cells
                            .enumerate()
                            .map(|(r, v)| match v {
                                Value::Null => Ok(None),
                                Value::String(s) => Ok(Some(s.clone())),
                                Value::Number(n) => Ok(n.as_f64().map(level_of_number)),
                                v => Err(wrong(r, v, "a string or null")),
                            })
                            .collect::<Result<StringArray>>()?,
                    ),
                ),
                // A number (or a category's code) may come as a JSON number or a string of one.
                _ => (
                    DataType::Float64,
                    Arc::new(
                        cells
                            .enumerate()
                            .map(|(r, v)| match v {
                                Value::Null => Ok(None),
                                Value::Number(n) => Ok(n.as_f64()),
                                Value::String(s) => s
                                    .trim()
                                    .parse::<f64>()
                                    .map(Some)
                                    .map_err(|_| wrong(r, v, "a number or null")),
                                v => Err(wrong(r, v, "a number or null")),
                            })
                            .collect::<Result<Float64Array>>()?,
                    ),
                ),
            };
            fields.push(Field::new(name, t, true));
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| Error::invalid(format!("the rows: {e}")))
    }

    /// One row's value of every column as text (in the model's features, own units; empty
    /// where missing): what explanations print.
    pub fn row_text(&self, row: &[f32]) -> Vec<String> {
        self.columns
            .iter()
            .zip(self.starts())
            .map(|(c, start)| {
                let v = &row[start..start + c.width()];
                match &c.kind {
                    _ if v[0].is_nan() => String::new(),
                    ColumnKind::Numeric => format_number(v[0]),
                    ColumnKind::Boolean => (v[0] >= 0.5).to_string(),
                    ColumnKind::Categorical { levels, .. } => {
                        most_likely(v).map_or(String::new(), |i| levels[i].clone())
                    }
                }
            })
            .collect()
    }

    /// `given` (raw rows, NaN where missing) with each missing value replaced by the
    /// reconstruction's (`recon`, the same shape): the imputation of `--missing impute`,
    /// with the number of values filled per column.
    pub fn impute(&self, given: &Matrix, recon: &Matrix) -> (Matrix, Vec<(String, usize)>) {
        let mut out = given.clone();
        let mut filled = Vec::new();
        for (c, start) in self.columns.iter().zip(self.starts()) {
            let mut n = 0;
            for r in 0..given.rows {
                let at = r * given.cols + start;
                if given.data[at].is_nan() {
                    out.data[at..at + c.width()].copy_from_slice(&recon.data[at..at + c.width()]);
                    n += 1;
                }
            }
            if n > 0 {
                filled.push((c.name.clone(), n));
            }
        }
        (out, filled)
    }

    /// The dataset of `table`'s rows (with its labels), unseen categories reported in `notes`.
    pub fn dataset(&self, table: &TypedTable, notes: &mut Vec<String>) -> Result<Dataset> {
        let encoded = self.encode(&table.batch, &table.path)?;
        notes.extend(
            encoded
                .unseen
                .iter()
                .map(|u| format!("{}: {u}", table.path.display())),
        );
        let width = encoded.x.cols;
        Ok(Dataset {
            x: encoded.x,
            labels: table.labels.clone(),
            class_names: table.class_names.clone(),
            sample_shape: vec![width],
            value_kind: ValueKind::Float,
            origin: table.path.display().to_string(),
        })
    }
}

/// The index of the largest value (a category's most likely level); `None` if missing.
fn most_likely(v: &[f32]) -> Option<usize> {
    if v.iter().any(|p| p.is_nan()) {
        return None;
    }
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

/// A number with six significant digits, trailing zeros left out.
fn format_number(v: f32) -> String {
    let digits = if v == 0.0 {
        0
    } else {
        (5 - v.abs().log10().floor() as i32).clamp(0, 9) as usize
    };
    let s = format!("{v:.digits$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Parses `--column-weights name=w,...`.
pub fn parse_weight(s: &str) -> std::result::Result<(String, f32), String> {
    let (name, w) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("'{s}' is not COLUMN=WEIGHT"))?;
    let w: f32 = w
        .trim()
        .parse()
        .map_err(|_| format!("'{s}': the weight '{w}' is not a number"))?;
    if !(w.is_finite() && w >= 0.0) {
        return Err(format!("'{s}': a weight is a number ≥ 0"));
    }
    Ok((name.trim().to_string(), w))
}

/// Writes `batch` to `path` as CSV or Parquet (by its extension), atomically.
pub fn write_table(path: &Path, batch: &RecordBatch) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "csv" | "parquet") {
        return Err(Error::bad_file(
            path,
            "a typed table's rows are written as .csv or .parquet",
        ));
    }
    let mut outputs = crate::io::OutputSet::default();
    outputs.write(path, |staged| {
        if ext == "parquet" {
            let mut out = crate::data::table::write::ParquetOutput::create(staged);
            out.write(Some(batch), &[], None)?;
            return out.finish().map(|_| ());
        }
        use std::io::Write;
        let file = std::fs::File::create(staged).map_err(|e| Error::io(staged, e))?;
        let mut w = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(std::io::BufWriter::new(file));
        w.write(batch)
            .map_err(|e| Error::bad_file(path, e.to_string()))?;
        w.into_inner().flush().map_err(|e| Error::io(staged, e))
    })?;
    outputs.commit()
}

/// `left`'s columns then `right`'s, rows side by side.
pub fn beside(left: &RecordBatch, right: &RecordBatch) -> Result<RecordBatch> {
    let mut fields: Vec<Arc<Field>> = left.schema().fields().iter().cloned().collect();
    fields.extend(right.schema().fields().iter().cloned());
    let mut arrays = left.columns().to_vec();
    arrays.extend(right.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Error::invalid(format!("joining columns: {e}")))
}
