//! The dense (fully connected) autoencoder: a stack of linear layers down to the code and a
//! stack back up, mirrored by default.

use std::collections::HashMap;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Activation;
use crate::model::gemm_linear::linear;
use crate::model::layers::{NamedTensor, ParamFactory, export_linear, import_linear};

fn default_activation() -> Activation {
    Activation::Relu
}
fn default_code_activation() -> Activation {
    Activation::Linear
}

/// Architecture of a dense autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseConfig {
    /// Encoder hidden widths, input side first (e.g. [1000, 500, 250]).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Width of the code.
    pub latent: usize,
    /// Activation of every hidden layer unless listed per layer.
    #[serde(default = "default_activation")]
    pub activation: Activation,
    /// Per-layer encoder activations (one per hidden layer), overriding `activation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_activations: Option<Vec<Activation>>,
    /// Activation of the code layer.
    #[serde(default = "default_code_activation")]
    pub code_activation: Activation,
    /// Decoder hidden widths, code side first; absent means the encoder's, mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Per-layer decoder activations (one per decoder hidden layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_activations: Option<Vec<Activation>>,
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

    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 {
            return Err(Error::invalid("latent size must be at least 1"));
        }
        if self.hidden.contains(&0) || self.decoder_widths().contains(&0) {
            return Err(Error::invalid("hidden layer widths must be at least 1"));
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

    /// "784-1000-500-250-30-250-500-1000-784"
    pub fn describe(&self, input_dim: usize) -> String {
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
}

/// Activations applied after each layer; kept beside the weights, not learned.
#[derive(Debug, Clone)]
pub struct DenseActivations {
    pub encoder: Vec<Activation>,
    pub decoder: Vec<Activation>,
}

#[derive(Module, Debug)]
pub struct DenseAutoencoder {
    pub encoder: Vec<Linear>,
    pub decoder: Vec<Linear>,
    #[module(skip)]
    pub acts: DenseActivations,
}

impl DenseAutoencoder {
    pub fn init(
        cfg: &DenseConfig,
        input_dim: usize,
        output: Activation,
        params: &mut ParamFactory,
    ) -> Self {
        let mut enc_acts = cfg.encoder_acts();
        enc_acts.push(cfg.code_activation);
        let mut dec_acts = cfg.decoder_acts();
        dec_acts.push(output);

        let mut enc_widths = vec![input_dim];
        enc_widths.extend(&cfg.hidden);
        enc_widths.push(cfg.latent);
        let mut dec_widths = vec![cfg.latent];
        dec_widths.extend(cfg.decoder_widths());
        dec_widths.push(input_dim);

        let mut stack = |widths: &[usize], acts: &[Activation]| {
            widths
                .windows(2)
                .zip(acts)
                .map(|(w, &a)| params.linear(w[0], w[1], a))
                .collect::<Vec<_>>()
        };
        let encoder = stack(&enc_widths, &enc_acts);
        let decoder = stack(&dec_widths, &dec_acts);
        Self {
            encoder,
            decoder,
            acts: DenseActivations {
                encoder: enc_acts,
                decoder: dec_acts,
            },
        }
    }

    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encoder
            .iter()
            .zip(&self.acts.encoder)
            .fold(x, |h, (layer, act)| act.apply(linear(layer, h)))
    }

    /// The decoder up to the last layer's pre-activation, so that losses can use logits.
    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<2> {
        let last = self.decoder.len() - 1;
        let mut h = z;
        for (i, (layer, act)) in self.decoder.iter().zip(&self.acts.decoder).enumerate() {
            h = linear(layer, h);
            if i < last {
                h = act.apply(h);
            }
        }
        h
    }

    pub fn output_activation(&self) -> Activation {
        *self.acts.decoder.last().expect("decoder has layers")
    }

    pub fn export(&self, out: &mut Vec<NamedTensor>) {
        for (i, l) in self.encoder.iter().enumerate() {
            export_linear(&format!("encoder.{i}"), l, out);
        }
        for (i, l) in self.decoder.iter().enumerate() {
            export_linear(&format!("decoder.{i}"), l, out);
        }
    }

    pub fn import(self, tensors: &HashMap<String, NamedTensor>) -> Result<Self> {
        let encoder = self
            .encoder
            .into_iter()
            .enumerate()
            .map(|(i, l)| import_linear(&format!("encoder.{i}"), l, tensors))
            .collect::<Result<Vec<_>>>()?;
        let decoder = self
            .decoder
            .into_iter()
            .enumerate()
            .map(|(i, l)| import_linear(&format!("decoder.{i}"), l, tensors))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            encoder,
            decoder,
            acts: self.acts,
        })
    }
}
