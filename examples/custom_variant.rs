//! A variant defined outside aekit: the tied-weights autoencoder, whose decoder is the
//! encoder's weight matrix transposed (h = act(x·W + b), x̂ = out(h·Wᵀ + c)). It is registered
//! at run time, then trained, saved, loaded and evaluated with aekit's own machinery, and its
//! run directory is an ordinary one (config.toml names `kind = "tied"`).
//!
//! ```text
//! cargo run --release --example custom_variant [RUN_DIR]
//! ```

use std::path::Path;
use std::sync::Arc;

use aekit::data::Split;
use aekit::eval::ReconMetrics;
use aekit::fit::FitOptions;
use aekit::model::layers::{Layers, LayersBuilder};
use aekit::model::variant::{self, Resolved, Variant, VariantConfig, VariantEntry};
use aekit::model::{Activation, Autoencoder, ModelConfig, SharedConfig};
use aekit::{Error, Result, Run, RunConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The variant's settings: its keys in the `[model]` table and its command-line flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct TiedConfig {
    /// Width of the code.
    #[arg(long, required = false)]
    pub latent: usize,
    /// Activation of the code.
    #[serde(default = "sigmoid")]
    #[arg(long, required = false)]
    pub code_activation: Activation,
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

impl Default for TiedConfig {
    fn default() -> Self {
        Self {
            latent: 16,
            code_activation: sigmoid(),
        }
    }
}

impl VariantConfig for TiedConfig {
    fn kind(&self) -> &'static str {
        "tied"
    }

    fn validate(&self, _shared: &SharedConfig) -> Result<()> {
        if self.latent == 0 {
            return Err(Error::invalid("latent size must be at least 1"));
        }
        Ok(())
    }

    fn latent(&self, _shared: &SharedConfig) -> usize {
        self.latent
    }

    fn code_activation(&self) -> Activation {
        self.code_activation
    }

    fn describe(&self, shared: &SharedConfig) -> String {
        let d = shared.input_dim.unwrap_or(0);
        format!("{d}-{}-{d}, tied weights", self.latent)
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        let d = input.input_dim;
        // Glorot-uniform, as for a layer d -> latent.
        let bound = (6.0 / (d + self.latent) as f32).sqrt();
        layers.matrix("weight", d, self.latent, bound)?;
        layers.matrix("encoder_bias", 1, self.latent, 0.0)?;
        layers.matrix("decoder_bias", 1, d, 0.0)?;
        Ok(Arc::new(Tied {
            code: self.code_activation,
            output: input.output,
        }))
    }
}

/// The built network's fixed parts; the weights are in the [`Layers`].
#[derive(Debug)]
struct Tied {
    code: Activation,
    output: Activation,
}

impl Variant for Tied {
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        let h = x.matmul(layers.matrix("weight")) + layers.matrix("encoder_bias");
        self.code.apply(h)
    }

    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        z.matmul(layers.matrix("weight").transpose()) + layers.matrix("decoder_bias")
    }

    fn output_activation(&self) -> Activation {
        self.output
    }
}

/// Registers the variant (once per process).
pub fn register() -> Result<()> {
    if variant::kinds().contains(&"tied") {
        return Ok(());
    }
    variant::register(VariantEntry::of::<TiedConfig>(
        "Tied-weights autoencoder (examples/custom_variant.rs)",
    ))
}

/// Trains a tied autoencoder on the built-in shapes into `out` and evaluates the run as any
/// other: the test reconstruction error before training (the initial weights) and after.
pub fn train_and_evaluate(out: &Path, epochs: usize) -> Result<(ReconMetrics, ReconMetrics)> {
    register()?;
    let mut cfg = RunConfig {
        model: ModelConfig::new(TiedConfig::default()),
        ..RunConfig::default()
    };
    cfg.train.epochs = epochs;
    cfg.train.lr = 3e-3;
    aekit::train(&cfg, &FitOptions::new(out))?;
    // Opened from disk: config.toml says kind = "tied", which the registry now knows.
    let device = Device::flex();
    let run = Run::open(out, &device)?;
    let test = run.load_data(None, Split::Test)?;
    let trained = aekit::eval::evaluate(&run, &test)?;
    // The same seed builds the initial weights again.
    let initial = Run {
        model: Autoencoder::new(run.model.config(), run.config.train.seed, &device)?,
        ..run
    };
    Ok((aekit::eval::evaluate(&initial, &test)?, trained))
}

fn main() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "runs/custom-tied".into());
    let (before, after) = train_and_evaluate(Path::new(&out), 10)?;
    println!(
        "tied-weights autoencoder on shapes: test mse/pixel {:.5} untrained, {:.5} after 10 epochs; runs in {out}",
        before.mse_per_pixel, after.mse_per_pixel
    );
    Ok(())
}
