//! Named configurations from the literature, selectable with `--preset`.

use crate::error::{Error, Result};
use crate::model::layers::parse_layers;
use crate::model::{
    Activation, ConvConfig, DenseConfig, Init, ModelConfig, ReconLoss, VaeConfig, VqVaeConfig,
};
use crate::run::config::RunConfig;
use crate::train::{OptimizerKind, Schedule, TrainConfig};

pub const NAMES: &[(&str, &str)] = &[
    (
        "hinton2006",
        "784-1000-500-250-30 deep autoencoder (Hinton & Salakhutdinov 2006), ELU, trained end to end with AdamW",
    ),
    (
        "pytorch-vae",
        "784-400-20 VAE, Bernoulli decoder, Adam 1e-3, batch 128, 10 epochs (PyTorch's VAE example)",
    ),
    (
        "hinton2006-docs",
        "2000-500-250-125-10 on bags of words (text:DIR), ReLU, linear code, sigmoid output, BCE, Adam, 50 epochs (document retrieval)",
    ),
    (
        "keras-dense",
        "784-32-784, relu code, sigmoid output, BCE (the Keras blog's simplest autoencoder)",
    ),
    (
        "keras-deep",
        "784-128-64-32, relu, sigmoid output, BCE (the Keras blog's deep autoencoder)",
    ),
    (
        "keras-conv",
        "conv 16-8-8 (3x3, relu) with 2x2 max pooling to 8x4x4, upsampling decoder, BCE, Adam, batch 128, 50 epochs (the Keras blog)",
    ),
    (
        "keras-denoise",
        "conv 32-32 with pooling to 32x7x7, transposed-conv decoder, Gaussian noise 0.4, BCE, Adam, batch 128 (keras.io's denoising example)",
    ),
    (
        "keras-conv-vae",
        "conv VAE: conv 32-64 (3x3, stride 2), dense 16, 2-d latent, mirrored decoder, Adam, batch 128, 30 epochs (keras.io's VAE example)",
    ),
    (
        "keras-vqvae",
        "VQ-VAE: conv 32-64 (3x3, stride 2) to a 7x7 grid of 16-d vectors, 128 codes, beta 0.25, transposed-conv decoder, MSE over MNIST's variance, Adam, batch 128, 30 epochs (keras.io's VQ-VAE example)",
    ),
];

/// Pixel variance of MNIST's training images scaled to [0, 1]: keras.io's VQ-VAE example
/// divides its reconstruction loss by it (`np.var(x_train / 255.0)`).
const MNIST_PIXEL_VARIANCE: f64 = 0.094_930_42;

/// Sets a sigmoid output and `loss`.
fn with_io(mut m: ModelConfig, loss: ReconLoss) -> ModelConfig {
    m.shared_mut().output_activation = Some(Activation::Sigmoid);
    m.shared_mut().loss = Some(loss);
    m
}

/// A Keras model: Glorot-uniform weights, zero biases, sigmoid output and BCE.
fn keras(mut m: ModelConfig) -> ModelConfig {
    m.shared_mut().init = Some(Init::Glorot);
    with_io(m, ReconLoss::Bce)
}

fn dense(hidden: Vec<usize>, latent: usize, code: Activation) -> ModelConfig {
    let mut arch = DenseConfig::new(hidden, latent);
    arch.code_activation = code;
    keras(ModelConfig::new(arch))
}

fn conv(encoder: &str, decoder: Option<&str>) -> ModelConfig {
    let mut arch = ConvConfig::new(parse_layers(encoder).expect("preset layers parse"));
    arch.decoder = decoder.map(|d| parse_layers(d).expect("preset layers parse"));
    keras(ModelConfig::new(arch))
}

fn adam(epochs: usize, batch_size: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
        ..TrainConfig::default()
    }
}

/// Applies preset `name` to `base`: model and training settings, keeping the data section.
pub fn apply(name: &str, base: &RunConfig) -> Result<RunConfig> {
    let mut cfg = base.clone();
    match name {
        "hinton2006" => {
            // The paper's logistic units and RBM pre-training are replaced by ELU units trained
            // end to end. With plain ReLU/Adam the net overfits (train 2.2, test 3.75 squared
            // error per image); decoupled weight decay and ELU narrowed that gap most in
            // 20-epoch trials (RESULTS.md).
            let mut arch = DenseConfig::new(vec![1000, 500, 250], 30);
            arch.activation = Activation::Elu;
            cfg.model = with_io(ModelConfig::new(arch), ReconLoss::Bce);
            cfg.train = TrainConfig {
                // Sized so the cosine schedule ends within 20 minutes on 2 cores.
                epochs: 60,
                batch_size: 256,
                optimizer: OptimizerKind::Adamw,
                lr: 1.5e-3,
                weight_decay: 0.2,
                warmup_epochs: 1.0,
                schedule: Schedule::Cosine,
                min_lr: 1e-5,
                ..TrainConfig::default()
            };
        }
        "hinton2006-docs" => {
            // The paper's layer sizes, trained end to end instead of RBM pre-training; inputs
            // are normalised log counts in [0, 1] (data/text.rs), hence sigmoid + BCE.
            cfg.model = with_io(
                ModelConfig::new(DenseConfig::new(vec![500, 250, 125], 10)),
                ReconLoss::Bce,
            );
            cfg.train = TrainConfig {
                epochs: 50,
                ..TrainConfig::default()
            };
        }
        "pytorch-vae" => {
            let mut m = ModelConfig::new(VaeConfig::new(vec![400], 20));
            // PyTorch's nn.Linear default: weights and biases U(±1/√fan_in).
            m.shared_mut().init = Some(Init::Torch);
            cfg.model = with_io(m, ReconLoss::Bce);
            cfg.train = adam(10, 128);
        }
        "keras-dense" => {
            cfg.model = dense(vec![], 32, Activation::Relu);
            cfg.train = adam(50, 256);
        }
        "keras-deep" => {
            cfg.model = dense(vec![128, 64], 32, Activation::Relu);
            cfg.train = adam(100, 256);
        }
        "keras-conv" => {
            cfg.model = conv(
                "conv:16:3,maxpool:2,conv:8:3,maxpool:2,conv:8:3,maxpool:2",
                Some("conv:8:3,up:2,conv:8:3,up:2,conv:16:3:valid,up:2,conv:1:3"),
            );
            cfg.train = adam(50, 128);
        }
        "keras-denoise" => {
            cfg.model = conv(
                "conv:32:3,maxpool:2,conv:32:3,maxpool:2",
                Some("convt:32:3:s2,convt:32:3:s2,conv:1:3"),
            );
            cfg.model.shared_mut().noise = Some(crate::data::Corruption::Gaussian { sigma: 0.4 });
            cfg.train = adam(100, 128);
        }
        "keras-vqvae" => {
            let layers = |spec| parse_layers(spec).expect("preset layers parse");
            let arch = VqVaeConfig {
                encoder: layers("conv:32:3:s2,conv:64:3:s2,conv:16:1"),
                decoder: Some(layers("convt:64:3:s2,convt:32:3:s2,convt:1:3")),
                codes: 128,
                commitment: 0.25,
                recon_weight: 1.0 / MNIST_PIXEL_VARIANCE,
                ..VqVaeConfig::default()
            };
            let mut m = ModelConfig::new(arch);
            m.shared_mut().init = Some(Init::Glorot);
            // Keras's decoder ends in a linear layer under squared error (on pixels shifted
            // to [-0.5, 0.5], which only moves the last bias).
            m.shared_mut().output_activation = Some(Activation::Linear);
            m.shared_mut().loss = Some(ReconLoss::Mse);
            cfg.model = m;
            cfg.train = adam(30, 128);
        }
        "keras-conv-vae" => {
            let mut arch = VaeConfig::new(vec![16], 2);
            arch.conv = parse_layers("conv:32:3:s2,conv:64:3:s2").expect("preset layers parse");
            cfg.model = keras(ModelConfig::new(arch));
            cfg.train = adam(30, 128);
        }
        _ => {
            let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            return Err(Error::invalid(format!(
                "unknown preset '{name}'; available: {}",
                names.join(", ")
            )));
        }
    }
    cfg.train.seed = base.train.seed;
    Ok(cfg)
}
