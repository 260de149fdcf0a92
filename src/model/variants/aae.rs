//! The adversarial autoencoder (Makhzani et al. 2016): a deterministic autoencoder whose
//! codes are made to look like draws of a chosen prior by an adversary — a discriminator,
//! trained in its own optimiser step to tell prior draws (real) from the batch's codes (fake),
//! which the encoder learns to fool. Decoding prior draws then gives samples. The network is
//! the dense autoencoder's; the discriminator's layers are `discriminator.*`.

use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::discriminator;
use crate::model::layers::{LayersBuilder, normal_tensor};
use crate::model::loss::bce_with_logits;
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{
    Batch, Capabilities, ConfigObject, ExtraStep, Resolved, StepContext, Variant, VariantConfig,
};
use crate::model::variants::dense::{Dense, DenseConfig};
use crate::model::{Activation, Network, SharedConfig};

fn d_weight() -> f64 {
    1.0
}

/// The distribution the codes are pushed towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CodePrior {
    /// N(0, I).
    #[default]
    Gaussian,
    /// Ten Gaussians (σ = 0.5) on a circle of radius 2 in the first two dimensions, the
    /// paper's mixture: the codes gather in ten clusters.
    Mixture,
    /// Uniform on [−√3, √3] in each dimension (unit variance).
    Uniform,
}

/// Components of the mixture prior and their spread.
const MIXTURE_COMPONENTS: usize = 10;
const MIXTURE_RADIUS: f64 = 2.0;
const MIXTURE_SIGMA: f64 = 0.5;

impl CodePrior {
    /// `n` draws of `d`-dimensional codes.
    pub fn sample(
        self,
        n: usize,
        d: usize,
        rng: &mut ChaCha8Rng,
        device: &burn::tensor::Device,
    ) -> Tensor<2> {
        match self {
            CodePrior::Gaussian => normal_tensor(n, d, rng, device),
            CodePrior::Uniform => {
                let half = 3f32.sqrt();
                let v: Vec<f32> = (0..n * d).map(|_| rng.random_range(-half..half)).collect();
                Tensor::from_data(TensorData::new(v, [n, d]), device)
            }
            CodePrior::Mixture => {
                let noise = crate::data::batch::standard_normal(n * d, rng);
                let mut v = Vec::with_capacity(n * d);
                for row in noise.chunks_exact(d) {
                    let k = rng.random_range(0..MIXTURE_COMPONENTS);
                    let angle = std::f64::consts::TAU * k as f64 / MIXTURE_COMPONENTS as f64;
                    let centre = [MIXTURE_RADIUS * angle.cos(), MIXTURE_RADIUS * angle.sin()];
                    for (j, &e) in row.iter().enumerate() {
                        let mean = centre.get(j).copied().unwrap_or(0.0);
                        v.push((mean + MIXTURE_SIGMA * e as f64) as f32);
                    }
                }
                Tensor::from_data(TensorData::new(v, [n, d]), device)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct AaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub dense: DenseConfig,
    /// The prior the codes are pushed towards (gaussian lets `aekit sample` use the prior;
    /// sample the others with --sampler gmm).
    #[serde(default)]
    #[arg(long, required = false)]
    pub code_prior: CodePrior,
    /// λ: weight of the encoder's adversarial loss (fooling the discriminator), per sample.
    #[serde(default = "d_weight")]
    #[arg(long, required = false)]
    pub adversary_weight: f64,
    /// Hidden widths of the discriminator on codes (leaky rectifiers).
    #[serde(default = "discriminator::default_hidden")]
    #[arg(long, value_delimiter = ',', num_args = 1.., required = false)]
    pub discriminator_hidden: Vec<usize>,
}

impl Default for AaeConfig {
    fn default() -> Self {
        Self {
            dense: DenseConfig::new(vec![256], 8),
            code_prior: CodePrior::default(),
            adversary_weight: d_weight(),
            discriminator_hidden: discriminator::default_hidden(),
        }
    }
}

impl VariantConfig for AaeConfig {
    fn kind(&self) -> &'static str {
        "aae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        crate::model::variant::check_weight("adversary_weight", self.adversary_weight)?;
        discriminator::check_hidden(&self.discriminator_hidden)?;
        if self.dense.code_activation != Activation::Linear {
            return Err(Error::invalid(
                "an adversarial autoencoder's codes are matched to a prior: the code activation must be linear",
            ));
        }
        self.dense.validate(shared)
    }

    crate::delegate_variant_config!(dense);

    fn describe(&self, shared: &SharedConfig) -> String {
        format!(
            "AAE {} ({:?} prior, λ {}, discriminator {:?})",
            self.dense.describe(shared),
            self.code_prior,
            self.adversary_weight,
            self.discriminator_hidden
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            prior: self.code_prior == CodePrior::Gaussian,
            ..Capabilities::default()
        }
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        let dense = self.dense.build_dense(input, layers)?;
        let latent = self.dense.latent(input.shared);
        discriminator::build(layers, latent, &self.discriminator_hidden)?;
        Ok(Arc::new(Aae {
            dense,
            prior: self.code_prior,
            weight: self.adversary_weight,
        }))
    }

    fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        self.dense.apply_flags(flags)?;
        self.update_fields(flags)
    }
}

#[derive(Debug, Clone)]
pub struct Aae {
    dense: Dense,
    prior: CodePrior,
    weight: f64,
}

impl Variant for Aae {
    crate::delegate_variant_network!(dense);

    /// The deterministic objective plus λ times the encoder's adversarial loss: the
    /// cross-entropy of the discriminator calling the batch's codes prior draws.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [_, dim] = batch.target.dims();
        let (mut terms, code) = objective::autoencoder_with_code(net, batch, cx);
        let logits = discriminator::logits(&net.layers, code);
        let fooled = bce_with_logits(logits.clone(), logits.ones_like()).mean();
        terms.total = terms.total + fooled.mul_scalar(self.weight / dim as f64);
        terms
    }

    fn extra_steps(&self) -> Vec<ExtraStep> {
        vec![discriminator::step("discriminator")]
    }

    /// The discriminator's step: prior draws (real) against the batch's codes (fake).
    fn extra_objective(
        &self,
        _step: usize,
        net: &Network,
        batch: Batch,
        cx: &mut StepContext,
    ) -> Option<Tensor<1>> {
        let code = net.encode(batch.input).detach();
        let [n, d] = code.dims();
        let prior = self.prior.sample(n, d, cx.rng, &code.device());
        Some(discriminator::loss(&net.layers, prior, code))
    }
}
