//! Time series as samples: a table of time points (one or many channels, optionally many
//! series told apart by an id column) cut into windows, each window one sample.
//!
//! A window's values are laid out channel by channel (`[channels, window]`), so a kernel over
//! time sees each channel as a plane. Every point lies in at least one window: the last window
//! of a series ends at its last point even where the stride does not land there, which is
//! what maps window errors back to every point ([`Windowed::to_points`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use serde::{Deserialize, Serialize};

use crate::data::spec::{DataConfig, DataSource, Split};
use crate::data::table::{ColumnChoice, Table, TableFormat, feed, scan};
use crate::data::{Dataset, Matrix, Preprocessor, Scaling, ValueKind};
use crate::error::{Error, Result};

/// What a series table does with time points out of order within a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TimeOrder {
    /// Stop, naming the series and the two times out of order.
    #[default]
    Refuse,
    /// Sort each series by its time column (the file's order breaks no ties: a repeated time
    /// is refused either way).
    Sort,
}

/// How a point's score (or reconstruction) comes from the windows that cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PointReduce {
    /// The mean over the covering windows.
    #[default]
    Mean,
    /// The largest over the covering windows.
    Max,
    /// The mean of the covering windows' whole scores (a window's error summed over all its
    /// points): smoother, for anomalies that span many points (an abnormal heartbeat) rather
    /// than one.
    Window,
}

impl PointReduce {
    /// The reduction named as on the command line (`mean`, `max`, `window`).
    pub fn from_name(name: &str) -> Result<Self> {
        <Self as clap::ValueEnum>::from_str(name, false)
            .map_err(|_| Error::invalid(format!("point score '{name}': use mean, max or window")))
    }

    pub fn name(self) -> &'static str {
        match self {
            PointReduce::Mean => "its mean error over the windows",
            PointReduce::Max => "its largest error over the windows",
            PointReduce::Window => "the mean of its windows' whole scores",
        }
    }
}

/// One series: its points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The value of the series-id column; `None` for a table that is one series.
    pub id: Option<String>,
    /// Each point's time as written in the file (its position where there is no time column).
    pub times: Vec<String>,
    /// `points × channels`, time-major.
    pub values: Matrix,
    /// Each point's label, when the table has a label column.
    pub labels: Option<Vec<u32>>,
}

impl Panel {
    pub fn len(&self) -> usize {
        self.values.rows
    }

    pub fn is_empty(&self) -> bool {
        self.values.rows == 0
    }

    /// Names the series in messages.
    pub fn name(&self) -> String {
        match &self.id {
            Some(id) => format!("series '{id}'"),
            None => "the series".into(),
        }
    }
}

/// A table of time points read whole, grouped into series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The value columns, one channel each.
    pub channels: Vec<String>,
    pub panels: Vec<Panel>,
    pub class_names: Option<Vec<String>>,
    pub origin: String,
}

/// Where a window lies: its series and first point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowAt {
    pub panel: usize,
    pub start: usize,
}

/// A series cut into windows: the windows as samples, and where each lies.
#[derive(Debug, Clone)]
pub struct Windowed {
    pub series: Series,
    /// One window per row, `[channels, window]`; a window's label is the largest of its
    /// points' (with 0/1 labels: anomalous when any point is).
    pub data: Dataset,
    pub at: Vec<WindowAt>,
    pub window: usize,
    /// Points of each series the windows were cut from (the training range, or all).
    pub range: Vec<usize>,
}

impl DataConfig {
    /// Whether the data is a time series cut into windows (`--window`).
    pub fn is_series(&self) -> bool {
        self.window.is_some()
    }

    /// Checks the series keys among themselves.
    pub(crate) fn validate_series(&self) -> Result<()> {
        let Some(window) = self.window else {
            for (set, flag) in [
                (self.time_column.is_some(), "--time-column"),
                (self.series_column.is_some(), "--series-column"),
                (self.train_points.is_some(), "--train-points"),
                (self.stride.is_some(), "--stride"),
            ] {
                if set {
                    return Err(Error::invalid(format!(
                        "{flag} describes a time series: give --window too"
                    )));
                }
            }
            return Ok(());
        };
        if window < 2 {
            return Err(Error::invalid(format!(
                "--window must span at least 2 time steps, got {window}"
            )));
        }
        let stride = self.stride();
        if stride == 0 || stride > window {
            return Err(Error::invalid(format!(
                "--stride must lie in 1..={window} (the window), got {stride}: a larger one leaves points in no window"
            )));
        }
        if self.stream {
            return Err(Error::invalid(
                "--stream does not apply to a time series: its windows overlap, so it is read whole",
            ));
        }
        if let Some(n) = self.train_points
            && n < window
        {
            return Err(Error::invalid(format!(
                "--train-points {n} is shorter than --window {window}: no window fits in the training range"
            )));
        }
        Ok(())
    }

    /// Time steps between the starts of consecutive windows.
    pub fn stride(&self) -> usize {
        self.stride.unwrap_or(1)
    }
}

/// The table file a series source names, with its format.
fn series_table(spec: &str) -> Result<(PathBuf, TableFormat)> {
    match DataSource::parse(spec)? {
        DataSource::Csv(path) => Ok((path, TableFormat::Csv)),
        DataSource::Table { path, format } if format != TableFormat::Images => Ok((path, format)),
        _ => Err(Error::invalid(format!(
            "--window cuts a table of time points into windows: '{spec}' is not one (use csv:PATH, parquet:PATH or arrow:PATH)"
        ))),
    }
}

/// Reads the series `spec` names: value columns (`--columns`, default every numeric column
/// but the label, time and series columns), a time column, a series-id column and a label
/// column as `cfg` says; groups the rows by series (in order of first appearance) and puts
/// each in time order.
pub fn read(cfg: &DataConfig, spec: &str) -> Result<Series> {
    let (path, format) = series_table(spec)?;
    let kept: Vec<String> = [&cfg.time_column, &cfg.series_column]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let choice = ColumnChoice {
        kept: kept.clone(),
        ..cfg.column_choice(&[])
    };
    let table = Table::open(&path, format, &choice)?;
    for (name, what) in [(&cfg.time_column, "time"), (&cfg.series_column, "series")] {
        if let Some(name) = name
            && (table.layout.features.iter().any(|f| &f.0 == name)
                || table.layout.label.as_ref() == Some(name))
        {
            return Err(Error::bad_file(
                &path,
                format!(
                    "column '{name}' is the {what} column: it cannot also be a value or the label"
                ),
            ));
        }
    }
    let scanned = scan::scan(&table, &scan::RowFilter::default())?;
    let data = std::sync::Arc::new(feed::TableData {
        table,
        index: scanned.index,
        classes: None,
    });
    let channels: Vec<String> = data
        .table
        .layout
        .features
        .iter()
        .map(|f| f.0.clone())
        .collect();
    let width = data.index.width;
    if width != channels.len() {
        return Err(Error::bad_file(
            &path,
            "a series' value columns hold one number per time point (a list column is not a channel)",
        ));
    }
    let mut values: Vec<f32> = Vec::with_capacity(data.index.rows * width);
    let mut labels = data.table.layout.label.as_ref().map(|_| Vec::new());
    let mut times: Vec<TimeKey> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for rows in feed::sequential(data.clone()) {
        let rows = rows?;
        let first_row = values.len() / width;
        values.extend_from_slice(&rows.x.data);
        if let (Some(all), Some(l)) = (&mut labels, rows.labels) {
            all.extend(l);
        }
        let kept = rows.kept.as_ref();
        if let Some(name) = &cfg.time_column {
            let column = kept.and_then(|k| k.column_by_name(name)).ok_or_else(|| {
                Error::bad_file(&path, format!("time column '{name}' was not read"))
            })?;
            times.extend(time_keys(column, name, &path, first_row)?);
        }
        if let Some(name) = &cfg.series_column {
            let column = kept.and_then(|k| k.column_by_name(name)).ok_or_else(|| {
                Error::bad_file(&path, format!("series column '{name}' was not read"))
            })?;
            ids.extend(series_ids(column, name, &path, first_row)?);
        }
    }
    let rows = values.len() / width;
    let values = Matrix::new(rows, width, values)?;
    let origin = path.display().to_string();
    let panels = group(cfg, &origin, &values, labels.as_deref(), &times, &ids)?;
    Ok(Series {
        channels,
        panels,
        class_names: data.index.class_names.clone(),
        origin,
    })
}

/// A point's time: what orders it, and how it is written.
#[derive(Debug, Clone, PartialEq)]
struct TimeKey {
    order: TimeOrderKey,
    shown: String,
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum TimeOrderKey {
    Int(i64),
    Float(f64),
}

/// The times of one column: integers and temporal types order as integers, floats as floats,
/// strings as the timestamps they spell (RFC 3339 or `YYYY-MM-DD[ HH:MM:SS]`).
fn time_keys(column: &ArrayRef, name: &str, path: &Path, first_row: usize) -> Result<Vec<TimeKey>> {
    let ty = column.data_type();
    if let Some(i) = (0..column.len()).find(|&i| column.is_null(i)) {
        return Err(Error::bad_file(
            path,
            format!("time column '{name}' is empty at row {}", first_row + i),
        ));
    }
    let shown = arrow::compute::cast(column, &DataType::Utf8)
        .map_err(|e| Error::bad_file(path, format!("time column '{name}': {e}")))?;
    let shown = shown.as_string::<i32>();
    let mut shown: Vec<String> = (0..shown.len())
        .map(|i| shown.value(i).to_string())
        .collect();
    let order: Vec<TimeOrderKey> = if ty.is_floating() {
        let f = arrow::compute::cast(column, &DataType::Float64)
            .map_err(|e| Error::bad_file(path, format!("time column '{name}': {e}")))?;
        let f = f.as_primitive::<Float64Type>();
        if let Some(i) = (0..f.len()).find(|&i| !f.value(i).is_finite()) {
            return Err(Error::bad_file(
                path,
                format!(
                    "time column '{name}' is not a finite number at row {}",
                    first_row + i
                ),
            ));
        }
        // A CSV file's numbers are all read as floats: whole ones are shown as written.
        for (text, &v) in shown.iter_mut().zip(f.values().iter()) {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                *text = format!("{}", v as i64);
            }
        }
        f.values().iter().map(|&v| TimeOrderKey::Float(v)).collect()
    } else {
        let as_time = match ty {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let target = DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None);
                let parsed = arrow::compute::cast_with_options(
                    column,
                    &target,
                    &arrow::compute::CastOptions {
                        safe: true,
                        ..Default::default()
                    },
                )
                .map_err(|e| Error::bad_file(path, format!("time column '{name}': {e}")))?;
                if let Some(i) = (0..parsed.len()).find(|&i| parsed.is_null(i)) {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "time column '{name}' holds '{}' at row {}: not a time (RFC 3339 or YYYY-MM-DD HH:MM:SS) or number",
                            shown[i],
                            first_row + i
                        ),
                    ));
                }
                parsed
            }
            _ => column.clone(),
        };
        let ints = arrow::compute::cast(&as_time, &DataType::Int64).map_err(|_| {
            Error::bad_file(
                path,
                format!("time column '{name}' is {ty}: times are numbers, dates, timestamps or strings that spell them"),
            )
        })?;
        ints.as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|&v| TimeOrderKey::Int(v))
            .collect()
    };
    Ok(order
        .into_iter()
        .zip(shown)
        .map(|(order, shown)| TimeKey { order, shown })
        .collect())
}

/// The series ids of one column, as strings.
fn series_ids(column: &ArrayRef, name: &str, path: &Path, first_row: usize) -> Result<Vec<String>> {
    if let Some(i) = (0..column.len()).find(|&i| column.is_null(i)) {
        return Err(Error::bad_file(
            path,
            format!("series column '{name}' is empty at row {}", first_row + i),
        ));
    }
    let shown = arrow::compute::cast(column, &DataType::Utf8)
        .map_err(|e| Error::bad_file(path, format!("series column '{name}': {e}")))?;
    let shown = shown.as_string::<i32>();
    Ok((0..shown.len())
        .map(|i| shown.value(i).to_string())
        .collect())
}

/// The rows grouped into series and put in time order, checked for what windows need.
fn group(
    cfg: &DataConfig,
    origin: &str,
    values: &Matrix,
    labels: Option<&[u32]>,
    times: &[TimeKey],
    ids: &[String],
) -> Result<Vec<Panel>> {
    let mut members: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    if ids.is_empty() {
        members.push((None, (0..values.rows).collect()));
    } else {
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        for (row, id) in ids.iter().enumerate() {
            let k = *by_id.entry(id.as_str()).or_insert_with(|| {
                members.push((Some(id.clone()), Vec::new()));
                members.len() - 1
            });
            members[k].1.push(row);
        }
        if members.len() > 1 && members.iter().all(|m| m.1.len() == 1) {
            return Err(Error::bad_file(
                origin,
                format!(
                    "series column '{}' has a different value on each of its {} rows: it names rows, not series",
                    cfg.series_column.as_deref().unwrap_or_default(),
                    values.rows
                ),
            ));
        }
    }
    let mut panels = Vec::with_capacity(members.len());
    for (id, mut rows) in members {
        let name = match &id {
            Some(id) => format!("series '{id}'"),
            None => "the series".to_string(),
        };
        if !times.is_empty() {
            let out_of_order = rows
                .windows(2)
                .find(|p| times[p[1]].order <= times[p[0]].order);
            if let Some(pair) = out_of_order
                && times[pair[1]].order < times[pair[0]].order
            {
                if cfg.unordered_time == TimeOrder::Refuse {
                    return Err(Error::bad_file(
                        origin,
                        format!(
                            "{name}: time {} (row {}) comes after {} (row {}); sort the file or pass --unordered-time sort",
                            times[pair[1]].shown, pair[1], times[pair[0]].shown, pair[0]
                        ),
                    ));
                }
                rows.sort_by(|&a, &b| {
                    times[a]
                        .order
                        .partial_cmp(&times[b].order)
                        .expect("finite times")
                });
            }
            if let Some(pair) = rows
                .windows(2)
                .find(|p| times[p[1]].order == times[p[0]].order)
            {
                return Err(Error::bad_file(
                    origin,
                    format!(
                        "{name}: time {} appears twice (rows {} and {})",
                        times[pair[0]].shown, pair[0], pair[1]
                    ),
                ));
            }
        }
        panels.push(Panel {
            id,
            times: if times.is_empty() {
                (0..rows.len()).map(|i| i.to_string()).collect()
            } else {
                rows.iter().map(|&r| times[r].shown.clone()).collect()
            },
            values: values.select_rows(&rows),
            labels: labels.map(|l| rows.iter().map(|&r| l[r]).collect()),
        });
    }
    Ok(panels)
}

/// The first point of each window over `len` points: every `stride` steps, and one more
/// ending at the last point where the stride does not land there.
pub fn window_starts(len: usize, window: usize, stride: usize) -> Vec<usize> {
    if len < window {
        return Vec::new();
    }
    let last = len - window;
    let mut starts: Vec<usize> = (0..=last).step_by(stride.max(1)).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    starts
}

impl Series {
    /// One series of `values` (`points × channels`, in time order) held in memory, with its
    /// points' labels: what Python's arrays become.
    pub fn one(values: Matrix, labels: Option<Vec<u32>>, origin: &str) -> Result<Self> {
        if labels.as_ref().is_some_and(|l| l.len() != values.rows) {
            return Err(Error::invalid(format!(
                "{origin}: {} labels for {} points",
                labels.as_ref().map_or(0, Vec::len),
                values.rows
            )));
        }
        if let Some(i) = values.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "{origin}: point {} channel {} is not a finite number",
                i / values.cols.max(1),
                i % values.cols.max(1)
            )));
        }
        Ok(Series {
            channels: (0..values.cols).map(|c| format!("channel {c}")).collect(),
            panels: vec![Panel {
                id: None,
                times: (0..values.rows).map(|i| i.to_string()).collect(),
                values,
                labels,
            }],
            class_names: None,
            origin: origin.to_string(),
        })
    }

    /// The windows of split `split` as `cfg` cuts them: the first `--train-points` of each
    /// series for the training split (all where not given), every point for the test split.
    pub fn split_windows(self, cfg: &DataConfig, split: Split) -> Result<Windowed> {
        let window = cfg
            .window
            .ok_or_else(|| Error::invalid("the data is not a time series (no --window)"))?;
        if let Some(short) = self.panels.iter().find(|p| p.len() < window) {
            return Err(Error::invalid(format!(
                "{}: {} has {} points, fewer than --window {window}",
                self.origin,
                short.name(),
                short.len()
            )));
        }
        let range = self
            .panels
            .iter()
            .map(|p| match (split, cfg.train_points) {
                (Split::Train, Some(n)) => n.min(p.len()),
                _ => p.len(),
            })
            .collect();
        self.windows(window, cfg.stride(), range)
    }

    /// Cuts the first `range[k]` points of each series `k` into windows of `window` points.
    pub fn windows(self, window: usize, stride: usize, range: Vec<usize>) -> Result<Windowed> {
        let channels = self.channels.len();
        let mut at = Vec::new();
        let mut x = Vec::new();
        let mut labels = self.panels[0].labels.as_ref().map(|_| Vec::new());
        for (k, panel) in self.panels.iter().enumerate() {
            for start in window_starts(range[k], window, stride) {
                at.push(WindowAt { panel: k, start });
                for c in 0..channels {
                    x.extend((start..start + window).map(|t| panel.values.row(t)[c]));
                }
                if let (Some(all), Some(l)) = (&mut labels, &panel.labels) {
                    all.push(*l[start..start + window].iter().max().expect("a window"));
                }
            }
        }
        let data = Dataset {
            x: Matrix::new(at.len(), channels * window, x)?,
            labels,
            class_names: self.class_names.clone(),
            sample_shape: vec![channels, window],
            value_kind: ValueKind::Float,
            origin: self.origin.clone(),
        };
        Ok(Windowed {
            series: self,
            data,
            at,
            window,
            range,
        })
    }
}

/// Reads the series `split` of `cfg` names and cuts it into windows: the training split from
/// the first `--train-points` points of each series (all where not given), the test split from
/// every point of `--test-data` where given, else of the source.
pub fn load_windows(cfg: &DataConfig, split: Split) -> Result<Windowed> {
    if !cfg.is_series() {
        return Err(Error::invalid(
            "the data is not a time series (no --window)",
        ));
    }
    read(cfg, cfg.split_source(split))?.split_windows(cfg, split)
}

impl Windowed {
    /// The points of the windows' range, every series after another (`points × channels`):
    /// what per-channel scaling is fitted on, each point once however many windows hold it.
    pub fn range_points(&self) -> Matrix {
        let channels = self.series.channels.len();
        let mut data = Vec::new();
        for (panel, &n) in self.series.panels.iter().zip(&self.range) {
            data.extend_from_slice(&panel.values.data[..n * channels]);
        }
        Matrix {
            rows: data.len() / channels.max(1),
            cols: channels,
            data,
        }
    }

    /// `scaling` fitted per channel on the range's points, laid out for the windows' rows.
    pub fn fit_preprocessor(&self, scaling: Scaling) -> Preprocessor {
        let per_channel =
            Preprocessor::fit_matrix(scaling.resolve(ValueKind::Float), &self.range_points());
        let spread = |v: Vec<f32>| -> Vec<f32> {
            if v.len() == 1 {
                v
            } else {
                v.iter()
                    .flat_map(|&c| std::iter::repeat_n(c, self.window))
                    .collect()
            }
        };
        Preprocessor {
            scaling: per_channel.scaling,
            offset: spread(per_channel.offset),
            scale: spread(per_channel.scale),
            columns: None,
        }
    }

    /// Per-window values (`windows × [channels, window]`, a window per row as in `data`)
    /// brought to the points: for each series, `points × channels` where each point's value is
    /// the mean (or largest) over the windows that cover it. Points outside the range are NaN.
    pub fn to_points(&self, per_window: &Matrix, reduce: PointReduce) -> Vec<Matrix> {
        self.reduce_to_points(per_window, self.series.channels.len(), reduce)
    }

    /// Each window's per-point errors summed over channels, reduced to the points: one
    /// score per point of each series (NaN outside the range). `errors` holds one value per
    /// window element, as `data`.
    pub fn point_scores(&self, errors: &Matrix, reduce: PointReduce) -> Vec<Vec<f64>> {
        let channels = self.series.channels.len();
        let w = self.window;
        // Summed over channels before the reduction over windows, so that the max picks one
        // window's whole point.
        let mut summed = Matrix::zeros(errors.rows, w);
        for r in 0..errors.rows {
            let row = errors.row(r);
            for t in 0..w {
                summed.data[r * w + t] = (0..channels).map(|c| row[c * w + t]).sum();
            }
            if reduce == PointReduce::Window {
                let total: f32 = summed.data[r * w..(r + 1) * w].iter().sum();
                summed.data[r * w..(r + 1) * w].fill(total);
            }
        }
        self.reduce_to_points(&summed, 1, reduce)
            .into_iter()
            .map(|m| m.data.iter().map(|&v| v as f64).collect())
            .collect()
    }

    fn reduce_to_points(
        &self,
        per_window: &Matrix,
        channels: usize,
        reduce: PointReduce,
    ) -> Vec<Matrix> {
        let w = self.window;
        let lengths: Vec<usize> = self.series.panels.iter().map(Panel::len).collect();
        let mut out: Vec<Matrix> = lengths
            .iter()
            .map(|&n| Matrix {
                rows: n,
                cols: channels,
                data: vec![f32::NAN; n * channels],
            })
            .collect();
        let mut counts: Vec<Vec<u32>> = lengths.iter().map(|&n| vec![0; n]).collect();
        for (row, at) in self.at.iter().enumerate() {
            let values = per_window.row(row);
            let points = &mut out[at.panel];
            for t in 0..w {
                let p = at.start + t;
                let first = counts[at.panel][p] == 0;
                counts[at.panel][p] += 1;
                for c in 0..channels {
                    let v = values[c * w + t];
                    let slot = &mut points.data[p * channels + c];
                    *slot = match (first, reduce) {
                        (true, _) => v,
                        (false, PointReduce::Mean | PointReduce::Window) => *slot + v,
                        (false, PointReduce::Max) => slot.max(v),
                    };
                }
            }
        }
        if reduce != PointReduce::Max {
            for (points, counts) in out.iter_mut().zip(&counts) {
                for (p, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 1) {
                    for c in 0..channels {
                        points.data[p * channels + c] /= n as f32;
                    }
                }
            }
        }
        out
    }
}
