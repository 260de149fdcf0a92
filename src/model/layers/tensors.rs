//! Named tensors in PyTorch's layout, the conversion of layers to and from them, and
//! host/tensor helpers.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::model::layers::init::param;

/// A tensor with a name and a shape, as stored in a checkpoint (row-major f32).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The weights of a convolution or transposed convolution, in PyTorch's layout:
/// `[out, in, kh, kw]` for a convolution, `[in, out, kh, kw]` for a transposed one.
#[derive(Module, Debug)]
pub struct Kernel {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
}

/// `prefix.weight` and `prefix.bias` of a kernel, as stored.
pub fn export_kernel(prefix: &str, k: &Kernel, out: &mut Vec<NamedTensor>) {
    let w = k.weight.val();
    out.push(NamedTensor {
        name: format!("{prefix}.weight"),
        shape: w.dims().to_vec(),
        data: tensor_values(w),
    });
    let b = k.bias.val();
    out.push(NamedTensor {
        name: format!("{prefix}.bias"),
        shape: b.dims().to_vec(),
        data: tensor_values(b),
    });
}

/// Replaces the values of `k` by `prefix.weight`/`prefix.bias` from `tensors`, keeping the ids.
pub fn import_kernel(
    prefix: &str,
    k: Kernel,
    tensors: &HashMap<String, NamedTensor>,
) -> Result<Kernel> {
    let device = k.weight.val().device();
    let shape = k.weight.val().dims();
    let [n] = k.bias.val().dims();
    let w = take(tensors, &format!("{prefix}.weight"), &shape)?;
    let b = take(tensors, &format!("{prefix}.bias"), &[n])?;
    Ok(Kernel {
        weight: param(k.weight.id, w.data.clone(), shape, &device),
        bias: param(k.bias.id, b.data.clone(), [n], &device),
    })
}

/// The rows of `m` as tensors of at most `size` rows each, in order.
pub fn tensor_batches<'a>(
    m: &'a crate::data::Matrix,
    size: usize,
    device: &'a Device,
) -> impl Iterator<Item = Tensor<2>> + 'a {
    (0..m.rows)
        .step_by(size.max(1))
        .map(move |start| rows_tensor(m, start..(start + size.max(1)).min(m.rows), device))
}

/// Rows `rows` of `m` as a `[rows, cols]` tensor, as a network reads them: missing values
/// (NaN, a typed table's) filled with 0.
pub fn rows_tensor(
    m: &crate::data::Matrix,
    rows: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<2> {
    let values: Vec<f32> = m.data[rows.start * m.cols..rows.end * m.cols]
        .iter()
        .map(|&v| missing_as_zero(v))
        .collect();
    Tensor::<2>::from_data(TensorData::new(values, [rows.len(), m.cols]), device)
}

/// Rows `rows` of `m` as a `[rows, cols]` tensor with missing values kept (NaN): a target,
/// whose missing values the loss leaves out.
pub fn target_tensor(
    m: &crate::data::Matrix,
    rows: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<2> {
    let values = m.data[rows.start * m.cols..rows.end * m.cols].to_vec();
    Tensor::<2>::from_data(TensorData::new(values, [rows.len(), m.cols]), device)
}

/// Missing values (NaN) set to 0: after a typed table's scaling, a numeric column's centre and
/// a categorical column's "none of the levels".
pub fn fill_missing(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = missing_as_zero(*v);
    }
}

/// A value as the encoder reads it: a missing one (NaN) as 0.
#[inline]
fn missing_as_zero(v: f32) -> f32 {
    if v.is_nan() { 0.0 } else { v }
}

/// A `[rows, cols]` tensor of N(0, 1) draws from `rng`.
pub fn normal_tensor(rows: usize, cols: usize, rng: &mut ChaCha8Rng, device: &Device) -> Tensor<2> {
    let v = crate::data::batch::standard_normal(rows * cols, rng);
    Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), device)
}

/// A `[rows, cols]` mask of `keep` where a uniform draw from `rng` is at least `p`, 0 elsewhere:
/// masking noise with `keep = 1`, inverted dropout with `keep = 1 / (1 - p)`.
pub fn bernoulli_mask(
    rows: usize,
    cols: usize,
    p: f32,
    keep: f32,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Tensor<2> {
    use rand::Rng;
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
        .collect();
    Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), device)
}

pub fn tensor_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensor")
}

/// A `[rows, cols]` tensor as a host matrix.
pub fn tensor_matrix(t: Tensor<2>) -> crate::data::Matrix {
    let [rows, cols] = t.dims();
    crate::data::Matrix {
        rows,
        cols,
        data: tensor_values(t),
    }
}

/// `prefix.weight` as `[out, in]` (PyTorch's nn.Linear layout) and `prefix.bias` as `[out]`.
pub fn export_linear(prefix: &str, layer: &Linear, out: &mut Vec<NamedTensor>) {
    let w = layer.weight.val();
    let [d_in, d_out] = w.dims();
    out.push(NamedTensor {
        name: format!("{prefix}.weight"),
        shape: vec![d_out, d_in],
        data: tensor_values(w.transpose()),
    });
    if let Some(b) = &layer.bias {
        out.push(NamedTensor {
            name: format!("{prefix}.bias"),
            shape: vec![d_out],
            data: tensor_values(b.val()),
        });
    }
}

pub(crate) fn take<'a>(
    tensors: &'a HashMap<String, NamedTensor>,
    name: &str,
    shape: &[usize],
) -> Result<&'a NamedTensor> {
    let t = tensors.get(name).ok_or_else(|| {
        Error::mismatch(format!(
            "checkpoint has no tensor '{name}': it was saved from another model"
        ))
    })?;
    if t.shape != shape {
        return Err(Error::mismatch(format!(
            "checkpoint tensor '{name}' has shape {:?}, this model needs {shape:?}: it was saved from another model",
            t.shape
        )));
    }
    Ok(t)
}

/// Replaces the values of `layer` by `prefix.weight`/`prefix.bias` from `tensors`, keeping the
/// parameter ids.
pub fn import_linear(
    prefix: &str,
    layer: Linear,
    tensors: &HashMap<String, NamedTensor>,
) -> Result<Linear> {
    let w = layer.weight.val();
    let device = w.device();
    let [d_in, d_out] = w.dims();
    let wt = take(tensors, &format!("{prefix}.weight"), &[d_out, d_in])?;
    let weight_t = Tensor::<2>::from_data(TensorData::new(wt.data.clone(), [d_out, d_in]), &device)
        .transpose();
    // Materialise the transpose so the parameter is a plain contiguous leaf.
    let weight_t = Tensor::<2>::from_data(weight_t.into_data(), &device);
    let weight = Param::initialized(layer.weight.id, weight_t.require_grad());
    let bias = match layer.bias {
        None => None,
        Some(b) => {
            let bt = take(tensors, &format!("{prefix}.bias"), &[d_out])?;
            Some(param(b.id, bt.data.clone(), [d_out], &device))
        }
    };
    Ok(Linear { weight, bias })
}
