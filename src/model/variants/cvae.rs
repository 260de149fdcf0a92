//! The conditional VAE (Sohn, Lee & Yan 2015; Kingma et al. 2014's M2 with the label given): a
//! VAE whose encoder q(z|x, y) and decoder p(x|z, y) both see the class y, one-hot after the
//! input and after the code. z is left to hold what the class does not say (the style of a
//! digit), so decoding one z under each class draws the same style as every class, and prior
//! draws under class c are samples of c. Dense only; its settings are the VAE's.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::layers::LayersBuilder;
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{Batch, Capabilities, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::vae::{Vae, VaeConfig};
use crate::model::{Network, SharedConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, clap::Args)]
pub struct CvaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: VaeConfig,
}

impl VariantConfig for CvaeConfig {
    fn kind(&self) -> &'static str {
        "cvae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        if !self.vae.conv.is_empty() {
            return Err(Error::invalid(
                "a conditional VAE is dense: it takes no convolutional encoder (--encoder)",
            ));
        }
        self.vae.validate(shared)
    }

    crate::delegate_variant_config!(vae);

    fn describe(&self, shared: &SharedConfig) -> String {
        let classes = shared
            .classes
            .map_or("the data's".to_string(), |c| c.to_string());
        format!(
            "conditional VAE on {classes} classes, {}",
            self.vae.describe(shared)
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional: true,
            ..self.vae.capabilities()
        }
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        let classes = input.shared.classes.ok_or_else(|| {
            Error::invalid(
                "the conditional VAE's number of classes is not known: train it on labelled data",
            )
        })?;
        Ok(Arc::new(Cvae {
            vae: self.vae.build_conditioned(input, classes, layers)?,
            classes,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct Cvae {
    vae: Vae,
    classes: usize,
}

impl Variant for Cvae {
    // Inputs arrive as x ‖ onehot(y) and codes to decode as z ‖ onehot(y), so the VAE's
    // encoder and decoder, built that much wider, serve as they are.
    crate::delegate_variant_network!(vae);

    fn condition_width(&self) -> usize {
        self.classes
    }

    /// The VAE's negative ELBO with the decoder given the batch's classes.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let condition = net.condition_of(&batch.input);
        let posterior = self.vae.gaussian(&net.layers, batch.input);
        let pressure = self.vae.kl_pressure(cx.epochs_done);
        objective::negative_elbo_with_sample(net, posterior, batch.target, condition, cx, pressure)
            .0
    }
}
