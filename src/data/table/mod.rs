//! The Arrow data plane: tables — Parquet, Arrow IPC (Feather v2) and CSV files, one file, a
//! directory of them (hive-style `key=value` partition folders become string columns) or a
//! glob — read as streams of Arrow record batches, a part at a time.
//!
//! NumPy shards ([`shards`]) and image folders ([`image_folder`]) are tables too.
//!
//! A table is cut into *chunks*, the units that can be read on their own: a Parquet row group,
//! an IPC record batch, a block of [`CSV_CHUNK_ROWS`] CSV records, a block of a NumPy shard's
//! rows, a group of image files. [`scan`] reads every chunk
//! once (the streaming fit of the preprocessing, and the chunks' row counts, kept as the run's
//! `data-index.json`); [`order`] turns the index into each epoch's order without reading;
//! [`feed`] reads that order ahead of training on its own thread; [`write`] writes outputs
//! chunk by chunk. Everything that turns a record batch into model rows is [`Layout`].

pub mod feed;
pub mod image_folder;
pub mod order;
pub mod scan;
pub mod shards;
pub mod write;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float32Type, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};

use crate::data::{Matrix, ValueKind};
use crate::error::{Error, IoContext, Result};

/// Records per CSV chunk: the unit a CSV file is shuffled and resumed in.
pub const CSV_CHUNK_ROWS: usize = 16_384;
/// Rows per record batch read from a chunk: small enough that the decoded arrays and rows of
/// one batch (a few MiB for an image per row) reuse the allocator's memory instead of fresh
/// pages the kernel zeroes (8,192 rows of MNIST cost the reader 3% of a run's time in zeroing).
pub const READ_BATCH_ROWS: usize = 1_024;
/// Field metadata key giving a feature column's sample shape, e.g. `1,28,28` for an image.
pub const SHAPE_KEY: &str = "aekit.shape";
/// A feature column `name` of `data_type` whose samples have `shape`, kept in the field's
/// metadata under [`SHAPE_KEY`].
pub(crate) fn shaped_field(name: &str, data_type: DataType, shape: &[usize]) -> Field {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    Field::new(name, data_type, false).with_metadata(std::collections::HashMap::from([(
        SHAPE_KEY.to_string(),
        dims.join(","),
    )]))
}

/// The sample shape a field's metadata records ([`shaped_field`]), if it records one.
pub(crate) fn field_shape(field: &Field) -> Option<Vec<usize>> {
    field.metadata().get(SHAPE_KEY).and_then(|s| {
        s.split(',')
            .map(|d| d.trim().parse::<usize>().ok())
            .collect()
    })
}

/// Schema metadata key naming the label column, the default of `--label-column`.
pub const LABEL_KEY: &str = "aekit.label";
/// Schema metadata key holding the class names (a JSON list), indexed by label.
pub const CLASS_NAMES_KEY: &str = "aekit.class_names";

/// The file formats a table can be made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Parquet,
    /// Arrow IPC: the file format (Feather v2); a stream-format file is read as one chunk.
    Arrow,
    Csv,
    /// `.npy` arrays and `.npz` archives (samples `x`, labels `y`).
    Npy,
    /// A folder of images, in class folders or not.
    Images,
}

impl TableFormat {
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            TableFormat::Parquet => &["parquet", "pq"],
            TableFormat::Arrow => &["arrow", "feather", "ipc", "arrows"],
            TableFormat::Csv => &["csv"],
            TableFormat::Npy => &["npy", "npz"],
            TableFormat::Images => &crate::data::images::EXTENSIONS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Arrow => "arrow",
            TableFormat::Csv => "csv",
            TableFormat::Npy => "npy",
            TableFormat::Images => "images",
        }
    }
}

/// One file of a table, with the values of its hive partition folders.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableFile {
    pub path: PathBuf,
    /// `(key, value)` of each `key=value` folder between the table's root and the file.
    pub partitions: Vec<(String, String)>,
    /// Size in bytes and modification time (ns since the epoch) when the table was opened: a
    /// run refuses to go on over a file that changed under it.
    pub bytes: u64,
    pub modified_ns: u128,
}

pub(crate) fn file_stamp(path: &Path) -> Result<(u64, u128)> {
    let meta = std::fs::metadata(path).at(path)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((meta.len(), modified))
}

impl TableFile {
    /// Checks that the file is still the one the table was opened on.
    pub fn check_unchanged(&self) -> Result<()> {
        if !self.path.exists() {
            return Err(Error::bad_file(
                &self.path,
                "file of the data set disappeared (restore it, then resume)",
            ));
        }
        let (bytes, modified) = file_stamp(&self.path)?;
        if bytes != self.bytes || modified != self.modified_ns {
            return Err(Error::bad_file(
                &self.path,
                format!(
                    "file changed since the data set was indexed ({} bytes then, {bytes} now); restore it, or start a new run",
                    self.bytes
                ),
            ));
        }
        Ok(())
    }
}

/// The files a table spec names: a file, a directory (searched recursively for files of the
/// format, in path order), or a glob pattern.
pub fn list_files(spec: &Path, format: TableFormat) -> Result<Vec<TableFile>> {
    let text = spec.to_string_lossy();
    let has_glob = text.contains(['*', '?', '[']);
    let (root, mut paths) = if has_glob {
        let paths: Vec<PathBuf> = glob::glob(&text)
            .map_err(|e| Error::invalid(format!("{text}: not a valid glob pattern: {e}")))?
            .filter_map(|p| p.ok())
            .filter(|p| p.is_file())
            .collect();
        let root = text
            .split(['*', '?', '['])
            .next()
            .map(|prefix| {
                Path::new(prefix)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .to_path_buf()
            })
            .unwrap_or_default();
        (root, paths)
    } else if spec.is_dir() {
        let mut found = Vec::new();
        walk(spec, format, &mut found)?;
        (spec.to_path_buf(), found)
    } else if spec.is_file() {
        (
            spec.parent().unwrap_or(Path::new("")).to_path_buf(),
            vec![spec.to_path_buf()],
        )
    } else {
        return Err(Error::bad_file(spec, "no such file or directory"));
    };
    paths.sort();
    if paths.is_empty() {
        return Err(Error::bad_file(
            spec,
            format!(
                "no {} files found (looked for .{})",
                format.name(),
                format.extensions().join(", .")
            ),
        ));
    }
    paths
        .into_iter()
        .map(|path| {
            let partitions = path
                .strip_prefix(&root)
                .ok()
                .and_then(|rel| rel.parent())
                .map(|dirs| {
                    dirs.components()
                        .filter_map(|c| {
                            let s = c.as_os_str().to_string_lossy();
                            s.split_once('=')
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let (bytes, modified_ns) = file_stamp(&path)?;
            Ok(TableFile {
                path,
                partitions,
                bytes,
                modified_ns,
            })
        })
        .collect()
}

fn walk(dir: &Path, format: TableFormat, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        // Hidden and staging files (`.aekit-tmp-…`, Spark's `_SUCCESS`) are not data.
        if name
            .as_deref()
            .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
        {
            continue;
        }
        if path.is_dir() {
            walk(&path, format, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            format
                .extensions()
                .contains(&e.to_ascii_lowercase().as_str())
        }) {
            out.push(path);
        }
    }
    Ok(())
}

/// An Arrow error as one line naming the file (and the part of it, where known).
pub(crate) fn arrow_error(path: &Path, part: &str, e: impl std::fmt::Display) -> Error {
    let msg = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if part.is_empty() {
        Error::bad_file(path, msg)
    } else {
        Error::bad_file(path, format!("{part}: {msg}"))
    }
}

/// What is read of one file when a table opens: its own schema (a CSV file's inferred from
/// its first records) and, for Parquet, its footer (row groups, offsets). Chunk reads use these
/// instead of reading the footer or inferring the CSV types again.
#[derive(Debug, Clone)]
struct FileMeta {
    schema: SchemaRef,
    parquet: Option<ArrowReaderMetadata>,
    shard: Option<Arc<shards::Shard>>,
}

fn file_meta(path: &Path, format: TableFormat) -> Result<FileMeta> {
    Ok(match format {
        TableFormat::Parquet => {
            let f = File::open(path).at(path)?;
            let meta = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new())
                .map_err(|e| arrow_error(path, "", e))?;
            FileMeta {
                schema: meta.schema().clone(),
                parquet: Some(meta),
                shard: None,
            }
        }
        TableFormat::Arrow => FileMeta {
            schema: open_ipc(path)?.schema(),
            parquet: None,
            shard: None,
        },
        TableFormat::Csv => FileMeta {
            schema: Arc::new(csv_schema(path)?),
            parquet: None,
            shard: None,
        },
        TableFormat::Npy => {
            let shard = shards::Shard::open(path)?;
            FileMeta {
                schema: shard.schema(),
                parquet: None,
                shard: Some(Arc::new(shard)),
            }
        }
        TableFormat::Images => unreachable!("an image folder's schema comes from its first image"),
    })
}

/// The schema of the first file of the table `spec` names, with its partition columns: its
/// columns' types, read without opening every file (as [`Table::open`] does).
pub(crate) fn first_schema(spec: &Path, format: TableFormat) -> Result<SchemaRef> {
    if format == TableFormat::Images {
        return Err(Error::invalid(
            "an image folder's schema comes from its images",
        ));
    }
    let files = list_files(spec, format)?;
    let meta = file_meta(&files[0].path, format)?;
    Ok(with_partition_fields(&files[0], &meta.schema))
}

/// `base` (a file's own schema) with the file's partition columns appended.
fn with_partition_fields(file: &TableFile, base: &SchemaRef) -> SchemaRef {
    if file.partitions.is_empty() {
        return base.clone();
    }
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (key, _) in &file.partitions {
        fields.push(Field::new(key, DataType::Utf8, false));
    }
    Arc::new(Schema::new_with_metadata(fields, base.metadata().clone()))
}

/// Rows of a CSV file read to infer its column types (numbers are read as 64-bit floats,
/// whatever the sample suggests, so that the files of a directory agree).
const CSV_INFER_ROWS: usize = 10_000;

fn csv_format() -> arrow::csv::reader::Format {
    arrow::csv::reader::Format::default()
        .with_header(true)
        .with_comment(b'#')
}

fn csv_schema(path: &Path) -> Result<Schema> {
    let f = File::open(path).at(path)?;
    let (schema, _) = csv_format()
        .infer_schema(std::io::BufReader::new(f), Some(CSV_INFER_ROWS))
        .map_err(|e| arrow_error(path, "", e))?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = if f.data_type().is_numeric() {
                DataType::Float64
            } else {
                f.data_type().clone()
            };
            Field::new(f.name(), ty, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// Arrow IPC in either framing: the file format (random access to its batches) or the
/// stream format (read from the start).
enum IpcReader {
    File(arrow::ipc::reader::FileReader<std::io::BufReader<File>>),
    Stream(arrow::ipc::reader::StreamReader<std::io::BufReader<File>>),
}

impl IpcReader {
    fn schema(&self) -> SchemaRef {
        match self {
            IpcReader::File(r) => r.schema(),
            IpcReader::Stream(r) => r.schema(),
        }
    }
}

fn open_ipc(path: &Path) -> Result<IpcReader> {
    let f = File::open(path).at(path)?;
    match arrow::ipc::reader::FileReader::try_new_buffered(f, None) {
        Ok(r) => Ok(IpcReader::File(r)),
        Err(file_err) => {
            let f = File::open(path).at(path)?;
            arrow::ipc::reader::StreamReader::try_new_buffered(f, None)
                .map(IpcReader::Stream)
                .map_err(|_| arrow_error(path, "", file_err))
        }
    }
}

/// A part of a table that can be read on its own.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// Index into the table's files.
    pub file: usize,
    /// Row group (Parquet), record batch (IPC file) or block (CSV) within the file.
    pub part: usize,
    /// Rows in the chunk.
    pub rows: usize,
    /// Byte offset of a CSV block's first record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What a table's rows mean to aekit: which columns are features (and how wide each is),
/// which is the label, which are carried through to outputs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `(column name, width)` of each feature column, in row order.
    pub features: Vec<(String, usize)>,
    pub width: usize,
    pub label: Option<String>,
    /// Columns copied to outputs as they are (`--keep-columns`).
    pub kept: Vec<String>,
    pub value_kind: ValueKind,
    pub sample_shape: Vec<usize>,
    /// Class names indexed by label: a string label column's values in sorted order, or the
    /// file's own list.
    pub class_names: Option<Vec<String>>,
}

fn numeric(ty: &DataType) -> bool {
    ty.is_numeric() || *ty == DataType::Boolean
}

/// The width of a feature column, or why it cannot be one.
fn feature_width(field: &Field) -> std::result::Result<usize, String> {
    match field.data_type() {
        t if numeric(t) => Ok(1),
        DataType::FixedSizeList(inner, n) if numeric(inner.data_type()) => Ok(*n as usize),
        // Bytes per row (an image, as `aekit data convert` writes one).
        DataType::FixedSizeBinary(n) => Ok(*n as usize),
        other => Err(format!(
            "column '{}' is {other}, not numbers (name the numeric columns with --columns, or carry it with --keep-columns)",
            field.name()
        )),
    }
}

/// A column `name` that `schema` (read from `origin`) lacks, named with the columns it has.
pub(crate) fn no_such_column(schema: &Schema, name: &str, origin: &Path) -> Error {
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    Error::bad_file(
        origin,
        format!(
            "column '{name}' does not exist (columns: {})",
            columns.join(", ")
        ),
    )
}

/// How a table's columns are chosen.
#[derive(Debug, Clone, Default)]
pub struct ColumnChoice {
    /// Feature columns by name; `None`: every numeric column but the label.
    pub features: Option<Vec<String>>,
    /// The label column: a name, or a zero-based column index.
    pub label: Option<String>,
    /// Columns carried through to outputs.
    pub kept: Vec<String>,
    /// What an image folder does with a file that does not decode.
    pub bad_images: image_folder::BadImages,
    /// No feature rows: every column but the label is carried as read (a typed table, whose
    /// columns [`crate::data::columns`] turns into features).
    pub carry_only: bool,
}

impl Layout {
    /// The layout `choice` makes of `schema` (read from `origin`).
    pub fn of(schema: &Schema, choice: &ColumnChoice, origin: &Path) -> Result<Self> {
        let by_name = |name: &str| -> Result<&Field> {
            schema
                .field_with_name(name)
                .map_err(|_| no_such_column(schema, name, origin))
        };
        let label = match choice.label.as_ref().or(schema.metadata().get(LABEL_KEY)) {
            None => None,
            Some(l) => Some(match schema.field_with_name(l) {
                Ok(f) => f.name().clone(),
                Err(_) => match l.parse::<usize>() {
                    Ok(i) if i < schema.fields().len() => schema.field(i).name().clone(),
                    _ => by_name(l)?.name().clone(),
                },
            }),
        };
        let kept: Vec<String> = if choice.carry_only {
            schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|name| Some(name) != label.as_ref())
                .collect()
        } else {
            choice
                .kept
                .iter()
                .map(|k| by_name(k).map(|f| f.name().clone()))
                .collect::<Result<_>>()?
        };
        let chosen: Vec<&Field> = match &choice.features {
            _ if choice.carry_only => Vec::new(),
            Some(names) => names.iter().map(|n| by_name(n)).collect::<Result<_>>()?,
            None => schema
                .fields()
                .iter()
                .map(|f| f.as_ref())
                .filter(|f| Some(f.name()) != label.as_ref() && !kept.contains(f.name()))
                .collect(),
        };
        let mut features = Vec::new();
        let mut all_bytes = true;
        for field in &chosen {
            let width = feature_width(field).map_err(|msg| Error::bad_file(origin, msg))?;
            let inner = match field.data_type() {
                DataType::FixedSizeList(inner, _) => inner.data_type().clone(),
                DataType::FixedSizeBinary(_) => DataType::UInt8,
                t => t.clone(),
            };
            all_bytes &= inner == DataType::UInt8;
            features.push((field.name().clone(), width));
        }
        let width: usize = features.iter().map(|f| f.1).sum();
        if width == 0 && !choice.carry_only {
            return Err(Error::bad_file(origin, "the table has no feature columns"));
        }
        let shape = match chosen.as_slice() {
            [only] => field_shape(only).filter(|dims| dims.iter().product::<usize>() == width),
            _ => None,
        };
        let class_names = schema
            .metadata()
            .get(CLASS_NAMES_KEY)
            .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok());
        Ok(Layout {
            features,
            width,
            label,
            kept,
            value_kind: if all_bytes {
                ValueKind::U8
            } else {
                ValueKind::Float
            },
            sample_shape: shape.unwrap_or_else(|| vec![width]),
            class_names,
        })
    }

    /// Every column a read needs.
    pub fn columns(&self) -> Vec<String> {
        let mut all: Vec<String> = self.features.iter().map(|f| f.0.clone()).collect();
        all.extend(self.label.iter().cloned());
        for k in &self.kept {
            if !all.contains(k) {
                all.push(k.clone());
            }
        }
        all
    }

    /// The feature rows of `batch` (row-major `f32`), refusing nulls and non-finite values
    /// by column and row; `where_` names the part of the file for messages.
    pub fn rows(&self, batch: &RecordBatch, path: &Path, where_: &str) -> Result<Matrix> {
        let n = batch.num_rows();
        let mut data = vec![0f32; n * self.width];
        self.rows_into(batch, path, where_, &mut data)?;
        Matrix::new(n, self.width, data)
    }

    /// [`Layout::rows`] written into `data` (`rows × width` values), for a caller that
    /// gathers many batches into one matrix without a matrix per batch in between.
    pub fn rows_into(
        &self,
        batch: &RecordBatch,
        path: &Path,
        where_: &str,
        data: &mut [f32],
    ) -> Result<()> {
        let n = batch.num_rows();
        assert_eq!(
            data.len(),
            n * self.width,
            "rows_into: one row of data per row"
        );
        let mut offset = 0;
        for (name, width) in &self.features {
            let column = column(batch, name, path)?;
            if column.null_count() > 0 {
                let row = (0..n).find(|&r| column.is_null(r)).unwrap_or(0);
                return Err(Error::bad_file(
                    path,
                    format!(
                        "{where_}column '{name}' has missing values (row {row} of the batch); numeric columns must be complete"
                    ),
                ));
            }
            // Bytes (an image as fixed-size binary, or as a list of bytes), all finite:
            // converted straight into the rows, without a float array in between.
            let row_start = |r: usize| r * self.width + offset;
            let converted = match column.data_type() {
                DataType::FixedSizeBinary(_) => {
                    let binary = column.as_fixed_size_binary();
                    for r in 0..n {
                        store_bytes(&mut data[row_start(r)..][..*width], binary.value(r));
                    }
                    true
                }
                DataType::FixedSizeList(item, _) if *item.data_type() == DataType::UInt8 => {
                    let bytes = list_values(column, n, *width, path, where_, name)?;
                    let bytes = bytes.as_primitive::<arrow::datatypes::UInt8Type>().values();
                    for (r, row) in bytes.chunks_exact(*width).enumerate() {
                        store_bytes(&mut data[row_start(r)..][..*width], row);
                    }
                    true
                }
                _ => false,
            };
            if converted {
                offset += width;
                continue;
            }
            let values = match column.data_type() {
                DataType::FixedSizeList(_, _) => {
                    let values = list_values(column, n, *width, path, where_, name)?;
                    to_f32(&values, name, path)?
                }
                _ => to_f32(column, name, path)?,
            };
            let values = values.as_primitive::<Float32Type>().values();
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "{where_}column '{name}' row {} of the batch is {}, not a finite number",
                        bad / width,
                        values[bad]
                    ),
                ));
            }
            if *width == 1 {
                // One value per row (most tables): a strided store, not a slice copy per value.
                let column = data[offset..].iter_mut().step_by(self.width);
                column.zip(values).for_each(|(dst, v)| *dst = *v);
            } else {
                for (r, src) in values.chunks_exact(*width).enumerate() {
                    let start = r * self.width + offset;
                    data[start..start + width].copy_from_slice(src);
                }
            }
            offset += width;
        }
        Ok(())
    }

    /// The labels of `batch`: an integer column as class indices, a string column through
    /// `classes` (its sorted values; a value outside it is an error).
    pub fn labels(
        &self,
        batch: &RecordBatch,
        classes: Option<&[String]>,
        path: &Path,
        where_: &str,
    ) -> Result<Option<Vec<u32>>> {
        let Some(name) = &self.label else {
            return Ok(None);
        };
        let column = column(batch, name, path)?;
        if column.null_count() > 0 {
            return Err(Error::bad_file(
                path,
                format!("{where_}label column '{name}' has missing values"),
            ));
        }
        if let Some(strings) = label_strings(column) {
            // Looked up, not searched: class names given by the file (an image folder's, in
            // natural order) need not be sorted.
            let index: std::collections::HashMap<&str, u32> = classes
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as u32))
                .collect();
            return strings
                .iter()
                .map(|s| {
                    let s = s.unwrap_or_default();
                    index.get(s).copied().ok_or_else(|| {
                            Error::bad_file(
                                path,
                                format!(
                                    "{where_}label '{s}' in column '{name}' is not one of the classes seen when the data was indexed"
                                ),
                            )
                        })
                })
                .collect::<Result<Vec<u32>>>()
                .map(Some);
        }
        if column.data_type().is_floating() {
            // A CSV file's numbers are all read as floats: a label column of whole numbers
            // there is a column of class indices.
            let as_f64 = arrow::compute::cast(column, &DataType::Float64)
                .map_err(|e| arrow_error(path, where_, e))?;
            return as_f64
                .as_primitive::<arrow::datatypes::Float64Type>()
                .values()
                .iter()
                .map(|&v| {
                    if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 {
                        Ok(v as u32)
                    } else {
                        Err(Error::bad_file(
                            path,
                            format!(
                                "{where_}label {v} in column '{name}' is not a class index (0, 1, ...)"
                            ),
                        ))
                    }
                })
                .collect::<Result<Vec<u32>>>()
                .map(Some);
        }
        if !column.data_type().is_integer() {
            return Err(Error::bad_file(
                path,
                format!(
                    "{where_}label column '{name}' is {}: labels are integers or strings",
                    column.data_type()
                ),
            ));
        }
        let as_i64 = arrow::compute::cast(column, &DataType::Int64)
            .map_err(|e| arrow_error(path, where_, e))?;
        as_i64
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .iter()
            .map(|&v| {
                u32::try_from(v).map_err(|_| {
                    Error::bad_file(
                        path,
                        format!(
                            "{where_}label {v} in column '{name}' is not a class index (0, 1, ...)"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<u32>>>()
            .map(Some)
    }
}

/// A label column's values as strings, when it holds strings (plain or dictionary-encoded).
/// Whether a column of type `t` holds text: strings, or a dictionary of them.
pub(crate) fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

pub(crate) fn label_strings(column: &ArrayRef) -> Option<StringArray> {
    if !is_text(column.data_type()) {
        return None;
    }
    arrow::compute::cast(column, &DataType::Utf8)
        .ok()
        .map(|a| a.as_string::<i32>().clone())
}

fn column<'b>(batch: &'b RecordBatch, name: &str, path: &Path) -> Result<&'b ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::bad_file(path, format!("column '{name}' is missing from this file")))
}

/// The values of the `n` rows of a fixed-size-list column, `width` per row, refusing a
/// missing value inside a list.
fn list_values(
    column: &ArrayRef,
    n: usize,
    width: usize,
    path: &Path,
    where_: &str,
    name: &str,
) -> Result<ArrayRef> {
    let list = column.as_fixed_size_list();
    let values = list.values().slice(list.offset() * width, n * width);
    if values.null_count() > 0 {
        return Err(Error::bad_file(
            path,
            format!("{where_}column '{name}' has missing values inside its lists"),
        ));
    }
    Ok(values)
}

/// Bytes widened into floats, in place.
fn store_bytes(dst: &mut [f32], bytes: &[u8]) {
    for (d, &b) in dst.iter_mut().zip(bytes) {
        *d = f32::from(b);
    }
}

fn to_f32(array: &dyn Array, name: &str, path: &Path) -> Result<ArrayRef> {
    arrow::compute::cast(array, &DataType::Float32)
        .map_err(|e| arrow_error(path, &format!("column '{name}'"), e))
}

/// A table: its files, one schema they all share, and how its columns are used.
#[derive(Debug, Clone)]
pub struct Table {
    pub format: TableFormat,
    pub spec: PathBuf,
    pub files: Vec<TableFile>,
    pub schema: SchemaRef,
    pub layout: Layout,
    pub bad_images: image_folder::BadImages,
    /// Each file's schema and Parquet footer (or shard header), read once, by file index.
    meta: Vec<FileMeta>,
}

impl Table {
    /// Lists the files `spec` names, checks that their schemas agree, and lays out the
    /// columns.
    pub fn open(spec: &Path, format: TableFormat, choice: &ColumnChoice) -> Result<Self> {
        let mut choice = choice.clone();
        if choice.features.is_none() {
            // The one feature column of a shard or an image folder (the others are labels
            // and file names).
            choice.features = match format {
                TableFormat::Npy => Some(vec![shards::SAMPLES.into()]),
                TableFormat::Images => Some(vec![image_folder::PIXELS.into()]),
                _ => None,
            };
        }
        let (files, schema, meta) = if format == TableFormat::Images {
            let (files, classes) = image_folder::list(spec)?;
            let schema = image_folder::schema(&files, classes.as_deref(), choice.bad_images)?;
            // Every image shares the folder's schema; one is kept, not one per file.
            let meta = vec![FileMeta {
                schema: schema.clone(),
                parquet: None,
                shard: None,
            }];
            (files, schema, meta)
        } else {
            let files = list_files(spec, format)?;
            let meta = files
                .iter()
                .map(|f| file_meta(&f.path, format))
                .collect::<Result<Vec<_>>>()?;
            let schema = with_partition_fields(&files[0], &meta[0].schema);
            for (f, m) in files.iter().zip(&meta).skip(1) {
                let other = with_partition_fields(f, &m.schema);
                if let Some(diff) = schema_difference(&schema, &other) {
                    return Err(Error::bad_file(
                        &f.path,
                        format!("schema differs from {}'s: {diff}", files[0].path.display()),
                    ));
                }
            }
            (files, schema, meta)
        };
        let layout = Layout::of(&schema, &choice, &files[0].path)?;
        Ok(Table {
            format,
            spec: spec.to_path_buf(),
            files,
            schema,
            layout,
            bad_images: choice.bad_images,
            meta,
        })
    }

    /// A CSV file's column types, as inferred when the table opened.
    pub(crate) fn csv_schema_of(&self, file: usize) -> SchemaRef {
        self.meta[file].schema.clone()
    }

    /// The chunks known without reading data: a Parquet file's row groups, a shard's blocks
    /// of rows, an image folder's groups of files (before any is found undecodable). IPC
    /// and CSV tables learn theirs in [`scan`].
    pub fn metadata_chunks(&self) -> Option<Vec<Chunk>> {
        let mut chunks = Vec::new();
        match self.format {
            TableFormat::Parquet => {}
            TableFormat::Npy => {
                for (file, meta) in self.meta.iter().enumerate() {
                    let shard = meta.shard.as_ref()?;
                    let starts = (0..shard.rows()).step_by(shard.chunk_rows());
                    for (part, start) in starts.enumerate() {
                        chunks.push(Chunk {
                            file,
                            part,
                            rows: shard.chunk_rows().min(shard.rows() - start),
                            offset: 0,
                        });
                    }
                }
                return Some(chunks);
            }
            TableFormat::Images => {
                let starts = (0..self.files.len()).step_by(image_folder::IMAGE_CHUNK_FILES);
                for (part, start) in starts.enumerate() {
                    chunks.push(Chunk {
                        file: start,
                        part,
                        rows: image_folder::chunk_files(&self.files, part).len(),
                        offset: 0,
                    });
                }
                return Some(chunks);
            }
            TableFormat::Arrow | TableFormat::Csv => return None,
        }
        for (file, meta) in self.meta.iter().enumerate() {
            let meta = meta.parquet.as_ref()?;
            for (part, rg) in meta.metadata().row_groups().iter().enumerate() {
                chunks.push(Chunk {
                    file,
                    part,
                    rows: rg.num_rows() as usize,
                    offset: 0,
                });
            }
        }
        Some(chunks)
    }

    /// Names a chunk in messages: `row group 3: `.
    pub fn chunk_name(&self, chunk: &Chunk) -> String {
        match self.format {
            TableFormat::Parquet => format!("row group {}: ", chunk.part),
            TableFormat::Arrow => format!("record batch {}: ", chunk.part),
            TableFormat::Csv => format!("records from {}: ", chunk.part * CSV_CHUNK_ROWS),
            TableFormat::Npy => {
                let rows = self.meta[chunk.file]
                    .shard
                    .as_ref()
                    .map_or(0, |s| s.chunk_rows());
                format!("rows from {}: ", chunk.part * rows)
            }
            TableFormat::Images => format!("images {}..: ", chunk.file),
        }
    }

    fn projection_indices(&self, file_schema: &Schema) -> Vec<usize> {
        let wanted = self.layout.columns();
        let mut idx: Vec<usize> = wanted
            .iter()
            .filter_map(|name| file_schema.index_of(name).ok())
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx
    }

    /// The record batches of `chunk` from its row `skip` on, with the file's partition values
    /// as columns.
    pub fn read_chunk(
        &self,
        chunk: &Chunk,
        skip: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send + '_>> {
        let file = &self.files[chunk.file];
        let path = &file.path;
        let part = self.chunk_name(chunk);
        let with_partitions = move |b: RecordBatch| with_partitions(file, b);
        let part_for_err = part.clone();
        let map_err = move |e: arrow::error::ArrowError| arrow_error(path, &part_for_err, e);
        match self.format {
            TableFormat::Parquet => {
                let meta = self.meta[chunk.file]
                    .parquet
                    .clone()
                    .expect("parquet metadata is read when the table opens");
                let f = File::open(path).at(path)?;
                let mask = ProjectionMask::roots(
                    meta.metadata().file_metadata().schema_descr(),
                    self.projection_indices(meta.schema()),
                );
                let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta)
                    .with_row_groups(vec![chunk.part])
                    .with_projection(mask)
                    .with_batch_size(READ_BATCH_ROWS);
                if skip > 0 {
                    builder = builder.with_row_selection(RowSelection::from(vec![
                        RowSelector::skip(skip),
                        RowSelector::select(chunk.rows.saturating_sub(skip)),
                    ]));
                }
                let reader = builder.build().map_err(|e| arrow_error(path, &part, e))?;
                Ok(Box::new(reader.map(move |b| {
                    b.map_err(&map_err).and_then(&with_partitions)
                })))
            }
            TableFormat::Arrow => {
                let reader = open_ipc(path)?;
                let batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send + '_> =
                    match reader {
                        IpcReader::File(mut r) => {
                            r.set_index(chunk.part).map_err(&map_err)?;
                            let one = r.next().transpose().map_err(&map_err)?;
                            Box::new(one.into_iter().map(Ok))
                        }
                        IpcReader::Stream(r) => Box::new(r.map(move |b| b.map_err(&map_err))),
                    };
                Ok(Box::new(
                    skip_rows(batches, skip).map(move |b| b.and_then(&with_partitions)),
                ))
            }
            TableFormat::Csv => {
                use std::io::{Seek, SeekFrom};
                let mut f = File::open(path).at(path)?;
                let schema = self.csv_schema_of(chunk.file);
                let header = chunk.offset == 0;
                f.seek(SeekFrom::Start(chunk.offset)).at(path)?;
                let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                    .with_format(csv_format().with_header(header))
                    .with_batch_size(READ_BATCH_ROWS)
                    .with_bounds(skip, chunk.rows)
                    .with_projection(self.projection_indices(&schema))
                    .build(std::io::BufReader::new(f))
                    .map_err(|e| arrow_error(path, &part, e))?;
                Ok(Box::new(reader.map(move |b| {
                    b.map_err(&map_err).and_then(&with_partitions)
                })))
            }
            TableFormat::Npy => {
                let shard = self.meta[chunk.file]
                    .shard
                    .as_ref()
                    .expect("a shard's header is read when the table opens");
                let batches = shard.read(path, chunk.part, skip)?;
                Ok(Box::new(batches.map(move |b| b.and_then(&with_partitions))))
            }
            TableFormat::Images => {
                let files = image_folder::chunk_files(&self.files, chunk.part);
                let batch = image_folder::read(files, &self.schema, self.bad_images)?;
                Ok(Box::new(skip_rows(
                    Box::new(std::iter::once(Ok(batch))),
                    skip,
                )))
            }
        }
    }
}

/// `batch` with `file`'s hive partition values as string columns.
pub(crate) fn with_partitions(file: &TableFile, batch: RecordBatch) -> Result<RecordBatch> {
    if file.partitions.is_empty() {
        return Ok(batch);
    }
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut columns = batch.columns().to_vec();
    for (key, value) in &file.partitions {
        fields.push(Arc::new(Field::new(key, DataType::Utf8, false)));
        columns.push(Arc::new(StringArray::from(vec![
            value.as_str();
            batch.num_rows()
        ])));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| arrow_error(&file.path, "", e))
}

/// `batches` without their first `skip` rows.
fn skip_rows<'t>(
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send + 't>,
    mut skip: usize,
) -> impl Iterator<Item = Result<RecordBatch>> + Send + 't {
    batches.filter_map(move |b| match b {
        Err(e) => Some(Err(e)),
        Ok(b) if skip >= b.num_rows() => {
            skip -= b.num_rows();
            None
        }
        Ok(b) => {
            let out = b.slice(skip, b.num_rows() - skip);
            skip = 0;
            Some(Ok(out))
        }
    })
}

/// How two files' schemas differ, in words; `None` when they agree (field names, types and
/// order; metadata may differ).
fn schema_difference(a: &Schema, b: &Schema) -> Option<String> {
    let names = |s: &Schema| -> BTreeMap<String, DataType> {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    let (na, nb) = (names(a), names(b));
    for (name, ty) in &na {
        match nb.get(name) {
            None => return Some(format!("column '{name}' is missing")),
            Some(other) if other != ty => {
                return Some(format!("column '{name}' is {other}, not {ty}"));
            }
            _ => {}
        }
    }
    nb.keys()
        .find(|k| !na.contains_key(*k))
        .map(|extra| format!("extra column '{extra}'"))
}

/// A whole table read into memory (file order), for the commands that work on data held in
/// memory; refused, naming the table, once it would take more than half the available memory.
pub fn collect(
    path: &Path,
    format: TableFormat,
    choice: &ColumnChoice,
) -> Result<crate::data::Dataset> {
    collect_first(path, format, choice, None)
}

/// [`collect`] of the first `limit` rows only, when given: the rest are not read.
pub fn collect_first(
    path: &Path,
    format: TableFormat,
    choice: &ColumnChoice,
    limit: Option<usize>,
) -> Result<crate::data::Dataset> {
    let table = Table::open(path, format, choice)?;
    let filter = scan::RowFilter {
        classes: None,
        limit,
    };
    let scanned = scan::scan(&table, &filter)?;
    let index = scanned.index;
    let bytes = (index.rows as u64).saturating_mul(4 * index.width as u64);
    if let Some(words) = crate::device::beyond_budget_words(bytes) {
        return Err(Error::bad_file(
            path,
            format!(
                "{} rows of {} features need {words}; this command reads its data whole (training streams it)",
                index.rows, index.width,
            ),
        ));
    }
    let data = std::sync::Arc::new(feed::TableData {
        table,
        index,
        classes: None,
    });
    let mut x = Vec::with_capacity(data.index.rows * data.index.width);
    let mut labels = data.table.layout.label.as_ref().map(|_| Vec::new());
    for rows in feed::sequential(data.clone()) {
        let rows = rows?;
        x.extend_from_slice(&rows.x.data);
        if let (Some(all), Some(l)) = (&mut labels, rows.labels) {
            all.extend(l);
        }
    }
    let index = &data.index;
    Ok(crate::data::Dataset {
        x: Matrix::new(index.rows, index.width, x)?,
        labels,
        class_names: index.class_names.clone(),
        sample_shape: index.sample_shape.clone(),
        value_kind: index.value_kind,
        origin: path.display().to_string(),
    })
}

/// A uniform sample of `n` rows of a table (all of them when it has fewer), in file order,
/// drawn with `seed` in one streaming pass (reservoir sampling): what a command that only
/// needs a sample (the explorer's code map) reads of a table of any size.
pub fn reservoir(
    path: &Path,
    format: TableFormat,
    choice: &ColumnChoice,
    n: usize,
    seed: u64,
) -> Result<crate::data::Dataset> {
    use rand::Rng;
    let table = Table::open(path, format, choice)?;
    let index = scan::scan(&table, &scan::RowFilter::default())?.index;
    let data = std::sync::Arc::new(feed::TableData {
        table,
        index,
        classes: None,
    });
    let width = data.index.width;
    let mut rng = crate::data::batch::rng_for(seed, RESERVOIR_STREAM);
    // (position, row, label) of the rows kept so far.
    let mut kept: Vec<(usize, Vec<f32>, Option<u32>)> = Vec::with_capacity(n);
    let mut seen = 0usize;
    for rows in feed::sequential(data.clone()) {
        let rows = rows?;
        for i in 0..rows.x.rows {
            let row = (
                rows.positions[i],
                rows.x.row(i).to_vec(),
                rows.labels.as_ref().map(|l| l[i]),
            );
            if kept.len() < n {
                kept.push(row);
            } else {
                let j = rng.random_range(0..=seen);
                if j < n {
                    kept[j] = row;
                }
            }
            seen += 1;
        }
    }
    kept.sort_by_key(|k| k.0);
    let labelled = data.table.layout.label.is_some();
    let labels = labelled.then(|| kept.iter().map(|k| k.2.unwrap_or(0)).collect());
    let values = kept.into_iter().flat_map(|k| k.1).collect::<Vec<_>>();
    let index = &data.index;
    Ok(crate::data::Dataset {
        x: Matrix::new(values.len() / width.max(1), width, values)?,
        labels,
        class_names: index.class_names.clone(),
        sample_shape: index.sample_shape.clone(),
        value_kind: index.value_kind,
        origin: path.display().to_string(),
    })
}

/// The random stream of [`reservoir`]'s draws.
const RESERVOIR_STREAM: u64 = 7 << 40;
