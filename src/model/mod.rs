//! Models: the configuration of every autoencoder variant, the network built from it, and the
//! `Autoencoder` handle that encodes, decodes and saves.
//!
//! A variant lives in its own file with its config and its forward pass; it is registered by a
//! line in [`ModelConfig`] and one in [`Network`].

pub mod activation;
pub mod conv;
pub mod dense;
pub(crate) mod gemm;
pub mod gemm_conv;
pub mod gemm_linear;
pub mod layers;
pub mod loss;
pub mod loss_kernel;
pub mod penalty;
pub mod vae;

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use activation::Activation;
pub use conv::{ConvAutoencoder, ConvConfig, LayerSpec};
pub use dense::{DenseAutoencoder, DenseConfig};
pub use layers::{Init, NamedTensor};
pub use loss::ReconLoss;
pub use vae::{Vae, VaeConfig};

use crate::data::Matrix;
use crate::error::{Error, Result};

/// Fields every variant shares: what goes in, what comes out, and how it is scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct IoConfig {
    /// Width of one input sample; filled in from the data when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_dim: Option<usize>,
    /// Shape of one sample, `[channels, height, width]` for images; filled in from the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<usize>>,
    /// Output unit; absent means sigmoid for data scaled to [0, 1], linear otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_activation: Option<Activation>,
    /// Reconstruction loss; absent means BCE with a sigmoid output, MSE otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<ReconLoss>,
    /// Denoising: corruption applied to every training input (the target stays clean),
    /// e.g. "gaussian:0.4", "masking:0.3", "salt-pepper:0.1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::data::Corruption>,
    /// Sparse autoencoder: weight λ of the L1 penalty λ·Σ|h| on the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_l1: Option<f64>,
    /// Sparse autoencoder: target mean activation ρ of each code unit (sigmoid codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparsity_target: Option<f64>,
    /// Weight β of the KL sparsity penalty β·Σ KL(ρ ‖ ρ̂_j) (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparsity_weight: Option<f64>,
    /// Contractive autoencoder: weight λ of λ·‖∂h/∂x‖²_F.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contractive: Option<f64>,
    /// Random projections per step for the contractive estimate of deep encoders (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contractive_projections: Option<usize>,
    /// Denoising on hidden activations: corruption of the code while training, before the
    /// decoder ("gaussian:S" or "masking:P").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_noise: Option<crate::data::Corruption>,
    /// Weight initialisation (default auto: He before rectifiers, Glorot otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
    /// A paired task: the input is a degraded image, the target the original
    /// ("upscale:2", "recolor", "inpaint:10").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<crate::data::paired::PairedTask>,
    /// Residual restoration: the network's output is a correction added to its own input (in
    /// logit space under a sigmoid output), so training starts from the degraded image itself
    /// (for upscaling, bilinear interpolation) instead of from noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<bool>,
}

/// Step of the central differences in the contractive estimate, on inputs of unit scale.
const CONTRACTIVE_EPS: f64 = 1e-2;

/// The terms of a training objective, each a scalar tensor. Penalties are added to the
/// reconstruction loss per element (pixel), as Keras adds activity regularisers to its mean loss.
pub struct LossTerms {
    pub total: Tensor<1>,
    pub recon: Tensor<1>,
    /// The KL term of a VAE, per element (unweighted).
    pub kl: Option<Tensor<1>>,
}

/// The model section of a run config. `kind` selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelConfig {
    Dense {
        #[serde(flatten)]
        io: IoConfig,
        #[serde(flatten)]
        arch: DenseConfig,
    },
    Vae {
        #[serde(flatten)]
        io: IoConfig,
        #[serde(flatten)]
        arch: VaeConfig,
    },
    Conv {
        #[serde(flatten)]
        io: IoConfig,
        #[serde(flatten)]
        arch: ConvConfig,
    },
}

impl ModelConfig {
    pub fn dense(arch: DenseConfig) -> Self {
        ModelConfig::Dense {
            io: IoConfig::default(),
            arch,
        }
    }

    pub fn vae(arch: VaeConfig) -> Self {
        ModelConfig::Vae {
            io: IoConfig::default(),
            arch,
        }
    }

    pub fn conv(arch: ConvConfig) -> Self {
        ModelConfig::Conv {
            io: IoConfig::default(),
            arch,
        }
    }

    pub fn io(&self) -> &IoConfig {
        match self {
            ModelConfig::Dense { io, .. }
            | ModelConfig::Vae { io, .. }
            | ModelConfig::Conv { io, .. } => io,
        }
    }

    pub fn io_mut(&mut self) -> &mut IoConfig {
        match self {
            ModelConfig::Dense { io, .. }
            | ModelConfig::Vae { io, .. }
            | ModelConfig::Conv { io, .. } => io,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Dense { .. } => "dense",
            ModelConfig::Vae { .. } => "vae",
            ModelConfig::Conv { .. } => "conv",
        }
    }

    /// Width of the code; for a convolutional model it depends on the input shape (0 until
    /// that is known).
    pub fn latent(&self) -> usize {
        match self {
            ModelConfig::Dense { arch, .. } => arch.latent,
            ModelConfig::Vae { arch, .. } => arch.latent,
            ModelConfig::Conv { arch, io } => io
                .input_shape
                .as_deref()
                .and_then(|s| arch.code_shape(s).ok())
                .map_or(0, |s| s.iter().product()),
        }
    }

    /// The VAE's KL weight after `epochs` of training (`None` for other models).
    pub fn kl_weight(&self, epochs: f64) -> Option<f64> {
        match self {
            ModelConfig::Vae { arch, .. } => Some(arch.kl_weight(epochs)),
            _ => None,
        }
    }

    /// Fills in what the data decides: input width, output unit and loss.
    pub fn resolve(&mut self, input_shape: &[usize], unit_range: bool) -> Result<()> {
        let input_dim: usize = input_shape.iter().product();
        let io = self.io_mut();
        match &io.input_shape {
            // A shape given in the config reinterprets flat samples (e.g. CSV rows) as images.
            Some(s) if s.iter().product::<usize>() != input_dim => {
                return Err(Error::mismatch(format!(
                    "model.input_shape {s:?} holds {} values, the data's samples have {input_dim}",
                    s.iter().product::<usize>()
                )));
            }
            Some(_) => {}
            None => io.input_shape = Some(input_shape.to_vec()),
        }
        match io.input_dim {
            Some(d) if d != input_dim => {
                return Err(Error::mismatch(format!(
                    "model expects inputs of {d} features, data has {input_dim}"
                )));
            }
            _ => io.input_dim = Some(input_dim),
        }
        let out = *io.output_activation.get_or_insert(if unit_range {
            Activation::Sigmoid
        } else {
            Activation::Linear
        });
        let loss = *io.loss.get_or_insert(if out == Activation::Sigmoid {
            ReconLoss::Bce
        } else {
            ReconLoss::Mse
        });
        if loss == ReconLoss::Bce && !matches!(out, Activation::Sigmoid) {
            return Err(Error::invalid(format!(
                "BCE needs outputs in (0, 1): use output_activation = \"sigmoid\", not \"{}\"",
                out.name()
            )));
        }
        self.validate()?;
        if let Some(task) = &self.io().task {
            task.check(self.io().input_shape.as_deref().unwrap_or(input_shape))?;
        }
        if let ModelConfig::Conv { arch, io } = self
            && arch.decoder.is_none()
            && let Some(shape) = &io.input_shape
        {
            // The saved config names every layer that was built.
            arch.decoder = Some(conv::mirror(shape, &arch.encoder)?);
        }
        if let ModelConfig::Vae { arch, io } = self
            && !arch.conv.is_empty()
            && arch.conv_decoder.is_none()
            && let Some(shape) = &io.input_shape
        {
            arch.conv_decoder = Some(conv::mirror(shape, &arch.conv)?);
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        let io = self.io();
        if io.code_l1.is_some_and(|l| !(l >= 0.0 && l.is_finite())) {
            return Err(Error::invalid("code_l1 must be a non-negative number"));
        }
        if let Some(rho) = io.sparsity_target {
            if !(rho > 0.0 && rho < 1.0) {
                return Err(Error::invalid(format!(
                    "sparsity_target must be in (0, 1), got {rho}"
                )));
            }
            if self.code_activation() != Activation::Sigmoid {
                return Err(Error::invalid(
                    "the KL sparsity penalty needs codes in (0, 1): set code_activation = \"sigmoid\"",
                ));
            }
        }
        if io.contractive.is_some_and(|l| !(l >= 0.0 && l.is_finite())) {
            return Err(Error::invalid("contractive must be a non-negative number"));
        }
        if io.contractive_projections == Some(0) {
            return Err(Error::invalid("contractive_projections must be at least 1"));
        }
        if io.sparsity_weight.is_some() && io.sparsity_target.is_none() {
            return Err(Error::invalid("sparsity_weight needs a sparsity_target"));
        }
        if let Some(c) = io.hidden_noise {
            if matches!(c, crate::data::Corruption::SaltPepper { .. }) {
                return Err(Error::invalid(
                    "hidden_noise takes gaussian:S or masking:P (salt-and-pepper needs a known value range)",
                ));
            }
            if matches!(self, ModelConfig::Vae { .. }) {
                return Err(Error::invalid(
                    "a VAE's code is already noisy (it is sampled): hidden_noise is for dense and conv models",
                ));
            }
        }
        if io.residual == Some(true) && matches!(self, ModelConfig::Vae { .. }) {
            return Err(Error::invalid(
                "residual is for dense and conv restoration models, not VAEs",
            ));
        }
        let shape = io.input_shape.as_deref();
        match self {
            ModelConfig::Dense { arch, .. } => arch.validate(),
            ModelConfig::Vae { arch, .. } => {
                arch.validate()?;
                shape.map_or(Ok(()), |s| arch.check(s))
            }
            ModelConfig::Conv { arch, .. } => shape.map_or(Ok(()), |s| arch.check(s)),
        }
    }

    pub fn code_activation(&self) -> Activation {
        match self {
            ModelConfig::Dense { arch, .. } => arch.code_activation,
            ModelConfig::Vae { .. } => Activation::Linear,
            ModelConfig::Conv { arch, .. } => match arch.encoder.last() {
                Some(LayerSpec::Dense { .. }) => arch.code_activation,
                _ => arch
                    .encoder
                    .iter()
                    .rev()
                    .find(|l| l.has_weights())
                    .and_then(|l| match l {
                        LayerSpec::Conv { act, .. }
                        | LayerSpec::ConvTranspose { act, .. }
                        | LayerSpec::Dense { act, .. } => *act,
                        _ => None,
                    })
                    .unwrap_or(arch.activation),
            },
        }
    }

    fn resolved(&self) -> Result<(usize, Activation, ReconLoss)> {
        let io = self.io();
        match (io.input_dim, io.output_activation, io.loss) {
            (Some(d), Some(a), Some(l)) => Ok((d, a, l)),
            _ => Err(Error::invalid(
                "model config is not resolved: input_dim, output_activation and loss must be set",
            )),
        }
    }

    pub fn input_dim(&self) -> Option<usize> {
        self.io().input_dim
    }

    pub fn loss(&self) -> ReconLoss {
        self.io().loss.unwrap_or(ReconLoss::Mse)
    }

    /// The training corruption of a denoising autoencoder, if any.
    pub fn noise(&self) -> Option<crate::data::Corruption> {
        self.io().noise
    }

    /// One line, e.g. "dense 784-1000-500-250-30-250-500-1000-784 (denoising gaussian:0.4)".
    pub fn describe(&self) -> String {
        let d = self.io().input_dim.unwrap_or(0);
        let base = match self {
            ModelConfig::Dense { arch, .. } => format!("dense {}", arch.describe(d)),
            ModelConfig::Vae { arch, io } => {
                let shape = io.input_shape.clone().unwrap_or_else(|| vec![d]);
                format!("vae {}", arch.describe(&shape))
            }
            ModelConfig::Conv { arch, io } => {
                format!(
                    "conv {}",
                    arch.describe(io.input_shape.as_deref().unwrap_or(&[]))
                )
            }
        };
        let io = self.io();
        let mut extras = Vec::new();
        if let Some(n) = io.noise {
            extras.push(format!("denoising {n}"));
        }
        if let Some(t) = io.task {
            extras.push(format!("task {t}"));
        }
        if let Some(n) = io.hidden_noise {
            extras.push(format!("hidden noise {n}"));
        }
        if let Some(l) = io.code_l1 {
            extras.push(format!("L1 {l}"));
        }
        if let Some(r) = io.sparsity_target {
            extras.push(format!(
                "KL sparsity rho {r} beta {}",
                io.sparsity_weight.unwrap_or(1.0)
            ));
        }
        if extras.is_empty() {
            base
        } else {
            format!("{base} ({})", extras.join(", "))
        }
    }
}

/// The trainable network of any variant.
// One value per model, never stored in bulk: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    Dense(DenseAutoencoder),
    Vae(Vae),
    Conv(ConvAutoencoder),
}

impl Network {
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Network::Dense(m) => m.encode(x),
            Network::Vae(m) => m.encode(x),
            Network::Conv(m) => m.encode(x),
        }
    }

    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<2> {
        match self {
            Network::Dense(m) => m.decode_logits(z),
            Network::Vae(m) => m.decode_logits(z),
            Network::Conv(m) => m.decode_logits(z),
        }
    }

    pub fn output_activation(&self) -> Activation {
        match self {
            Network::Dense(m) => m.output_activation(),
            Network::Vae(m) => m.acts.output,
            Network::Conv(m) => m.output_activation(),
        }
    }

    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        self.output_activation().apply(self.decode_logits(z))
    }

    /// The input as output logits: the identity, or the inverse sigmoid under a sigmoid
    /// output (clamped so that 0 and 1 stay finite).
    fn skip(&self, x: Tensor<2>) -> Tensor<2> {
        match self.output_activation() {
            Activation::Sigmoid => {
                let p = x.clamp(1e-4, 1.0 - 1e-4);
                (p.clone() / (p.neg().add_scalar(1.0))).log()
            }
            _ => x,
        }
    }

    /// The output for inputs `x`: `decode(encode(x))`, plus the input for residual models.
    pub fn restore(&self, x: Tensor<2>, residual: bool) -> Tensor<2> {
        if !residual {
            return self.decode(self.encode(x));
        }
        let logits = self.decode_logits(self.encode(x.clone())) + self.skip(x);
        self.output_activation().apply(logits)
    }

    /// The encoder's weight when the encoder is one linear layer followed by a sigmoid, the case
    /// where the contractive penalty has an exact closed form.
    pub fn single_sigmoid_layer(&self) -> Option<Tensor<2>> {
        match self {
            Network::Dense(m) => (m.encoder.len() == 1 && m.acts.encoder[0] == Activation::Sigmoid)
                .then(|| m.encoder[0].weight.val()),
            Network::Vae(_) | Network::Conv(_) => None,
        }
    }

    /// `‖∂h/∂x‖²_F` averaged over the batch `x`: exact for a single sigmoid layer, otherwise the
    /// random-projection estimate of [`penalty::contractive_estimate`] with `projections`
    /// directions drawn from `rng`.
    pub fn jacobian_frobenius_sq(
        &self,
        x: Tensor<2>,
        projections: usize,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Tensor<1> {
        if let Some(w) = self.single_sigmoid_layer() {
            return penalty::contractive_sigmoid_layer(self.encode(x), w);
        }
        let [n, d] = x.dims();
        let device = x.device();
        let directions: Vec<Tensor<2>> = (0..projections.max(1))
            .map(|_| layers::normal_tensor(n, d, rng, &device))
            .collect();
        penalty::contractive_estimate(|t| self.encode(t), x, &directions, CONTRACTIVE_EPS)
    }

    /// The training objective of `config`: reconstruction loss per element plus the config's
    /// penalties on the code. `rng` draws the contractive estimate's directions.
    pub fn objective(
        &self,
        input: Tensor<2>,
        target: Tensor<2>,
        config: &ModelConfig,
        rng: &mut rand_chacha::ChaCha8Rng,
        epochs_done: f64,
    ) -> LossTerms {
        let [_, dim] = target.dims();
        let io = config.io();
        if let Network::Vae(v) = self {
            let (recon, kl) = v.elbo_terms(input, target, config.loss(), rng);
            let recon = recon.mean().div_scalar(dim as f64);
            let kl = kl.mean().div_scalar(dim as f64);
            let weight = config.kl_weight(epochs_done).unwrap_or(1.0);
            return LossTerms {
                total: recon.clone() + kl.clone().mul_scalar(weight),
                recon,
                kl: Some(kl),
            };
        }
        let contraction = io.contractive.filter(|&l| l > 0.0).map(|lambda| {
            let k = io.contractive_projections.unwrap_or(1);
            self.jacobian_frobenius_sq(input.clone(), k, rng)
                .mul_scalar(lambda)
        });
        let input_for_skip = (io.residual == Some(true)).then(|| input.clone());
        let code = self.encode(input);
        let decoder_input = match io.hidden_noise {
            Some(c) => corrupt_hidden(code.clone(), c, rng),
            None => code.clone(),
        };
        let mut logits = self.decode_logits(decoder_input);
        if io.residual == Some(true) {
            logits = logits + self.skip(input_for_skip.expect("kept for residual runs"));
        }
        let recon = loss::per_sample(config.loss(), self.output_activation(), logits, target)
            .mean()
            .div_scalar(dim as f64);
        let mut total = recon.clone();
        if let Some(l) = io.code_l1.filter(|&l| l > 0.0) {
            total = total + penalty::l1(code.clone()).mul_scalar(l);
        }
        if let Some(rho) = io.sparsity_target {
            let beta = io.sparsity_weight.unwrap_or(1.0);
            total = total + penalty::kl_sparsity(code, rho).mul_scalar(beta);
        }
        if let Some(c) = contraction {
            total = total + c;
        }
        LossTerms {
            total,
            recon,
            kl: None,
        }
    }

    pub fn export(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        match self {
            Network::Dense(m) => m.export(&mut out),
            Network::Vae(m) => m.export(&mut out),
            Network::Conv(m) => m.export(&mut out),
        }
        out
    }

    pub fn import(self, tensors: &HashMap<String, NamedTensor>) -> Result<Self> {
        Ok(match self {
            Network::Dense(m) => Network::Dense(m.import(tensors)?),
            Network::Vae(m) => Network::Vae(m.import(tensors)?),
            Network::Conv(m) => Network::Conv(m.import(tensors)?),
        })
    }
}

/// Training-time corruption of hidden activations: additive Gaussian noise, or masking (each
/// unit zeroed with probability p, survivors not rescaled, as masking noise on inputs).
fn corrupt_hidden(
    h: Tensor<2>,
    c: crate::data::Corruption,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Tensor<2> {
    use rand::Rng;
    let [n, d] = h.dims();
    let device = h.device();
    match c {
        crate::data::Corruption::Gaussian { sigma } => {
            h + layers::normal_tensor(n, d, rng, &device).mul_scalar(sigma)
        }
        crate::data::Corruption::Masking { p } => {
            let keep: Vec<f32> = (0..n * d)
                .map(|_| if rng.random::<f32>() < p { 0.0 } else { 1.0 })
                .collect();
            h * Tensor::<2>::from_data(burn::tensor::TensorData::new(keep, [n, d]), &device)
        }
        crate::data::Corruption::SaltPepper { .. } => h,
    }
}

/// Rows per forward pass when encoding or decoding whole datasets.
const INFERENCE_BATCH: usize = 1024;

/// A built model: its resolved config, its network and the device it lives on.
#[derive(Debug, Clone)]
pub struct Autoencoder {
    config: ModelConfig,
    net: Network,
    device: Device,
}

impl Autoencoder {
    /// Builds a freshly initialised model. `config` must be resolved (see [`ModelConfig::resolve`]).
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        let (input_dim, output, _) = config.resolved()?;
        config.validate()?;
        let train_device = device.clone().autodiff();
        let init = config.io().init.unwrap_or_default();
        let mut params =
            layers::ParamFactory::new(crate::data::batch::rng_for(seed, 3), init, &train_device);
        let shape = config
            .io()
            .input_shape
            .clone()
            .unwrap_or_else(|| vec![input_dim]);
        let net = match config {
            ModelConfig::Dense { arch, .. } => {
                Network::Dense(DenseAutoencoder::init(arch, input_dim, output, &mut params))
            }
            ModelConfig::Vae { arch, .. } => {
                Network::Vae(Vae::init(arch, &shape, output, &mut params)?)
            }
            ModelConfig::Conv { arch, .. } => {
                Network::Conv(ConvAutoencoder::init(arch, &shape, output, &mut params)?)
            }
        };
        Ok(Self {
            config: config.clone(),
            net,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn net(&self) -> &Network {
        &self.net
    }

    pub fn into_net(self) -> Network {
        self.net
    }

    pub fn with_net(&self, net: Network) -> Self {
        Self {
            config: self.config.clone(),
            net,
            device: self.device.clone(),
        }
    }

    pub fn input_dim(&self) -> usize {
        self.config.input_dim().unwrap_or(0)
    }

    pub fn latent_dim(&self) -> usize {
        self.config.latent()
    }

    pub fn num_params(&self) -> usize {
        self.net.num_params()
    }

    fn check_width(&self, m: &Matrix, want: usize, what: &str) -> Result<()> {
        if m.cols != want {
            return Err(Error::mismatch(format!(
                "model expects {what} of {want} features, got {}",
                m.cols
            )));
        }
        Ok(())
    }

    /// Runs `f` over `m` in batches without autodiff and gathers the outputs.
    fn map_batches(&self, m: &Matrix, f: impl Fn(&Network, Tensor<2>) -> Tensor<2>) -> Matrix {
        let net = self.net.valid();
        let mut out = Vec::new();
        let mut cols = 0;
        for x in layers::tensor_batches(m, INFERENCE_BATCH, &self.device) {
            let y = f(&net, x);
            cols = y.dims()[1];
            out.extend(
                y.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("float output"),
            );
        }
        Matrix {
            rows: m.rows,
            cols,
            data: out,
        }
    }

    /// Codes of the rows of `x` (already preprocessed).
    pub fn encode(&self, x: &Matrix) -> Result<Matrix> {
        self.check_width(x, self.input_dim(), "inputs")?;
        Ok(self.map_batches(x, |n, t| n.encode(t)))
    }

    /// scikit-learn's name for [`Self::encode`].
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        self.encode(x)
    }

    /// scikit-learn's name for [`Self::decode`].
    pub fn inverse_transform(&self, z: &Matrix) -> Result<Matrix> {
        self.decode(z)
    }

    /// Outputs for the codes `z`.
    pub fn decode(&self, z: &Matrix) -> Result<Matrix> {
        self.check_width(z, self.latent_dim(), "codes")?;
        Ok(self.map_batches(z, |n, t| n.decode(t)))
    }

    /// `decode(encode(x))` in one pass.
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        self.check_width(x, self.input_dim(), "inputs")?;
        let residual = self.config.io().residual == Some(true);
        Ok(self.map_batches(x, |n, t| n.restore(t, residual)))
    }

    /// Weights as named tensors in PyTorch layout (`encoder.0.weight` is `[out, in]`).
    pub fn export(&self) -> Vec<NamedTensor> {
        self.net.export()
    }

    /// Writes the weights as safetensors, atomically.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let tensors = self.export();
        let bytes = encode_safetensors(&tensors, &self.config)?;
        crate::io::write_atomic(path, &bytes)
    }

    /// Replaces the weights with those in a safetensors file written by [`Self::save_safetensors`].
    pub fn load_safetensors(self, path: &Path) -> Result<Self> {
        let tensors = read_safetensors(path)?;
        let expected: std::collections::HashSet<String> =
            self.export().into_iter().map(|t| t.name).collect();
        let mut extra: Vec<&String> = tensors.keys().filter(|k| !expected.contains(*k)).collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(Error::bad_file(
                path,
                format!(
                    "unexpected tensor(s) {}: it was saved from another model",
                    extra
                        .iter()
                        .map(|s| format!("'{s}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let net = self
            .net
            .import(&tensors)
            .map_err(|e| Error::bad_file(path, e.to_string()))?;
        Ok(Self { net, ..self })
    }
}

/// Serialises named tensors as safetensors with the model config in the metadata.
pub fn encode_safetensors(tensors: &[NamedTensor], config: &ModelConfig) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::invalid(format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(
        "producer".to_string(),
        format!("aekit {}", env!("CARGO_PKG_VERSION")),
    );
    meta.insert(
        "aekit_model".to_string(),
        serde_json::to_string(config).map_err(|e| Error::invalid(e.to_string()))?,
    );
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::invalid(e.to_string()))
}

/// Reads every f32 tensor of a safetensors file.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, NamedTensor>> {
    let bytes = crate::io::read_file(path)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bad_file(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(Error::bad_file(
                path,
                format!("tensor '{name}' is {:?}, expected F32", view.dtype()),
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(
            name.clone(),
            NamedTensor {
                name,
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}
