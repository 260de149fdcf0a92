//! Penalties on the code, shared by every variant: L1 activity (sparse autoencoders, as Keras's
//! `activity_regularizer`) and the KL divergence of each unit's mean activation from a target
//! rate (Ng's sparse autoencoder).

use burn::tensor::Tensor;

/// `mean over the batch of Σ_j |h_j|`.
pub fn l1(code: Tensor<2>) -> Tensor<1> {
    code.abs().sum_dim(1).mean()
}

/// `Σ_j KL(ρ ‖ ρ̂_j)` where `ρ̂_j` is unit j's mean activation over the batch; needs codes in
/// (0, 1), i.e. a sigmoid code layer. `ρ̂` is clamped away from 0 and 1 to keep the logs finite.
pub fn kl_sparsity(code: Tensor<2>, rho: f64) -> Tensor<1> {
    let rho_hat = code.mean_dim(0).clamp(1e-6, 1.0 - 1e-6);
    let one_minus = rho_hat.clone().neg().add_scalar(1.0);
    // ρ log ρ - ρ log ρ̂ + (1-ρ) log(1-ρ) - (1-ρ) log(1-ρ̂)
    let constant = rho * rho.ln() + (1.0 - rho) * (1.0 - rho).ln();
    (rho_hat.log().mul_scalar(-rho) + one_minus.log().mul_scalar(-(1.0 - rho)))
        .add_scalar(constant)
        .sum()
}

/// The same on the host, in f64, for tests and reports.
pub fn kl_sparsity_host(mean_activations: &[f64], rho: f64) -> f64 {
    mean_activations
        .iter()
        .map(|&q| {
            let q = q.clamp(1e-6, 1.0 - 1e-6);
            rho * (rho / q).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - q)).ln()
        })
        .sum()
}

/// Contractive penalty `‖∂h/∂x‖²_F` for an encoder that is one linear layer followed by a
/// sigmoid: `Σ_j (h_j (1 - h_j))² Σ_i W_ij²`, exact, averaged over the batch. `weight` is burn's
/// `[in, out]` matrix.
pub fn contractive_sigmoid_layer(code: Tensor<2>, weight: Tensor<2>) -> Tensor<1> {
    let slope = code.clone() * code.neg().add_scalar(1.0);
    let col_norms = (weight.clone() * weight).sum_dim(0); // [1, out]
    (slope.clone() * slope * col_norms).sum_dim(1).mean()
}

/// Unbiased estimate of `‖∂h/∂x‖²_F` for any encoder `encode`, averaged over the batch.
///
/// Why this estimator: burn's autodiff is first-order, so the Jacobian cannot be formed and then
/// differentiated. For `v ~ N(0, I)`, `E‖J v‖² = tr(JᵀJ) = ‖J‖²_F` (Hutchinson), and `J v` is
/// the directional derivative, which a central difference `(h(x + εv) - h(x - εv)) / 2ε` gives
/// to O(ε²) using forward passes only, so the estimate stays differentiable with respect to the
/// weights. `directions` holds one `[batch, in]` direction per projection.
pub fn contractive_estimate(
    encode: impl Fn(Tensor<2>) -> Tensor<2>,
    x: Tensor<2>,
    directions: &[Tensor<2>],
    eps: f64,
) -> Tensor<1> {
    let k = directions.len().max(1) as f64;
    let mut total: Option<Tensor<1>> = None;
    for v in directions {
        let step = v.clone().mul_scalar(eps);
        let jv =
            (encode(x.clone() + step.clone()) - encode(x.clone() - step)).div_scalar(2.0 * eps);
        let sq = (jv.clone() * jv).sum_dim(1).mean();
        total = Some(match total {
            Some(t) => t + sq,
            None => sq,
        });
    }
    total.expect("at least one direction").div_scalar(k)
}

/// A kernel on codes for the maximum mean discrepancy.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    Default,
)]
#[serde(rename_all = "lowercase")]
pub enum MmdKernel {
    /// Inverse multiquadratic `C / (C + ‖x − y‖²)`, heavy-tailed (the WAE paper's choice).
    #[default]
    Imq,
    /// Gaussian `exp(−‖x − y‖² / C)`.
    Rbf,
}

/// Unbiased estimate of MMD²(P, Q) from rows `x` ~ P and `y` ~ Q (same count n ≥ 2), with
/// `kernel` at scale `c`: the U-statistic `mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j)
/// − 2 mean_{i,j} k(x_i, y_j)`. Zero in expectation when P = Q.
pub fn mmd(x: Tensor<2>, y: Tensor<2>, kernel: MmdKernel, c: f64) -> Tensor<1> {
    let n = x.dims()[0] as f64;
    let k = |a: Tensor<2>, b: Tensor<2>| {
        let a2 = (a.clone() * a.clone()).sum_dim(1);
        let b2 = (b.clone() * b.clone()).sum_dim(1).transpose();
        let d2 = (a2 + b2 - a.matmul(b.transpose()).mul_scalar(2.0)).clamp_min(0.0);
        match kernel {
            MmdKernel::Imq => d2.add_scalar(c).recip().mul_scalar(c),
            MmdKernel::Rbf => d2.div_scalar(c).neg().exp(),
        }
    };
    // The diagonal of k(x, x) is k(0) = 1 for both kernels: taken out of the sums.
    let within = |a: Tensor<2>| {
        k(a.clone(), a)
            .sum()
            .sub_scalar(n)
            .div_scalar(n * (n - 1.0))
    };
    within(x.clone()) + within(y.clone()) - k(x, y).mean().mul_scalar(2.0)
}
