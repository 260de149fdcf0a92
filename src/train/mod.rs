//! Training: the loop, optimisers, schedules, checkpoints and progress.

pub mod adam;
pub mod config;
pub mod optim;
pub mod progress;
pub mod schedule;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

pub use config::{OptimizerKind, Schedule, TrainConfig};

use crate::config::RunConfig;
use crate::data::batch::rng_for;
use crate::data::{
    BatchOrder, Corruption, Dataset, Matrix, Preprocessor, Split, train_val_indices,
};
use crate::error::{Error, Result};
use crate::model::{Autoencoder, Network};
use crate::run::{EpochMetrics, RunDir, Summary, TrainState};

/// How to run a training job (as opposed to what to train, which is the [`RunConfig`]).
#[derive(Clone)]
pub struct FitOptions {
    pub out_dir: PathBuf,
    pub device: Device,
    /// Continue the run in `out_dir` from its last checkpoint.
    pub resume: bool,
    /// No progress output.
    pub quiet: bool,
    /// Set by a Ctrl-C handler: the loop saves a checkpoint and stops.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Behave as if interrupted after this many optimisation steps (for tests of resume).
    pub stop_after_steps: Option<usize>,
}

impl FitOptions {
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            device: Device::flex(),
            resume: false,
            quiet: true,
            interrupt: None,
            stop_after_steps: None,
        }
    }
}

/// What [`fit`] returns.
pub struct Fitted {
    pub model: Autoencoder,
    pub preprocessor: Preprocessor,
    pub summary: Summary,
    pub run_dir: RunDir,
}

/// Noise streams: one per training step and one per validation batch, so that every batch's
/// corruption is a pure function of the seed and its position.
const TRAIN_NOISE_STREAM: u64 = 1 << 40;
const VAL_NOISE_STREAM: u64 = 1 << 41;
/// The same for the contractive estimate's random directions.
const TRAIN_PROJECTION_STREAM: u64 = 1 << 42;
const VAL_PROJECTION_STREAM: u64 = 1 << 43;

/// Assembles `(input, target)` batches: the input is corrupted for a denoising autoencoder,
/// the target is always the clean sample.
pub struct Batches<'a> {
    pub data: &'a Matrix,
    pub noise: Option<Corruption>,
    /// A paired task's degradation of the input, with the samples' shape.
    pub task: Option<(crate::data::paired::PairedTask, Vec<usize>)>,
    /// `(min, max)` of the data, the range corrupted values are clipped to.
    pub range: (f32, f32),
    pub seed: u64,
}

impl<'a> Batches<'a> {
    pub fn new(data: &'a Matrix, noise: Option<Corruption>, seed: u64) -> Self {
        Self {
            data,
            noise,
            task: None,
            range: data.value_range(),
            seed,
        }
    }

    /// Degrades inputs for a paired task (applied before any noise).
    pub fn with_task(
        mut self,
        task: Option<crate::data::paired::PairedTask>,
        shape: &[usize],
    ) -> Self {
        self.task = task.map(|t| (t, shape.to_vec()));
        self
    }

    fn gather(&self, rows: &[usize]) -> Vec<f32> {
        let mut buf = Vec::with_capacity(rows.len() * self.data.cols);
        for &r in rows {
            buf.extend_from_slice(self.data.row(r));
        }
        buf
    }

    /// The batch of `rows`, corrupted with noise stream `stream`.
    pub fn make(&self, rows: &[usize], stream: u64, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let shape = [rows.len(), self.data.cols];
        let clean = self.gather(rows);
        let to_tensor = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, shape), device);
        if self.noise.is_none() && self.task.is_none() {
            let t = to_tensor(clean);
            return (t.clone(), t);
        }
        let mut input = clean.clone();
        let mut rng = rng_for(self.seed, stream);
        if let Some((task, shape)) = &self.task {
            task.degrade_all(&mut input, shape, self.range, &mut rng);
        }
        if let Some(c) = &self.noise {
            c.apply(&mut input, self.range, &mut rng);
        }
        (to_tensor(input), to_tensor(clean))
    }
}

/// Mean objective and mean reconstruction loss per element over the rows `rows`, without
/// gradients (inputs corrupted as in training for a denoising autoencoder, with a fixed noise
/// stream per batch).
pub fn mean_loss(
    model: &Autoencoder,
    batches: &Batches,
    rows: &[usize],
    epochs_done: f64,
) -> (f64, f64) {
    let net = model.net().valid();
    let order = BatchOrder::sequential(rows, 1024);
    let (mut total, mut recon) = (0.0f64, 0.0f64);
    for b in 0..order.num_batches() {
        let (input, target) =
            batches.make(order.batch(b), VAL_NOISE_STREAM + b as u64, model.device());
        let n = order.batch(b).len() as f64;
        let mut rng = rng_for(batches.seed, VAL_PROJECTION_STREAM + b as u64);
        let terms = net.objective(input, target, model.config(), &mut rng, epochs_done);
        total += terms.total.into_scalar::<f32>() as f64 * n;
        recon += terms.recon.into_scalar::<f32>() as f64 * n;
    }
    let n = rows.len().max(1) as f64;
    (total / n, recon / n)
}

/// Loads the training data the config names and trains on it.
pub fn train(cfg: &RunConfig, opts: &FitOptions) -> Result<Fitted> {
    // A text source's vocabulary is counted once over its documents, here: loading them and
    // writing the run's vocabulary.txt both use it (each counted it again before).
    let mut cfg = cfg.clone();
    if cfg.data.vocabulary_words.is_none() {
        cfg.data.vocabulary_words = crate::data::text_vocabulary(&cfg.data)?;
    }
    let raw = crate::data::load(&cfg.data, Split::Train)?;
    fit_owned(&cfg, raw, opts)
}

fn prepare_run_dir(cfg: &RunConfig, opts: &FitOptions) -> Result<RunDir> {
    let run = RunDir::new(&opts.out_dir);
    if opts.resume {
        RunDir::open(&opts.out_dir)?;
        return Ok(run);
    }
    if run.config_path().exists() {
        return Err(Error::bad_file(
            &run.path,
            "already holds a run; use --resume to continue it or choose another --out",
        ));
    }
    crate::io::ensure_dir(&run.path)?;
    cfg.save(&run.path)?;
    Ok(run)
}

/// Trains an autoencoder on `raw` (unprocessed samples) as `cfg` says, writing the run into
/// `opts.out_dir`. With `opts.resume`, continues that run from its last checkpoint.
pub fn fit(cfg: &RunConfig, raw: &Dataset, opts: &FitOptions) -> Result<Fitted> {
    fit_owned(cfg, raw.clone(), opts)
}

/// [`fit`] on data it may consume: preprocessing happens in place and the validation split is
/// a list of indices, so the samples are held in memory once.
pub fn fit_owned(cfg: &RunConfig, mut data: Dataset, opts: &FitOptions) -> Result<Fitted> {
    let mut cfg = cfg.clone();
    cfg.validate()?;
    data.validate()?;
    let tc = cfg.train.clone();

    let preprocessor = Preprocessor::fit(cfg.data.scale, &data);
    cfg.data.scale = preprocessor.scaling;
    cfg.model
        .resolve(&data.sample_shape, preprocessor.scaling.is_unit_range())?;
    preprocessor.apply(&mut data.x)?;
    let (train_rows, val_rows) = train_val_indices(data.len(), cfg.data.val_fraction, tc.seed);
    if train_rows.is_empty() {
        return Err(Error::bad_file(
            &data.origin,
            "no training samples left after the validation split",
        ));
    }

    if opts.resume {
        let saved = RunDir::open(&opts.out_dir)?.config()?;
        if saved.model != cfg.model {
            return Err(Error::mismatch(format!(
                "{}: the saved run is a {}, this config builds a {}",
                opts.out_dir.display(),
                saved.model.describe(),
                cfg.model.describe()
            )));
        }
    }
    let run = prepare_run_dir(&cfg, opts)?;
    if !opts.resume {
        crate::io::write_json(&run.preprocess_path(), &preprocessor)?;
        if let Some(words) = crate::data::text_vocabulary(&cfg.data)? {
            crate::io::write_atomic(
                &run.vocabulary_path(),
                format!("{}\n", words.join("\n")).as_bytes(),
            )?;
        }
    }

    let kind = cfg.model.loss();
    let mut model = Autoencoder::new(&cfg.model, tc.seed, &opts.device)?;
    let mut optimizer = optim::build(&tc);
    let mut state = TrainState::default();
    let mut history: Vec<EpochMetrics> = Vec::new();
    if opts.resume {
        let (m, o, s) = run.load_checkpoint(model, optimizer)?;
        (model, optimizer, state) = (m, o, s);
        history = run.metrics()?;
        history.retain(|m| m.epoch <= state.epoch);
    } else {
        run.save_checkpoint(&model, &optimizer, &state)?;
    }

    let train_x = &data.x;
    let batches = Batches::new(train_x, cfg.model.noise(), tc.seed)
        .with_task(cfg.model.io().task, &data.sample_shape);
    let dim = train_x.cols as f64;
    let steps_per_epoch = train_rows.len().div_ceil(tc.batch_size);
    let mut progress = progress::Progress::new(opts.quiet);
    progress.message(&format!(
        "training {} ({} parameters, {} loss) on {} samples, validating on {}; run directory {}",
        cfg.model.describe(),
        model.num_params(),
        kind.name(),
        train_rows.len(),
        val_rows.len(),
        run.path.display()
    ));

    let started = Instant::now();
    let time_before = state.train_seconds;
    let mut steps_this_session = 0usize;
    let mut stop_reason = "completed".to_string();
    let mut net: Network = model.clone().into_net();

    while state.epoch < tc.epochs {
        let order = BatchOrder::shuffled(&train_rows, tc.batch_size, tc.seed, state.epoch);
        progress.start_epoch(
            state.epoch,
            tc.epochs,
            train_rows.len() as u64,
            state.epoch_samples as u64,
        );
        let epoch_clock = Instant::now();
        let samples_at_start = state.epoch_samples;
        let mut lr = 0.0;
        while state.batch < order.num_batches() {
            let interrupted = opts
                .interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
                || opts.stop_after_steps == Some(steps_this_session);
            if interrupted {
                state.train_seconds = time_before + started.elapsed().as_secs_f64();
                let m = model.with_net(net);
                run.save_checkpoint(&m, &optimizer, &state)?;
                return Err(Error::Interrupted(format!(
                    "checkpoint saved at epoch {} step {}; continue with `aekit train --resume {}`",
                    state.epoch + 1,
                    state.batch,
                    run.path.display()
                )));
            }
            let rows = order.batch(state.batch);
            let (input, target) = batches.make(
                rows,
                TRAIN_NOISE_STREAM + state.global_step as u64,
                &model.device().clone().autodiff(),
            );
            lr = schedule::learning_rate(&tc, state.global_step, steps_per_epoch);
            let mut rng = rng_for(tc.seed, TRAIN_PROJECTION_STREAM + state.global_step as u64);
            let epochs_done = state.epoch as f64 + state.batch as f64 / steps_per_epoch as f64;
            let loss = net
                .objective(input, target, &cfg.model, &mut rng, epochs_done)
                .total;
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                let kept = if state.epoch > 0 || state.best_epoch.is_some() {
                    format!(
                        "the last good checkpoint is in {}",
                        run.checkpoint_dir().display()
                    )
                } else {
                    format!(
                        "only the initial weights are in {}",
                        run.checkpoint_dir().display()
                    )
                };
                return Err(Error::Diverged(format!(
                    "loss became {value} at epoch {} step {} (lr {lr:.3e}); {kept}. Lower the learning rate or set clip_grad_norm",
                    state.epoch + 1,
                    state.batch + 1
                )));
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &net);
            if let Some(max) = tc.clip_grad_norm {
                optim::clip_grad_norm(&net, &mut grads, max);
            }
            net = optimizer.step(lr, net, grads);
            state.batch += 1;
            state.global_step += 1;
            state.epoch_loss_sum += value * rows.len() as f64;
            state.epoch_samples += rows.len();
            steps_this_session += 1;
            progress.step(rows.len() as u64, value);
        }

        model = model.with_net(net);
        let train_loss = state.epoch_loss_sum / state.epoch_samples.max(1) as f64;
        let val = (!val_rows.is_empty())
            .then(|| mean_loss(&model, &batches, &val_rows, (state.epoch + 1) as f64));
        let val_loss = val.map(|v| v.0);
        if let Some(v) = val_loss
            && !v.is_finite()
        {
            return Err(Error::Diverged(format!(
                "validation loss is {v} after epoch {}; the last good checkpoint is in {}",
                state.epoch + 1,
                run.checkpoint_dir().display()
            )));
        }
        let seconds = epoch_clock.elapsed().as_secs_f64();
        let epoch_samples = (state.epoch_samples - samples_at_start) as f64;
        let metrics = EpochMetrics {
            epoch: state.epoch + 1,
            train_loss,
            val_loss,
            train_loss_per_sample: train_loss * dim,
            val_loss_per_sample: val_loss.map(|v| v * dim),
            val_recon: val.map(|v| v.1),
            lr,
            seconds,
            samples_per_sec: epoch_samples / seconds.max(1e-9),
        };
        progress.end_epoch(&format!(
            "epoch {:>3}/{} train {:.6} val {} lr {:.2e} {:.0} samples/s {:.1}s",
            metrics.epoch,
            tc.epochs,
            train_loss,
            val_loss.map_or("-".into(), |v| format!("{v:.6}")),
            lr,
            metrics.samples_per_sec,
            seconds
        ));
        history.push(metrics);

        // Best model: lowest validation loss, or simply the latest without a validation set.
        let score = val_loss.unwrap_or(train_loss);
        let improved = state.best_val.is_none_or(|b| score < b);
        if improved {
            state.best_val = Some(score);
            state.best_epoch = Some(state.epoch + 1);
            state.bad_epochs = 0;
            model.save_safetensors(&run.model_path())?;
        } else {
            state.bad_epochs += 1;
        }
        state.epoch += 1;
        state.batch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_samples = 0;
        state.train_seconds = time_before + started.elapsed().as_secs_f64();
        run.save_checkpoint(&model, &optimizer, &state)?;
        run.write_metrics(&history)?;
        net = model.clone().into_net();

        if let Some(p) = tc.early_stopping
            && state.bad_epochs >= p
        {
            stop_reason = format!("early stopping: no improvement for {p} epochs");
            break;
        }
        if let Some(mins) = tc.max_minutes
            && state.train_seconds >= mins * 60.0
        {
            stop_reason = format!("time limit of {mins} minutes reached");
            break;
        }
    }

    let total_samples: f64 = history.iter().map(|m| m.samples_per_sec * m.seconds).sum();
    let total_secs: f64 = history.iter().map(|m| m.seconds).sum();
    let summary = Summary {
        model: cfg.model.describe(),
        parameters: model.num_params(),
        loss: kind.name().into(),
        epochs_completed: state.epoch,
        best_epoch: state.best_epoch,
        best_val_loss: state.best_val,
        final_train_loss: history.last().map(|m| m.train_loss),
        stop_reason,
        train_seconds: state.train_seconds,
        samples_per_sec: total_samples / total_secs.max(1e-9),
        train_samples: train_rows.len(),
        val_samples: val_rows.len(),
    };
    crate::io::write_json(&run.summary_path(), &summary)?;
    let best = run.load_model(&opts.device, false)?;
    Ok(Fitted {
        model: best,
        preprocessor,
        summary,
        run_dir: run,
    })
}
