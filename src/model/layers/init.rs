//! Seeded initialisation and deterministic parameter ids.

use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Activation;
use crate::model::layers::Kernel;

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

pub(crate) fn param<const D: usize>(
    id: ParamId,
    data: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Param<Tensor<D>> {
    let t = Tensor::<D>::from_data(TensorData::new(data, shape), device);
    Param::initialized(id, t.require_grad())
}

/// How weights are drawn before training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// He-uniform before rectifiers, Glorot-uniform otherwise; zero biases.
    #[default]
    Auto,
    /// Glorot-uniform everywhere, zero biases (Keras's default).
    Glorot,
    /// PyTorch's default for nn.Linear and nn.Conv2d: weights and biases U(±1/√fan_in).
    Torch,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::Auto => "auto",
            Init::Glorot => "glorot",
            Init::Torch => "torch",
        }
    }

    /// Uniform bounds `(weight, bias)` for a layer with these fans, followed by `next`.
    pub fn bounds(self, fan_in: usize, fan_out: usize, next: Activation) -> (f32, f32) {
        let glorot = (6.0 / (fan_in + fan_out) as f64).sqrt();
        let (w, b) = match self {
            Init::Auto if next.is_rectifier() => ((6.0 / fan_in as f64).sqrt(), 0.0),
            Init::Auto | Init::Glorot => (glorot, 0.0),
            Init::Torch => {
                let b = 1.0 / (fan_in as f64).sqrt();
                (b, b)
            }
        };
        (w as f32, b as f32)
    }
}

/// `n` draws from U(-bound, bound) (all zero when the bound is zero).
pub fn uniform(n: usize, bound: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    if bound <= 0.0 {
        return vec![0.0; n];
    }
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// Creates a model's parameters: seeded values drawn by the initialisation scheme, and ids in
/// creation order (see [`ParamIds`]).
pub struct ParamFactory<'a> {
    rng: ChaCha8Rng,
    ids: ParamIds,
    init: Init,
    device: &'a Device,
    /// Parameters created so far (see `reserve`).
    reserved: u64,
}

impl<'a> ParamFactory<'a> {
    pub fn new(rng: ChaCha8Rng, init: Init, device: &'a Device) -> Self {
        Self {
            rng,
            ids: ParamIds::default(),
            init,
            device,
            reserved: 0,
        }
    }

    /// A linear layer `in -> out` initialised for the activation that follows it.
    pub fn linear(&mut self, d_in: usize, d_out: usize, next: Activation) -> Result<Linear> {
        self.reserve(&[d_in, d_out], d_out)?;
        let (wb, bb) = self.init.bounds(d_in, d_out, next);
        let w = uniform(d_in * d_out, wb, &mut self.rng);
        let b = uniform(d_out, bb, &mut self.rng);
        Ok(Linear {
            weight: param(self.ids.next_id(), w, [d_in, d_out], self.device),
            bias: Some(param(self.ids.next_id(), b, [d_out], self.device)),
        })
    }

    /// A free `[rows, cols]` matrix drawn from U(-bound, bound).
    pub fn matrix(&mut self, rows: usize, cols: usize, bound: f32) -> Result<Param<Tensor<2>>> {
        self.reserve(&[rows, cols], 0)?;
        let v = uniform(rows * cols, bound, &mut self.rng);
        Ok(param(self.ids.next_id(), v, [rows, cols], self.device))
    }

    /// Counts a tensor of `shape` (and `extra` values) against the memory the machine has
    /// before anything is allocated: training holds each parameter four times (weight,
    /// gradient, Adam's two moments), and an allocation beyond memory aborts the process.
    fn reserve(&mut self, shape: &[usize], extra: usize) -> Result<()> {
        let values = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .and_then(|n| n.checked_add(extra as u64))
            .and_then(|n| n.checked_add(self.reserved))
            .unwrap_or(u64::MAX);
        self.reserved = values;
        let needed = values.saturating_mul(4 * 4);
        if let Some(available) = crate::device::available_memory()
            && needed > available
        {
            return Err(crate::error::Error::invalid(format!(
                "the model needs {} for its {values} parameters (weights, gradients and the optimiser's moments), more than the {} of memory available: make its layers smaller",
                crate::device::human_bytes(needed),
                crate::device::human_bytes(available)
            )));
        }
        Ok(())
    }

    pub fn device(&self) -> &Device {
        self.device
    }

    /// This factory with ids handed out after `last`: for layers that join a built network
    /// (a classifier's head) and must not share an id with it, since the optimiser keys its
    /// state by id.
    pub fn with_ids_after(mut self, last: u64) -> Self {
        self.ids = ParamIds(last);
        self
    }

    /// A convolution kernel of `shape` (PyTorch's layout) with `bias_len` biases.
    pub fn kernel(
        &mut self,
        shape: [usize; 4],
        bias_len: usize,
        fans: (usize, usize),
        next: Activation,
    ) -> Result<Kernel> {
        self.reserve(&shape, bias_len)?;
        let (wb, bb) = self.init.bounds(fans.0.max(1), fans.1.max(1), next);
        let w = uniform(shape.iter().product(), wb, &mut self.rng);
        let b = uniform(bias_len, bb, &mut self.rng);
        Ok(Kernel {
            weight: param(self.ids.next_id(), w, shape, self.device),
            bias: param(self.ids.next_id(), b, [bias_len], self.device),
        })
    }
}
