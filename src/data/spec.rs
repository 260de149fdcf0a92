//! The dataset spec read from the command line or the config file: `shapes`, `mnist`,
//! `csv:PATH`, `npy:PATH`, `npz:PATH`, `idx:IMAGES[,LABELS]`, `images:DIR`, `text:DIR`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::csv::CsvOptions;
use crate::data::table::TableFormat;
use crate::data::{Dataset, Matrix, Scaling, fetch, idx, npy, shapes};
use crate::error::{Error, Result};

/// Which part of a dataset to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Data to fit on (a validation part is split off it during training).
    Train,
    /// Held-out data. Sources without a separate test set use `test_source` or the file itself.
    Test,
}

/// A parsed dataset source.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The built-in shapes; `grid`: the disentanglement benchmark's variant (`shapes-grid`).
    Shapes {
        grid: bool,
    },
    Mnist,
    Csv(PathBuf),
    Npy(PathBuf),
    Npz(PathBuf),
    Idx {
        images: PathBuf,
        labels: Option<PathBuf>,
    },
    /// A folder of PNG/PGM/PPM images, one subfolder per class.
    Images(PathBuf),
    /// A folder of plain-text documents, one subfolder per class (bags of words).
    Text(PathBuf),
    /// A table read through Arrow: a Parquet or Arrow IPC file, directory or glob (a CSV
    /// directory or glob too), streamed when training.
    Table {
        path: PathBuf,
        format: crate::data::table::TableFormat,
    },
}

impl DataSource {
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        let (kind, rest) = match spec.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (spec, None),
        };
        let need_path = |r: Option<&str>| -> Result<PathBuf> {
            match r {
                Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
                _ => Err(Error::invalid(format!(
                    "dataset '{spec}' needs a path, e.g. {kind}:data.{kind}"
                ))),
            }
        };
        Ok(match kind {
            "shapes" => DataSource::Shapes { grid: false },
            "shapes-grid" => DataSource::Shapes { grid: true },
            "mnist" => DataSource::Mnist,
            "csv" => {
                let path = need_path(rest)?;
                // One CSV file is read whole as before; a directory or glob is a table.
                if path.is_dir() || path.to_string_lossy().contains(['*', '?', '[']) {
                    DataSource::Table {
                        path,
                        format: TableFormat::Csv,
                    }
                } else {
                    DataSource::Csv(path)
                }
            }
            "parquet" => DataSource::Table {
                path: need_path(rest)?,
                format: TableFormat::Parquet,
            },
            "arrow" | "feather" | "ipc" => DataSource::Table {
                path: need_path(rest)?,
                format: TableFormat::Arrow,
            },
            // One array is read whole as before; a directory or glob of shards is a table.
            "npy" | "npz" => {
                let path = need_path(rest)?;
                if path.is_dir() || path.to_string_lossy().contains(['*', '?', '[']) {
                    DataSource::Table {
                        path,
                        format: TableFormat::Npy,
                    }
                } else if kind == "npy" {
                    DataSource::Npy(path)
                } else {
                    DataSource::Npz(path)
                }
            }
            "images" => DataSource::Images(need_path(rest)?),
            "text" => DataSource::Text(need_path(rest)?),
            "idx" => {
                let r = need_path(rest)?;
                let r = r.to_string_lossy().to_string();
                let (images, labels) = match r.split_once(',') {
                    Some((i, l)) => (PathBuf::from(i), Some(PathBuf::from(l))),
                    None => (PathBuf::from(r), None),
                };
                DataSource::Idx { images, labels }
            }
            _ => {
                return Err(Error::invalid(format!(
                    "unknown dataset '{spec}': use shapes, shapes-grid, mnist, csv:PATH, parquet:PATH, arrow:PATH, npy:PATH, npz:PATH, idx:IMAGES[,LABELS], images:DIR or text:DIR"
                )));
            }
        })
    }
}

/// A table source's path and format: what a training run streams.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedSource {
    pub path: PathBuf,
    pub format: TableFormat,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn default_val_fraction() -> f64 {
    0.1
}
fn default_shapes_train() -> usize {
    6000
}
fn default_shapes_test() -> usize {
    1000
}

/// Everything that says which data a run uses and how it is prepared. Each field is a key of
/// the `[data]` table and a command-line flag, its doc comment the help of both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct DataConfig {
    /// Dataset: shapes, mnist, csv:PATH, parquet:PATH, arrow:PATH, npy:PATH, npz:PATH,
    /// idx:IMAGES[,LABELS], images:DIR, text:DIR. A parquet/arrow PATH (and a csv directory or
    /// glob) may be a file, a directory of files (hive-style key=value folders become columns)
    /// or a glob, and is streamed when training: data larger than memory.

    #[arg(long = "data", required = false)]
    pub source: String,
    /// Held-out data for csv/npy/npz/idx sources (same spec syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long = "test-data")]
    pub test_source: Option<String>,
    /// Directory holding the MNIST files (default: the `aekit data fetch` cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Label column of a CSV or table source, by header name or zero-based index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub label_column: Option<String>,
    /// Feature columns of a table source (default: every numeric column but the label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Rows in the shuffle window of a streamed table (default: 32 MiB of rows). Each epoch
    /// visits the table's row groups in a seeded order and shuffles the rows within each
    /// window; a larger window shuffles better and holds more in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub shuffle_buffer: Option<usize>,
    /// Stream a single CSV, NPY or NPZ file, or an image folder, like a table (Parquet and
    /// Arrow sources, and directories or globs of CSV or NPY files, always stream).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[arg(long, required = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub stream: bool,
    /// What a streamed image folder does with a file that does not decode: refuse (stop,
    /// naming it) or skip (leave it out and say how many were left out).
    #[serde(default, skip_serializing_if = "is_default")]
    #[arg(long, value_enum, required = false, default_value_t)]
    pub bad_images: crate::data::table::image_folder::BadImages,
    /// CSV header: true, false, or absent to detect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub header: Option<bool>,
    /// Labels for npy sources (a second .npy file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Input scaling (training only: a run keeps the scaling it was trained with).
    #[serde(default)]
    #[arg(long, required = false)]
    pub scale: Scaling,
    /// Fraction of the training data held out for validation (early stopping, best
    /// checkpoint; training only).
    #[serde(default = "default_val_fraction")]
    #[arg(long, required = false)]
    pub val_fraction: f64,
    /// Use only the first N training samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub limit: Option<usize>,
    /// Use only the first N test samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Words in the bag-of-words vocabulary of text sources (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub vocabulary: Option<usize>,
    /// Train only on samples of these classes, e.g. 3 or 0,1 (the test split keeps every
    /// class): one-class training for anomaly detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',')]
    pub train_classes: Option<Vec<u32>>,
    /// Number of generated training images of the shapes source.
    #[serde(default = "default_shapes_train")]
    #[arg(long, required = false)]
    pub shapes_train: usize,
    /// Number of generated test images of the shapes source.
    #[serde(default = "default_shapes_test")]
    #[arg(long, required = false)]
    pub shapes_test: usize,
    /// Dynamically binarise values in [0, 1], as the IWAE paper does with MNIST: each
    /// training batch is a fresh Bernoulli draw of the intensities (input and target alike),
    /// and evaluation data is binarised once with a fixed seed, the same for every run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[arg(long, required = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub binarize: bool,
    /// Cut a table of time points into windows of this many steps, each window a sample: a
    /// time series (one or many channels: the value columns; many series with
    /// --series-column). Read whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub window: Option<usize>,
    /// Time steps between the starts of consecutive windows (default 1). The last window of
    /// a series ends at its last point, so every point lies in a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub stride: Option<usize>,
    /// The time column of a series (numbers, dates, timestamps or strings that spell them);
    /// default: the rows are in time order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub time_column: Option<String>,
    /// A column naming the series each row belongs to (a panel of many series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub series_column: Option<String>,
    /// The training range: only the first N points of each series are trained on (and the
    /// scaling fitted on); scores cover every point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub train_points: Option<usize>,
    /// Times out of order within a series: refuse (naming them) or sort.
    #[serde(default, skip_serializing_if = "is_default")]
    #[arg(long, value_enum, required = false, default_value_t)]
    pub unordered_time: crate::data::series::TimeOrder,
    /// Columns of a table read as categories whatever their type (numbers that are codes);
    /// string and dictionary columns always are. Makes the table a typed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',')]
    pub categorical: Option<Vec<String>>,
    /// Columns of a typed table carried through to outputs instead of learned (ids; dates and
    /// times always are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',')]
    pub ignore_columns: Option<Vec<String>>,
    /// Each named column's weight in a typed table's loss and score, as COLUMN=WEIGHT (default
    /// 1: a column counts once, however many levels it has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',')]
    pub column_weights: Option<Vec<String>>,
    /// A typed table's missing values, always left out of the loss: mask (reconstructions are
    /// the model's) or impute (reconstructions keep the given values and fill the missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_enum)]
    pub missing: Option<crate::data::columns::Missing>,
    /// Fewest training rows a category needs to be a level of its own; rarer ones share one
    /// "(other)" level (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub min_category_count: Option<usize>,
    /// Whether the run reads its table as a typed one (set when training finds it is: the
    /// run's columns are in its preprocess.json).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[arg(skip)]
    pub typed: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: "shapes".into(),
            test_source: None,
            data_dir: None,
            label_column: None,
            columns: None,
            shuffle_buffer: None,
            stream: false,
            bad_images: Default::default(),
            header: None,
            labels: None,
            scale: Scaling::Auto,
            val_fraction: default_val_fraction(),
            limit: None,
            test_limit: None,
            train_classes: None,
            vocabulary: None,
            shapes_train: default_shapes_train(),
            shapes_test: default_shapes_test(),
            binarize: false,
            window: None,
            stride: None,
            time_column: None,
            series_column: None,
            train_points: None,
            unordered_time: Default::default(),
            categorical: None,
            ignore_columns: None,
            column_weights: None,
            missing: None,
            min_category_count: None,
            typed: false,
        }
    }
}

impl DataConfig {
    pub fn for_source(source: &str) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }

    /// Applies the flags given on a command line built with `DataConfig::augment_args`. A new
    /// `--data` source starts from that source's defaults (keeping the scaling and the
    /// validation fraction).
    pub fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        use clap::FromArgMatches;
        if let Ok(Some(source)) = flags.try_get_one::<String>("source")
            && *source != self.source
        {
            // A series run's windows are the model's input: another file is cut the same way.
            *self = DataConfig {
                scale: self.scale,
                val_fraction: self.val_fraction,
                window: self.window,
                stride: self.stride,
                time_column: self.time_column.take(),
                series_column: self.series_column.take(),
                unordered_time: self.unordered_time,
                // A typed run reads another file with the columns it was fitted on.
                typed: self.typed,
                ..DataConfig::for_source(source)
            };
        }
        self.update_from_arg_matches(flags)
            .map_err(|e| Error::invalid(e.to_string().trim().replace('\n', " ")))
    }

    /// The table a training run streams: a Parquet or Arrow source, a CSV directory or glob,
    /// or a CSV file with `--stream`; `None` for sources read whole.
    pub fn streamed_source(&self) -> Result<Option<StreamedSource>> {
        self.streamed_split(Split::Train)
    }

    /// Reads no more than the first `n` rows of `split` (for a figure of a few rows of a
    /// table that may be larger than memory).
    pub fn limit_rows(&mut self, split: Split, n: usize) {
        let limit = match split {
            Split::Train => &mut self.limit,
            Split::Test => &mut self.test_limit,
        };
        *limit = Some(limit.map_or(n, |l| l.min(n)));
    }

    /// The source `split` is read from: the test source for the test split when there is
    /// one, else the source (which holds both splits).
    pub fn split_source(&self, split: Split) -> &str {
        match (split, &self.test_source) {
            (Split::Test, Some(test)) => test,
            _ => &self.source,
        }
    }

    /// The table one split reads, when it is a table: the test split reads `--test-data` where
    /// given, else the source itself (an image folder's `test/` where it has one).
    pub fn streamed_split(&self, split: Split) -> Result<Option<StreamedSource>> {
        if self.is_series() || self.is_typed() {
            return Ok(None);
        }
        let (spec, split) = match (split, &self.test_source) {
            (Split::Test, Some(test)) => (test.as_str(), Split::Train),
            (split, _) => (self.source.as_str(), split),
        };
        let table = |path, format| Some(StreamedSource { path, format });
        Ok(match DataSource::parse(spec)? {
            DataSource::Table { path, format } => table(path, format),
            DataSource::Csv(path) if self.stream => table(path, TableFormat::Csv),
            DataSource::Npy(path) | DataSource::Npz(path) if self.stream => {
                table(path, TableFormat::Npy)
            }
            DataSource::Images(dir) if self.stream => table(
                crate::data::table::image_folder::split_folder(&dir, split),
                TableFormat::Images,
            ),
            _ => None,
        })
    }

    /// How a table source's columns are used, with `kept` carried through to outputs.
    pub fn column_choice(&self, kept: &[String]) -> crate::data::table::ColumnChoice {
        crate::data::table::ColumnChoice {
            features: self.columns.clone(),
            label: self.label_column.clone(),
            kept: kept.to_vec(),
            bad_images: self.bad_images,
            carry_only: false,
        }
    }

    /// The rows of a streamed training table a run uses.
    pub fn row_filter(&self) -> crate::data::table::scan::RowFilter {
        crate::data::table::scan::RowFilter {
            classes: self.train_classes.clone(),
            limit: self.limit,
        }
    }

    pub fn validate(&self) -> Result<()> {
        DataSource::parse(&self.source)?;
        self.validate_series()?;
        self.validate_typed()?;
        if self.shuffle_buffer == Some(0) {
            return Err(Error::invalid(
                "--shuffle-buffer must hold at least one row",
            ));
        }
        if let Some(t) = &self.test_source {
            DataSource::parse(t)?;
        }
        if self.scale == Scaling::Robust && self.streamed_source()?.is_some() {
            return Err(crate::data::preprocess::robust_needs_memory());
        }
        if self.labels.is_some() && self.streamed_source()?.is_some() {
            return Err(Error::invalid(
                "--labels names the labels of one .npy read whole; streamed shards carry theirs as the 'y' array of .npz archives",
            ));
        }
        if self.vocabulary == Some(0) {
            return Err(Error::invalid("vocabulary must hold at least one word"));
        }
        if !(0.0..0.9).contains(&self.val_fraction) {
            return Err(Error::invalid(format!(
                "val_fraction must be in [0, 0.9), got {}",
                self.val_fraction
            )));
        }
        Ok(())
    }
}

/// Candidate file names for one MNIST file (gzip or raw, with `-` or `.` before `idx`).
fn find_mnist_file(dir: &Path, stem: &str, idx_kind: &str) -> Result<PathBuf> {
    let names = [
        format!("{stem}-{idx_kind}-ubyte.gz"),
        format!("{stem}-{idx_kind}-ubyte"),
        format!("{stem}.{idx_kind}-ubyte.gz"),
        format!("{stem}.{idx_kind}-ubyte"),
    ];
    for n in &names {
        let p = dir.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::bad_file(
        dir.join(&names[0]),
        "MNIST file not found; run `aekit data fetch mnist` or pass --data-dir",
    ))
}

fn load_mnist(dir: &Path, split: Split) -> Result<Dataset> {
    let stem = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = find_mnist_file(dir, &format!("{stem}-images"), "idx3")?;
    let labels = find_mnist_file(dir, &format!("{stem}-labels"), "idx1")?;
    let mut ds = load_idx(&images, Some(&labels))?;
    ds.class_names = Some((0..10).map(|d| d.to_string()).collect());
    ds.origin = format!("mnist/{stem} ({})", dir.display());
    Ok(ds)
}

fn load_idx(images: &Path, labels: Option<&Path>) -> Result<Dataset> {
    let (x, shape, labels) = idx::read_images_and_labels(images, labels)?;
    let sample_shape = if shape.len() == 2 {
        vec![1, shape[0], shape[1]]
    } else {
        shape
    };
    Ok(Dataset {
        x,
        labels,
        class_names: None,
        sample_shape,
        value_kind: crate::data::ValueKind::U8,
        origin: images.display().to_string(),
    })
}

fn load_source(
    cfg: &DataConfig,
    spec: &str,
    split: Split,
    vocabulary: Option<&[String]>,
    table_limit: Option<usize>,
) -> Result<Dataset> {
    let ds = match DataSource::parse(spec)? {
        DataSource::Shapes { grid } => {
            let (n, key, stream) = match split {
                Split::Train => (cfg.shapes_train, "shapes_train", 1),
                Split::Test => (cfg.shapes_test, "shapes_test", 2),
            };
            let bytes = (n as u64).saturating_mul((shapes::SIDE * shapes::SIDE * 4) as u64);
            if let Some(words) = crate::device::beyond_budget_words(bytes) {
                return Err(Error::invalid(format!(
                    "{key} = {n} ({}) makes images that need {words}",
                    crate::options::flag_name(key),
                )));
            }
            if grid {
                shapes::generate_grid(n, stream)
            } else {
                shapes::generate(n, stream)
            }
        }
        DataSource::Mnist => {
            let dir = match &cfg.data_dir {
                Some(d) => d.clone(),
                None => fetch::default_cache_dir()?.join("mnist"),
            };
            load_mnist(&dir, split)?
        }
        DataSource::Csv(p) => crate::data::csv::read(
            &p,
            &CsvOptions {
                header: cfg.header,
                label_column: cfg.label_column.clone(),
            },
        )?,
        DataSource::Npy(p) => npy::read(&p, cfg.labels.as_deref())?,
        DataSource::Npz(p) => npy::read_npz(&p)?,
        DataSource::Idx { images, labels } => load_idx(&images, labels.as_deref())?,
        DataSource::Images(dir) => crate::data::images::load(&dir, split)?,
        DataSource::Table { path, format } => {
            crate::data::table::collect_first(&path, format, &cfg.column_choice(&[]), table_limit)?
        }
        DataSource::Text(dir) => {
            // The vocabulary always comes from the training documents (`cfg.source`), also
            // for a test source.
            let counted;
            let vocab = match vocabulary {
                Some(v) => v,
                None => {
                    counted = match text_vocabulary(cfg)? {
                        Some(v) => v,
                        None => crate::data::text::vocabulary(&dir, vocabulary_size(cfg))?,
                    };
                    &counted
                }
            };
            crate::data::text::load(&dir, vocab)?
        }
    };
    ds.validate()?;
    Ok(ds)
}

fn vocabulary_size(cfg: &DataConfig) -> usize {
    cfg.vocabulary
        .unwrap_or(crate::data::text::DEFAULT_VOCABULARY)
}

/// The vocabulary of a text source's training documents; `None` for other sources.
pub fn text_vocabulary(cfg: &DataConfig) -> Result<Option<Vec<String>>> {
    match DataSource::parse(&cfg.source)? {
        DataSource::Text(dir) => Ok(Some(crate::data::text::vocabulary(
            &dir,
            vocabulary_size(cfg),
        )?)),
        _ => Ok(None),
    }
}

/// The samples of `ds` whose label is in `keep`.
fn only_classes(ds: Dataset, keep: &[u32]) -> Result<Dataset> {
    let Some(labels) = &ds.labels else {
        return Err(Error::invalid(format!(
            "{}: train_classes needs labelled data, and it has no labels",
            ds.origin
        )));
    };
    let rows: Vec<usize> = (0..ds.len())
        .filter(|&i| keep.contains(&labels[i]))
        .collect();
    if rows.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no training sample belongs to the classes {keep:?}",
            ds.origin
        )));
    }
    Ok(ds.subset(&rows))
}

/// The true factors of variation of one split's samples ([`shapes::factors`], one row per
/// sample, in the order [`load`] gives them), for the built-in shapes; `None` for sources
/// that do not know theirs.
pub fn factors(cfg: &DataConfig, split: Split) -> Result<Option<Matrix>> {
    let spec = match (split, &cfg.test_source) {
        (Split::Test, Some(t)) => t.as_str(),
        _ => cfg.source.as_str(),
    };
    let DataSource::Shapes { grid } = DataSource::parse(spec)? else {
        return Ok(None);
    };
    let (n, stream) = match split {
        Split::Train => (cfg.shapes_train, 1),
        Split::Test => (cfg.shapes_test, 2),
    };
    let mut all = shapes::factors(n, stream, grid);
    if let (Split::Train, Some(keep)) = (split, &cfg.train_classes) {
        let rows: Vec<usize> = (0..all.rows)
            .filter(|&i| keep.contains(&(all.row(i)[0] as u32)))
            .collect();
        all = all.select_rows(&rows);
    }
    let limit = match split {
        Split::Train => cfg.limit,
        Split::Test => cfg.test_limit,
    };
    Ok(Some(match limit {
        Some(n) => all.head(n),
        None => all,
    }))
}

/// Loads one split as raw values (before preprocessing), applying `limit`/`test_limit`.
pub fn load(cfg: &DataConfig, split: Split) -> Result<Dataset> {
    load_with_vocabulary(cfg, split, None)
}

/// [`load`] with the vocabulary of a text source given (a run's own, or one counted once for
/// several loads) instead of counted from the training documents.
pub fn load_with_vocabulary(
    cfg: &DataConfig,
    split: Split,
    vocabulary: Option<&[String]>,
) -> Result<Dataset> {
    let has_own_test = matches!(
        DataSource::parse(&cfg.source)?,
        DataSource::Shapes { .. } | DataSource::Mnist | DataSource::Images(_)
    );
    // A table's rows past the split's limit are not read (it may be larger than memory);
    // a class filter comes before the limit, so with one the table is read whole.
    let table_limit = match split {
        Split::Train if cfg.train_classes.is_some() => None,
        Split::Train => cfg.limit,
        Split::Test => cfg.test_limit,
    };
    let ds = match (split, &cfg.test_source) {
        _ if cfg.is_series() => crate::data::series::load_windows(cfg, split)?.data,
        (Split::Test, Some(t)) => load_source(cfg, t, Split::Test, vocabulary, table_limit)?,
        (Split::Test, None) if !has_own_test => {
            load_source(cfg, &cfg.source, Split::Train, vocabulary, table_limit)?
        }
        _ => load_source(cfg, &cfg.source, split, vocabulary, table_limit)?,
    };
    restrict(cfg, split, ds)
}

/// The samples of `ds` a split uses: the training classes (`--train-classes`) of the
/// training split, then the first `--limit` (`--test-limit`) of them.
pub fn restrict(cfg: &DataConfig, split: Split, ds: Dataset) -> Result<Dataset> {
    let ds = match (split, &cfg.train_classes) {
        (Split::Train, Some(keep)) => only_classes(ds, keep)?,
        _ => ds,
    };
    let limit = match split {
        Split::Train => cfg.limit,
        Split::Test => cfg.test_limit,
    };
    Ok(match limit {
        Some(n) if n < ds.len() => ds.head(n),
        _ => ds,
    })
}
