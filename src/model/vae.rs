//! The variational autoencoder (Kingma & Welling 2014): a Gaussian encoder q(z|x) = N(mu,
//! diag(exp(logvar))), the reparameterisation z = mu + exp(logvar/2)·eps, a closed-form KL to
//! N(0, I), and a Bernoulli (BCE) or Gaussian (MSE) decoder likelihood; beta weighs the KL and
//! can be warmed up from 0.

use std::collections::HashMap;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Activation;
use crate::model::conv::{LayerSpec, Stack, StackActs, infer_shapes, mirror};
use crate::model::gemm_linear::linear;
use crate::model::layers::{NamedTensor, ParamFactory, export_linear, import_linear};

fn d_act() -> Activation {
    Activation::Relu
}
fn d_beta() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// Encoder hidden widths (the decoder mirrors them), e.g. [400].
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Width of z.
    pub latent: usize,
    #[serde(default = "d_act")]
    pub activation: Activation,
    /// Weight of the KL term (beta-VAE when not 1).
    #[serde(default = "d_beta")]
    pub beta: f64,
    /// Epochs over which the KL weight rises linearly from 0 to beta.
    #[serde(default)]
    pub kl_warmup_epochs: f64,
    /// Convolutional layers before the dense encoder (a convolutional VAE); the decoder ends
    /// with their mirror. Spec as in [`crate::model::conv`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conv: Vec<LayerSpec>,
    /// The decoder's convolutional layers; absent means `conv` mirrored. Training writes the
    /// mirror here, so a saved config names every layer that was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv_decoder: Option<Vec<LayerSpec>>,
}

impl VaeConfig {
    pub fn new(hidden: Vec<usize>, latent: usize) -> Self {
        Self {
            hidden,
            latent,
            activation: d_act(),
            beta: d_beta(),
            kl_warmup_epochs: 0.0,
            conv: Vec::new(),
            conv_decoder: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 || self.hidden.contains(&0) {
            return Err(Error::invalid("VAE widths must be at least 1"));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) || self.kl_warmup_epochs < 0.0 {
            return Err(Error::invalid(
                "beta and kl_warmup_epochs must be non-negative",
            ));
        }
        Ok(())
    }

    /// KL weight after `epochs` (fractional) of training.
    pub fn kl_weight(&self, epochs: f64) -> f64 {
        if self.kl_warmup_epochs > 0.0 {
            self.beta * (epochs / self.kl_warmup_epochs).min(1.0)
        } else {
            self.beta
        }
    }

    pub fn describe(&self, input_shape: &[usize]) -> String {
        let trunk = if self.conv.is_empty() {
            Some(input_shape.to_vec())
        } else {
            infer_shapes(input_shape, &self.conv)
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

    /// Checks that the convolutional layers fit `input_shape` and can be mirrored.
    pub fn check(&self, input_shape: &[usize]) -> Result<()> {
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

#[derive(Debug, Clone)]
pub struct VaeActivations {
    pub hidden: Activation,
    pub output: Activation,
}

#[derive(Module, Debug)]
pub struct Vae {
    /// Convolutional layers before the dense encoder, if any.
    pub conv_encoder: Option<Stack>,
    pub encoder: Vec<Linear>,
    pub fc_mu: Linear,
    pub fc_logvar: Linear,
    pub decoder: Vec<Linear>,
    /// The mirror of `conv_encoder`, after the dense decoder.
    pub conv_decoder: Option<Stack>,
    #[module(skip)]
    pub acts: VaeActivations,
}

impl Vae {
    pub fn init(
        cfg: &VaeConfig,
        input_shape: &[usize],
        output: Activation,
        params: &mut ParamFactory,
    ) -> Result<Self> {
        let acts = |last| StackActs {
            hidden: cfg.activation,
            last,
        };
        let conv_encoder = if cfg.conv.is_empty() {
            None
        } else {
            cfg.check(input_shape)?;
            Some(Stack::init(&cfg.conv, input_shape, acts(None), params)?)
        };
        let trunk_shape = match &conv_encoder {
            Some(s) => s.plan.output_shape.clone(),
            None => vec![input_shape.iter().product()],
        };
        let flat: usize = trunk_shape.iter().product();
        let mut enc = vec![flat];
        enc.extend(&cfg.hidden);
        let last = *enc.last().expect("input");
        let encoder = enc
            .windows(2)
            .map(|w| params.linear(w[0], w[1], cfg.activation))
            .collect();
        let fc_mu = params.linear(last, cfg.latent, Activation::Linear);
        let fc_logvar = params.linear(last, cfg.latent, Activation::Linear);
        let mut dec = vec![cfg.latent];
        dec.extend(cfg.hidden.iter().rev());
        dec.push(flat);
        let n = dec.len() - 1;
        // With a convolutional trunk the dense decoder feeds hidden layers, not the output.
        let dense_out = if conv_encoder.is_some() {
            cfg.activation
        } else {
            output
        };
        let decoder = dec
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let next = if i + 1 == n {
                    dense_out
                } else {
                    cfg.activation
                };
                params.linear(w[0], w[1], next)
            })
            .collect();
        let conv_decoder = match &conv_encoder {
            Some(_) => {
                let layers = match &cfg.conv_decoder {
                    Some(l) => l.clone(),
                    None => mirror(input_shape, &cfg.conv)?,
                };
                debug_assert_eq!(
                    infer_shapes(&trunk_shape, &layers)?.pop(),
                    Some(input_shape.to_vec())
                );
                Some(Stack::init(
                    &layers,
                    &trunk_shape,
                    acts(Some(output)),
                    params,
                )?)
            }
            None => None,
        };
        Ok(Self {
            conv_encoder,
            encoder,
            fc_mu,
            fc_logvar,
            decoder,
            conv_decoder,
            acts: VaeActivations {
                hidden: cfg.activation,
                output,
            },
        })
    }

    /// `(mu, logvar)` of q(z|x).
    pub fn posterior(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let x = match &self.conv_encoder {
            Some(c) => c.forward(x, false),
            None => x,
        };
        let h = self
            .encoder
            .iter()
            .fold(x, |h, l| self.acts.hidden.apply(linear(l, h)));
        (linear(&self.fc_mu, h.clone()), linear(&self.fc_logvar, h))
    }

    /// The deterministic code: the posterior mean.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.posterior(x).0
    }

    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<2> {
        let last = self.decoder.len() - 1;
        let mut h = z;
        for (i, l) in self.decoder.iter().enumerate() {
            h = linear(l, h);
            if i < last || self.conv_decoder.is_some() {
                h = self.acts.hidden.apply(h);
            }
        }
        match &self.conv_decoder {
            Some(c) => c.forward(h, true),
            None => h,
        }
    }

    pub fn export(&self, out: &mut Vec<NamedTensor>) {
        if let Some(c) = &self.conv_encoder {
            c.export("conv_encoder", out);
        }
        for (i, l) in self.encoder.iter().enumerate() {
            export_linear(&format!("encoder.{i}"), l, out);
        }
        export_linear("fc_mu", &self.fc_mu, out);
        export_linear("fc_logvar", &self.fc_logvar, out);
        for (i, l) in self.decoder.iter().enumerate() {
            export_linear(&format!("decoder.{i}"), l, out);
        }
        if let Some(c) = &self.conv_decoder {
            c.export("conv_decoder", out);
        }
    }

    pub fn import(self, t: &HashMap<String, NamedTensor>) -> Result<Self> {
        let stack = |layers: Vec<Linear>, prefix: &str| -> Result<Vec<Linear>> {
            layers
                .into_iter()
                .enumerate()
                .map(|(i, l)| import_linear(&format!("{prefix}.{i}"), l, t))
                .collect()
        };
        let conv = |s: Option<Stack>, prefix: &str| s.map(|s| s.import(prefix, t)).transpose();
        Ok(Self {
            conv_encoder: conv(self.conv_encoder, "conv_encoder")?,
            encoder: stack(self.encoder, "encoder")?,
            fc_mu: import_linear("fc_mu", self.fc_mu, t)?,
            fc_logvar: import_linear("fc_logvar", self.fc_logvar, t)?,
            decoder: stack(self.decoder, "decoder")?,
            conv_decoder: conv(self.conv_decoder, "conv_decoder")?,
            acts: self.acts,
        })
    }
}

/// `KL(N(mu, exp(logvar)) ‖ N(0, I))` per sample: `-½ Σ (1 + logvar - mu² - exp(logvar))`.
pub fn kl_per_sample(mu: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let inner = logvar.clone().add_scalar(1.0) - mu.clone() * mu - logvar.exp();
    inner.sum_dim(1).squeeze_dim(1).mul_scalar(-0.5)
}

impl Vae {
    /// Per-sample reconstruction loss (summed over features) of one posterior sample, and
    /// per-sample KL: the two terms of the negative ELBO. `rng` draws eps.
    pub fn elbo_terms(
        &self,
        x: Tensor<2>,
        target: Tensor<2>,
        loss: crate::model::ReconLoss,
        rng: &mut ChaCha8Rng,
    ) -> (Tensor<1>, Tensor<1>) {
        let (mu, logvar) = self.posterior(x);
        let [n, l] = mu.dims();
        let eps = crate::model::layers::normal_tensor(n, l, rng, &mu.device());
        let z = reparameterise(mu.clone(), logvar.clone(), eps);
        let recon =
            crate::model::loss::per_sample(loss, self.acts.output, self.decode_logits(z), target);
        (recon, kl_per_sample(mu, logvar))
    }
}

/// `z = mu + exp(logvar / 2) · eps`.
pub fn reparameterise(mu: Tensor<2>, logvar: Tensor<2>, eps: Tensor<2>) -> Tensor<2> {
    mu + logvar.mul_scalar(0.5).exp() * eps
}
