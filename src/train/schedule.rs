//! Learning rate as a pure function of the step, so a resumed run continues the same curve.

use crate::train::config::{Schedule, TrainConfig};

/// Learning rate at optimisation step `step` (0-based) of a run with `steps_per_epoch` steps.
pub fn learning_rate(cfg: &TrainConfig, step: usize, steps_per_epoch: usize) -> f64 {
    let spe = steps_per_epoch.max(1) as f64;
    let total = cfg.epochs as f64 * spe;
    let warmup = cfg.warmup_epochs * spe;
    let t = step as f64;
    if warmup > 0.0 && t < warmup {
        return cfg.lr * (t + 1.0) / warmup;
    }
    match cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Step => {
            let epoch = (t / spe).floor() as i32;
            cfg.lr * cfg.gamma.powi(epoch / cfg.step_epochs.max(1) as i32)
        }
        Schedule::Cosine => {
            let span = (total - warmup).max(1.0);
            let progress = ((t - warmup) / span).clamp(0.0, 1.0);
            cfg.min_lr
                + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}
