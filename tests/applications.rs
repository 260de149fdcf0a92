//! Applications: PCA as a baseline, probes of code quality (kNN, softmax), against hand-computed
//! cases and on real data where present.

mod common;

use aekit::eval::compare::pca_rows;
use aekit::eval::pca::Pca;
use aekit::eval::probe::{
    Distance, ProbeOptions, SoftmaxOptions, SoftmaxProbe, accuracy, k_smallest, knn_classify, probe,
};
use aekit::{Matrix, Split};
use burn::tensor::Device;

fn m(rows: usize, cols: usize, v: &[f32]) -> Matrix {
    Matrix::new(rows, cols, v.to_vec()).unwrap()
}

#[test]
fn k_smallest_orders_by_value_then_index() {
    assert_eq!(k_smallest(&[3.0, 1.0, 2.0, 1.0, 0.5], 3), vec![4, 1, 3]);
    assert_eq!(k_smallest(&[2.0, 1.0], 5), vec![1, 0]);
}

#[test]
fn knn_matches_a_hand_computed_case() {
    // Database on a line: class 0 at x = 0, 1, 2; class 1 at x = 10, 11.
    let db = m(5, 1, &[0.0, 1.0, 2.0, 10.0, 11.0]);
    let labels = [0, 0, 0, 1, 1];
    let q = m(3, 1, &[1.5, 9.0, 7.0]);
    // 1-NN: 1.5 ties between 1 and 2 (both class 0); 9 -> 10; 7 -> 10 (3 against 2's 5).
    assert_eq!(
        knn_classify(&db, &labels, &q, 1, Distance::Euclidean).unwrap(),
        vec![0, 1, 1]
    );
    // 5-NN is the whole database: class 0 has three of five votes everywhere.
    assert_eq!(
        knn_classify(&db, &labels, &q, 5, Distance::Euclidean).unwrap(),
        vec![0, 0, 0]
    );
    // 4-NN of 7 is 10, 11, 2, 1: two votes each, and the nearest (10, class 1) decides.
    assert_eq!(
        knn_classify(&db, &labels, &q, 4, Distance::Euclidean).unwrap()[2],
        1
    );
    // Cosine ignores length: (10, 0) is nearer in angle to (1, 0.1) than (1, 1) is.
    let db = m(2, 2, &[10.0, 0.0, 1.0, 1.0]);
    let q = m(1, 2, &[1.0, 0.1]);
    assert_eq!(
        knn_classify(&db, &[0, 1], &q, 1, Distance::Cosine).unwrap(),
        vec![0]
    );
    assert_eq!(
        knn_classify(&db, &[0, 1], &q, 1, Distance::Euclidean).unwrap(),
        vec![1]
    );
    assert!(knn_classify(&db, &[0], &q, 1, Distance::Euclidean).is_err());
    assert!(knn_classify(&db, &[0, 1], &m(1, 3, &[0.0; 3]), 1, Distance::Cosine).is_err());
    assert_eq!(accuracy(&[0, 1, 1, 2], &[0, 1, 2, 2]), 0.75);
}

/// Three well-separated Gaussian blobs in 3-D plus one useless constant feature.
fn blobs(n: usize, seed: u64) -> (Matrix, Vec<u32>) {
    use rand::Rng;
    let mut rng = aekit::data::batch::rng_for(seed, 1);
    let centres = [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]];
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let c = i % 3;
        for v in centres[c] {
            data.push(v + rng.random_range(-1.0f32..1.0));
        }
        data.push(7.0);
        labels.push(c as u32);
    }
    (Matrix::new(n, 4, data).unwrap(), labels)
}

#[test]
fn softmax_probe_separates_separable_classes_and_scores_shuffled_labels_at_chance() {
    let device = Device::flex();
    let (x, y) = blobs(600, 1);
    let (xt, yt) = blobs(300, 2);
    let opts = SoftmaxOptions {
        epochs: 20,
        ..Default::default()
    };
    let p = SoftmaxProbe::fit(&x, &y, &opts, &device).unwrap();
    // Same data, same options: the same probe, to the bit (its start once came from entropy).
    assert_eq!(SoftmaxProbe::fit(&x, &y, &opts, &device).unwrap(), p);
    assert_eq!(p.decision_function(&xt).unwrap().cols, 3);
    assert_eq!(accuracy(&p.predict(&xt).unwrap(), &yt), 1.0);
    // Labels unrelated to the features: nothing to learn, so test accuracy stays near 1/3.
    let mut rng = aekit::data::batch::rng_for(9, 2);
    let shuffled: Vec<u32> = (0..600)
        .map(|_| rand::Rng::random_range(&mut rng, 0..3u32))
        .collect();
    let p = SoftmaxProbe::fit(&x, &shuffled, &opts, &device).unwrap();
    let acc = accuracy(&p.predict(&xt).unwrap(), &yt);
    assert!(acc < 0.6, "accuracy {acc} on labels unrelated to the data");
    assert!(p.predict(&m(1, 3, &[0.0; 3])).is_err());
}

#[test]
fn pca_is_nested_saved_bit_exact_and_its_error_falls_with_size() {
    let (x, _) = blobs(300, 3);
    let full = Pca::fit(&x, 3).unwrap();
    let two = Pca::fit(&x, 2).unwrap();
    let cut = full.truncated(2).unwrap();
    for (a, b) in two.components.iter().zip(&cut.components) {
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() < 1e-9);
        }
    }
    assert!(full.truncated(4).is_err());
    let dir = common::tmp();
    let path = dir.path().join("pca.json");
    full.save(&path).unwrap();
    assert_eq!(Pca::load(&path).unwrap(), full);
    std::fs::write(&path, "{\"mean\":[0],\"components\":[[1,2]],\"explained_variance\":[1],\"explained_variance_ratio\":[1]}").unwrap();
    let err = Pca::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("pca.json") && err.contains("inconsistent"),
        "{err}"
    );

    let rows = pca_rows(&x, &x, &[1, 2, 3]).unwrap();
    assert!(rows[0].sse_per_image > rows[1].sse_per_image);
    assert!(rows[1].sse_per_image > rows[2].sse_per_image);
    // Three components span the data (the fourth feature is constant): nothing is lost.
    assert!(rows[2].sse_per_image < 1e-6, "{}", rows[2].sse_per_image);
    assert!(pca_rows(&x, &x, &[5]).is_err());
}

/// The main job's data is made so that a 2-D code shows the shape classes: the default
/// autoencoder with `--latent 2` must give codes whose nearest neighbours share the class.
#[test]
fn two_dimensional_codes_of_the_built_in_shapes_separate_the_classes() {
    let dir = common::tmp();
    let cfg = aekit::RunConfig {
        model: aekit::ModelConfig::new(aekit::DenseConfig::new(vec![256, 64], 2)),
        ..Default::default()
    };
    let out = dir.path().join("shapes2d");
    aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
    let device = Device::flex();
    let run = aekit::Run::open(&out, &device).unwrap();
    let train = run.load_data(None, Split::Train).unwrap();
    let test = run.load_data(None, Split::Test).unwrap();
    let enc = |d: &aekit::Dataset| run.model.encode(&d.x).unwrap();
    let s = probe(
        &enc(&train),
        train.labels.as_deref().unwrap(),
        &enc(&test),
        test.labels.as_deref().unwrap(),
        &ProbeOptions::default(),
        &device,
    )
    .unwrap();
    eprintln!("shapes, 2-D codes: {s:?}");
    // Four balanced classes: chance is 25%.
    assert!(s.knn_accuracy > 0.9, "{s:?}");
}

/// PCA with 30 components on MNIST: 13.87 squared error per test image in Hinton &
/// Salakhutdinov (2006); the probes on 30-d PCA codes measured 94.7% (5-NN) and 85.9%
/// (softmax) with 20,000 training images; far above the 10% of chance.
#[test]
fn pca_30_on_mnist_matches_the_published_error() {
    let Some(dir) = common::shared_data("mnist") else {
        return;
    };
    let mut cfg = aekit::DataConfig::for_source("mnist");
    cfg.data_dir = Some(dir);
    let scale = |mut d: aekit::Dataset| {
        d.x.data.iter_mut().for_each(|v| *v /= 255.0);
        d
    };
    let train = scale(aekit::data::load(&cfg, Split::Train).unwrap());
    let test = scale(aekit::data::load(&cfg, Split::Test).unwrap());
    let rows = pca_rows(&train.x, &test.x, &[30]).unwrap();
    let sse = rows[0].sse_per_image;
    eprintln!("PCA-30 on MNIST: {sse:.4} squared error per test image");
    assert!((sse - 13.87).abs() <= 0.3, "{sse}");
    let pca = Pca::fit(&train.x, 30).unwrap();
    let (tr, te) = (train.head(20_000), test.head(2_000));
    let s = probe(
        &pca.transform(&tr.x).unwrap(),
        tr.labels.as_deref().unwrap(),
        &pca.transform(&te.x).unwrap(),
        te.labels.as_deref().unwrap(),
        &ProbeOptions::default(),
        &Device::flex(),
    )
    .unwrap();
    eprintln!("PCA-30 probes on MNIST (20,000 train, 2,000 test): {s:?}");
    assert!(s.knn_accuracy > 0.93 && s.softmax_accuracy > 0.83, "{s:?}");
}

#[test]
fn roc_auc_and_average_precision_match_scikit_learn_on_known_orderings() {
    use aekit::eval::anomaly::{average_precision, quantile, roc_auc};
    // scikit-learn's documented example: roc_auc_score 0.75, average_precision_score 0.8333.
    let s = [0.1, 0.4, 0.35, 0.8];
    let t = [false, false, true, true];
    assert!((roc_auc(&s, &t).unwrap() - 0.75).abs() < 1e-12);
    assert!((average_precision(&s, &t).unwrap() - 5.0 / 6.0).abs() < 1e-12);
    // Perfect and reversed orderings; ties count one half.
    let s = [1.0, 2.0, 3.0, 4.0];
    let t = [false, false, true, true];
    assert_eq!(roc_auc(&s, &t), Some(1.0));
    assert_eq!(average_precision(&s, &t), Some(1.0));
    assert_eq!(roc_auc(&s, &[true, true, false, false]), Some(0.0));
    assert_eq!(roc_auc(&[1.0, 1.0], &[true, false]), Some(0.5));
    assert_eq!(average_precision(&[1.0, 1.0], &[true, false]), Some(0.5));
    // Undefined without both kinds, or with mismatched lengths.
    assert_eq!(roc_auc(&s, &[false; 4]), None);
    assert_eq!(average_precision(&s, &[true; 3]), None);
    // NumPy's linear quantile: np.quantile([1, 2, 3, 4], 0.9) == 3.7.
    assert!((quantile(&[4.0, 1.0, 3.0, 2.0], 0.9) - 3.7).abs() < 1e-12);
    assert_eq!(quantile(&[5.0], 0.3), 5.0);
}

/// One-class training on the shapes: an autoencoder that saw only bars flags the other shapes,
/// and its fitted threshold flags about the contamination fraction of its own training data.
#[test]
fn one_class_autoencoder_detects_the_other_shapes() {
    use aekit::eval::anomaly::{AnomalyDetector, ScoreKind, roc_auc};
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.data.shapes_train = 2000;
    cfg.data.train_classes = Some(vec![3]);
    cfg.train.epochs = 10;
    let out = dir.path().join("bars");
    aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
    let run = aekit::Run::open(&out, &Device::flex()).unwrap();
    let train = run.load_data(None, Split::Train).unwrap();
    assert!(train.labels.as_ref().unwrap().iter().all(|l| *l == 3));
    let det = AnomalyDetector::fit(&run, &train.x, None, ScoreKind::SquaredError, 0.1).unwrap();
    let flagged = det.predict(&run, &train.x, None).unwrap();
    let frac = flagged.iter().filter(|f| **f).count() as f64 / flagged.len() as f64;
    assert!((frac - 0.1).abs() < 0.01, "{frac}");
    let test = run.load_data(None, Split::Test).unwrap();
    let truth: Vec<bool> = test
        .labels
        .as_ref()
        .unwrap()
        .iter()
        .map(|l| *l != 3)
        .collect();
    let auc = roc_auc(&det.decision_function(&run, &test.x, None).unwrap(), &truth).unwrap();
    eprintln!("bars-only autoencoder: ROC AUC {auc:.4}");
    assert!(auc > 0.9, "{auc}");
    // Contamination 0 puts the threshold at the largest training score (nothing trained on is
    // flagged: the keras.io recipe's threshold); outside [0, 0.5] is refused.
    let strict = AnomalyDetector::fit(&run, &train.x, None, ScoreKind::SquaredError, 0.0).unwrap();
    let train_scores = strict.decision_function(&run, &train.x, None).unwrap();
    assert_eq!(
        strict.threshold,
        train_scores.iter().copied().fold(f64::MIN, f64::max)
    );
    assert!(!strict.label(&train_scores).contains(&true));
    for bad in [-0.1, 0.6, f64::NAN] {
        assert!(AnomalyDetector::fit(&run, &train.x, None, ScoreKind::SquaredError, bad).is_err());
    }
    let err = AnomalyDetector::fit(&run, &train.x, None, ScoreKind::NegativeElbo, 0.1).unwrap_err();
    assert!(err.to_string().contains("needs a VAE"), "{err}");
    cfg.data.train_classes = Some(vec![9]);
    let err = aekit::data::load(&cfg.data, Split::Train).unwrap_err();
    assert!(err.to_string().contains("no training sample"), "{err}");
}

/// MIG and SAP are 1 for a code that copies the factors of `shapes-grid`, near 0 for noise
/// and low for a code that mixes two factors; the grid's images show their factors (the
/// shape's centre of mass follows x and y, its mass the scale), and its labels are the shape.
#[test]
fn disentanglement_metrics_know_a_perfect_code_from_noise() {
    use aekit::data::shapes::{FACTOR_IS_CATEGORICAL, FACTOR_NAMES, factors, generate_grid};
    use aekit::eval::disentanglement::disentanglement;
    let n = 4000;
    let f = factors(n, 3, true);
    let score =
        |codes: &Matrix| disentanglement(codes, &f, &FACTOR_NAMES, &FACTOR_IS_CATEGORICAL).unwrap();
    let copy = score(&f);
    assert!(copy.mig > 0.95 && copy.sap > 0.95, "{copy:?}");
    let names: Vec<&str> = copy
        .dimension_factor
        .iter()
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(names, FACTOR_NAMES);

    let mut rng = aekit::data::batch::rng_for(5, 0);
    let noise = Matrix::new(n, 5, aekit::data::batch::standard_normal(n * 5, &mut rng)).unwrap();
    let random = score(&noise);
    assert!(random.mig < 0.05 && random.sap < 0.05, "{random:?}");

    // x and y mixed into two dimensions: each is spread over both, so their gaps are small.
    let mut mixed = f.clone();
    for i in 0..n {
        let r = &mut mixed.data[i * 5..(i + 1) * 5];
        let (x, y) = (r[3], r[4]);
        (r[3], r[4]) = (x + y, x - y);
    }
    let m = score(&mixed);
    assert!(
        m.mig_per_factor[3] < 0.3 && m.mig_per_factor[4] < 0.3,
        "{m:?}"
    );
    assert!(m.mig_per_factor[1] > 0.95, "{m:?}");

    let images = generate_grid(n, 3);
    assert_eq!(
        images.labels.as_ref().unwrap(),
        &(0..n).map(|i| f.row(i)[0] as u32).collect::<Vec<_>>()
    );
    let side = 28;
    let (mut cx, mut cy, mut mass) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let img = images.x.row(i);
        let total: f32 = img.iter().sum();
        let sx: f32 = img
            .iter()
            .enumerate()
            .map(|(k, v)| (k % side) as f32 * v)
            .sum();
        let sy: f32 = img
            .iter()
            .enumerate()
            .map(|(k, v)| (k / side) as f32 * v)
            .sum();
        cx.push(sx / total);
        cy.push(sy / total);
        mass.push(total);
    }
    let corr = |a: &[f32], col: usize| {
        let b: Vec<f32> = (0..n).map(|i| f.row(i)[col]).collect();
        let mean = |v: &[f32]| v.iter().sum::<f32>() / n as f32;
        let (ma, mb) = (mean(a), mean(&b));
        let cov: f32 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    assert!(corr(&cx, 3) > 0.95 && corr(&cy, 4) > 0.95);
    assert!(corr(&mass, 1) > 0.5);
}
