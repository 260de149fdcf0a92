//! NumPy `.npy` arrays (f32, f64, u8 and integer labels; C order) and `.npz` archives holding
//! `x` (samples) and optionally `y` (labels).

use std::io::Read;
use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar, WriterBuilder};

use crate::data::{Dataset, Matrix, ValueKind};
use crate::error::{Error, Result};

/// A decoded array: shape, values widened to f32, and whether the source held bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub kind: ValueKind,
}

fn decode<R: Read>(npy: NpyFile<R>, path: &Path) -> Result<NpyArray> {
    if npy.order() != Order::C {
        return Err(Error::bad_file(
            path,
            "array is in Fortran order; save it with numpy.ascontiguousarray first",
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let ts = match npy.dtype() {
        DType::Plain(ts) => ts,
        other => {
            return Err(Error::bad_file(
                path,
                format!("unsupported structured dtype {other:?}; expected a plain numeric array"),
            ));
        }
    };
    let bad = |e: std::io::Error| Error::bad_file(path, format!("truncated or corrupt data: {e}"));
    let (values, kind): (Vec<f32>, ValueKind) = match (ts.type_char(), ts.num_bytes()) {
        (TypeChar::Float, Some(4)) => (npy.into_vec::<f32>().map_err(bad)?, ValueKind::Float),
        (TypeChar::Float, Some(8)) => (
            npy.into_vec::<f64>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            ValueKind::Float,
        ),
        (TypeChar::Uint, Some(1)) => (
            npy.into_vec::<u8>()
                .map_err(bad)?
                .into_iter()
                .map(f32::from)
                .collect(),
            ValueKind::U8,
        ),
        (TypeChar::Int, Some(4)) => (
            npy.into_vec::<i32>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            ValueKind::Float,
        ),
        (TypeChar::Int, Some(8)) => (
            npy.into_vec::<i64>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            ValueKind::Float,
        ),
        _ => {
            return Err(Error::bad_file(
                path,
                format!("unsupported dtype '{ts}'; expected f32, f64, u8, i32 or i64"),
            ));
        }
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

/// Reads one `.npy` file.
pub fn read_array(path: &Path) -> Result<NpyArray> {
    let bytes = crate::io::read_file(path)?;
    let npy = NpyFile::new(bytes.as_slice())
        .map_err(|e| Error::bad_file(path, format!("not a valid .npy file: {e}")))?;
    decode(npy, path)
}

fn dataset_from(x: NpyArray, labels: Option<NpyArray>, path: &Path) -> Result<Dataset> {
    if x.shape.is_empty() {
        return Err(Error::bad_file(
            path,
            "array is a scalar, expected [n, ...]",
        ));
    }
    let n = x.shape[0];
    let sample_shape: Vec<usize> = if x.shape.len() == 1 {
        vec![1]
    } else {
        x.shape[1..].to_vec()
    };
    let cols: usize = sample_shape.iter().product();
    // [n, h, w] images become [1, h, w] so that every image is channel-first.
    let sample_shape = if sample_shape.len() == 2 {
        vec![1, sample_shape[0], sample_shape[1]]
    } else {
        sample_shape
    };
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
    let x_name = if names.iter().any(|n| n == "x") {
        "x".to_string()
    } else {
        names
            .first()
            .cloned()
            .ok_or_else(|| Error::bad_file(path, "archive holds no arrays"))?
    };
    let mut get = |name: &str| -> Result<Option<NpyArray>> {
        match archive
            .by_name(name)
            .map_err(|e| Error::bad_file(path, format!("array '{name}': {e}")))?
        {
            None => Ok(None),
            Some(npy) => decode(npy, path).map(Some),
        }
    };
    let x = get(&x_name)?.ok_or_else(|| Error::bad_file(path, "no array 'x'"))?;
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
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut buf = Vec::with_capacity(values.len() * 4 + 128);
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut buf)
            .begin_nd()
            .map_err(|e| Error::io(path, e))?;
        w.extend(values.iter().copied())
            .map_err(|e| Error::io(path, e))?;
        w.finish().map_err(|e| Error::io(path, e))?;
    }
    crate::io::write_atomic(path, &buf)
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
