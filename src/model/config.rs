//! The `[model]` section of a run config: the settings every variant shares ([`SharedConfig`])
//! and the variant's own ([`VariantConfig`]), chosen by `kind`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::data::UNLABELLED;
use crate::error::{Error, Result};
use crate::model::variant::{self, Capabilities, VariantConfig};
use crate::model::{Activation, ReconLoss};
use crate::options::flag_name;

/// Settings every variant shares: what goes in, what comes out and how it is scored, the
/// degradation of training inputs, and the penalties on the code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, clap::Args)]
pub struct SharedConfig {
    /// Width of one input sample; filled in from the data when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(skip)]
    pub input_dim: Option<usize>,
    /// Shape of one sample, `[channels, height, width]` for images; filled in from the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(skip)]
    pub input_shape: Option<Vec<usize>>,
    /// Classes a conditional model's encoder and decoder see, one-hot; filled in from the
    /// data's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(skip)]
    pub classes: Option<usize>,
    /// Output unit (default: sigmoid for data scaled to [0, 1], linear otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub output_activation: Option<Activation>,
    /// Reconstruction loss (default: BCE after a sigmoid output, MSE otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub loss: Option<ReconLoss>,
    /// Denoising: corrupt training inputs, the target stays clean (gaussian:SIGMA, masking:P,
    /// salt-pepper:P).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub noise: Option<crate::data::Corruption>,
    /// Sparse: weight of the L1 penalty on the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub code_l1: Option<f64>,
    /// Sparse: target mean activation of each code unit (needs a sigmoid code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub sparsity_target: Option<f64>,
    /// Sparse: weight of the KL sparsity penalty (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub sparsity_weight: Option<f64>,
    /// Contractive: weight of the squared Frobenius norm of the encoder's Jacobian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub contractive: Option<f64>,
    /// Contractive: random projections per step for deep encoders (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub contractive_projections: Option<usize>,
    /// Denoising on hidden activations: corrupt the code while training (gaussian:S,
    /// masking:P).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub hidden_noise: Option<crate::data::Corruption>,
    /// Weight initialisation (default auto: He before rectifiers, Glorot otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub init: Option<crate::model::Init>,
    /// Paired task: learn the original from a degraded input (upscale:FACTOR, recolor,
    /// inpaint:SIZE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub task: Option<crate::data::paired::PairedTask>,
    /// Learn a correction added to the input (in logit space under a sigmoid output), so
    /// that a paired task starts from the degraded image itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub residual: Option<bool>,
    /// A typed table's columns as groups of the outputs, each with its own loss (set from the
    /// data when training; see [`crate::model::columns`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(skip)]
    pub columns: Option<crate::model::columns::OutputColumns>,
}

/// The model section of a run config. `kind` selects the variant.
#[derive(Debug)]
pub struct ModelConfig {
    pub shared: SharedConfig,
    pub arch: Box<dyn VariantConfig>,
}

impl Clone for ModelConfig {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            arch: self.arch.clone_box(),
        }
    }
}

impl PartialEq for ModelConfig {
    fn eq(&self, other: &Self) -> bool {
        self.shared == other.shared && self.arch.eq_dyn(other.arch.as_ref())
    }
}

/// The table as stored: `kind`, the shared keys, then the variant's.
#[derive(Serialize)]
struct Stored<'a> {
    kind: &'a str,
    #[serde(flatten)]
    shared: &'a SharedConfig,
    #[serde(flatten)]
    arch: toml::Table,
}

#[derive(Deserialize)]
struct Read {
    kind: String,
    #[serde(flatten)]
    shared: SharedConfig,
    #[serde(flatten)]
    arch: toml::Table,
}

impl Serialize for ModelConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let arch = self.arch.to_table().map_err(serde::ser::Error::custom)?;
        Stored {
            kind: self.arch.kind(),
            shared: &self.shared,
            arch,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let read = Read::deserialize(d)?;
        let entry = variant::lookup(&read.kind).map_err(serde::de::Error::custom)?;
        let arch = (entry.parse)(read.arch).map_err(serde::de::Error::custom)?;
        Ok(Self {
            shared: read.shared,
            arch,
        })
    }
}

impl ModelConfig {
    pub fn new(arch: impl VariantConfig) -> Self {
        Self {
            shared: SharedConfig::default(),
            arch: Box::new(arch),
        }
    }

    pub fn shared(&self) -> &SharedConfig {
        &self.shared
    }

    pub fn shared_mut(&mut self) -> &mut SharedConfig {
        &mut self.shared
    }

    pub fn kind(&self) -> &'static str {
        self.arch.kind()
    }

    /// The variant's settings as their own type, if they are a `T`.
    pub fn arch<T: VariantConfig>(&self) -> Option<&T> {
        self.arch.as_any().downcast_ref()
    }

    pub fn arch_mut<T: VariantConfig>(&mut self) -> Option<&mut T> {
        self.arch.as_any_mut().downcast_mut()
    }

    pub fn capabilities(&self) -> Capabilities {
        self.arch.capabilities()
    }

    /// How a semi-supervised model uses labels; `None` for other models.
    pub fn supervision(&self) -> Option<crate::model::variant::Supervision> {
        self.arch.supervision()
    }

    /// Switches to variant `kind`, starting from its defaults; the widths (`hidden`,
    /// `latent`) carry over where both variants have them. The shared settings stay.
    pub fn switch_kind(&mut self, kind: &str) -> Result<()> {
        if kind == self.kind() {
            return Ok(());
        }
        let entry = variant::lookup(kind)?;
        let old = self.arch.to_table()?;
        let mut table = (entry.default)().to_table()?;
        for key in ["hidden", "latent"] {
            if let (Some(v), Some(slot)) = (old.get(key), table.get_mut(key)) {
                *slot = v.clone();
            }
        }
        self.arch = (entry.parse)(table).map_err(Error::invalid)?;
        Ok(())
    }

    /// Whether a `kind` model takes the model flag `id`: a shared one, its own, or one it
    /// borrows (as `--latent` of a convolutional model); not another variant's.
    pub fn takes_flag(kind: &str, id: &str) -> Result<bool> {
        let entry = variant::lookup(kind)?;
        Ok(takes(&entry, (entry.default)().as_ref(), id))
    }

    /// Applies the model flags given on a command line built with [`model_flags`]: the shared
    /// ones, then the variant's. A flag of another variant is refused, naming the flags this
    /// one takes.
    pub fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        use clap::FromArgMatches;
        if let Ok(Some(kind)) = flags.try_get_one::<String>("kind") {
            self.switch_kind(kind)?;
        }
        let entry = variant::lookup(self.kind())?;
        let own = entry.flag_ids();
        let foreign = given_model_flags(flags)
            .into_iter()
            .find(|id| id != "kind" && !takes(&entry, self.arch.as_ref(), id));
        if let Some(id) = foreign {
            let mut takes: Vec<String> = own.iter().map(|f| flag_name(f)).collect();
            takes.sort();
            let owners: Vec<String> = variant::registered()
                .iter()
                .filter(|e| e.flag_ids().contains(&id))
                .map(|e| format!("--model {}", e.kind))
                .collect();
            return Err(Error::invalid(format!(
                "{} is not a setting of a {} model but of {} (a {} model takes {})",
                flag_name(&id),
                self.kind(),
                owners.join(" or "),
                self.kind(),
                takes.join(", ")
            )));
        }
        self.shared
            .update_from_arg_matches(flags)
            .map_err(|e| Error::invalid(e.to_string().trim().replace('\n', " ")))?;
        self.arch.apply_flags(flags)
    }

    /// Width of the code; for a convolutional model it depends on the input shape (0 until
    /// that is known).
    pub fn latent(&self) -> usize {
        self.arch.latent(&self.shared)
    }

    /// Fills in what the data decides: input width, output unit and loss.
    pub fn resolve(&mut self, input_shape: &[usize], unit_range: bool) -> Result<()> {
        let input_dim: usize = input_shape.iter().product();
        let shared = &mut self.shared;
        match &shared.input_shape {
            // A shape given in the config reinterprets flat samples (e.g. CSV rows) as images.
            Some(s) if s.iter().product::<usize>() != input_dim => {
                return Err(Error::mismatch(format!(
                    "model.input_shape {s:?} holds {} values, the data's samples have {input_dim}",
                    s.iter().product::<usize>()
                )));
            }
            Some(_) => {}
            None => shared.input_shape = Some(input_shape.to_vec()),
        }
        match shared.input_dim {
            Some(d) if d != input_dim => {
                return Err(Error::mismatch(format!(
                    "model expects inputs of {d} features, data has {input_dim}"
                )));
            }
            _ => shared.input_dim = Some(input_dim),
        }
        let out = *shared.output_activation.get_or_insert(if unit_range {
            Activation::Sigmoid
        } else {
            Activation::Linear
        });
        let loss = *shared.loss.get_or_insert(if out == Activation::Sigmoid {
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
        if let Some(task) = &self.shared.task {
            task.check(self.shared.input_shape.as_deref().unwrap_or(input_shape))?;
        }
        self.arch.resolve(&self.shared)
    }

    /// For a model with classes (conditional or semi-supervised), fills in the number of
    /// classes from labelled data, and checks that the data has labels the model can take.
    /// Other models ignore labels.
    pub fn resolve_classes(&mut self, data: &crate::data::Dataset) -> Result<()> {
        let found = data.labels.as_ref().map(|_| data.num_classes());
        let capabilities = self.capabilities();
        if let Some(labels) = &data.labels
            && !capabilities.semi_supervised
            && let Some(row) = labels.iter().position(|&l| l == UNLABELLED)
        {
            return Err(Error::bad_file(
                &data.origin,
                format!(
                    "row {row} is marked unlabelled (-1): only a semi-supervised model (--model ssvae) trains on rows without labels"
                ),
            ));
        }
        self.resolve_class_count(&data.origin, found)?;
        let classes = self.shared.classes.unwrap_or(0);
        if let Some(labels) = &data.labels
            && capabilities.uses_classes()
            && let Some(&bad) = labels
                .iter()
                .find(|&&l| l != UNLABELLED && l as usize >= classes)
        {
            return Err(Error::bad_file(
                &data.origin,
                format!("label {bad} is not one of the model's {classes} classes"),
            ));
        }
        Ok(())
    }

    /// Resolves the number of classes of a model with classes from the data's: `found` is
    /// `None` for unlabelled data (refused), else the classes its labels span.
    pub fn resolve_class_count(&mut self, origin: &str, found: Option<usize>) -> Result<()> {
        let capabilities = self.capabilities();
        if !capabilities.uses_classes() {
            return Ok(());
        }
        let Some(found) = found else {
            let what = if capabilities.conditional {
                "a conditional model"
            } else {
                "a semi-supervised model"
            };
            return Err(Error::bad_file(
                origin,
                format!(
                    "{what} (--model {}) needs labelled data, and this data has no labels",
                    self.kind()
                ),
            ));
        };
        self.shared.classes.get_or_insert(found);
        self.validate()
    }

    pub fn validate(&self) -> Result<()> {
        let shared = &self.shared;
        if shared.code_l1.is_some_and(|l| !(l >= 0.0 && l.is_finite())) {
            return Err(Error::invalid("code_l1 must be a non-negative number"));
        }
        if let Some(rho) = shared.sparsity_target {
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
        if shared
            .contractive
            .is_some_and(|l| !(l >= 0.0 && l.is_finite()))
        {
            return Err(Error::invalid("contractive must be a non-negative number"));
        }
        if shared.contractive_projections == Some(0) {
            return Err(Error::invalid("contractive_projections must be at least 1"));
        }
        if shared
            .sparsity_weight
            .is_some_and(|w| !(w >= 0.0 && w.is_finite()))
        {
            return Err(Error::invalid(
                "sparsity_weight must be a non-negative number",
            ));
        }
        if shared.sparsity_weight.is_some() && shared.sparsity_target.is_none() {
            return Err(Error::invalid("sparsity_weight needs a sparsity_target"));
        }
        if let Some(crate::data::Corruption::SaltPepper { .. }) = shared.hidden_noise {
            return Err(Error::invalid(
                "hidden_noise takes gaussian:S or masking:P (salt-and-pepper needs a known value range)",
            ));
        }
        match (self.capabilities().uses_classes(), shared.classes) {
            (false, Some(_)) => {
                return Err(Error::invalid(format!(
                    "classes is for conditional and semi-supervised models, not --model {}",
                    self.kind()
                )));
            }
            (true, Some(c)) if c < 2 => {
                return Err(Error::invalid(format!(
                    "a model of classes needs at least 2 of them, got {c}"
                )));
            }
            _ => {}
        }
        self.arch.validate(shared)
    }

    pub fn code_activation(&self) -> Activation {
        self.arch.code_activation()
    }

    /// `(input_dim, output activation, loss)` once resolved.
    pub(crate) fn resolved(&self) -> Result<(usize, Activation, ReconLoss)> {
        let shared = &self.shared;
        match (shared.input_dim, shared.output_activation, shared.loss) {
            (Some(d), Some(a), Some(l)) => Ok((d, a, l)),
            _ => Err(Error::invalid(
                "model config is not resolved: input_dim, output_activation and loss must be set",
            )),
        }
    }

    pub fn input_dim(&self) -> Option<usize> {
        self.shared.input_dim
    }

    pub fn loss(&self) -> ReconLoss {
        self.shared.loss.unwrap_or(ReconLoss::Mse)
    }

    /// What the model's reconstructions are judged by: a typed table's per-column losses, or
    /// [`Self::loss`] on every feature.
    pub fn likelihood(&self) -> crate::model::loss::Likelihood<'_> {
        match &self.shared.columns {
            Some(columns) => crate::model::loss::Likelihood::Columns(columns),
            None => self.loss().into(),
        }
    }

    /// Makes the model reconstruct a typed table's `columns`, each with its own loss: the
    /// outputs are the columns' logits (linear), judged per column; a loss or output unit
    /// given for every feature, or a residual model, is refused.
    pub fn set_columns(&mut self, columns: crate::model::columns::OutputColumns) -> Result<()> {
        let shared = &mut self.shared;
        if shared.loss.is_some_and(|l| l != ReconLoss::Mse)
            || shared
                .output_activation
                .is_some_and(|a| a != Activation::Linear)
        {
            return Err(Error::invalid(
                "a typed table's columns each have their own loss (squared error, or cross-entropy for booleans and categories): leave out --loss and --output-activation",
            ));
        }
        if shared.residual == Some(true) {
            return Err(Error::invalid(
                "--residual adds the input to the output, which a typed table's categories do not allow",
            ));
        }
        shared.loss = Some(ReconLoss::Mse);
        shared.output_activation = Some(Activation::Linear);
        shared.columns = Some(columns);
        Ok(())
    }

    /// What the reconstructions are judged by, in words: the loss's name, or a typed table's
    /// losses per column.
    pub fn loss_name(&self) -> &'static str {
        match self.columns() {
            Some(_) => "per-column (squared error, cross-entropy)",
            None => self.loss().name(),
        }
    }

    /// A typed table's column groups, when the model reconstructs one.
    pub fn columns(&self) -> Option<&crate::model::columns::OutputColumns> {
        self.shared.columns.as_ref()
    }

    pub fn noise(&self) -> Option<crate::data::Corruption> {
        self.shared.noise
    }

    /// "dense 784-256-64-8-64-256-784 (denoising gaussian:0.4)"
    pub fn describe(&self) -> String {
        let base = format!("{} {}", self.kind(), self.arch.describe(&self.shared));
        let shared = &self.shared;
        let mut extras = Vec::new();
        if let Some(n) = shared.noise {
            extras.push(format!("denoising {n}"));
        }
        if let Some(t) = shared.task {
            extras.push(format!("task {t}"));
        }
        if let Some(n) = shared.hidden_noise {
            extras.push(format!("hidden noise {n}"));
        }
        if let Some(l) = shared.code_l1 {
            extras.push(format!("L1 {l}"));
        }
        if let Some(r) = shared.sparsity_target {
            extras.push(format!(
                "KL sparsity rho {r} beta {}",
                shared.sparsity_weight.unwrap_or(1.0)
            ));
        }
        if extras.is_empty() {
            base
        } else {
            format!("{base} ({})", extras.join(", "))
        }
    }
}

/// Whether a model of the variant `entry`, set as `arch`, takes the model flag `id`: a shared
/// one, its own, or one it borrows.
fn takes(entry: &variant::VariantEntry, arch: &dyn variant::VariantConfig, id: &str) -> bool {
    io_flag_ids().contains(id)
        || entry.flag_ids().contains(id)
        || arch.borrowed_flags().contains(&id)
}

fn io_flag_ids() -> HashSet<String> {
    use clap::Args;
    crate::options::flag_ids(SharedConfig::augment_args)
}

/// The ids of the model flags (see [`model_flags`]) given on the command line, sorted.
pub fn given_model_flags(flags: &clap::ArgMatches) -> Vec<String> {
    let mut ids: Vec<String> = io_flag_ids()
        .into_iter()
        .chain(["kind".to_string()])
        .chain(variant::registered().iter().flat_map(|e| e.flag_ids()))
        .filter(|id| crate::options::was_given(flags, id))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Adds the model flags to a command: the shared ones and those of every registered variant
/// (a flag two variants share, like `--latent`, once).
pub fn model_flags(mut cmd: clap::Command) -> clap::Command {
    use clap::Args;
    let kinds = variant::registered()
        .into_iter()
        .map(|e| clap::builder::PossibleValue::new(e.kind).help(e.about));
    cmd = cmd.arg(
        clap::Arg::new("kind")
            .long("model")
            .value_name("KIND")
            .help("Model variant (the flags below are each variant's settings)")
            .value_parser(clap::builder::PossibleValuesParser::new(kinds)),
    );
    cmd = SharedConfig::augment_args(cmd);
    // Which kinds take each flag, worked out once per variant (this runs at every start).
    let entries: Vec<(&str, clap::Command, HashSet<String>, &[&str])> = variant::registered()
        .into_iter()
        .map(|e| {
            let flags = (e.flags)(clap::Command::new("variant"));
            let ids = flags
                .get_arguments()
                .map(|a| a.get_id().to_string())
                .collect();
            (e.kind, flags, ids, (e.default)().borrowed_flags())
        })
        .collect();
    let mut known: HashSet<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for (_, flags, _, _) in &entries {
        for arg in flags.get_arguments() {
            let id = arg.get_id().to_string();
            if known.insert(id.clone()) {
                let kinds: Vec<&str> = entries
                    .iter()
                    .filter(|(_, _, ids, borrowed)| {
                        ids.contains(&id) || borrowed.contains(&id.as_str())
                    })
                    .map(|(kind, ..)| *kind)
                    .collect();
                let heading = format!("Model: --model {}", kinds.join(" | "));
                cmd = cmd.arg(arg.clone().help_heading(heading));
            }
        }
    }
    cmd
}
