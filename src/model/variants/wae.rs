//! The Wasserstein autoencoder with the MMD penalty (Tolstikhin et al. 2018): a
//! deterministic autoencoder whose aggregate code distribution is pulled to the prior
//! N(0, I) by the maximum mean discrepancy between the batch's codes and as many prior draws,
//! so that decoding prior draws gives samples. The network is the dense autoencoder's.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::layers::{LayersBuilder, normal_tensor};
use crate::model::objective::{self, LossTerms};
use crate::model::penalty::{self, MmdKernel};
use crate::model::variant::{
    Batch, Capabilities, ConfigObject, Resolved, StepContext, Variant, VariantConfig,
};
use crate::model::variants::dense::{Dense, DenseConfig};
use crate::model::{Activation, Network, SharedConfig};

fn d_mmd_weight() -> f64 {
    10.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct WaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub dense: DenseConfig,
    /// λ: weight of MMD²(codes, prior) per sample, relative to the per-sample reconstruction
    /// loss (the paper uses 10 on MNIST).
    #[serde(default = "d_mmd_weight")]
    #[arg(long, required = false)]
    pub mmd_weight: f64,
    /// Kernel of the MMD.
    #[serde(default)]
    #[arg(long, required = false)]
    pub mmd_kernel: MmdKernel,
}

impl Default for WaeConfig {
    fn default() -> Self {
        Self {
            dense: DenseConfig::new(vec![256], 8),
            mmd_weight: d_mmd_weight(),
            mmd_kernel: MmdKernel::default(),
        }
    }
}

impl VariantConfig for WaeConfig {
    fn kind(&self) -> &'static str {
        "wae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        if !(self.mmd_weight >= 0.0 && self.mmd_weight.is_finite()) {
            return Err(Error::invalid("mmd_weight must be a non-negative number"));
        }
        if self.dense.code_activation != Activation::Linear {
            return Err(Error::invalid(
                "a WAE's codes are matched to N(0, I): the code activation must be linear",
            ));
        }
        self.dense.validate(shared)
    }

    crate::delegate_variant_config!(dense);

    fn describe(&self, shared: &SharedConfig) -> String {
        format!(
            "WAE-MMD {} lambda {} ({:?} kernel)",
            self.dense.describe(shared),
            self.mmd_weight,
            self.mmd_kernel
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            prior: true,
            ..Capabilities::default()
        }
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(Wae {
            dense: self.dense.build_dense(input, layers)?,
            mmd_weight: self.mmd_weight,
            kernel: self.mmd_kernel,
        }))
    }

    fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        self.dense.apply_flags(flags)?;
        self.update_fields(flags)
    }
}

#[derive(Debug, Clone)]
pub struct Wae {
    dense: Dense,
    mmd_weight: f64,
    kernel: MmdKernel,
}

impl Variant for Wae {
    crate::delegate_variant_network!(dense);

    /// The deterministic objective plus λ·MMD²(codes, prior draws) per element; the kernel's
    /// scale is 2·d (d the code width), the paper's C = 2·d·σ² with σ = 1.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [n, dim] = batch.target.dims();
        let (mut terms, code) = objective::autoencoder_with_code(net, batch, cx);
        if n < 2 {
            return terms;
        }
        let l = code.dims()[1];
        let prior = normal_tensor(n, l, cx.rng, &code.device());
        let mmd = penalty::mmd(code, prior, self.kernel, 2.0 * l as f64);
        terms.total = terms.total + mmd.mul_scalar(self.mmd_weight / dim as f64);
        terms
    }
}
