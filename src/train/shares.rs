//! A training step's batch split into row shares, one per core: each share runs forward and
//! backward through its own copy of the network (its own autodiff graph), its products on its
//! own thread, and the shares' gradients are summed. Splitting every product over the cores
//! instead costs a hand-off per product and leaves the element-wise passes between products on
//! one core; on the dense and convolutional reference workloads the split step was 1.23× and
//! 1.27× faster (BENCHMARKS.md).
//!
//! Only for objectives that are a mean over rows (a variant's [`Variant::rows_independent`]):
//! each share's loss is weighted by its fraction of the rows, so the gradients sum to the whole
//! batch's up to rounding. Each share draws from its own random stream; the first share's is
//! the batch's, so a batch of one share trains exactly as an unsplit one.
//!
//! [`Variant::rows_independent`]: crate::model::Variant::rows_independent

use std::ops::Range;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

use crate::model::Network;
use crate::model::variant::Batch;

/// Fewest rows of a share: below, a share's products are too small to keep a core busy and
/// summing the gradients costs more than the split gains.
pub const MIN_SHARE_ROWS: usize = 32;

/// Spacing of the shares' random streams after the batch's own (share `k` draws from the
/// batch's stream plus `k · SHARE_STREAM_STRIDE`), far above any step count.
const SHARE_STREAM_STRIDE: u64 = 1 << 50;

/// The row ranges a batch of `rows` is split into: up to `most` shares (a run's cores) while
/// each keeps at least [`MIN_SHARE_ROWS`], as even as they can be, in order. One range (the
/// whole batch) when the objective couples the rows or the device is not the CPU backend.
/// The plan depends on these numbers alone, not on the cores of the session that runs it.
pub fn plan(rows: usize, most: usize, splittable: bool) -> Vec<Range<usize>> {
    let count = if splittable {
        most.min(rows / MIN_SHARE_ROWS).max(1)
    } else {
        1
    };
    let (base, longer) = (rows / count, rows % count);
    let mut start = 0;
    (0..count)
        .map(|k| {
            let end = start + base + usize::from(k < longer);
            let range = start..end;
            start = end;
            range
        })
        .collect()
}

/// The random stream of share `k` of a batch whose draws come from `stream`.
pub fn share_stream(stream: u64, k: usize) -> u64 {
    stream + k as u64 * SHARE_STREAM_STRIDE
}

/// The loss value and the summed gradients of `net`'s parameters over the shares `ranges` of
/// `batch`. `share_loss(copy, share, k)` is share `k`'s objective on the network's copy; it is
/// weighted here by the share's fraction of the rows. The shares run on the pool, their
/// products single-threaded when there is a share for every core.
pub fn loss_and_grads(
    net: &Network,
    batch: &Batch,
    ranges: &[Range<usize>],
    device: &Device,
    share_loss: impl Fn(&Network, Batch, usize) -> Tensor<1> + Sync,
) -> (f64, GradientsParams) {
    use rayon::prelude::*;
    let one_share = |k: usize| one_share(net, batch, ranges[k].clone(), k, device, &share_loss);
    let parts: Vec<(f64, GradientsParams)> = if ranges.len() >= rayon::current_num_threads() {
        (0..ranges.len())
            .into_par_iter()
            .map(|k| crate::kernels::gemm::products_on_this_thread(|| one_share(k)))
            .collect()
    } else {
        (0..ranges.len()).into_par_iter().map(one_share).collect()
    };
    let value = parts.iter().map(|(v, _)| v).sum();
    let mut grads = parts.into_iter().map(|(_, g)| g);
    let mut total = grads.next().expect("at least one share");
    sum_into(net, &mut total, grads.collect());
    (value, total)
}

/// Share `k` (rows `range` of `batch`): its loss, weighted by its fraction of the batch's
/// rows, and that weighted loss's gradients. The same for a share on a core of this process
/// and for a share on a rank of its own ([`crate::train::ranks`]).
pub fn one_share(
    net: &Network,
    batch: &Batch,
    range: Range<usize>,
    k: usize,
    device: &Device,
    share_loss: &impl Fn(&Network, Batch, usize) -> Tensor<1>,
) -> (f64, GradientsParams) {
    let rows = batch.input.dims()[0];
    // A fork has fresh autodiff leaves for the same parameters (same ids), so each share
    // builds a graph of its own that its backward pass consumes alone.
    let copy = net.clone().fork(device);
    let share = batch.rows(range.start, range.len());
    let loss = share_loss(&copy, share, k).mul_scalar(range.len() as f64 / rows as f64);
    let value = loss.clone().into_scalar::<f32>() as f64;
    (value, GradientsParams::from_grads(loss.backward(), &copy))
}

/// Adds every parameter's gradient in `others` to its gradient in `total`, in share order.
fn sum_into(net: &Network, total: &mut GradientsParams, others: Vec<GradientsParams>) {
    struct Sum<'a> {
        total: &'a mut GradientsParams,
        others: Vec<GradientsParams>,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let mut sum = self.total.remove::<D>(param.id);
            for other in &mut self.others {
                sum = match (sum, other.remove::<D>(param.id)) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
            }
            if let Some(sum) = sum {
                self.total.register::<D>(param.id, sum);
            }
        }
    }
    net.visit(&mut Sum { total, others });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::rng_for;
    use crate::model::{Autoencoder, DenseConfig, ModelConfig};

    /// Every parameter's gradient of `net`, flattened, in visiting order.
    fn flat(net: &Network, grads: &GradientsParams) -> Vec<Vec<f32>> {
        struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let g = self
                    .0
                    .get::<D>(param.id)
                    .expect("a gradient for every parameter");
                self.1.push(
                    g.into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .expect("f32"),
                );
            }
        }
        let mut c = Collect(grads, Vec::new());
        net.visit(&mut c);
        c.1
    }

    /// The dense objective's loss and gradients on 96 random rows, whole and in `shares`.
    fn whole_and_split(config: &ModelConfig, shares: usize) -> [(f64, Vec<Vec<f32>>); 2] {
        let cpu = Device::flex();
        let device = cpu.clone().autodiff();
        let net = Autoencoder::new(config, 3, &cpu).expect("model").into_net();
        let rows = 96;
        // The first rows dark, the last bright: shares that differ, as a batch statistic sees.
        let values: Vec<f32> = (0..rows * 12)
            .map(|i| {
                let u = (i * 37 % 101) as f32 / 101.0;
                if i < rows * 6 { 0.1 * u } else { 0.9 + 0.1 * u }
            })
            .collect();
        let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(values, [rows, 12]), &device);
        let batch = Batch::unlabelled(x.clone(), x);
        let loss = |copy: &Network, b: Batch, k: usize| {
            let mut rng = rng_for(1, share_stream(5, k));
            copy.objective(b.input, b.target, config, &mut rng, 0.0)
                .total
        };
        let whole = loss(&net, batch.clone(), 0);
        let whole_value = whole.clone().into_scalar::<f32>() as f64;
        let whole_grads = GradientsParams::from_grads(whole.backward(), &net);
        let ranges = plan(rows, shares, true);
        assert_eq!(ranges.len(), shares);
        let (value, grads) = loss_and_grads(&net, &batch, &ranges, &device, loss);
        [
            (whole_value, flat(&net, &whole_grads)),
            (value, flat(&net, &grads)),
        ]
    }

    fn config(sparsity_target: Option<f64>) -> ModelConfig {
        let mut arch = DenseConfig::new(vec![16], 4);
        arch.code_activation = crate::model::Activation::Sigmoid;
        let mut config = ModelConfig::new(arch);
        config.shared_mut().sparsity_target = sparsity_target;
        config.resolve(&[12], true).expect("resolves");
        config
    }

    #[test]
    fn shares_of_a_batch_give_its_loss_and_gradients() {
        let config = config(None);
        assert!(
            Autoencoder::new(&config, 3, &Device::flex())
                .unwrap()
                .net()
                .variant()
                .rows_independent(&config)
        );
        for shares in [2, 3] {
            let [(whole, whole_grads), (split, split_grads)] = whole_and_split(&config, shares);
            assert!(
                (whole - split).abs() <= 1e-6 * whole.abs(),
                "{whole} vs {split}"
            );
            assert_eq!(whole_grads.len(), split_grads.len());
            for (a, b) in whole_grads.iter().zip(&split_grads) {
                let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0);
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * scale,
                        "{x} vs {y} ({shares} shares)"
                    );
                }
            }
        }
    }

    #[test]
    fn a_batch_statistic_keeps_the_batch_whole() {
        // The sparsity target's KL is on the batch's mean activation: split, it would differ.
        let config = config(Some(0.05));
        let net = Autoencoder::new(&config, 3, &Device::flex()).unwrap();
        assert!(!net.net().variant().rows_independent(&config));
        let [(whole, _), (split, _)] = whole_and_split(&config, 2);
        assert!(
            (whole - split).abs() > 1e-3 * whole.abs(),
            "{whole} vs {split}"
        );
    }

    #[test]
    fn plans_cover_every_row_once_in_order_with_a_share_per_core_where_rows_allow() {
        for threads in [1, 2, 3, 16] {
            for rows in [1, 31, 32, 63, 64, 65, 100, 256, 1000] {
                for splittable in [true, false] {
                    let plan = plan(rows, threads, splittable);
                    let mut next = 0;
                    for r in &plan {
                        assert_eq!(r.start, next, "{rows} rows, {threads} threads");
                        assert!(!r.is_empty());
                        next = r.end;
                    }
                    assert_eq!(next, rows);
                    let expected = if splittable {
                        threads.min(rows / MIN_SHARE_ROWS).max(1)
                    } else {
                        1
                    };
                    assert_eq!(plan.len(), expected, "{rows} rows, {threads} threads");
                    let sizes: Vec<usize> = plan.iter().map(|r| r.len()).collect();
                    let (min, max) = (sizes.iter().min(), sizes.iter().max());
                    assert!(max.unwrap() - min.unwrap() <= 1, "even shares: {sizes:?}");
                    if plan.len() > 1 {
                        assert!(*min.unwrap() >= MIN_SHARE_ROWS);
                    }
                }
            }
        }
    }
}
