//! Reconstruction error measures, accumulated in f64 on the host.

use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::model::{ReconLoss, loss::per_sample_host};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: u32,
    pub name: String,
    pub samples: usize,
    pub mse_per_pixel: f64,
    pub sse_per_image: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconMetrics {
    pub samples: usize,
    pub features: usize,
    /// Mean squared error per element (pixel).
    pub mse_per_pixel: f64,
    /// Squared error summed over a sample, averaged over samples (Hinton & Salakhutdinov 2006).
    pub sse_per_image: f64,
    /// Mean absolute error per element.
    pub mae_per_pixel: f64,
    /// Binary cross-entropy per element, when every target lies in [0, 1].
    pub bce_per_pixel: Option<f64>,
    /// Per-class breakdown, when labels are known.
    pub per_class: Vec<ClassMetrics>,
}

/// Compares `recon` with `original` row by row.
pub fn reconstruction_metrics(
    original: &Matrix,
    recon: &Matrix,
    labels: Option<&[u32]>,
    class_names: Option<&[String]>,
) -> ReconMetrics {
    assert_eq!((original.rows, original.cols), (recon.rows, recon.cols));
    let n = original.rows;
    let d = original.cols;
    let unit = original.data.iter().all(|v| (0.0..=1.0).contains(v));
    let mut sse = vec![0f64; n];
    let (mut abs, mut bce) = (0f64, 0f64);
    for (i, s) in sse.iter_mut().enumerate() {
        let (o, r) = (original.row(i), recon.row(i));
        *s = per_sample_host(ReconLoss::Mse, r, o);
        abs += per_sample_host(ReconLoss::L1, r, o);
        if unit {
            bce += per_sample_host(ReconLoss::Bce, r, o);
        }
    }
    let total_sse: f64 = sse.iter().sum();
    let elements = (n * d).max(1) as f64;
    let per_class = match labels {
        None => Vec::new(),
        Some(labels) => {
            let k = labels.iter().max().map_or(0, |&m| m as usize + 1);
            let mut sums = vec![(0usize, 0f64); k];
            for (i, &l) in labels.iter().enumerate() {
                sums[l as usize].0 += 1;
                sums[l as usize].1 += sse[i];
            }
            sums.iter()
                .enumerate()
                .filter(|(_, (c, _))| *c > 0)
                .map(|(l, &(c, s))| ClassMetrics {
                    label: l as u32,
                    name: class_names
                        .and_then(|names| names.get(l).cloned())
                        .unwrap_or_else(|| l.to_string()),
                    samples: c,
                    mse_per_pixel: s / (c * d) as f64,
                    sse_per_image: s / c as f64,
                })
                .collect()
        }
    };
    ReconMetrics {
        samples: n,
        features: d,
        mse_per_pixel: total_sse / elements,
        sse_per_image: total_sse / n.max(1) as f64,
        mae_per_pixel: abs / elements,
        bce_per_pixel: unit.then(|| bce / elements),
        per_class,
    }
}

/// Peak signal-to-noise ratio in dB: `10 log10(peak² / mse)`.
pub fn psnr(mse: f64, peak: f64) -> f64 {
    10.0 * (peak * peak / mse).log10()
}

/// How active the code units are: what sparse autoencoders are judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeStats {
    pub units: usize,
    /// Mean code value over samples and units.
    pub mean_activation: f64,
    /// Mean absolute code value.
    pub mean_abs_activation: f64,
    /// Fraction of code values with |h| < `NEAR_ZERO`.
    pub near_zero_fraction: f64,
    /// Units whose |h| stays below `NEAR_ZERO` on every sample.
    pub dead_units: usize,
}

/// A code value this small counts as inactive.
pub const NEAR_ZERO: f32 = 0.01;

pub fn code_stats(codes: &Matrix) -> CodeStats {
    let n = (codes.rows * codes.cols).max(1) as f64;
    let mut alive = vec![false; codes.cols];
    let (mut sum, mut abs, mut near) = (0f64, 0f64, 0usize);
    for i in 0..codes.rows {
        for (j, &h) in codes.row(i).iter().enumerate() {
            sum += h as f64;
            abs += h.abs() as f64;
            if h.abs() < NEAR_ZERO {
                near += 1;
            } else {
                alive[j] = true;
            }
        }
    }
    CodeStats {
        units: codes.cols,
        mean_activation: sum / n,
        mean_abs_activation: abs / n,
        near_zero_fraction: near as f64 / n,
        dead_units: alive.iter().filter(|a| !**a).count(),
    }
}

/// How a codebook model uses its codebook on a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodebookMetrics {
    pub entries: usize,
    /// Entries taken by at least one position of one sample.
    pub used: usize,
    /// `exp(H)` of the entries' frequencies: the number of equally used entries with the
    /// same entropy (at most `entries`).
    pub perplexity: f64,
}

/// [`CodebookMetrics`] from the `[samples, positions]` indices of a codebook of `entries`.
pub fn codebook_metrics(indices: &Matrix, entries: usize) -> CodebookMetrics {
    let mut counts = vec![0usize; entries];
    for &i in &indices.data {
        if let Some(c) = counts.get_mut(i as usize) {
            *c += 1;
        }
    }
    let total = counts.iter().sum::<usize>().max(1) as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum();
    CodebookMetrics {
        entries,
        used: counts.iter().filter(|&&c| c > 0).count(),
        perplexity: entropy.exp(),
    }
}
