//! Variants as plug-ins.
//!
//! A variant is two things in one file: its settings ([`VariantConfig`], the variant's keys of
//! the `[model]` table and its command-line flags, both derived from one struct), and the
//! network it builds ([`Variant`]: encode, decode, objective, and optionally more optimiser
//! steps per batch). The [registry](register) maps the `kind` of a config to the variant; it
//! holds the built-in variants and accepts more at run time, so a variant can live outside this
//! crate and still train, save, load and evaluate with aekit's machinery
//! (`examples/custom_variant.rs`).
//!
//! Everything downstream (eval, explore, viz, the CLI) asks a variant's [`Capabilities`],
//! never its name.

use std::any::Any;
use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, LazyLock, RwLock};

use burn::tensor::{Int, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::model::layers::{Layers, LayersBuilder};
use crate::model::objective::{self, LossTerms};
use crate::model::{Activation, ModelConfig, Network, ReconLoss, SharedConfig};

/// What a variant can do. Downstream code branches on these, so a new variant with the same
/// capabilities gets the same figures, metrics and commands without an edit elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Codes are trained towards the prior N(0, I): decoding its draws gives samples, and its
    /// quantiles span a manifold grid.
    pub prior: bool,
    /// The encoder is a distribution q(z|x) ([`Variant::posterior`]): the objective is a
    /// negative ELBO, with a KL term to report and score by.
    pub stochastic_encoder: bool,
    /// Codes are entries of a learned codebook, the `[entries, width]` matrix layer
    /// `codebook`; [`Variant::codebook_indices`] names the entries an input takes.
    pub codebook: bool,
    /// Encoder and decoder see a class label: the inputs given to [`Variant::encode`] end
    /// with the class one-hot in [`Variant::condition_width`] columns, and so do the codes
    /// given to [`Variant::decode_logits`].
    pub conditional: bool,
    /// Learns from labels where rows have them and classifies where they do not: training
    /// batches carry each row's label ([`Batch::labels`], [`UNLABELLED`] where it has none),
    /// the rows given to [`Variant::encode`] are plain, and [`Variant::class_probabilities`]
    /// answers.
    pub semi_supervised: bool,
}

impl Capabilities {
    /// Whether the model has a number of classes, resolved from the training data's labels.
    pub fn uses_classes(&self) -> bool {
        self.conditional || self.semi_supervised
    }
}

pub use crate::data::UNLABELLED;

/// The input and output a variant builds for, known once the data is.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    pub input_dim: usize,
    /// `[channels, height, width]` for images, `[features]` otherwise.
    pub input_shape: &'a [usize],
    pub output: Activation,
    pub loss: ReconLoss,
    pub shared: &'a SharedConfig,
}

/// A variant's settings: its keys in the `[model]` table (beside the shared [`SharedConfig`]) and,
/// through `clap::Args` on the same struct, its command-line flags.
///
/// Implement it on a struct deriving `Serialize`, `Deserialize` (with defaults for optional
/// keys), `Clone`, `PartialEq`, `Debug`, `Default` and `clap::Args`; register it with
/// [`VariantEntry::of`].
pub trait VariantConfig: ConfigObject + Debug + Send + Sync + 'static {
    /// The `kind` naming this variant in configs and on the command line.
    fn kind(&self) -> &'static str;

    /// Checks the variant's settings, and which shared settings it accepts. `io.input_shape`
    /// is known when called after [`ModelConfig::resolve`].
    fn validate(&self, shared: &SharedConfig) -> Result<()>;

    /// Fills in what the input shape decides, so that the saved config names every layer
    /// that was built (e.g. a mirrored decoder).
    fn resolve(&mut self, _shared: &SharedConfig) -> Result<()> {
        Ok(())
    }

    /// Width of the code; 0 while it depends on an input shape not known yet.
    fn latent(&self, shared: &SharedConfig) -> usize;

    /// Activation of the code units (the KL sparsity penalty needs a sigmoid).
    fn code_activation(&self) -> Activation;

    /// One line naming the architecture, for logs and reports.
    fn describe(&self, shared: &SharedConfig) -> String;

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Creates the layers and the forward logic. Layers are created in a fixed order: their
    /// seeded initial values and parameter ids follow it.
    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>>;

    /// Applies command-line flags. The default sets each of this struct's fields whose flag
    /// was given; a variant overrides it where one flag implies more (a new encoder drops a
    /// mirrored decoder).
    fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        self.update_fields(flags)
    }

    /// Flags of other variants this one also takes (applied in [`Self::apply_flags`]).
    fn borrowed_flags(&self) -> &'static [&'static str] {
        &[]
    }

    /// For a semi-supervised variant: which training rows keep their label, and how many of
    /// them join each batch.
    fn supervision(&self) -> Option<Supervision> {
        None
    }
}

/// How a semi-supervised model learns from the labels there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// The training rows that keep their label (drawn with the training seed).
    pub labelled: crate::data::LabelChoice,
    /// Labelled rows joined to every batch of rows whose labels are hidden.
    pub per_batch: usize,
}

/// The object plumbing every [`VariantConfig`] gets from its derives, so that configs can be
/// boxed, cloned, compared and serialised without knowing their type.
pub trait ConfigObject {
    fn clone_box(&self) -> Box<dyn VariantConfig>;
    fn eq_dyn(&self, other: &dyn VariantConfig) -> bool;
    fn to_table(&self) -> Result<toml::Table>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Sets the fields whose flags are in `flags` (clap's `update_from_arg_matches`).
    fn update_fields(&mut self, flags: &clap::ArgMatches) -> Result<()>;
}

impl<T> ConfigObject for T
where
    T: VariantConfig + Clone + PartialEq + Serialize + clap::FromArgMatches,
{
    fn clone_box(&self) -> Box<dyn VariantConfig> {
        Box::new(self.clone())
    }

    fn eq_dyn(&self, other: &dyn VariantConfig) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn to_table(&self) -> Result<toml::Table> {
        toml::Table::try_from(self).map_err(|e| Error::Serialize(e.to_string()))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn update_fields(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        self.update_from_arg_matches(flags)
            .map_err(|e| Error::invalid(e.to_string().trim().replace('\n', " ")))
    }
}

/// One training batch: the (possibly degraded) input and the clean target.
#[derive(Debug, Clone)]
pub struct Batch {
    pub input: Tensor<2>,
    pub target: Tensor<2>,
    /// For a semi-supervised model, each row's class or [`UNLABELLED`]; `None` for others.
    pub labels: Option<Vec<u32>>,
}

impl Batch {
    /// A batch whose rows carry no labels.
    pub fn unlabelled(input: Tensor<2>, target: Tensor<2>) -> Self {
        Self {
            input,
            target,
            labels: None,
        }
    }

    /// Rows `start..start + len` of the batch.
    pub fn rows(&self, start: usize, len: usize) -> Self {
        Self {
            input: self.input.clone().narrow(0, start, len),
            target: self.target.clone().narrow(0, start, len),
            labels: self.labels.as_ref().map(|l| l[start..start + len].to_vec()),
        }
    }
}

/// What an objective needs beside the batch.
pub struct StepContext<'a> {
    pub config: &'a ModelConfig,
    /// Draws of this step (noise, posterior samples, projections): a pure function of the
    /// seed and the step, so runs repeat bit for bit.
    pub rng: &'a mut ChaCha8Rng,
    /// Epochs completed, fractional within an epoch (for warm-up schedules).
    pub epochs_done: f64,
    /// Samples in the training set, for estimators over the aggregate posterior q(z) (the
    /// batch's own size where the caller does not know it).
    pub dataset_size: usize,
}

/// An optimiser step beyond the main one, taken on every batch after it: a codebook, a
/// discriminator, or any part trained on an objective of its own. The layers it names (by
/// name or name prefix, as in [`Layers`]) are updated by this step alone, with an optimiser of
/// their own (same settings, state saved with the checkpoint); the main step updates the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraStep {
    /// Names the step in checkpoints (`optimizer-NAME.bpk`); letters, digits, `-` and `_`.
    pub name: &'static str,
    pub layers: Vec<String>,
}

/// A built network's forward logic. Its learned values live in the [`Layers`] it was built
/// with and are passed in; what a variant keeps here is fixed (activations, weights of terms).
pub trait Variant: Debug + Send + Sync + 'static {
    /// The deterministic code of the inputs (a stochastic encoder's mean).
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2>;

    /// The decoder up to the output unit's pre-activation, so losses can use logits.
    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2>;

    fn output_activation(&self) -> Activation;

    /// [`Self::encode`] in a training step, where the two differ (dropout): any randomness
    /// comes from `rng`, so runs still repeat bit for bit.
    fn encode_training(&self, layers: &Layers, x: Tensor<2>, _rng: &mut ChaCha8Rng) -> Tensor<2> {
        self.encode(layers, x)
    }

    /// [`Self::decode_logits`] in a training step (see [`Self::encode_training`]).
    fn decode_logits_training(
        &self,
        layers: &Layers,
        z: Tensor<2>,
        _rng: &mut ChaCha8Rng,
    ) -> Tensor<2> {
        self.decode_logits(layers, z)
    }

    /// The training objective, per element (pixel). The default is a deterministic
    /// autoencoder's: reconstruction plus the shared penalties of [`SharedConfig`].
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        objective::autoencoder(net, batch, cx)
    }

    /// The inference network as plain operations (see [`crate::model::graph`]): the encoder
    /// from rows (a conditional model's with the class one-hot appended) to codes, and the
    /// decoder from codes to logits. `None` where the variant cannot describe it: exports of
    /// its runs are then refused, naming its kind.
    fn describe_network(&self, _net: &crate::model::graph::Inputs) -> Option<NetworkNodes> {
        None
    }

    /// `(mu, logvar)` of a Gaussian q(z|x), for variants with a stochastic encoder.
    fn posterior(&self, _layers: &Layers, _x: Tensor<2>) -> Option<(Tensor<2>, Tensor<2>)> {
        None
    }

    /// `‖∂h/∂x‖²_F` averaged over the batch in closed form, where the encoder allows one
    /// (otherwise the contractive penalty uses random projections).
    fn contractive_closed_form(&self, _layers: &Layers, _x: Tensor<2>) -> Option<Tensor<1>> {
        None
    }

    /// For a conditional variant, the number of one-hot class columns its inputs and its
    /// decoder's codes end with; 0 for others.
    fn condition_width(&self) -> usize {
        0
    }

    /// For a model that classifies (a semi-supervised one): the class probabilities q(y|x) of
    /// the rows of `x`, `[rows, classes]`.
    fn class_probabilities(&self, _layers: &Layers, _x: Tensor<2>) -> Option<Tensor<2>> {
        None
    }

    /// For a codebook model: the index of the codebook entry each position of each input's
    /// code takes, `[batch, positions]`.
    fn codebook_indices(&self, _layers: &Layers, _x: Tensor<2>) -> Option<Tensor<2, Int>> {
        None
    }

    /// Whether the training objective under `config` is a mean of one term per row, no term
    /// coupling the rows of a batch (a batch statistic, a kernel between rows, a constraint on
    /// the batch's mean): then a batch may be split into shares whose gradients, weighted by
    /// their rows, sum to the batch's (see [`crate::train::shares`]). `false` is always safe.
    fn rows_independent(&self, _config: &ModelConfig) -> bool {
        false
    }

    /// The training loop's seam: optimiser steps after the main one on each batch.
    fn extra_steps(&self) -> Vec<ExtraStep> {
        Vec::new()
    }

    /// The objective of extra step `step` (an index into [`Self::extra_steps`]).
    fn extra_objective(
        &self,
        _step: usize,
        _net: &Network,
        _batch: Batch,
        _cx: &mut StepContext,
    ) -> Option<Tensor<1>> {
        None
    }

    /// Updates without gradients after a batch's steps (e.g. moving averages of a codebook).
    fn after_step(&self, net: Network, _batch: &Batch, _cx: &mut StepContext) -> Network {
        net
    }
}

/// A network's two paths, as [`Variant::describe_network`] gives them.
#[derive(Debug, Clone)]
pub struct NetworkNodes {
    pub encoder: Vec<crate::model::graph::Node>,
    pub decoder: Vec<crate::model::graph::Node>,
}

/// Refuses a weight of a loss term that is negative or not a finite number.
pub fn check_weight(name: &str, value: f64) -> Result<()> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{name} must be a non-negative number, got {value}"
        )))
    }
}

/// A registered variant: its kind, a line for `--help` and how to make its config.
#[derive(Clone, Copy)]
pub struct VariantEntry {
    pub kind: &'static str,
    pub about: &'static str,
    /// The config a switch to this variant starts from.
    pub default: fn() -> Box<dyn VariantConfig>,
    /// Parses the variant's keys of a `[model]` table; `Err` lists the keys it does not know
    /// or why a value is wrong.
    pub parse: fn(toml::Table) -> std::result::Result<Box<dyn VariantConfig>, String>,
    /// Adds the variant's flags to a command.
    pub flags: fn(clap::Command) -> clap::Command,
}

impl VariantEntry {
    /// The entry of config type `T`.
    pub fn of<T>(about: &'static str) -> Self
    where
        T: VariantConfig + Default + DeserializeOwned + clap::Args,
    {
        Self {
            kind: T::default().kind(),
            about,
            default: || Box::new(T::default()),
            parse: parse_table::<T>,
            flags: T::augment_args,
        }
    }

    /// The ids of this variant's flags.
    pub fn flag_ids(&self) -> HashSet<String> {
        crate::options::flag_ids(self.flags)
    }
}

fn parse_table<T: VariantConfig + DeserializeOwned>(
    table: toml::Table,
) -> std::result::Result<Box<dyn VariantConfig>, String> {
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(toml::Value::Table(table.clone()), |path| {
        unknown.push(format!("model.{path}"))
    })
    .map_err(|e| e.to_string())?;
    // serde drops keys a flattened struct does not know without telling `serde_ignored`, so
    // keys are also checked against what the parsed value writes back. A key written back
    // empty may have been skipped when serialising; an empty value sets nothing, so it passes.
    let written = value.to_table().map_err(|e| e.to_string())?;
    for (key, v) in &table {
        let empty = matches!(v, toml::Value::Array(a) if a.is_empty())
            || matches!(v, toml::Value::Table(t) if t.is_empty());
        let name = format!("model.{key}");
        if !written.contains_key(key) && !empty && !unknown.contains(&name) {
            unknown.push(name);
        }
    }
    if !unknown.is_empty() {
        return Err(format!("unknown key(s): {}", unknown.join(", ")));
    }
    Ok(Box::new(value))
}

static REGISTRY: LazyLock<RwLock<Vec<VariantEntry>>> =
    LazyLock::new(|| RwLock::new(crate::model::variants::built_in()));

fn entries() -> std::sync::RwLockReadGuard<'static, Vec<VariantEntry>> {
    // A panic while holding the lock cannot leave the list half-written (pushes are atomic
    // from the reader's view), so a poisoned lock is still safe to read.
    REGISTRY.read().unwrap_or_else(|e| e.into_inner())
}

/// Adds a variant (e.g. one defined outside this crate). Its kind must be new.
pub fn register(entry: VariantEntry) -> Result<()> {
    let mut list = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if list.iter().any(|e| e.kind == entry.kind) {
        return Err(Error::invalid(format!(
            "a model kind \"{}\" is already registered",
            entry.kind
        )));
    }
    list.push(entry);
    Ok(())
}

/// The registered variant of `kind`.
pub fn lookup(kind: &str) -> Result<VariantEntry> {
    entries()
        .iter()
        .find(|e| e.kind == kind)
        .copied()
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown model kind \"{kind}\" (known: {})",
                kinds().join(", ")
            ))
        })
}

/// Every registered variant, built-in ones first.
pub fn registered() -> Vec<VariantEntry> {
    entries().clone()
}

pub fn kinds() -> Vec<&'static str> {
    entries().iter().map(|e| e.kind).collect()
}

/// In `impl VariantConfig for X`: `resolve`, `latent` and `code_activation` of a variant whose
/// settings flatten another's (field `$base`), taken from that one.
#[macro_export]
macro_rules! delegate_variant_config {
    ($base:ident) => {
        fn resolve(&mut self, shared: &$crate::model::SharedConfig) -> $crate::error::Result<()> {
            self.$base.resolve(shared)
        }

        fn latent(&self, shared: &$crate::model::SharedConfig) -> usize {
            self.$base.latent(shared)
        }

        fn code_activation(&self) -> $crate::model::Activation {
            self.$base.code_activation()
        }
    };
}

/// In `impl Variant for X`: `encode`, `decode_logits`, `output_activation`, `posterior` and
/// `describe_network` of
/// a network that wraps another variant's (field `$base`), whose layers it shares.
#[macro_export]
macro_rules! delegate_variant_network {
    ($base:ident) => {
        fn encode(
            &self,
            layers: &$crate::model::layers::Layers,
            x: burn::tensor::Tensor<2>,
        ) -> burn::tensor::Tensor<2> {
            self.$base.encode(layers, x)
        }

        fn decode_logits(
            &self,
            layers: &$crate::model::layers::Layers,
            z: burn::tensor::Tensor<2>,
        ) -> burn::tensor::Tensor<2> {
            self.$base.decode_logits(layers, z)
        }

        fn encode_training(
            &self,
            layers: &$crate::model::layers::Layers,
            x: burn::tensor::Tensor<2>,
            rng: &mut rand_chacha::ChaCha8Rng,
        ) -> burn::tensor::Tensor<2> {
            self.$base.encode_training(layers, x, rng)
        }

        fn decode_logits_training(
            &self,
            layers: &$crate::model::layers::Layers,
            z: burn::tensor::Tensor<2>,
            rng: &mut rand_chacha::ChaCha8Rng,
        ) -> burn::tensor::Tensor<2> {
            self.$base.decode_logits_training(layers, z, rng)
        }

        fn output_activation(&self) -> $crate::model::Activation {
            self.$base.output_activation()
        }

        fn posterior(
            &self,
            layers: &$crate::model::layers::Layers,
            x: burn::tensor::Tensor<2>,
        ) -> Option<(burn::tensor::Tensor<2>, burn::tensor::Tensor<2>)> {
            self.$base.posterior(layers, x)
        }

        fn describe_network(
            &self,
            net: &$crate::model::graph::Inputs,
        ) -> Option<$crate::model::variant::NetworkNodes> {
            self.$base.describe_network(net)
        }
    };
}
