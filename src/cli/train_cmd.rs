//! `aekit train`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use aekit::config::RunConfig;
use aekit::data::Scaling;
use aekit::error::{Error, Result};
use aekit::model::{Activation, ReconLoss};
use aekit::train::{FitOptions, OptimizerKind, Schedule};

use super::args::DataFlags;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// TOML config (see `aekit init`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start from a preset (see `aekit presets`).
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    data: DataFlags,
    /// Model variant.
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// Convolutional layers, comma-separated (e.g. conv:16:3,maxpool:2,conv:8:3,maxpool:2):
    /// the encoder of --model conv, or the convolutional trunk of a VAE.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    encoder: Option<Vec<aekit::model::LayerSpec>>,
    /// Decoder layers of --model conv, code side first (default: the encoder, mirrored).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    decoder: Option<Vec<aekit::model::LayerSpec>>,
    /// Weight initialisation.
    #[arg(long, value_enum)]
    init: Option<aekit::model::Init>,
    /// VAE: weight of the KL term (beta-VAE).
    #[arg(long)]
    beta: Option<f64>,
    /// VAE: epochs over which the KL weight rises from 0 to beta.
    #[arg(long)]
    kl_warmup_epochs: Option<f64>,
    /// Input scaling.
    #[arg(long, value_enum)]
    scale: Option<Scaling>,
    /// Fraction of the training data held out for validation.
    #[arg(long)]
    val_fraction: Option<f64>,

    /// Encoder hidden widths, comma-separated (e.g. 1000,500,250); "" for none.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    hidden: Option<Vec<usize>>,
    /// Decoder hidden widths, code side first (default: the encoder's, mirrored).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    decoder_hidden: Option<Vec<usize>>,
    /// Code width.
    #[arg(long)]
    latent: Option<usize>,
    /// Hidden-layer activation.
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    #[arg(long, value_enum)]
    code_activation: Option<Activation>,
    #[arg(long, value_enum)]
    output_activation: Option<Activation>,
    /// Reconstruction loss.
    #[arg(long, value_enum)]
    loss: Option<ReconLoss>,
    /// Sparse: weight of the L1 penalty on the code.
    #[arg(long)]
    code_l1: Option<f64>,
    /// Sparse: target mean activation of each code unit (needs --code-activation sigmoid).
    #[arg(long)]
    sparsity_target: Option<f64>,
    /// Sparse: weight of the KL sparsity penalty (default 1).
    #[arg(long)]
    sparsity_weight: Option<f64>,
    /// Contractive: weight of the squared Frobenius norm of the encoder's Jacobian.
    #[arg(long)]
    contractive: Option<f64>,
    /// Contractive: random projections per step for deep encoders (default 1).
    #[arg(long)]
    contractive_projections: Option<usize>,
    /// Denoising: corrupt training inputs (gaussian:SIGMA, masking:P, salt-pepper:P).
    #[arg(long)]
    noise: Option<aekit::data::Corruption>,
    /// Denoising on hidden activations: corrupt the code while training (gaussian:S, masking:P).
    #[arg(long)]
    hidden_noise: Option<aekit::data::Corruption>,
    /// Paired task: learn the original from a degraded input (upscale:FACTOR, recolor,
    /// inpaint:SIZE).
    #[arg(long)]
    task: Option<aekit::data::paired::PairedTask>,
    /// Learn a correction added to the input (paired tasks: start from the degraded image).
    #[arg(long)]
    residual: bool,

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

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ModelKind {
    /// Dense autoencoder (with optional denoising, sparse and contractive terms).
    Dense,
    /// Variational autoencoder (convolutional with --encoder).
    Vae,
    /// Convolutional autoencoder (layers from --encoder / --decoder).
    Conv,
}

impl ModelKind {
    fn name(self) -> &'static str {
        match self {
            ModelKind::Dense => "dense",
            ModelKind::Vae => "vae",
            ModelKind::Conv => "conv",
        }
    }
}

impl TrainArgs {
    fn apply(&self, cfg: &mut RunConfig) -> Result<()> {
        self.data.apply(&mut cfg.data);
        if let Some(v) = self.scale {
            cfg.data.scale = v;
        }
        if let Some(v) = self.val_fraction {
            cfg.data.val_fraction = v;
        }
        if let Some(kind) = self.model
            && kind.name() != cfg.model.kind()
        {
            // Switching variant keeps the widths and the shared settings.
            let (hidden, latent, io) = match &cfg.model {
                aekit::ModelConfig::Dense { arch, io } => (arch.hidden.clone(), arch.latent, io),
                aekit::ModelConfig::Vae { arch, io } => (arch.hidden.clone(), arch.latent, io),
                aekit::ModelConfig::Conv { io, .. } => (vec![256], 8, io),
            };
            let io = io.clone();
            cfg.model = match kind {
                ModelKind::Conv => aekit::ModelConfig::Conv {
                    io,
                    arch: aekit::model::ConvConfig::new(aekit::model::ConvConfig::keras_encoder()),
                },
                ModelKind::Dense => aekit::ModelConfig::Dense {
                    io,
                    arch: aekit::DenseConfig::new(hidden, latent),
                },
                ModelKind::Vae => aekit::ModelConfig::Vae {
                    io,
                    arch: aekit::VaeConfig::new(hidden, latent),
                },
            };
        }
        let is_vae = matches!(cfg.model, aekit::ModelConfig::Vae { .. });
        if !is_vae && (self.beta.is_some() || self.kl_warmup_epochs.is_some()) {
            return Err(Error::invalid(
                "--beta and --kl-warmup-epochs need --model vae",
            ));
        }
        match &mut cfg.model {
            aekit::ModelConfig::Dense { arch, .. } => {
                if self.encoder.is_some() || self.decoder.is_some() {
                    return Err(Error::invalid(
                        "--encoder and --decoder take convolutional layers: add --model conv (or --model vae for a convolutional VAE)",
                    ));
                }
                if let Some(v) = &self.hidden {
                    arch.hidden = v.clone();
                    arch.decoder_hidden = None;
                    arch.encoder_activations = None;
                    arch.decoder_activations = None;
                }
                if let Some(v) = &self.decoder_hidden {
                    arch.decoder_hidden = Some(v.clone());
                    arch.decoder_activations = None;
                }
                if let Some(v) = self.latent {
                    arch.latent = v;
                }
                if let Some(v) = self.activation {
                    arch.activation = v;
                }
                if let Some(v) = self.code_activation {
                    arch.code_activation = v;
                }
            }
            aekit::ModelConfig::Conv { arch, .. } => {
                if self.hidden.is_some() || self.decoder_hidden.is_some() {
                    return Err(Error::invalid(
                        "a convolutional model takes its layers from --encoder and --decoder, not --hidden",
                    ));
                }
                if let Some(v) = &self.encoder {
                    arch.encoder = v.clone();
                    arch.decoder = None;
                }
                if let Some(v) = &self.decoder {
                    arch.decoder = Some(v.clone());
                }
                if let Some(units) = self.latent {
                    // A code of a chosen width is a dense bottleneck after the convolutions.
                    match arch.encoder.last_mut() {
                        Some(aekit::model::LayerSpec::Dense { units: u, .. }) => *u = units,
                        _ => arch
                            .encoder
                            .push(aekit::model::LayerSpec::Dense { units, act: None }),
                    }
                    if self.decoder.is_none() {
                        arch.decoder = None;
                    }
                }
                if let Some(v) = self.activation {
                    arch.activation = v;
                }
                if let Some(v) = self.code_activation {
                    arch.code_activation = v;
                }
            }
            aekit::ModelConfig::Vae { arch, .. } => {
                if self.decoder_hidden.is_some()
                    || self.code_activation.is_some()
                    || self.decoder.is_some()
                {
                    return Err(Error::invalid(
                        "a VAE mirrors its encoder and has a linear Gaussian code: drop --decoder-hidden, --decoder and --code-activation",
                    ));
                }
                if let Some(v) = &self.encoder {
                    arch.conv = v.clone();
                }
                if let Some(v) = &self.hidden {
                    arch.hidden = v.clone();
                }
                if let Some(v) = self.latent {
                    arch.latent = v;
                }
                if let Some(v) = self.activation {
                    arch.activation = v;
                }
                if let Some(v) = self.beta {
                    arch.beta = v;
                }
                if let Some(v) = self.kl_warmup_epochs {
                    arch.kl_warmup_epochs = v;
                }
            }
        }
        let io = cfg.model.io_mut();
        if let Some(v) = self.output_activation {
            io.output_activation = Some(v);
        }
        if let Some(v) = self.loss {
            io.loss = Some(v);
        }
        if let Some(v) = self.noise {
            io.noise = Some(v);
        }
        if let Some(v) = self.hidden_noise {
            io.hidden_noise = Some(v);
        }
        if let Some(v) = self.task {
            io.task = Some(v);
        }
        if self.residual {
            io.residual = Some(true);
        }
        if let Some(v) = self.init {
            io.init = Some(v);
        }
        if self.code_l1.is_some() {
            io.code_l1 = self.code_l1;
        }
        if self.sparsity_target.is_some() {
            io.sparsity_target = self.sparsity_target;
        }
        if self.sparsity_weight.is_some() {
            io.sparsity_weight = self.sparsity_weight;
        }
        if self.contractive.is_some() {
            io.contractive = self.contractive;
        }
        if self.contractive_projections.is_some() {
            io.contractive_projections = self.contractive_projections;
        }
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

pub fn run(args: TrainArgs, device: &burn::tensor::Device) -> Result<()> {
    let (cfg, out, resume) = if let Some(dir) = &args.resume {
        let mut cfg = aekit::RunDir::open(dir)?.config()?;
        if args.data.any() || args.hidden.is_some() || args.latent.is_some() {
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
        args.apply(&mut cfg)?;
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
