//! The dense (fully connected) autoencoder: a stack of linear layers down to the code and a
//! stack back up, mirrored by default. With the shared settings it is also the denoising,
//! sparse and contractive autoencoder.

use std::sync::Arc;

use burn::tensor::Tensor;
use clap::parser::ValueSource;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels::linear::linear;
use crate::model::graph::Inputs;
use crate::model::layers::{Layers, LayersBuilder, bernoulli_mask};
use crate::model::variant::{ConfigObject, NetworkNodes, Resolved, Variant, VariantConfig};
use crate::model::{Activation, ModelConfig, SharedConfig, objective, penalty};

fn default_activation() -> Activation {
    Activation::Relu
}
fn default_code_activation() -> Activation {
    Activation::Linear
}

/// Architecture of a dense autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct DenseConfig {
    /// Encoder hidden widths, input side first, comma-separated (e.g. 1000,500,250); the flag
    /// without a value for none.
    #[serde(default)]
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub hidden: Vec<usize>,
    /// Width of the code.
    #[arg(long, required = false)]
    pub latent: usize,
    /// Activation of every hidden layer unless listed per layer.
    #[serde(default = "default_activation")]
    #[arg(long, required = false)]
    pub activation: Activation,
    /// Per-layer encoder activations (one per hidden layer), overriding `activation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',')]
    pub encoder_activations: Option<Vec<Activation>>,
    /// Activation of the code layer.
    #[serde(default = "default_code_activation")]
    #[arg(long, required = false)]
    pub code_activation: Activation,
    /// Decoder hidden widths, code side first (default: the encoder's, mirrored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Per-layer decoder activations (one per decoder hidden layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',')]
    pub decoder_activations: Option<Vec<Activation>>,
    /// Dropout on every hidden layer while training (probability a unit is dropped; the
    /// survivors are scaled by 1/(1-p)), not on the code or the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Dropout on the code while training (after its activation), as PyOD's AutoEncoder
    /// drops code units too: a code as wide as a narrow table's rows cannot then pass them
    /// through unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub code_dropout: Option<f64>,
}

impl Default for DenseConfig {
    fn default() -> Self {
        Self::new(vec![256], 8)
    }
}

impl DenseConfig {
    pub fn new(hidden: Vec<usize>, latent: usize) -> Self {
        Self {
            hidden,
            latent,
            activation: default_activation(),
            encoder_activations: None,
            code_activation: default_code_activation(),
            decoder_hidden: None,
            decoder_activations: None,
            dropout: None,
            code_dropout: None,
        }
    }

    pub fn decoder_widths(&self) -> Vec<usize> {
        self.decoder_hidden
            .clone()
            .unwrap_or_else(|| self.hidden.iter().rev().copied().collect())
    }

    fn encoder_acts(&self) -> Vec<Activation> {
        self.encoder_activations
            .clone()
            .unwrap_or_else(|| vec![self.activation; self.hidden.len()])
    }

    fn decoder_acts(&self) -> Vec<Activation> {
        self.decoder_activations
            .clone()
            .unwrap_or_else(|| vec![self.activation; self.decoder_widths().len()])
    }
}

impl VariantConfig for DenseConfig {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn validate(&self, _shared: &SharedConfig) -> Result<()> {
        if self.latent == 0 {
            return Err(Error::invalid("latent size must be at least 1"));
        }
        if self.hidden.contains(&0) || self.decoder_widths().contains(&0) {
            return Err(Error::invalid("hidden layer widths must be at least 1"));
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("code_dropout", self.code_dropout),
        ] {
            if let Some(p) = p
                && !(0.0..1.0).contains(&p)
            {
                return Err(Error::invalid(format!(
                    "{name} must lie in [0, 1), got {p}"
                )));
            }
        }
        if self.encoder_acts().len() != self.hidden.len() {
            return Err(Error::invalid(format!(
                "encoder_activations lists {} activations for {} hidden layers",
                self.encoder_acts().len(),
                self.hidden.len()
            )));
        }
        if self.decoder_acts().len() != self.decoder_widths().len() {
            return Err(Error::invalid(format!(
                "decoder_activations lists {} activations for {} decoder layers",
                self.decoder_acts().len(),
                self.decoder_widths().len()
            )));
        }
        Ok(())
    }

    fn latent(&self, _shared: &SharedConfig) -> usize {
        self.latent
    }

    fn code_activation(&self) -> Activation {
        self.code_activation
    }

    /// "784-1000-500-250-30-250-500-1000-784"
    fn describe(&self, shared: &SharedConfig) -> String {
        let input_dim = shared.input_dim.unwrap_or(0);
        let mut widths = vec![input_dim];
        widths.extend(&self.hidden);
        widths.push(self.latent);
        widths.extend(self.decoder_widths());
        widths.push(input_dim);
        widths
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("-")
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(self.build_dense(input, layers)?))
    }

    /// New hidden widths drop per-layer lists made for the old ones.
    fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        let given = |id| flags.value_source(id) == Some(ValueSource::CommandLine);
        if given("hidden") {
            self.decoder_hidden = None;
            self.encoder_activations = None;
            self.decoder_activations = None;
        }
        if given("decoder_hidden") {
            self.decoder_activations = None;
        }
        self.update_fields(flags)
    }
}

impl DenseConfig {
    /// The layers and the built [`Dense`] network, for variants that extend it (the RAE).
    pub fn build_dense(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Dense> {
        let mut encoder = self.encoder_acts();
        encoder.push(self.code_activation);
        let mut decoder = self.decoder_acts();
        decoder.push(input.output);

        let mut enc_widths = vec![input.input_dim];
        enc_widths.extend(&self.hidden);
        enc_widths.push(self.latent);
        let mut dec_widths = vec![self.latent];
        dec_widths.extend(self.decoder_widths());
        dec_widths.push(input.input_dim);

        for (group, widths, acts) in [
            ("encoder", &enc_widths, &encoder),
            ("decoder", &dec_widths, &decoder),
        ] {
            for (i, (w, &a)) in widths.windows(2).zip(acts.iter()).enumerate() {
                layers.linear(format!("{group}.{i}"), w[0], w[1], a)?;
            }
        }
        Ok(Dense {
            encoder,
            decoder,
            dropout: self.dropout.unwrap_or(0.0) as f32,
            code_dropout: self.code_dropout.unwrap_or(0.0) as f32,
        })
    }
}

/// Activations after each layer, code and output included, and the training-time dropout of
/// the hidden layers and of the code.
#[derive(Debug, Clone)]
pub struct Dense {
    pub encoder: Vec<Activation>,
    pub decoder: Vec<Activation>,
    pub dropout: f32,
    pub code_dropout: f32,
}

impl Dense {
    /// The encoder with `hidden` applied to each hidden layer's output (not the code's).
    fn encode_with(
        &self,
        layers: &Layers,
        x: Tensor<2>,
        mut hidden: impl FnMut(Tensor<2>) -> Tensor<2>,
    ) -> Tensor<2> {
        let code = self.encoder.len() - 1;
        let mut h = x;
        for (i, (layer, act)) in layers.linears("encoder").zip(&self.encoder).enumerate() {
            h = act.apply(linear(layer, h));
            if i < code {
                h = hidden(h);
            }
        }
        h
    }

    /// The decoder up to the output's logits, `hidden` applied to each hidden layer's output.
    fn decode_logits_with(
        &self,
        layers: &Layers,
        z: Tensor<2>,
        mut hidden: impl FnMut(Tensor<2>) -> Tensor<2>,
    ) -> Tensor<2> {
        let last = self.decoder.len() - 1;
        let mut h = z;
        for (i, (layer, act)) in layers.linears("decoder").zip(&self.decoder).enumerate() {
            h = linear(layer, h);
            if i < last {
                h = hidden(act.apply(h));
            }
        }
        h
    }

    /// Inverted dropout of probability `p`: what the next layer sees has the expectation it
    /// has at inference.
    fn drop(h: Tensor<2>, p: f32, rng: &mut ChaCha8Rng) -> Tensor<2> {
        let [n, d] = h.dims();
        let mask = bernoulli_mask(n, d, p, 1.0 / (1.0 - p), rng, &h.device());
        h * mask
    }
}

impl Variant for Dense {
    fn rows_independent(&self, config: &ModelConfig) -> bool {
        objective::autoencoder_rows_independent(config)
    }

    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        self.encode_with(layers, x, |h| h)
    }

    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        self.decode_logits_with(layers, z, |h| h)
    }

    fn encode_training(&self, layers: &Layers, x: Tensor<2>, rng: &mut ChaCha8Rng) -> Tensor<2> {
        let code = if self.dropout == 0.0 {
            self.encode(layers, x)
        } else {
            self.encode_with(layers, x, |h| Self::drop(h, self.dropout, rng))
        };
        if self.code_dropout == 0.0 {
            return code;
        }
        Self::drop(code, self.code_dropout, rng)
    }

    fn decode_logits_training(
        &self,
        layers: &Layers,
        z: Tensor<2>,
        rng: &mut ChaCha8Rng,
    ) -> Tensor<2> {
        if self.dropout == 0.0 {
            return self.decode_logits(layers, z);
        }
        self.decode_logits_with(layers, z, |h| Self::drop(h, self.dropout, rng))
    }

    fn output_activation(&self) -> Activation {
        *self.decoder.last().expect("decoder has layers")
    }

    fn describe_network(&self, net: &Inputs) -> Option<NetworkNodes> {
        let (enc, dec) = (net.layers.members("encoder"), net.layers.members("decoder"));
        Some(NetworkNodes {
            encoder: net.rows().linears(&enc, &self.encoder, false).finish(),
            // The decoder's last layer gives logits: the output activation is the model's.
            decoder: net.codes().linears(&dec, &self.decoder, true).finish(),
        })
    }

    /// One sigmoid layer: `‖∂h/∂x‖²_F` is exact from the code and the weights.
    fn contractive_closed_form(&self, layers: &Layers, x: Tensor<2>) -> Option<Tensor<1>> {
        if self.encoder.len() != 1 || self.encoder[0] != Activation::Sigmoid {
            return None;
        }
        let w = layers.linear("encoder.0").weight.val();
        Some(penalty::contractive_sigmoid_layer(
            self.encode(layers, x),
            w,
        ))
    }
}
