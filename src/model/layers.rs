//! Pieces shared by every model: seeded initialisation, deterministic parameter ids, and the
//! conversion of layers to and from named tensors in PyTorch's layout.

use std::collections::HashMap;

use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::model::Activation;

/// A tensor with a name and a shape, as stored in a checkpoint (row-major f32).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Hands out parameter ids in creation order. Ids must be the same every time a model of the
/// same config is built, because the optimiser's saved state is keyed by them: that is what
/// lets `--resume` restore Adam's moments onto freshly loaded weights.
#[derive(Debug, Default)]
pub struct ParamIds(u64);

impl ParamIds {
    pub fn next_id(&mut self) -> ParamId {
        self.0 += 1;
        ParamId::from(self.0)
    }
}

fn param<const D: usize>(
    id: ParamId,
    data: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Param<Tensor<D>> {
    let t = Tensor::<D>::from_data(TensorData::new(data, shape), device);
    Param::initialized(id, t.require_grad())
}

/// A linear layer `in -> out` initialised for the activation that follows it: He-uniform for
/// rectifiers, Glorot-uniform otherwise; zero bias.
pub fn init_linear(
    d_in: usize,
    d_out: usize,
    next: Activation,
    rng: &mut ChaCha8Rng,
    ids: &mut ParamIds,
    device: &Device,
) -> Linear {
    let bound = if next.is_rectifier() {
        (6.0 / d_in as f64).sqrt()
    } else {
        (6.0 / (d_in + d_out) as f64).sqrt()
    } as f32;
    let w: Vec<f32> = (0..d_in * d_out)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    Linear {
        weight: param(ids.next_id(), w, [d_in, d_out], device),
        bias: Some(param(ids.next_id(), vec![0.0; d_out], [d_out], device)),
    }
}

/// The rows of `m` as tensors of at most `size` rows each, in order.
pub fn tensor_batches<'a>(
    m: &'a crate::data::Matrix,
    size: usize,
    device: &'a Device,
) -> impl Iterator<Item = Tensor<2>> + 'a {
    (0..m.rows).step_by(size.max(1)).map(move |start| {
        let end = (start + size.max(1)).min(m.rows);
        let rows = m.data[start * m.cols..end * m.cols].to_vec();
        Tensor::<2>::from_data(TensorData::new(rows, [end - start, m.cols]), device)
    })
}

/// A `[rows, cols]` tensor of N(0, 1) draws from `rng`.
pub fn normal_tensor(rows: usize, cols: usize, rng: &mut ChaCha8Rng, device: &Device) -> Tensor<2> {
    let v = crate::data::batch::standard_normal(rows * cols, rng);
    Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), device)
}

fn tensor_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensor")
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

fn take<'a>(
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
