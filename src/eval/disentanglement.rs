//! Disentanglement metrics from known factors of variation (the built-in shapes know theirs):
//! the mutual information gap (MIG, Chen et al. 2018) and the separated attribute
//! predictability (SAP, Kumar et al. 2018), computed as disentanglement_lib computes them
//! (codes binned into 20 equal-width bins for the mutual information).

use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::error::{Error, Result};

/// Bins per code dimension (and per continuous factor) for the discrete mutual information.
pub const BINS: usize = 20;

/// How well single code dimensions capture single factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisentanglementMetrics {
    pub samples: usize,
    pub factors: Vec<String>,
    /// Mean over factors of the gap between the two code dimensions most informative about
    /// the factor, over the factor's entropy: 1 when each factor lives in one dimension alone.
    pub mig: f64,
    pub mig_per_factor: Vec<f64>,
    /// Mean over factors of the gap between the two code dimensions that predict the factor
    /// best (R² of a linear fit; the correlation ratio η² for a categorical factor).
    pub sap: f64,
    pub sap_per_factor: Vec<f64>,
    /// For each code dimension, the factor it is most informative about and that mutual
    /// information over the factor's entropy.
    pub dimension_factor: Vec<(String, f64)>,
}

/// The discrete values of a column: itself when it has at most [`BINS`] distinct values,
/// otherwise its index among [`BINS`] equal-width bins.
fn discretise(values: &[f32]) -> Vec<usize> {
    let mut distinct: Vec<f32> = values.to_vec();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    if distinct.len() <= BINS {
        return values
            .iter()
            .map(|v| distinct.partition_point(|d| d < v))
            .collect();
    }
    let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
    let width = (hi - lo) / BINS as f32;
    values
        .iter()
        .map(|&v| (((v - lo) / width) as usize).min(BINS - 1))
        .collect()
}

fn column(m: &Matrix, j: usize) -> Vec<f32> {
    (0..m.rows).map(|i| m.row(i)[j]).collect()
}

/// Entropy in nats of discrete values.
fn entropy(a: &[usize]) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for &v in a {
        *counts.entry(v).or_insert(0usize) += 1;
    }
    let n = a.len() as f64;
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// Mutual information in nats of two discrete sequences (the plug-in estimate, as
/// scikit-learn's `mutual_info_score`).
fn mutual_information(a: &[usize], b: &[usize]) -> f64 {
    let mut joint = std::collections::HashMap::new();
    let (mut pa, mut pb) = (
        std::collections::HashMap::new(),
        std::collections::HashMap::new(),
    );
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_insert(0usize) += 1;
        *pa.entry(x).or_insert(0usize) += 1;
        *pb.entry(y).or_insert(0usize) += 1;
    }
    let n = a.len() as f64;
    joint
        .iter()
        .map(|(&(x, y), &c)| {
            let pxy = c as f64 / n;
            pxy * (pxy * n * n / (pa[&x] as f64 * pb[&y] as f64)).ln()
        })
        .sum()
}

/// The share of the variance of `y` that `x` explains: R² of the least-squares line, or, for
/// a categorical `y`, the correlation ratio η² of `x` grouped by `y`'s classes.
fn explained(x: &[f32], y: &[f32], categorical: bool) -> f64 {
    let n = x.len() as f64;
    let mean = |v: &[f32]| v.iter().map(|&a| a as f64).sum::<f64>() / n;
    let (mx, my) = (mean(x), mean(y));
    let sxx: f64 = x.iter().map(|&a| (a as f64 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return 0.0;
    }
    if categorical {
        let mut groups: std::collections::HashMap<i64, (f64, usize)> = Default::default();
        for (&a, &c) in x.iter().zip(y) {
            let g = groups.entry(c as i64).or_insert((0.0, 0));
            g.0 += a as f64;
            g.1 += 1;
        }
        let between: f64 = groups
            .values()
            .map(|&(s, k)| k as f64 * (s / k as f64 - mx).powi(2))
            .sum();
        return between / sxx;
    }
    let syy: f64 = y.iter().map(|&b| (b as f64 - my).powi(2)).sum();
    let sxy: f64 = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| (a as f64 - mx) * (b as f64 - my))
        .sum();
    if syy <= 0.0 {
        0.0
    } else {
        sxy * sxy / (sxx * syy)
    }
}

/// The largest and second largest of `v`.
fn top_two(v: &[f64]) -> (f64, f64) {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    (sorted[0], sorted.get(1).copied().unwrap_or(0.0))
}

/// MIG and SAP of `codes` (one row per sample) against the true `factors` (same rows, one
/// column per factor, named by `names`); `categorical[k]` marks factors whose values are
/// classes rather than quantities.
pub fn disentanglement(
    codes: &Matrix,
    factors: &Matrix,
    names: &[&str],
    categorical: &[bool],
) -> Result<DisentanglementMetrics> {
    if codes.rows != factors.rows || codes.rows < 2 {
        return Err(Error::mismatch(format!(
            "{} codes for {} samples with known factors (at least 2 needed)",
            codes.rows, factors.rows
        )));
    }
    if codes.cols == 0 {
        return Err(Error::invalid(
            "disentanglement needs a code of at least 1 dimension",
        ));
    }
    if names.len() != factors.cols || categorical.len() != factors.cols {
        return Err(Error::invalid("one name and one kind per factor"));
    }
    let binned: Vec<Vec<usize>> = (0..codes.cols)
        .map(|j| discretise(&column(codes, j)))
        .collect();
    let (mut mig, mut sap) = (Vec::new(), Vec::new());
    let mut best = vec![(String::new(), 0.0f64); codes.cols];
    for k in 0..factors.cols {
        let values = column(factors, k);
        let v = discretise(&values);
        let h = entropy(&v);
        let info: Vec<f64> = binned.iter().map(|z| mutual_information(z, &v)).collect();
        let (first, second) = top_two(&info);
        mig.push(if h > 0.0 { (first - second) / h } else { 0.0 });
        for (j, &i) in info.iter().enumerate() {
            let share = if h > 0.0 { i / h } else { 0.0 };
            if share > best[j].1 || best[j].0.is_empty() {
                best[j] = (names[k].to_string(), share);
            }
        }
        let scores: Vec<f64> = (0..codes.cols)
            .map(|j| explained(&column(codes, j), &values, categorical[k]))
            .collect();
        let (first, second) = top_two(&scores);
        sap.push(first - second);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(DisentanglementMetrics {
        samples: codes.rows,
        factors: names.iter().map(|s| s.to_string()).collect(),
        mig: mean(&mig),
        mig_per_factor: mig,
        sap: mean(&sap),
        sap_per_factor: sap,
        dimension_factor: best,
    })
}
