//! NumPy shards as table files: `.npy` arrays of samples `[n, ...]` and `.npz` archives with
//! the samples in `x` and integer labels in `y`, read a block of rows at a time, never whole.
//!
//! A shard's rows are cut into chunks of about [`SHARD_CHUNK_BYTES`]; a chunk is read by its
//! byte offset with ordinary reads rather than through a memory map: a file truncated under a
//! map kills the process with SIGBUS, where a read gives an error that names the file. A
//! member an `.npz` archive stores compressed (`numpy.savez_compressed`) cannot be read from
//! the middle, so it is one chunk, inflated when read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use npyz::Endianness;

use super::{LABEL_KEY, READ_BATCH_ROWS, arrow_error, shaped_field};
use crate::data::npy::{self, Element};
use crate::error::{Error, IoContext, Result};

/// About this many bytes of samples per chunk, so that a shuffle window (32 MiB by default)
/// draws its rows from several places of the data set.
pub const SHARD_CHUNK_BYTES: usize = 4 << 20;
/// The feature column of a shard's table.
pub const SAMPLES: &str = "x";
/// The label column of a shard's table (an `.npz` archive's `y`).
pub const LABELS: &str = "y";

/// Where an array's data lies.
#[derive(Debug, Clone)]
enum Storage {
    /// At this byte offset of the file, as it is.
    At(u64),
    /// Deflated in the archive's member of this name, after a header of this many bytes.
    Deflated { member: String, header: u64 },
}

#[derive(Debug, Clone)]
struct ArrayPlace {
    storage: Storage,
    shape: Vec<usize>,
    element: Element,
}

impl ArrayPlace {
    fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<usize>() * self.element.bytes()
    }
}

/// One shard: its samples, its labels, and how its rows are cut into chunks.
#[derive(Debug, Clone)]
pub struct Shard {
    x: ArrayPlace,
    y: Option<ArrayPlace>,
    /// Rows per chunk.
    chunk_rows: usize,
}

/// Reads a `.npy` header from `reader` (positioned at its start): the array's shape and
/// element type, and the header's length in bytes.
fn read_header(reader: &mut dyn Read, path: &Path, name: &str) -> Result<(ArrayPlace, u64)> {
    let bad = |msg: String| {
        Error::bad_file(
            path,
            if name.is_empty() {
                msg
            } else {
                format!("array '{name}': {msg}")
            },
        )
    };
    let mut prelude = [0u8; 12];
    reader
        .read_exact(&mut prelude)
        .map_err(|_| bad("not a valid .npy array: shorter than its header".into()))?;
    let end = crate::data::npy::header_end(&prelude)
        .filter(|_| prelude.starts_with(b"\x93NUMPY"))
        .ok_or_else(|| bad("not a valid .npy array (no NUMPY magic)".into()))?;
    // A real header is a few hundred bytes; one declared larger is corrupt, and is refused
    // before anything is allocated for it.
    if end > 1 << 20 {
        return Err(bad(format!("its header declares {end} bytes (corrupt)")));
    }
    let mut header = prelude.to_vec();
    reader
        .take(end - prelude.len() as u64)
        .read_to_end(&mut header)
        .map_err(|e| bad(format!("header: {e}")))?;
    if (header.len() as u64) < end {
        return Err(bad("its header runs past the end of the file".into()));
    }
    let parsed = npyz::NpyHeader::from_reader(header.as_slice())
        .map_err(|e| bad(format!("not a valid .npy header: {e}")))?;
    let (shape, element, ts) = npy::layout(&parsed).map_err(bad)?;
    // Rows are read as raw bytes: only little-endian (or single-byte) values are.
    if ts.endianness() == Endianness::Big {
        return Err(bad(format!(
            "dtype '{ts}' is big-endian; convert it with array.astype(array.dtype.newbyteorder('<'))"
        )));
    }
    if shape.is_empty() {
        return Err(bad("array is a scalar, expected [n, ...]".into()));
    }
    Ok((
        ArrayPlace {
            storage: Storage::At(0),
            shape,
            element,
        },
        end,
    ))
}

/// Checks that `place`'s data, `available` bytes at most, is as long as its shape says.
fn check_size(place: &ArrayPlace, available: u64, path: &Path, name: &str) -> Result<()> {
    npy::check_declared(&place.shape, place.element, available).map_err(|msg| {
        if name.is_empty() {
            Error::bad_file(path, msg)
        } else {
            Error::bad_file(path, format!("array '{name}': {msg}"))
        }
    })
}

impl Shard {
    /// Reads the headers of the shard at `path` (`.npy` or `.npz`), checking every size they
    /// declare against the file before any row is read.
    pub fn open(path: &Path) -> Result<Self> {
        let is_npz = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
        let (x, y) = if is_npz {
            Self::open_npz(path)?
        } else {
            let mut f = File::open(path).at(path)?;
            let len = f.metadata().at(path)?.len();
            let (mut x, header) = read_header(&mut f, path, "")?;
            check_size(&x, len.saturating_sub(header), path, "")?;
            x.storage = Storage::At(header);
            (x, None)
        };
        if x.row_bytes() == 0 {
            return Err(Error::bad_file(
                path,
                format!("samples have shape {:?}: no values per row", x.shape),
            ));
        }
        if let Some(y) = &y
            && (y.shape.len() != 1 || y.shape[0] != x.shape[0] || !y.element.is_integer())
        {
            return Err(Error::bad_file(
                path,
                format!(
                    "labels 'y' have shape {:?} and type {:?}; expected [{}] integers (class indices)",
                    y.shape, y.element, x.shape[0]
                ),
            ));
        }
        let chunk_rows = match x.storage {
            Storage::At(_) => (SHARD_CHUNK_BYTES / x.row_bytes().max(1)).max(1),
            Storage::Deflated { .. } => x.shape[0].max(1),
        };
        Ok(Shard { x, y, chunk_rows })
    }

    fn open_npz(path: &Path) -> Result<(ArrayPlace, Option<ArrayPlace>)> {
        let f = File::open(path).at(path)?;
        let mut archive = npyz::zip::ZipArchive::new(f)
            .map_err(|e| Error::bad_file(path, format!("not a valid .npz archive: {e}")))?;
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.trim_end_matches(".npy").to_string())
            .collect();
        if !names.iter().any(|n| n == SAMPLES) {
            return Err(Error::bad_file(
                path,
                format!(
                    "no array 'x' (the samples; 'y' holds the labels): it holds [{}]",
                    names.join(", ")
                ),
            ));
        }
        let mut member = |name: &str| -> Result<ArrayPlace> {
            let mut entry = archive
                .by_name(&format!("{name}.npy"))
                .map_err(|e| Error::bad_file(path, format!("array '{name}': {e}")))?;
            let stored = entry.compression() == npyz::zip::CompressionMethod::Stored;
            let (start, size) = (entry.data_start(), entry.size());
            let (mut place, header) = read_header(&mut entry, path, name)?;
            check_size(&place, size.saturating_sub(header), path, name)?;
            place.storage = if stored {
                Storage::At(start + header)
            } else {
                Storage::Deflated {
                    member: format!("{name}.npy"),
                    header,
                }
            };
            Ok(place)
        };
        let x = member(SAMPLES)?;
        let y = if names.iter().any(|n| n == LABELS) {
            Some(member(LABELS)?)
        } else {
            None
        };
        Ok((x, y))
    }

    pub fn rows(&self) -> usize {
        self.x.shape[0]
    }

    pub fn chunk_rows(&self) -> usize {
        self.chunk_rows
    }

    /// The shard's table: `x` (a fixed-size list of each sample's values, with its shape in
    /// the field's metadata; one number for a 1-D array) and `y` where the archive has labels.
    pub fn schema(&self) -> SchemaRef {
        let shape = npy::sample_shape(&self.x.shape);
        let item = match self.x.element {
            Element::U8 => DataType::UInt8,
            _ => DataType::Float32,
        };
        let width: usize = shape.iter().product();
        // A vector of numbers is one plain column; a sample of several values, a list.
        let x = if self.x.shape.len() == 1 {
            Field::new(SAMPLES, item, false)
        } else {
            let list = Arc::new(Field::new_list_field(item, false));
            shaped_field(SAMPLES, DataType::FixedSizeList(list, width as i32), &shape)
        };
        let mut fields = vec![x];
        let mut metadata = std::collections::HashMap::new();
        if self.y.is_some() {
            fields.push(Field::new(LABELS, DataType::Int64, false));
            metadata.insert(LABEL_KEY.to_string(), LABELS.to_string());
        }
        Arc::new(Schema::new_with_metadata(fields, metadata))
    }

    /// The record batches of chunk `part` from its row `skip` on.
    pub fn read(
        &self,
        path: &Path,
        part: usize,
        skip: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> {
        let first = part * self.chunk_rows + skip;
        let end = ((part + 1) * self.chunk_rows).min(self.rows());
        let schema = self.schema();
        let x = Source::open(&self.x, path)?;
        let y = self.y.as_ref().map(|y| Source::open(y, path)).transpose()?;
        let path = path.to_path_buf();
        let (x_place, y_place) = (self.x.clone(), self.y.clone());
        let starts = (first..end).step_by(READ_BATCH_ROWS);
        let mut sources = (x, y);
        Ok(Box::new(starts.map(move |start| {
            let rows = READ_BATCH_ROWS.min(end - start);
            let where_ = format!("rows from {start}: ");
            let values = sources.0.read(&x_place, start, rows, &path, &where_)?;
            let mut columns = vec![samples_array(&schema, x_place.element, values, &path)?];
            if let (Some(source), Some(place)) = (&mut sources.1, &y_place) {
                let bytes = source.read(place, start, rows, &path, &where_)?;
                columns.push(Arc::new(labels_array(place.element, &bytes)) as ArrayRef);
            }
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| arrow_error(&path, &where_, e))
        })))
    }
}

/// Where a chunk's bytes come from: the file, read at an offset, or a member inflated whole.
enum Source {
    File(File),
    Inflated(Vec<u8>),
}

impl Source {
    fn open(place: &ArrayPlace, path: &Path) -> Result<Self> {
        Ok(match &place.storage {
            Storage::At(_) => Source::File(File::open(path).at(path)?),
            Storage::Deflated { member, header } => {
                let bytes =
                    place.shape.iter().product::<usize>() as u64 * place.element.bytes() as u64;
                if let Some(words) = crate::device::beyond_budget_words(bytes) {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "member '{member}' is compressed and inflates to {words}; save the shards with numpy.savez (uncompressed) to stream them"
                        ),
                    ));
                }
                let f = File::open(path).at(path)?;
                let mut archive = npyz::zip::ZipArchive::new(f)
                    .map_err(|e| Error::bad_file(path, format!("not a valid .npz archive: {e}")))?;
                let mut entry = archive
                    .by_name(member)
                    .map_err(|e| Error::bad_file(path, format!("member '{member}': {e}")))?;
                std::io::copy(&mut (&mut entry).take(*header), &mut std::io::sink())
                    .map_err(|e| Error::bad_file(path, format!("member '{member}': {e}")))?;
                let mut data = Vec::with_capacity(bytes as usize);
                (&mut entry)
                    .take(bytes)
                    .read_to_end(&mut data)
                    .map_err(|e| Error::bad_file(path, format!("member '{member}': {e}")))?;
                if (data.len() as u64) < bytes {
                    return Err(Error::bad_file(
                        path,
                        format!("member '{member}' is shorter than its shape says (truncated)"),
                    ));
                }
                Source::Inflated(data)
            }
        })
    }

    /// The bytes of rows `start..start + rows` of `place`.
    fn read(
        &mut self,
        place: &ArrayPlace,
        start: usize,
        rows: usize,
        path: &Path,
        where_: &str,
    ) -> Result<Vec<u8>> {
        let row_bytes = place.row_bytes();
        let (from, len) = (start * row_bytes, rows * row_bytes);
        match self {
            Source::File(f) => {
                let Storage::At(offset) = place.storage else {
                    unreachable!("a file source reads stored data")
                };
                let mut buf = vec![0u8; len];
                f.seek(SeekFrom::Start(offset + from as u64))
                    .and_then(|_| f.read_exact(&mut buf))
                    .map_err(|e| {
                        Error::bad_file(
                            path,
                            format!(
                                "{where_}cannot be read ({e}); the file was truncated or changed"
                            ),
                        )
                    })?;
                Ok(buf)
            }
            Source::Inflated(data) => Ok(data[from..from + len].to_vec()),
        }
    }
}

/// The samples column of one batch from its raw little-endian bytes.
fn samples_array(
    schema: &SchemaRef,
    element: Element,
    bytes: Vec<u8>,
    path: &Path,
) -> Result<ArrayRef> {
    let values: ArrayRef = match element {
        Element::U8 => Arc::new(UInt8Array::from(bytes)),
        Element::F32 => Arc::new(Float32Array::from_iter_values(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        )),
        Element::F64 => {
            Arc::new(Float32Array::from_iter_values(bytes.chunks_exact(8).map(
                |b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            )))
        }
        Element::I32 => Arc::new(Float32Array::from_iter_values(
            bytes
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        )),
        Element::I64 => {
            Arc::new(Float32Array::from_iter_values(bytes.chunks_exact(8).map(
                |b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            )))
        }
    };
    match schema.field(0).data_type() {
        DataType::FixedSizeList(item, width) => Ok(Arc::new(
            FixedSizeListArray::try_new(item.clone(), *width, values, None)
                .map_err(|e| arrow_error(path, "", e))?,
        )),
        _ => Ok(values),
    }
}

fn labels_array(element: Element, bytes: &[u8]) -> Int64Array {
    match element {
        Element::U8 => bytes.iter().map(|&b| b as i64).collect(),
        Element::I32 => bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
    }
}
