//! Where generated samples' codes come from: the prior N(0, I) of a VAE-family model, or a
//! density fitted to the training codes after training ("ex-post density estimation", Ghosh
//! et al. 2020; pythae's `GaussianMixtureSampler`), which gives any autoencoder — a
//! deterministic one too — a way to sample.

use std::fmt;
use std::str::FromStr;

use faer::{Mat, Side};
use linfa::traits::Fit;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::data::batch::{rng_for, standard_normal};
use crate::error::{Error, Result};
use crate::model::Autoencoder;

/// Components of `gmm` without a count.
pub const DEFAULT_COMPONENTS: usize = 10;

/// A source of codes to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Sampler {
    /// N(0, I), for models trained towards it.
    #[default]
    Prior,
    /// A Gaussian mixture with full covariances fitted (EM) on the training codes.
    Gmm { components: usize },
}

impl FromStr for Sampler {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "--sampler {s:?}: expected prior, gmm or gmm:K (K components, 1 to 1000)"
            ))
        };
        match s.split_once(':') {
            None if s == "prior" => Ok(Sampler::Prior),
            None if s == "gmm" => Ok(Sampler::Gmm {
                components: DEFAULT_COMPONENTS,
            }),
            Some(("gmm", k)) => match k.parse::<usize>() {
                Ok(components @ 1..=1000) => Ok(Sampler::Gmm { components }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampler::Prior => f.write_str("prior"),
            Sampler::Gmm { components } => write!(f, "gmm:{components}"),
        }
    }
}

impl Sampler {
    /// Whether drawing needs the model's training codes.
    pub fn needs_codes(self) -> bool {
        matches!(self, Sampler::Gmm { .. })
    }
}

/// A Gaussian mixture over codes: weights, means and the Cholesky factors of the covariances.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    pub weights: Vec<f64>,
    /// `[components][dim]`.
    pub means: Vec<Vec<f64>>,
    /// Lower-triangular factors L (Σ = L Lᵀ), `[components][dim × dim]` row-major.
    pub cholesky: Vec<Vec<f64>>,
}

/// Added to the covariances' diagonals while fitting: this fraction of the codes' mean
/// variance plus scikit-learn's absolute 1e-6. Keeps a component positive definite when the
/// codes are degenerate (constant or discrete dimensions, as a VQ-VAE's).
const RELATIVE_COVARIANCE_FLOOR: f64 = 1e-4;
const ABSOLUTE_COVARIANCE_FLOOR: f64 = 1e-6;

impl GaussianMixture {
    /// Fits `components` Gaussians to the rows of `codes` by EM (k-means initialisation,
    /// fixed seed, so the same codes give the same mixture). When EM empties a component
    /// (codes in few tight clusters, e.g. a VQ-VAE's), fewer components are fitted: half as
    /// many each time, down to one, with a warning.
    pub fn fit(codes: &Matrix, components: usize) -> Result<Self> {
        let mut k = components;
        loop {
            match Self::fit_exactly(codes, k) {
                Ok(m) => {
                    if k != components {
                        tracing::warn!(
                            "a mixture of {components} Gaussians left components empty; fitted {k}"
                        );
                    }
                    return Ok(m);
                }
                Err(e) if k == 1 => return Err(e),
                Err(_) => k = (k / 2).max(1),
            }
        }
    }

    fn fit_exactly(codes: &Matrix, components: usize) -> Result<Self> {
        if codes.rows < components.max(2) {
            return Err(Error::invalid(format!(
                "a mixture of {components} Gaussians needs at least {} codes, got {}",
                components.max(2),
                codes.rows
            )));
        }
        let d = codes.cols;
        let x =
            ndarray::Array2::from_shape_fn((codes.rows, d), |(i, j)| codes.data[i * d + j] as f64);
        let mean_var = x.var_axis(ndarray::Axis(0), 1.0).mean().unwrap_or(1.0);
        let gmm = linfa_clustering::GaussianMixtureModel::params(components)
            .reg_covariance(RELATIVE_COVARIANCE_FLOOR * mean_var + ABSOLUTE_COVARIANCE_FLOOR)
            .max_n_iterations(200)
            .tolerance(1e-4)
            .fit(&linfa::DatasetBase::from(x))
            .map_err(|e| Error::invalid(format!("fitting the Gaussian mixture: {e}")))?;
        let covariances = gmm.covariances();
        let mut cholesky = Vec::with_capacity(components);
        for c in 0..components {
            let cov = Mat::<f64>::from_fn(d, d, |i, j| covariances[[c, i, j]]);
            let llt = cov.llt(Side::Lower).map_err(|_| {
                Error::invalid("a fitted covariance is not positive definite (codes degenerate?)")
            })?;
            let l = llt.L();
            cholesky.push(
                (0..d)
                    .flat_map(|i| (0..d).map(move |j| (i, j)))
                    .map(|(i, j)| if j <= i { l[(i, j)] } else { 0.0 })
                    .collect(),
            );
        }
        Ok(Self {
            weights: gmm.weights().to_vec(),
            means: gmm.means().outer_iter().map(|m| m.to_vec()).collect(),
            cholesky,
        })
    }

    pub fn dim(&self) -> usize {
        self.means.first().map_or(0, Vec::len)
    }

    /// `n` draws: a component by weight, then mean + L·eps.
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Matrix {
        use rand::Rng;
        let d = self.dim();
        let total: f64 = self.weights.iter().sum();
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let mut u = rng.random::<f64>() * total;
            let c = self
                .weights
                .iter()
                .position(|w| {
                    u -= w;
                    u < 0.0
                })
                .unwrap_or(self.weights.len() - 1);
            let eps = standard_normal(d, rng);
            let l = &self.cholesky[c];
            for i in 0..d {
                let dot: f64 = (0..=i).map(|j| l[i * d + j] * eps[j] as f64).sum();
                out.push((self.means[c][i] + dot) as f32);
            }
        }
        Matrix::new(n, d, out).expect("n rows of the mixture's width")
    }
}

/// `n` codes drawn from `sampler` (seeded): from the prior, or from a mixture fitted to
/// `train_codes` (the model's codes of its training data, needed for `gmm`).
pub fn sample_codes(
    model: &Autoencoder,
    sampler: Sampler,
    train_codes: Option<&Matrix>,
    n: usize,
    seed: u64,
) -> Result<Matrix> {
    match sampler {
        Sampler::Prior if !model.capabilities().prior => Err(Error::invalid(format!(
            "sampling from the prior needs a VAE or another model trained towards a prior (e.g. --model vae or wae); this is a {} model, and --sampler gmm fits a Gaussian mixture to its codes instead",
            model.config().kind()
        ))),
        Sampler::Prior => super::prior_codes(model, n, seed),
        Sampler::Gmm { .. } if model.capabilities().codebook => Err(Error::invalid(
            "a codebook model's codes are discrete entries: sampling it needs a prior over its indices (e.g. an autoregressive one), which aekit does not fit yet",
        )),
        Sampler::Gmm { components } => {
            let codes = train_codes
                .ok_or_else(|| Error::invalid("the gmm sampler needs the training codes"))?;
            crate::model::fits_in_memory(n, model.input_dim(), "samples")?;
            let gmm = GaussianMixture::fit(codes, components)?;
            Ok(gmm.sample(n, &mut rng_for(seed, 95)))
        }
    }
}

/// `n` samples of `run`'s model: codes from `sampler` (for `gmm`, fitted to the codes of the
/// run's training data, loaded here), decoded.
pub fn sample_run(run: &crate::run::Run, sampler: Sampler, n: usize, seed: u64) -> Result<Matrix> {
    let train = if sampler.needs_codes() {
        Some(run.load_data(None, crate::data::Split::Train)?)
    } else {
        None
    };
    sample_decoded(&run.model, sampler, train.as_ref(), n, seed)
}

/// [`sample_run`] with the training data (preprocessed) already at hand; `None` will do for
/// the prior. A conditional model decodes under the class it was given
/// ([`Autoencoder::with_class`]), or else under every class in turn.
pub fn sample_decoded(
    model: &Autoencoder,
    sampler: Sampler,
    train: Option<&crate::data::Dataset>,
    n: usize,
    seed: u64,
) -> Result<Matrix> {
    let codes = match train {
        Some(t) if sampler.needs_codes() => Some(model.encode_given(&t.x, t.labels.as_deref())?),
        _ => None,
    };
    let codes = sample_codes(model, sampler, codes.as_ref(), n, seed)?;
    model.decode_given(&codes, model.generation_labels(n).as_deref())
}
