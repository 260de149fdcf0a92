//! FactorVAE (Kim & Mnih 2018): a VAE whose objective adds γ·TC(z), the total correlation of
//! the aggregate posterior, estimated by the density-ratio trick: a discriminator trained in
//! its own optimiser step tells codes drawn from q(z) from the same codes shuffled dimension by
//! dimension (draws of Π_j q(z_j)), and TC ≈ E_q(z)[log D(z) / (1 − D(z))], its mean logit.
//! Its encoder and decoder are the VAE's; the discriminator's layers are `discriminator.*`.

use std::sync::Arc;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::discriminator;
use crate::model::layers::{LayersBuilder, normal_tensor};
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{
    Batch, Capabilities, ExtraStep, Resolved, StepContext, Variant, VariantConfig,
};
use crate::model::variants::vae::{Vae, VaeConfig};
use crate::model::{Network, SharedConfig};

fn d_gamma() -> f64 {
    10.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct FactorVaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: VaeConfig,
    /// γ: weight of the total correlation the discriminator estimates.
    #[serde(default = "d_gamma")]
    #[arg(long, required = false)]
    pub tc_weight: f64,
    /// Hidden widths of the discriminator on codes (leaky rectifiers).
    #[serde(default = "discriminator::default_hidden")]
    #[arg(long, value_delimiter = ',', num_args = 1.., required = false)]
    pub discriminator_hidden: Vec<usize>,
}

impl Default for FactorVaeConfig {
    fn default() -> Self {
        Self {
            vae: VaeConfig::default(),
            tc_weight: d_gamma(),
            discriminator_hidden: discriminator::default_hidden(),
        }
    }
}

impl VariantConfig for FactorVaeConfig {
    fn kind(&self) -> &'static str {
        "factorvae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        crate::model::variant::check_weight("tc_weight", self.tc_weight)?;
        discriminator::check_hidden(&self.discriminator_hidden)?;
        self.vae.validate(shared)
    }

    crate::delegate_variant_config!(vae);

    fn describe(&self, shared: &SharedConfig) -> String {
        format!(
            "FactorVAE γ {} (discriminator {:?}), {}",
            self.tc_weight,
            self.discriminator_hidden,
            self.vae.describe(shared)
        )
    }

    fn capabilities(&self) -> Capabilities {
        self.vae.capabilities()
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        let vae = self.vae.build_vae(input, layers)?;
        discriminator::build(layers, self.vae.latent, &self.discriminator_hidden)?;
        Ok(Arc::new(FactorVae {
            vae,
            tc_weight: self.tc_weight,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct FactorVae {
    vae: Vae,
    tc_weight: f64,
}

impl Variant for FactorVae {
    crate::delegate_variant_network!(vae);

    /// The VAE's negative ELBO plus γ times the discriminator's total-correlation estimate on
    /// the batch's posterior samples (the discriminator itself is not moved by this step).
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [_, dim] = batch.target.dims();
        let posterior = self.vae.gaussian(&net.layers, batch.input);
        let pressure = self.vae.kl_pressure(cx.epochs_done);
        let (terms, z) =
            objective::negative_elbo_with_sample(net, posterior, batch.target, None, cx, pressure);
        let tc = discriminator::logits(&net.layers, z).mean();
        LossTerms {
            total: terms.total + tc.mul_scalar(self.tc_weight / dim as f64),
            ..terms
        }
    }

    fn extra_steps(&self) -> Vec<ExtraStep> {
        vec![discriminator::step("discriminator")]
    }

    /// The discriminator's step: posterior samples of the batch (real) against their
    /// dimension-wise shuffle (fake).
    fn extra_objective(
        &self,
        _step: usize,
        net: &Network,
        batch: Batch,
        cx: &mut StepContext,
    ) -> Option<Tensor<1>> {
        let (mu, logvar) = self.vae.gaussian(&net.layers, batch.input);
        let [n, l] = mu.dims();
        let eps = normal_tensor(n, l, cx.rng, &mu.device());
        let z = objective::reparameterise(mu, logvar, eps).detach();
        let shuffled = discriminator::permute_dims(z.clone(), cx.rng);
        Some(discriminator::loss(&net.layers, z, shuffled))
    }
}
