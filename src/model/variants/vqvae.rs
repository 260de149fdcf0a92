//! The vector-quantised VAE (van den Oord, Vinyals & Kavukcuoglu 2017): a convolutional
//! encoder maps an image to a grid of D-dimensional vectors, each replaced by its nearest
//! entry of a learned codebook of K vectors; the decoder sees the quantised grid. Gradients
//! pass the quantisation straight through (the decoder's gradient is copied to the
//! encoder's output), the codebook moves towards the encoder outputs (codebook loss, or
//! exponential moving averages), and a commitment loss (β) keeps the encoder near its codes.
//! Codes unused for a few hundred steps can be restarted on encoder outputs of the batch.
//!
//! The code is the quantised grid in the conv stack's layout (channels × height × width);
//! [`Variant::codebook_indices`] gives the entries' indices.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::graph::Inputs;
use crate::model::layers::{
    LayerSpec, Layers, LayersBuilder, StackActs, parse_layers, tensor_values,
};
use crate::model::objective::LossTerms;
use crate::model::variant::{
    Batch, Capabilities, NetworkNodes, Resolved, StepContext, Variant, VariantConfig,
};
use crate::model::variants::conv::ConvConfig;
use crate::model::{Activation, Network, SharedConfig, loss};

fn d_encoder() -> Vec<LayerSpec> {
    parse_layers("conv:32:3:s2,conv:64:3:s2,conv:16:1").expect("valid spec")
}
fn d_act() -> Activation {
    Activation::Relu
}
fn d_codes() -> usize {
    128
}
fn d_commitment() -> f64 {
    0.25
}
fn d_one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct VqVaeConfig {
    /// Convolutional encoder down to the grid of vectors; its last layer's channels are the
    /// vectors' width D (e.g. conv:32:3:s2,conv:64:3:s2,conv:16:1).
    #[serde(default = "d_encoder")]
    #[arg(long = "encoder", id = "encoder", value_name = "ENCODER", value_delimiter = ',', num_args = 1.., required = false)]
    pub encoder: Vec<LayerSpec>,
    /// Decoder layers from the grid (default: the encoder mirrored). Training writes the
    /// mirror here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub decoder: Option<Vec<LayerSpec>>,
    #[serde(default = "d_act")]
    #[arg(long, required = false)]
    pub activation: Activation,
    /// Entries of the codebook (K).
    #[serde(default = "d_codes")]
    #[arg(long, required = false)]
    pub codes: usize,
    /// β: weight of the commitment loss ‖z − sg(e)‖².
    #[serde(default = "d_commitment")]
    #[arg(long, required = false)]
    pub commitment: f64,
    /// Weight of the reconstruction loss (keras.io's example divides it by the training
    /// data's variance).
    #[serde(default = "d_one")]
    #[arg(long, required = false)]
    pub recon_weight: f64,
    /// Update the codebook by exponential moving averages with this decay (e.g. 0.99)
    /// instead of by its loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// Move codes unused for a few hundred steps onto encoder outputs of the current batch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[arg(long, required = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub restart_dead_codes: bool,
    /// With restarts: a code the batch leaves unused is restarted when its averaged use
    /// (vectors per step) is below this. The default, half of one use's weight, restarts only
    /// codes dead for hundreds of steps; Jukebox (Dhariwal et al. 2020) restarts below 1,
    /// which also moves rarely used codes to where the data is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub restart_below: Option<f64>,
}

impl Default for VqVaeConfig {
    fn default() -> Self {
        Self {
            encoder: d_encoder(),
            decoder: None,
            activation: d_act(),
            codes: d_codes(),
            commitment: d_commitment(),
            recon_weight: 1.0,
            ema_decay: None,
            restart_dead_codes: false,
            restart_below: None,
        }
    }
}

/// Decay of the codes' usage counts when the codebook itself is not averaged.
const USAGE_DECAY: f64 = 0.99;
/// A code is dead when unused in the batch and its averaged count per step is below this
/// fraction of (1 − decay), the weight of one use: at decay 0.99, after about 530 steps
/// without a use following steady use of one vector per step (and at once for entries no
/// batch has used yet, which restarts spread onto the data).
const DEAD_USAGE: f32 = 0.5;

impl VqVaeConfig {
    /// The same encoder and decoder as a convolutional autoencoder's, whose shape checks,
    /// mirroring and code size are the VQ-VAE's too.
    fn conv(&self) -> ConvConfig {
        ConvConfig {
            encoder: self.encoder.clone(),
            decoder: self.decoder.clone(),
            activation: self.activation,
            code_activation: Activation::Linear,
        }
    }

    fn grid_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.conv().code_shape(input_shape)
    }

    /// Whether steps keep usage counts (for averaging or restarts).
    fn tracks_usage(&self) -> bool {
        self.ema_decay.is_some() || self.restart_dead_codes
    }
}

impl VariantConfig for VqVaeConfig {
    fn kind(&self) -> &'static str {
        "vqvae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        if self.codes == 0 {
            return Err(Error::invalid("a codebook needs at least 1 code"));
        }
        if self.encoder.is_empty() {
            return Err(Error::invalid("the VQ-VAE's encoder has no layers"));
        }
        let commitment_ok = self.commitment >= 0.0 && self.commitment.is_finite();
        let weight_ok = self.recon_weight > 0.0 && self.recon_weight.is_finite();
        if !commitment_ok || !weight_ok {
            return Err(Error::invalid(
                "commitment must be non-negative and recon_weight positive",
            ));
        }
        if self.ema_decay.is_some_and(|d| !(d > 0.0 && d < 1.0)) {
            return Err(Error::invalid(
                "ema_decay must lie strictly between 0 and 1",
            ));
        }
        if let Some(t) = self.restart_below {
            if !(t > 0.0 && t.is_finite()) {
                return Err(Error::invalid(format!(
                    "restart_below must be a positive number, got {t}"
                )));
            }
            if !self.restart_dead_codes {
                return Err(Error::invalid(
                    "restart_below sets when dead codes restart: it needs restart_dead_codes",
                ));
            }
        }
        if shared.hidden_noise.is_some() || shared.residual == Some(true) {
            return Err(Error::invalid(
                "hidden_noise and residual are for dense and conv models, not VQ-VAEs",
            ));
        }
        if let Some(shape) = shared.input_shape.as_deref() {
            self.conv().check(shape)?;
            if self.grid_shape(shape)?.len() != 3 {
                return Err(Error::invalid(
                    "the VQ-VAE's encoder must end in a convolution (a grid of vectors)",
                ));
            }
        }
        Ok(())
    }

    fn resolve(&mut self, shared: &SharedConfig) -> Result<()> {
        let mut conv = self.conv();
        conv.resolve(shared)?;
        self.decoder = conv.decoder;
        Ok(())
    }

    fn latent(&self, shared: &SharedConfig) -> usize {
        self.conv().latent(shared)
    }

    fn code_activation(&self) -> Activation {
        Activation::Linear
    }

    fn describe(&self, shared: &SharedConfig) -> String {
        let l: Vec<String> = self.encoder.iter().map(|l| l.to_string()).collect();
        let grid = shared
            .input_shape
            .as_deref()
            .and_then(|s| self.grid_shape(s).ok())
            .map_or(String::from("?"), |g| {
                format!("{}x{} grid of {}-d vectors", g[1], g[2], g[0])
            });
        let update = if self.ema_decay.is_some() {
            "EMA"
        } else {
            "loss"
        };
        format!(
            "VQ-VAE conv [{}] to a {grid}, {} codes ({update} updates), beta {}",
            l.join(","),
            self.codes,
            self.commitment
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            codebook: true,
            ..Capabilities::default()
        }
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        let shape = input.input_shape;
        let grid = layers.stack(
            "conv_encoder",
            &self.encoder,
            shape,
            StackActs {
                hidden: self.activation,
                last: Some(Activation::Linear),
            },
        )?;
        let width = grid[0];
        // Codebook entries start small and spread (U(±1/K), as in the paper's code).
        layers.matrix("codebook", self.codes, width, 1.0 / self.codes as f32)?;
        layers.stack(
            "conv_decoder",
            &self.conv().decoder_layers(shape)?,
            &grid,
            StackActs {
                hidden: self.activation,
                last: Some(input.output),
            },
        )?;
        if self.tracks_usage() {
            layers.matrix("codebook_usage", 1, self.codes, 0.0)?;
        }
        if self.ema_decay.is_some() {
            layers.matrix("codebook_ema_sum", self.codes, width, 0.0)?;
        }
        Ok(Arc::new(VqVae {
            grid: [grid[0], grid[1] * grid[2]],
            output: input.output,
            codes: self.codes,
            commitment: self.commitment,
            recon_weight: self.recon_weight,
            ema_decay: self.ema_decay,
            restart_dead: self.restart_dead_codes,
            restart_below: self.restart_below.map(|t| t as f32),
        }))
    }
}

#[derive(Debug, Clone)]
pub struct VqVae {
    /// `[D, positions]` of the encoder's output.
    grid: [usize; 2],
    output: Activation,
    codes: usize,
    commitment: f64,
    recon_weight: f64,
    ema_decay: Option<f64>,
    restart_dead: bool,
    restart_below: Option<f32>,
}

impl VqVae {
    /// The encoder's output as one row per position: `[batch × positions, D]`.
    fn vectors(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        let n = x.dims()[0];
        let [d, p] = self.grid;
        let h = layers
            .stack("conv_encoder")
            .expect("built")
            .forward(x, false);
        h.reshape([n, d, p]).swap_dims(1, 2).reshape([n * p, d])
    }

    /// Rows of vectors back to codes in the conv layout: `[batch, D × positions]`.
    fn to_code(&self, v: Tensor<2>) -> Tensor<2> {
        let [d, p] = self.grid;
        let n = v.dims()[0] / p;
        v.reshape([n, p, d]).swap_dims(1, 2).reshape([n, d * p])
    }

    /// The nearest codebook entry of each row: its index and the entry.
    fn quantise(&self, layers: &Layers, v: Tensor<2>) -> (Tensor<1, Int>, Tensor<2>) {
        let e = layers.matrix("codebook");
        // ‖v − e‖² = ‖v‖² − 2 v·e + ‖e‖²; ‖v‖² is the same for every entry.
        let e_sq = (e.clone() * e.clone()).sum_dim(1).transpose();
        let dist = e_sq - v.matmul(e.clone().transpose()).mul_scalar(2.0);
        let idx = dist.argmin(1).squeeze_dim::<1>(1);
        let q = e.select(0, idx.clone());
        (idx, q)
    }
}

impl Variant for VqVae {
    /// The quantised grid.
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        let v = self.vectors(layers, x);
        self.to_code(self.quantise(layers, v).1)
    }

    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        layers
            .stack("conv_decoder")
            .expect("built")
            .forward(z, true)
    }

    fn output_activation(&self) -> Activation {
        self.output
    }

    /// The encoder's map quantised: the code is the quantised grid, channel-major.
    fn describe_network(&self, net: &Inputs) -> Option<NetworkNodes> {
        let encoder = net.rows().stack("conv_encoder", false);
        let encoder = encoder.quantize("codebook").finish();
        let decoder = net.codes().stack("conv_decoder", true).finish();
        Some(NetworkNodes { encoder, decoder })
    }

    fn codebook_indices(&self, layers: &Layers, x: Tensor<2>) -> Option<Tensor<2, Int>> {
        let n = x.dims()[0];
        let v = self.vectors(layers, x);
        Some(self.quantise(layers, v).0.reshape([n, self.grid[1]]))
    }

    /// Reconstruction (× recon_weight) of the straight-through decoding, plus β·‖z − sg(e)‖²
    /// and, unless the codebook is averaged, ‖sg(z) − e‖², each a mean over the vectors'
    /// elements (as keras.io's example).
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let [_, dim] = batch.target.dims();
        let v = self.vectors(&net.layers, batch.input);
        let (_, q) = self.quantise(&net.layers, v.clone());
        let straight_through = v.clone() + (q.clone() - v.clone()).detach();
        let logits = self.decode_logits(&net.layers, self.to_code(straight_through));
        let recon = loss::per_sample(cx.config.likelihood(), self.output, logits, batch.target)
            .mean()
            .div_scalar(dim as f64);
        let sq_mean = |a: Tensor<2>| (a.clone() * a).mean();
        let mut total = recon.clone().mul_scalar(self.recon_weight)
            + sq_mean(v.clone() - q.clone().detach()).mul_scalar(self.commitment);
        if self.ema_decay.is_none() {
            total = total + sq_mean(v.detach() - q);
        }
        LossTerms {
            total,
            recon,
            kl: None,
        }
    }

    /// Usage counts, the averaged codebook and dead-code restarts: updates of the codebook
    /// state from the batch's assignments, outside the gradient.
    fn after_step(&self, net: Network, batch: &Batch, cx: &mut StepContext) -> Network {
        if self.ema_decay.is_none() && !self.restart_dead {
            return net;
        }
        let plain = net.layers.clone().valid();
        let v = self.vectors(&plain, batch.input.clone().inner());
        let (idx, _) = self.quantise(&plain, v.clone());
        let d = self.grid[0];
        let idx: Vec<usize> = idx
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("indices")
            .into_iter()
            .map(|i| i as usize)
            .collect();
        let v = tensor_values(v);
        let (k, rows) = (self.codes, idx.len());
        let mut counts = vec![0f32; k];
        let mut sums = vec![0f32; k * d];
        for (r, &c) in idx.iter().enumerate() {
            counts[c] += 1.0;
            for j in 0..d {
                sums[c * d + j] += v[r * d + j];
            }
        }
        let decay = self.ema_decay.unwrap_or(USAGE_DECAY) as f32;
        let mut usage = tensor_values(plain.matrix("codebook_usage"));
        for (u, c) in usage.iter_mut().zip(&counts) {
            *u = decay * *u + (1.0 - decay) * c;
        }
        let mut codebook = tensor_values(plain.matrix("codebook"));
        let mut ema_sum = self
            .ema_decay
            .map(|_| tensor_values(plain.matrix("codebook_ema_sum")));
        if let Some(sum) = &mut ema_sum {
            for c in 0..k {
                for j in 0..d {
                    let s = &mut sum[c * d + j];
                    *s = decay * *s + (1.0 - decay) * sums[c * d + j];
                }
                // An entry never used keeps its value (sum and count are both still 0).
                if usage[c] > f32::MIN_POSITIVE {
                    for j in 0..d {
                        codebook[c * d + j] = sum[c * d + j] / usage[c];
                    }
                }
            }
        }
        if self.restart_dead {
            use rand::Rng;
            let below = self.restart_below.unwrap_or(DEAD_USAGE * (1.0 - decay));
            for c in 0..k {
                if counts[c] == 0.0 && usage[c] < below && rows > 0 {
                    let r = cx.rng.random_range(0..rows);
                    codebook[c * d..(c + 1) * d].copy_from_slice(&v[r * d..(r + 1) * d]);
                    // A restarted code counts as used once, so it has time to attract vectors.
                    usage[c] = 1.0;
                    if let Some(sum) = &mut ema_sum {
                        sum[c * d..(c + 1) * d].copy_from_slice(&v[r * d..(r + 1) * d]);
                    }
                }
            }
        }
        let variant = net.variant_handle();
        let mut layers = net
            .layers
            .with_matrix("codebook", codebook)
            .with_matrix("codebook_usage", usage);
        if let Some(sum) = ema_sum {
            layers = layers.with_matrix("codebook_ema_sum", sum);
        }
        Network::new(layers, variant)
    }
}
