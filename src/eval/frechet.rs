//! Sample quality as a Fréchet distance (Heusel et al. 2017) in the feature space of a small
//! convolutional classifier that aekit trains once on a data set's labels and caches.
//!
//! FID proper needs Inception weights, which cannot be fetched here; this is aekit's own
//! yardstick, comparable between models measured with the same classifier on the same data,
//! not with published FIDs. The distance between the test set's and the training set's
//! features gives its floor. The same classifier also says which class a sample looks like.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

use crate::data::batch::{BatchOrder, rng_for};
use crate::data::{Dataset, Matrix};
use crate::error::{Error, Result};
use crate::kernels::linear::linear;
use crate::model::Activation;
use crate::model::layers::{
    Init, LayerSpec, Layers, LayersBuilder, ParamFactory, StackActs, parse_layers, tensor_batches,
    tensor_values,
};

/// The classifier's layers before its linear head; the last one's outputs are the features.
const FEATURES: &str = "conv:32:3:s2,conv:64:3:s2,dense:128";
const EPOCHS: usize = 3;
const BATCH: usize = 128;
const LR: f64 = 1e-3;
/// Names the classifier recipe in the cache key: a change of recipe retrains.
const RECIPE: &str = "frechet-classifier-v1";

/// A trained feature extractor and classifier for one data set.
pub struct FeatureClassifier {
    layers: Layers,
    classes: usize,
    shape: Vec<usize>,
    device: Device,
    /// Accuracy on the data set's test split, when measured.
    pub test_accuracy: Option<f64>,
}

#[derive(Serialize, Deserialize)]
struct Recipe {
    recipe: String,
    classes: usize,
    shape: Vec<usize>,
    test_accuracy: Option<f64>,
}

fn specs() -> Vec<LayerSpec> {
    parse_layers(FEATURES).expect("valid spec")
}

fn build(shape: &[usize], classes: usize, seed: u64, device: &Device) -> Result<Layers> {
    let train_device = device.clone().autodiff();
    let params = ParamFactory::new(rng_for(seed, 5), Init::default(), &train_device);
    let mut b = LayersBuilder::new(params);
    let out = b.stack(
        "features",
        &specs(),
        shape,
        StackActs {
            hidden: Activation::Relu,
            last: Some(Activation::Relu),
        },
    )?;
    b.linear("head", out.iter().product(), classes, Activation::Linear)?;
    Ok(b.finish())
}

impl FeatureClassifier {
    /// Trains the classifier on `train` (preprocessed images with labels), seeded.
    pub fn train(train: &Dataset, seed: u64, device: &Device) -> Result<Self> {
        let labels = train.labels.as_deref().ok_or_else(|| {
            Error::invalid(format!(
                "{}: the Fréchet classifier trains on labels, and this data has none",
                train.origin
            ))
        })?;
        if train.sample_shape.len() != 3 {
            return Err(Error::invalid(format!(
                "{}: the Fréchet classifier needs images (channels x height x width)",
                train.origin
            )));
        }
        let classes = labels.iter().max().map_or(0, |m| *m as usize + 1);
        let mut layers = build(&train.sample_shape, classes.max(2), seed, device)?;
        let mut optim = crate::train::optim::build(&crate::train::TrainConfig::default());
        let rows: Vec<usize> = (0..train.len()).collect();
        let train_device = device.clone().autodiff();
        for epoch in 0..EPOCHS {
            let order = BatchOrder::shuffled(&rows, BATCH, seed, epoch);
            for b in 0..order.num_batches() {
                let idx = order.batch(b);
                let mut x = Vec::with_capacity(idx.len() * train.x.cols);
                for &r in idx {
                    x.extend_from_slice(train.x.row(r));
                }
                let x = Tensor::<2>::from_data(
                    TensorData::new(x, [idx.len(), train.x.cols]),
                    &train_device,
                );
                let y: Vec<i64> = idx.iter().map(|&r| labels[r] as i64).collect();
                let y = Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len()]), &train_device);
                let logits = logits(&layers, x);
                let log_p = activation::log_softmax(logits, 1);
                let picked = log_p.gather(1, y.unsqueeze_dim(1));
                let loss = picked.mean().neg();
                let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &layers);
                layers = optim.step(LR, layers, grads);
            }
        }
        Ok(Self {
            layers: layers.valid(),
            classes: classes.max(2),
            shape: train.sample_shape.clone(),
            device: device.clone(),
            test_accuracy: None,
        })
    }

    /// The classifier for `train`, from the cache when one was trained on the same data
    /// (same values, labels and shape), else trained now, measured on `test` and cached.
    pub fn cached(train: &Dataset, test: &Dataset, device: &Device) -> Result<Self> {
        let dir = crate::data::fetch::default_cache_dir()?.join("classifiers");
        Self::cached_in(&dir, train, test, device)
    }

    /// [`Self::cached`] with the cache in `dir`.
    pub fn cached_in(
        dir: &std::path::Path,
        train: &Dataset,
        test: &Dataset,
        device: &Device,
    ) -> Result<Self> {
        let path = dir.join(cache_name(train));
        if let Ok(found) = Self::load(&path, device) {
            return Ok(found);
        }
        let mut c = Self::train(train, 0, device)?;
        if let Some(labels) = &test.labels {
            let predicted = c.predict(&test.x)?;
            let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
            c.test_accuracy = Some(right as f64 / labels.len().max(1) as f64);
        }
        c.save(&path)?;
        Ok(c)
    }

    fn save(&self, path: &std::path::Path) -> Result<()> {
        let recipe = Recipe {
            recipe: RECIPE.into(),
            classes: self.classes,
            shape: self.shape.clone(),
            test_accuracy: self.test_accuracy,
        };
        let bytes = crate::model::safetensors::encode_with(
            &self.layers.export(),
            "aekit_classifier",
            serde_json::to_string(&recipe).map_err(|e| Error::Serialize(e.to_string()))?,
        )?;
        if let Some(dir) = path.parent() {
            crate::io::ensure_dir(dir)?;
        }
        crate::io::write_atomic(path, &bytes)
    }

    fn load(path: &std::path::Path, device: &Device) -> Result<Self> {
        let tensors = crate::model::safetensors::read(path)?;
        let recipe: Recipe = crate::model::safetensors::metadata(path, "aekit_classifier")?;
        let layers = build(&recipe.shape, recipe.classes, 0, device)?.import(&tensors)?;
        Ok(Self {
            layers: layers.valid(),
            classes: recipe.classes,
            shape: recipe.shape,
            device: device.clone(),
            test_accuracy: recipe.test_accuracy,
        })
    }

    fn check(&self, x: &Matrix) -> Result<()> {
        let want: usize = self.shape.iter().product();
        if x.cols != want {
            return Err(Error::mismatch(format!(
                "the Fréchet classifier takes images of {want} values, got {}",
                x.cols
            )));
        }
        Ok(())
    }

    /// The penultimate layer's activations of every row.
    pub fn features(&self, x: &Matrix) -> Result<Matrix> {
        self.check(x)?;
        let stack = self.layers.stack("features").expect("built");
        let mut out = Vec::new();
        let mut cols = 0;
        for t in tensor_batches(x, 512, &self.device) {
            let f = stack.forward(t, false);
            cols = f.dims()[1];
            out.extend(tensor_values(f));
        }
        Matrix::new(x.rows, cols, out)
    }

    /// The most likely class of every row.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<u32>> {
        self.check(x)?;
        let mut out = Vec::with_capacity(x.rows);
        for t in tensor_batches(x, 512, &self.device) {
            let best = logits(&self.layers, t).argmax(1);
            out.extend(
                best.into_data()
                    .convert::<i64>()
                    .try_into_vec::<i64>()
                    .expect("indices")
                    .into_iter()
                    .map(|v| v as u32),
            );
        }
        Ok(out)
    }
}

fn logits(layers: &Layers, x: Tensor<2>) -> Tensor<2> {
    let f = layers.stack("features").expect("built").forward(x, false);
    linear(layers.linear("head"), f)
}

/// `<hash of recipe, shape, values and labels>.safetensors`.
fn cache_name(train: &Dataset) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    for d in &train.sample_shape {
        h.update((*d as u64).to_le_bytes());
    }
    for v in &train.x.data {
        h.update(v.to_le_bytes());
    }
    for l in train.labels.iter().flatten() {
        h.update(l.to_le_bytes());
    }
    let hash = format!("{:x}", h.finalize());
    format!("{}.safetensors", &hash[..24])
}

/// The Fréchet distance between Gaussians fitted to the rows of `a` and of `b`:
/// `‖μa − μb‖² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½)`, the trace term from the eigenvalues of
/// the symmetric `Σa^½ Σb Σa^½` (no general matrix square root needed).
pub fn frechet_distance(a: &Matrix, b: &Matrix) -> Result<f64> {
    if a.cols != b.cols || a.rows < 2 || b.rows < 2 {
        return Err(Error::invalid(format!(
            "a Fréchet distance needs two sets of at least 2 rows of one width (got {}x{} and {}x{})",
            a.rows, a.cols, b.rows, b.cols
        )));
    }
    let (ma, ca) = super::pca::moments(a, true);
    let (mb, cb) = super::pca::moments(b, true);
    let mean_term: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
    let root_a = sqrt_psd(&ca)?;
    let inner = &root_a * &cb * &root_a;
    let eig = inner
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| Error::invalid("the feature covariances have no eigen decomposition"))?;
    let trace_root: f64 = eig.iter().map(|v| v.max(0.0).sqrt()).sum();
    let trace = |m: &Mat<f64>| (0..m.nrows()).map(|i| m[(i, i)]).sum::<f64>();
    Ok(mean_term + trace(&ca) + trace(&cb) - 2.0 * trace_root)
}

/// The symmetric square root of a positive semi-definite matrix.
fn sqrt_psd(m: &Mat<f64>) -> Result<Mat<f64>> {
    let e = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| Error::invalid("a feature covariance has no eigen decomposition"))?;
    let (u, s) = (e.U(), e.S());
    let d = m.nrows();
    let root = Mat::<f64>::from_fn(d, d, |i, j| if i == j { s[i].max(0.0).sqrt() } else { 0.0 });
    Ok(u * &root * u.transpose())
}

/// The Fréchet distance of a run's samples to its test data, with the floor beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleQuality {
    pub sampler: String,
    pub samples: usize,
    /// Fréchet distance between the samples' features and the test set's (lower is better).
    pub frechet_distance: f64,
    /// The same distance between the test set and as many training images: what a model
    /// that reproduced the data distribution would score.
    pub floor: f64,
    /// The classifier's accuracy on the test split when it was trained.
    pub classifier_test_accuracy: Option<f64>,
    /// For a conditional model sampled under every class in turn: per class c, the share of
    /// the samples asked for c that the classifier calls c.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_agreement: Option<Vec<f64>>,
}

/// Draws `n` samples from `run` with `sampler` (seeded) and measures them against `test`
/// (preprocessed, as [`crate::run::Run::load_data`] gives it) in the features of the data
/// set's cached classifier.
pub fn sample_quality(
    run: &crate::run::Run,
    test: &Dataset,
    sampler: super::sampler::Sampler,
    n: usize,
    seed: u64,
) -> Result<SampleQuality> {
    let train = run.load_data(None, crate::data::Split::Train)?;
    let classifier = FeatureClassifier::cached(&train, test, run.model.device())?;
    let samples = super::sampler::sample_decoded(&run.model, sampler, Some(&train), n, seed)?;
    let test_features = classifier.features(&test.x)?;
    let floor_rows = test.x.rows.min(train.x.rows);
    let class_agreement = match run.model.generation_labels(n) {
        Some(asked) => Some(class_agreement(
            &asked,
            &classifier.predict(&samples)?,
            run.model.classes(),
        )),
        None => None,
    };
    Ok(SampleQuality {
        sampler: sampler.to_string(),
        samples: n,
        frechet_distance: frechet_distance(&classifier.features(&samples)?, &test_features)?,
        floor: frechet_distance(
            &classifier.features(&train.x.head(floor_rows))?,
            &test_features,
        )?,
        classifier_test_accuracy: classifier.test_accuracy,
        class_agreement,
    })
}

/// Per class c of `classes`: the share of the rows `asked` to be c that were `predicted` as c
/// (NaN for a class never asked).
pub fn class_agreement(asked: &[u32], predicted: &[u32], classes: usize) -> Vec<f64> {
    let mut hits = vec![(0usize, 0usize); classes];
    for (&a, &p) in asked.iter().zip(predicted) {
        if let Some(h) = hits.get_mut(a as usize) {
            h.0 += usize::from(a == p);
            h.1 += 1;
        }
    }
    hits.iter()
        .map(|&(hit, all)| hit as f64 / all as f64)
        .collect()
}
