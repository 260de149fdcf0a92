//! Training batches: rows of the data assembled into `(input, target)` tensors, the input
//! degraded for denoising and paired tasks, with every random draw a pure function of the seed
//! and the batch's position; and the mean loss over a set of rows.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use crate::data::batch::rng_for;
use crate::data::{BatchOrder, Corruption, Matrix};
use crate::model::Autoencoder;

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
        }
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

    /// The batch of `rows`, corrupted with noise stream `stream`.
    pub fn make(&self, rows: &[usize], stream: u64, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let shape = [rows.len(), self.data.cols];
        let mut clean = self.gather(rows);
        let to_tensor = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, shape), device);
        let mut rng = rng_for(self.seed, stream);
        if self.binarize {
            crate::data::batch::binarize(&mut clean, &mut rng);
        }
        if self.noise.is_none() && self.task.is_none() && self.condition.is_none() {
            let t = to_tensor(clean);
            return (t.clone(), t);
        }
        let mut input = clean.clone();
        if let Some((task, shape)) = &self.task {
            task.degrade_all(&mut input, shape, self.range, &mut rng);
        }
        if let Some(c) = &self.noise {
            c.apply(&mut input, self.range, &mut rng);
        }
        let input = match self.condition {
            Some((labels, classes)) => {
                let cols = self.data.cols;
                let mut with_class = Vec::with_capacity(rows.len() * (cols + classes));
                for (row, &r) in input.chunks_exact(cols).zip(rows) {
                    crate::data::push_with_one_hot(
                        &mut with_class,
                        row,
                        labels[r] as usize,
                        classes,
                    );
                }
                Tensor::<2>::from_data(
                    TensorData::new(with_class, [rows.len(), cols + classes]),
                    device,
                )
            }
            None => to_tensor(input),
        };
        (input, to_tensor(clean))
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
    let net = model.net().valid();
    let order = BatchOrder::sequential(rows, 1024);
    let (mut total, mut recon) = (0.0f64, 0.0f64);
    for b in 0..order.num_batches() {
        let (input, target) =
            batches.make(order.batch(b), VAL_NOISE_STREAM + b as u64, model.device());
        let n = order.batch(b).len() as f64;
        let mut rng = rng_for(batches.seed, VAL_PROJECTION_STREAM + b as u64);
        let terms = net.objective_in(
            input,
            target,
            model.config(),
            &mut rng,
            epochs_done,
            dataset_size,
        );
        total += terms.total.into_scalar::<f32>() as f64 * n;
        recon += terms.recon.into_scalar::<f32>() as f64 * n;
    }
    let n = rows.len().max(1) as f64;
    (total / n, recon / n)
}
