//! Element-wise activations selectable per layer.

use burn::tensor::{Tensor, activation as act};
use serde::{Deserialize, Serialize};

use crate::kernels::activation::{SmoothActivation, activate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Relu,
    /// Leaky ReLU with negative slope 0.01 (PyTorch's default).
    LeakyRelu,
    Sigmoid,
    Tanh,
    Gelu,
    Elu,
    Silu,
    Linear,
}

impl Activation {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => act::relu(x),
            Activation::LeakyRelu => act::leaky_relu(x, 0.01),
            Activation::Sigmoid => {
                activate(&x, SmoothActivation::Sigmoid).unwrap_or_else(|| act::sigmoid(x))
            }
            Activation::Tanh => {
                activate(&x, SmoothActivation::Tanh).unwrap_or_else(|| act::tanh(x))
            }
            Activation::Gelu => act::gelu(x),
            Activation::Elu => act::elu(x, 1.0),
            Activation::Silu => act::silu(x),
            Activation::Linear => x,
        }
    }

    /// The same function on one host value, for code that works outside tensors.
    pub fn apply_scalar(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu => {
                if x >= 0.0 {
                    x
                } else {
                    0.01 * x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => {
                // Exact GELU: x * Phi(x), with Phi from erf.
                0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
            }
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp() - 1.0
                }
            }
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Linear => x,
        }
    }

    /// Whether He initialisation (for rectifier-like units) suits this activation better than
    /// Glorot's.
    pub fn is_rectifier(self) -> bool {
        matches!(
            self,
            Activation::Relu
                | Activation::LeakyRelu
                | Activation::Gelu
                | Activation::Elu
                | Activation::Silu
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Elu => "elu",
            Activation::Silu => "silu",
            Activation::Linear => "linear",
        }
    }
}

/// Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), enough for a host-side reference.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}
