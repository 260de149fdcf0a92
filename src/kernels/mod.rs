//! aekit's own CPU kernels, as burn backend extensions on the Flex backend: matrix products
//! ([`gemm`]), linear layers ([`linear`]), 2-D convolutions ([`conv2d`]), the tanh and sigmoid
//! activations ([`activation`]), max-pooling over non-overlapping windows ([`max_pool`]), the
//! reconstruction loss from logits ([`recon_loss`]) and the fused Adam step ([`adam`]); the
//! element-wise ones work eight values at a time (`lanes`). They know tensors and numbers, no
//! model types. Each falls back to burn's own implementation off the CPU backend, for other
//! dtypes, or when its environment switch says `burn` ([`own_cpu_kernel`], the one place that
//! choice is made).

pub mod activation;
pub mod adam;
pub mod conv2d;
pub(crate) mod gemm;
mod lanes;
pub mod linear;
pub mod max_pool;
pub mod recon_loss;

use std::sync::OnceLock;

use burn::tensor::{DType, Device};

/// Whether one of aekit's own CPU kernels runs on a tensor of this dtype on this device: f32
/// on the CPU backend, unless the environment variable `switch` is `burn`, which selects burn's
/// own implementation (for comparisons in benchmarks). `burn_chosen` caches the variable for
/// the kernel.
pub(crate) fn own_cpu_kernel(
    dtype: DType,
    device: Device,
    burn_chosen: &OnceLock<bool>,
    switch: &str,
) -> bool {
    let burn = *burn_chosen.get_or_init(|| std::env::var(switch).is_ok_and(|v| v == "burn"));
    !burn && dtype == DType::F32 && on_cpu_backend(device)
}

/// Whether `device` is burn-flex's, the CPU backend these kernels extend.
pub(crate) fn on_cpu_backend(device: Device) -> bool {
    device.inner() == Device::flex()
}

/// For the kernels' tests: `f(x)` and the gradient of `x` through a loss that weights every
/// output value by `weights`, so that a wrong value anywhere shows in both.
#[cfg(test)]
pub(crate) fn output_and_input_grad<const D: usize>(
    x: &burn::tensor::Tensor<D>,
    weights: &burn::tensor::Tensor<D>,
    f: impl Fn(&burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D>,
) -> [burn::tensor::TensorData; 2] {
    let x = x.clone().detach().require_grad();
    let y = f(&x);
    let grads = (y.clone() * weights.clone()).sum().backward();
    [y.into_data(), x.grad(&grads).expect("gradient").into_data()]
}
