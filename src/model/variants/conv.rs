//! The convolutional autoencoder: an encoder and a decoder from the layer-spec language of
//! [`crate::model::layers::spec`], the decoder mirroring the encoder by default.

use std::sync::Arc;

use burn::tensor::Tensor;
use clap::parser::ValueSource;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::graph::Inputs;
use crate::model::layers::spec::shape_str;
use crate::model::layers::{
    LayerSpec, Layers, LayersBuilder, StackActs, infer_shapes, mirror, parse_layers,
};
use crate::model::variant::{ConfigObject, NetworkNodes, Resolved, Variant, VariantConfig};
use crate::model::{Activation, ModelConfig, SharedConfig, objective};

fn default_activation() -> Activation {
    Activation::Relu
}
fn default_code_activation() -> Activation {
    Activation::Linear
}

/// Architecture of a convolutional autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct ConvConfig {
    /// Convolutional layers, comma-separated (e.g. conv:16:3,maxpool:2,conv:8:3,maxpool:2):
    /// the encoder of a conv model, input side first (the code is the flattened output of the
    /// last), or the convolutional trunk of a VAE.
    #[arg(long, value_delimiter = ',', num_args = 1.., required = false)]
    pub encoder: Vec<LayerSpec>,
    /// Decoder layers, code side first (default: the encoder, mirrored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub decoder: Option<Vec<LayerSpec>>,
    /// Activation of layers that do not name one.
    #[serde(default = "default_activation")]
    #[arg(long, required = false)]
    pub activation: Activation,
    /// Activation of the code when the encoder ends in a dense layer.
    #[serde(default = "default_code_activation")]
    #[arg(long, required = false)]
    pub code_activation: Activation,
}

impl Default for ConvConfig {
    fn default() -> Self {
        Self::new(Self::keras_encoder())
    }
}

impl ConvConfig {
    pub fn new(encoder: Vec<LayerSpec>) -> Self {
        Self {
            encoder,
            decoder: None,
            activation: default_activation(),
            code_activation: default_code_activation(),
        }
    }

    /// The Keras blog's encoder: conv 16-8-8 (3x3) with 2x2 max pooling down to 8x4x4.
    pub fn keras_encoder() -> Vec<LayerSpec> {
        parse_layers("conv:16:3,maxpool:2,conv:8:3,maxpool:2,conv:8:3,maxpool:2")
            .expect("valid spec")
    }

    pub fn decoder_layers(&self, input_shape: &[usize]) -> Result<Vec<LayerSpec>> {
        match &self.decoder {
            Some(d) => Ok(d.clone()),
            None => mirror(input_shape, &self.encoder),
        }
    }

    /// The shape of the code for inputs of `input_shape`.
    pub fn code_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(infer_shapes(input_shape, &self.encoder)?
            .pop()
            .expect("input"))
    }

    /// Checks that the layers fit `input_shape` and that the decoder gives it back.
    pub fn check(&self, input_shape: &[usize]) -> Result<()> {
        if input_shape.len() != 3 {
            return Err(Error::invalid(format!(
                "a convolutional model needs images (channels x height x width); these samples have shape {}: set model.input_shape, e.g. [1, 28, 28]",
                shape_str(input_shape)
            )));
        }
        if self.encoder.is_empty() {
            return Err(Error::invalid("the convolutional encoder has no layers"));
        }
        let code = self.code_shape(input_shape)?;
        let decoder = self.decoder_layers(input_shape)?;
        if !decoder.iter().any(LayerSpec::has_weights) {
            return Err(Error::invalid(
                "the decoder needs a layer with weights (conv, convt or dense)",
            ));
        }
        let out = infer_shapes(&code, &decoder)?.pop().expect("code");
        if out.iter().product::<usize>() != input_shape.iter().product::<usize>()
            || (out.len() == 3 && out != input_shape)
        {
            return Err(Error::invalid(format!(
                "the decoder ends in shape {}, the input is {}",
                shape_str(&out),
                shape_str(input_shape)
            )));
        }
        Ok(())
    }
}

impl VariantConfig for ConvConfig {
    fn kind(&self) -> &'static str {
        "conv"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        shared
            .input_shape
            .as_deref()
            .map_or(Ok(()), |s| self.check(s))
    }

    fn resolve(&mut self, shared: &SharedConfig) -> Result<()> {
        if self.decoder.is_none()
            && let Some(shape) = &shared.input_shape
        {
            self.decoder = Some(mirror(shape, &self.encoder)?);
        }
        Ok(())
    }

    fn latent(&self, shared: &SharedConfig) -> usize {
        shared
            .input_shape
            .as_deref()
            .and_then(|s| self.code_shape(s).ok())
            .map_or(0, |s| s.iter().product())
    }

    fn code_activation(&self) -> Activation {
        match self.encoder.last() {
            Some(LayerSpec::Dense { .. }) => self.code_activation,
            _ => self
                .encoder
                .iter()
                .rev()
                .find(|l| l.has_weights())
                .and_then(LayerSpec::act)
                .unwrap_or(self.activation),
        }
    }

    fn describe(&self, shared: &SharedConfig) -> String {
        let input_shape = shared.input_shape.as_deref().unwrap_or(&[]);
        let join = |l: &[LayerSpec]| {
            l.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let code = self
            .code_shape(input_shape)
            .map(|s| shape_str(&s))
            .unwrap_or_else(|_| "?".into());
        let dec = self
            .decoder_layers(input_shape)
            .map(|d| join(&d))
            .unwrap_or_else(|_| "?".into());
        format!(
            "{} [{}] -> code {code} -> [{dec}]",
            shape_str(input_shape),
            join(&self.encoder)
        )
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        self.check(input.input_shape)?;
        let code_last = matches!(self.encoder.last(), Some(LayerSpec::Dense { .. }))
            .then_some(self.code_activation);
        let code = layers.stack(
            "encoder",
            &self.encoder,
            input.input_shape,
            StackActs {
                hidden: self.activation,
                last: code_last,
            },
        )?;
        layers.stack(
            "decoder",
            &self.decoder_layers(input.input_shape)?,
            &code,
            StackActs {
                hidden: self.activation,
                last: Some(input.output),
            },
        )?;
        Ok(Arc::new(Conv {
            output: input.output,
        }))
    }

    /// A new encoder drops the mirrored decoder made for the old one; `--latent N` makes the
    /// code a dense bottleneck of N units after the convolutions.
    fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        let given = |id| flags.value_source(id) == Some(ValueSource::CommandLine);
        if given("encoder") && !given("decoder") {
            self.decoder = None;
        }
        self.update_fields(flags)?;
        if given("latent")
            && let Ok(Some(&units)) = flags.try_get_one::<usize>("latent")
        {
            match self.encoder.last_mut() {
                Some(LayerSpec::Dense { units: u, .. }) => *u = units,
                _ => self.encoder.push(LayerSpec::Dense { units, act: None }),
            }
            if !given("decoder") {
                self.decoder = None;
            }
        }
        Ok(())
    }

    fn borrowed_flags(&self) -> &'static [&'static str] {
        &["latent"]
    }
}

/// The built convolutional autoencoder: two stacks.
#[derive(Debug, Clone)]
pub struct Conv {
    output: Activation,
}

impl Variant for Conv {
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        layers.stack("encoder").expect("built").forward(x, false)
    }

    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        layers.stack("decoder").expect("built").forward(z, true)
    }

    fn describe_network(&self, net: &Inputs) -> Option<NetworkNodes> {
        let encoder = net.rows().stack("encoder", false).finish();
        let decoder = net.codes().stack("decoder", true).finish();
        Some(NetworkNodes { encoder, decoder })
    }

    fn output_activation(&self) -> Activation {
        self.output
    }

    fn rows_independent(&self, config: &ModelConfig) -> bool {
        objective::autoencoder_rows_independent(config)
    }
}
