//! β-TCVAE (Chen, Li, Grosse & Duvenaud 2018): a VAE whose KL term is split into the
//! index-code mutual information, the total correlation of the aggregate posterior and the
//! dimension-wise KL, weighted α, β and γ, with q(z) estimated from each batch as a sample of
//! the training set ([`objective::kl_decomposition`]). A β above 1 on the total correlation
//! alone pushes the code dimensions to be independent without starving the code of
//! information, which a β-VAE's β on the whole KL does. Its encoder and decoder are the VAE's.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::layers::LayersBuilder;
use crate::model::objective::{self, AggregateEstimator, KlPressure, LossTerms};
use crate::model::variant::{Batch, Capabilities, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::vae::{Vae, VaeConfig};
use crate::model::{Network, SharedConfig};

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct BetaTcVaeConfig {
    /// The VAE's settings; its --beta weighs the total correlation (the paper's β, e.g. 6).
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: VaeConfig,
    /// α: weight of the index-code mutual information I(x; z).
    #[serde(default = "one")]
    #[arg(long, required = false)]
    pub mi_weight: f64,
    /// γ: weight of the dimension-wise KL, Σ_d KL(q(z_d) ‖ p(z_d)).
    #[serde(default = "one")]
    #[arg(long, required = false)]
    pub dim_kl_weight: f64,
    /// How q(z) is estimated from a batch: mss (minibatch stratified sampling) or mws
    /// (minibatch weighted sampling, biased).
    #[serde(default)]
    #[arg(long, required = false)]
    pub aggregate_estimator: AggregateEstimator,
}

impl Default for BetaTcVaeConfig {
    fn default() -> Self {
        Self {
            vae: VaeConfig::default(),
            mi_weight: 1.0,
            dim_kl_weight: 1.0,
            aggregate_estimator: AggregateEstimator::default(),
        }
    }
}

impl VariantConfig for BetaTcVaeConfig {
    fn kind(&self) -> &'static str {
        "btcvae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        crate::model::variant::check_weight("mi_weight", self.mi_weight)?;
        crate::model::variant::check_weight("dim_kl_weight", self.dim_kl_weight)?;
        if self.vae.capacity.is_some() {
            return Err(Error::invalid(
                "capacity constrains the whole KL; the β-TCVAE weighs its three parts instead (use --model vae)",
            ));
        }
        self.vae.validate(shared)
    }

    crate::delegate_variant_config!(vae);

    fn describe(&self, shared: &SharedConfig) -> String {
        format!(
            "β-TCVAE α {} β {} γ {} ({}), {}",
            self.mi_weight,
            self.vae.beta,
            self.dim_kl_weight,
            match self.aggregate_estimator {
                AggregateEstimator::Mss => "stratified",
                AggregateEstimator::Mws => "weighted",
            },
            self.vae.describe(shared)
        )
    }

    fn capabilities(&self) -> Capabilities {
        self.vae.capabilities()
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(BetaTcVae {
            vae: self.vae.build_vae(input, layers)?,
            settings: self.clone(),
        }))
    }
}

#[derive(Debug, Clone)]
pub struct BetaTcVae {
    vae: Vae,
    settings: BetaTcVaeConfig,
}

impl Variant for BetaTcVae {
    crate::delegate_variant_network!(vae);

    /// Reconstruction of one posterior sample plus α·MI + β·TC + γ·dimension-wise KL, all
    /// three rising together over the KL warm-up; the reported KL is their unweighted sum.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [_, dim] = batch.target.dims();
        let posterior = self.vae.gaussian(&net.layers, batch.input);
        let no_kl = KlPressure {
            weight: 0.0,
            capacity: None,
        };
        let (terms, z) = objective::negative_elbo_with_sample(
            net,
            posterior.clone(),
            batch.target,
            None,
            cx,
            no_kl,
        );
        let parts = objective::kl_decomposition(
            z,
            posterior,
            cx.dataset_size,
            self.settings.aggregate_estimator,
        );
        let s = &self.settings;
        // The warm-up's share of the way (β's ramp over β itself).
        let warm = VaeConfig {
            beta: 1.0,
            ..s.vae.clone()
        }
        .kl_weight(cx.epochs_done);
        let weighted = parts.mutual_information.clone().mul_scalar(s.mi_weight)
            + parts.total_correlation.clone().mul_scalar(s.vae.beta)
            + parts.dimension_wise_kl.clone().mul_scalar(s.dim_kl_weight);
        let kl = parts.mutual_information + parts.total_correlation + parts.dimension_wise_kl;
        LossTerms {
            total: terms.recon.clone() + weighted.mul_scalar(warm / dim as f64),
            recon: terms.recon,
            kl: Some(kl.div_scalar(dim as f64)),
        }
    }
}
