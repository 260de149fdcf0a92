//! Where training stands and what it reports: the resumable position, the metrics of each
//! epoch, and the final summary.

use serde::{Deserialize, Serialize};

/// Where training stands, saved with every checkpoint so that a resumed run continues exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epoch in progress (0-based).
    pub epoch: usize,
    /// Next batch of that epoch.
    pub batch: usize,
    /// Optimisation steps taken so far.
    pub global_step: usize,
    /// Sum of batch losses (weighted by batch size) in the current epoch so far.
    pub epoch_loss_sum: f64,
    pub epoch_samples: usize,
    pub best_val: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Epochs since the validation loss last improved.
    pub bad_epochs: usize,
    /// The most shares a batch is split into (the cores of the run's first session; see
    /// [`crate::train::shares`]), kept so that a run resumed with other `--threads` takes the
    /// same steps. Absent in runs made before batches were split: theirs stay whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_shares: Option<usize>,
    /// Seconds of training so far (for `max_minutes` across resumes). Saved apart from the
    /// rest (`clock.json`), so that the same run writes the same `state.json`.
    #[serde(default, skip_serializing)]
    pub train_seconds: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Mean training loss per element (pixel).
    pub train_loss: f64,
    /// Mean validation loss per element, when there is a validation set.
    pub val_loss: Option<f64>,
    /// The same, summed over the elements of a sample.
    pub train_loss_per_sample: f64,
    pub val_loss_per_sample: Option<f64>,
    /// The reconstruction part of the validation loss (equal to it without penalties).
    #[serde(default)]
    pub val_recon: Option<f64>,
    pub lr: f64,
    pub seconds: f64,
    pub samples_per_sec: f64,
}

/// The final `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    pub parameters: usize,
    pub loss: String,
    pub epochs_completed: usize,
    pub best_epoch: Option<usize>,
    pub best_val_loss: Option<f64>,
    pub final_train_loss: Option<f64>,
    pub stop_reason: String,
    pub train_seconds: f64,
    pub samples_per_sec: f64,
    pub train_samples: usize,
    pub val_samples: usize,
}
