//! The recurrent (GRU) autoencoder of time series windows: a GRU reads the window step by
//! step, its last state becomes the code through a linear layer; the decoder starts a second
//! GRU from the code, feeds it the code at every step, and maps each step's state to the
//! channels (the "LSTM autoencoder" of Srivastava et al. 2015 and Malhotra et al. 2016, with
//! GRU cells).
//!
//! The cells follow PyTorch's `nn.GRU`: `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z` alike,
//! `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`, the three gates'
//! weights stacked `[r, z, n]` in one `[3·units, in]` matrix (`*.input`, `*.state`). The LSTM
//! variant (`lstm.rs`) runs the same network with PyTorch's `nn.LSTM` cells ([`Cell::Lstm`]).

use std::sync::Arc;

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels::linear::linear;
use crate::model::layers::{Layers, LayersBuilder};
use crate::model::network::Network;
use crate::model::objective::LossTerms;
use crate::model::variant::{Batch, Resolved, StepContext, Variant, VariantConfig};
use crate::model::variants::windows::{self, Variational};
use crate::model::{Activation, ModelConfig, SharedConfig, objective};

fn default_units() -> usize {
    64
}
fn default_latent() -> usize {
    16
}
fn default_code_activation() -> Activation {
    Activation::Linear
}

/// Architecture of a recurrent autoencoder over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct GruConfig {
    /// Units of the encoder's and the decoder's GRU.
    #[serde(default = "default_units")]
    #[arg(long, required = false)]
    pub units: usize,
    /// Width of the code.
    #[serde(default = "default_latent")]
    #[arg(long, required = false)]
    pub latent: usize,
    /// Activation of the code layer.
    #[serde(default = "default_code_activation")]
    #[arg(long, required = false)]
    pub code_activation: Activation,
    /// The last state gives a Gaussian posterior's mean (`encoder.code`) and log-variance
    /// (`encoder.logvar`).
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: Variational,
}

impl Default for GruConfig {
    fn default() -> Self {
        Self {
            units: default_units(),
            latent: default_latent(),
            code_activation: default_code_activation(),
            vae: Variational::default(),
        }
    }
}

fn window_shape(shape: Option<&[usize]>) -> Result<(usize, usize)> {
    windows::window_shape("gru", "reads a series step by step", shape)
}

/// The recurrent cell a network is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// PyTorch's `nn.GRU`: gates `[r, z, n]`.
    Gru,
    /// PyTorch's `nn.LSTM`: gates `[i, f, g, o]`, `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`.
    Lstm,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cell::Gru => "GRU",
            Cell::Lstm => "LSTM",
        }
    }
}

impl VariantConfig for GruConfig {
    fn kind(&self) -> &'static str {
        "gru"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        self.validate_cells(shared, Cell::Gru)
    }

    fn capabilities(&self) -> crate::model::variant::Capabilities {
        self.vae.capabilities()
    }

    fn latent(&self, _shared: &SharedConfig) -> usize {
        self.latent
    }

    fn code_activation(&self) -> Activation {
        self.code_activation
    }

    /// "GRU 64 over 1x64 → 16 → GRU 64 → 1x64"
    fn describe(&self, shared: &SharedConfig) -> String {
        self.describe_cells(shared, Cell::Gru)
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        self.build_cells(input, layers, Cell::Gru)
    }
}

impl GruConfig {
    /// [`VariantConfig::validate`] for a network of `cell`s.
    pub fn validate_cells(&self, shared: &SharedConfig, cell: Cell) -> Result<()> {
        if self.units == 0 || self.latent == 0 {
            return Err(Error::invalid(format!(
                "--units and --latent of a {} autoencoder must be at least 1",
                cell.name()
            )));
        }
        if shared.input_shape.is_some() {
            window_shape(shared.input_shape.as_deref())?;
        }
        self.vae.validate()?;
        if self.vae.variational && self.code_activation != Activation::Linear {
            return Err(Error::invalid(format!(
                "a variational {}'s code is a Gaussian's mean: --code-activation must be linear",
                cell.name()
            )));
        }
        Ok(())
    }

    /// [`VariantConfig::describe`] for a network of `cell`s.
    pub fn describe_cells(&self, shared: &SharedConfig, cell: Cell) -> String {
        let shape = window_shape(shared.input_shape.as_deref())
            .map_or_else(|_| "windows".to_string(), |(c, w)| format!("{c}x{w}"));
        format!(
            "{name} {u} over {shape} → {l} → {name} {u} → {shape}{vae}",
            name = cell.name(),
            u = self.units,
            l = self.latent,
            vae = self.vae.describe()
        )
    }

    /// [`VariantConfig::build`] for a network of `cell`s.
    pub fn build_cells(
        &self,
        input: &Resolved,
        layers: &mut LayersBuilder,
        cell: Cell,
    ) -> Result<Arc<dyn Variant>> {
        let (channels, steps) = window_shape(Some(input.input_shape))?;
        let (u, l, g) = (self.units, self.latent, cell.gates());
        layers.linear("encoder.input", channels, g * u, Activation::Sigmoid)?;
        layers.linear("encoder.state", u, g * u, Activation::Sigmoid)?;
        layers.linear("encoder.code", u, l, self.code_activation)?;
        if self.vae.variational {
            layers.linear("encoder.logvar", u, l, Activation::Linear)?;
        }
        layers.linear("decoder.start", l, u, Activation::Tanh)?;
        layers.linear("decoder.input", l, g * u, Activation::Sigmoid)?;
        layers.linear("decoder.state", u, g * u, Activation::Sigmoid)?;
        layers.linear("decoder.output", u, channels, input.output)?;
        Ok(Arc::new(Gru {
            cell,
            channels,
            steps,
            units: u,
            code_activation: self.code_activation,
            output: input.output,
            variational: self.vae.kl_weight(),
        }))
    }
}

/// A state: `h`, and an LSTM's cell `c`.
type State = (Tensor<2>, Option<Tensor<2>>);

#[derive(Debug, Clone)]
struct Gru {
    cell: Cell,
    channels: usize,
    steps: usize,
    units: usize,
    code_activation: Activation,
    output: Activation,
    /// The KL weight of a variational model.
    variational: Option<f64>,
}

impl Gru {
    /// The encoder GRU's last state.
    fn last_state(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        let (c, w, g) = (self.channels, self.steps, self.cell.gates() * self.units);
        let [n, _] = x.dims();
        // Every step's input projected at once: [n·steps, channels] rows, time-major.
        let by_step = x.reshape([n, c, w]).swap_dims(1, 2).reshape([n * w, c]);
        let gi = linear(layers.linear("encoder.input"), by_step).reshape([n, w, g]);
        let mut state = self.start(Tensor::<2>::zeros([n, self.units], &gi.device()));
        for t in 0..w {
            let step = gi.clone().slice([0..n, t..t + 1, 0..g]).reshape([n, g]);
            state = self.step(layers, "encoder", step, state);
        }
        state.0
    }

    /// The state that starts from `h` (an LSTM's cell at zero).
    fn start(&self, h: Tensor<2>) -> State {
        let c = (self.cell == Cell::Lstm).then(|| h.zeros_like());
        (h, c)
    }

    /// One step of the `net` ("encoder" or "decoder") cells from `state`, given the input's
    /// projection `gi` (`[n, gates·units]`).
    fn step(&self, layers: &Layers, net: &str, gi: Tensor<2>, state: State) -> State {
        let u = self.units;
        let (h, c) = state;
        let [n, _] = h.dims();
        let gh = linear(layers.linear(&format!("{net}.state")), h.clone());
        let gate = |t: &Tensor<2>, k: usize| t.clone().slice([0..n, k * u..(k + 1) * u]);
        match (self.cell, c) {
            (Cell::Lstm, Some(c)) => {
                let both = |k| gate(&gi, k) + gate(&gh, k);
                let (i, f) = (sigmoid(both(0)), sigmoid(both(1)));
                let (g, o) = (both(2).tanh(), sigmoid(both(3)));
                let c = f * c + i * g;
                (o * c.clone().tanh(), Some(c))
            }
            _ => {
                let r = sigmoid(gate(&gi, 0) + gate(&gh, 0));
                let z = sigmoid(gate(&gi, 1) + gate(&gh, 1));
                let candidate = (gate(&gi, 2) + r * gate(&gh, 2)).tanh();
                (candidate.clone() + z * (h - candidate), None)
            }
        }
    }
}

impl Variant for Gru {
    fn rows_independent(&self, config: &ModelConfig) -> bool {
        objective::autoencoder_rows_independent(config)
    }

    /// The code; a variational model's posterior mean.
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        let h = self.last_state(layers, x);
        self.code_activation
            .apply(linear(layers.linear("encoder.code"), h))
    }

    fn posterior(&self, layers: &Layers, x: Tensor<2>) -> Option<(Tensor<2>, Tensor<2>)> {
        self.variational?;
        let h = self.last_state(layers, x);
        Some((
            linear(layers.linear("encoder.code"), h.clone()),
            linear(layers.linear("encoder.logvar"), h),
        ))
    }

    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        windows::objective(net, batch, cx, self.variational, |x, _| {
            self.posterior(&net.layers, x)
                .expect("a variational model has a posterior")
        })
    }

    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        let (c, w, u) = (self.channels, self.steps, self.units);
        let [n, _] = z.dims();
        let mut state = self.start(linear(layers.linear("decoder.start"), z.clone()).tanh());
        let gi = linear(layers.linear("decoder.input"), z);
        let mut states = Vec::with_capacity(w);
        for _ in 0..w {
            state = self.step(layers, "decoder", gi.clone(), state);
            states.push(state.0.clone());
        }
        let states = Tensor::cat(states, 1).reshape([n * w, u]);
        linear(layers.linear("decoder.output"), states)
            .reshape([n, w, c])
            .swap_dims(1, 2)
            .reshape([n, c * w])
    }

    fn output_activation(&self) -> Activation {
        self.output
    }
}
