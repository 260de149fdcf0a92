//! A stack of convolution, pooling, upsampling and dense layers from a spec, on flat rows.

use std::collections::HashMap;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool2d, conv_transpose2d, conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{
    AvgPoolOptions, ConvOptions, ConvTransposeOptions, InterpolateMode, InterpolateOptions,
    MaxPoolOptions,
};

use crate::error::{Error, Result};
use crate::kernels::conv2d::{self as gemm_conv, ConvGeometry};
use crate::kernels::linear::linear;
use crate::kernels::max_pool::max_pool;
use crate::model::Activation;
use crate::model::graph::{Node, ResizeMode};
use crate::model::layers::spec::*;
use crate::model::layers::{
    Kernel, NamedTensor, ParamFactory, export_kernel, export_linear, import_kernel, import_linear,
};

/// A layer as it runs: its options resolved against its input shape.
#[derive(Debug, Clone)]
enum Op {
    Conv {
        param: usize,
        options: ConvOptions<2>,
        geometry: ConvGeometry,
        act: Activation,
    },
    ConvTranspose {
        param: usize,
        options: ConvTransposeOptions<2>,
        /// The convolution this is the adjoint of (see `gemm_conv::transpose_forward`).
        geometry: ConvGeometry,
        act: Activation,
    },
    MaxPool(MaxPoolOptions<2>),
    AvgPool(AvgPoolOptions<2>),
    Upsample {
        size: [usize; 2],
        bilinear: bool,
    },
    Dense {
        param: usize,
        act: Activation,
    },
    Reshape([usize; 3]),
}

/// The weights of one layer of a stack.
#[derive(Module, Debug)]
pub enum Weights {
    Linear(Linear),
    Kernel(Kernel),
}

/// What the stack keeps beside its weights (not learned).
#[derive(Debug, Clone)]
pub struct StackPlan {
    ops: Vec<Op>,
    /// Index in the layer list of each entry of `Stack::weights`, for parameter names.
    layer_of: Vec<usize>,
    /// The op whose activation is the stack's last (the output unit of a decoder).
    last_weighted: Option<usize>,
    pub input_shape: Vec<usize>,
    pub output_shape: Vec<usize>,
}

/// A sequence of convolution, pooling, upsampling and dense layers on flat rows: inputs are
/// `[batch, prod(input_shape)]` and are reshaped to images inside, outputs are flattened.
#[derive(Module, Debug)]
pub struct Stack {
    pub weights: Vec<Weights>,
    #[module(skip)]
    pub plan: StackPlan,
}

/// Activations for a stack: `hidden` unless a layer names its own; `last` for the final layer
/// with weights when given (the code or the output unit).
#[derive(Debug, Clone, Copy)]
pub struct StackActs {
    pub hidden: Activation,
    pub last: Option<Activation>,
}

enum Feature {
    Flat(Tensor<2>),
    Map(Tensor<4>),
}

impl Feature {
    fn flat(self) -> Tensor<2> {
        match self {
            Feature::Flat(t) => t,
            Feature::Map(t) => t.flatten(1, 3),
        }
    }

    fn map(self) -> Tensor<4> {
        match self {
            Feature::Map(t) => t,
            Feature::Flat(_) => unreachable!("shapes were checked when the stack was built"),
        }
    }
}

impl Stack {
    pub fn init(
        layers: &[LayerSpec],
        input_shape: &[usize],
        acts: StackActs,
        params: &mut ParamFactory,
    ) -> Result<Self> {
        let shapes = infer_shapes(input_shape, layers)?;
        let last_weighted = layers.iter().rposition(LayerSpec::has_weights);
        let mut ops = Vec::new();
        let mut weights = Vec::new();
        let mut layer_of = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let (inp, out) = (&shapes[i], &shapes[i + 1]);
            let act = match acts.last {
                Some(a) if Some(i) == last_weighted => {
                    if layer.act().is_some_and(|own| own != a) {
                        return Err(Error::invalid(format!(
                            "layer '{layer}' is the last of its stack, whose activation is {}",
                            a.name()
                        )));
                    }
                    a
                }
                _ => layer.act().unwrap_or(acts.hidden),
            };
            let param = weights.len();
            let op = match layer {
                LayerSpec::Conv {
                    kernel,
                    stride,
                    pad,
                    ..
                } => {
                    let (ph, _) = window(inp[1], *kernel, *stride, *pad).expect("checked");
                    let (pw, _) = window(inp[2], *kernel, *stride, *pad).expect("checked");
                    let (c_in, c_out, k) = (inp[0], out[0], *kernel);
                    weights.push(Weights::Kernel(params.kernel(
                        [c_out, c_in, k, k],
                        c_out,
                        (c_in * k * k, c_out * k * k),
                        act,
                    )?));
                    Op::Conv {
                        param,
                        options: ConvOptions::new_with_padding([*stride; 2], [ph, pw], [1, 1], 1),
                        geometry: ConvGeometry {
                            channels_in: c_in,
                            channels_out: c_out,
                            kernel: [k, k],
                            stride: [*stride; 2],
                            pad: [ph.0, pw.0],
                            input: [inp[1], inp[2]],
                            output: [out[1], out[2]],
                        },
                        act,
                    }
                }
                LayerSpec::ConvTranspose {
                    kernel,
                    stride,
                    pad,
                    output_padding,
                    ..
                } => {
                    let t = |n, op| transposed(n, *kernel, *stride, *pad, op);
                    let ((ph, oph), _) = t(inp[1], output_padding[0]).expect("checked");
                    let ((pw, opw), _) = t(inp[2], output_padding[1]).expect("checked");
                    let (c_in, c_out, k, s) = (inp[0], out[0], *kernel, *stride);
                    // Each output sees about c_in·k²/s² inputs: that is the fan-in that keeps
                    // the activations' scale, as for a plain convolution.
                    let fan_in = (c_in * k * k / (s * s)).max(1);
                    weights.push(Weights::Kernel(params.kernel(
                        [c_in, c_out, k, k],
                        c_out,
                        (fan_in, c_out * k * k),
                        act,
                    )?));
                    Op::ConvTranspose {
                        param,
                        options: ConvTransposeOptions::new([s, s], [ph, pw], [oph, opw], [1, 1], 1),
                        geometry: ConvGeometry {
                            channels_in: c_out,
                            channels_out: c_in,
                            kernel: [k, k],
                            stride: [s, s],
                            pad: [ph, pw],
                            input: [out[1], out[2]],
                            output: [inp[1], inp[2]],
                        },
                        act,
                    }
                }
                LayerSpec::MaxPool { size, pad } | LayerSpec::AvgPool { size, pad } => {
                    let (ph, _) = window(inp[1], *size, *size, *pad).expect("checked");
                    let (pw, _) = window(inp[2], *size, *size, *pad).expect("checked");
                    if matches!(layer, LayerSpec::MaxPool { .. }) {
                        Op::MaxPool(MaxPoolOptions::new([*size; 2]).with_padding_pairs([ph, pw]))
                    } else {
                        // Padding is not averaged in, as in TensorFlow's `same` pooling.
                        Op::AvgPool(
                            AvgPoolOptions::new([*size; 2])
                                .with_padding_pairs([ph, pw])
                                .with_count_include_pad(false),
                        )
                    }
                }
                LayerSpec::Upsample { mode, .. } => Op::Upsample {
                    size: [out[1], out[2]],
                    bilinear: *mode == UpMode::Bilinear,
                },
                LayerSpec::Dense { units, .. } => {
                    let d_in: usize = inp.iter().product();
                    weights.push(Weights::Linear(params.linear(d_in, *units, act)?));
                    Op::Dense { param, act }
                }
                LayerSpec::Reshape { shape } => Op::Reshape(*shape),
            };
            if weights.len() > layer_of.len() {
                layer_of.push(i);
            }
            ops.push(op);
        }
        Ok(Self {
            weights,
            plan: StackPlan {
                ops,
                layer_of,
                last_weighted,
                input_shape: input_shape.to_vec(),
                output_shape: shapes.last().expect("input").clone(),
            },
        })
    }

    fn kernel(&self, i: usize) -> &Kernel {
        match &self.weights[i] {
            Weights::Kernel(k) => k,
            Weights::Linear(_) => unreachable!("ops index their own kind of weights"),
        }
    }

    fn linear(&self, i: usize) -> &Linear {
        match &self.weights[i] {
            Weights::Linear(l) => l,
            Weights::Kernel(_) => unreachable!("ops index their own kind of weights"),
        }
    }

    /// Runs the stack on rows `x`; with `logits` the activation of the last layer with weights
    /// is left out (layers after it, such as a reshape or nearest upsampling, commute with it
    /// or are applied to the logits).
    pub fn forward(&self, x: Tensor<2>, logits: bool) -> Tensor<2> {
        let n = x.dims()[0];
        let mut h = match self.plan.input_shape.as_slice() {
            [c, hh, ww] => Feature::Map(x.reshape([n, *c, *hh, *ww])),
            _ => Feature::Flat(x),
        };
        for (i, op) in self.plan.ops.iter().enumerate() {
            let activate = |a: Activation, t: Feature| -> Feature {
                if logits && Some(i) == self.plan.last_weighted {
                    return t;
                }
                match t {
                    Feature::Flat(t) => Feature::Flat(a.apply(t)),
                    Feature::Map(t) => Feature::Map(a.apply(t)),
                }
            };
            h = match op {
                Op::Conv {
                    param,
                    options,
                    geometry,
                    act,
                } => {
                    let k = self.kernel(*param);
                    let x = h.map();
                    let y = if gemm_conv::applies(&x) {
                        gemm_conv::conv2d(x, k.weight.val(), k.bias.val(), *geometry)
                    } else {
                        conv2d(x, k.weight.val(), Some(k.bias.val()), options.clone())
                    };
                    activate(*act, Feature::Map(y))
                }
                Op::ConvTranspose {
                    param,
                    options,
                    geometry,
                    act,
                } => {
                    let k = self.kernel(*param);
                    let x = h.map();
                    let y = if gemm_conv::applies(&x) {
                        gemm_conv::conv_transpose2d(x, k.weight.val(), k.bias.val(), *geometry)
                    } else {
                        let (w, b) = (k.weight.val(), Some(k.bias.val()));
                        conv_transpose2d(x, w, b, options.clone())
                    };
                    activate(*act, Feature::Map(y))
                }
                Op::MaxPool(o) => {
                    let x = h.map();
                    Feature::Map(max_pool(&x, o).unwrap_or_else(|| max_pool2d(x, o.clone())))
                }
                Op::AvgPool(o) => Feature::Map(avg_pool2d(h.map(), o.clone())),
                Op::Upsample { size, bilinear } => {
                    let mode = if *bilinear {
                        InterpolateMode::Bilinear
                    } else {
                        InterpolateMode::Nearest
                    };
                    let mut o = InterpolateOptions::new(mode).with_output_size(*size);
                    o.align_corners = false;
                    Feature::Map(interpolate(h.map(), o))
                }
                Op::Dense { param, act } => {
                    let y = linear(self.linear(*param), h.flat());
                    activate(*act, Feature::Flat(y))
                }
                Op::Reshape([c, hh, ww]) => Feature::Map(h.flat().reshape([n, *c, *hh, *ww])),
            };
        }
        h.flat()
    }

    /// The stack as plain operations (see [`crate::model::graph`]) from rows to its output,
    /// its tensors named under `prefix`; without the last weighted layer's activation when
    /// `logits`, as [`Self::forward`].
    pub fn describe(&self, prefix: &str, logits: bool) -> Vec<Node> {
        let plan = &self.plan;
        let name = |param: usize, what: &str| format!("{prefix}.{}.{what}", plan.layer_of[param]);
        let mut nodes = Vec::new();
        let mut map = false;
        if let [c, h, w] = plan.input_shape.as_slice() {
            nodes.push(Node::Reshape {
                shape: vec![*c, *h, *w],
            });
            map = true;
        }
        let four = |p: [(usize, usize); 2]| [p[0].0, p[1].0, p[0].1, p[1].1];
        for (i, op) in plan.ops.iter().enumerate() {
            let act = match op {
                Op::Conv {
                    param,
                    options,
                    act,
                    ..
                } => {
                    nodes.push(Node::Conv {
                        weight: name(*param, "weight"),
                        bias: name(*param, "bias"),
                        stride: options.stride[0],
                        pads: four(options.padding),
                    });
                    Some(*act)
                }
                Op::ConvTranspose {
                    param,
                    options,
                    act,
                    ..
                } => {
                    nodes.push(Node::ConvTranspose {
                        weight: name(*param, "weight"),
                        bias: name(*param, "bias"),
                        stride: options.stride[0],
                        pads: options.padding,
                        output_padding: options.padding_out,
                    });
                    Some(*act)
                }
                Op::MaxPool(o) => {
                    nodes.push(Node::MaxPool {
                        size: o.kernel_size[0],
                        pads: four(o.padding),
                    });
                    None
                }
                Op::AvgPool(o) => {
                    nodes.push(Node::AvgPool {
                        size: o.kernel_size[0],
                        pads: four(o.padding),
                    });
                    None
                }
                Op::Upsample { size, bilinear } => {
                    let mode = if *bilinear {
                        ResizeMode::Bilinear
                    } else {
                        ResizeMode::Nearest
                    };
                    nodes.push(Node::Resize { size: *size, mode });
                    None
                }
                Op::Dense { param, act } => {
                    if map {
                        let n = self.linear(*param).weight.dims()[0];
                        nodes.push(Node::Reshape { shape: vec![n] });
                        map = false;
                    }
                    nodes.push(Node::Linear {
                        weight: name(*param, "weight"),
                        bias: name(*param, "bias"),
                    });
                    Some(*act)
                }
                Op::Reshape(shape) => {
                    nodes.push(Node::Reshape {
                        shape: shape.to_vec(),
                    });
                    map = true;
                    None
                }
            };
            if let Some(function) = act
                && function != Activation::Linear
                && !(logits && Some(i) == plan.last_weighted)
            {
                nodes.push(Node::Activation { function });
            }
        }
        nodes
    }

    /// The activation of the last layer with weights.
    pub fn last_activation(&self) -> Option<Activation> {
        self.plan.ops.iter().rev().find_map(|op| match op {
            Op::Conv { act, .. } | Op::ConvTranspose { act, .. } | Op::Dense { act, .. } => {
                Some(*act)
            }
            _ => None,
        })
    }

    pub fn export(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        for (w, layer) in self.weights.iter().zip(&self.plan.layer_of) {
            let name = format!("{prefix}.{layer}");
            match w {
                Weights::Linear(l) => export_linear(&name, l, out),
                Weights::Kernel(k) => export_kernel(&name, k, out),
            }
        }
    }

    pub fn import(self, prefix: &str, tensors: &HashMap<String, NamedTensor>) -> Result<Self> {
        let weights = self
            .weights
            .into_iter()
            .zip(&self.plan.layer_of)
            .map(|(w, layer)| {
                let name = format!("{prefix}.{layer}");
                Ok(match w {
                    Weights::Linear(l) => Weights::Linear(import_linear(&name, l, tensors)?),
                    Weights::Kernel(k) => Weights::Kernel(import_kernel(&name, k, tensors)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            weights,
            plan: self.plan,
        })
    }
}
