//! Max-pooling over non-overlapping windows (stride = window, TensorFlow's `same` padding
//! pairs) on the CPU, forward and backward.
//!
//! Why: burn's `max_pool2d` materialises asymmetric padding as a `-inf` copy, then burn-flex runs
//! its general 3-D pooling, which works out each output's valid window with integer divisions,
//! writes an i64 index tensor, and drops padded windows again with tensor ops; with a
//! `--profile profiling` build that forward pass was the largest cost outside the products in
//! workload B (BENCHMARKS.md). Here one pass per plane reads each input once and keeps the
//! winner's offset within its plane (u32); the backward pass writes every gradient to its
//! winner, which is burn's arithmetic (one addition to zero), so weights stay bit for bit.
//! `AEKIT_POOL=burn` selects burn's own.

use std::sync::{Arc, OnceLock};

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use burn::tensor::ops::MaxPoolOptions;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::gemm::{contiguous, flex, values};
use crate::kernels::own_cpu_kernel;

/// Output values per parallel task, as in the other element-wise kernels.
const VALUES_PER_TASK: usize = 1 << 14;

/// One pooling's geometry: the input planes `[h, w]`, the square window `k` (also the stride),
/// the padding before each axis `[top, left]` and the output planes `[oh, ow]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    input: [usize; 2],
    window: usize,
    before: [usize; 2],
    output: [usize; 2],
}

impl PoolGeometry {
    /// The geometry of `options` on `[h, w]` planes where this kernel computes it (stride equal
    /// to a square window, no dilation, floor mode, every window holding an input value), as
    /// burn shapes its output; `None` otherwise.
    fn of(options: &MaxPoolOptions<2>, [h, w]: [usize; 2]) -> Option<Self> {
        let k = options.kernel_size[0];
        let [(top, bottom), (left, right)] = options.padding;
        let fits = options.kernel_size == [k, k]
            && options.stride == [k, k]
            && options.dilation == [1, 1]
            && !options.ceil_mode
            && top < k
            && left < k
            && h + top + bottom >= k
            && w + left + right >= k;
        if !fits {
            // Before the output size, which would underflow for a window larger than the input.
            return None;
        }
        let output = [
            (h + top + bottom - k) / k + 1,
            (w + left + right - k) / k + 1,
        ];
        // The last window must start inside the input, or it would hold only padding.
        let inside = (output[0] - 1) * k < h + top && (output[1] - 1) * k < w + left;
        inside.then_some(PoolGeometry {
            input: [h, w],
            window: k,
            before: [top, left],
            output,
        })
    }
}

/// Planes of `plane` values per parallel task.
fn planes_per_task(plane: usize) -> usize {
    (VALUES_PER_TASK / plane.max(1)).max(1)
}

/// The maximum of every window of every plane of `x`, and its offset within the plane; the
/// first of equal values wins and a NaN always does, as in burn.
fn pool(x: &[f32], g: PoolGeometry) -> (Vec<f32>, Vec<u32>) {
    let ([h, w], k, [top, left], [oh, ow]) = (g.input, g.window, g.before, g.output);
    let planes = x.len() / (h * w);
    let mut out = vec![0.0; planes * oh * ow];
    let mut winners = vec![0u32; planes * oh * ow];
    let per_task = planes_per_task(h * w);
    out.par_chunks_mut(per_task * oh * ow)
        .zip(winners.par_chunks_mut(per_task * oh * ow))
        .zip(x.par_chunks(per_task * h * w))
        .for_each(|((out, winners), x)| {
            let planes = out.chunks_mut(oh * ow).zip(winners.chunks_mut(oh * ow));
            for ((out, winners), x) in planes.zip(x.chunks(h * w)) {
                for oy in 0..oh {
                    let rows = (oy * k).saturating_sub(top)..(oy * k + k - top).min(h);
                    for ox in 0..ow {
                        let cols = (ox * k).saturating_sub(left)..(ox * k + k - left).min(w);
                        // The window's first input starts the search (every window holds
                        // one); visiting it again changes nothing, NaN or not.
                        let first = rows.start * w + cols.start;
                        let (mut best, mut at) = (x[first], first);
                        let mut visit = |i: usize| {
                            let v = x[i];
                            if v > best || v.is_nan() {
                                (best, at) = (v, i);
                            }
                        };
                        if rows.len() == 2 && cols.len() == 2 {
                            // The 2×2 window of nearly every pooling layer, unrolled.
                            visit(first);
                            visit(first + 1);
                            visit(first + w);
                            visit(first + w + 1);
                        } else {
                            for iy in rows.clone() {
                                for ix in cols.clone() {
                                    visit(iy * w + ix);
                                }
                            }
                        }
                        out[oy * ow + ox] = best;
                        winners[oy * ow + ox] = at as u32;
                    }
                }
            }
        });
    (out, winners)
}

/// The input gradient: every output's gradient added to its winner, zero elsewhere.
fn pool_grad(grad: &[f32], winners: &[u32], g: PoolGeometry) -> Vec<f32> {
    let ([h, w], [oh, ow]) = (g.input, g.output);
    let planes = grad.len() / (oh * ow);
    let mut d_x = vec![0.0; planes * h * w];
    let per_task = planes_per_task(h * w);
    d_x.par_chunks_mut(per_task * h * w)
        .zip(grad.par_chunks(per_task * oh * ow))
        .zip(winners.par_chunks(per_task * oh * ow))
        .for_each(|((d_x, grad), winners)| {
            let planes = grad.chunks(oh * ow).zip(winners.chunks(oh * ow));
            for (d_x, (grad, winners)) in d_x.chunks_mut(h * w).zip(planes) {
                for (&g, &at) in grad.iter().zip(winners) {
                    d_x[at as usize] += g;
                }
            }
        });
    d_x
}

#[backend_extension(Flex, Autodiff)]
pub trait WindowMaxPool: Backend {
    /// `x` `[n, c, h, w]` max-pooled by `geometry`: `[n, c, oh, ow]`.
    fn window_max_pool(x: FloatTensor<Self>, geometry: PoolGeometry) -> FloatTensor<Self>;
}

/// `[n, c]` of a 4-D tensor.
fn batch_channels(t: &FlexTensor) -> [usize; 2] {
    let s = t.layout().shape();
    [s[0], s[1]]
}

/// The pooled tensor and the winners, for the backward pass.
fn pool_flex(x: FlexTensor, g: PoolGeometry) -> (FlexTensor, Vec<u32>) {
    let x = contiguous(x);
    let [n, c] = batch_channels(&x);
    let (out, winners) = pool(values(&x), g);
    (flex(out, [n, c, g.output[0], g.output[1]]), winners)
}

impl WindowMaxPool for Flex {
    fn window_max_pool(x: FlexTensor, geometry: PoolGeometry) -> FlexTensor {
        pool_flex(x, geometry).0
    }
}

#[derive(Debug)]
struct WindowMaxPoolBackward;

impl Backward<Flex, 1> for WindowMaxPoolBackward {
    /// The winners, `[n, c]` and the geometry.
    type State = (Arc<Vec<u32>>, [usize; 2], PoolGeometry);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let (winners, [n, c], g) = ops.state;
        let d_x = pool_grad(values(&grad), &winners, g);
        grads.register::<Flex>(node.id, flex(d_x, [n, c, g.input[0], g.input[1]]));
    }
}

impl<C: CheckpointStrategy> WindowMaxPool for Autodiff<Flex, C> {
    fn window_max_pool(x: FloatTensor<Self>, geometry: PoolGeometry) -> FloatTensor<Self> {
        let prep = WindowMaxPoolBackward.prepare::<C>([x.node()]);
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let nc = batch_channels(x.primitive());
                let (y, winners) = pool_flex(x.into_primitive(), geometry);
                prep.finish((Arc::new(winners), nc, geometry), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool_flex(x.into_primitive(), geometry).0),
        }
    }
}

/// `max_pool2d(x, options)` through the kernel above where it applies (see
/// [`PoolGeometry::of`]; f32 on the CPU, `AEKIT_POOL` not `burn`); `None` otherwise.
pub fn max_pool(x: &Tensor<4>, options: &MaxPoolOptions<2>) -> Option<Tensor<4>> {
    static BURN_CHOSEN: OnceLock<bool> = OnceLock::new();
    let [_, _, h, w] = x.dims();
    if !own_cpu_kernel(x.dtype(), x.device(), &BURN_CHOSEN, "AEKIT_POOL") || h * w == 0 {
        return None;
    }
    let geometry = PoolGeometry::of(options, [h, w])?;
    let y = <Dispatch as WindowMaxPool>::window_max_pool(x.clone().into_dispatch(), geometry);
    Some(Tensor::from_dispatch(y))
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::kernels::output_and_input_grad;

    /// Values and input gradients equal to burn's `max_pool2d` bit for bit, for even and odd
    /// planes with TensorFlow's `same` padding pairs (after only, and on both sides), with ties
    /// (rounded inputs) and more planes than one task holds; overlapping windows stay burn's.
    #[test]
    fn window_max_pool_equals_burns() {
        let device = Device::flex().autodiff();
        device.seed(13);
        for ([n, c, h, w], k, padding) in [
            ([3, 4, 28, 28], 2, [(0, 0), (0, 0)]),
            ([2, 3, 7, 7], 2, [(0, 1), (0, 1)]),
            ([2, 3, 7, 5], 3, [(1, 1), (0, 1)]),
            ([40, 16, 14, 14], 2, [(0, 0), (0, 0)]),
        ] {
            let x =
                Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 2.0), &device).round();
            let options = MaxPoolOptions::new([k, k]).with_padding_pairs(padding);
            let oh = (h + padding[0].0 + padding[0].1 - k) / k + 1;
            let ow = (w + padding[1].0 + padding[1].1 - k) / k + 1;
            let weights =
                Tensor::<4>::random([n, c, oh, ow], Distribution::Normal(0.0, 1.0), &device);
            let run = |ours: bool| {
                output_and_input_grad(&x, &weights, |x| {
                    if ours {
                        max_pool(x, &options).expect("the kernel applies")
                    } else {
                        max_pool2d(x.clone(), options.clone())
                    }
                })
            };
            let (ours, burns) = (run(true), run(false));
            ours[0].assert_eq(&burns[0], true);
            ours[1].assert_eq(&burns[1], true);
        }
        let x = Tensor::<4>::zeros([1, 1, 6, 6], &device);
        let overlapping = MaxPoolOptions::new([3, 3]).with_stride([2, 2]);
        assert!(max_pool(&x, &overlapping).is_none());
        assert!(max_pool(&x, &MaxPoolOptions::new([8, 8])).is_none());
    }
}
