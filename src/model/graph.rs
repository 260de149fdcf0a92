//! A run's network as plain operations on named tensors: what its encoder and decoder compute
//! at inference, described without its variant, so that code outside aekit rebuilds any run
//! from one description — PyTorch's `python/aekit_torch.py` reads it from `config.json`
//! (`graph`), and the ONNX export writes it as an ONNX graph. Each variant contributes its
//! nodes ([`crate::model::variant::Variant::describe_network`]); the class one-hot of a
//! conditional model, the output activation and the residual skip are added here for all.
//!
//! Tensors flow as rows: an encoder starts from `[batch, input_width]`, a decoder from
//! `[batch, code_width]`; [`Node::Reshape`] makes feature maps `[batch, C, H, W]` of them and
//! each path ends flat. Tensor names are those of `model.safetensors` (PyTorch's layouts).

use serde::{Deserialize, Serialize};

use crate::model::Activation;
use crate::model::layers::Layers;

/// The version of this description; readers refuse versions they do not know.
pub const GRAPH_VERSION: u32 = 1;

/// One operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Node {
    /// `y = x·Wᵀ + b` on rows (`weight` `[out, in]`, `bias` `[out]`).
    Linear { weight: String, bias: String },
    /// An element-wise function.
    Activation { function: Activation },
    /// A 2-D convolution (`weight` `[out, in, k, k]`) over the input padded with zeros,
    /// `pads` = `[top, left, bottom, right]` (ONNX's order).
    Conv {
        weight: String,
        bias: String,
        stride: usize,
        pads: [usize; 4],
    },
    /// A transposed convolution (`weight` `[in, out, k, k]`), `pads` `[h, w]` cropped from each
    /// side of its full output and `output_padding` `[h, w]` added at the end, as PyTorch's
    /// `ConvTranspose2d` and ONNX's `ConvTranspose`.
    ConvTranspose {
        weight: String,
        bias: String,
        stride: usize,
        pads: [usize; 2],
        output_padding: [usize; 2],
    },
    /// Max pooling of `size`×`size` windows with stride `size`, the input padded with −∞.
    MaxPool { size: usize, pads: [usize; 4] },
    /// Average pooling of `size`×`size` windows with stride `size`; padding is not counted in
    /// the average (TensorFlow's `same` pooling).
    AvgPool { size: usize, pads: [usize; 4] },
    /// Resizing a feature map to `size` `[H, W]`: `nearest` takes the pixel at
    /// `floor(i · in / out)` (PyTorch's `nearest`), `bilinear` samples at half-pixel centres
    /// (`align_corners=False`).
    Resize { size: [usize; 2], mode: ResizeMode },
    /// Rows to `[batch, ...shape]`: a feature map `[C, H, W]`, or flat `[n]`.
    Reshape { shape: Vec<usize> },
    /// The one-hot of each row's class (`classes` wide) appended to the rows.
    AppendClass { classes: usize },
    /// Each position of a `[C, H, W]` map replaced by its nearest row of `codebook`
    /// (`[entries, C]`, squared Euclidean distance, the first on ties): a VQ-VAE's code; the
    /// indices are the codebook indices.
    Quantize { codebook: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    Nearest,
    Bilinear,
}

/// A run's inference network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub version: u32,
    /// One sample's shape (`[C, H, W]` for images, `[D]` for rows).
    pub input_shape: Vec<usize>,
    pub input_width: usize,
    pub code_width: usize,
    /// Classes of a conditional model, 0 for others: its encoder and decoder then also take
    /// each row's class (and begin with [`Node::AppendClass`]).
    pub classes: usize,
    /// Rows → codes (a VAE's: the posterior mean).
    pub encoder: Vec<Node>,
    /// Codes → the output's logits.
    pub decoder: Vec<Node>,
    /// The function of the decoder's logits that gives the output.
    pub output_activation: Activation,
    /// A reconstruction's logits also add the input's (the input itself, or its logit under a
    /// sigmoid output, clamped to [`skip_clamp`, 1 − `skip_clamp`]): a residual model.
    pub residual: bool,
    pub skip_clamp: f64,
}

/// What a variant describes its network from: its layers, and the widths its encoder (rows,
/// a conditional model's with the class one-hot) and decoder (codes, likewise) start from.
pub struct Inputs<'a> {
    pub layers: &'a Layers,
    pub input_width: usize,
    pub code_width: usize,
}

impl<'a> Inputs<'a> {
    /// The encoder's path, from rows.
    pub fn rows(&self) -> Path<'a> {
        Path::from_rows(self.layers, self.input_width)
    }

    /// The decoder's path, from codes.
    pub fn codes(&self) -> Path<'a> {
        Path::from_rows(self.layers, self.code_width)
    }
}

/// A path being described, node by node, with the shape its tensors have so far.
pub struct Path<'a> {
    layers: &'a Layers,
    nodes: Vec<Node>,
    shape: Vec<usize>,
}

impl<'a> Path<'a> {
    /// A path from rows of `width` values through the layers of `layers`.
    pub fn from_rows(layers: &'a Layers, width: usize) -> Self {
        Self {
            layers,
            nodes: Vec::new(),
            shape: vec![width],
        }
    }

    fn flatten(&mut self) {
        if self.shape.len() > 1 {
            let n = self.shape.iter().product();
            self.push(Node::Reshape { shape: vec![n] }, vec![n]);
        }
    }

    fn push(&mut self, node: Node, shape: Vec<usize>) {
        self.nodes.push(node);
        self.shape = shape;
    }

    /// The linear layer `name` (a feature map is flattened first).
    pub fn linear(mut self, name: &str) -> Self {
        self.flatten();
        let out = self.layers.linear(name).weight.dims()[1];
        let node = Node::Linear {
            weight: format!("{name}.weight"),
            bias: format!("{name}.bias"),
        };
        self.push(node, vec![out]);
        self
    }

    /// `function` applied element-wise (nothing for the identity).
    pub fn activation(mut self, function: Activation) -> Self {
        if function != Activation::Linear {
            let shape = self.shape.clone();
            self.push(Node::Activation { function }, shape);
        }
        self
    }

    /// Nodes as given, ending in `shape`.
    pub fn nodes(mut self, nodes: Vec<Node>, shape: Vec<usize>) -> Self {
        self.nodes.extend(nodes);
        self.shape = shape;
        self
    }

    /// The linear layers `names` in turn, each followed by its activation in `acts` but the
    /// last when `logits` (a decoder's last layer gives logits).
    pub fn linears(self, names: &[String], acts: &[Activation], logits: bool) -> Self {
        let last = names.len().saturating_sub(1);
        names
            .iter()
            .zip(acts)
            .enumerate()
            .fold(self, |p, (i, (name, &a))| {
                let p = p.linear(name);
                if logits && i == last {
                    p
                } else {
                    p.activation(a)
                }
            })
    }

    /// The stack `name` (see [`crate::model::layers::Stack::describe`]), without its last
    /// activation when `logits`.
    pub fn stack(self, name: &str, logits: bool) -> Self {
        let stack = self
            .layers
            .stack(name)
            .expect("the variant built this stack");
        let shape = stack.plan.output_shape.clone();
        self.nodes(stack.describe(name, logits), shape)
    }

    /// The current `[C, H, W]` map quantised by the codebook `name`.
    pub fn quantize(mut self, codebook: &str) -> Self {
        let shape = self.shape.clone();
        let node = Node::Quantize {
            codebook: codebook.to_string(),
        };
        self.push(node, shape);
        self
    }

    /// The nodes, ending flat.
    pub fn finish(mut self) -> Vec<Node> {
        self.flatten();
        self.nodes
    }
}
