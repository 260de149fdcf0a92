//! Fine-tuning: an encoder and a classification head trained on labelled rows by softmax
//! cross-entropy — the head alone for the first `freeze_epochs` epochs (the encoder's codes cut
//! from the graph, so it gets no gradient and the optimiser leaves it as it is), then every
//! layer. The best epoch by validation accuracy is kept when there is a validation set.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::batch::{BatchOrder, rng_for};
use crate::data::{LabelChoice, Matrix};
use crate::error::{Error, Result};
use crate::model::Autoencoder;
use crate::model::classifier::{Classifier, Head, predicted_classes};
use crate::model::layers::rows_tensor;
use crate::train::progress::Progress;
use crate::train::{TrainConfig, optim, schedule};

/// The draws of a fine-tuning step (the encoder's dropout), one stream per step.
const FINETUNE_STEP_STREAM: u64 = 1 << 47;

/// How a classifier is fine-tuned from a run's encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneConfig {
    pub head: Head,
    /// Epochs in which only the head learns, before every layer does.
    pub freeze_epochs: usize,
    /// Which training rows keep their label.
    pub labels: LabelChoice,
    /// Share of the labelled rows held out to choose the best epoch (0: keep the last).
    pub val_fraction: f64,
    /// Retrain the encoder from fresh weights instead of the run's: the baseline that says
    /// what pretraining was worth.
    pub from_scratch: bool,
    /// The optimiser, schedule, epochs, batch size and seed.
    pub train: TrainConfig,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            head: Head::Linear,
            freeze_epochs: 0,
            labels: LabelChoice::All,
            val_fraction: 0.0,
            from_scratch: false,
            // Few labels make few steps an epoch: more epochs and smaller batches than an
            // autoencoder's defaults.
            train: TrainConfig {
                epochs: 30,
                batch_size: 64,
                ..TrainConfig::default()
            },
        }
    }
}

impl FinetuneConfig {
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        if !(0.0..0.9).contains(&self.val_fraction) {
            return Err(Error::invalid(format!(
                "--val-fraction {}: use a share in [0, 0.9)",
                self.val_fraction
            )));
        }
        if self.train.init_from.is_some() {
            return Err(Error::invalid(
                "--init-from does not apply to fine-tuning: the encoder starts from the run being fine-tuned (or fresh with --from-scratch)",
            ));
        }
        if self.freeze_epochs > self.train.epochs {
            return Err(Error::invalid(format!(
                "--freeze-epochs {} is more than the {} epochs of fine-tuning",
                self.freeze_epochs, self.train.epochs
            )));
        }
        Ok(())
    }
}

/// Labelled rows in the model's scale, and their classes.
#[derive(Clone, Copy)]
pub struct LabelledRows<'a> {
    pub x: &'a Matrix,
    pub labels: &'a [u32],
}

/// One epoch of fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneEpoch {
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches (nats per row).
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub lr: f64,
    /// Whether only the head learnt in this epoch.
    pub encoder_frozen: bool,
    pub seconds: f64,
}

/// A fine-tuned classifier and how it got there.
pub struct Finetuned {
    pub classifier: Classifier,
    pub history: Vec<FinetuneEpoch>,
    /// The epoch whose weights were kept (1-based).
    pub kept_epoch: usize,
}

/// The mean cross-entropy (nats) and the accuracy of `classifier` on `rows`.
fn loss_and_accuracy(
    classifier: &Classifier,
    rows: LabelledRows,
    source: &Autoencoder,
) -> Result<(f64, f64)> {
    let model = source.with_net(classifier.net.clone());
    let p = crate::model::classifier::probabilities(&model, &classifier.head, rows.x)?;
    let mut loss = 0.0;
    for (r, &class) in rows.labels.iter().enumerate() {
        loss -= (p.row(r)[class as usize].max(f32::MIN_POSITIVE) as f64).ln();
    }
    let predicted = predicted_classes(&p);
    let hits = predicted
        .iter()
        .zip(rows.labels)
        .filter(|(p, t)| p == t)
        .count();
    let n = rows.labels.len().max(1) as f64;
    Ok((loss / n, hits as f64 / n))
}

/// Trains `classifier` on `train` as `cfg` says, choosing the kept epoch on `val` when given.
/// `classifier`'s network is `source`'s (or one of its config), on the autodiff form of its
/// device; every label must be below the head's width.
pub fn finetune(
    cfg: &FinetuneConfig,
    mut classifier: Classifier,
    train: LabelledRows,
    val: Option<LabelledRows>,
    source: &Autoencoder,
    progress: &mut Progress,
) -> Result<Finetuned> {
    let tc = &cfg.train;
    if train.labels.is_empty() {
        return Err(Error::invalid(
            "fine-tuning needs at least one labelled row",
        ));
    }
    let device = source.device().clone().autodiff();
    let started = Instant::now();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optimizer = optim::build(tc);
    let all: Vec<usize> = (0..train.labels.len()).collect();
    let steps_per_epoch = all.len().div_ceil(tc.batch_size);
    let mut history: Vec<FinetuneEpoch> = Vec::new();
    let mut best: Option<(f64, f64, usize, Classifier)> = None;
    let mut step = 0usize;
    for epoch in 0..tc.epochs {
        let clock = Instant::now();
        let frozen = epoch < cfg.freeze_epochs;
        let order = BatchOrder::shuffled(&all, tc.batch_size, tc.seed, epoch);
        progress.start_epoch(epoch, tc.epochs, all.len() as u64, 0);
        let (mut loss_sum, mut hits, mut lr) = (0.0, 0usize, 0.0);
        for b in 0..order.num_batches() {
            let rows = order.batch(b);
            let x = rows_tensor(&train.x.select_rows(rows), 0..rows.len(), &device);
            let targets: Vec<i64> = rows.iter().map(|&r| train.labels[r] as i64).collect();
            let targets =
                Tensor::<1, Int>::from_data(TensorData::new(targets, [rows.len()]), &device);
            let mut rng = rng_for(tc.seed, FINETUNE_STEP_STREAM + step as u64);
            let logits = classifier.logits_training(x, &mut rng, frozen);
            let predicted = predicted_classes(&crate::model::layers::tensor_matrix(logits.clone()));
            hits += predicted
                .iter()
                .zip(rows)
                .filter(|(p, r)| **p == train.labels[**r])
                .count();
            let loss = loss_fn.forward(logits, targets);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(Error::Diverged(format!(
                    "fine-tuning loss became {value} at epoch {} step {}: lower the learning rate or set --clip-grad-norm",
                    epoch + 1,
                    b + 1
                )));
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &classifier);
            if let Some(max) = tc.clip_grad_norm {
                optim::clip_grad_norm(&classifier, &mut grads, max);
            }
            lr = schedule::learning_rate(tc, step, steps_per_epoch);
            classifier = optimizer.step(lr, classifier, grads);
            loss_sum += value * rows.len() as f64;
            step += 1;
            progress.step(rows.len() as u64, value);
        }
        let n = all.len() as f64;
        let scored = val
            .map(|v| loss_and_accuracy(&classifier, v, source))
            .transpose()?;
        let metrics = FinetuneEpoch {
            epoch: epoch + 1,
            train_loss: loss_sum / n,
            train_accuracy: hits as f64 / n,
            val_loss: scored.map(|s| s.0),
            val_accuracy: scored.map(|s| s.1),
            lr,
            encoder_frozen: frozen,
            seconds: clock.elapsed().as_secs_f64(),
        };
        progress.end_epoch(&format!(
            "epoch {:>3}/{} loss {:.4} accuracy {:.2}%{}{}",
            metrics.epoch,
            tc.epochs,
            metrics.train_loss,
            100.0 * metrics.train_accuracy,
            scored.map_or(String::new(), |(l, a)| format!(
                " validation loss {l:.4} accuracy {:.2}%",
                100.0 * a
            )),
            if frozen { " (head only)" } else { "" }
        ));
        history.push(metrics);
        if let Some((loss, accuracy)) = scored {
            // Higher accuracy wins; at equal accuracy, the lower loss.
            let better = best
                .as_ref()
                .is_none_or(|(a, l, _, _)| accuracy > *a || (accuracy == *a && loss < *l));
            if better {
                best = Some((accuracy, loss, epoch + 1, classifier.clone()));
            }
            let since = epoch + 1 - best.as_ref().map_or(0, |b| b.2);
            if tc.early_stopping.is_some_and(|p| since >= p) {
                break;
            }
        }
        if tc
            .max_minutes
            .is_some_and(|m| started.elapsed().as_secs_f64() >= m * 60.0)
        {
            break;
        }
    }
    let last = history.len();
    let (classifier, kept_epoch) = match best {
        Some((_, _, epoch, kept)) => (kept, epoch),
        None => (classifier, last),
    };
    Ok(Finetuned {
        classifier,
        history,
        kept_epoch,
    })
}
