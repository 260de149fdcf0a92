//! Test log-likelihood by importance sampling (Burda et al. 2016, appendix; pythae's
//! `get_nll`): `log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x)` with z_k ~ q(z|x), for
//! models with a Gaussian encoder and a probabilistic decoder. The estimate is a stochastic
//! lower bound of `log p(x)` that tightens as K grows, so the reported negative
//! log-likelihood errs high.

use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::data::batch::rng_for;
use crate::error::{Error, Result};
use crate::model::Autoencoder;
use crate::model::layers::tensor_values;
use crate::model::objective::importance_weights;

/// Decoder rows evaluated in one pass: bounds memory (rows × features floats per tensor)
/// whatever K is.
const DECODER_ROWS_PER_PASS: usize = 16_384;

/// The importance-sampled negative log-likelihood of a data set, in nats per sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NllMetrics {
    /// Importance samples per data sample (K).
    pub importance_samples: usize,
    pub samples: usize,
    /// Mean of `−log p̂(x)` over the data (lower is better).
    pub nll_per_image: f64,
    /// Standard error of that mean over the data's samples.
    pub standard_error: f64,
}

/// `−log p̂(x)` for every row of `x` (preprocessed) with `k` importance samples each, drawn
/// from `seed`; a conditional model's `log p̂(x|y)` given the rows' `labels`. Fails for a
/// model without a Gaussian encoder: a deterministic autoencoder defines no likelihood.
pub fn negative_log_likelihoods(
    model: &Autoencoder,
    x: &Matrix,
    labels: Option<&[u32]>,
    k: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    if !model.capabilities().stochastic_encoder {
        return Err(Error::invalid(format!(
            "a likelihood needs a probabilistic encoder and decoder (e.g. --model vae or iwae); this is a {} model",
            model.config().kind()
        )));
    }
    if k == 0 {
        return Err(Error::invalid("--nll-samples must be at least 1"));
    }
    if model.config().columns().is_some() {
        return Err(Error::invalid(
            "the importance-sampled likelihood is defined for one loss over every feature; a typed table's columns each have their own (score rows with aekit score instead)",
        ));
    }
    let loss = model.config().loss();
    let normaliser = loss.log_normaliser(x.cols);
    let rows_per_pass = (DECODER_ROWS_PER_PASS / k).clamp(1, 256);
    let draws_per_pass = (DECODER_ROWS_PER_PASS / rows_per_pass).clamp(1, k);
    let mut rng = rng_for(seed, 97);
    let mut nll = Vec::with_capacity(x.rows);
    model.for_each_batch(x, labels, rows_per_pass, |net, t, target| {
        let rows = t.dims()[0];
        let condition = net.condition_of(&t);
        let posterior = net
            .variant()
            .posterior(&net.layers, t)
            .expect("a stochastic encoder has a posterior");
        // log Σ exp(w) per row, accumulated over passes in f64 as (max, Σ exp(w − max)).
        let mut acc = vec![(f64::NEG_INFINITY, 0.0f64); rows];
        let mut drawn = 0;
        while drawn < k {
            let draws = draws_per_pass.min(k - drawn);
            let w = importance_weights(
                net,
                posterior.clone(),
                target.clone(),
                condition.clone(),
                loss.into(),
                draws,
                &mut rng,
            )
            .log_weights(1.0);
            let values = tensor_values(w);
            for (j, row) in values.chunks_exact(rows).enumerate() {
                debug_assert!(j < draws);
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = add_log(*a, v as f64);
                }
            }
            drawn += draws;
        }
        nll.extend(
            acc.iter()
                .map(|&(m, s)| -(m + s.ln() - (k as f64).ln() + normaliser)),
        );
        Ok(())
    })?;
    Ok(nll)
}

/// Adds `exp(v)` to a log-sum kept as `(max, Σ exp(w − max))`.
fn add_log((max, sum): (f64, f64), v: f64) -> (f64, f64) {
    if v == f64::NEG_INFINITY {
        (max, sum)
    } else if v <= max {
        (max, sum + (v - max).exp())
    } else {
        (v, sum * (max - v).exp() + 1.0)
    }
}

/// [`negative_log_likelihoods`] summarised.
pub fn importance_sampled_nll(
    model: &Autoencoder,
    x: &Matrix,
    labels: Option<&[u32]>,
    k: usize,
    seed: u64,
) -> Result<NllMetrics> {
    let nll = negative_log_likelihoods(model, x, labels, k, seed)?;
    let n = nll.len().max(1) as f64;
    let mean = nll.iter().sum::<f64>() / n;
    let var = nll.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Ok(NllMetrics {
        importance_samples: k,
        samples: nll.len(),
        nll_per_image: mean,
        standard_error: (var / n).sqrt(),
    })
}
