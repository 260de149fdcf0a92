//! Training batches: rows of the data assembled into `(input, target)` tensors, the input
//! degraded for denoising and paired tasks, with every random draw a pure function of the seed
//! and the batch's position; and the mean loss over a set of rows.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;

use crate::data::batch::rng_for;
use crate::data::table::order::VALIDATION_BATCH_ROWS;
use crate::data::{BatchOrder, Corruption, Matrix};
use crate::error::Result;
use crate::model::Autoencoder;
use crate::model::variant::{Batch, UNLABELLED};

/// Noise streams: one per training step and one per validation batch, so that every batch's
/// corruption is a pure function of the seed and its position.
pub(crate) const TRAIN_NOISE_STREAM: u64 = 1 << 40;
const VAL_NOISE_STREAM: u64 = 1 << 41;
/// The same for the contractive estimate's random directions.
pub(crate) const TRAIN_PROJECTION_STREAM: u64 = 1 << 42;
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
    /// Each batch is a fresh Bernoulli draw of the intensities (target and input alike).
    pub binarize: bool,
    /// For a conditional model: each row's class and the number of classes; inputs are
    /// followed by the class one-hot (targets are not).
    pub condition: Option<(&'a [u32], usize)>,
    /// For a semi-supervised model: each row's class, given to the objective for the rows
    /// [`Self::rows_with_labelled`] names as labelled (the others' are hidden).
    pub supervision: Option<&'a [u32]>,
    /// Whether some values are missing (NaN, a typed table's): inputs then get them filled
    /// with 0 and targets keep them, for the loss to leave out.
    pub missing: bool,
}

impl<'a> Batches<'a> {
    pub fn new(data: &'a Matrix, noise: Option<Corruption>, seed: u64) -> Self {
        Self {
            data,
            noise,
            task: None,
            range: data.value_range(),
            seed,
            binarize: false,
            condition: None,
            supervision: None,
            missing: data.data.iter().any(|v| v.is_nan()),
        }
    }

    /// Gives a semi-supervised model's objective the classes `labels` of the rows that are
    /// labelled in a batch (nothing when `labels` is `None`).
    pub fn with_supervision(mut self, labels: Option<&'a [u32]>) -> Self {
        self.supervision = labels;
        self
    }

    /// Follows each input with its row's class one-hot, for a conditional model of `classes`
    /// classes (nothing when `classes` is 0).
    pub fn with_condition(mut self, labels: Option<&'a [u32]>, classes: usize) -> Self {
        self.condition = labels.filter(|_| classes > 0).map(|l| (l, classes));
        self
    }

    /// Draws every batch as binary values (see [`crate::data::DataConfig::binarize`]).
    pub fn with_binarize(mut self, binarize: bool) -> Self {
        self.binarize = binarize;
        if binarize {
            self.range = (0.0, 1.0);
        }
        self
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

    /// The rows `rows` of the data, with their classes for a conditional model (and, for a
    /// semi-supervised one, marked unlabelled).
    pub fn rows(&self, rows: &[usize]) -> StepRows {
        self.rows_with_labelled(rows, &[])
    }

    /// The rows `unlabelled` and the rows `labelled`, the second spread evenly among the
    /// first (so that each share of a split batch holds its part of both: a row without a
    /// label costs a semi-supervised model a pass per class). For a semi-supervised model the
    /// `unlabelled` rows are marked [`UNLABELLED`] and the others carry their class; other
    /// models take them all alike.
    pub fn rows_with_labelled(&self, unlabelled: &[usize], labelled: &[usize]) -> StepRows {
        let (u, l) = (unlabelled.len(), labelled.len());
        let total = u + l;
        let (mut next_u, mut next_l) = (unlabelled.iter(), labelled.iter());
        // Position i holds a labelled row when ⌊(i+1)·l/total⌋ steps past ⌊i·l/total⌋.
        let order: Vec<(usize, bool)> = (0..total)
            .map(|i| {
                if (i + 1) * l / total > i * l / total {
                    (*next_l.next().expect("l labelled rows"), true)
                } else {
                    (*next_u.next().expect("u unlabelled rows"), false)
                }
            })
            .collect();
        let labels = match (self.condition, self.supervision) {
            (Some((labels, _)), _) => Some(order.iter().map(|&(r, _)| labels[r]).collect()),
            (None, Some(labels)) => Some(
                order
                    .iter()
                    .map(|&(r, has)| if has { labels[r] } else { UNLABELLED })
                    .collect(),
            ),
            (None, None) => None,
        };
        let rows: Vec<usize> = order.iter().map(|&(r, _)| r).collect();
        StepRows {
            clean: self.gather(&rows),
            n: rows.len(),
            labels,
        }
    }

    /// The batch of `rows`, corrupted with noise stream `stream`.
    pub fn make(&self, rows: &[usize], stream: u64, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let batch = self.assemble(self.rows(rows), stream, device);
        (batch.input, batch.target)
    }

    /// The batch of the rows `step`, the input corrupted with noise stream `stream`.
    pub fn assemble(&self, step: StepRows, stream: u64, device: &Device) -> Batch {
        let cols = self.data.cols;
        let shape = [step.n, cols];
        let mut clean = step.clean;
        let to_tensor = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, shape), device);
        let mut rng = rng_for(self.seed, stream);
        if self.binarize {
            crate::data::batch::binarize(&mut clean, &mut rng);
        }
        // A conditional model's labels go into its input; a semi-supervised model's to its
        // objective.
        let (conditioning, labels) = match self.condition {
            Some(_) => (step.labels, None),
            None => (None, step.labels),
        };
        if self.noise.is_none() && self.task.is_none() && self.condition.is_none() && !self.missing
        {
            let t = to_tensor(clean);
            return Batch {
                input: t.clone(),
                target: t,
                labels,
            };
        }
        let mut input = clean.clone();
        if self.missing {
            crate::model::layers::fill_missing(&mut input);
        }
        if let Some((task, shape)) = &self.task {
            task.degrade_all(&mut input, shape, self.range, &mut rng);
        }
        if let Some(c) = &self.noise {
            c.apply(&mut input, self.range, &mut rng);
        }
        let input = match (self.condition, &conditioning) {
            (Some((_, classes)), Some(labels)) => {
                let mut with_class = Vec::with_capacity(step.n * (cols + classes));
                for (row, &label) in input.chunks_exact(cols).zip(labels) {
                    crate::data::push_with_one_hot(&mut with_class, row, label as usize, classes);
                }
                Tensor::<2>::from_data(
                    TensorData::new(with_class, [step.n, cols + classes]),
                    device,
                )
            }
            _ => to_tensor(input),
        };
        Batch {
            input,
            target: to_tensor(clean),
            labels,
        }
    }
}

/// The clean rows of one batch, before corruption, with their classes for a conditional
/// or a semi-supervised model.
pub struct StepRows {
    pub clean: Vec<f32>,
    pub n: usize,
    pub labels: Option<Vec<u32>>,
}

/// Where a training session's rows come from: held in memory ([`InMemoryRows`]) or streamed
/// from a table ([`crate::train::streamed::StreamedRows`]).
pub trait TrainingRows {
    /// How rows become batches (noise, tasks, classes; its `data.cols` is the row width), and
    /// how many rows are trained on per epoch and held out for validation.
    fn counted(&self) -> (&Batches<'_>, usize, usize);
    fn batches(&self) -> &Batches<'_> {
        self.counted().0
    }
    fn train_len(&self) -> usize {
        self.counted().1
    }
    fn val_len(&self) -> usize {
        self.counted().2
    }
    /// The batches of `epoch` (0-based) from batch `first` on, each of `batch_size` rows but
    /// the last.
    fn epoch(
        &self,
        epoch: usize,
        first: usize,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<StepRows>> + '_>;
    /// The mean objective and reconstruction loss over the validation rows.
    fn validation_loss(
        &self,
        model: &Autoencoder,
        epochs_done: f64,
        dataset_size: usize,
    ) -> Result<(f64, f64)>;
}

/// Rows held in memory: the training rows reshuffled every epoch, the validation rows fixed.
pub struct InMemoryRows<'a> {
    pub batches: Batches<'a>,
    pub train_rows: Vec<usize>,
    pub val_rows: Vec<usize>,
    pub seed: u64,
    /// A semi-supervised model's labelled rows, joined to every batch.
    pub labelled: Option<LabelledRows>,
}

/// The draws of the order in which labelled rows join batches, one stream per epoch.
const LABELLED_ORDER_STREAM: u64 = 1 << 48;

/// Labelled rows that join every training batch, `per_batch` of them (all of them where
/// there are fewer), in an order reshuffled every epoch and taken in turn: with a few labels
/// among many rows, each step still sees labels (Kingma et al. 2014 train M2 so), rather
/// than one batch in hundreds.
#[derive(Debug, Clone)]
pub struct LabelledRows {
    pub rows: Vec<usize>,
    pub per_batch: usize,
}

impl LabelledRows {
    /// The labelled rows of each batch of `epoch`: batch `b`'s are `[b·k, (b+1)·k)` of the
    /// epoch's order, cyclically.
    fn of_epoch(&self, seed: u64, epoch: usize) -> impl Fn(usize) -> Vec<usize> + '_ {
        let mut order = self.rows.clone();
        order.shuffle(&mut rng_for(seed, LABELLED_ORDER_STREAM + epoch as u64));
        let k = self.per_batch.min(order.len());
        move |b| (0..k).map(|i| order[(b * k + i) % order.len()]).collect()
    }
}

impl TrainingRows for InMemoryRows<'_> {
    fn counted(&self) -> (&Batches<'_>, usize, usize) {
        (&self.batches, self.train_rows.len(), self.val_rows.len())
    }

    fn epoch(
        &self,
        epoch: usize,
        first: usize,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<StepRows>> + '_> {
        let order = BatchOrder::shuffled(&self.train_rows, batch_size, self.seed, epoch);
        let Some(labelled) = &self.labelled else {
            return Box::new(
                (first..order.num_batches()).map(move |b| Ok(self.batches.rows(order.batch(b)))),
            );
        };
        let labelled_of = labelled.of_epoch(self.seed, epoch);
        Box::new((first..order.num_batches()).map(move |b| {
            Ok(self
                .batches
                .rows_with_labelled(order.batch(b), &labelled_of(b)))
        }))
    }

    fn validation_loss(
        &self,
        model: &Autoencoder,
        epochs_done: f64,
        dataset_size: usize,
    ) -> Result<(f64, f64)> {
        Ok(mean_loss(
            model,
            &self.batches,
            &self.val_rows,
            epochs_done,
            dataset_size,
        ))
    }
}

/// Mean objective and mean reconstruction loss per element over the rows `rows`, without
/// gradients (inputs corrupted as in training for a denoising autoencoder, with a fixed noise
/// stream per batch), each batch standing for a data set of `dataset_size` samples.
pub fn mean_loss(
    model: &Autoencoder,
    batches: &Batches,
    rows: &[usize],
    epochs_done: f64,
    dataset_size: usize,
) -> (f64, f64) {
    let order = BatchOrder::sequential(rows, VALIDATION_BATCH_ROWS);
    let steps = (0..order.num_batches()).map(|b| Ok(batches.rows(order.batch(b))));
    mean_loss_of(model, batches, steps, epochs_done, dataset_size)
        .expect("rows held in memory are read without error")
}

/// [`mean_loss`] over batches of rows as they come (validation batch `b` corrupted with its
/// own noise stream).
pub fn mean_loss_of(
    model: &Autoencoder,
    batches: &Batches,
    steps: impl Iterator<Item = Result<StepRows>>,
    epochs_done: f64,
    dataset_size: usize,
) -> Result<(f64, f64)> {
    let net = model.net().valid();
    let (mut total, mut recon) = (0.0f64, 0.0f64);
    let mut rows = 0usize;
    for (b, step) in steps.enumerate() {
        let step = step?;
        let n = step.n as f64;
        rows += step.n;
        let batch = batches.assemble(step, VAL_NOISE_STREAM + b as u64, model.device());
        let mut rng = rng_for(batches.seed, VAL_PROJECTION_STREAM + b as u64);
        let terms = net.objective_in(batch, model.config(), &mut rng, epochs_done, dataset_size);
        total += terms.total.into_scalar::<f32>() as f64 * n;
        recon += terms.recon.into_scalar::<f32>() as f64 * n;
    }
    let n = rows.max(1) as f64;
    Ok((total / n, recon / n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Matrix;

    #[test]
    fn labelled_rows_are_spread_through_a_batch_with_their_classes_and_the_rest_hidden() {
        let data = Matrix::new(12, 1, (0..12).map(|v| v as f32).collect()).unwrap();
        let labels: Vec<u32> = (0..12).map(|r| r % 3).collect();
        let batches = Batches::new(&data, None, 0).with_supervision(Some(&labels));
        let step = batches.rows_with_labelled(&[0, 1, 2, 3, 4, 5], &[7, 8]);
        let rows: Vec<f32> = step.clean.clone();
        assert_eq!(rows, [0.0, 1.0, 2.0, 7.0, 3.0, 4.0, 5.0, 8.0]);
        let l = UNLABELLED;
        assert_eq!(step.labels.unwrap(), [l, l, l, 1, l, l, l, 2]);
        // Without supervision the same rows carry no labels.
        let plain = Batches::new(&data, None, 0).rows_with_labelled(&[0, 1], &[7]);
        assert!(plain.labels.is_none());
        assert_eq!(plain.clean, [0.0, 1.0, 7.0]);
    }
}
