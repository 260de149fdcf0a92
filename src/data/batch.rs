//! Splitting and per-epoch shuffling. Every random choice is a pure function of a seed (and the
//! epoch), so that a resumed run sees exactly the batches an uninterrupted one would.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::Dataset;

/// A seeded RNG for one purpose; `stream` separates independent uses of the same seed.
pub fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Indices of a random split of `n` samples into `(train, validation)`, with `fraction` of
/// them for validation, chosen with `seed`. Each part keeps the original order.
pub fn train_val_indices(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let n_val = ((n as f64) * fraction.clamp(0.0, 0.9)).round() as usize;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng_for(seed, 1));
    let (val, train) = idx.split_at(n_val);
    let mut train = train.to_vec();
    let mut val = val.to_vec();
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// `n` draws from N(0, 1).
/// Replaces each value `v` in [0, 1] by a Bernoulli(v) draw: 1 with probability `v`, else 0.
pub fn binarize(values: &mut [f32], rng: &mut ChaCha8Rng) {
    use rand::Rng;
    for v in values {
        *v = if rng.random::<f32>() < *v { 1.0 } else { 0.0 };
    }
}

/// The stream evaluation data is binarised with, once, with seed 0: every run of a data set
/// is measured on the same binary images.
pub const EVAL_BINARIZE_STREAM: u64 = 1 << 44;

pub fn standard_normal(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    use rand_distr::Distribution;
    (0..n)
        .map(|_| rand_distr::StandardNormal.sample(&mut *rng))
        .collect()
}

/// Splits off a validation set as [`train_val_indices`] chooses it, as two new datasets.
pub fn train_val_split(data: &Dataset, fraction: f64, seed: u64) -> (Dataset, Dataset) {
    let (train, val) = train_val_indices(data.len(), fraction, seed);
    (data.subset(&train), data.subset(&val))
}

/// The order in which one epoch visits the samples, cut into batches.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    order: Vec<usize>,
    batch_size: usize,
}

impl BatchOrder {
    /// `indices` shuffled for `epoch` (0-based), the same for the same `(seed, epoch)`.
    pub fn shuffled(indices: &[usize], batch_size: usize, seed: u64, epoch: usize) -> Self {
        let mut order = indices.to_vec();
        order.shuffle(&mut rng_for(seed, 1000 + epoch as u64));
        Self {
            order,
            batch_size: batch_size.max(1),
        }
    }

    /// `indices` in their given order.
    pub fn sequential(indices: &[usize], batch_size: usize) -> Self {
        Self {
            order: indices.to_vec(),
            batch_size: batch_size.max(1),
        }
    }

    pub fn num_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Indices of batch `b`; the last batch may be short.
    pub fn batch(&self, b: usize) -> &[usize] {
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        &self.order[start..end]
    }
}
