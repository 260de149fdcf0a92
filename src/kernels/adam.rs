//! Adam and AdamW with one pass over each parameter on the CPU.
//!
//! Why: burn's Adam updates a parameter with some thirteen element-wise tensor operations,
//! each reading and writing the whole tensor; for the 2.8 M parameters of the 784-1000-500-250-30
//! autoencoder that is about 0.4 GB of memory traffic per step. Fused, that training runs
//! about a third faster (BENCHMARKS.md). Here the moments and the parameter are updated in place in one pass, as
//! PyTorch's `foreach`/`fused` Adam does. The arithmetic and the saved state are burn's (the
//! state type is burn's [`AdamState`], so checkpoints of either load in the other); other
//! devices and dtypes, and `AEKIT_ADAM=burn`, use burn's optimisers unchanged.

use std::sync::OnceLock;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState,
    LearningRate, Optimizer,
};
use burn::tensor::{DType, Device, Tensor};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::kernels::gemm::{contiguous, values};
use crate::kernels::own_cpu_kernel;

/// Elements per parallel task: large enough that scheduling costs nothing, small enough that
/// both cores share even the small bias vectors of wide layers.
const ELEMENTS_PER_TASK: usize = 1 << 14;

/// The scalars of one update, fixed per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    pub beta_1: f32,
    pub beta_2: f32,
    /// Step number, from 1.
    pub time: usize,
    pub lr: f32,
    pub epsilon: f32,
    /// Added to the gradient times the parameter (Adam's L2 penalty).
    pub l2: f32,
    /// Parameters are first multiplied by this: `1 − lr·decay` for AdamW, 1 for Adam.
    pub keep: f32,
    /// AdamW's arithmetic in burn, `(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`, rather than Adam's, with
    /// the corrections folded into two factors; the same number up to rounding.
    pub textbook_corrections: bool,
}

/// The bias corrections of one step, computed once as burn computes them.
#[derive(Clone, Copy)]
struct Corrections {
    /// `1 − β₁ᵗ` and `1 − β₂ᵗ` (AdamW's arithmetic).
    first: f32,
    second: f32,
    /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)` and `ε·√(1 − β₂ᵗ)` (Adam's, folded).
    scale: f32,
    scaled_epsilon: f32,
}

/// One chunk of the update. The three modes are compile-time flags so that the loop has no
/// branch and vectorises (sqrt and division included, exact in IEEE arithmetic): a loop with
/// run-time branches ran scalar, at a fifth of a dense training step.
#[inline(always)]
fn update_chunk<const L2: bool, const DECAY: bool, const TEXTBOOK: bool>(
    (s, c): (&AdamStep, &Corrections),
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
        let g = if L2 { g + s.l2 * *p } else { g };
        *m = s.beta_1 * *m + (1.0 - s.beta_1) * g;
        *v = s.beta_2 * *v + (1.0 - s.beta_2) * (g * g);
        let update = if TEXTBOOK {
            (*m / c.first) / ((*v / c.second).sqrt() + s.epsilon)
        } else {
            *m * c.scale / (v.sqrt() + c.scaled_epsilon)
        };
        *p = if DECAY { *p * s.keep } else { *p } - update * s.lr;
    }
}

impl AdamStep {
    fn corrections(&self) -> Corrections {
        let time = self.time as i32;
        let (first, second) = (1.0 - self.beta_1.powi(time), 1.0 - self.beta_2.powi(time));
        Corrections {
            first,
            second,
            scale: second.sqrt() / first,
            scaled_epsilon: self.epsilon * second.sqrt(),
        }
    }

    /// Updates `param`, `m` and `v` in place with the gradient `grad`; where `previous` is
    /// given, the parameter is read from it and `param` only written.
    pub fn apply(
        &self,
        param: &mut [f32],
        previous: Option<&[f32]>,
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        let n = param.len();
        assert!(
            grad.len() == n
                && m.len() == n
                && v.len() == n
                && previous.is_none_or(|p| p.len() == n),
            "Adam step on tensors of different lengths"
        );
        let corrections = self.corrections();
        let chunk = match (self.l2 != 0.0, self.keep != 1.0, self.textbook_corrections) {
            (false, false, false) => update_chunk::<false, false, false>,
            (false, false, true) => update_chunk::<false, false, true>,
            (false, true, false) => update_chunk::<false, true, false>,
            (false, true, true) => update_chunk::<false, true, true>,
            (true, false, false) => update_chunk::<true, false, false>,
            (true, false, true) => update_chunk::<true, false, true>,
            (true, true, false) => update_chunk::<true, true, false>,
            (true, true, true) => update_chunk::<true, true, true>,
        };
        param
            .par_chunks_mut(ELEMENTS_PER_TASK)
            .enumerate()
            .zip(grad.par_chunks(ELEMENTS_PER_TASK))
            .zip(m.par_chunks_mut(ELEMENTS_PER_TASK))
            .zip(v.par_chunks_mut(ELEMENTS_PER_TASK))
            .for_each(|((((task, p), g), m), v)| {
                if let Some(previous) = previous {
                    // One task's chunk stays in cache between this copy and the update.
                    p.copy_from_slice(&previous[task * ELEMENTS_PER_TASK..][..p.len()]);
                }
                chunk((self, &corrections), p, g, m, v);
            });
    }
}

/// Whether `t` owns its whole f32 storage, laid out contiguously from its start, so that
/// writing to it changes no other tensor.
fn writable(t: &FlexTensor) -> bool {
    t.is_unique()
        && t.as_slice::<f32>()
            .is_some_and(|s| s.len() == t.storage::<f32>().len())
}

/// `t` itself where [`writable`], else a copy.
fn owned(t: FlexTensor) -> FlexTensor {
    if writable(&t) { t } else { t.to_contiguous() }
}

#[backend_extension(Flex)]
pub trait FusedAdam: Backend {
    /// One Adam step: returns the parameter and the two moments, updated.
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl FusedAdam for Flex {
    fn adam_step(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let grad = contiguous(grad);
        let grad_values = values(&grad);
        let (mut m, mut v) = (owned(moment_1), owned(moment_2));
        // The weights are often still shared with the autodiff graph of the step that computed
        // the gradient: then the update writes to a new tensor rather than copy and overwrite.
        let param = if writable(&param) {
            let mut param = param;
            step.apply(
                param.storage_mut(),
                None,
                grad_values,
                m.storage_mut(),
                v.storage_mut(),
            );
            param
        } else {
            let previous = contiguous(param);
            let mut param = FlexTensor::empty(previous.layout().shape().clone(), DType::F32);
            step.apply(
                param.storage_mut(),
                Some(values(&previous)),
                grad_values,
                m.storage_mut(),
                v.storage_mut(),
            );
            param
        };
        (param, m, v)
    }
}

/// Whether the fused step runs on `t` (`AEKIT_ADAM=burn` selects burn's optimiser).
fn applies<const D: usize>(t: &Tensor<D>) -> bool {
    static BURN_CHOSEN: OnceLock<bool> = OnceLock::new();
    own_cpu_kernel(t.dtype(), t.device(), &BURN_CHOSEN, "AEKIT_ADAM")
}

/// Adam (`l2` weight decay) or AdamW (decoupled), fused on the CPU, burn's elsewhere.
#[derive(Clone)]
pub struct FusedAdamOptimizer {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    decoupled: bool,
    burn_adam: Adam,
    burn_adamw: AdamW,
}

impl FusedAdamOptimizer {
    /// Adam with an L2 penalty `weight_decay` added to the gradient (PyTorch's `Adam`).
    pub fn adam(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        Self::new(beta_1, beta_2, epsilon, weight_decay, false)
    }

    /// Adam with decoupled weight decay (PyTorch's `AdamW`).
    pub fn adamw(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        Self::new(beta_1, beta_2, epsilon, weight_decay, true)
    }

    fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32, decoupled: bool) -> Self {
        let l2 = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay));
        FusedAdamOptimizer {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            decoupled,
            burn_adam: AdamConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .with_weight_decay(l2)
                .build(),
            burn_adamw: AdamWConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .with_weight_decay(weight_decay)
                .build(),
        }
    }

    fn burn_step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        if self.decoupled {
            let state = state.map(|s| AdamWState::new(s.momentum));
            let (tensor, state) = self.burn_adamw.step(lr, tensor, grad, state);
            (tensor, state.map(|s| AdamState::new(s.momentum)))
        } else {
            self.burn_adam.step(lr, tensor, grad, state)
        }
    }
}

impl Optimizer for FusedAdamOptimizer {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let amsgrad = state
            .as_ref()
            .is_some_and(|s| s.momentum.max_moment_2.is_some());
        if amsgrad || !applies(&tensor) || !applies(&grad) {
            return self.burn_step(lr, tensor, grad, state);
        }
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let step = AdamStep {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            time,
            lr: lr as f32,
            epsilon: self.epsilon,
            l2: if self.decoupled {
                0.0
            } else {
                self.weight_decay
            },
            // In f64 and then rounded, as burn does, so that both give the same weights.
            keep: if self.decoupled {
                (1.0 - lr * self.weight_decay as f64) as f32
            } else {
                1.0
            },
            textbook_corrections: self.decoupled,
        };
        let (p, m, v) = <Dispatch as FusedAdam>::adam_step(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            step,
        );
        let (p, m, v) = (
            Tensor::from_dispatch(p),
            Tensor::from_dispatch(m),
            Tensor::from_dispatch(v),
        );
        let momentum = AdaptiveMomentumState::new(time, m, v);
        (p, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    fn normal<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
        let device = Device::flex();
        device.seed(seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device)
    }

    fn data<const D: usize>(t: &Tensor<D>) -> TensorData {
        t.clone().into_data()
    }

    /// Four steps of the fused optimiser and of burn's, from the same parameter and gradients,
    /// on a tensor larger than one parallel task and on one smaller.
    fn assert_same_as_burn(optimizer: &FusedAdamOptimizer) {
        fn run<const D: usize>(optimizer: &FusedAdamOptimizer, shape: [usize; D]) {
            let start = normal(shape, 1);
            let start_data = data(&start);
            let (mut fused, mut fused_state) = (start.clone(), None);
            let (mut burn, mut burn_state) = (start.clone(), None);
            for step in 0..4 {
                let grad = normal(shape, 10 + step);
                let lr = 1e-2 / (step + 1) as f64;
                (fused, fused_state) = optimizer.step(lr, fused, grad.clone(), fused_state);
                (burn, burn_state) = optimizer.burn_step(lr, burn, grad, burn_state);
            }
            let (fused_state, burn_state) = (fused_state.unwrap(), burn_state.unwrap());
            assert_eq!(data(&fused), data(&burn), "parameters, shape {shape:?}");
            let (f, b) = (&fused_state.momentum, &burn_state.momentum);
            assert_eq!(f.time, b.time);
            assert_eq!(data(&f.moment_1), data(&b.moment_1), "first moment");
            assert_eq!(data(&f.moment_2), data(&b.moment_2), "second moment");
            assert_ne!(data(&fused), start_data, "the parameter moved");
            assert_eq!(
                data(&start),
                start_data,
                "a shared tensor is left as it was"
            );
        }
        run(optimizer, [3, 20_011]);
        run(optimizer, [37]);
    }

    #[test]
    fn adam_equals_burns_bit_for_bit() {
        assert_same_as_burn(&FusedAdamOptimizer::adam(0.9, 0.999, 1e-8, 0.0));
    }

    #[test]
    fn adam_with_l2_penalty_equals_burns_bit_for_bit() {
        assert_same_as_burn(&FusedAdamOptimizer::adam(0.8, 0.99, 1e-6, 0.05));
    }

    #[test]
    fn adamw_equals_burns_bit_for_bit() {
        assert_same_as_burn(&FusedAdamOptimizer::adamw(0.9, 0.999, 1e-8, 0.1));
    }

    #[test]
    fn first_step_moves_each_weight_by_the_learning_rate() {
        // Adam's first update is lr·g/(|g| + ε′) ≈ lr·sign(g), a closed form independent of burn.
        let optimizer = FusedAdamOptimizer::adam(0.9, 0.999, 1e-8, 0.0);
        let start = normal([1000], 3);
        let grad = normal([1000], 4);
        let (moved, _) = optimizer.step(1e-3, start.clone(), grad.clone(), None);
        let delta = (start - moved).into_data().try_to_vec::<f32>().unwrap();
        let grad = grad.into_data().try_to_vec::<f32>().unwrap();
        for (d, g) in delta.iter().zip(&grad) {
            // Rounding of parameters of size ≈ 4 is 2.4e-7; ε′ adds lr·ε/|g|.
            let bound = 5e-7 + 1e-11 / g.abs();
            assert!(
                (d - 1e-3 * g.signum()).abs() < bound,
                "moved {d} for gradient {g}"
            );
        }
    }
}
