//! The training loop: batches through the variant's objective, the main optimiser step and the
//! variant's extra steps (its seam), validation, the best model, early stopping and time
//! limits. What it saves goes through a [`Checkpoints`] sink, so the loop knows no files.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::{Module, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::data::batch::rng_for;
use crate::error::{Error, Result};
use crate::model::variant::{Batch, StepContext};
use crate::model::{Autoencoder, ModelConfig, Network};
use crate::train::batches::{TRAIN_NOISE_STREAM, TRAIN_PROJECTION_STREAM, TrainingRows};
use crate::train::progress::Progress;
use crate::train::ranks::{self, Exchanged, Ranks};
use crate::train::state::{EpochMetrics, TrainState};
use crate::train::{TrainConfig, optim, schedule, shares};

/// Draws of a variant's extra steps and after-step update, one stream per training step.
const TRAIN_EXTRA_STREAM: u64 = 1 << 44;

/// The optimisers of a run: the main step's, and one per extra step of the variant, in the
/// order of [`Variant::extra_steps`](crate::model::Variant::extra_steps).
pub struct Optimizers {
    pub main: ModuleOptimizer,
    pub extra: Vec<(String, ModuleOptimizer)>,
}

impl Optimizers {
    /// Fresh optimisers with `tc`'s settings for `model`'s steps.
    pub fn new(tc: &TrainConfig, model: &Autoencoder) -> Self {
        Self {
            main: optim::build(tc),
            extra: model
                .net()
                .variant()
                .extra_steps()
                .iter()
                .map(|s| (s.name.to_string(), optim::build(tc)))
                .collect(),
        }
    }
}

/// Where the loop's state goes: the resumable checkpoint, the best weights, the metrics.
pub trait Checkpoints {
    fn save_checkpoint(
        &self,
        model: &Autoencoder,
        optimizers: &Optimizers,
        state: &TrainState,
    ) -> Result<()>;
    fn save_best(&self, model: &Autoencoder) -> Result<()>;
    fn save_metrics(&self, history: &[EpochMetrics]) -> Result<()>;
    /// Where the checkpoint is, for messages.
    fn checkpoint_location(&self) -> PathBuf;
    /// The command that continues the run, for the message after an interruption.
    fn resume_hint(&self) -> String;
}

/// What one training session works on.
pub struct Session<'a> {
    pub model: &'a ModelConfig,
    pub train: &'a TrainConfig,
    /// The rows trained and validated on, in memory or streamed.
    pub rows: &'a dyn TrainingRows,
    /// Set by a signal handler: the loop saves a checkpoint and stops.
    pub interrupt: Option<&'a AtomicBool>,
    /// Behave as if interrupted after this many optimisation steps (for tests of resume).
    pub stop_after_steps: Option<usize>,
    /// Called after every optimisation step with the run's step count.
    pub on_step: Option<&'a StepHook>,
    /// The other processes training this model, each on its own share of every batch
    /// ([`ranks`]); `None` for one process.
    pub ranks: Option<&'a dyn Ranks>,
}

/// A function called after every optimisation step with the run's step count (progress per
/// step, the time to the first step in benchmarks).
pub type StepHook = dyn Fn(usize) + Send + Sync;

/// How a session ended.
pub struct Outcome {
    pub model: Autoencoder,
    pub state: TrainState,
    pub history: Vec<EpochMetrics>,
    pub stop_reason: String,
}

/// Drops the gradients of the parameters for which `keep` is false.
fn keep_grads(net: &Network, grads: &mut GradientsParams, keep: impl Fn(ParamId) -> bool) {
    struct Filter<'a, F> {
        grads: &'a mut GradientsParams,
        keep: F,
    }
    impl<F: Fn(ParamId) -> bool> burn::module::ModuleVisitor for Filter<'_, F> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if !(self.keep)(param.id) {
                self.grads.remove::<D>(param.id);
            }
        }
    }
    net.visit(&mut Filter { grads, keep });
}

/// Gradients of `loss` for the optimiser of one step (see [`for_step`]).
fn step_grads(
    net: &Network,
    loss: Tensor<1>,
    tc: &TrainConfig,
    owned: Option<(&HashSet<ParamId>, bool)>,
) -> GradientsParams {
    for_step(
        net,
        GradientsParams::from_grads(loss.backward(), net),
        tc,
        owned,
    )
}

/// `grads` made ready for the optimiser of one step: restricted to the parameters that step
/// owns when `owned` says which, and clipped.
fn for_step(
    net: &Network,
    mut grads: GradientsParams,
    tc: &TrainConfig,
    owned: Option<(&HashSet<ParamId>, bool)>,
) -> GradientsParams {
    if let Some((ids, inside)) = owned {
        keep_grads(net, &mut grads, |id| ids.contains(&id) == inside);
    }
    if let Some(max) = tc.clip_grad_norm {
        optim::clip_grad_norm(net, &mut grads, max);
    }
    grads
}

/// What every step of a session shares: which parameters each of the variant's extra steps
/// owns (the main step updates the rest), whether a batch may be split over the cores, and
/// the epoch's shape.
struct StepPlan<'a> {
    s: &'a Session<'a>,
    owned: Vec<HashSet<ParamId>>,
    owned_by_extra: HashSet<ParamId>,
    splittable: bool,
    train_device: burn::tensor::Device,
    /// The model's device without autodiff, where gradients live.
    device: burn::tensor::Device,
    steps_per_epoch: usize,
    train_len: usize,
}

impl<'a> StepPlan<'a> {
    fn new(
        s: &'a Session<'a>,
        model: &Autoencoder,
        steps_per_epoch: usize,
        train_len: usize,
    ) -> Self {
        let extra_steps = model.net().variant().extra_steps();
        let owned: Vec<HashSet<ParamId>> = extra_steps
            .iter()
            .map(|step| model.net().layers.param_ids(&step.layers))
            .collect();
        let owned_by_extra = owned.iter().flatten().copied().collect();
        // A batch is split over the cores only where that gives the same gradients (a mean
        // over rows, every parameter in the main step) and on the CPU backend, whose cores
        // share it; over ranks (which refuse other models) on any device.
        let splittable = extra_steps.is_empty()
            && model.net().variant().rows_independent(s.model)
            && (s.ranks.is_some() || crate::kernels::on_cpu_backend(model.device().clone()));
        Self {
            s,
            owned,
            owned_by_extra,
            splittable,
            train_device: model.device().clone().autodiff(),
            device: model.device().clone(),
            steps_per_epoch,
            train_len,
        }
    }

    /// One training step on `batch` (`batch_rows` rows) at `state`'s place: the main
    /// objective's loss and gradients (over row shares where that gives the same gradients;
    /// over ranks, this rank's share exchanged with the others'), the main optimiser step, then
    /// the seam — the variant's extra steps and its update without gradients. Returns the
    /// network and the batch's loss, or `None` and the network unchanged where the ranks
    /// agreed to stop (`stop` is this rank's wish); a loss that is not finite is divergence.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        mut net: Network,
        optimizers: &mut Optimizers,
        batch: Batch,
        batch_rows: usize,
        state: &TrainState,
        lr: f64,
        store: &dyn Checkpoints,
        stop: bool,
    ) -> Result<(Network, Option<f64>)> {
        let (config, tc, train_len) = (self.s.model, self.s.train, self.train_len);
        let stream = TRAIN_PROJECTION_STREAM + state.global_step as u64;
        let epochs_done = state.epoch as f64 + state.batch as f64 / self.steps_per_epoch as f64;
        let share_plan = shares::plan(batch_rows, state.batch_shares.unwrap_or(1), self.splittable);
        // Share k of a split batch draws from its own stream; share 0's is the batch's.
        let share_loss = |copy: &Network, share: Batch, k: usize| {
            let mut rng = rng_for(tc.seed, shares::share_stream(stream, k));
            copy.objective_in(share, config, &mut rng, epochs_done, train_len)
                .total
        };
        let main_owned = (!self.owned_by_extra.is_empty()).then_some((&self.owned_by_extra, false));
        let (value, grads) = if let Some(ranks) = self.s.ranks {
            let mine = share_plan.get(ranks.rank()).map(|range| {
                shares::one_share(
                    &net,
                    &batch,
                    range.clone(),
                    ranks.rank(),
                    &self.train_device,
                    &share_loss,
                )
            });
            match ranks::exchange(ranks, &net, mine, stop, &self.device, tc.rank_sum) {
                Exchanged::Stop => return Ok((net, None)),
                Exchanged::Step(value, grads) => (value, for_step(&net, grads, tc, main_owned)),
            }
        } else if share_plan.len() > 1 {
            let (value, grads) =
                shares::loss_and_grads(&net, &batch, &share_plan, &self.train_device, share_loss);
            (value, for_step(&net, grads, tc, main_owned))
        } else {
            let loss = share_loss(&net, batch.clone(), 0);
            let value = loss.clone().into_scalar::<f32>() as f64;
            (value, step_grads(&net, loss, tc, main_owned))
        };
        if !value.is_finite() {
            let kept = if state.epoch > 0 || state.best_epoch.is_some() {
                "the last good checkpoint is in"
            } else {
                "only the initial weights are in"
            };
            return Err(Error::Diverged(format!(
                "loss became {value} at epoch {} step {} (lr {lr:.3e}); {kept} {}. Lower the learning rate or set clip_grad_norm",
                state.epoch + 1,
                state.batch + 1,
                store.checkpoint_location().display()
            )));
        }
        net = optimizers.main.step(lr, net, grads);

        // The seam: the variant's extra optimiser steps and its update without gradients.
        let mut extra_rng = rng_for(tc.seed, TRAIN_EXTRA_STREAM + state.global_step as u64);
        let mut cx = StepContext {
            config,
            rng: &mut extra_rng,
            epochs_done,
            dataset_size: self.train_len,
        };
        for (k, ids) in self.owned.iter().enumerate() {
            let variant = net.variant();
            let Some(loss) = variant.extra_objective(k, &net, batch.clone(), &mut cx) else {
                continue;
            };
            let grads = step_grads(&net, loss, tc, Some((ids, true)));
            net = optimizers.extra[k].1.step(lr, net, grads);
        }
        let variant = net.variant_handle();
        net = variant.after_step(net, &batch, &mut cx);
        Ok((net, Some(value)))
    }
}

/// The epoch's validation loss and reconstruction term (`None` without a validation set); a
/// loss that is not finite is divergence.
fn validation(
    s: &Session,
    model: &Autoencoder,
    state: &TrainState,
    store: &dyn Checkpoints,
) -> Result<Option<(f64, f64)>> {
    if s.rows.val_len() == 0 {
        return Ok(None);
    }
    let done = (state.epoch + 1) as f64;
    let val = s.rows.validation_loss(model, done, s.rows.train_len())?;
    if !val.0.is_finite() {
        return Err(Error::Diverged(format!(
            "validation loss is {} after epoch {}; the last good checkpoint is in {}",
            val.0,
            state.epoch + 1,
            store.checkpoint_location().display()
        )));
    }
    Ok(Some(val))
}

/// Keeps the best model: the lowest validation loss so far, or simply the latest without a
/// validation set (`score` is then the training loss). It is written with the next save
/// ([`Unsaved`]), so that the best weights on disk always go with the checkpoint's state.
fn keep_best(score: f64, model: &Autoencoder, state: &mut TrainState, unsaved: &mut Unsaved) {
    if state.best_val.is_none_or(|b| score < b) {
        state.best_val = Some(score);
        state.best_epoch = Some(state.epoch + 1);
        state.bad_epochs = 0;
        unsaved.best = Some(model.clone());
    } else {
        state.bad_epochs += 1;
    }
}

/// What the loop has not written yet: the best weights since the last save, and when that
/// save was. Epochs that end within `checkpoint_seconds` of it save nothing.
struct Unsaved {
    best: Option<Autoencoder>,
    metrics: bool,
    since: Instant,
}

impl Unsaved {
    fn new() -> Self {
        Self {
            best: None,
            metrics: false,
            since: Instant::now(),
        }
    }

    /// Writes the best weights and the metrics it holds: what goes to disk before a
    /// checkpoint, in this order, so that a crash between the writes leaves a run that
    /// resumes from the older checkpoint (which drops and writes again the newer lines).
    fn write(&mut self, store: &dyn Checkpoints, history: &[EpochMetrics]) -> Result<()> {
        if let Some(best) = self.best.take() {
            store.save_best(&best)?;
        }
        if std::mem::take(&mut self.metrics) {
            store.save_metrics(history)?;
        }
        Ok(())
    }

    /// The best weights, the metrics and the checkpoint, written now.
    fn save(
        &mut self,
        store: &dyn Checkpoints,
        history: &[EpochMetrics],
        model: &Autoencoder,
        optimizers: &Optimizers,
        state: &TrainState,
    ) -> Result<()> {
        self.write(store, history)?;
        crate::io::crash_point("epoch-end");
        store.save_checkpoint(model, optimizers, state)?;
        self.since = Instant::now();
        Ok(())
    }
}

/// Why training stops after the epoch just ended, if it does: early stopping, or the time
/// limit.
fn stop_rule(tc: &TrainConfig, state: &TrainState) -> Option<String> {
    if let Some(p) = tc.early_stopping
        && state.bad_epochs >= p
    {
        return Some(format!("early stopping: no improvement for {p} epochs"));
    }
    if let Some(mins) = tc.max_minutes
        && state.train_seconds >= mins * 60.0
    {
        return Some(format!("time limit of {mins} minutes reached"));
    }
    None
}

/// The error of a session interrupted at `state`'s place.
fn interruption(state: &TrainState, store: &dyn Checkpoints) -> Error {
    Error::Interrupted(format!(
        "checkpoint saved at epoch {} step {}; continue with `{}`",
        state.epoch + 1,
        state.batch,
        store.resume_hint()
    ))
}

/// Saves the checkpoint of a session that stops mid-epoch (with the best weights and metrics
/// not yet written), then gives `why` it stopped (or why the checkpoint could not be saved).
fn save_and_stop(
    store: &dyn Checkpoints,
    unsaved: &mut Unsaved,
    history: &[EpochMetrics],
    checkpoint: (&Autoencoder, &Optimizers, &TrainState),
    why: Error,
) -> Error {
    let (model, optimizers, state) = checkpoint;
    let saved = unsaved
        .write(store, history)
        .and_then(|()| store.save_checkpoint(model, optimizers, state));
    match saved {
        Ok(()) => why,
        Err(e) => e,
    }
}

/// Trains from `state` until the epochs are done, training stops early, or it is
/// interrupted (then the checkpoint is saved and `Error::Interrupted` returned).
pub fn run(
    s: Session,
    mut model: Autoencoder,
    mut optimizers: Optimizers,
    mut state: TrainState,
    mut history: Vec<EpochMetrics>,
    store: &dyn Checkpoints,
    progress: &mut Progress,
) -> Result<Outcome> {
    let tc = s.train;
    let dim = s.rows.batches().data.cols as f64;
    let train_len = s.rows.train_len();
    let steps_per_epoch = train_len.div_ceil(tc.batch_size);
    let plan = StepPlan::new(&s, &model, steps_per_epoch, train_len);

    let started = Instant::now();
    let time_before = state.train_seconds;
    let mut steps_this_session = 0usize;
    let mut stop_reason = "completed".to_string();
    let mut net: Network = model.clone().into_net();
    let train_device = model.device().clone().autodiff();
    let mut unsaved = Unsaved::new();

    while state.epoch < tc.epochs {
        let mut epoch_rows = s.rows.epoch(state.epoch, state.batch, tc.batch_size);
        progress.start_epoch(
            state.epoch,
            tc.epochs,
            train_len as u64,
            state.epoch_samples as u64,
        );
        let epoch_clock = Instant::now();
        let samples_at_start = state.epoch_samples;
        let mut lr = 0.0;
        while state.batch < steps_per_epoch {
            let interrupted = s.interrupt.is_some_and(|f| f.load(Ordering::SeqCst))
                || s.stop_after_steps == Some(steps_this_session);
            // An interruption, or data that stopped (a file changed or vanished), ends the
            // session here: what was trained so far is checkpointed, and `--resume` goes on
            // from this step (once the data is whole again). Ranks stop together: the wish to
            // stop travels with the step's exchange.
            let next = if interrupted && s.ranks.is_none() {
                Err(interruption(&state, store))
            } else {
                epoch_rows.next().unwrap_or_else(|| {
                    Err(Error::invalid(format!(
                        "the data ended at batch {} of {steps_per_epoch} of epoch {}",
                        state.batch + 1,
                        state.epoch + 1
                    )))
                })
            };
            let step_rows = match next {
                Ok(rows) => rows,
                Err(stop) => {
                    state.train_seconds = time_before + started.elapsed().as_secs_f64();
                    return Err(save_and_stop(
                        store,
                        &mut unsaved,
                        &history,
                        (&model.with_net(net), &optimizers, &state),
                        stop,
                    ));
                }
            };
            let batch_rows = step_rows.n;
            let batch = s.rows.batches().assemble(
                step_rows,
                TRAIN_NOISE_STREAM + state.global_step as u64,
                &train_device,
            );
            lr = schedule::learning_rate(tc, state.global_step, steps_per_epoch);
            let (stepped, value) = plan.step(
                net,
                &mut optimizers,
                batch,
                batch_rows,
                &state,
                lr,
                store,
                interrupted,
            )?;
            net = stepped;
            let Some(value) = value else {
                state.train_seconds = time_before + started.elapsed().as_secs_f64();
                let stop = interruption(&state, store);
                let checkpoint = (&model.with_net(net), &optimizers, &state);
                let stop = save_and_stop(store, &mut unsaved, &history, checkpoint, stop);
                if let Some(ranks) = s.ranks {
                    // No rank leaves before rank 0 has saved: a rank that ends makes the
                    // launcher stop the rest.
                    ranks.all_gather(&[0]);
                }
                return Err(stop);
            };

            state.batch += 1;
            state.global_step += 1;
            state.epoch_loss_sum += value * batch_rows as f64;
            state.epoch_samples += batch_rows;
            steps_this_session += 1;
            progress.step(batch_rows as u64, value);
            if let Some(hook) = s.on_step {
                hook(state.global_step);
            }
        }

        drop(epoch_rows);
        model = model.with_net(net);
        let train_loss = state.epoch_loss_sum / state.epoch_samples.max(1) as f64;
        let val = validation(&s, &model, &state, store)?;
        let val_loss = val.map(|v| v.0);
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
            "epoch {:>3}/{} train {:.6} val {} lr {:.2e} {:.0} samples/s {:.1}s{}",
            metrics.epoch,
            tc.epochs,
            train_loss,
            val_loss.map_or("-".into(), |v| format!("{v:.6}")),
            lr,
            metrics.samples_per_sec,
            seconds,
            crate::device::resident_memory().map_or(String::new(), |b| format!(
                " {} resident",
                crate::device::human_bytes(b)
            ))
        ));
        history.push(metrics);
        unsaved.metrics = true;

        keep_best(
            val_loss.unwrap_or(train_loss),
            &model,
            &mut state,
            &mut unsaved,
        );
        state.epoch += 1;
        state.batch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_samples = 0;
        state.train_seconds = time_before + started.elapsed().as_secs_f64();
        let mut reason = stop_rule(tc, &state);
        // The last epoch and a stop always save; others once `checkpoint_seconds` have passed.
        let due = state.epoch >= tc.epochs
            || reason.is_some()
            || unsaved.since.elapsed().as_secs_f64() >= tc.checkpoint_seconds;
        if due {
            unsaved.save(store, &history, &model, &optimizers, &state)?;
        }
        net = model.clone().into_net();

        if let Some(ranks) = s.ranks {
            reason = ranks::epoch_end(ranks, &net, reason)?;
        }
        if let Some(reason) = reason {
            stop_reason = reason;
            break;
        }
    }
    Ok(Outcome {
        model,
        state,
        history,
        stop_reason,
    })
}
