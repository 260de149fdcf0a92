//! The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016): a VAE's network
//! trained on the k-sample bound `log (1/k) Σ_j p(x, z_j) / q(z_j|x)`, z_j ~ q(z|x), which is
//! the ELBO at k = 1 and tightens towards log p(x) as k grows. Its encoder and decoder are the
//! VAE's (same settings, same tensor names); only the objective differs.
//!
//! Two variants of the bound from Rainforth et al. 2018 ("Tighter variational bounds are not
//! necessarily better"), whose encoders learn better than under the plain k-sample bound:
//! MIWAE (`groups` M: the mean of M independent k-sample bounds, M·k samples per input) and
//! CIWAE (`ciwae_beta` β: β · ELBO + (1 − β) · the k-sample bound, on the same k samples).

use std::sync::Arc;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::layers::LayersBuilder;
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{Batch, Capabilities, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::vae::{Vae, VaeConfig};
use crate::model::{ModelConfig, Network, SharedConfig};

fn d_samples() -> usize {
    5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct IwaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: VaeConfig,
    /// Importance samples per input (k) in the training bound: 1 is the VAE's ELBO (with a
    /// sampled KL), larger k a tighter bound at k decoder passes per input.
    #[serde(default = "d_samples")]
    #[arg(long, required = false)]
    pub importance_samples: usize,
    /// MIWAE: average this many independent k-sample bounds (M; 1 is the IWAE). Costs M·k
    /// decoder passes per input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub groups: Option<usize>,
    /// CIWAE: train on β · ELBO + (1 − β) · the k-sample bound, β in [0, 1] (0 is the IWAE,
    /// 1 the VAE's ELBO estimated with k samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub ciwae_beta: Option<f64>,
}

impl Default for IwaeConfig {
    fn default() -> Self {
        Self {
            vae: VaeConfig::default(),
            importance_samples: d_samples(),
            groups: None,
            ciwae_beta: None,
        }
    }
}

impl VariantConfig for IwaeConfig {
    fn kind(&self) -> &'static str {
        "iwae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        if self.importance_samples == 0 {
            return Err(Error::invalid("importance_samples must be at least 1"));
        }
        if self.groups == Some(0) {
            return Err(Error::invalid("groups must be at least 1"));
        }
        if let Some(b) = self.ciwae_beta
            && !(0.0..=1.0).contains(&b)
        {
            return Err(Error::invalid(format!(
                "ciwae_beta must lie in [0, 1], got {b}"
            )));
        }
        if self.groups.is_some_and(|m| m > 1) && self.ciwae_beta.is_some() {
            return Err(Error::invalid(
                "groups (MIWAE) and ciwae_beta (CIWAE) are two different bounds: give one",
            ));
        }
        if self.vae.capacity.is_some() {
            return Err(Error::invalid(
                "capacity constrains the ELBO's KL term, which the importance-weighted bound does not have (use --model vae)",
            ));
        }
        self.vae.validate(shared)
    }

    crate::delegate_variant_config!(vae);

    fn describe(&self, shared: &SharedConfig) -> String {
        let bound = match (self.groups.filter(|&m| m > 1), self.ciwae_beta) {
            (Some(m), _) => format!("MIWAE M={m} k={}", self.importance_samples),
            (None, Some(b)) => format!("CIWAE beta={b} k={}", self.importance_samples),
            (None, None) => format!("IWAE k={}", self.importance_samples),
        };
        format!("{bound} {}", self.vae.describe(shared))
    }

    fn capabilities(&self) -> Capabilities {
        self.vae.capabilities()
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(Iwae {
            vae: self.vae.build_vae(input, layers)?,
            samples: self.importance_samples,
            groups: self.groups.unwrap_or(1),
            ciwae_beta: self.ciwae_beta,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct Iwae {
    vae: Vae,
    samples: usize,
    groups: usize,
    ciwae_beta: Option<f64>,
}

impl Iwae {
    /// The training bound per input from log weights `[groups · k, n]` (group g in rows
    /// g·k .. (g+1)·k, as [`objective::importance_weights`] stacks its draws).
    fn bound(&self, log_weights: Tensor<2>) -> Tensor<1> {
        let k = self.samples;
        if self.groups > 1 {
            let [_, n] = log_weights.dims();
            // [M·k, n] → [k, M·n]: each column one group's k weights for one input.
            let per_group = log_weights
                .reshape([self.groups, k, n])
                .swap_dims(0, 1)
                .reshape([k, self.groups * n]);
            return objective::log_mean_exp(per_group)
                .reshape([self.groups, n])
                .mean_dim(0)
                .squeeze_dim(0);
        }
        let iwae = objective::log_mean_exp(log_weights.clone());
        match self.ciwae_beta {
            Some(beta) => {
                let elbo = log_weights.mean_dim(0).squeeze_dim(0);
                elbo.mul_scalar(beta) + iwae.mul_scalar(1.0 - beta)
            }
            None => iwae,
        }
    }
}

impl Variant for Iwae {
    crate::delegate_variant_network!(vae);

    /// Minus the k-sample bound (or MIWAE's or CIWAE's) per element; beta (warmed up) weighs
    /// `log p(z) − log q(z|x)` inside each weight. The reported terms are the draws' mean
    /// reconstruction loss and their mean `log q − log p`, a Monte Carlo KL.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [_, dim] = batch.target.dims();
        let posterior = self.vae.gaussian(&net.layers, batch.input);
        let w = objective::importance_weights(
            net,
            posterior,
            batch.target,
            None,
            cx.config.likelihood(),
            self.groups * self.samples,
            cx.rng,
        );
        let bound = self.bound(w.log_weights(self.vae.kl_weight(cx.epochs_done)));
        let per_element = |t: Tensor<1>| t.mean().neg().div_scalar(dim as f64);
        LossTerms {
            total: per_element(bound),
            recon: per_element(w.log_likelihood.mean_dim(0).squeeze_dim(0)),
            kl: Some(per_element(w.log_prior_ratio.mean_dim(0).squeeze_dim(0))),
        }
    }

    /// Each row's bound is its own k draws'.
    fn rows_independent(&self, _config: &ModelConfig) -> bool {
        true
    }
}
