//! Training objectives shared by variants: a deterministic autoencoder's (reconstruction plus
//! the penalties of [`SharedConfig`](crate::model::SharedConfig)) and a Gaussian encoder's negative
//! ELBO.

use burn::tensor::{Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::model::layers::normal_tensor;
use crate::model::variant::{Batch, StepContext};
use crate::model::{Network, ReconLoss, loss, penalty};

/// Step of the central differences in the contractive estimate, on inputs of unit scale.
const CONTRACTIVE_EPS: f64 = 1e-2;

/// The terms of a training objective, each a scalar tensor. Penalties are added to the
/// reconstruction loss per element (pixel), as Keras adds activity regularisers to its mean loss.
pub struct LossTerms {
    pub total: Tensor<1>,
    pub recon: Tensor<1>,
    /// The KL term of a stochastic encoder, per element (unweighted).
    pub kl: Option<Tensor<1>>,
}

/// A deterministic autoencoder's objective: reconstruction loss per element plus the config's
/// penalties on the code (L1, KL sparsity, contraction), with the code corrupted before the
/// decoder for hidden-noise training and the input added for residual models.
pub fn autoencoder(net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
    let Batch { input, target } = batch;
    let [_, dim] = target.dims();
    let shared = cx.config.shared();
    let contraction = shared.contractive.filter(|&l| l > 0.0).map(|lambda| {
        let k = shared.contractive_projections.unwrap_or(1);
        net.jacobian_frobenius_sq(input.clone(), k, cx.rng)
            .mul_scalar(lambda)
    });
    let residual = shared.residual == Some(true);
    let input_for_skip = residual.then(|| input.clone());
    let code = net.encode(input);
    let decoder_input = match shared.hidden_noise {
        Some(c) => corrupt_hidden(code.clone(), c, cx.rng),
        None => code.clone(),
    };
    let mut logits = net.decode_logits(decoder_input);
    if let Some(x) = input_for_skip {
        logits = logits + net.skip(x);
    }
    let recon = loss::per_sample(cx.config.loss(), net.output_activation(), logits, target)
        .mean()
        .div_scalar(dim as f64);
    let mut total = recon.clone();
    if let Some(l) = shared.code_l1.filter(|&l| l > 0.0) {
        total = total + penalty::l1(code.clone()).mul_scalar(l);
    }
    if let Some(rho) = shared.sparsity_target {
        let beta = shared.sparsity_weight.unwrap_or(1.0);
        total = total + penalty::kl_sparsity(code, rho).mul_scalar(beta);
    }
    if let Some(c) = contraction {
        total = total + c;
    }
    LossTerms {
        total,
        recon,
        kl: None,
    }
}

/// A Gaussian encoder's objective per element, from its posterior `(mu, logvar)` on the
/// batch: reconstruction of one posterior sample plus `kl_weight` times the KL to N(0, I).
pub fn negative_elbo(
    net: &Network,
    posterior: (Tensor<2>, Tensor<2>),
    target: Tensor<2>,
    cx: &mut StepContext,
    kl_weight: f64,
) -> LossTerms {
    let [_, dim] = target.dims();
    let (recon, kl) = sampled_elbo_terms(net, posterior, target, cx.config.loss(), cx.rng);
    let recon = recon.mean().div_scalar(dim as f64);
    let kl = kl.mean().div_scalar(dim as f64);
    LossTerms {
        total: recon.clone() + kl.clone().mul_scalar(kl_weight),
        recon,
        kl: Some(kl),
    }
}

/// Per-sample reconstruction loss (summed over features) of one posterior sample, and
/// per-sample KL: the two terms of the negative ELBO. `rng` draws eps. `None` when the
/// network's encoder is deterministic.
pub fn elbo_terms(
    net: &Network,
    x: Tensor<2>,
    target: Tensor<2>,
    loss: ReconLoss,
    rng: &mut ChaCha8Rng,
) -> Option<(Tensor<1>, Tensor<1>)> {
    let posterior = net.variant().posterior(&net.layers, x)?;
    Some(sampled_elbo_terms(net, posterior, target, loss, rng))
}

fn sampled_elbo_terms(
    net: &Network,
    (mu, logvar): (Tensor<2>, Tensor<2>),
    target: Tensor<2>,
    loss: ReconLoss,
    rng: &mut ChaCha8Rng,
) -> (Tensor<1>, Tensor<1>) {
    let [n, l] = mu.dims();
    let eps = normal_tensor(n, l, rng, &mu.device());
    let z = reparameterise(mu.clone(), logvar.clone(), eps);
    let recon = loss::per_sample(loss, net.output_activation(), net.decode_logits(z), target);
    (recon, kl_per_sample(mu, logvar))
}

/// `KL(N(mu, exp(logvar)) ‖ N(0, I))` per sample: `-½ Σ (1 + logvar - mu² - exp(logvar))`.
pub fn kl_per_sample(mu: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let inner = logvar.clone().add_scalar(1.0) - mu.clone() * mu - logvar.exp();
    inner.sum_dim(1).squeeze_dim(1).mul_scalar(-0.5)
}

/// `z = mu + exp(logvar / 2) · eps`.
pub fn reparameterise(mu: Tensor<2>, logvar: Tensor<2>, eps: Tensor<2>) -> Tensor<2> {
    mu + logvar.mul_scalar(0.5).exp() * eps
}

/// `‖∂h/∂x‖²_F` averaged over the batch `x`: the variant's closed form where it has one,
/// otherwise the random-projection estimate of [`penalty::contractive_estimate`] with
/// `projections` directions drawn from `rng`.
pub(crate) fn jacobian_frobenius_sq(
    net: &Network,
    x: Tensor<2>,
    projections: usize,
    rng: &mut ChaCha8Rng,
) -> Tensor<1> {
    if let Some(exact) = net
        .variant()
        .contractive_closed_form(&net.layers, x.clone())
    {
        return exact;
    }
    let [n, d] = x.dims();
    let device = x.device();
    let directions: Vec<Tensor<2>> = (0..projections.max(1))
        .map(|_| normal_tensor(n, d, rng, &device))
        .collect();
    penalty::contractive_estimate(|t| net.encode(t), x, &directions, CONTRACTIVE_EPS)
}

/// Training-time corruption of hidden activations: additive Gaussian noise, or masking (each
/// unit zeroed with probability p, survivors not rescaled, as masking noise on inputs).
fn corrupt_hidden(h: Tensor<2>, c: crate::data::Corruption, rng: &mut ChaCha8Rng) -> Tensor<2> {
    use rand::Rng;
    let [n, d] = h.dims();
    let device = h.device();
    match c {
        crate::data::Corruption::Gaussian { sigma } => {
            h + normal_tensor(n, d, rng, &device).mul_scalar(sigma)
        }
        crate::data::Corruption::Masking { p } => {
            let keep: Vec<f32> = (0..n * d)
                .map(|_| if rng.random::<f32>() < p { 0.0 } else { 1.0 })
                .collect();
            h * Tensor::<2>::from_data(TensorData::new(keep, [n, d]), &device)
        }
        crate::data::Corruption::SaltPepper { .. } => h,
    }
}
