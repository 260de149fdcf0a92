//! Reconstruction losses. Each returns the loss summed over features for every sample, so that
//! callers can report both "per pixel" (divide by the width) and "per sample" figures.

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

use crate::kernels::recon_loss::{LogitLoss, recon_rows};
use crate::model::Activation;
use crate::model::columns::OutputColumns;

/// How far from 0 and 1 a probability is clamped where BCE is taken of an output already in
/// (0, 1), so that its log stays finite; the ONNX score repeats it.
pub const BCE_CLAMP: f64 = 1e-7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReconLoss {
    /// Squared error.
    Mse,
    /// Binary cross-entropy, computed from logits when the output unit is a sigmoid.
    Bce,
    /// Absolute error.
    L1,
}

impl ReconLoss {
    pub fn name(self) -> &'static str {
        match self {
            ReconLoss::Mse => "mse",
            ReconLoss::Bce => "bce",
            ReconLoss::L1 => "l1",
        }
    }

    /// `log p(x|z) + loss` for a sample of `dim` features: the constant that turns minus the
    /// loss into a normalised log-likelihood. Binary cross-entropy is a Bernoulli's negative
    /// log-likelihood (0); squared error is a Gaussian's with variance ½ (`−dim/2 · ln π`),
    /// absolute error a Laplace's with scale 1 (`−dim · ln 2`).
    pub fn log_normaliser(self, dim: usize) -> f64 {
        let d = dim as f64;
        match self {
            ReconLoss::Bce => 0.0,
            ReconLoss::Mse => -0.5 * d * std::f64::consts::PI.ln(),
            ReconLoss::L1 => -d * std::f64::consts::LN_2,
        }
    }
}

/// What a reconstruction is judged by: one loss for every feature, or a typed table's loss per
/// column ([`OutputColumns`]).
#[derive(Debug, Clone, Copy)]
pub enum Likelihood<'a> {
    Elementwise(ReconLoss),
    Columns(&'a OutputColumns),
}

impl From<ReconLoss> for Likelihood<'_> {
    fn from(loss: ReconLoss) -> Self {
        Likelihood::Elementwise(loss)
    }
}

/// `softplus(z) - y*z`, the BCE of `sigmoid(z)` against `y`, written so that it never
/// overflows: `max(z, 0) - y*z + log(1 + exp(-|z|))`. Valid for soft targets in [0, 1].
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<D> {
    let relu = activation::relu(logits.clone());
    let log_term = logits.clone().abs().neg().exp().log1p();
    relu - logits * target + log_term
}

/// Per-sample loss `[batch]` from the last layer's pre-activation `logits`: in one fused pass
/// on the CPU where `kernels::recon_loss` has one for this pair, else with tensor ops. `target`
/// may hold fewer rows than `logits`, a number that divides theirs: logits row `i` is then
/// compared with target row `i mod rows` (several draws stacked against one batch).
pub fn per_sample<'a>(
    likelihood: impl Into<Likelihood<'a>>,
    output: Activation,
    logits: Tensor<2>,
    target: Tensor<2>,
) -> Tensor<1> {
    let loss = match likelihood.into() {
        Likelihood::Elementwise(loss) => loss,
        Likelihood::Columns(columns) => return columns.per_sample(logits, target),
    };
    match recon_rows(logit_loss(loss, output), &logits, &target) {
        Some(rows) => rows,
        None => {
            let repeats = logits.dims()[0] / target.dims()[0].max(1);
            let target = if repeats > 1 {
                target.repeat_dim(0, repeats)
            } else {
                target
            };
            per_sample_tensor_ops(loss, output, logits, target)
        }
    }
}

/// The fused kernel for this output activation and loss, where there is one.
pub fn logit_loss(loss: ReconLoss, output: Activation) -> Option<LogitLoss> {
    match (loss, output) {
        (ReconLoss::Mse, Activation::Sigmoid) => Some(LogitLoss::SigmoidMse),
        (ReconLoss::Bce, Activation::Sigmoid) => Some(LogitLoss::SigmoidBce),
        (ReconLoss::Mse, Activation::Linear) => Some(LogitLoss::LinearMse),
        _ => None,
    }
}

/// [`per_sample`] written with burn's tensor ops, for every backend and dtype.
pub fn per_sample_tensor_ops(
    loss: ReconLoss,
    output: Activation,
    logits: Tensor<2>,
    target: Tensor<2>,
) -> Tensor<1> {
    let elementwise = match loss {
        ReconLoss::Bce if output == Activation::Sigmoid => bce_with_logits(logits, target),
        ReconLoss::Bce => {
            // Only reachable for outputs already in (0, 1); clamp keeps log finite.
            let p = output.apply(logits).clamp(BCE_CLAMP, 1.0 - BCE_CLAMP);
            let one_minus_p = p.clone().neg().add_scalar(1.0);
            let one_minus_t = target.clone().neg().add_scalar(1.0);
            (target * p.log() + one_minus_t * one_minus_p.log()).neg()
        }
        ReconLoss::Mse => {
            let diff = output.apply(logits) - target;
            diff.clone() * diff
        }
        ReconLoss::L1 => (output.apply(logits) - target).abs(),
    };
    elementwise.sum_dim(1).squeeze_dim(1)
}

/// The same losses on host slices (f64 accumulation), used by evaluation and as a reference.
/// A missing target (NaN, a typed table's) is left out, as training leaves it out.
pub fn per_sample_host(loss: ReconLoss, output: &[f32], target: &[f32]) -> f64 {
    output
        .iter()
        .zip(target)
        .filter(|(_, t)| !t.is_nan())
        .map(|(&o, &t)| {
            let (o, t) = (o as f64, t as f64);
            match loss {
                ReconLoss::Mse => (o - t) * (o - t),
                ReconLoss::L1 => (o - t).abs(),
                ReconLoss::Bce => {
                    let p = o.clamp(BCE_CLAMP, 1.0 - BCE_CLAMP);
                    -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
                }
            }
        })
        .sum()
}
