//! 2-D convolution on the CPU as im2col + one matrix product per image, forward and backward.
//!
//! Why: for the small channel counts of image autoencoders (1–32 channels, 3×3 kernels)
//! burn-flex convolves with direct loops, and burn derives a convolution's gradients from a
//! transposed convolution (input) and a convolution whose kernel is the whole image (weights),
//! both slow there: on the Keras conv autoencoder they took about 80% of a training step
//! (BENCHMARKS.md). Here each of the three products — output, input gradient, weight
//! gradient — is one `gemm` call per image on the unfolded image (im2col), as PyTorch's CPU
//! path does. It is a burn backend extension for Flex with its backward pass written for
//! `Autodiff<Flex>`; other devices (the GPU backend) keep burn's `conv2d`.

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

use super::gemm::{MatRef, Parallelism, contiguous, flex, matmul, values};
use crate::kernels::own_cpu_kernel;

/// Images per task when weight gradients are summed: a fixed size (not one per thread) keeps
/// the order of the sums, and so the trained weights, the same on any number of cores.
const IMAGES_PER_TASK: usize = 16;

/// The shape of one convolution, fixed when its layer is built. Padding is given at the start
/// of each axis; the output size implies the padding at the end (TensorFlow's `same` pads
/// more at the end than at the start for even kernels or strides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub channels_in: usize,
    pub channels_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub input: [usize; 2],
    pub output: [usize; 2],
}

impl ConvGeometry {
    /// Rows of the unfolded image: one per input channel and kernel tap.
    fn taps(&self) -> usize {
        self.channels_in * self.kernel[0] * self.kernel[1]
    }

    fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }

    fn image_len(&self) -> usize {
        self.channels_in * self.input[0] * self.input[1]
    }

    fn output_len(&self) -> usize {
        self.channels_out * self.positions()
    }

    /// The output positions `o` along one axis whose input `o·stride + tap − pad` lies inside
    /// `0..len`.
    fn inside(len: usize, out: usize, stride: usize, tap: usize, pad: usize) -> (usize, usize) {
        let first = pad.saturating_sub(tap).div_ceil(stride).min(out);
        let last = (len + pad).saturating_sub(tap).div_ceil(stride).min(out);
        (first, last.max(first))
    }

    /// Calls `f(tap row, output position, input index)` for every unfolded entry that reads
    /// the image (the others are padding, zero).
    fn for_each_read(&self, mut f: impl FnMut(usize, std::ops::Range<usize>, usize, usize)) {
        let ([h, w], [oh, ow]) = (self.input, self.output);
        let ([kh, kw], [sh, sw], [ph, pw]) = (self.kernel, self.stride, self.pad);
        for c in 0..self.channels_in {
            for i in 0..kh {
                let (y0, y1) = Self::inside(h, oh, sh, i, ph);
                for j in 0..kw {
                    let row = (c * kh + i) * kw + j;
                    let (x0, x1) = Self::inside(w, ow, sw, j, pw);
                    // A tap that only ever reads padding (a kernel wider than its input) has
                    // no entries, and its first index would lie before the image.
                    if x0 == x1 {
                        continue;
                    }
                    for y in y0..y1 {
                        let iy = y * sh + i - ph;
                        let first_in = (c * h + iy) * w + x0 * sw + j - pw;
                        f(row, y * ow + x0..y * ow + x1, first_in, sw);
                    }
                }
            }
        }
    }
}

/// Unfolds one image `[C, H, W]` into `cols` `[C·kh·kw, OH·OW]`. `cols` must hold zeros where
/// the kernel reads padding: every caller allocates it zeroed and unfolds images of one
/// geometry into it, which write the same entries each time and never those (zeroing it per
/// image cost about 3% of a conv training step).
fn im2col(g: &ConvGeometry, image: &[f32], cols: &mut [f32]) {
    let p = g.positions();
    g.for_each_read(|row, out, first_in, stride| {
        let dst = &mut cols[row * p + out.start..row * p + out.end];
        if stride == 1 {
            dst.copy_from_slice(&image[first_in..first_in + dst.len()]);
        } else {
            for (k, d) in dst.iter_mut().enumerate() {
                *d = image[first_in + k * stride];
            }
        }
    });
}

/// Adds the unfolded gradient `cols` back onto the image gradient it was read from.
fn col2im_add(g: &ConvGeometry, cols: &[f32], image: &mut [f32]) {
    let p = g.positions();
    g.for_each_read(|row, out, first_in, stride| {
        let src = &cols[row * p + out.start..row * p + out.end];
        if stride == 1 {
            // Contiguous, so the compiler vectorises it: this loop is most of the input
            // gradient's time at the 28×28 layers.
            let dst = &mut image[first_in..first_in + src.len()];
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
        } else {
            for (k, s) in src.iter().enumerate() {
                image[first_in + k * stride] += s;
            }
        }
    });
}

/// `y[n] = W · im2col(x[n]) + b` for every image; `weight` is `[C_out, C_in·kh·kw]`.
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (k, p, co) = (g.taps(), g.positions(), g.channels_out);
    let n = x.len() / g.image_len();
    let mut y = vec![0.0; n * g.output_len()];
    y.par_chunks_mut(g.output_len())
        .zip(x.par_chunks(g.image_len()))
        .for_each_init(
            || vec![0.0; k * p],
            |cols, (y, image)| {
                im2col(g, image, cols);
                for (row, b) in y.chunks_mut(p).zip(bias) {
                    row.fill(*b);
                }
                matmul(
                    y,
                    (co, p, k),
                    MatRef::rows(weight, k),
                    MatRef::rows(cols, p),
                    true,
                    Parallelism::None,
                );
            },
        );
    y
}

/// The gradient of the loss with respect to the input: `col2im(Wᵀ · grad[n])` per image.
pub fn input_grad(g: &ConvGeometry, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, p, co) = (g.taps(), g.positions(), g.channels_out);
    let n = grad.len() / g.output_len();
    let mut dx = vec![0.0; n * g.image_len()];
    dx.par_chunks_mut(g.image_len())
        .zip(grad.par_chunks(g.output_len()))
        .for_each_init(
            || vec![0.0; k * p],
            |cols, (dx, grad)| {
                matmul(
                    cols,
                    (k, p, co),
                    MatRef::transposed(weight, k),
                    MatRef::rows(grad, p),
                    false,
                    Parallelism::None,
                );
                col2im_add(g, cols, dx);
            },
        );
    dx
}

/// The gradients with respect to the weights (`Σ grad[n] · im2col(x[n])ᵀ`) and the bias.
pub fn param_grads(g: &ConvGeometry, x: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (k, p, co) = (g.taps(), g.positions(), g.channels_out);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = x
        .par_chunks(g.image_len() * IMAGES_PER_TASK)
        .zip(grad.par_chunks(g.output_len() * IMAGES_PER_TASK))
        .map(|(images, grads)| {
            let (mut dw, mut db, mut cols) = (vec![0.0; co * k], vec![0.0; co], vec![0.0; k * p]);
            for (image, grad) in images
                .chunks(g.image_len())
                .zip(grads.chunks(g.output_len()))
            {
                im2col(g, image, &mut cols);
                let cols_t = MatRef::transposed(&cols, p);
                let grad_rows = MatRef::rows(grad, p);
                matmul(
                    &mut dw,
                    (co, k, p),
                    grad_rows,
                    cols_t,
                    true,
                    Parallelism::None,
                );
                for (d, row) in db.iter_mut().zip(grad.chunks(p)) {
                    *d += row.iter().sum::<f32>();
                }
            }
            (dw, db)
        })
        .collect();
    let mut sums = (vec![0.0; co * k], vec![0.0; co]);
    for (dw, db) in partials {
        sums.0.iter_mut().zip(dw).for_each(|(s, d)| *s += d);
        sums.1.iter_mut().zip(db).for_each(|(s, d)| *s += d);
    }
    sums
}

/// A transposed convolution is the adjoint of a convolution: `g` describes that convolution,
/// from the transposed convolution's output `[C_in of g, H, W]` to its input
/// `[C_out of g, h, w]`, and `weight` `[C_out of g, C_in of g, kh, kw]` is shared by both.
/// Returns `col2im(Wᵀ · x[n]) + b` per image.
pub fn transpose_forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let mut y = input_grad(g, x, weight);
    let plane = g.input[0] * g.input[1];
    for image in y.chunks_mut(g.image_len()) {
        for (channel, b) in image.chunks_mut(plane).zip(bias) {
            channel.iter_mut().for_each(|v| *v += b);
        }
    }
    y
}

/// The sums of `grad` `[N, C, H, W]` per channel: a bias's gradient.
fn channel_sums(grad: &[f32], channels: usize, plane: usize) -> Vec<f32> {
    let mut sums = vec![0.0; channels];
    for image in grad.chunks(channels * plane) {
        for (s, channel) in sums.iter_mut().zip(image.chunks(plane)) {
            *s += channel.iter().sum::<f32>();
        }
    }
    sums
}

#[backend_extension(Flex, Autodiff)]
pub trait GemmConv: Backend {
    /// A convolution with a bias, `x` `[N, C_in, H, W]`, `weight` `[C_out, C_in, kh, kw]`.
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// A transposed convolution with a bias, `weight` `[C_in, C_out, kh, kw]`; `geometry` is
    /// that of the convolution it is the adjoint of (see [`transpose_forward`]).
    fn gemm_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;
}

type Kernel = fn(&ConvGeometry, &[f32], &[f32], &[f32]) -> Vec<f32>;

/// Runs `kernel` on contiguous copies of the inputs (where they are not already) and shapes
/// its output `[N, channels, h, w]`.
fn on_flex(
    kernel: Kernel,
    [x, weight, bias]: [FlexTensor; 3],
    g: &ConvGeometry,
    [c, h, w]: [usize; 3],
) -> FlexTensor {
    let n = x.layout().shape()[0];
    let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
    flex(
        kernel(g, values(&x), values(&weight), values(&bias)),
        [n, c, h, w],
    )
}

impl GemmConv for Flex {
    fn gemm_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        g: ConvGeometry,
    ) -> FlexTensor {
        let shape = [g.channels_out, g.output[0], g.output[1]];
        on_flex(forward, [x, weight, bias], &g, shape)
    }

    fn gemm_conv_transpose2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        g: ConvGeometry,
    ) -> FlexTensor {
        let shape = [g.channels_in, g.input[0], g.input[1]];
        on_flex(transpose_forward, [x, weight, bias], &g, shape)
    }
}

/// The backward pass of both ops; `transposed` tells which of the adjoint pair ran forward.
#[derive(Debug)]
struct GemmConvBackward {
    transposed: bool,
}

impl Backward<Flex, 3> for GemmConvBackward {
    type State = (NodeId, NodeId, ConvGeometry);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state, g) = ops.state;
        let n = grad.layout().shape()[0];
        // The convolution maps [C_in, H, W] (its "image") to [C_out, OH, OW] (its "output").
        let image_shape = [n, g.channels_in, g.input[0], g.input[1]];
        let output_shape = [n, g.channels_out, g.output[0], g.output[1]];
        if let Some(node) = node_x {
            let weight = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(weight_state));
            let dx = if self.transposed {
                let no_bias = vec![0.0; g.channels_out];
                flex(
                    forward(&g, values(&grad), values(&weight), &no_bias),
                    output_shape,
                )
            } else {
                flex(input_grad(&g, values(&grad), values(&weight)), image_shape)
            };
            grads.register::<Flex>(node.id, dx);
        }
        if node_weight.is_some() || node_bias.is_some() {
            let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
            let (dw, db) = if self.transposed {
                let (dw, _) = param_grads(&g, values(&grad), values(&x));
                let plane = g.input[0] * g.input[1];
                (dw, channel_sums(values(&grad), g.channels_in, plane))
            } else {
                param_grads(&g, values(&x), values(&grad))
            };
            if let Some(node) = node_weight {
                let shape = [g.channels_out, g.channels_in, g.kernel[0], g.kernel[1]];
                grads.register::<Flex>(node.id, flex(dw, shape));
            }
            if let Some(node) = node_bias {
                let len = db.len();
                grads.register::<Flex>(node.id, flex(db, [len]));
            }
        }
    }
}

type FlexOp = fn(FlexTensor, FlexTensor, FlexTensor, ConvGeometry) -> FlexTensor;

/// Runs `op` on the inner tensors and records its backward pass when a gradient is needed.
fn record<C: CheckpointStrategy>(
    [x, weight, bias]: [FloatTensor<Autodiff<Flex, C>>; 3],
    g: ConvGeometry,
    op: FlexOp,
    transposed: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = GemmConvBackward { transposed }.prepare::<C>([x.node(), weight.node(), bias.node()]);
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&weight), g);
            let y = op(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                g,
            );
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(op(
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
            g,
        )),
    }
}

impl<C: CheckpointStrategy> GemmConv for Autodiff<Flex, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        record::<C>([x, weight, bias], g, <Flex as GemmConv>::gemm_conv2d, false)
    }

    fn gemm_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        record::<C>(
            [x, weight, bias],
            g,
            <Flex as GemmConv>::gemm_conv_transpose2d,
            true,
        )
    }
}

/// Whether [`conv2d`] runs on `x`: f32 on the CPU backend, unless the environment variable
/// `AEKIT_CONV=burn` asks for burn's own kernel (for comparisons in benchmarks).
pub fn applies(x: &Tensor<4>) -> bool {
    static BURN_CHOSEN: OnceLock<bool> = OnceLock::new();
    own_cpu_kernel(x.dtype(), x.device(), &BURN_CHOSEN, "AEKIT_CONV")
}

type DispatchOp = fn(
    FloatTensor<Dispatch>,
    FloatTensor<Dispatch>,
    FloatTensor<Dispatch>,
    ConvGeometry,
) -> FloatTensor<Dispatch>;

fn dispatch(
    op: DispatchOp,
    [x, weight]: [Tensor<4>; 2],
    bias: Tensor<1>,
    g: ConvGeometry,
) -> Tensor<4> {
    let y = op(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        g,
    );
    Tensor::from_dispatch(y)
}

/// The convolution of `x` `[N, C_in, H, W]` by `weight` `[C_out, C_in, kh, kw]` plus `bias`,
/// through the kernels above. Call it where [`applies`] holds.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    geometry: ConvGeometry,
) -> Tensor<4> {
    dispatch(
        <Dispatch as GemmConv>::gemm_conv2d,
        [x, weight],
        bias,
        geometry,
    )
}

/// The transposed convolution of `x` `[N, C_in, h, w]` by `weight` `[C_in, C_out, kh, kw]`
/// plus `bias`; `geometry` is that of the convolution from `[C_out, H, W]` to `[C_in, h, w]`.
/// Call it where [`applies`] holds.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    geometry: ConvGeometry,
) -> Tensor<4> {
    dispatch(
        <Dispatch as GemmConv>::gemm_conv_transpose2d,
        [x, weight],
        bias,
        geometry,
    )
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::{conv_transpose2d as burn_conv_transpose2d, conv2d as burn_conv2d};
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::model::layers::Pad;
    use crate::model::layers::spec::window;

    /// Output size and (start, end) padding of TensorFlow's `same` along one axis, as the conv
    /// layers compute them.
    fn same(n: usize, k: usize, s: usize) -> (usize, (usize, usize)) {
        let (pads, out) = window(n, k, s, Pad::Same).expect("same padding fits any size");
        (out, pads)
    }

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    type Op<'a> = dyn Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4> + 'a;

    /// Output and the gradients of input, weights and bias agree between `ours` and
    /// `reference` on random data, for inputs `x_shape`, weights `w_shape` and `bias` biases,
    /// to 2e-5 of the largest value of each.
    fn agree(
        ours: &Op<'_>,
        reference: &Op<'_>,
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        bias: usize,
    ) {
        let device = Device::flex().autodiff();
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<4>::random(x_shape, normal, &device);
        let weight = Tensor::<4>::random(w_shape, normal, &device);
        let bias = Tensor::<1>::random([bias], normal, &device);
        assert!(applies(&x));
        let run = |op: &Op<'_>| {
            let (x, weight, bias) = (
                x.clone().require_grad(),
                weight.clone().require_grad(),
                bias.clone().require_grad(),
            );
            let y = op(x.clone(), weight.clone(), bias.clone());
            // A fixed upstream gradient that differs per output element.
            let upstream = y.clone().inner().sin();
            let grads = (y.clone() * upstream).sum().backward();
            let grad_of = |t: &Tensor<4>| t.grad(&grads).expect("tracked");
            let db = bias
                .grad(&grads)
                .expect("tracked")
                .reshape([1, 1, 1, bias.dims()[0]]);
            [y.inner(), grad_of(&x), grad_of(&weight), db]
        };
        let names = [
            "output",
            "input gradient",
            "weight gradient",
            "bias gradient",
        ];
        for ((a, b), name) in run(ours).into_iter().zip(run(reference)).zip(names) {
            assert_eq!(a.dims(), b.dims(), "{name}");
            let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
            let diff = max_diff(a, b);
            assert!(
                diff < 2e-5 * scale,
                "{name}: differs by {diff} (scale {scale})"
            );
        }
    }

    /// The convolution against burn's `conv2d`.
    fn check(
        n: usize,
        [ci, co]: [usize; 2],
        [h, w]: [usize; 2],
        k: usize,
        s: usize,
        pads: [(usize, usize); 2],
    ) {
        let g = ConvGeometry {
            channels_in: ci,
            channels_out: co,
            kernel: [k, k],
            stride: [s, s],
            pad: [pads[0].0, pads[1].0],
            input: [h, w],
            output: [
                (h + pads[0].0 + pads[0].1 - k) / s + 1,
                (w + pads[1].0 + pads[1].1 - k) / s + 1,
            ],
        };
        let options = ConvOptions::new_with_padding([s, s], pads, [1, 1], 1);
        agree(
            &|x, w, b| conv2d(x, w, b, g),
            &|x, w, b| burn_conv2d(x, w, Some(b), options.clone()),
            [n, ci, h, w],
            [co, ci, k, k],
            co,
        );
    }

    /// The transposed convolution against burn's `conv_transpose2d`.
    fn check_transposed(
        n: usize,
        [ci, co]: [usize; 2],
        [h, w]: [usize; 2],
        k: usize,
        s: usize,
        pad: usize,
        out_pad: usize,
    ) {
        let size = |len: usize| (len - 1) * s + k + out_pad - 2 * pad;
        let g = ConvGeometry {
            channels_in: co,
            channels_out: ci,
            kernel: [k, k],
            stride: [s, s],
            pad: [pad, pad],
            input: [size(h), size(w)],
            output: [h, w],
        };
        let options = ConvTransposeOptions::new([s, s], [pad, pad], [out_pad, out_pad], [1, 1], 1);
        agree(
            &|x, w, b| conv_transpose2d(x, w, b, g),
            &|x, w, b| burn_conv_transpose2d(x, w, Some(b), options.clone()),
            [n, ci, h, w],
            [ci, co, k, k],
            co,
        );
    }

    #[test]
    fn transposed_matches_burn() {
        // keras.io's denoiser: 3x3, stride 2, `same` (padding 1, output padding 1): 7 → 14.
        check_transposed(4, [32, 32], [7, 7], 3, 2, 1, 1);
        check_transposed(20, [3, 2], [5, 4], 3, 1, 1, 0);
        check_transposed(3, [2, 5], [4, 6], 4, 2, 0, 0);
    }

    #[test]
    fn matches_burn_with_same_padding() {
        let (_, p) = same(28, 3, 1);
        check(3, [1, 16], [28, 28], 3, 1, [p, p]);
        check(20, [4, 3], [7, 7], 3, 1, [(1, 1), (1, 1)]);
    }

    #[test]
    fn matches_burn_with_strides_and_odd_sizes() {
        // 7 → 4 with stride 2, TensorFlow's `same` (the extra padding at the end).
        let (out, p) = same(7, 3, 2);
        assert_eq!(out, 4);
        check(5, [3, 5], [7, 7], 3, 2, [p, p]);
        // Even kernel: `same` pads one more at the end; a non-square input.
        let (_, ph) = same(8, 4, 1);
        let (_, pw) = same(5, 4, 1);
        check(4, [2, 3], [8, 5], 4, 1, [ph, pw]);
    }

    #[test]
    fn matches_burn_with_valid_and_explicit_padding() {
        check(6, [8, 16], [16, 16], 3, 1, [(0, 0), (0, 0)]);
        check(2, [2, 2], [6, 9], 5, 1, [(2, 2), (2, 2)]);
        check(3, [3, 4], [9, 9], 3, 3, [(0, 0), (0, 0)]);
    }
}
