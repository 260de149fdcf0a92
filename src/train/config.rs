//! Training hyper-parameters.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent, with optional (Nesterov) momentum.
    Sgd,
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
    Rmsprop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `step_epochs` epochs.
    Step,
    /// Cosine decay from `lr` to `min_lr` over the run.
    Cosine,
}

/// How the ranks of `mpirun -np N aekit train` sum their gradients (`train::ranks`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RankSum {
    /// An all-gather, then every rank adds the shares in rank order: the weights of one
    /// process with N shares, bit for bit; each rank receives every other's gradients.
    #[default]
    Ordered,
    /// MPI's allreduce: each rank moves 2·(N−1)/N of the gradients, the fewest bytes past two
    /// ranks, but the order of additions is the MPI library's, so the weights equal one
    /// process's to rounding, not bit for bit.
    Allreduce,
}

impl RankSum {
    fn is_ordered(&self) -> bool {
        *self == RankSum::Ordered
    }
}

fn d_epochs() -> usize {
    20
}
fn d_batch() -> usize {
    128
}
fn d_opt() -> OptimizerKind {
    OptimizerKind::Adam
}
fn d_lr() -> f64 {
    1e-3
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.999
}
fn d_eps() -> f64 {
    1e-8
}
fn d_sched() -> Schedule {
    Schedule::Constant
}
fn d_gamma() -> f64 {
    0.1
}
fn d_step() -> usize {
    10
}
fn d_seed() -> u64 {
    42
}
/// Seconds between checkpoints when epochs are short: each save syncs half a dozen files
/// (3.6 ms an epoch on this machine), most of the time of an epoch of a few small batches,
/// while losing at most this much training to a crash costs little.
pub const DEFAULT_CHECKPOINT_SECONDS: f64 = 2.0;
fn d_checkpoint_seconds() -> f64 {
    DEFAULT_CHECKPOINT_SECONDS
}
fn is_default_checkpoint_seconds(v: &f64) -> bool {
    *v == DEFAULT_CHECKPOINT_SECONDS
}

/// Training hyper-parameters. Each field is a key of the `[train]` table and a command-line
/// flag, its doc comment the help of both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct TrainConfig {
    /// Passes over the training data.
    #[serde(default = "d_epochs")]
    #[arg(long, required = false)]
    pub epochs: usize,
    /// Samples per optimisation step.
    #[serde(default = "d_batch")]
    #[arg(long, required = false)]
    pub batch_size: usize,
    #[serde(default = "d_opt")]
    #[arg(long, required = false)]
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    #[serde(default = "d_lr")]
    #[arg(long, required = false)]
    pub lr: f64,
    /// Momentum for SGD (default 0.9) and RMSprop (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (SGD).
    #[serde(default)]
    #[arg(long, required = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub nesterov: bool,
    /// Adam's decay of the first moment.
    #[serde(default = "d_beta1")]
    #[arg(long, required = false)]
    pub beta1: f64,
    /// Adam's decay of the second moment.
    #[serde(default = "d_beta2")]
    #[arg(long, required = false)]
    pub beta2: f64,
    /// Adam/RMSprop epsilon (PyTorch's 1e-8 by default, not burn's 1e-5).
    #[serde(default = "d_eps")]
    #[arg(long, required = false)]
    pub eps: f64,
    /// L2 penalty (SGD, Adam, RMSprop) or decoupled decay (AdamW).
    #[serde(default)]
    #[arg(long, required = false)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[serde(default = "d_sched")]
    #[arg(long, required = false)]
    pub schedule: Schedule,
    /// Linear warm-up from 0 over this many epochs (fractions allowed).
    #[serde(default)]
    #[arg(long, required = false)]
    pub warmup_epochs: f64,
    /// Floor of the cosine schedule.
    #[serde(default)]
    #[arg(long, required = false)]
    pub min_lr: f64,
    /// Epochs between the step schedule's decays.
    #[serde(default = "d_step")]
    #[arg(long, required = false)]
    pub step_epochs: usize,
    /// Factor of each decay of the step schedule.
    #[serde(default = "d_gamma")]
    #[arg(long, required = false)]
    pub gamma: f64,
    /// Rescale gradients whose global L2 norm exceeds this (PyTorch's clip_grad_norm_).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// Stop when validation loss has not improved for this many epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub early_stopping: Option<usize>,
    /// Stop (cleanly, with a checkpoint) after this many minutes of training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Seconds between saves of the resumable checkpoint (with the metrics and the best
    /// weights): an epoch that ends sooner after the last save saves nothing, and a crash
    /// loses at most this much training. The last epoch, a stop and an interruption always
    /// save; 0 saves at the end of every epoch.
    #[serde(
        default = "d_checkpoint_seconds",
        skip_serializing_if = "is_default_checkpoint_seconds"
    )]
    #[arg(long, required = false)]
    pub checkpoint_seconds: f64,
    /// Seed for initialisation, splitting, shuffling and noise.
    #[serde(default = "d_seed")]
    #[arg(long, required = false)]
    pub seed: u64,
    /// Start from the best weights of this run directory instead of a random initialisation
    /// (fine-tuning, or a cheap objective before a costly one: a VAE before an IWAE). Its model
    /// must have the same tensors; the optimiser and the schedule start afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "RUN")]
    pub init_from: Option<std::path::PathBuf>,
    /// How ranks started by `mpirun` sum their gradients each step: `ordered` (bit for bit one
    /// process's weights) or `allreduce` (fewer bytes on many machines, equal to rounding).
    #[serde(default, skip_serializing_if = "RankSum::is_ordered")]
    #[arg(long, required = false)]
    pub rank_sum: RankSum,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: d_epochs(),
            batch_size: d_batch(),
            optimizer: d_opt(),
            lr: d_lr(),
            momentum: None,
            nesterov: false,
            beta1: d_beta1(),
            beta2: d_beta2(),
            eps: d_eps(),
            weight_decay: 0.0,
            schedule: d_sched(),
            warmup_epochs: 0.0,
            min_lr: 0.0,
            step_epochs: d_step(),
            gamma: d_gamma(),
            clip_grad_norm: None,
            early_stopping: None,
            max_minutes: None,
            checkpoint_seconds: d_checkpoint_seconds(),
            seed: d_seed(),
            init_from: None,
            rank_sum: RankSum::Ordered,
        }
    }
}

impl TrainConfig {
    /// Applies the training flags given on a command line built with `augment_args`.
    pub fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<()> {
        use clap::FromArgMatches;
        self.update_from_arg_matches(flags)
            .map_err(|e| crate::error::Error::invalid(e.to_string().trim().replace('\n', " ")))
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        // NaN passes every comparison below as false, so each number is checked finite first.
        let numbers = [
            ("lr", Some(self.lr)),
            ("momentum", self.momentum),
            ("beta1", Some(self.beta1)),
            ("beta2", Some(self.beta2)),
            ("eps", Some(self.eps)),
            ("weight_decay", Some(self.weight_decay)),
            ("warmup_epochs", Some(self.warmup_epochs)),
            ("min_lr", Some(self.min_lr)),
            ("gamma", Some(self.gamma)),
            ("clip_grad_norm", self.clip_grad_norm),
            ("max_minutes", self.max_minutes),
            ("checkpoint_seconds", Some(self.checkpoint_seconds)),
        ];
        for (name, value) in numbers {
            if let Some(v) = value
                && !v.is_finite()
            {
                return bad(format!("{name} must be a finite number, got {v}"));
            }
        }
        if let Some(m) = self.max_minutes
            && m < 0.0
        {
            return bad(format!("max_minutes must not be negative, got {m}"));
        }
        if self.checkpoint_seconds < 0.0 {
            return bad(format!(
                "checkpoint_seconds must not be negative, got {}",
                self.checkpoint_seconds
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate must be positive, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("beta1 and beta2 must be in [0, 1)".into());
        }
        if let Some(m) = self.momentum
            && !(0.0..1.0).contains(&m)
        {
            return bad(format!("momentum must be in [0, 1), got {m}"));
        }
        if self.weight_decay < 0.0 || self.warmup_epochs < 0.0 || self.min_lr < 0.0 {
            return bad("weight_decay, warmup_epochs and min_lr must not be negative".into());
        }
        if let Some(c) = self.clip_grad_norm
            && c <= 0.0
        {
            return bad(format!("clip_grad_norm must be positive, got {c}"));
        }
        if self.nesterov && self.optimizer != OptimizerKind::Sgd {
            return bad("nesterov applies to the sgd optimizer only".into());
        }
        Ok(())
    }
}
