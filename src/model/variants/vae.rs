//! The variational autoencoder (Kingma & Welling 2014): a Gaussian encoder q(z|x) = N(mu,
//! diag(exp(logvar))), the reparameterisation z = mu + exp(logvar/2)·eps, a closed-form KL to
//! N(0, I), and a Bernoulli (BCE) or Gaussian (MSE) decoder likelihood; beta weighs the KL and
//! can be warmed up from 0, and a capacity schedule (Burgess et al. 2018) lets the KL grow to
//! a target that rises during training. Convolutional layers before the dense encoder make it a
//! convolutional VAE.

use std::sync::Arc;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels::linear::linear;
use crate::model::graph::Inputs;
use crate::model::layers::{LayerSpec, Layers, LayersBuilder, StackActs, infer_shapes, mirror};
use crate::model::objective::{self, KlPressure, LossTerms};
use crate::model::variant::{
    Batch, Capabilities, NetworkNodes, Resolved, StepContext, Variant, VariantConfig,
};
use crate::model::{Activation, ModelConfig, Network, SharedConfig};

fn d_act() -> Activation {
    Activation::Relu
}
fn d_beta() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct VaeConfig {
    /// Encoder hidden widths (the decoder mirrors them), e.g. [400].
    #[serde(default)]
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub hidden: Vec<usize>,
    /// Width of z.
    #[arg(long, required = false)]
    pub latent: usize,
    #[serde(default = "d_act")]
    #[arg(long, required = false)]
    pub activation: Activation,
    /// Weight of the KL term (beta-VAE when not 1).
    #[serde(default = "d_beta")]
    #[arg(long, required = false)]
    pub beta: f64,
    /// Epochs over which the KL weight rises linearly from 0 to beta.
    #[serde(default)]
    #[arg(long, required = false)]
    pub kl_warmup_epochs: f64,
    /// KL capacity in nats per sample (Burgess et al. 2018): the objective becomes
    /// reconstruction + beta·|KL − C|, with C rising linearly from 0 to this value over
    /// --capacity-epochs. Use with a large beta (e.g. 100–1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub capacity: Option<f64>,
    /// Epochs over which the capacity rises from 0 to --capacity.
    #[serde(default)]
    #[arg(long, required = false)]
    pub capacity_epochs: f64,
    /// Convolutional layers before the dense encoder (a convolutional VAE); the decoder ends
    /// with their mirror. Spec as for --model conv.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[arg(long = "encoder", id = "encoder", value_name = "ENCODER", value_delimiter = ',', num_args = 1..)]
    pub conv: Vec<LayerSpec>,
    /// The decoder's convolutional layers; absent means `conv` mirrored. Training writes the
    /// mirror here, so a saved config names every layer that was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub conv_decoder: Option<Vec<LayerSpec>>,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self::new(vec![256], 8)
    }
}

impl VaeConfig {
    pub fn new(hidden: Vec<usize>, latent: usize) -> Self {
        Self {
            hidden,
            latent,
            activation: d_act(),
            beta: d_beta(),
            kl_warmup_epochs: 0.0,
            capacity: None,
            capacity_epochs: 0.0,
            conv: Vec::new(),
            conv_decoder: None,
        }
    }

    /// KL weight after `epochs` (fractional) of training.
    pub fn kl_weight(&self, epochs: f64) -> f64 {
        ramp(self.beta, self.kl_warmup_epochs, epochs)
    }

    /// The KL capacity after `epochs` of training, if the objective has one.
    pub fn capacity_at(&self, epochs: f64) -> Option<f64> {
        self.capacity.map(|c| ramp(c, self.capacity_epochs, epochs))
    }

    /// Checks that the convolutional layers fit `input_shape` and can be mirrored.
    fn check_conv(&self, input_shape: &[usize]) -> Result<()> {
        if self.conv.is_empty() {
            return Ok(());
        }
        if input_shape.len() != 3 {
            return Err(Error::invalid(
                "a convolutional VAE needs images (channels x height x width)",
            ));
        }
        let Some(decoder) = &self.conv_decoder else {
            return mirror(input_shape, &self.conv).map(|_| ());
        };
        let trunk = infer_shapes(input_shape, &self.conv)?.pop().expect("input");
        let out = infer_shapes(&trunk, decoder)?.pop().expect("input");
        if out != input_shape {
            return Err(Error::invalid(format!(
                "the VAE's conv_decoder gives {out:?}, not the input shape {input_shape:?}"
            )));
        }
        Ok(())
    }
}

/// `end · min(epochs / over, 1)`: a linear rise from 0 to `end` over `over` epochs.
fn ramp(end: f64, over: f64, epochs: f64) -> f64 {
    if over > 0.0 {
        end * (epochs / over).min(1.0)
    } else {
        end
    }
}

impl VariantConfig for VaeConfig {
    fn kind(&self) -> &'static str {
        "vae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        if self.latent == 0 || self.hidden.contains(&0) {
            return Err(Error::invalid("VAE widths must be at least 1"));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) || self.kl_warmup_epochs < 0.0 {
            return Err(Error::invalid(
                "beta and kl_warmup_epochs must be non-negative",
            ));
        }
        if self.capacity.is_some_and(|c| !(c >= 0.0 && c.is_finite()))
            || !(self.capacity_epochs >= 0.0 && self.capacity_epochs.is_finite())
        {
            return Err(Error::invalid(
                "capacity and capacity_epochs must be non-negative numbers",
            ));
        }
        if shared.hidden_noise.is_some() {
            return Err(Error::invalid(
                "a VAE's code is already noisy (it is sampled): hidden_noise is for dense and conv models",
            ));
        }
        if shared.residual == Some(true) {
            return Err(Error::invalid(
                "residual is for dense and conv restoration models, not VAEs",
            ));
        }
        shared
            .input_shape
            .as_deref()
            .map_or(Ok(()), |s| self.check_conv(s))
    }

    fn resolve(&mut self, shared: &SharedConfig) -> Result<()> {
        if !self.conv.is_empty()
            && self.conv_decoder.is_none()
            && let Some(shape) = &shared.input_shape
        {
            self.conv_decoder = Some(mirror(shape, &self.conv)?);
        }
        Ok(())
    }

    fn latent(&self, _shared: &SharedConfig) -> usize {
        self.latent
    }

    fn code_activation(&self) -> Activation {
        Activation::Linear
    }

    fn describe(&self, shared: &SharedConfig) -> String {
        let d = shared.input_dim.unwrap_or(0);
        let input_shape = shared.input_shape.clone().unwrap_or_else(|| vec![d]);
        let trunk = if self.conv.is_empty() {
            Some(input_shape)
        } else {
            infer_shapes(&input_shape, &self.conv)
                .ok()
                .and_then(|mut s| s.pop())
        };
        let input_dim = trunk.map_or(0, |s| s.iter().product());
        let mut w = vec![input_dim];
        w.extend(&self.hidden);
        w.push(self.latent);
        w.extend(self.hidden.iter().rev());
        w.push(input_dim);
        let s: Vec<String> = w.iter().map(|v| v.to_string()).collect();
        let conv = if self.conv.is_empty() {
            String::new()
        } else {
            let l: Vec<String> = self.conv.iter().map(|l| l.to_string()).collect();
            format!("conv [{}] then ", l.join(","))
        };
        format!("{conv}{} beta {}", s.join("-"), self.beta)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            prior: true,
            stochastic_encoder: true,
            ..Capabilities::default()
        }
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(self.build_vae(input, layers)?))
    }
}

impl VaeConfig {
    /// The layers and the built [`Vae`], for variants that extend it (the IWAE).
    pub fn build_vae(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Vae> {
        self.build_conditioned(input, 0, layers)
    }

    /// [`Self::build_vae`] for a dense VAE whose encoder inputs and decoder codes are followed
    /// by `condition` more columns (a class one-hot: the conditional VAE).
    pub fn build_conditioned(
        &self,
        input: &Resolved,
        condition: usize,
        layers: &mut LayersBuilder,
    ) -> Result<Vae> {
        if condition > 0 && !self.conv.is_empty() {
            return Err(Error::invalid(
                "a conditional VAE is dense: it takes no convolutional encoder",
            ));
        }
        let input_shape = input.input_shape;
        let output = input.output;
        let acts = |last| StackActs {
            hidden: self.activation,
            last,
        };
        let conv = !self.conv.is_empty();
        let trunk_shape = if conv {
            self.check_conv(input_shape)?;
            layers.stack("conv_encoder", &self.conv, input_shape, acts(None))?
        } else {
            vec![input_shape.iter().product()]
        };
        let flat: usize = trunk_shape.iter().product();
        let mut enc = vec![flat + condition];
        enc.extend(&self.hidden);
        let last = *enc.last().expect("input");
        for (i, w) in enc.windows(2).enumerate() {
            layers.linear(format!("encoder.{i}"), w[0], w[1], self.activation)?;
        }
        layers.linear("fc_mu", last, self.latent, Activation::Linear)?;
        layers.linear("fc_logvar", last, self.latent, Activation::Linear)?;
        let mut dec = vec![self.latent + condition];
        dec.extend(self.hidden.iter().rev());
        dec.push(flat);
        let n = dec.len() - 1;
        // With a convolutional trunk the dense decoder feeds hidden layers, not the output.
        let dense_out = if conv { self.activation } else { output };
        for (i, w) in dec.windows(2).enumerate() {
            let next = if i + 1 == n {
                dense_out
            } else {
                self.activation
            };
            layers.linear(format!("decoder.{i}"), w[0], w[1], next)?;
        }
        if conv {
            let specs = match &self.conv_decoder {
                Some(l) => l.clone(),
                None => mirror(input_shape, &self.conv)?,
            };
            debug_assert_eq!(
                infer_shapes(&trunk_shape, &specs)?.pop(),
                Some(input_shape.to_vec())
            );
            layers.stack("conv_decoder", &specs, &trunk_shape, acts(Some(output)))?;
        }
        Ok(Vae {
            hidden: self.activation,
            output,
            conv,
            schedule: self.clone(),
        })
    }
}

/// The built VAE: what its forward pass and objective need beside the layers.
#[derive(Debug, Clone)]
pub struct Vae {
    hidden: Activation,
    output: Activation,
    /// Whether it has convolutional stacks around the dense part.
    conv: bool,
    /// The settings the KL weight and capacity schedules are read from.
    schedule: VaeConfig,
}

impl Variant for Vae {
    /// The deterministic code: the posterior mean.
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        self.gaussian(layers, x).0
    }

    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        let decoder: Vec<_> = layers.linears("decoder").collect();
        let last = decoder.len() - 1;
        let mut h = z;
        for (i, l) in decoder.into_iter().enumerate() {
            h = linear(l, h);
            if i < last || self.conv {
                h = self.hidden.apply(h);
            }
        }
        match layers.stack("conv_decoder") {
            Some(c) => c.forward(h, true),
            None => h,
        }
    }

    fn output_activation(&self) -> Activation {
        self.output
    }

    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let (mu, logvar) = self.gaussian(&net.layers, batch.input);
        objective::negative_elbo(
            net,
            (mu, logvar),
            batch.target,
            cx,
            self.kl_pressure(cx.epochs_done),
        )
    }

    fn posterior(&self, layers: &Layers, x: Tensor<2>) -> Option<(Tensor<2>, Tensor<2>)> {
        Some(self.gaussian(layers, x))
    }

    /// The encoder up to the posterior mean; the decoder as [`Variant::decode_logits`] runs.
    fn describe_network(&self, net: &Inputs) -> Option<NetworkNodes> {
        let conv = net.layers.stack("conv_encoder").is_some();
        let mut encoder = net.rows();
        if conv {
            encoder = encoder.stack("conv_encoder", false);
        }
        let names = net.layers.members("encoder");
        let hidden = vec![self.hidden; names.len()];
        let encoder = encoder.linears(&names, &hidden, false).linear("fc_mu");
        // With a convolutional trunk the dense decoder's last layer feeds hidden layers.
        let names = net.layers.members("decoder");
        let hidden = vec![self.hidden; names.len()];
        let mut decoder = net.codes().linears(&names, &hidden, !self.conv);
        if conv {
            decoder = decoder.stack("conv_decoder", true);
        }
        Some(NetworkNodes {
            encoder: encoder.finish(),
            decoder: decoder.finish(),
        })
    }

    /// A capacity pulls the batch's mean KL towards C, which couples the rows.
    fn rows_independent(&self, _config: &ModelConfig) -> bool {
        self.schedule.capacity.is_none()
    }
}

impl Vae {
    /// The KL weight (beta, warmed up) after `epochs` of training.
    pub fn kl_weight(&self, epochs: f64) -> f64 {
        self.schedule.kl_weight(epochs)
    }

    /// How the KL term enters the objective after `epochs` of training: beta (warmed up) and
    /// the capacity at that point.
    pub fn kl_pressure(&self, epochs: f64) -> KlPressure {
        KlPressure {
            weight: self.kl_weight(epochs),
            capacity: self.schedule.capacity_at(epochs),
        }
    }

    /// `(mu, logvar)` of q(z|x).
    pub fn gaussian(&self, layers: &Layers, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let x = match layers.stack("conv_encoder") {
            Some(c) => c.forward(x, false),
            None => x,
        };
        let h = layers
            .linears("encoder")
            .fold(x, |h, l| self.hidden.apply(linear(l, h)));
        (
            linear(layers.linear("fc_mu"), h.clone()),
            linear(layers.linear("fc_logvar"), h),
        )
    }
}
