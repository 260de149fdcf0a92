//! Fully connected layers on the CPU: `x·W + b` as one `gemm` call that adds onto the bias,
//! forward and backward.
//!
//! Why: burn computes a linear layer as a matrix product and then a separate broadcast add of
//! the bias, and burn-flex allocates every product's output zero-filled as bytes and then
//! copies it into an aligned buffer: three passes over each output before the product writes
//! it. Encoding with a dense autoencoder ran 15% faster without them (BENCHMARKS.md). Here the output starts as the bias and the product accumulates onto
//! it; the gradients are the two products `g·Wᵀ`, `xᵀ·g` and the column sums of `g`, written
//! straight into their buffers. Other devices (the GPU backend) and f64 keep burn's `linear`.

use std::sync::OnceLock;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::gemm::{MatRef, contiguous, flex, matmul, parallelism_for, product, values};
use crate::kernels::own_cpu_kernel;

/// Inference batches of 2 to this many rows take [`few_rows_product`].
const FEW_ROWS: usize = 64;

/// `x·W + b` for `x` `[n, k]`, `W` `[k, m]`, `b` `[m]`; `inference` lets batches of a few rows
/// take faer's product (training keeps `gemm` at every size, so trained weights do not move).
fn forward(x: &[f32], weight: &[f32], bias: &[f32], inference: bool) -> Vec<f32> {
    let (k, m) = (weight.len() / bias.len(), bias.len());
    let n = x.len() / k;
    let mut y = Vec::with_capacity(n * m);
    for _ in 0..n {
        y.extend_from_slice(bias);
    }
    if inference && (2..=FEW_ROWS).contains(&n) {
        few_rows_product(&mut y, x, weight, (n, m, k));
        return y;
    }
    let a = MatRef::rows(x, k);
    let b = MatRef::rows(weight, m);
    matmul(&mut y, (n, m, k), a, b, true, parallelism_for(n, m, k));
    y
}

/// `y += x·W` for a few rows through faer: `gemm`'s path for so few rows is slow (one 8×784 by
/// 784×1000 product: 384 µs through `gemm`, 211 µs through faer on one thread, less on both).
/// A single row stays with `gemm`'s matrix-vector kernel, as fast and without a hand-off.
fn few_rows_product(y: &mut [f32], x: &[f32], weight: &[f32], (n, m, k): (usize, usize, usize)) {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, Par};
    let par = if n * m * k >= 1 << 18 {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    matmul(
        faer::MatMut::from_row_major_slice_mut(y, n, m),
        Accum::Add,
        faer::MatRef::from_row_major_slice(x, n, k),
        faer::MatRef::from_row_major_slice(weight, k, m),
        1.0f32,
        par,
    );
    clear_upper_vector_state();
}

/// faer's AVX-512 kernels return with the upper halves of the vector registers dirty; every
/// legacy-SSE instruction after that (libm's `expf` in the sigmoid that follows a decoder)
/// then paid a transition penalty: decoding 8 rows took 3,100 µs instead of 430.
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: `vzeroupper` zeroes bits 128 and up of the vector registers, which hold
        // nothing live between Rust functions (the ABI keeps no vector state across calls).
        unsafe { std::arch::asm!("vzeroupper", options(nomem, nostack)) };
    }
}

/// `g·Wᵀ`: the gradient with respect to the input.
fn input_grad(grad: &[f32], weight: &[f32], [k, m]: [usize; 2]) -> Vec<f32> {
    let n = grad.len() / m;
    let (a, b) = (MatRef::rows(grad, m), MatRef::transposed(weight, m));
    product((n, k, m), a, b, parallelism_for(n, k, m))
}

/// `xᵀ·g`: the gradient with respect to the weights.
fn weight_grad(x: &[f32], grad: &[f32], [k, m]: [usize; 2]) -> Vec<f32> {
    let n = grad.len() / m;
    let (a, b) = (MatRef::transposed(x, k), MatRef::rows(grad, m));
    product((k, m, n), a, b, parallelism_for(k, m, n))
}

/// The sums of `grad` `[n, m]` over its rows: the bias's gradient, in a fixed order.
fn column_sums(grad: &[f32], m: usize) -> Vec<f32> {
    let mut sums = vec![0.0; m];
    for row in grad.chunks(m) {
        sums.iter_mut().zip(row).for_each(|(s, g)| *s += g);
    }
    sums
}

#[backend_extension(Flex, Autodiff)]
pub trait GemmLinear: Backend {
    /// `x·W + b`, `x` `[n, k]`, `weight` `[k, m]`, `bias` `[m]`.
    fn gemm_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The forward product on burn-flex tensors (see [`forward`]).
fn flex_forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    inference: bool,
) -> FlexTensor {
    let n = x.layout().shape()[0];
    let m = bias.layout().shape()[0];
    let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
    flex(
        forward(values(&x), values(&weight), values(&bias), inference),
        [n, m],
    )
}

impl GemmLinear for Flex {
    /// Called directly (not through the autodiff backend): inference.
    fn gemm_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        flex_forward(x, weight, bias, true)
    }
}

#[derive(Debug)]
struct GemmLinearBackward;

impl Backward<Flex, 3> for GemmLinearBackward {
    /// The input and the weight, checkpointed.
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state) = ops.state;
        let (n, m) = (grad.layout().shape()[0], grad.layout().shape()[1]);
        if let Some(node) = node_x {
            let weight = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(weight_state));
            let k = weight.layout().shape()[0];
            let dx = input_grad(values(&grad), values(&weight), [k, m]);
            grads.register::<Flex>(node.id, flex(dx, [n, k]));
        }
        if let Some(node) = node_weight {
            let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
            let k = x.layout().shape()[1];
            let dw = weight_grad(values(&x), values(&grad), [k, m]);
            grads.register::<Flex>(node.id, flex(dw, [k, m]));
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, flex(column_sums(values(&grad), m), [m]));
        }
    }
}

impl<C: CheckpointStrategy> GemmLinear for Autodiff<Flex, C> {
    fn gemm_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let prep = GemmLinearBackward.prepare::<C>([x.node(), weight.node(), bias.node()]);
        let run = |x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>| {
            flex_forward(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                false,
            )
        };
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                prep.finish(state, run(x, weight, bias))
            }
            OpsKind::UnTracked(prep) => prep.finish(run(x, weight, bias)),
        }
    }
}

/// `layer` applied to `x` `[n, d_input]`: through the kernels above for f32 on the CPU with a
/// bias (`AEKIT_LINEAR=burn` selects burn's), through burn's `Linear` otherwise.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    static BURN_CHOSEN: OnceLock<bool> = OnceLock::new();
    match &layer.bias {
        Some(bias) if own_cpu_kernel(x.dtype(), x.device(), &BURN_CHOSEN, "AEKIT_LINEAR") => {
            let y = <Dispatch as GemmLinear>::gemm_linear(
                x.into_dispatch(),
                layer.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            );
            Tensor::from_dispatch(y)
        }
        _ => layer.forward(x),
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution, Tolerance};

    use super::*;

    /// Output and the gradients of input, weight and bias of `linear` against burn's
    /// `Linear::forward`, through a loss that weights every output differently.
    fn assert_same_as_burn(n: usize, k: usize, m: usize, transposed_input: bool) {
        let device = Device::flex().autodiff();
        device.seed(7);
        let layer = LinearConfig::new(k, m).init(&device);
        let x = if transposed_input {
            Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device).transpose()
        } else {
            Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &device)
        };
        let weights = Tensor::<2>::random([n, m], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().detach().require_grad();
            let y = if ours {
                linear(&layer, x.clone())
            } else {
                layer.forward(x.clone())
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            let bias = layer.bias.as_ref().expect("a bias");
            [
                y.into_data(),
                x.grad(&grads).expect("input gradient").into_data(),
                layer
                    .weight
                    .grad(&grads)
                    .expect("weight gradient")
                    .into_data(),
                bias.grad(&grads).expect("bias gradient").into_data(),
            ]
        };
        let (ours, burn) = (run(true), run(false));
        // Adding the bias before or after the product rounds differently near zero.
        let tolerance = Tolerance::<f32>::rel_abs(2e-5, 1e-6);
        let names = [
            "output",
            "input gradient",
            "weight gradient",
            "bias gradient",
        ];
        for ((name, a), b) in names.iter().zip(&ours).zip(&burn) {
            println!("{name}");
            a.assert_approx_eq::<f32>(b, tolerance);
        }
    }

    #[test]
    fn small_layer_equals_burns() {
        assert_same_as_burn(5, 7, 3, false);
    }

    #[test]
    fn layer_large_enough_for_both_cores_equals_burns() {
        assert_same_as_burn(256, 784, 300, false);
    }

    #[test]
    fn strided_input_equals_burns() {
        assert_same_as_burn(33, 20, 9, true);
    }

    /// Inference batches of a few rows take faer's product; one row, larger batches and
    /// training take `gemm`.
    #[test]
    fn inference_of_a_few_rows_equals_burns() {
        let device = Device::flex();
        device.seed(3);
        for (k, m) in [(300, 70), (30, 250), (1000, 784)] {
            let layer = LinearConfig::new(k, m).init(&device);
            for n in [1, 2, 8, FEW_ROWS, FEW_ROWS + 1] {
                let x = Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &device);
                let expected = layer.forward(x.clone()).into_data();
                linear(&layer, x)
                    .into_data()
                    .assert_approx_eq::<f32>(&expected, Tolerance::rel_abs(2e-5, 1e-5));
            }
        }
    }

    #[test]
    fn layer_without_bias_keeps_burns_path() {
        let device = Device::flex();
        let layer = LinearConfig::new(4, 2).with_bias(false).init(&device);
        let x = Tensor::<2>::ones([3, 4], &device);
        let expected = layer.forward(x.clone()).into_data();
        linear(&layer, x).into_data().assert_eq(&expected, true);
    }
}
