//! The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016): a VAE's network
//! trained on the k-sample bound `log (1/k) Σ_j p(x, z_j) / q(z_j|x)`, z_j ~ q(z|x), which is
//! the ELBO at k = 1 and tightens towards log p(x) as k grows. Its encoder and decoder are the
//! VAE's (same settings, same tensor names); only the objective differs.

use std::sync::Arc;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::layers::LayersBuilder;
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{Batch, Capabilities, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::vae::{Vae, VaeConfig};
use crate::model::{Network, SharedConfig};

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
}

impl Default for IwaeConfig {
    fn default() -> Self {
        Self {
            vae: VaeConfig::default(),
            importance_samples: d_samples(),
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
        if self.vae.capacity.is_some() {
            return Err(Error::invalid(
                "capacity constrains the ELBO's KL term, which the importance-weighted bound does not have (use --model vae)",
            ));
        }
        self.vae.validate(shared)
    }

    crate::delegate_variant_config!(vae);

    fn describe(&self, shared: &SharedConfig) -> String {
        format!(
            "IWAE k={} {}",
            self.importance_samples,
            self.vae.describe(shared)
        )
    }

    fn capabilities(&self) -> Capabilities {
        self.vae.capabilities()
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(Iwae {
            vae: self.vae.build_vae(input, layers)?,
            samples: self.importance_samples,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct Iwae {
    vae: Vae,
    samples: usize,
}

impl Variant for Iwae {
    crate::delegate_variant_network!(vae);

    /// Minus the k-sample bound per element; beta (warmed up) weighs `log p(z) − log q(z|x)`
    /// inside each weight. The reported terms are the draws' mean reconstruction loss and
    /// their mean `log q − log p`, a Monte Carlo KL.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [_, dim] = batch.target.dims();
        let posterior = self.vae.gaussian(&net.layers, batch.input);
        let w = objective::importance_weights(
            net,
            posterior,
            batch.target,
            None,
            cx.config.loss(),
            self.samples,
            cx.rng,
        );
        let bound = objective::log_mean_exp(w.log_weights(self.vae.kl_weight(cx.epochs_done)));
        let per_element = |t: Tensor<1>| t.mean().neg().div_scalar(dim as f64);
        LossTerms {
            total: per_element(bound),
            recon: per_element(w.log_likelihood.mean_dim(0).squeeze_dim(0)),
            kl: Some(per_element(w.log_prior_ratio.mean_dim(0).squeeze_dim(0))),
        }
    }
}
