//! Variants from outside the crate: the example's tied-weights autoencoder trains, saves,
//! loads and evaluates through aekit's machinery; a variant with an extra optimiser step uses
//! the training loop's seam, and its run resumes bit for bit.

mod common;

#[allow(dead_code)]
#[path = "../examples/custom_variant.rs"]
mod custom_variant;

use std::sync::Arc;

use aekit::fit::FitOptions;
use aekit::model::layers::{Layers, LayersBuilder, tensor_values};
use aekit::model::objective::{self, LossTerms};
use aekit::model::variant::{
    Batch, ExtraStep, Resolved, StepContext, Variant, VariantConfig, VariantEntry,
};
use aekit::model::{Activation, ModelConfig, Network, SharedConfig};
use aekit::{Result, Run, RunConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[test]
fn a_variant_defined_outside_the_crate_trains_saves_loads_and_evaluates() {
    let dir = common::tmp();
    let out = dir.path().join("tied");
    let (untrained, trained) = custom_variant::train_and_evaluate(&out, 4).unwrap();
    assert!(
        trained.mse_per_pixel < 0.5 * untrained.mse_per_pixel,
        "trained {} vs untrained {}",
        trained.mse_per_pixel,
        untrained.mse_per_pixel
    );
    let saved = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(saved.contains("kind = \"tied\""), "{saved}");
    // The tensors are named by the variant's layers.
    let tensors = aekit::model::safetensors::read(&out.join("model.safetensors")).unwrap();
    let mut names: Vec<_> = tensors.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["decoder_bias", "encoder_bias", "weight"]);
    // A variant that does not describe its network trains, but its run has no graph to leave
    // aekit with, and asking for one names the kind.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert!(json.get("graph").is_none() && json.get("model").is_some());
    let run = Run::open(&out, &burn::tensor::Device::flex()).unwrap();
    let err = run.model.graph().unwrap_err().to_string();
    assert!(
        err.contains("a tied model does not describe its network"),
        "{err}"
    );
    let onnx = dir.path().join("tied.onnx");
    let part = aekit::export::onnx::Part::Encoder;
    let err = run.export_onnx(&onnx, part, None, false).unwrap_err();
    assert!(err.to_string().contains("a tied model"), "{err}");
    assert!(!onnx.exists());
    // A registered kind cannot be registered twice; an unknown one is refused on load.
    assert!(
        aekit::model::variant::register(VariantEntry::of::<custom_variant::TiedConfig>("again"))
            .is_err()
    );
    let bad = saved.replace("kind = \"tied\"", "kind = \"knotted\"");
    let err = RunConfig::from_toml(&bad, std::path::Path::new("c.toml")).unwrap_err();
    assert!(
        err.to_string().contains("unknown model kind \"knotted\""),
        "{err}"
    );
}

/// A dense 1-layer autoencoder with a "critic" scalar trained by an extra step of its own
/// towards `TARGET`, while the main objective pulls it down: only if the main step leaves the
/// critic alone does it end near `TARGET`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args, Default)]
struct CriticConfig {
    #[arg(long = "critic-latent", required = false)]
    latent: usize,
}

const TARGET: f32 = 0.5;

impl VariantConfig for CriticConfig {
    fn kind(&self) -> &'static str {
        "with-critic"
    }
    fn validate(&self, _shared: &SharedConfig) -> Result<()> {
        Ok(())
    }
    fn latent(&self, _shared: &SharedConfig) -> usize {
        self.latent
    }
    fn code_activation(&self) -> Activation {
        Activation::Linear
    }
    fn describe(&self, _shared: &SharedConfig) -> String {
        "with a critic".into()
    }
    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        layers.linear(
            "encoder.0",
            input.input_dim,
            self.latent,
            Activation::Linear,
        )?;
        layers.linear("decoder.0", self.latent, input.input_dim, input.output)?;
        layers.matrix("critic", 1, 1, 0.0)?;
        Ok(Arc::new(Critic {
            output: input.output,
        }))
    }
}

#[derive(Debug)]
struct Critic {
    output: Activation,
}

impl Variant for Critic {
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        layers.linear("encoder.0").forward(x)
    }
    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        layers.linear("decoder.0").forward(z)
    }
    fn output_activation(&self) -> Activation {
        self.output
    }
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let mut terms = objective::autoencoder(net, batch, cx);
        terms.total = terms.total + net.layers.matrix("critic").sum();
        terms
    }
    fn extra_steps(&self) -> Vec<ExtraStep> {
        vec![ExtraStep {
            name: "critic",
            layers: vec!["critic".into()],
        }]
    }
    fn extra_objective(
        &self,
        step: usize,
        net: &Network,
        _batch: Batch,
        _cx: &mut StepContext,
    ) -> Option<Tensor<1>> {
        assert_eq!(step, 0);
        let c = net.layers.matrix("critic").sub_scalar(TARGET);
        Some((c.clone() * c).sum())
    }
}

fn critic_config() -> RunConfig {
    if !aekit::model::variant::kinds().contains(&"with-critic") {
        // Tests in this file run in parallel; a lost race to register is fine.
        let _ = aekit::model::variant::register(VariantEntry::of::<CriticConfig>("test"));
    }
    let mut cfg = RunConfig {
        model: ModelConfig::new(CriticConfig { latent: 4 }),
        ..RunConfig::default()
    };
    cfg.data.shapes_train = 256;
    cfg.data.shapes_test = 32;
    cfg.train.epochs = 4;
    cfg.train.batch_size = 32;
    cfg.train.lr = 0.05;
    cfg
}

fn critic_value(run: &Run) -> f32 {
    tensor_values(run.model.net().layers.matrix("critic"))[0]
}

#[test]
fn an_extra_optimiser_step_owns_its_layers_and_resumes_bit_for_bit() {
    let dir = common::tmp();
    let cfg = critic_config();
    let whole = dir.path().join("whole");
    aekit::train(&cfg, &FitOptions::new(&whole)).unwrap();
    let run = Run::open(&whole, &Device::flex()).unwrap();
    let c = critic_value(&run);
    assert!(
        (c - TARGET).abs() < 0.2,
        "critic {c}: the main step must not update the extra step's layers"
    );
    assert!(whole.join("checkpoint/optimizer-critic.bpk").is_file());

    // Interrupted after 11 steps, then resumed: the same weights, bit for bit.
    common::assert_resumes_to_the_same_bytes(&cfg, &whole, &dir.path().join("split"), 11);
}
