//! Models: the shared settings and the variant plug-ins, the network built from them, and the
//! [`Autoencoder`] handle that encodes, decodes and saves.
//!
//! - [`config`]: the `[model]` section ([`ModelConfig`] = shared [`SharedConfig`] + a variant's
//!   settings).
//! - [`variant`]: the plug-in traits, capabilities and the registry; [`variants`]: the built-in
//!   variants, one file each.
//! - [`layers`]: the layers variants build from (spec language, stack, initialisation,
//!   activations) and the named container a network keeps them in.
//! - [`network`], [`objective`], [`loss`], [`penalty`]: the forward pass and the training
//!   objectives.
//! - [`safetensors`]: weights on disk.

pub mod classifier;
pub mod columns;
pub mod config;
pub mod discriminator;
pub mod graph;
pub mod layers;
pub mod loss;
pub mod network;
pub mod objective;
pub mod penalty;
pub mod safetensors;
pub mod variant;
pub mod variants;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use config::{ModelConfig, SharedConfig, given_model_flags, model_flags};
pub use layers::{Activation, Init, LayerSpec, NamedTensor};
pub use loss::ReconLoss;
pub use network::Network;
pub use objective::LossTerms;
pub use variant::{Capabilities, Variant, VariantConfig, VariantEntry};
pub use variants::aae::AaeConfig;
pub use variants::btcvae::BetaTcVaeConfig;
pub use variants::conv::ConvConfig;
pub use variants::cvae::CvaeConfig;
pub use variants::dense::DenseConfig;
pub use variants::factorvae::FactorVaeConfig;
pub use variants::infovae::InfoVaeConfig;
pub use variants::iwae::IwaeConfig;
pub use variants::rae::RaeConfig;
pub use variants::vae::VaeConfig;
pub use variants::vqvae::VqVaeConfig;
pub use variants::wae::WaeConfig;

use crate::data::Matrix;
use crate::error::{Error, Result};

/// Fails with a clear error, instead of an abort, when `rows` × `cols` f32 `what` would not fit
/// in the memory available.
pub fn fits_in_memory(rows: usize, cols: usize, what: &str) -> Result<()> {
    let bytes = (rows as u64).saturating_mul(cols as u64).saturating_mul(4);
    // Small outputs need no check, and reading /proc/meminfo on every small-batch call (the
    // server's path) took longer than some of the products.
    if bytes < 1 << 26 {
        return Ok(());
    }
    match crate::device::beyond_budget_words(bytes) {
        Some(words) => Err(Error::invalid(format!(
            "{rows} x {cols} {what} need {words}"
        ))),
        _ => Ok(()),
    }
}

/// Rows per forward pass when encoding or decoding whole datasets.
const INFERENCE_BATCH: usize = 1024;

/// Fewest rows worth a core of their own in inference (below, one thread runs them all).
fn min_share_rows() -> usize {
    static ROWS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| {
        std::env::var("AEKIT_SHARE_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32)
    })
}

/// The row ranges inference runs as separate passes, and whether they run in parallel: with
/// several threads on the CPU, at least one range per thread while each keeps
/// `min_share_rows` rows; at most `INFERENCE_BATCH` rows each.
fn inference_shares(rows: usize, threads: usize, on_cpu: bool) -> (Vec<(usize, usize)>, bool) {
    let even = rows.div_ceil(threads.max(1));
    let parallel = threads > 1 && on_cpu && even >= min_share_rows();
    let size = if parallel {
        even.min(INFERENCE_BATCH)
    } else {
        INFERENCE_BATCH
    };
    let shares = (0..rows)
        .step_by(size)
        .map(|start| (start, (start + size).min(rows)))
        .collect();
    (shares, parallel)
}

/// A built model: its resolved config, its network and the device it lives on.
#[derive(Debug, Clone)]
pub struct Autoencoder {
    config: ModelConfig,
    net: Network,
    device: Device,
    /// The class a conditional model's rows take when no labels are given.
    class: Option<u32>,
}

impl Autoencoder {
    /// Builds a freshly initialised model. `config` must be resolved (see [`ModelConfig::resolve`]).
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        let (input_dim, output, loss) = config.resolved()?;
        config.validate()?;
        let train_device = device.clone().autodiff();
        let init = config.shared().init.unwrap_or_default();
        let params =
            layers::ParamFactory::new(crate::data::batch::rng_for(seed, 3), init, &train_device);
        let shape = config
            .shared()
            .input_shape
            .clone()
            .unwrap_or_else(|| vec![input_dim]);
        let mut builder = layers::LayersBuilder::new(params);
        let input = variant::Resolved {
            input_dim,
            input_shape: &shape,
            output,
            loss,
            shared: config.shared(),
        };
        let variant = config.arch.build(&input, &mut builder)?;
        Ok(Self {
            config: config.clone(),
            net: Network::new(builder.finish(), variant),
            device: device.clone(),
            class: None,
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
            class: self.class,
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

    /// What the model's variant can do (see [`Capabilities`]).
    pub fn capabilities(&self) -> Capabilities {
        self.config.capabilities()
    }

    /// The network as plain operations on its named tensors (see [`graph`]), for loaders
    /// and exporters outside aekit; a variant that cannot describe its network is refused,
    /// named.
    pub fn graph(&self) -> Result<graph::Graph> {
        let classes = self.classes();
        let (input_width, code_width) = (self.input_dim(), self.latent_dim());
        let nodes = self
            .net
            .variant()
            .describe_network(&graph::Inputs {
                layers: &self.net.layers,
                input_width: input_width + classes,
                code_width: code_width + classes,
            })
            .ok_or_else(|| {
                Error::invalid(format!(
                    "a {} model does not describe its network (Variant::describe_network), so \
                     it cannot leave aekit",
                    self.config.kind()
                ))
            })?;
        let conditioned = |nodes: Vec<graph::Node>| {
            let append = (classes > 0).then_some(graph::Node::AppendClass { classes });
            append.into_iter().chain(nodes).collect()
        };
        let input_shape = self
            .config
            .shared()
            .input_shape
            .clone()
            .unwrap_or_else(|| vec![input_width]);
        Ok(graph::Graph {
            version: graph::GRAPH_VERSION,
            input_shape,
            input_width,
            code_width,
            classes,
            encoder: conditioned(nodes.encoder),
            decoder: conditioned(nodes.decoder),
            output_activation: self.net.output_activation(),
            residual: self.config.shared().residual == Some(true),
            skip_clamp: network::SKIP_CLAMP,
        })
    }

    /// The classes a conditional model is conditioned on; 0 for other models.
    pub fn classes(&self) -> usize {
        self.net.variant().condition_width()
    }

    /// This conditional model with every row taking class `class` where no labels are given
    /// (to sample, decode or explore one class).
    pub fn with_class(&self, class: u32) -> Result<Self> {
        let classes = self.classes();
        if classes == 0 {
            return Err(Error::invalid(format!(
                "a class is for conditional models (e.g. --model cvae); this is a {} model",
                self.config.kind()
            )));
        }
        if class as usize >= classes {
            return Err(Error::invalid(format!(
                "class {class} is not one of the model's {classes} classes (0 to {})",
                classes - 1
            )));
        }
        Ok(Self {
            class: Some(class),
            ..self.clone()
        })
    }

    /// Classes for `n` generated rows (samples, grids): none for an unconditional model or one
    /// given a class by [`Self::with_class`], otherwise every class in turn.
    pub fn generation_labels(&self, n: usize) -> Option<Vec<u32>> {
        let classes = self.classes();
        (classes > 0 && self.class.is_none())
            .then(|| (0..n).map(|i| (i % classes) as u32).collect())
    }

    /// The rows of `m` as the network takes them: for a conditional model each row followed
    /// by its class one-hot, the class from `labels` (one per row) or else the class set by
    /// [`Self::with_class`]; other models take `m` as it is and ignore labels.
    pub fn conditioned<'m>(
        &self,
        m: &'m Matrix,
        labels: Option<&[u32]>,
    ) -> Result<std::borrow::Cow<'m, Matrix>> {
        let classes = self.classes();
        if classes == 0 {
            return Ok(std::borrow::Cow::Borrowed(m));
        }
        let class_of = |r: usize| -> Result<u32> {
            match (labels, self.class) {
                (Some(l), _) => Ok(l[r]),
                (None, Some(c)) => Ok(c),
                (None, None) => Err(Error::invalid(format!(
                    "the {} model is conditional on the class: give each row's label (labelled data) or a class (--class)",
                    self.config.kind()
                ))),
            }
        };
        if let Some(l) = labels
            && l.len() != m.rows
        {
            return Err(Error::mismatch(format!(
                "{} labels for {} rows",
                l.len(),
                m.rows
            )));
        }
        let cols = m.cols + classes;
        fits_in_memory(m.rows, cols, "conditioned rows")?;
        let mut data = Vec::with_capacity(m.rows * cols);
        for r in 0..m.rows {
            let class = class_of(r)? as usize;
            if class >= classes {
                return Err(Error::invalid(format!(
                    "label {class} of row {r} is not one of the model's {classes} classes"
                )));
            }
            crate::data::push_with_one_hot(&mut data, m.row(r), class, classes);
        }
        Ok(std::borrow::Cow::Owned(Matrix {
            rows: m.rows,
            cols,
            data,
        }))
    }

    /// Refuses inputs whose width is not the model's input width.
    pub fn check_inputs(&self, x: &Matrix) -> Result<()> {
        self.check_width(x, self.input_dim(), "inputs")
    }

    /// Calls `f` with the network (without autodiff) on the rows of `x` in batches of `rows`:
    /// each batch as the network reads it (a conditional model's rows with their classes
    /// appended, see [`Self::conditioned`]) and its target, the features alone. The evaluation
    /// of probabilistic models (ELBO terms, importance-sampled likelihoods) walks data this way.
    pub fn for_each_batch(
        &self,
        x: &Matrix,
        labels: Option<&[u32]>,
        rows: usize,
        mut f: impl FnMut(&Network, Tensor<2>, Tensor<2>) -> Result<()>,
    ) -> Result<()> {
        self.check_inputs(x)?;
        let input = self.conditioned(x, labels)?;
        let net = self.net.valid();
        let missing = x.data.iter().any(|v| v.is_nan());
        for (i, t) in layers::tensor_batches(&input, rows, &self.device).enumerate() {
            let target = if missing {
                let start = i * rows.max(1);
                layers::target_tensor(x, start..(start + rows.max(1)).min(x.rows), &self.device)
            } else {
                t.clone().narrow(1, 0, x.cols)
            };
            f(&net, t, target)?;
        }
        Ok(())
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

    /// Runs `f` over `m` in batches without autodiff and gathers the outputs, rows of `cols`
    /// values (so that no rows in gives no rows of the right width out): the inference path of
    /// every output, split over the cores as [`Self::encode`]'s is.
    pub fn map_batches(
        &self,
        m: &Matrix,
        cols: usize,
        f: impl Fn(&Network, Tensor<2>) -> Tensor<2> + Sync,
    ) -> Result<Matrix> {
        use rayon::prelude::*;
        fits_in_memory(m.rows, cols, "outputs")?;
        let net = self.net.valid();
        let rows_through = |start: usize, end: usize| -> Vec<f32> {
            let y = f(&net, layers::rows_tensor(m, start..end, &self.device));
            debug_assert_eq!(y.dims()[1], cols);
            y.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("float output")
        };
        let (shares, parallel) = inference_shares(
            m.rows,
            rayon::current_num_threads(),
            crate::kernels::on_cpu_backend(self.device.clone()),
        );
        let data = if parallel {
            // Each core takes whole rows through the whole network, its products on its own
            // thread: no hand-off between layers, where splitting every product would have one.
            let parts: Vec<Vec<f32>> = shares
                .par_iter()
                .map(|&(start, end)| {
                    crate::kernels::gemm::products_on_this_thread(|| rows_through(start, end))
                })
                .collect();
            parts.concat()
        } else {
            let mut out = Vec::with_capacity(m.rows * cols);
            for (start, end) in shares {
                out.extend(rows_through(start, end));
            }
            out
        };
        Ok(Matrix {
            rows: m.rows,
            cols,
            data,
        })
    }

    /// Codes of the rows of `x` (already preprocessed).
    pub fn encode(&self, x: &Matrix) -> Result<Matrix> {
        self.encode_given(x, None)
    }

    /// Codes of the rows of `x` given their classes (used by conditional models only; see
    /// [`Self::conditioned`]).
    pub fn encode_given(&self, x: &Matrix, labels: Option<&[u32]>) -> Result<Matrix> {
        self.check_width(x, self.input_dim(), "inputs")?;
        let x = self.conditioned(x, labels)?;
        self.map_batches(&x, self.latent_dim(), |n, t| n.encode(t))
    }

    /// The number of classes a model that classifies (a semi-supervised one) predicts;
    /// `None` for other models.
    pub fn classes_predicted(&self) -> Option<usize> {
        self.capabilities()
            .semi_supervised
            .then(|| self.config.shared().classes)
            .flatten()
            .filter(|&c| c > 0)
    }

    /// For a model that classifies (a semi-supervised one), the class probabilities q(y|x)
    /// of the rows of `x`, `[rows, classes]`; `None` for other models.
    pub fn class_probabilities(&self, x: &Matrix) -> Result<Option<Matrix>> {
        self.check_inputs(x)?;
        let Some(classes) = self.classes_predicted() else {
            return Ok(None);
        };
        self.map_batches(x, classes, |net, t| {
            net.variant()
                .class_probabilities(&net.layers, t)
                .expect("a semi-supervised variant classifies")
        })
        .map(Some)
    }

    /// For a codebook model (VQ-VAE), the codebook entry each position of each row's code
    /// takes, as a `[rows, positions]` matrix of indices; `None` for other models.
    pub fn codebook_indices(&self, x: &Matrix) -> Result<Option<Matrix>> {
        self.check_inputs(x)?;
        if !self.capabilities().codebook {
            return Ok(None);
        }
        let net = self.net.valid();
        let (mut data, mut cols) = (Vec::new(), 0);
        for t in layers::tensor_batches(x, INFERENCE_BATCH, &self.device) {
            let Some(idx) = net.variant().codebook_indices(&net.layers, t) else {
                return Ok(None);
            };
            cols = idx.dims()[1];
            data.extend(
                idx.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("indices convert to floats"),
            );
        }
        Ok(Some(Matrix {
            rows: x.rows,
            cols,
            data,
        }))
    }

    /// Entries of the codebook of a codebook model.
    pub fn codebook_size(&self) -> Option<usize> {
        match self.net.layers.get("codebook") {
            Some(layers::Layer::Matrix(p)) if self.capabilities().codebook => {
                Some(p.val().dims()[0])
            }
            _ => None,
        }
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
        self.decode_given(z, None)
    }

    /// Outputs for the codes `z` of rows of the classes `labels` (see [`Self::conditioned`]).
    pub fn decode_given(&self, z: &Matrix, labels: Option<&[u32]>) -> Result<Matrix> {
        self.check_width(z, self.latent_dim(), "codes")?;
        let z = self.conditioned(z, labels)?;
        let out = self.map_batches(&z, self.input_dim(), |n, t| n.decode(t))?;
        Ok(self.typed_outputs(out))
    }

    /// A typed table's outputs as values of the data's scale (probabilities of its booleans and
    /// categories); other models' outputs as they are.
    fn typed_outputs(&self, mut out: Matrix) -> Matrix {
        if let Some(columns) = self.config.columns() {
            columns.activate(&mut out.data, out.cols);
        }
        out
    }

    /// `decode(encode(x))` in one pass.
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        self.reconstruct_given(x, None)
    }

    /// [`Self::reconstruct`] of rows of the classes `labels` (see [`Self::conditioned`]).
    pub fn reconstruct_given(&self, x: &Matrix, labels: Option<&[u32]>) -> Result<Matrix> {
        self.check_width(x, self.input_dim(), "inputs")?;
        let x = self.conditioned(x, labels)?;
        let residual = self.config.shared().residual == Some(true);
        let out = self.map_batches(&x, self.input_dim(), |n, t| n.restore(t, residual))?;
        Ok(self.typed_outputs(out))
    }

    /// Weights as named tensors in PyTorch layout (`encoder.0.weight` is `[out, in]`).
    pub fn export(&self) -> Vec<NamedTensor> {
        self.net.export()
    }

    /// Writes the weights as safetensors, atomically.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let tensors = self.export();
        let bytes = self::safetensors::encode(&tensors, &self.config)?;
        crate::io::write_atomic(path, &bytes)
    }

    /// Replaces the weights with those in a safetensors file written by [`Self::save_safetensors`].
    pub fn load_safetensors(self, path: &Path) -> Result<Self> {
        let tensors = self::safetensors::read(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_shares_cover_every_row_once_in_order() {
        for threads in [1, 2, 3, 16] {
            for rows in [0, 1, 31, 64, 65, 1000, 2048, 2049, 10_000] {
                for on_cpu in [true, false] {
                    let (shares, parallel) = inference_shares(rows, threads, on_cpu);
                    let mut next = 0;
                    for &(start, end) in &shares {
                        assert_eq!(start, next, "{rows} rows, {threads} threads");
                        assert!(end > start && end - start <= INFERENCE_BATCH);
                        next = end;
                    }
                    assert_eq!(next, rows);
                    assert_eq!(
                        parallel,
                        on_cpu && threads > 1 && rows.div_ceil(threads) >= 32
                    );
                    if parallel {
                        assert!(shares.len() >= threads);
                    }
                }
            }
        }
    }
}
