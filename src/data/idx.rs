//! IDX files, the format of MNIST: a big-endian header (two zero bytes, a type code, the number
//! of dimensions, then each dimension as u32) followed by the values. Gzip is detected by its
//! magic bytes, not by the file name.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The element types IDX defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxType {
    U8,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl IdxType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0B => IdxType::I16,
            0x0C => IdxType::I32,
            0x0D => IdxType::F32,
            0x0E => IdxType::F64,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0B,
            IdxType::I32 => 0x0C,
            IdxType::F32 => 0x0D,
            IdxType::F64 => 0x0E,
        }
    }

    fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

/// A decoded IDX array: dimensions and values widened to `f32` (exact for u8, i8, i16).
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dtype: IdxType,
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

/// Reads an IDX file, gunzipping it when it starts with the gzip magic bytes. A gzip stream is
/// inflated only as far as its IDX header says the data goes (and one byte more, to notice
/// trailing data), and a header that declares more data than half the memory available is
/// refused before anything is inflated: a small file cannot inflate into gigabytes.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = crate::io::read_file(path)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let corrupt =
        |e: std::io::Error| Error::bad_file(path, format!("corrupt or truncated gzip data: {e}"));
    let mut decoder = flate2::read::MultiGzDecoder::new(raw.as_slice());
    let mut out = Vec::new();
    (&mut decoder)
        .take(4)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    if out.len() < 4 {
        return Ok(out);
    }
    let ndims = out[3] as usize;
    (&mut decoder)
        .take(4 * ndims as u64)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    if out.len() < 4 + 4 * ndims {
        return Ok(out);
    }
    let elem = IdxType::from_code(out[2]).map_or(1, IdxType::size) as u64;
    let body = out[4..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64)
        .try_fold(elem, |n, d| n.checked_mul(d))
        .unwrap_or(u64::MAX);
    if let Some(words) = crate::device::beyond_budget_words(body) {
        return Err(Error::bad_file(
            path,
            format!("the IDX header declares data that needs {words}"),
        ));
    }
    // Deflate inflates at most about 1032 times: a header declaring more than that is
    // truncated, whatever it says, so no more is read (or reserved) than the stream can hold.
    let body = body.min((raw.len() as u64).saturating_mul(1032));
    out.reserve(usize::try_from(body).unwrap_or(0));
    decoder
        .take(body.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    Ok(out)
}

/// Parses IDX bytes; `path` is only used in error messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::bad_file(
            path,
            format!("too short for an IDX header ({} bytes)", bytes.len()),
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let dtype = match (bytes[0], bytes[1], IdxType::from_code(bytes[2])) {
        (0, 0, Some(t)) => t,
        _ => {
            return Err(Error::bad_file(
                path,
                format!("wrong magic number 0x{magic:08x}: not an IDX file"),
            ));
        }
    };
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(Error::bad_file(path, "IDX header declares zero dimensions"));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(Error::bad_file(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::bad_file(path, "IDX dimensions overflow"))?;
    let expected = header_len + count * dtype.size();
    if bytes.len() != expected {
        return Err(Error::bad_file(
            path,
            format!(
                "IDX header {:?} needs {expected} bytes, file has {} ({})",
                dims,
                bytes.len(),
                if bytes.len() < expected {
                    "truncated"
                } else {
                    "trailing data"
                }
            ),
        ));
    }
    let body = &bytes[header_len..];
    let values: Vec<f32> = match dtype {
        IdxType::U8 => body.iter().map(|&b| b as f32).collect(),
        IdxType::I8 => body.iter().map(|&b| b as i8 as f32).collect(),
        IdxType::I16 => body
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]) as f32)
            .collect(),
        IdxType::I32 => body
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        IdxType::F32 => body
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        IdxType::F64 => body
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().expect("chunk of 8")) as f32)
            .collect(),
    };
    Ok(IdxArray {
        dtype,
        dims,
        values,
    })
}

/// Reads an IDX file (gzip or raw).
pub fn read(path: &Path) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    parse(&bytes, path)
}

/// Encodes an array as IDX bytes (used for writing and for round-trip tests).
pub fn encode(array: &IdxArray) -> Vec<u8> {
    let mut out = vec![0, 0, array.dtype.code(), array.dims.len() as u8];
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    for &v in &array.values {
        match array.dtype {
            IdxType::U8 => out.push(v as u8),
            IdxType::I8 => out.push(v as i8 as u8),
            IdxType::I16 => out.extend_from_slice(&(v as i16).to_be_bytes()),
            IdxType::I32 => out.extend_from_slice(&(v as i32).to_be_bytes()),
            IdxType::F32 => out.extend_from_slice(&v.to_be_bytes()),
            IdxType::F64 => out.extend_from_slice(&(v as f64).to_be_bytes()),
        }
    }
    out
}

/// Reads an image file (`[n, h, w]`) and an optional label file (`[n]`), checking that the
/// counts agree and labels are small non-negative integers.
pub fn read_images_and_labels(
    images: &Path,
    labels: Option<&Path>,
) -> Result<(crate::data::Matrix, Vec<usize>, Option<Vec<u32>>)> {
    let img = read(images)?;
    if img.dims.len() < 2 {
        return Err(Error::bad_file(
            images,
            format!(
                "expected an image array [n, height, width], got dimensions {:?}",
                img.dims
            ),
        ));
    }
    let n = img.dims[0];
    if n == 0 {
        return Err(Error::bad_file(images, "contains no images"));
    }
    let shape: Vec<usize> = img.dims[1..].to_vec();
    let cols: usize = shape.iter().product();
    let x = crate::data::Matrix::new(n, cols, img.values)?;
    let labels = match labels {
        None => None,
        Some(lp) => {
            let lab = read(lp)?;
            if lab.dims.len() != 1 {
                return Err(Error::bad_file(
                    lp,
                    format!("expected a label vector [n], got dimensions {:?}", lab.dims),
                ));
            }
            if lab.dims[0] != n {
                return Err(Error::bad_file(
                    lp,
                    format!(
                        "{} labels but {} has {n} images",
                        lab.dims[0],
                        images.display()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(n);
            for (i, &v) in lab.values.iter().enumerate() {
                if v < 0.0 || v.fract() != 0.0 || v > 65535.0 {
                    return Err(Error::bad_file(
                        lp,
                        format!("label {i} is {v}, not a class index"),
                    ));
                }
                out.push(v as u32);
            }
            Some(out)
        }
    };
    Ok((x, shape, labels))
}
