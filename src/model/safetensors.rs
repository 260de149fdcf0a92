//! Weights on disk as safetensors, PyTorch's names and layouts, with the model config in the
//! metadata. The header is written with sorted keys, so the same weights always give the same
//! bytes. The metadata also holds the SHA-256 of the tensors (`aekit_sha256`), checked on
//! every read, so a flipped bit is an error rather than a silently different model; and
//! non-finite weights are refused.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::{ModelConfig, NamedTensor};

/// Serialises named tensors as safetensors with the model config in the metadata.
pub fn encode(tensors: &[NamedTensor], config: &ModelConfig) -> Result<Vec<u8>> {
    let config = serde_json::to_string(config).map_err(|e| Error::Serialize(e.to_string()))?;
    encode_with(tensors, "aekit_model", config)
}

/// Serialises named tensors as safetensors with `value` under `key` in the metadata (beside
/// the checksum and the producer).
pub fn encode_with(tensors: &[NamedTensor], key: &str, value: String) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            ::safetensors::tensor::TensorView::new(::safetensors::Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::invalid(format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([
        (
            CHECKSUM_KEY.to_string(),
            checksum(
                tensors
                    .iter()
                    .map(|t| t.name.as_str())
                    .zip(bytes.iter().map(Vec::as_slice)),
            ),
        ),
        ("format".to_string(), "pt".to_string()),
        (
            "producer".to_string(),
            format!("aekit {}", env!("CARGO_PKG_VERSION")),
        ),
        (key.to_string(), value),
    ]);
    let file =
        ::safetensors::serialize(views, Some(meta)).map_err(|e| Error::Serialize(e.to_string()))?;
    with_sorted_header(file)
}

/// The same file with its JSON header's keys sorted: the crate writes the metadata from a
/// `HashMap`, whose order changes from run to run.
fn with_sorted_header(file: Vec<u8>) -> Result<Vec<u8>> {
    let bad = |e: String| Error::Serialize(format!("safetensors header: {e}"));
    let len = u64::from_le_bytes(file[..8].try_into().map_err(|_| bad("too short".into()))?);
    let end = 8 + usize::try_from(len).map_err(|e| bad(e.to_string()))?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&file[8..end]).map_err(|e| bad(e.to_string()))?;
    let sorted: BTreeMap<String, serde_json::Value> = header
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::Object(m) => {
                let m: BTreeMap<String, serde_json::Value> = m.into_iter().collect();
                serde_json::to_value(m).map(|v| (k, v))
            }
            v => Ok((k, v)),
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut text = serde_json::to_string(&sorted).map_err(|e| bad(e.to_string()))?;
    // The data must start 8-byte aligned; the format pads the header with spaces.
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + file.len() - end);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&file[end..]);
    Ok(out)
}

const CHECKSUM_KEY: &str = "aekit_sha256";

/// SHA-256 of the tensors' bytes, concatenated in name order (independent of the layout).
fn checksum<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by_key(|(name, _)| *name);
    let mut hash = Sha256::new();
    for (_, bytes) in sorted {
        hash.update(bytes);
    }
    format!("{:x}", hash.finalize())
}

/// Reads every f32 tensor of a safetensors file, checking the checksum aekit wrote (files
/// from elsewhere have none) and that every value is finite.
pub fn read(path: &Path) -> Result<HashMap<String, NamedTensor>> {
    let bytes = crate::io::read_file(path)?;
    let st = ::safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bad_file(path, format!("not a valid safetensors file: {e}")))?;
    let (_, header) = ::safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::bad_file(path, format!("not a valid safetensors file: {e}")))?;
    let views = st.tensors();
    if let Some(want) = header.metadata().as_ref().and_then(|m| m.get(CHECKSUM_KEY)) {
        let got = checksum(views.iter().map(|(n, v)| (n.as_str(), v.data())));
        if *want != got {
            return Err(Error::bad_file(
                path,
                "the weights do not match their checksum: the file is corrupt",
            ));
        }
    }
    let mut out = HashMap::new();
    for (name, view) in views {
        if view.dtype() != ::safetensors::Dtype::F32 {
            return Err(Error::bad_file(
                path,
                format!("tensor '{name}' is {:?}, expected F32", view.dtype()),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::bad_file(
                path,
                format!("tensor '{name}' holds NaN or infinite values"),
            ));
        }
        out.insert(
            name.clone(),
            NamedTensor {
                name,
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// The JSON value aekit wrote under `key` in a safetensors file's metadata.
pub fn metadata<T: serde::de::DeserializeOwned>(path: &Path, key: &str) -> Result<T> {
    let bytes = crate::io::read_file(path)?;
    let (_, header) = ::safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::bad_file(path, format!("not a valid safetensors file: {e}")))?;
    let text = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(key))
        .ok_or_else(|| Error::bad_file(path, format!("no '{key}' in the metadata")))?;
    serde_json::from_str(text).map_err(|e| Error::bad_file(path, format!("'{key}': {e}")))
}
