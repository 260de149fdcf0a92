//! Document retrieval by code similarity (Hinton & Salakhutdinov 2006, Fig. 4): every test
//! document queries all the others by cosine similarity of codes, and precision is read at
//! fixed fractions of the query's class retrieved.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::error::{Error, Result};
use crate::eval::probe::{Distance, k_smallest, map_distances};

/// The paper's recall levels (0.1% to 100%, doubling).
pub const RECALL_LEVELS: [f64; 11] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0,
];

/// Precision at each recall level of one ranking (`relevant[i]`: the i-th retrieved document
/// shares the query's class): to reach recall r of R relevant documents, retrieve until
/// ceil(r·R) of them are found; precision is that number over the documents retrieved.
/// `None` when nothing is relevant.
pub fn precision_at_recall(relevant: &[bool], levels: &[f64]) -> Option<Vec<f64>> {
    let total = relevant.iter().filter(|r| **r).count();
    if total == 0 {
        return None;
    }
    // Position (1-based) at which the k-th relevant document appears.
    let positions: Vec<usize> = relevant
        .iter()
        .enumerate()
        .filter(|(_, r)| **r)
        .map(|(i, _)| i + 1)
        .collect();
    Some(
        levels
            .iter()
            .map(|&r| {
                let needed = ((r * total as f64).ceil() as usize).clamp(1, total);
                needed as f64 / positions[needed - 1] as f64
            })
            .collect(),
    )
}

/// Mean precision at `levels` over all documents of `codes` as queries against all the others
/// (cosine similarity), relevance meaning the same label.
pub fn precision_recall(codes: &Matrix, labels: &[u32], levels: &[f64]) -> Result<Vec<f64>> {
    if labels.len() != codes.rows {
        return Err(Error::mismatch(format!(
            "{} labels for {} documents",
            labels.len(),
            codes.rows
        )));
    }
    let per_query = map_distances(codes, codes, Distance::Cosine, |q, row| {
        let mut order = k_smallest(row, row.len());
        order.retain(|&j| j != q);
        let relevant: Vec<bool> = order.iter().map(|&j| labels[j] == labels[q]).collect();
        precision_at_recall(&relevant, levels)
    })?;
    let answered: Vec<Vec<f64>> = per_query.into_par_iter().flatten().collect();
    if answered.is_empty() {
        return Err(Error::invalid(
            "no document has another of its class to retrieve",
        ));
    }
    let n = answered.len() as f64;
    Ok((0..levels.len())
        .map(|l| answered.iter().map(|p| p[l]).sum::<f64>() / n)
        .collect())
}

/// One precision-recall curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalCurve {
    pub method: String,
    pub dims: usize,
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
}

/// The `k` documents nearest to `query` by cosine similarity of codes (itself excluded), with
/// their similarities.
pub fn nearest_documents(codes: &Matrix, query: usize, k: usize) -> Result<Vec<(usize, f64)>> {
    if query >= codes.rows {
        return Err(Error::invalid(format!(
            "query {query} is out of range: there are {} documents",
            codes.rows
        )));
    }
    let q = codes.select_rows(&[query]);
    let row = map_distances(codes, &q, Distance::Cosine, |_, r| r.to_vec())?.remove(0);
    Ok(k_smallest(&row, (k + 1).min(row.len()))
        .into_iter()
        .filter(|&j| j != query)
        .take(k)
        .map(|j| (j, 1.0 - row[j] as f64))
        .collect())
}

/// Precision at [`RECALL_LEVELS`] on `data` (labelled, preprocessed): the run's codes, then
/// LSA fitted on `train` at each of `lsa_dims` (default: the run's code size and 50).
pub fn evaluate_run(
    run: &crate::run::Run,
    data: &crate::data::Dataset,
    train: &crate::data::Dataset,
    lsa_dims: Option<&[usize]>,
) -> Result<Vec<RetrievalCurve>> {
    let labels = data.labels.as_deref().ok_or_else(|| {
        Error::invalid(format!(
            "{} has no labels: retrieval needs classes",
            data.origin
        ))
    })?;
    let levels = RECALL_LEVELS.to_vec();
    let curve = |method: &str, dims: usize, codes: &Matrix| -> Result<RetrievalCurve> {
        Ok(RetrievalCurve {
            method: method.into(),
            dims,
            recall: levels.clone(),
            precision: precision_recall(codes, labels, &levels)?,
        })
    };
    let latent = run.model.latent_dim();
    let codes = run.model.encode_given(&data.x, data.labels.as_deref())?;
    let mut curves = vec![curve("autoencoder", latent, &codes)?];
    let dims = lsa_dims.map_or_else(|| vec![latent, 50], <[usize]>::to_vec);
    let largest = dims.iter().copied().max().unwrap_or(latent);
    let lsa = crate::eval::pca::Pca::fit_uncentered(&train.x, largest)?;
    for k in dims {
        let cut = lsa.truncated(k)?;
        curves.push(curve("LSA", k, &cut.transform(&data.x)?)?);
    }
    Ok(curves)
}
