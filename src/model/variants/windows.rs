//! What the variants over a series' windows (`conv1d`, `gru`) share: the window shape they
//! need, and the variational option — a Gaussian posterior trained on the negative ELBO.

use burn::tensor::Tensor;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::network::Network;
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{Batch, Capabilities, StepContext};

/// `[channels, steps]` of the samples, or why a `kind` model, which `does` what it does, cannot
/// take them.
pub fn window_shape(kind: &str, does: &str, shape: Option<&[usize]>) -> Result<(usize, usize)> {
    match shape {
        Some(&[c, w]) => Ok((c, w)),
        other => Err(Error::invalid(format!(
            "{kind} {does}: its samples are windows of a series ([channels, window], from --window), not {}",
            other.map_or("samples of unknown shape".to_string(), |s| format!("{s:?}"))
        ))),
    }
}

fn default_beta() -> f64 {
    1.0
}
fn is_one(v: &f64) -> bool {
    *v == 1.0
}

/// The variational option of a sequence model (its keys and flags, flattened into its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct Variational {
    /// A variational (VAE) model: the encoder gives a Gaussian posterior's mean and
    /// log-variance, trained on the negative ELBO (prior N(0, I): samples, KL, ELBO scores).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[arg(long, required = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub variational: bool,
    /// Weight of the KL term of a variational model (beta-VAE when not 1).
    #[serde(default = "default_beta", skip_serializing_if = "is_one")]
    #[arg(long, required = false)]
    pub beta: f64,
}

impl Default for Variational {
    fn default() -> Self {
        Self {
            variational: false,
            beta: default_beta(),
        }
    }
}

impl Variational {
    pub fn validate(&self) -> Result<()> {
        crate::model::variant::check_weight("beta", self.beta)
    }

    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            prior: self.variational,
            stochastic_encoder: self.variational,
            ..Capabilities::default()
        }
    }

    /// The KL weight of a variational model, `None` for a deterministic one.
    pub fn kl_weight(&self) -> Option<f64> {
        self.variational.then_some(self.beta)
    }

    /// ", variational, beta B" for a description, or nothing.
    pub fn describe(&self) -> String {
        match self.variational {
            true => format!(", variational, beta {}", self.beta),
            false => String::new(),
        }
    }
}

/// The training objective of a sequence model: the autoencoder's without a KL weight, else the
/// negative ELBO of the posterior `posterior` gives for the batch's inputs (with the step's
/// draws, for dropout).
pub fn objective(
    net: &Network,
    batch: Batch,
    cx: &mut StepContext,
    kl_weight: Option<f64>,
    posterior: impl FnOnce(Tensor<2>, &mut ChaCha8Rng) -> (Tensor<2>, Tensor<2>),
) -> LossTerms {
    let Some(weight) = kl_weight else {
        return objective::autoencoder(net, batch, cx);
    };
    let posterior = posterior(batch.input.clone(), cx.rng);
    let pressure = objective::KlPressure {
        weight,
        capacity: None,
    };
    objective::negative_elbo(net, posterior, batch.target, cx, pressure)
}
