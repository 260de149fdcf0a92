//! The InfoVAE with the MMD divergence (Zhao, Song & Ermon 2019): a VAE whose objective
//! weighs the KL term by (1 − α) and adds (α + λ − 1)·MMD²(q(z), p(z)) between the batch's
//! posterior samples and as many prior draws, which keeps the codes informative (α = 1 drops
//! the per-sample KL: the "MMD-VAE"). Its encoder and decoder are the VAE's.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::layers::{LayersBuilder, normal_tensor};
use crate::model::objective::{self, KlPressure, LossTerms};
use crate::model::penalty::{self, MmdKernel};
use crate::model::variant::{Batch, Capabilities, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::vae::{Vae, VaeConfig};
use crate::model::{Network, SharedConfig};

fn d_lambda() -> f64 {
    10.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct InfoVaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: VaeConfig,
    /// α: the KL term is weighted by 1 − α (α = 1 drops it).
    #[serde(default)]
    #[arg(long, required = false)]
    pub alpha: f64,
    /// λ: the MMD term is weighted by α + λ − 1, per sample.
    #[serde(default = "d_lambda")]
    #[arg(long, required = false)]
    pub lambda: f64,
    /// Kernel of the MMD.
    #[serde(default)]
    #[arg(long, required = false)]
    pub mmd_kernel: MmdKernel,
}

impl Default for InfoVaeConfig {
    fn default() -> Self {
        Self {
            vae: VaeConfig::default(),
            alpha: 0.0,
            lambda: d_lambda(),
            mmd_kernel: MmdKernel::default(),
        }
    }
}

impl VariantConfig for InfoVaeConfig {
    fn kind(&self) -> &'static str {
        "infovae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        let weights_ok = self.alpha.is_finite()
            && self.lambda.is_finite()
            && self.alpha <= 1.0
            && self.alpha + self.lambda >= 1.0;
        if !weights_ok {
            return Err(Error::invalid(
                "InfoVAE weights need alpha ≤ 1 and alpha + lambda ≥ 1 (non-negative KL and MMD weights)",
            ));
        }
        if self.vae.capacity.is_some() {
            return Err(Error::invalid(
                "capacity is a setting of --model vae, not of the InfoVAE",
            ));
        }
        self.vae.validate(shared)
    }

    crate::delegate_variant_config!(vae);

    fn describe(&self, shared: &SharedConfig) -> String {
        format!(
            "InfoVAE-MMD alpha {} lambda {} {}",
            self.alpha,
            self.lambda,
            self.vae.describe(shared)
        )
    }

    fn capabilities(&self) -> Capabilities {
        self.vae.capabilities()
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(InfoVae {
            vae: self.vae.build_vae(input, layers)?,
            kl_factor: 1.0 - self.alpha,
            mmd_weight: self.alpha + self.lambda - 1.0,
            kernel: self.mmd_kernel,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct InfoVae {
    vae: Vae,
    kl_factor: f64,
    mmd_weight: f64,
    kernel: MmdKernel,
}

impl Variant for InfoVae {
    crate::delegate_variant_network!(vae);

    /// The VAE's negative ELBO with the KL weighted by (1 − α)·β, plus (α + λ − 1)·MMD² of
    /// its posterior sample against prior draws, per element; the reported KL is unweighted.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [n, dim] = batch.target.dims();
        let posterior = self.vae.gaussian(&net.layers, batch.input);
        let pressure = KlPressure {
            weight: self.kl_factor * self.vae.kl_weight(cx.epochs_done),
            capacity: None,
        };
        let (mut terms, z) =
            objective::negative_elbo_with_sample(net, posterior, batch.target, None, cx, pressure);
        if n >= 2 && self.mmd_weight > 0.0 {
            let l = z.dims()[1];
            let prior = normal_tensor(n, l, cx.rng, &z.device());
            let mmd = penalty::mmd(z, prior, self.kernel, 2.0 * l as f64);
            terms.total = terms.total + mmd.mul_scalar(self.mmd_weight / dim as f64);
        }
        terms
    }
}
