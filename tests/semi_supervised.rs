//! The semi-supervised VAE (`--model ssvae`, Kingma et al.'s M2): it learns the shapes' classes
//! from a few labels, its codes end with the class probabilities its decoder takes back, the
//! classifier's cross-entropy enters the objective as its closed form, an interrupted run
//! resumes to the same bytes, and bad settings are refused with one line and nothing written.

mod common;

use std::process::{Command, Output};

use aekit::model::variant::{Batch, UNLABELLED};
use aekit::model::variants::ssvae::SsVaeConfig;
use aekit::{FitOptions, ModelConfig, Run, VaeConfig};
use burn::tensor::{Device, Tensor, TensorData};

fn aekit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args)
        .output()
        .unwrap()
}

fn ssvae(hidden: usize, latent: usize, labelled: &str, class_weight: f64) -> ModelConfig {
    ModelConfig::new(SsVaeConfig {
        vae: VaeConfig::new(vec![hidden], latent),
        labelled: labelled.parse().unwrap(),
        labelled_batch: 8,
        class_weight,
    })
}

#[test]
fn it_learns_the_shapes_from_thirty_labels_and_its_codes_say_the_class() {
    let dir = common::tmp();
    let out = dir.path().join("m2");
    let o = aekit(&[
        "train",
        "--model",
        "ssvae",
        "--data",
        "shapes",
        "--labelled",
        "30",
        "--class-weight",
        "500",
        "--hidden",
        "128",
        "--latent",
        "8",
        "--epochs",
        "20",
        "--seed",
        "0",
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--no-report",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = aekit(&["eval", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Four classes: chance is a quarter. 30 labels of 6,000 rows; measured 0.90.
    let accuracy = report["classification"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.8, "test accuracy {accuracy}");

    let device = Device::flex();
    let run = Run::open(&out, &device).unwrap();
    let test = run.load_data(None, aekit::Split::Test).unwrap();
    let x = test.x.head(64);
    let codes = run.model.encode(&x).unwrap();
    assert_eq!(codes.cols, 8 + 4, "z, then the four classes' probabilities");
    let probabilities = run.model.class_probabilities(&x).unwrap().unwrap();
    for r in 0..x.rows {
        let tail = &codes.row(r)[8..];
        assert_eq!(tail, probabilities.row(r), "row {r}");
        let sum: f32 = tail.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {r} sums to {sum}");
    }
    // The decoder takes a code as it is: decoding the codes is reconstructing.
    let decoded = run.model.decode(&codes).unwrap();
    let reconstructed = run.model.reconstruct(&x).unwrap();
    assert_eq!(decoded.data, reconstructed.data);
}

#[test]
fn serve_predicts_with_the_models_own_classifier() {
    use common::serving::*;
    let dir = common::tmp();
    let path = train_shapes_run(dir.path(), "ssvae");
    let device = Device::flex();
    let run = Run::open(&path, &device).unwrap();
    let test = run.load_data(None, aekit::Split::Test).unwrap();
    let x = test.x.head(7);
    let want = run.model.class_probabilities(&x).unwrap().unwrap();
    let mut raw = x.clone();
    run.preprocessor.invert(&mut raw).unwrap();
    let server = TestServer::start(std::slice::from_ref(&path), unbatched());
    let agent = agent();
    assert_predicts(&server, "shapes-ssvae", &raw, &want);
    let listed = get(&agent, &server.url("/v1/runs")).json();
    assert_eq!(listed["runs"][0]["classifier"]["classes"], 4);
    // Its codes end with the same probabilities.
    let body = serde_json::json!({ "x": matrix_rows(&raw) });
    let codes = post_json(&agent, &server.url("/v1/runs/shapes-ssvae/encode"), &body).json();
    let codes = rows(&codes, "codes");
    for (code, p) in codes.iter().zip(matrix_rows(&want)) {
        assert_eq!(code[2..], p[..]);
    }
}

#[test]
fn the_cross_entropy_of_labelled_rows_enters_as_its_closed_form() {
    let device = Device::flex();
    let (rows, dim, classes, weight) = (5usize, 6usize, 3usize, 7.0);
    let labels = vec![0, UNLABELLED, 2, 1, UNLABELLED];
    let values: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 29 % 17) as f32) / 17.0)
        .collect();
    let model = |class_weight| {
        let mut cfg = ssvae(16, 2, "all", class_weight);
        cfg.shared_mut().classes = Some(classes);
        cfg.resolve(&[dim], true).unwrap();
        let ae = aekit::model::Autoencoder::new(&cfg, 3, &device).unwrap();
        (cfg, ae)
    };
    let objective = |class_weight, labels: Option<Vec<u32>>| {
        let (cfg, ae) = model(class_weight);
        let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [rows, dim]), &device);
        let batch = Batch {
            input: x.clone(),
            target: x,
            labels,
        };
        let mut rng = aekit::data::batch::rng_for(0, 0);
        let total = ae
            .net()
            .objective_in(batch, &cfg, &mut rng, 1.0, rows)
            .total;
        total.into_scalar::<f32>() as f64
    };
    let without = objective(0.0, Some(labels.clone()));
    let with = objective(weight, Some(labels.clone()));
    let (_, ae) = model(weight);
    let x = aekit::Matrix {
        rows,
        cols: dim,
        data: values.clone(),
    };
    let q = ae.class_probabilities(&x).unwrap().unwrap();
    let cross_entropy: f64 = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| **l != UNLABELLED)
        .map(|(r, &l)| -(q.row(r)[l as usize] as f64).ln())
        .sum();
    let expected = weight * cross_entropy / (rows * dim) as f64;
    assert!(
        ((with - without) - expected).abs() < 1e-5 * expected.max(1.0),
        "the objective grew by {} for a weighted cross-entropy of {expected}",
        with - without
    );
    // No labels at all is every row unlabelled.
    assert_eq!(
        objective(weight, None),
        objective(weight, Some(vec![UNLABELLED; rows]))
    );
}

#[test]
fn an_interrupted_run_resumes_to_the_same_bytes() {
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.data.shapes_train = 200;
    cfg.model = ssvae(16, 2, "12", 50.0);
    let whole = dir.path().join("whole");
    aekit::train(&cfg, &FitOptions::new(&whole)).unwrap();
    common::assert_resumes_to_the_same_bytes(&cfg, &whole, &dir.path().join("split"), 5);
}

#[test]
fn rows_marked_unlabelled_are_never_chosen_and_other_models_refuse_them() {
    let dir = common::tmp();
    let mut data = aekit::data::shapes::generate(200, 5);
    // Two labelled rows of each class; every other row marked unlabelled.
    let labels = data.labels.as_mut().unwrap();
    let mut kept = [0usize; 4];
    for l in labels.iter_mut() {
        let class = *l as usize;
        if kept[class] < 2 {
            kept[class] += 1;
        } else {
            *l = UNLABELLED;
        }
    }
    let mut cfg = common::tiny_config();
    cfg.train.epochs = 1;
    // Every row trains: none of the labelled ones is held out for validation.
    cfg.data.val_fraction = 0.0;
    cfg.model = ssvae(16, 2, "8", 50.0);
    aekit::fit(&cfg, &data, &FitOptions::new(dir.path().join("eight"))).unwrap();
    let run = Run::open(&dir.path().join("eight"), &Device::flex()).unwrap();
    assert_eq!(run.model.classes_predicted(), Some(4));
    // Only the 8 labelled rows are candidates, whatever the data's length.
    cfg.model = ssvae(16, 2, "12", 50.0);
    let err = aekit::fit(&cfg, &data, &FitOptions::new(dir.path().join("twelve")))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("only 8 labelled rows"), "{err}");
    assert!(!dir.path().join("twelve").exists());
    cfg.model = ModelConfig::new(aekit::model::CvaeConfig {
        vae: VaeConfig::new(vec![16], 2),
    });
    let err = aekit::fit(&cfg, &data, &FitOptions::new(dir.path().join("cvae")))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("marked unlabelled"), "{err}");
}

#[test]
fn bad_settings_and_data_are_refused_with_one_line_and_nothing_written() {
    let dir = common::tmp();
    let csv = dir.path().join("rows.csv");
    let body: String = (0..40)
        .map(|i| format!("{},{},{}\n", i % 7, i % 5, i % 3))
        .collect();
    std::fs::write(&csv, format!("a,b,c\n{body}")).unwrap();
    let csv_spec = format!("csv:{}", csv.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--data", &csv_spec], "needs labelled data"),
        (
            vec!["--data", &csv_spec, "--label-column", "c", "--stream"],
            "not on a table streamed",
        ),
        (
            vec!["--data", "shapes", "--labelled", "100000"],
            "--labelled 100000",
        ),
        (
            vec!["--data", "shapes", "--encoder", "conv:4:3:s2"],
            "dense",
        ),
        (
            vec!["--data", "shapes", "--class-weight=-1"],
            "class_weight",
        ),
        (
            vec!["--data", "shapes", "--labelled-batch", "0"],
            "labelled_batch",
        ),
    ];
    for (extra, needle) in cases {
        let out = dir.path().join("out");
        let mut args = vec!["train", "--model", "ssvae", "--epochs", "1", "-q"];
        args.extend(&extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let o = aekit(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}
