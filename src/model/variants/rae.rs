//! The regularised autoencoder (Ghosh et al. 2020, "From variational to deterministic
//! autoencoders"): a deterministic autoencoder whose codes are pulled towards the origin
//! (β·½‖z‖²) and whose decoder is kept smooth, by weight decay (RAE-L2) or by a penalty on
//! its Jacobian (RAE-GP), so that a density fitted to the codes after training
//! (`aekit sample --sampler gmm`) decodes to good samples. The network is the dense
//! autoencoder's.

use std::sync::Arc;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::layers::{Layers, LayersBuilder};
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{Batch, ConfigObject, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::dense::{Dense, DenseConfig};
use crate::model::{Network, SharedConfig};

/// How the decoder is kept smooth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum DecoderRegularizer {
    /// Weight decay on the decoder's weights: (λ/2)·‖θ‖² per sample (RAE-L2).
    #[default]
    L2,
    /// The decoder's squared Jacobian norm ‖∂D(z)/∂z‖²_F at the codes (RAE-GP), estimated
    /// with random projections and central differences (burn's autodiff is first-order).
    Gp,
    /// Codes regularised only (the paper's "AE + L_z" ablation).
    None,
}

fn d_code_weight() -> f64 {
    1e-4
}
fn d_decoder_weight() -> f64 {
    1e-7
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct RaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub dense: DenseConfig,
    /// β: weight of ½‖z‖² per sample, relative to the per-sample reconstruction loss
    /// (pythae's embedding_weight).
    #[serde(default = "d_code_weight")]
    #[arg(long, required = false)]
    pub code_weight: f64,
    /// How the decoder is regularised.
    #[serde(default)]
    #[arg(long, required = false)]
    pub decoder_regularizer: DecoderRegularizer,
    /// λ: weight of the decoder regulariser per sample (pythae's reg_weight).
    #[serde(default = "d_decoder_weight")]
    #[arg(long, required = false)]
    pub decoder_weight: f64,
}

impl Default for RaeConfig {
    fn default() -> Self {
        Self {
            dense: DenseConfig::new(vec![256], 16),
            code_weight: d_code_weight(),
            decoder_regularizer: DecoderRegularizer::default(),
            decoder_weight: d_decoder_weight(),
        }
    }
}

/// Random directions of the Jacobian estimate per step.
const GP_PROJECTIONS: usize = 1;
/// Step of the central differences, in code units.
const GP_EPS: f64 = 1e-2;

impl VariantConfig for RaeConfig {
    fn kind(&self) -> &'static str {
        "rae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        for (name, v) in [
            ("code_weight", self.code_weight),
            ("decoder_weight", self.decoder_weight),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::invalid(format!(
                    "{name} must be a non-negative number"
                )));
            }
        }
        self.dense.validate(shared)
    }

    crate::delegate_variant_config!(dense);

    fn describe(&self, shared: &SharedConfig) -> String {
        let reg = match self.decoder_regularizer {
            DecoderRegularizer::L2 => "L2",
            DecoderRegularizer::Gp => "GP",
            DecoderRegularizer::None => "codes only",
        };
        format!(
            "RAE-{reg} {} beta {} lambda {}",
            self.dense.describe(shared),
            self.code_weight,
            self.decoder_weight
        )
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        Ok(Arc::new(Rae {
            dense: self.dense.build_dense(input, layers)?,
            code_weight: self.code_weight,
            regularizer: self.decoder_regularizer,
            decoder_weight: self.decoder_weight,
        }))
    }

    fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        self.dense.apply_flags(flags)?;
        self.update_fields(flags)
    }
}

#[derive(Debug, Clone)]
pub struct Rae {
    dense: Dense,
    code_weight: f64,
    regularizer: DecoderRegularizer,
    decoder_weight: f64,
}

impl Variant for Rae {
    crate::delegate_variant_network!(dense);

    fn contractive_closed_form(&self, layers: &Layers, x: Tensor<2>) -> Option<Tensor<1>> {
        self.dense.contractive_closed_form(layers, x)
    }

    /// The deterministic objective (with any shared penalties) plus, per element,
    /// β·½‖z‖² and the decoder's regulariser, both per sample divided by the width, as the
    /// reconstruction loss is.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [_, dim] = batch.target.dims();
        let per_element = 1.0 / dim as f64;
        let (mut terms, code) = objective::autoencoder_with_code(net, batch, cx);
        let code_sq = (code.clone() * code.clone()).sum_dim(1).mean();
        terms.total = terms.total + code_sq.mul_scalar(0.5 * self.code_weight * per_element);
        let lambda = self.decoder_weight * per_element;
        match self.regularizer {
            DecoderRegularizer::L2 => {
                let sq = net
                    .layers
                    .linears("decoder")
                    .map(|l| {
                        let w = l.weight.val();
                        (w.clone() * w).sum()
                    })
                    .reduce(|a, b| a + b)
                    .expect("a decoder has layers");
                terms.total = terms.total + sq.mul_scalar(0.5 * lambda);
            }
            DecoderRegularizer::Gp => {
                let jacobian_sq = objective::projected_jacobian_sq(
                    |z| net.decode(z),
                    code,
                    GP_PROJECTIONS,
                    GP_EPS,
                    cx.rng,
                );
                terms.total = terms.total + jacobian_sq.mul_scalar(lambda);
            }
            DecoderRegularizer::None => {}
        }
        terms
    }
}
