//! Training objectives shared by variants: a deterministic autoencoder's (reconstruction plus
//! the penalties of [`SharedConfig`](crate::model::SharedConfig)) and a Gaussian encoder's negative
//! ELBO.

use burn::tensor::{Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::model::layers::{bernoulli_mask, normal_tensor};
use crate::model::loss::Likelihood;
use crate::model::variant::{Batch, StepContext};
use crate::model::{ModelConfig, Network, loss, penalty};

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
    autoencoder_with_code(net, batch, cx).0
}

/// Whether [`autoencoder`]'s objective under `config` is a mean over rows (see
/// [`Variant::rows_independent`](crate::model::Variant::rows_independent)): every shared term
/// is, except the sparsity target's KL, which is on the batch's mean activation.
pub fn autoencoder_rows_independent(config: &ModelConfig) -> bool {
    config.shared().sparsity_target.is_none()
}

/// [`autoencoder`] and the batch's code, for variants that add terms on it.
pub fn autoencoder_with_code(
    net: &Network,
    batch: Batch,
    cx: &mut StepContext,
) -> (LossTerms, Tensor<2>) {
    let Batch { input, target, .. } = batch;
    let [_, dim] = target.dims();
    let shared = cx.config.shared();
    let contraction = shared.contractive.filter(|&l| l > 0.0).map(|lambda| {
        let k = shared.contractive_projections.unwrap_or(1);
        net.jacobian_frobenius_sq(input.clone(), k, cx.rng)
            .mul_scalar(lambda)
    });
    let residual = shared.residual == Some(true);
    let input_for_skip = residual.then(|| input.clone());
    let code = net.encode_training(input, cx.rng);
    let decoder_input = match shared.hidden_noise {
        Some(c) => corrupt_hidden(code.clone(), c, cx.rng),
        None => code.clone(),
    };
    let mut logits = net.decode_logits_training(decoder_input, cx.rng);
    if let Some(x) = input_for_skip {
        logits = logits + net.skip(x);
    }
    let recon = loss::per_sample(
        cx.config.likelihood(),
        net.output_activation(),
        logits,
        target,
    )
    .mean()
    .div_scalar(dim as f64);
    let mut total = recon.clone();
    if let Some(l) = shared.code_l1.filter(|&l| l > 0.0) {
        total = total + penalty::l1(code.clone()).mul_scalar(l);
    }
    if let Some(rho) = shared.sparsity_target {
        let beta = shared.sparsity_weight.unwrap_or(1.0);
        total = total + penalty::kl_sparsity(code.clone(), rho).mul_scalar(beta);
    }
    if let Some(c) = contraction {
        total = total + c;
    }
    let terms = LossTerms {
        total,
        recon,
        kl: None,
    };
    (terms, code)
}

/// How the KL term of a negative ELBO enters the objective: `weight · KL`, or, with a
/// capacity C (Burgess et al. 2018, in nats per sample), `weight · |KL − C|`, which lets the
/// KL grow to C and no further.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlPressure {
    pub weight: f64,
    pub capacity: Option<f64>,
}

/// A Gaussian encoder's objective per element, from its posterior `(mu, logvar)` on the
/// batch: reconstruction of one posterior sample plus the KL to N(0, I) under `pressure`.
pub fn negative_elbo(
    net: &Network,
    posterior: (Tensor<2>, Tensor<2>),
    target: Tensor<2>,
    cx: &mut StepContext,
    pressure: KlPressure,
) -> LossTerms {
    negative_elbo_with_sample(net, posterior, target, None, cx, pressure).0
}

/// [`negative_elbo`] and the posterior sample it decoded, for variants that add terms on it;
/// a conditional variant's decoder also sees `condition` (see [`Network::conditioned_code`]).
pub fn negative_elbo_with_sample(
    net: &Network,
    posterior: (Tensor<2>, Tensor<2>),
    target: Tensor<2>,
    condition: Option<Tensor<2>>,
    cx: &mut StepContext,
    pressure: KlPressure,
) -> (LossTerms, Tensor<2>) {
    let [_, dim] = target.dims();
    let (recon, kl, z) = sampled_elbo_terms(
        net,
        posterior,
        target,
        condition,
        cx.config.likelihood(),
        cx.rng,
    );
    let recon = recon.mean().div_scalar(dim as f64);
    let kl = kl.mean().div_scalar(dim as f64);
    let pull = match pressure.capacity {
        Some(c) => kl.clone().sub_scalar(c / dim as f64).abs(),
        None => kl.clone(),
    };
    let terms = LossTerms {
        total: recon.clone() + pull.mul_scalar(pressure.weight),
        recon,
        kl: Some(kl),
    };
    (terms, z)
}

/// The two parts of the log importance weights `log p(x|z) + log p(z) − log q(z|x)` of `k`
/// posterior draws per sample, each `[k, n]` (draw-major).
pub struct ImportanceWeights {
    /// `log p(x|z)` up to the likelihood's normalising constant: minus the reconstruction loss
    /// (exact for binary cross-entropy; see [`ReconLoss::log_normaliser`]).
    pub log_likelihood: Tensor<2>,
    /// `log p(z) − log q(z|x)` under the prior N(0, I).
    pub log_prior_ratio: Tensor<2>,
}

impl ImportanceWeights {
    /// `log_likelihood + prior_weight · log_prior_ratio`: the log weights (`prior_weight` 1),
    /// or a beta-weighted version for training.
    pub fn log_weights(&self, prior_weight: f64) -> Tensor<2> {
        self.log_likelihood.clone() + self.log_prior_ratio.clone().mul_scalar(prior_weight)
    }
}

/// Draws `k` reparameterised samples z ~ q(z|x) for every row of the posterior `(mu, logvar)`
/// and returns the parts of their log importance weights against `target` (decoded with the
/// rows' `condition` for a conditional network).
pub fn importance_weights(
    net: &Network,
    (mu, logvar): (Tensor<2>, Tensor<2>),
    target: Tensor<2>,
    condition: Option<Tensor<2>>,
    loss: Likelihood<'_>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> ImportanceWeights {
    let [n, l] = mu.dims();
    let eps = normal_tensor(n * k, l, rng, &mu.device());
    let logvar = logvar.repeat_dim(0, k);
    let z = reparameterise(mu.repeat_dim(0, k), logvar.clone(), eps.clone());
    let condition = condition.map(|c| c.repeat_dim(0, k));
    let logits = net.decode_logits(Network::conditioned_code(z.clone(), condition));
    let log_likelihood = loss::per_sample(loss, net.output_activation(), logits, target).neg();
    // log N(z; 0, I) − log N(z; mu, sigma²) = ½ Σ (eps² − z² + logvar): the 2π terms cancel.
    let log_prior_ratio = (eps.clone() * eps - z.clone() * z + logvar)
        .sum_dim(1)
        .squeeze_dim::<1>(1)
        .mul_scalar(0.5);
    ImportanceWeights {
        log_likelihood: log_likelihood.reshape([k, n]),
        log_prior_ratio: log_prior_ratio.reshape([k, n]),
    }
}

/// `log(mean(exp(a)))` down the first dimension of `[k, n]`, computed stably: the maximum is
/// taken out first (detached: the identity holds for any shift, so no gradient flows there).
pub fn log_mean_exp(a: Tensor<2>) -> Tensor<1> {
    let shift = a.clone().max_dim(0).detach();
    ((a - shift.clone()).exp().mean_dim(0).log() + shift).squeeze_dim(0)
}

/// Per-sample reconstruction loss (summed over features) of one posterior sample, and
/// per-sample KL: the two terms of the negative ELBO. `rng` draws eps. `None` when the
/// network's encoder is deterministic.
pub fn elbo_terms(
    net: &Network,
    x: Tensor<2>,
    target: Tensor<2>,
    loss: Likelihood<'_>,
    rng: &mut ChaCha8Rng,
) -> Option<(Tensor<1>, Tensor<1>)> {
    let condition = net.condition_of(&x);
    let posterior = net.variant().posterior(&net.layers, x)?;
    let (recon, kl, _) = sampled_elbo_terms(net, posterior, target, condition, loss, rng);
    Some((recon, kl))
}

pub(crate) fn sampled_elbo_terms(
    net: &Network,
    (mu, logvar): (Tensor<2>, Tensor<2>),
    target: Tensor<2>,
    condition: Option<Tensor<2>>,
    loss: Likelihood<'_>,
    rng: &mut ChaCha8Rng,
) -> (Tensor<1>, Tensor<1>, Tensor<2>) {
    let [n, l] = mu.dims();
    let eps = normal_tensor(n, l, rng, &mu.device());
    let z = reparameterise(mu.clone(), logvar.clone(), eps);
    let logits = net.decode_logits(Network::conditioned_code(z.clone(), condition));
    let recon = loss::per_sample(loss, net.output_activation(), logits, target);
    (recon, kl_per_sample(mu, logvar), z)
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
    projected_jacobian_sq(|t| net.encode(t), x, projections, CONTRACTIVE_EPS, rng)
}

/// [`penalty::contractive_estimate`] of any function `f` at the rows of `x`, with
/// `projections` (at least one) standard normal directions drawn from `rng` and central
/// differences of step `eps`.
pub fn projected_jacobian_sq(
    f: impl Fn(Tensor<2>) -> Tensor<2>,
    x: Tensor<2>,
    projections: usize,
    eps: f64,
    rng: &mut ChaCha8Rng,
) -> Tensor<1> {
    let [n, d] = x.dims();
    let device = x.device();
    let directions: Vec<Tensor<2>> = (0..projections.max(1))
        .map(|_| normal_tensor(n, d, rng, &device))
        .collect();
    penalty::contractive_estimate(f, x, &directions, eps)
}

/// Training-time corruption of hidden activations: additive Gaussian noise, or masking (each
/// unit zeroed with probability p, survivors not rescaled, as masking noise on inputs).
fn corrupt_hidden(h: Tensor<2>, c: crate::data::Corruption, rng: &mut ChaCha8Rng) -> Tensor<2> {
    let [n, d] = h.dims();
    let device = h.device();
    match c {
        crate::data::Corruption::Gaussian { sigma } => {
            h + normal_tensor(n, d, rng, &device).mul_scalar(sigma)
        }
        crate::data::Corruption::Masking { p } => h * bernoulli_mask(n, d, p, 1.0, rng, &device),
        crate::data::Corruption::SaltPepper { .. } => h,
    }
}

/// How log q(z), the aggregate posterior's density at a batch's sample, is estimated from the
/// batch (Chen et al. 2018, appendix C).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum AggregateEstimator {
    /// Minibatch stratified sampling: the batch's other rows weighted as a stratified sample
    /// of the data set, the sample's own row by 1/N; consistent at any batch size.
    #[default]
    Mss,
    /// Minibatch weighted sampling: every row weighted 1/(N·M); biased (it under-weights
    /// the sample's own row by a factor M), kept to compare with the paper.
    Mws,
}

/// The KL term of a batch split three ways (Chen et al. 2018): the index-code mutual
/// information I(x; z) = E[log q(z|x) − log q(z)], the total correlation
/// KL(q(z) ‖ Π_d q(z_d)) and the dimension-wise KL Σ_d KL(q(z_d) ‖ p(z_d)), each a batch mean
/// in nats per sample. Their sum is E[log q(z|x) − log p(z)] whatever the estimator.
pub struct KlDecomposition {
    pub mutual_information: Tensor<1>,
    pub total_correlation: Tensor<1>,
    pub dimension_wise_kl: Tensor<1>,
}

/// [`KlDecomposition`] of the posterior samples `z` (row i drawn from q(z|x_i) =
/// N(mu_i, exp(logvar_i))), with the batch standing for a data set of `dataset_size` samples
/// and q(z) estimated by `estimator`; the prior is N(0, I).
pub fn kl_decomposition(
    z: Tensor<2>,
    (mu, logvar): (Tensor<2>, Tensor<2>),
    dataset_size: usize,
    estimator: AggregateEstimator,
) -> KlDecomposition {
    let [m, d] = z.dims();
    let device = z.device();
    let ln_2pi = (2.0 * std::f64::consts::PI).ln();
    // log N(z_i,k; mu_j,k, exp(logvar_j,k)) for every sample i, data row j and dimension k.
    let zi = z.clone().unsqueeze_dim::<3>(1).repeat_dim(1, m);
    let muj = mu.clone().unsqueeze_dim::<3>(0).repeat_dim(0, m);
    let lvj = logvar.clone().unsqueeze_dim::<3>(0).repeat_dim(0, m);
    let diff = zi - muj;
    let log_q = (diff.clone() * diff * lvj.clone().neg().exp() + lvj)
        .add_scalar(ln_2pi)
        .mul_scalar(-0.5);
    let log_w = Tensor::<3>::from_data(
        TensorData::new(
            log_importance_weights(m, dataset_size, estimator),
            [m, m, 1],
        ),
        &device,
    );
    let log_qz = log_sum_exp_rows(log_q.clone().sum_dim(2) + log_w.clone()).reshape([m]);
    let log_prod = log_sum_exp_rows(log_q + log_w.repeat_dim(2, d))
        .sum_dim(2)
        .reshape([m]);
    let diff = z.clone() - mu;
    let log_qz_x = (diff.clone() * diff * logvar.clone().neg().exp() + logvar)
        .add_scalar(ln_2pi)
        .sum_dim(1)
        .reshape([m])
        .mul_scalar(-0.5);
    let log_pz = (z.clone() * z)
        .add_scalar(ln_2pi)
        .sum_dim(1)
        .reshape([m])
        .mul_scalar(-0.5);
    KlDecomposition {
        mutual_information: (log_qz_x - log_qz.clone()).mean(),
        total_correlation: (log_qz - log_prod.clone()).mean(),
        dimension_wise_kl: (log_prod - log_pz).mean(),
    }
}

/// `log Σ_j exp(a[i, j, k])` of a `[m, m, k]` tensor, stably, as `[m, 1, k]`.
fn log_sum_exp_rows(a: Tensor<3>) -> Tensor<3> {
    let [_, m, _] = a.dims();
    let shift = a.clone().max_dim(1).detach();
    (a - shift.clone().repeat_dim(1, m)).exp().sum_dim(1).log() + shift
}

/// `log w[i, j]`, row-major `[m, m]`: the weight of data row j in the estimate of q(z_i).
fn log_importance_weights(m: usize, n: usize, estimator: AggregateEstimator) -> Vec<f32> {
    let (mf, nf) = (m as f64, n.max(m) as f64);
    match estimator {
        AggregateEstimator::Mws => vec![-(nf * mf).ln() as f32; m * m],
        AggregateEstimator::Mss if m < 2 => vec![0.0; m * m],
        AggregateEstimator::Mss => {
            // Chen et al.'s stratification: row i's own term 1/N, one other row (N − M')/(N·M')
            // for the strata the batch does not cover, the rest 1/M', with M' = M − 1.
            let others = mf - 1.0;
            let strat = (nf - others) / (nf * others);
            let mut w = vec![(1.0 / others).ln() as f32; m * m];
            for i in 0..m {
                w[i * m + i] = (1.0 / nf).ln() as f32;
                w[i * m + (i + 1) % m] = strat.ln() as f32;
            }
            w
        }
    }
}
