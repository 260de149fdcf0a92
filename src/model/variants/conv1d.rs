//! The 1-D convolutional autoencoder of time series windows (`[channels, window]` samples, from
//! `--window`): strided convolutions over time down to the code, transposed ones back up, and
//! a last stride-1 convolution to the input's channels — the keras.io "timeseries anomaly
//! detection" model by default (filters 32, 16; kernel 7; stride 2).
//!
//! A 1-D convolution is the 2-D kernel of [`crate::kernels::conv2d`] on a `[channels, 1,
//! time]` map with a `1 × kernel` window, so it trains on aekit's own CPU kernels; weights are
//! kept as matrices (`[out, in·kernel]`) and seen as kernels when applied.

use std::sync::Arc;

use burn::tensor::Tensor;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels::conv2d::{self as gemm_conv, ConvGeometry};
use crate::model::layers::{Layers, LayersBuilder, bernoulli_mask};
use crate::model::network::Network;
use crate::model::objective::LossTerms;
use crate::model::variant::{Batch, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::windows::{self, Variational};
use crate::model::{Activation, ModelConfig, SharedConfig, objective};

fn default_filters() -> Vec<usize> {
    vec![32, 16]
}
fn default_kernel() -> usize {
    7
}
fn default_stride() -> usize {
    2
}
fn default_activation() -> Activation {
    Activation::Relu
}

/// Architecture of a 1-D convolutional autoencoder over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct Conv1dConfig {
    /// Filters of the encoder's convolutions, input side first (the decoder mirrors them);
    /// the code is the last one's output, filters × time steps.
    #[serde(default = "default_filters")]
    #[arg(long, value_delimiter = ',', required = false)]
    pub filters: Vec<usize>,
    /// Time steps each kernel spans (odd).
    #[serde(default = "default_kernel")]
    #[arg(long, required = false)]
    pub kernel: usize,
    /// Stride of each encoder convolution (each halves the time steps at 2); `same` padding,
    /// so a layer keeps ⌈steps / stride⌉.
    #[serde(default = "default_stride")]
    #[arg(
        long = "conv-stride",
        id = "conv_stride",
        value_name = "CONV_STRIDE",
        required = false
    )]
    pub stride: usize,
    /// Activation of every layer but the output.
    #[serde(default = "default_activation")]
    #[arg(long, required = false)]
    pub activation: Activation,
    /// Dropout after every hidden layer but the code while training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub dropout: Option<f64>,
    /// The last convolution gives a Gaussian posterior's mean, a second one beside it
    /// (`encoder.logvar`) its log-variance.
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: Variational,
}

impl Default for Conv1dConfig {
    fn default() -> Self {
        Self {
            filters: default_filters(),
            kernel: default_kernel(),
            stride: default_stride(),
            activation: default_activation(),
            dropout: None,
            vae: Variational::default(),
        }
    }
}

fn window_shape(shape: Option<&[usize]>) -> Result<(usize, usize)> {
    windows::window_shape("conv1d", "convolves over time", shape)
}

impl Conv1dConfig {
    /// Time steps after each encoder layer, the input's first.
    fn lengths(&self, steps: usize) -> Vec<usize> {
        let mut out = vec![steps];
        for _ in &self.filters {
            out.push(out.last().expect("one").div_ceil(self.stride));
        }
        out
    }

    /// The convolution from `[c_in, 1, l_in]` to `[c_out, 1, l_out]` (TensorFlow's `same`).
    fn geometry(&self, c_in: usize, c_out: usize, l_in: usize, stride: usize) -> ConvGeometry {
        let l_out = l_in.div_ceil(stride);
        let total = ((l_out - 1) * stride + self.kernel).saturating_sub(l_in);
        ConvGeometry {
            channels_in: c_in,
            channels_out: c_out,
            kernel: [1, self.kernel],
            stride: [1, stride],
            pad: [0, total / 2],
            input: [1, l_in],
            output: [1, l_out],
        }
    }
}

impl VariantConfig for Conv1dConfig {
    fn kind(&self) -> &'static str {
        "conv1d"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        if self.filters.is_empty() || self.filters.contains(&0) {
            return Err(Error::invalid(
                "--filters lists at least one convolution, each with at least 1 filter",
            ));
        }
        if self.kernel == 0 || self.kernel.is_multiple_of(2) {
            return Err(Error::invalid(format!(
                "--kernel must be odd (a window centred on its step), got {}",
                self.kernel
            )));
        }
        if self.stride == 0 {
            return Err(Error::invalid("--conv-stride must be at least 1"));
        }
        if let Some(p) = self.dropout
            && !(0.0..1.0).contains(&p)
        {
            return Err(Error::invalid(format!(
                "dropout must lie in [0, 1), got {p}"
            )));
        }
        if shared.input_shape.is_some() {
            window_shape(shared.input_shape.as_deref())?;
        }
        self.vae.validate()
    }

    fn capabilities(&self) -> crate::model::variant::Capabilities {
        self.vae.capabilities()
    }

    fn latent(&self, shared: &SharedConfig) -> usize {
        let steps = window_shape(shared.input_shape.as_deref()).map_or(0, |s| s.1);
        self.filters.last().expect("validated") * self.lengths(steps).last().expect("one")
    }

    /// A variational model's code is its posterior mean, unbounded.
    fn code_activation(&self) -> Activation {
        if self.vae.variational {
            Activation::Linear
        } else {
            self.activation
        }
    }

    /// "1x64-32x32-16x16-16x32-32x64-1x64 (kernel 7)"
    fn describe(&self, shared: &SharedConfig) -> String {
        let Ok((c, w)) = window_shape(shared.input_shape.as_deref()) else {
            return format!("{:?} (kernel {})", self.filters, self.kernel);
        };
        let lengths = self.lengths(w);
        let mut stages: Vec<String> = vec![format!("{c}x{w}")];
        stages.extend(
            self.filters
                .iter()
                .zip(&lengths[1..])
                .map(|(f, l)| format!("{f}x{l}")),
        );
        let n = self.filters.len();
        for i in (0..n).rev() {
            stages.push(format!("{}x{}", self.filters[i], lengths[i]));
        }
        stages.push(format!("{c}x{w}"));
        format!(
            "{} (kernel {}){}",
            stages.join("-"),
            self.kernel,
            self.vae.describe()
        )
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        let (channels, steps) = window_shape(Some(input.input_shape))?;
        let lengths = self.lengths(steps);
        let n = self.filters.len();
        let bound = |fan_in: usize, next: Activation| {
            // He's uniform bound before a ReLU, LeCun's otherwise: the activations keep their
            // scale from layer to layer.
            let gain = if next == Activation::Relu { 6.0 } else { 3.0 };
            (gain / fan_in.max(1) as f32).sqrt()
        };
        let mut encoder = Vec::new();
        let mut c_in = channels;
        for (i, &f) in self.filters.iter().enumerate() {
            let g = self.geometry(c_in, f, lengths[i], self.stride);
            let fan_in = c_in * self.kernel;
            layers.matrix(
                format!("encoder.{i}.weight"),
                f,
                fan_in,
                bound(fan_in, self.activation),
            )?;
            layers.matrix(format!("encoder.{i}.bias"), 1, f, 0.0)?;
            encoder.push(g);
            c_in = f;
        }
        if self.vae.variational {
            let g = encoder.last().expect("one layer");
            let fan_in = g.channels_in * self.kernel;
            layers.matrix(
                "encoder.logvar.weight",
                g.channels_out,
                fan_in,
                bound(fan_in, Activation::Linear),
            )?;
            layers.matrix("encoder.logvar.bias", 1, g.channels_out, 0.0)?;
        }
        // The decoder undoes the encoder's layers in turn (its transposes, each from the
        // layer's output back to its input length), then a stride-1 convolution to the input's
        // channels gives the logits.
        let mut decoder = Vec::new();
        for i in (0..n).rev() {
            // As Keras' mirror: the transpose undoing layer i gives layer i's filters.
            let c_small = self.filters[(i + 1).min(n - 1)];
            let c_big = self.filters[i];
            let g = self.geometry(c_big, c_small, lengths[i], self.stride);
            let fan_in = (c_small * self.kernel / self.stride).max(1);
            let name = format!("decoder.{}", n - 1 - i);
            layers.matrix(
                format!("{name}.weight"),
                c_small,
                c_big * self.kernel,
                bound(fan_in, self.activation),
            )?;
            layers.matrix(format!("{name}.bias"), 1, c_big, 0.0)?;
            decoder.push(g);
        }
        let last = self.geometry(self.filters[0], channels, steps, 1);
        let fan_in = self.filters[0] * self.kernel;
        layers.matrix(
            format!("decoder.{n}.weight"),
            channels,
            fan_in,
            bound(fan_in, input.output),
        )?;
        layers.matrix(format!("decoder.{n}.bias"), 1, channels, 0.0)?;
        Ok(Arc::new(Conv1d {
            encoder,
            decoder,
            output: last,
            activation: self.activation,
            output_activation: input.output,
            dropout: self.dropout.unwrap_or(0.0) as f32,
            variational: self.vae.kl_weight(),
        }))
    }
}

/// The built network: each layer's geometry (the convolution a transposed layer undoes).
#[derive(Debug, Clone)]
struct Conv1d {
    encoder: Vec<ConvGeometry>,
    decoder: Vec<ConvGeometry>,
    output: ConvGeometry,
    activation: Activation,
    output_activation: Activation,
    dropout: f32,
    /// The KL weight of a variational model.
    variational: Option<f64>,
}

/// The weight `name` as a `[out, in, 1, kernel]` kernel (`[in, out, 1, kernel]` for a
/// transposed layer, whose matrix is `[in, out·kernel]`), and its bias.
fn kernel(layers: &Layers, name: &str, dims: [usize; 4]) -> (Tensor<4>, Tensor<1>) {
    let w = layers.matrix(&format!("{name}.weight")).reshape(dims);
    let b = layers.matrix(&format!("{name}.bias"));
    let n = b.dims()[1];
    (w, b.reshape([n]))
}

fn convolve(x: Tensor<4>, (w, b): (Tensor<4>, Tensor<1>), g: &ConvGeometry) -> Tensor<4> {
    if gemm_conv::applies(&x) {
        return gemm_conv::conv2d(x, w, b, *g);
    }
    let end = g.output[1].saturating_sub(1) * g.stride[1] + g.kernel[1];
    let end_pad = end.saturating_sub(g.input[1] + g.pad[1]);
    let options = ConvOptions::new_with_padding(g.stride, [(0, 0), (g.pad[1], end_pad)], [1, 1], 1);
    conv2d(x, w, Some(b), options)
}

/// The transposed convolution undoing `g`: from its output length back to its input length.
fn unconvolve(x: Tensor<4>, (w, b): (Tensor<4>, Tensor<1>), g: &ConvGeometry) -> Tensor<4> {
    if gemm_conv::applies(&x) {
        return gemm_conv::conv_transpose2d(x, w, b, *g);
    }
    // burn pads a transposed convolution alike at both ends; the `same` padding puts one more
    // step at the end, cut here.
    let options = ConvTransposeOptions::new(g.stride, [0, g.pad[1]], [0, 0], [1, 1], 1);
    let y = conv_transpose2d(x, w, Some(b), options);
    let [n, c, h, _] = y.dims();
    y.slice([0..n, 0..c, 0..h, 0..g.input[1]])
}

impl Conv1d {
    fn code_len(&self) -> (usize, usize) {
        let last = self.encoder.last().expect("one layer");
        (last.channels_out, last.output[1])
    }

    fn drop(&self, h: Tensor<4>, rng: Option<&mut ChaCha8Rng>) -> Tensor<4> {
        let Some(rng) = rng.filter(|_| self.dropout > 0.0) else {
            return h;
        };
        let dims = h.dims();
        let [n, d] = [dims[0], dims[1] * dims[2] * dims[3]];
        let p = self.dropout;
        let mask = bernoulli_mask(n, d, p, 1.0 / (1.0 - p), rng, &h.device());
        h * mask.reshape(dims)
    }

    /// The encoder up to the last layer's input (`[n, channels, 1, steps]`).
    fn trunk(&self, layers: &Layers, x: Tensor<2>, mut rng: Option<&mut ChaCha8Rng>) -> Tensor<4> {
        let first = &self.encoder[0];
        let [n, _] = x.dims();
        let mut h = x.reshape([n, first.channels_in, 1, first.input[1]]);
        let last = self.encoder.len() - 1;
        for (i, g) in self.encoder[..last].iter().enumerate() {
            let k = kernel(
                layers,
                &format!("encoder.{i}"),
                [g.channels_out, g.channels_in, 1, g.kernel[1]],
            );
            h = self.activation.apply(convolve(h, k, g));
            h = self.drop(h, rng.as_deref_mut());
        }
        h
    }

    /// The last encoder layer's kernel `name` applied to the trunk's output, flattened.
    fn head(&self, layers: &Layers, h: Tensor<4>, name: &str) -> Tensor<2> {
        let g = self.encoder.last().expect("one layer");
        let [n, ..] = h.dims();
        let k = kernel(
            layers,
            name,
            [g.channels_out, g.channels_in, 1, g.kernel[1]],
        );
        convolve(h, k, g).reshape([n, g_len(self.code_len())])
    }

    /// The posterior's mean and log-variance (the last layer's kernel and the one beside
    /// it on the same trunk); `rng` draws the trunk's dropout while training.
    fn gaussian(
        &self,
        layers: &Layers,
        x: Tensor<2>,
        rng: Option<&mut ChaCha8Rng>,
    ) -> (Tensor<2>, Tensor<2>) {
        let h = self.trunk(layers, x, rng);
        let last = format!("encoder.{}", self.encoder.len() - 1);
        let mean = self.head(layers, h.clone(), &last);
        (mean, self.head(layers, h, "encoder.logvar"))
    }

    fn encode_with(
        &self,
        layers: &Layers,
        x: Tensor<2>,
        rng: Option<&mut ChaCha8Rng>,
    ) -> Tensor<2> {
        let h = self.trunk(layers, x, rng);
        let code = self.head(layers, h, &format!("encoder.{}", self.encoder.len() - 1));
        // A variational model's code is the posterior mean, left unbounded.
        match self.variational {
            Some(_) => code,
            None => self.activation.apply(code),
        }
    }

    fn decode_with(
        &self,
        layers: &Layers,
        z: Tensor<2>,
        mut rng: Option<&mut ChaCha8Rng>,
    ) -> Tensor<2> {
        let [n, _] = z.dims();
        let (c, l) = self.code_len();
        let mut h = z.reshape([n, c, 1, l]);
        for (i, g) in self.decoder.iter().enumerate() {
            // The convolution `g` maps [channels_in (big), input] to [channels_out (small),
            // output]; its transpose's weight is [small, big, 1, kernel].
            let k = kernel(
                layers,
                &format!("decoder.{i}"),
                [g.channels_out, g.channels_in, 1, g.kernel[1]],
            );
            h = self.activation.apply(unconvolve(h, k, g));
            h = self.drop(h, rng.as_deref_mut());
        }
        let g = &self.output;
        let k = kernel(
            layers,
            &format!("decoder.{}", self.decoder.len()),
            [g.channels_out, g.channels_in, 1, g.kernel[1]],
        );
        let y = convolve(h, k, g);
        y.reshape([n, g.channels_out * g.output[1]])
    }
}

fn g_len((c, l): (usize, usize)) -> usize {
    c * l
}

impl Variant for Conv1d {
    fn rows_independent(&self, config: &ModelConfig) -> bool {
        objective::autoencoder_rows_independent(config)
    }

    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        self.encode_with(layers, x, None)
    }

    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        self.decode_with(layers, z, None)
    }

    fn encode_training(&self, layers: &Layers, x: Tensor<2>, rng: &mut ChaCha8Rng) -> Tensor<2> {
        self.encode_with(layers, x, Some(rng))
    }

    fn decode_logits_training(
        &self,
        layers: &Layers,
        z: Tensor<2>,
        rng: &mut ChaCha8Rng,
    ) -> Tensor<2> {
        self.decode_with(layers, z, Some(rng))
    }

    fn output_activation(&self) -> Activation {
        self.output_activation
    }

    fn posterior(&self, layers: &Layers, x: Tensor<2>) -> Option<(Tensor<2>, Tensor<2>)> {
        self.variational?;
        Some(self.gaussian(layers, x, None))
    }

    /// The posterior of the training step, with its dropout.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        windows::objective(net, batch, cx, self.variational, |x, rng| {
            self.gaussian(&net.layers, x, Some(rng))
        })
    }
}
