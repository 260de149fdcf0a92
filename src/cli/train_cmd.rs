//! `aekit train`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use aekit::data::Scaling;
use aekit::error::{Error, Result};
use aekit::fit::FitOptions;
use aekit::run::config::RunConfig;
use aekit::train::{OptimizerKind, Schedule};

use super::args::DataFlags;

#[derive(Args, Debug)]
struct TrainOptions {
    /// TOML config (see `aekit init`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start from a preset (see `aekit presets`).
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    data: DataFlags,
    /// Model variant (see the flags below for each one's settings).
    #[arg(long, value_parser = model_kinds())]
    model: Option<String>,
    /// Input scaling.
    #[arg(long, value_enum)]
    scale: Option<Scaling>,
    /// Fraction of the training data held out for validation.
    #[arg(long)]
    val_fraction: Option<f64>,

    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    momentum: Option<f64>,
    #[arg(long)]
    nesterov: bool,
    #[arg(long)]
    weight_decay: Option<f64>,
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    #[arg(long)]
    warmup_epochs: Option<f64>,
    #[arg(long)]
    min_lr: Option<f64>,
    /// Clip the global gradient norm to this value.
    #[arg(long)]
    clip_grad_norm: Option<f64>,
    /// Stop after this many epochs without validation improvement.
    #[arg(long)]
    early_stopping: Option<usize>,
    /// Stop after this many minutes of training.
    #[arg(long)]
    max_minutes: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,

    /// Run directory to write (default: runs/<data>-<model>-<n>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, conflicts_with_all = ["config", "preset", "out"])]
    resume: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Do not write report.html at the end.
    #[arg(long)]
    no_report: bool,
}

/// `--model`'s values: the registered variants.
fn model_kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        aekit::model::variant::registered()
            .into_iter()
            .map(|e| clap::builder::PossibleValue::new(e.kind).help(e.about)),
    )
}

/// `aekit train`'s arguments: its own, and the model flags derived from the model config
/// structs (the shared settings and every registered variant's), read from the matches.
pub struct TrainArgs {
    own: TrainOptions,
    flags: clap::ArgMatches,
}

impl clap::FromArgMatches for TrainArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> std::result::Result<Self, clap::Error> {
        Ok(Self {
            own: TrainOptions::from_arg_matches(m)?,
            flags: m.clone(),
        })
    }

    fn update_from_arg_matches(
        &mut self,
        m: &clap::ArgMatches,
    ) -> std::result::Result<(), clap::Error> {
        self.own.update_from_arg_matches(m)?;
        self.flags = m.clone();
        Ok(())
    }
}

impl Args for TrainArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        aekit::model::model_flags(TrainOptions::augment_args(cmd))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl TrainOptions {
    fn apply(&self, cfg: &mut RunConfig, flags: &clap::ArgMatches) -> Result<()> {
        self.data.apply(&mut cfg.data);
        if let Some(v) = self.scale {
            cfg.data.scale = v;
        }
        if let Some(v) = self.val_fraction {
            cfg.data.val_fraction = v;
        }
        if let Some(kind) = &self.model {
            cfg.model.switch_kind(kind)?;
        }
        cfg.model.apply_flags(flags)?;
        let t = &mut cfg.train;
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { t.$field = v; } )* };
        }
        set!(
            epochs,
            batch_size,
            optimizer,
            lr,
            weight_decay,
            schedule,
            warmup_epochs,
            min_lr,
            seed
        );
        if self.momentum.is_some() {
            t.momentum = self.momentum;
        }
        if self.nesterov {
            t.nesterov = true;
        }
        if self.clip_grad_norm.is_some() {
            t.clip_grad_norm = self.clip_grad_norm;
        }
        if self.early_stopping.is_some() {
            t.early_stopping = self.early_stopping;
        }
        if self.max_minutes.is_some() {
            t.max_minutes = self.max_minutes;
        }
        Ok(())
    }
}

/// `runs/<data>-<model>-<n>` with the first free `n`.
fn default_out(cfg: &RunConfig) -> PathBuf {
    let source: String = cfg
        .data
        .source
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("data")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = format!("{}-{}", source.trim_matches('-'), cfg.model.kind());
    (1..)
        .map(|n| Path::new("runs").join(format!("{stem}-{n}")))
        .find(|p| !p.exists())
        .expect("some name is free")
}

pub fn run(all: TrainArgs, device: &burn::tensor::Device) -> Result<()> {
    let args = &all.own;
    let (cfg, out, resume) = if let Some(dir) = &args.resume {
        let mut cfg = aekit::RunDir::open(dir)?.config()?;
        if args.data.any() || !aekit::model::given_model_flags(&all.flags).is_empty() {
            return Err(Error::invalid(
                "--resume continues a run as configured; only --epochs and --max-minutes may change",
            ));
        }
        if let Some(e) = args.epochs {
            cfg.train.epochs = e;
        }
        if args.max_minutes.is_some() {
            cfg.train.max_minutes = args.max_minutes;
        }
        (cfg, dir.clone(), true)
    } else {
        let mut cfg = match &args.config {
            Some(p) => RunConfig::load(p)?,
            None => RunConfig::default(),
        };
        if let Some(p) = &args.preset {
            cfg = aekit::presets::apply(p, &cfg)?;
        }
        args.apply(&mut cfg, &all.flags)?;
        let out = args.out.clone().unwrap_or_else(|| default_out(&cfg));
        (cfg, out, false)
    };

    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupt.clone();
        // Failing to install the handler only loses the clean Ctrl-C save; training still works.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let opts = FitOptions {
        out_dir: out,
        device: device.clone(),
        resume,
        quiet: args.quiet,
        interrupt: Some(interrupt),
        stop_after_steps: None,
    };
    let fitted = aekit::train(&cfg, &opts)?;
    let s = &fitted.summary;
    eprintln!(
        "done: {} epochs, best validation loss {} at epoch {}, {:.0} samples/s, {:.1}s ({})",
        s.epochs_completed,
        s.best_val_loss.map_or("-".into(), |v| format!("{v:.6}")),
        s.best_epoch.map_or("-".into(), |e| e.to_string()),
        s.samples_per_sec,
        s.train_seconds,
        s.stop_reason
    );
    if !args.no_report {
        // The run is already saved: a report that cannot be drawn is a warning, not a failure.
        let written = aekit::Run::open(&fitted.run_dir.path, device).and_then(|run| {
            let test = run.load_data(None, aekit::Split::Test)?;
            aekit::viz::write_report(&run, &test, &Default::default(), None)
        });
        match written {
            Ok(p) => eprintln!("report: {}", p.display()),
            Err(e) => eprintln!("warning: no report written: {e}"),
        }
    }
    println!("run written to {}", fitted.run_dir.path.display());
    Ok(())
}
