//! NumPy `.npy` arrays (f32, f64, u8 and integer labels; C order) and `.npz` archives holding
//! `x` (samples) and optionally `y` (labels).

use std::io::Read;
use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar, TypeStr, WriterBuilder};

use crate::data::{Dataset, Matrix, ValueKind};
use crate::error::{Error, Result};

/// A decoded array: shape, values widened to f32, and whether the source held bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub kind: ValueKind,
}

/// The element types aekit reads from NumPy arrays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Element {
    U8,
    I32,
    I64,
    F32,
    F64,
}

impl Element {
    pub(crate) fn bytes(self) -> usize {
        match self {
            Element::U8 => 1,
            Element::I32 | Element::F32 => 4,
            Element::I64 | Element::F64 => 8,
        }
    }

    /// Integer elements, which can be class indices.
    pub(crate) fn is_integer(self) -> bool {
        matches!(self, Element::U8 | Element::I32 | Element::I64)
    }
}

/// What every reader of a `.npy` header requires of it — C order, a plain dtype of an element
/// aekit reads — as the array's shape, element and type string; or why not, in words (each
/// reader names the file its own way).
pub(crate) fn layout(
    header: &npyz::NpyHeader,
) -> std::result::Result<(Vec<usize>, Element, TypeStr), String> {
    if header.order() != Order::C {
        return Err("array is in Fortran order; save it with numpy.ascontiguousarray first".into());
    }
    let ts = match header.dtype() {
        DType::Plain(ts) => ts,
        other => {
            return Err(format!(
                "unsupported structured dtype {other:?}; expected a plain numeric array"
            ));
        }
    };
    let element = match (ts.type_char(), ts.num_bytes()) {
        (TypeChar::Uint, Some(1)) => Element::U8,
        (TypeChar::Int, Some(4)) => Element::I32,
        (TypeChar::Int, Some(8)) => Element::I64,
        (TypeChar::Float, Some(4)) => Element::F32,
        (TypeChar::Float, Some(8)) => Element::F64,
        _ => {
            return Err(format!(
                "unsupported dtype '{ts}'; expected f32, f64, u8, i32 or i64"
            ));
        }
    };
    let shape = header.shape().iter().map(|&d| d as usize).collect();
    Ok((shape, element, ts))
}

/// The shape of one sample of an array shaped `[n, ...]`: `[1]` for a vector of numbers, and
/// `[n, h, w]` images channel-first, `[1, h, w]`.
pub(crate) fn sample_shape(array_shape: &[usize]) -> Vec<usize> {
    match &array_shape[1.min(array_shape.len())..] {
        [] => vec![1],
        [h, w] => vec![1, *h, *w],
        other => other.to_vec(),
    }
}

/// Refuses a shape whose data would take more than the `available` bytes, before anything is
/// allocated for it.
pub(crate) fn check_declared(
    shape: &[usize],
    element: Element,
    available: u64,
) -> std::result::Result<(), String> {
    let declared = shape
        .iter()
        .try_fold(element.bytes() as u64, |n, &d| n.checked_mul(d as u64));
    if declared.is_none_or(|d| d > available) {
        return Err(format!(
            "shape {shape:?} declares more data than the file holds (truncated or corrupt)"
        ));
    }
    Ok(())
}

/// Decodes an array whose data can be at most `available` bytes: a header declaring more is
/// refused before anything is allocated for it.
fn decode<R: Read>(npy: NpyFile<R>, path: &Path, available: u64) -> Result<NpyArray> {
    let (shape, element, _) = layout(npy.header()).map_err(|msg| Error::bad_file(path, msg))?;
    check_declared(&shape, element, available).map_err(|msg| Error::bad_file(path, msg))?;
    let bad = |e: std::io::Error| Error::bad_file(path, format!("truncated or corrupt data: {e}"));
    let (values, kind): (Vec<f32>, ValueKind) = match element {
        Element::F32 => (npy.into_vec::<f32>().map_err(bad)?, ValueKind::Float),
        Element::F64 => (
            npy.into_vec::<f64>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            ValueKind::Float,
        ),
        Element::U8 => (
            npy.into_vec::<u8>()
                .map_err(bad)?
                .into_iter()
                .map(f32::from)
                .collect(),
            ValueKind::U8,
        ),
        Element::I32 => (
            npy.into_vec::<i32>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            ValueKind::Float,
        ),
        Element::I64 => (
            npy.into_vec::<i64>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            ValueKind::Float,
        ),
    };
    let expected: usize = shape.iter().product();
    if values.len() != expected {
        return Err(Error::bad_file(
            path,
            format!(
                "shape {shape:?} needs {expected} values, file has {}",
                values.len()
            ),
        ));
    }
    Ok(NpyArray {
        shape,
        values,
        kind,
    })
}

/// Where a `.npy` file's header ends, as its first 12 bytes declare; `None` when they are
/// not a `.npy` prelude of a known version.
pub(crate) fn header_end(prelude: &[u8]) -> Option<u64> {
    match prelude.get(6) {
        Some(1) => prelude
            .get(8..10)
            .map(|b| 10 + u16::from_le_bytes([b[0], b[1]]) as u64),
        Some(2 | 3) => prelude
            .get(8..12)
            .map(|b| 12 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64),
        _ => None,
    }
}

/// Refuses a header whose declared length runs past the end of the file, before the npyz
/// crate allocates a buffer of that length (up to 4 GiB for a version 2 or 3 header).
fn check_header_length(bytes: &[u8], path: &Path) -> Result<()> {
    // Anything but a known version is not a .npy file; npyz says so.
    if bytes.get(6).is_none_or(|v| !matches!(v, 1..=3)) {
        return Ok(());
    }
    match header_end(bytes) {
        Some(end) if end <= bytes.len() as u64 => Ok(()),
        _ => Err(Error::bad_file(
            path,
            "not a valid .npy file: its header runs past the end of the file",
        )),
    }
}

/// Reads one `.npy` file.
pub fn read_array(path: &Path) -> Result<NpyArray> {
    parse_array(&crate::io::read_file(path)?, path)
}

/// Decodes the bytes of an `.npy` array (a file's, a request's body), with every guard: the
/// header's length and the data it declares checked against the bytes before anything is
/// allocated, C order, the element types aekit reads. `origin` names the bytes in errors.
pub fn parse_array(bytes: &[u8], origin: &Path) -> Result<NpyArray> {
    let path = origin;
    check_header_length(bytes, path)?;
    let npy = NpyFile::new(bytes)
        .map_err(|e| Error::bad_file(path, format!("not a valid .npy file: {e}")))?;
    decode(npy, path, bytes.len() as u64)
}

fn dataset_from(x: NpyArray, labels: Option<NpyArray>, path: &Path) -> Result<Dataset> {
    if x.shape.is_empty() {
        return Err(Error::bad_file(
            path,
            "array is a scalar, expected [n, ...]",
        ));
    }
    let n = x.shape[0];
    let sample_shape = sample_shape(&x.shape);
    let cols: usize = sample_shape.iter().product();
    let labels = labels
        .map(|y| {
            if y.shape.len() != 1 || y.shape[0] != n {
                return Err(Error::bad_file(
                    path,
                    format!("labels have shape {:?}, expected [{n}]", y.shape),
                ));
            }
            y.values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if v >= 0.0 && v.fract() == 0.0 {
                        Ok(v as u32)
                    } else {
                        Err(Error::bad_file(
                            path,
                            format!("label {i} is {v}, not a class index"),
                        ))
                    }
                })
                .collect::<Result<Vec<u32>>>()
        })
        .transpose()?;
    let ds = Dataset {
        x: Matrix::new(n, cols, x.values)?,
        labels,
        class_names: None,
        sample_shape,
        value_kind: x.kind,
        origin: path.display().to_string(),
    };
    ds.validate()?;
    Ok(ds)
}

/// Reads a `.npy` array of samples `[n, ...]`, with labels from an optional second `.npy`.
pub fn read(path: &Path, labels: Option<&Path>) -> Result<Dataset> {
    let x = read_array(path)?;
    let y = labels.map(read_array).transpose()?;
    dataset_from(x, y, path)
}

/// Reads an `.npz` archive: samples from `x` (or the first array), labels from `y` if present.
pub fn read_npz(path: &Path) -> Result<Dataset> {
    let mut archive = npyz::npz::NpzArchive::open(path)
        .map_err(|e| Error::bad_file(path, format!("not a valid .npz archive: {e}")))?;
    let names: Vec<String> = archive.array_names().map(String::from).collect();
    if !names.iter().any(|n| n == "x") {
        return Err(Error::bad_file(
            path,
            format!(
                "no array 'x' (the samples; 'y' holds the labels): it holds [{}]",
                names.join(", ")
            ),
        ));
    }
    // Deflate inflates at most about 1032 times: no entry can hold more than that.
    let available = std::fs::metadata(path)
        .map_or(u64::MAX, |m| m.len())
        .saturating_mul(1032);
    let mut get = |name: &str| -> Result<Option<NpyArray>> {
        // The entry is read whole first (no further than deflate can inflate the archive,
        // nor past half the memory), so its header is checked as a .npy file's is.
        let limit = crate::device::memory_budget().map_or(available, |m| available.min(m));
        let mut entry = match archive.zip_archive().by_name(&format!("{name}.npy")) {
            Ok(entry) => entry,
            Err(_) => return Ok(None),
        };
        let mut bytes = Vec::new();
        (&mut entry)
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::bad_file(path, format!("array '{name}': {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(Error::bad_file(
                path,
                format!("array '{name}' inflates to more than the memory allows"),
            ));
        }
        check_header_length(&bytes, path)?;
        let npy = NpyFile::new(bytes.as_slice())
            .map_err(|e| Error::bad_file(path, format!("array '{name}': {e}")))?;
        decode(npy, path, bytes.len() as u64).map(Some)
    };
    let x = get("x")?.ok_or_else(|| Error::bad_file(path, "no array 'x'"))?;
    let y = if names.iter().any(|n| n == "y") {
        get("y")?
    } else {
        None
    };
    dataset_from(x, y, path)
}

/// Writes `m` as an f32 `.npy` of shape `[rows, cols]`.
pub fn write(path: &Path, m: &Matrix) -> Result<()> {
    write_shaped(path, &[m.rows, m.cols], &m.data)
}

/// Writes f32 values as an `.npy` of the given shape.
pub fn write_shaped(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    let buf = to_bytes(shape, values).map_err(|e| Error::io(path, e))?;
    crate::io::write_atomic(path, &buf)
}

/// The bytes of an f32 `.npy` of the given shape.
pub fn to_bytes(shape: &[usize], values: &[f32]) -> std::io::Result<Vec<u8>> {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut buf = Vec::with_capacity(values.len() * 4 + 128);
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut buf)
        .begin_nd()?;
    w.extend(values.iter().copied())?;
    w.finish()?;
    Ok(buf)
}

/// Writes integer labels as an i64 `.npy`.
pub fn write_labels(path: &Path, labels: &[u32]) -> Result<()> {
    let mut buf = Vec::new();
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[labels.len() as u64])
            .writer(&mut buf)
            .begin_nd()
            .map_err(|e| Error::io(path, e))?;
        w.extend(labels.iter().map(|&l| l as i64))
            .map_err(|e| Error::io(path, e))?;
        w.finish().map_err(|e| Error::io(path, e))?;
    }
    crate::io::write_atomic(path, &buf)
}
