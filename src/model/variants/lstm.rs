//! The recurrent autoencoder of `gru.rs` with PyTorch's `nn.LSTM` cells: gates `[i, f, g, o]`
//! stacked in `[4·units, in]` matrices, `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`, each LSTM's
//! state starting with its cell at zero — the "LSTM autoencoder" of Srivastava et al. (2015)
//! and Malhotra et al. (2016).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::layers::LayersBuilder;
use crate::model::variant::{Resolved, Variant, VariantConfig};
use crate::model::variants::gru::{Cell, GruConfig};
use crate::model::{Activation, SharedConfig};

/// Architecture of an LSTM autoencoder over time: the GRU autoencoder's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, Default)]
pub struct LstmConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub recurrent: GruConfig,
}

impl VariantConfig for LstmConfig {
    fn kind(&self) -> &'static str {
        "lstm"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        self.recurrent.validate_cells(shared, Cell::Lstm)
    }

    fn capabilities(&self) -> crate::model::variant::Capabilities {
        self.recurrent.vae.capabilities()
    }

    fn latent(&self, _shared: &SharedConfig) -> usize {
        self.recurrent.latent
    }

    fn code_activation(&self) -> Activation {
        self.recurrent.code_activation
    }

    /// "LSTM 64 over 1x64 → 16 → LSTM 64 → 1x64"
    fn describe(&self, shared: &SharedConfig) -> String {
        self.recurrent.describe_cells(shared, Cell::Lstm)
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        self.recurrent.build_cells(input, layers, Cell::Lstm)
    }
}
