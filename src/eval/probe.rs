//! How useful codes are to a downstream task: k-nearest-neighbour classification and a linear
//! (softmax regression) probe, both fitted on training codes and scored on test labels. The
//! same functions score PCA codes, so an autoencoder is always judged beside its baseline.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, decay::WeightDecayConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use faer::Mat;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::batch::rng_for;
use crate::data::{Matrix, Preprocessor, Scaling};
use crate::error::{Error, Result};
use crate::model::layers::tensor_values;

/// How neighbours are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Distance {
    #[default]
    Euclidean,
    /// One minus the cosine similarity; rows of zeros are at distance 1 from everything.
    Cosine,
}

/// Query rows per block: the block's distance matrix to a 60,000-row database stays ~60 MB.
const QUERY_BLOCK: usize = 256;

fn check_same_width(database: &Matrix, queries: &Matrix) -> Result<()> {
    if database.cols != queries.cols {
        return Err(Error::mismatch(format!(
            "queries have {} features, the database {}",
            queries.cols, database.cols
        )));
    }
    if database.rows == 0 {
        return Err(Error::invalid("the database is empty"));
    }
    Ok(())
}

/// Rows scaled to unit length (zero rows stay zero), for cosine distances.
fn unit_rows(m: &Matrix) -> Matrix {
    let mut out = m.clone();
    for row in out.data.chunks_exact_mut(m.cols.max(1)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
    out
}

/// Calls `f(query_index, distances_to_every_database_row)` for every query, in parallel, and
/// returns the results in query order. Distances come from one matrix product per block of
/// queries (‖q‖² + ‖x‖² − 2 q·x), which is what makes brute force fast enough for MNIST.
pub fn map_distances<T: Send>(
    database: &Matrix,
    queries: &Matrix,
    distance: Distance,
    f: impl Fn(usize, &[f32]) -> T + Sync,
) -> Result<Vec<T>> {
    check_same_width(database, queries)?;
    let (db, q) = match distance {
        Distance::Euclidean => (database.clone(), queries.clone()),
        Distance::Cosine => (unit_rows(database), unit_rows(queries)),
    };
    let d = db.cols;
    let db_mat = Mat::<f32>::from_fn(db.rows, d, |i, j| db.data[i * d + j]);
    let db_sq: Vec<f32> = (0..db.rows)
        .map(|i| db.row(i).iter().map(|v| v * v).sum())
        .collect();
    let mut out = Vec::with_capacity(q.rows);
    for start in (0..q.rows).step_by(QUERY_BLOCK) {
        let rows = QUERY_BLOCK.min(q.rows - start);
        let block = Mat::<f32>::from_fn(rows, d, |i, j| q.data[(start + i) * d + j]);
        let dots = &block * db_mat.transpose();
        let results: Vec<T> = (0..rows)
            .into_par_iter()
            .map(|i| {
                let q_sq: f32 = q.row(start + i).iter().map(|v| v * v).sum();
                let row: Vec<f32> = (0..db.rows)
                    .map(|j| match distance {
                        Distance::Euclidean => (q_sq + db_sq[j] - 2.0 * dots[(i, j)]).max(0.0),
                        Distance::Cosine => 1.0 - dots[(i, j)],
                    })
                    .collect();
                f(start + i, &row)
            })
            .collect();
        out.extend(results);
    }
    Ok(out)
}

/// Indices of the `k` smallest values of `row`, nearest first (ties by index).
pub fn k_smallest(row: &[f32], k: usize) -> Vec<usize> {
    let k = k.min(row.len());
    let cmp = |a: &usize, b: &usize| row[*a].total_cmp(&row[*b]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..row.len()).collect();
    if k < idx.len() && k > 0 {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx
}

/// The k-nearest-neighbour label of every query: the majority among the k nearest database
/// rows, ties going to the class whose nearest member is closest.
pub fn knn_classify(
    database: &Matrix,
    labels: &[u32],
    queries: &Matrix,
    k: usize,
    distance: Distance,
) -> Result<Vec<u32>> {
    if labels.len() != database.rows {
        return Err(Error::mismatch(format!(
            "{} labels for {} database rows",
            labels.len(),
            database.rows
        )));
    }
    if k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    let classes = labels.iter().max().map_or(0, |m| *m as usize + 1);
    map_distances(database, queries, distance, |_, row| {
        let mut votes = vec![0usize; classes];
        let mut first_rank = vec![usize::MAX; classes];
        for (rank, j) in k_smallest(row, k).into_iter().enumerate() {
            let c = labels[j] as usize;
            votes[c] += 1;
            first_rank[c] = first_rank[c].min(rank);
        }
        (0..classes)
            .max_by(|a, b| {
                votes[*a]
                    .cmp(&votes[*b])
                    .then(first_rank[*b].cmp(&first_rank[*a]))
            })
            .unwrap_or(0) as u32
    })
}

/// Fraction of `predicted` equal to `truth`.
pub fn accuracy(predicted: &[u32], truth: &[u32]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let hits = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    hits as f64 / truth.len() as f64
}

/// Settings of the softmax-regression probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// L2 penalty on the weights (the probe is convex; this keeps separable data finite).
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for SoftmaxOptions {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 256,
            learning_rate: 0.01,
            weight_decay: 1e-4,
            seed: 0,
        }
    }
}

#[derive(Module, Debug)]
struct LinearModel {
    linear: Linear,
}

/// Multinomial logistic regression on standardised features, trained with Adam (burn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxProbe {
    /// Standardisation fitted on the training features.
    pub standardiser: Preprocessor,
    /// `weights[c * features + j]`: class c, feature j.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub classes: usize,
}

impl SoftmaxProbe {
    fn standardise(&self, x: &Matrix) -> Result<Vec<f32>> {
        let mut m = x.clone();
        self.standardiser.apply(&mut m)?;
        Ok(m.data)
    }

    pub fn fit(x: &Matrix, labels: &[u32], opts: &SoftmaxOptions, device: &Device) -> Result<Self> {
        if labels.len() != x.rows || x.rows == 0 {
            return Err(Error::mismatch(format!(
                "softmax probe: {} labels for {} samples",
                labels.len(),
                x.rows
            )));
        }
        let classes = labels.iter().max().map_or(1, |m| *m as usize + 1);
        let mut probe = Self {
            standardiser: Preprocessor::fit_matrix(Scaling::Standardize, x),
            weights: vec![],
            bias: vec![],
            classes,
        };
        let xs = probe.standardise(x)?;
        let d = x.cols;
        let device = device.clone().autodiff();
        // Zeros, not burn's initialiser: that one draws from a process-wide generator seeded
        // from entropy, so the same command gave another probe on every run. The problem is
        // convex, so the start changes only the path, never the optimum.
        let mut model = LinearModel {
            linear: LinearConfig::new(d, classes)
                .with_initializer(Initializer::Zeros)
                .init(&device),
        };
        let wd =
            (opts.weight_decay > 0.0).then(|| WeightDecayConfig::new(opts.weight_decay as f32));
        let mut optim = AdamConfig::new().with_weight_decay(wd).init();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let mut order: Vec<usize> = (0..x.rows).collect();
        let mut rng = rng_for(opts.seed, 31);
        for _ in 0..opts.epochs {
            order.shuffle(&mut rng);
            for batch in order.chunks(opts.batch_size.max(1)) {
                let mut bx = Vec::with_capacity(batch.len() * d);
                for &i in batch {
                    bx.extend_from_slice(&xs[i * d..(i + 1) * d]);
                }
                let by: Vec<i64> = batch.iter().map(|&i| labels[i] as i64).collect();
                let inputs = Tensor::<2>::from_data(TensorData::new(bx, [batch.len(), d]), &device);
                let targets =
                    Tensor::<1, Int>::from_data(TensorData::new(by, [batch.len()]), &device);
                let loss = loss_fn.forward(model.linear.forward(inputs), targets);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(opts.learning_rate, model, grads);
            }
        }
        // burn stores Linear weights as [in, out]; keep them class-major for prediction.
        let w = tensor_values(model.linear.weight.val());
        probe.weights = (0..classes)
            .flat_map(|c| (0..d).map(move |j| (c, j)))
            .map(|(c, j)| w[j * classes + c])
            .collect();
        probe.bias = match &model.linear.bias {
            Some(b) => tensor_values(b.val()),
            None => vec![0.0; classes],
        };
        Ok(probe)
    }

    /// Class scores (logits) of every row.
    pub fn decision_function(&self, x: &Matrix) -> Result<Matrix> {
        let features = self.standardiser.offset.len();
        if x.cols != features {
            return Err(Error::mismatch(format!(
                "softmax probe fitted on {} features, got {}",
                features, x.cols
            )));
        }
        let d = x.cols;
        let xs = self.standardise(x)?;
        let mut out = Vec::with_capacity(x.rows * self.classes);
        for row in xs.chunks_exact(d.max(1)).take(x.rows) {
            for c in 0..self.classes {
                let w = &self.weights[c * d..(c + 1) * d];
                out.push(self.bias[c] + row.iter().zip(w).map(|(a, b)| a * b).sum::<f32>());
            }
        }
        Matrix::new(x.rows, self.classes, out)
    }

    pub fn predict(&self, x: &Matrix) -> Result<Vec<u32>> {
        Ok(crate::model::classifier::predicted_classes(
            &self.decision_function(x)?,
        ))
    }
}

/// Probe accuracies of one set of codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeScores {
    pub dims: usize,
    pub knn_accuracy: f64,
    pub softmax_accuracy: f64,
}

/// Settings of [`probe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOptions {
    pub k: usize,
    pub distance: Distance,
    pub softmax: SoftmaxOptions,
    /// Training rows whose labels fit the probes; PCA is fitted on every training row, as the
    /// autoencoder was (the few-label protocol).
    #[serde(default)]
    pub labelled: crate::data::LabelChoice,
    /// Seed of the `labelled` draw.
    #[serde(default)]
    pub label_seed: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            k: 5,
            distance: Distance::Euclidean,
            softmax: SoftmaxOptions::default(),
            labelled: crate::data::LabelChoice::All,
            label_seed: 0,
        }
    }
}

/// kNN and softmax accuracy of codes: fitted on `(train, train_labels)`, scored on the test set.
pub fn probe(
    train: &Matrix,
    train_labels: &[u32],
    test: &Matrix,
    test_labels: &[u32],
    opts: &ProbeOptions,
    device: &Device,
) -> Result<ProbeScores> {
    if test_labels.len() != test.rows {
        return Err(Error::mismatch(format!(
            "{} test labels for {} test samples",
            test_labels.len(),
            test.rows
        )));
    }
    let knn = knn_classify(train, train_labels, test, opts.k, opts.distance)?;
    let softmax = SoftmaxProbe::fit(train, train_labels, &opts.softmax, device)?.predict(test)?;
    Ok(ProbeScores {
        dims: train.cols,
        knn_accuracy: accuracy(&knn, test_labels),
        softmax_accuracy: accuracy(&softmax, test_labels),
    })
}

/// A run's codes probed beside PCA codes of the same size.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub k: usize,
    pub distance: Distance,
    pub train_samples: usize,
    /// Training rows whose labels the probes were fitted on.
    pub labelled_samples: usize,
    pub test_samples: usize,
    pub autoencoder: ProbeScores,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pca: Option<ProbeScores>,
}

fn labels_of(data: &crate::data::Dataset) -> Result<&[u32]> {
    data.labels.as_deref().ok_or_else(|| {
        Error::invalid(format!(
            "{} has no labels: probing codes needs labelled training and test data",
            data.origin
        ))
    })
}

/// kNN and softmax accuracy of `run`'s codes of `train` and `test` (preprocessed, labelled),
/// and, with `with_pca`, of PCA codes of the same size fitted on `train`; the probes are
/// fitted on the rows `opts.labelled` keeps.
pub fn probe_run(
    run: &crate::run::Run,
    train: &crate::data::Dataset,
    test: &crate::data::Dataset,
    opts: &ProbeOptions,
    with_pca: bool,
    device: &Device,
) -> Result<ProbeReport> {
    train.require_samples("fit the probes on")?;
    test.require_samples("probe")?;
    let classes = labels_of(train)?
        .iter()
        .max()
        .map_or(0, |m| *m as usize + 1);
    let labelled = train.subset(&opts.labelled.choose(
        labels_of(train)?,
        classes,
        opts.label_seed,
    )?);
    let (train_labels, test_labels) = (labels_of(&labelled)?, labels_of(test)?);
    let score = |tr: &Matrix, te: &Matrix| probe(tr, train_labels, te, test_labels, opts, device);
    let autoencoder = score(
        &run.model
            .encode_given(&labelled.x, labelled.labels.as_deref())?,
        &run.model.encode_given(&test.x, test.labels.as_deref())?,
    )?;
    let pca = if with_pca {
        let pca = crate::eval::pca::Pca::fit(&train.x, run.model.latent_dim())?;
        Some(score(
            &pca.transform(&labelled.x)?,
            &pca.transform(&test.x)?,
        )?)
    } else {
        None
    };
    Ok(ProbeReport {
        k: opts.k,
        distance: opts.distance,
        train_samples: train.len(),
        labelled_samples: labelled.len(),
        test_samples: test.len(),
        autoencoder,
        pca,
    })
}
