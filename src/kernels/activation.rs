//! The tanh and logistic sigmoid activations on the CPU, eight values at a time, with a
//! backward pass from the saved output.
//!
//! Why: burn-flex computes `tanh` with libm's scalar `tanhf` (which calls `expm1f`), and burn's
//! autodiff recomputes it in the backward pass before four more element-wise passes for
//! `1 − y²`; in the IWAE paper's 784-200-200-50 tanh network those calls were a third of a
//! step. Here the forward pass is one vectorised pass split across cores, and the backward one
//! more: `grad·(1 − y²)` for tanh, `grad·y(1 − y)` for the sigmoid, from the output kept.
//! `AEKIT_ACTIVATION=burn` selects burn's own.

use std::sync::OnceLock;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Shape, Tensor, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;
use wide::f32x8;

use super::gemm::{contiguous, values};
use super::lanes::{self, sigmoid};
use crate::kernels::own_cpu_kernel;

/// Values per parallel task, as in `recon_loss`.
const VALUES_PER_TASK: usize = 1 << 14;

/// The activations computed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmoothActivation {
    Tanh,
    Sigmoid,
}

impl SmoothActivation {
    fn forward(self, x: f32x8) -> f32x8 {
        match self {
            SmoothActivation::Tanh => x.tanh(),
            SmoothActivation::Sigmoid => sigmoid(x),
        }
    }

    /// The derivative written through the output `y`.
    fn derivative(self, y: f32x8) -> f32x8 {
        match self {
            SmoothActivation::Tanh => f32x8::ONE - y * y,
            SmoothActivation::Sigmoid => y * (f32x8::ONE - y),
        }
    }
}

/// `f(a, b, out)` over matching pieces of `a` and `b` on every core, into a tensor of `shape`.
fn parallel_map(
    shape: &Shape,
    [a, b]: [&[f32]; 2],
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    let mut out = vec![0.0; a.len()];
    out.par_chunks_mut(VALUES_PER_TASK)
        .zip(a.par_chunks(VALUES_PER_TASK))
        .zip(b.par_chunks(VALUES_PER_TASK))
        .for_each(|((out, a), b)| f(a, b, out));
    FlexTensor::from_data(TensorData::new(out, shape.clone()))
}

#[backend_extension(Flex, Autodiff)]
pub trait FusedActivation: Backend {
    /// `kind` applied to every value of `x`, any shape.
    fn activate(x: FloatTensor<Self>, kind: SmoothActivation) -> FloatTensor<Self>;
}

impl FusedActivation for Flex {
    fn activate(x: FlexTensor, kind: SmoothActivation) -> FlexTensor {
        let x = contiguous(x);
        let v = values(&x);
        // A map of one slice through the two-slice helper: the second is ignored.
        parallel_map(x.layout().shape(), [v, v], |x, _, out| {
            lanes::map(x, out, |v| kind.forward(v))
        })
    }
}

#[derive(Debug)]
struct FusedActivationBackward;

impl Backward<Flex, 1> for FusedActivationBackward {
    /// The forward pass's output and the activation.
    type State = (FlexTensor, SmoothActivation);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let (output, kind) = ops.state;
        let output = contiguous(output);
        let d_x = parallel_map(
            output.layout().shape(),
            [values(&grad), values(&output)],
            |g, y, out| lanes::zip_map(g, y, out, |g, y| g * kind.derivative(y)),
        );
        grads.register::<Flex>(node.id, d_x);
    }
}

impl<C: CheckpointStrategy> FusedActivation for Autodiff<Flex, C> {
    fn activate(x: FloatTensor<Self>, kind: SmoothActivation) -> FloatTensor<Self> {
        let prep = FusedActivationBackward.prepare::<C>([x.node()]);
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = <Flex as FusedActivation>::activate(x.into_primitive(), kind);
                prep.finish((y.clone(), kind), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as FusedActivation>::activate(
                x.into_primitive(),
                kind,
            )),
        }
    }
}

/// `kind` of `x` through the kernel above where `x` is f32 on the CPU (and `AEKIT_ACTIVATION`
/// is not `burn`); `None` otherwise.
pub fn activate<const D: usize>(x: &Tensor<D>, kind: SmoothActivation) -> Option<Tensor<D>> {
    static BURN_CHOSEN: OnceLock<bool> = OnceLock::new();
    if !own_cpu_kernel(x.dtype(), x.device(), &BURN_CHOSEN, "AEKIT_ACTIVATION") {
        return None;
    }
    let y = <Dispatch as FusedActivation>::activate(x.clone().into_dispatch(), kind);
    Some(Tensor::from_dispatch(y))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tolerance, activation as act};

    use super::*;
    use crate::kernels::output_and_input_grad;

    /// Values and gradients against burn's own tanh and sigmoid, through a loss that weights
    /// every element differently, on a 3-D tensor longer than one task.
    #[test]
    fn activations_match_burns_values_and_gradients() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let x = Tensor::<3>::random([3, 70, 101], Distribution::Normal(0.0, 3.0), &device);
        let weights = Tensor::<3>::random([3, 70, 101], Distribution::Normal(0.0, 1.0), &device);
        for kind in [SmoothActivation::Tanh, SmoothActivation::Sigmoid] {
            let run = |ours: bool| {
                output_and_input_grad(&x, &weights, |x| match (ours, kind) {
                    (true, _) => activate(x, kind).expect("the kernel applies"),
                    (false, SmoothActivation::Tanh) => act::tanh(x.clone()),
                    (false, SmoothActivation::Sigmoid) => act::sigmoid(x.clone()),
                })
            };
            let (ours, burns) = (run(true), run(false));
            for (ours, burns) in ours.iter().zip(&burns) {
                ours.assert_approx_eq::<f32>(burns, Tolerance::<f32>::rel_abs(1e-5, 1e-6));
            }
        }
    }
}
