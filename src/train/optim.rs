//! Optimisers (burn's) configured with PyTorch's conventions, and global gradient-norm
//! clipping (burn clips each tensor on its own; PyTorch's `clip_grad_norm_` scales all
//! gradients by one factor, which is what users expect).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, RmsPropConfig, SgdConfig};
use burn::tensor::Tensor;

use crate::kernels::adam::FusedAdamOptimizer;
use crate::train::config::{OptimizerKind, TrainConfig};

pub fn build(cfg: &TrainConfig) -> ModuleOptimizer {
    let wd = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    let (beta_1, beta_2, eps) = (cfg.beta1 as f32, cfg.beta2 as f32, cfg.eps as f32);
    match cfg.optimizer {
        OptimizerKind::Adam => {
            FusedAdamOptimizer::adam(beta_1, beta_2, eps, cfg.weight_decay as f32).into()
        }
        OptimizerKind::Adamw => {
            FusedAdamOptimizer::adamw(beta_1, beta_2, eps, cfg.weight_decay as f32).into()
        }
        OptimizerKind::Sgd => {
            let m = cfg.momentum.unwrap_or(0.9);
            let momentum = (m > 0.0).then_some(MomentumConfig {
                momentum: m,
                dampening: 0.0,
                nesterov: cfg.nesterov,
            });
            SgdConfig::new()
                .with_momentum(momentum)
                .with_weight_decay(wd)
                .init()
        }
        OptimizerKind::Rmsprop => RmsPropConfig::new()
            .with_alpha(0.99)
            .with_momentum(cfg.momentum.unwrap_or(0.0) as f32)
            .with_epsilon(eps)
            .with_weight_decay(wd)
            .init(),
    }
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = (g.clone() * g).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Global L2 norm of all gradients of `module`.
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    v.total
        .map_or(0.0, |t| (t.into_scalar::<f32>() as f64).sqrt())
}

/// Scales all gradients so that their global norm is at most `max_norm`; returns the norm
/// before clipping.
pub fn clip_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = grad_norm(module, grads);
    if norm.is_finite() && norm > max_norm {
        let mut s = Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        };
        module.visit(&mut s);
    }
    norm
}
