//! The reconstruction loss from the last layer's pre-activations in one pass on the CPU,
//! forward and backward.
//!
//! Why: written with burn's tensor ops, MSE after a sigmoid is four element-wise passes forward
//! and as many backward, and burn's sigmoid computes `exp` again in its backward; BCE from
//! logits is eight. They ran single-threaded on the thread that drives the graph, while both
//! cores sat idle: 4–5% of workload A's samples, about a tenth of its wall time
//! (BENCHMARKS.md). Here each row's loss is one pass over logits and targets, split across
//! cores by rows, and the backward pass is one more computing each element's derivative in
//! closed form. `AEKIT_LOSS=burn` selects the tensor-op formulation of `loss.rs` instead.

use std::sync::OnceLock;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use burn_flex::FlexTensor;
use rayon::prelude::*;
use wide::f32x8;

use super::gemm::{contiguous, flex, values};
use super::lanes::{self, sigmoid};
use crate::kernels::own_cpu_kernel;

/// Rows per parallel task: about 16k values of MNIST width, enough to outweigh handing the
/// task to another core.
const VALUES_PER_TASK: usize = 1 << 14;

/// The output unit and loss pairs computed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitLoss {
    /// `(σ(z) − t)²`.
    SigmoidMse,
    /// `−t·log σ(z) − (1 − t)·log(1 − σ(z))`, as `max(z, 0) − z·t + log(1 + e^(−|z|))`.
    SigmoidBce,
    /// `(z − t)²`.
    LinearMse,
}

impl LogitLoss {
    /// The loss of eight elements.
    fn values(self, z: f32x8, t: f32x8) -> f32x8 {
        match self {
            LogitLoss::SigmoidMse => {
                let d = sigmoid(z) - t;
                d * d
            }
            LogitLoss::SigmoidBce => z.max(f32x8::ZERO) - z * t + (-z.abs()).exp().ln_1p(),
            LogitLoss::LinearMse => (z - t) * (z - t),
        }
    }

    /// `(∂ℓ/∂z, ∂ℓ/∂t)` of eight elements.
    fn derivatives(self, z: f32x8, t: f32x8) -> (f32x8, f32x8) {
        let two = f32x8::splat(2.0);
        match self {
            LogitLoss::SigmoidMse => {
                let y = sigmoid(z);
                let d = two * (y - t);
                (d * y * (f32x8::ONE - y), -d)
            }
            LogitLoss::SigmoidBce => (sigmoid(z) - t, -z),
            LogitLoss::LinearMse => (two * (z - t), -two * (z - t)),
        }
    }

    #[cfg(test)]
    fn value(self, z: f32, t: f32) -> f32 {
        lanes::at(|z| self.values(z, f32x8::splat(t)), z)
    }
}

/// Rows of `width` values per parallel task.
fn rows_per_task(width: usize) -> usize {
    (VALUES_PER_TASK / width.max(1)).max(1)
}

/// Row `i` of `target` `[m, width]` for row `i` of the logits: row `i mod m`, so that `k` draws
/// stacked as `[k·m, width]` meet their one target without `k` copies of it.
fn target_row(target: &[f32], width: usize, i: usize) -> &[f32] {
    let at = i % (target.len() / width) * width;
    &target[at..at + width]
}

/// The loss of every row of `logits` `[n, width]` against its [`target_row`].
fn row_losses(kind: LogitLoss, logits: &[f32], target: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0.0; logits.len() / width.max(1)];
    let rows = rows_per_task(width);
    out.par_chunks_mut(rows)
        .zip(logits.par_chunks(rows * width))
        .enumerate()
        .for_each(|(task, (out, z))| {
            for (r, (o, z)) in out.iter_mut().zip(z.chunks(width)).enumerate() {
                let t = target_row(target, width, task * rows + r);
                *o = lanes::zip_sum(z, t, |z, t| kind.values(z, t));
            }
        });
    out
}

/// The gradient of the row losses with respect to the logits (`pick` = `.0`) or, before the
/// rows sharing a target are summed, the target (`.1`) of [`LogitLoss::derivatives`], given
/// `grad` `[n]`, the gradient of each row's loss: `[n, width]` either way.
fn row_loss_grad(
    kind: LogitLoss,
    [logits, target, grad]: [&[f32]; 3],
    width: usize,
    pick: fn((f32x8, f32x8)) -> f32x8,
) -> Vec<f32> {
    let mut out = vec![0.0; logits.len()];
    let rows = rows_per_task(width);
    out.par_chunks_mut(rows * width)
        .zip(logits.par_chunks(rows * width))
        .zip(grad.par_chunks(rows))
        .enumerate()
        .for_each(|(task, ((out, z), g))| {
            let rows_here = out.chunks_mut(width).zip(z.chunks(width)).zip(g);
            for (r, ((out, z), &g)) in rows_here.enumerate() {
                let t = target_row(target, width, task * rows + r);
                let g = f32x8::splat(g);
                lanes::zip_map(z, t, out, |z, t| g * pick(kind.derivatives(z, t)));
            }
        });
    out
}

/// `[n, width]` rows folded onto `target_rows` rows by adding every row to row `i mod
/// target_rows`: the gradient of a target each of whose rows served `n / target_rows` rows.
fn fold_rows(mut rows: Vec<f32>, width: usize, target_rows: usize) -> Vec<f32> {
    let (first, rest) = rows.split_at_mut(target_rows * width);
    for block in rest.chunks(target_rows * width) {
        first.iter_mut().zip(block).for_each(|(a, b)| *a += b);
    }
    rows.truncate(target_rows * width);
    rows
}

#[backend_extension(Flex, Autodiff)]
pub trait FusedReconLoss: Backend {
    /// The loss of every row of `logits` `[n, d]` against `target` `[n, d]`, summed over the
    /// row: `[n]`. A `target` of `[m, d]` where `m` divides `n` serves row `i` with row `i mod m`
    /// (`k` stacked draws against one batch).
    fn recon_rows(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        kind: LogitLoss,
    ) -> FloatTensor<Self>;
}

impl FusedReconLoss for Flex {
    fn recon_rows(logits: FlexTensor, target: FlexTensor, kind: LogitLoss) -> FlexTensor {
        let [n, width] = [logits.layout().shape()[0], logits.layout().shape()[1]];
        let (logits, target) = (contiguous(logits), contiguous(target));
        flex(
            row_losses(kind, values(&logits), values(&target), width),
            [n],
        )
    }
}

#[derive(Debug)]
struct FusedReconLossBackward;

impl Backward<Flex, 2> for FusedReconLossBackward {
    /// Logits, target and the loss.
    type State = (NodeId, NodeId, LogitLoss);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_logits, node_target] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (logits_state, target_state, kind) = ops.state;
        let logits = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(logits_state));
        let target = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(target_state));
        let shape = [logits.layout().shape()[0], logits.layout().shape()[1]];
        let inputs = [values(&logits), values(&target), values(&grad)];
        if let Some(node) = node_logits {
            let d_logits = row_loss_grad(kind, inputs, shape[1], |d| d.0);
            grads.register::<Flex>(node.id, flex(d_logits, shape));
        }
        if let Some(node) = node_target {
            let target_shape = [target.layout().shape()[0], shape[1]];
            let d_target = row_loss_grad(kind, inputs, shape[1], |d| d.1);
            let d_target = fold_rows(d_target, shape[1], target_shape[0]);
            grads.register::<Flex>(node.id, flex(d_target, target_shape));
        }
    }
}

impl<C: CheckpointStrategy> FusedReconLoss for Autodiff<Flex, C> {
    fn recon_rows(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        kind: LogitLoss,
    ) -> FloatTensor<Self> {
        let prep = FusedReconLossBackward.prepare::<C>([logits.node(), target.node()]);
        let run = |logits: FloatTensor<Self>, target: FloatTensor<Self>| {
            <Flex as FusedReconLoss>::recon_rows(
                logits.into_primitive(),
                target.into_primitive(),
                kind,
            )
        };
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&logits), prep.checkpoint(&target), kind);
                prep.finish(state, run(logits, target))
            }
            OpsKind::UnTracked(prep) => prep.finish(run(logits, target)),
        }
    }
}

/// The per-row loss through the kernel above, where one exists for `kind` and the tensors are
/// f32 on the CPU with at least one column (and `AEKIT_LOSS` is not `burn`); `None` otherwise.
/// `target` may have fewer rows than `logits` where their number divides the logits'.
pub fn recon_rows(
    kind: Option<LogitLoss>,
    logits: &Tensor<2>,
    target: &Tensor<2>,
) -> Option<Tensor<1>> {
    static BURN_CHOSEN: OnceLock<bool> = OnceLock::new();
    let kind = kind?;
    if !own_cpu_kernel(logits.dtype(), logits.device(), &BURN_CHOSEN, "AEKIT_LOSS")
        || target.dtype() != logits.dtype()
        || target.dims()[1] != logits.dims()[1]
        || logits.dims()[1] == 0
        || target.dims()[0] == 0
        || !logits.dims()[0].is_multiple_of(target.dims()[0])
    {
        return None;
    }
    let rows = <Dispatch as FusedReconLoss>::recon_rows(
        logits.clone().into_dispatch(),
        target.clone().into_dispatch(),
        kind,
    );
    Some(Tensor::from_dispatch(rows))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tolerance};

    use super::*;
    use crate::model::{Activation, ReconLoss, loss};

    /// Row losses and the gradients of logits and target against the tensor-op formulation of
    /// `loss::per_sample`, through a loss that weights every row differently.
    fn assert_same_as_tensor_ops(kind: LogitLoss, (n, width): (usize, usize)) {
        let device = Device::flex().autodiff();
        device.seed(11);
        let (loss, output) = match kind {
            LogitLoss::SigmoidMse => (ReconLoss::Mse, Activation::Sigmoid),
            LogitLoss::SigmoidBce => (ReconLoss::Bce, Activation::Sigmoid),
            LogitLoss::LinearMse => (ReconLoss::Mse, Activation::Linear),
        };
        assert_eq!(loss::logit_loss(loss, output), Some(kind));
        // Logits far into both tails too, where a naive log(σ) would overflow.
        let logits = Tensor::<2>::random([n, width], Distribution::Normal(0.0, 6.0), &device);
        let target = Tensor::<2>::random([n, width], Distribution::Uniform(0.0, 1.0), &device);
        let row_weights = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let logits = logits.clone().detach().require_grad();
            let target = target.clone().detach().require_grad();
            let rows = if fused {
                recon_rows(Some(kind), &logits, &target).expect("the kernel applies")
            } else {
                loss::per_sample_tensor_ops(loss, output, logits.clone(), target.clone())
            };
            let grads = (rows.clone() * row_weights.clone()).sum().backward();
            [
                rows.into_data(),
                logits.grad(&grads).expect("logits gradient").into_data(),
                target.grad(&grads).expect("target gradient").into_data(),
            ]
        };
        let (fused, reference) = (run(true), run(false));
        // Absolute slack for derivatives like σ(z) − t that cancel to ~1e-5.
        let tolerance = Tolerance::<f32>::rel_abs(1e-4, 1e-6);
        for (fused, reference) in fused.iter().zip(&reference) {
            fused.assert_approx_eq::<f32>(reference, tolerance);
        }
    }

    #[test]
    fn sigmoid_mse_matches_tensor_ops() {
        assert_same_as_tensor_ops(LogitLoss::SigmoidMse, (5, 7));
        // More rows than one task holds, so that the rows are split between tasks.
        assert_same_as_tensor_ops(LogitLoss::SigmoidMse, (300, 100));
    }

    #[test]
    fn sigmoid_bce_matches_tensor_ops() {
        assert_same_as_tensor_ops(LogitLoss::SigmoidBce, (5, 7));
        assert_same_as_tensor_ops(LogitLoss::SigmoidBce, (300, 100));
    }

    #[test]
    fn linear_mse_matches_tensor_ops() {
        assert_same_as_tensor_ops(LogitLoss::LinearMse, (300, 100));
    }

    /// A target of m rows against k·m rows of logits: the same row losses and logit gradients
    /// as the target repeated k times, and the target's gradient the sum over its k uses.
    #[test]
    fn a_shorter_target_serves_stacked_draws() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let (k, m, width) = (5, 7, 33);
        let logits = Tensor::<2>::random([k * m, width], Distribution::Normal(0.0, 3.0), &device);
        let target = Tensor::<2>::random([m, width], Distribution::Uniform(0.0, 1.0), &device);
        let row_weights = Tensor::<1>::random([k * m], Distribution::Normal(0.0, 1.0), &device);
        for kind in [LogitLoss::SigmoidBce, LogitLoss::SigmoidMse] {
            let run = |shared: bool| {
                let logits = logits.clone().detach().require_grad();
                let target = target.clone().detach().require_grad();
                let served = if shared {
                    target.clone()
                } else {
                    target.clone().repeat_dim(0, k)
                };
                let rows = recon_rows(Some(kind), &logits, &served).expect("the kernel applies");
                let grads = (rows.clone() * row_weights.clone()).sum().backward();
                [
                    rows.into_data(),
                    logits.grad(&grads).expect("logits gradient").into_data(),
                    target.grad(&grads).expect("target gradient").into_data(),
                ]
            };
            let (shared, repeated) = (run(true), run(false));
            for (shared, repeated) in shared.iter().zip(&repeated) {
                shared.assert_approx_eq::<f32>(repeated, Tolerance::<f32>::rel_abs(1e-5, 1e-6));
            }
        }
        let odd = Tensor::<2>::zeros([3, width], &device);
        assert!(recon_rows(Some(LogitLoss::SigmoidBce), &logits, &odd).is_none());
    }

    /// The closed forms themselves against central differences of `value` (f32, step 0.01).
    #[test]
    fn derivatives_match_finite_differences() {
        for kind in [
            LogitLoss::SigmoidMse,
            LogitLoss::SigmoidBce,
            LogitLoss::LinearMse,
        ] {
            for (z, t) in [(-3.0f32, 0.2f32), (0.4, 0.9), (2.5, 0.0), (0.0, 1.0)] {
                let (d_z, d_t) = kind.derivatives(f32x8::splat(z), f32x8::splat(t));
                let (d_z, d_t) = (d_z.to_array()[0], d_t.to_array()[0]);
                let h = 1e-2;
                let fd_z = (kind.value(z + h, t) - kind.value(z - h, t)) / (2.0 * h);
                let fd_t = (kind.value(z, t + h) - kind.value(z, t - h)) / (2.0 * h);
                assert!(
                    (d_z - fd_z).abs() < 2e-3,
                    "{kind:?} ∂z at {z},{t}: {d_z} vs {fd_z}"
                );
                assert!(
                    (d_t - fd_t).abs() < 2e-3,
                    "{kind:?} ∂t at {z},{t}: {d_t} vs {fd_t}"
                );
            }
        }
    }
}
