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
