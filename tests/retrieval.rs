//! Documents as bags of words and retrieval by code similarity: tokenisation, vocabulary,
//! LSA and precision at recall levels against hand-computed cases, and the paper's comparison
//! on 20 Newsgroups where the data is present.

mod common;

use std::path::Path;

use aekit::data::text::{tokenize, vocabulary};
use aekit::eval::pca::Pca;
use aekit::eval::retrieval::{
    RECALL_LEVELS, nearest_documents, precision_at_recall, precision_recall,
};
use aekit::{DataConfig, Matrix, Split};

#[test]
fn precision_at_recall_matches_a_hand_computed_ranking() {
    // Relevant at ranks 1, 3 and 6 (R = 3).
    let ranking = [true, false, true, false, false, true, false];
    let p = precision_at_recall(&ranking, &[0.1, 0.34, 0.5, 0.67, 1.0]).unwrap();
    // 1 of 3 at rank 1; 2 of 3 (ceil(0.34*3) = 2, ceil(0.5*3) = 2, ceil(0.67*3) = 3) ...
    let want = [1.0, 2.0 / 3.0, 2.0 / 3.0, 3.0 / 6.0, 3.0 / 6.0];
    for (a, b) in p.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{p:?}");
    }
    assert_eq!(precision_at_recall(&[false, false], &[0.5]), None);
    // Two tight clusters on a circle: every query's class-mates come first.
    let codes = Matrix::new(4, 2, vec![1.0, 0.1, 1.0, -0.1, -0.1, 1.0, 0.1, 1.0]).unwrap();
    let p = precision_recall(&codes, &[0, 0, 1, 1], &RECALL_LEVELS).unwrap();
    assert!(p.iter().all(|v| (v - 1.0).abs() < 1e-12), "{p:?}");
    // Labels crossed with the clusters: the class-mate comes third for documents 0 and 3
    // and second for 1 and 2 (by the cosines), so the mean is (1/3 + 1/2 + 1/2 + 1/3) / 4.
    let p = precision_recall(&codes, &[0, 1, 0, 1], &[1.0]).unwrap();
    assert!((p[0] - 5.0 / 12.0).abs() < 1e-12, "{p:?}");
    let hits = nearest_documents(&codes, 0, 2).unwrap();
    assert_eq!(hits[0].0, 1);
    assert!(hits[0].1 > hits[1].1);
    assert!(nearest_documents(&codes, 9, 2).is_err());
}

#[test]
fn lsa_is_the_uncentred_truncated_svd() {
    // Rows are multiples of (3, 4): one singular direction, (0.6, 0.8), whatever the mean.
    let x = Matrix::new(3, 2, vec![3.0, 4.0, 6.0, 8.0, 1.5, 2.0]).unwrap();
    let lsa = Pca::fit_uncentered(&x, 1).unwrap();
    assert_eq!(lsa.mean, vec![0.0, 0.0]);
    let c = &lsa.components[0];
    assert!(
        (c[0] - 0.6).abs() < 1e-9 && (c[1] - 0.8).abs() < 1e-9,
        "{c:?}"
    );
    let z = lsa.transform(&x).unwrap();
    assert!((z.data[0] - 5.0).abs() < 1e-5 && (z.data[1] - 10.0).abs() < 1e-5);
    // Centred PCA of the same rows finds the same direction but different coordinates.
    let pca = Pca::fit(&x, 1).unwrap();
    assert!(pca.transform(&x).unwrap().data[0].abs() < 2.0);
}

fn write_docs(root: &Path, class: &str, docs: &[&str]) {
    std::fs::create_dir_all(root.join(class)).unwrap();
    for (i, d) in docs.iter().enumerate() {
        std::fs::write(root.join(class).join(format!("{i}")), d).unwrap();
    }
}

#[test]
fn documents_become_normalised_bags_of_words_over_the_training_vocabulary() {
    assert_eq!(
        tokenize("The GPU's 3 kernels, and THE a-b x gpu"),
        vec!["gpu", "kernels", "gpu"]
    );
    let dir = common::tmp();
    let train = dir.path().join("train");
    let test = dir.path().join("test");
    write_docs(
        &train,
        "space",
        &[
            "From: a@b\nSubject: orbit launch\n\norbit orbit orbit rocket",
            "rocket orbit the of",
        ],
    );
    write_docs(
        &train,
        "hockey",
        &["From: c@d\nSubject: goal\n\ngoal goal puck"],
    );
    write_docs(&test, "hockey", &["puck puck zamboni"]);
    write_docs(&test, "space", &["nothing known here"]);
    // Totals: orbit 5, goal 3, rocket 2, launch 1, puck 1 (ties alphabetical); headers other
    // than the subject are dropped ("from", "a", "b" never count).
    assert_eq!(
        vocabulary(&train, 4).unwrap(),
        vec!["orbit", "goal", "rocket", "launch"]
    );
    let mut cfg = DataConfig::for_source(&format!("text:{}", train.display()));
    cfg.test_source = Some(format!("text:{}", test.display()));
    cfg.vocabulary = Some(5);
    let tr = aekit::data::load(&cfg, Split::Train).unwrap();
    assert_eq!(tr.class_names.as_deref().unwrap(), ["hockey", "space"]);
    assert_eq!((tr.len(), tr.dim()), (3, 5));
    // The hockey post: goal x3 (subject + 2), puck x1 -> log 4 / log 4, log 2 / log 4.
    let row = tr.x.row(0);
    assert!(
        (row[1] - 1.0).abs() < 1e-6 && (row[4] - 0.5).abs() < 1e-6,
        "{row:?}"
    );
    assert_eq!(row[0], 0.0);
    let te = aekit::data::load(&cfg, Split::Test).unwrap();
    assert_eq!(te.x.row(0), &[0.0, 0.0, 0.0, 0.0, 1.0]);
    // A document with no known word stays all zero rather than dividing by zero.
    assert!(te.x.row(1).iter().all(|v| *v == 0.0));
    let err = aekit::data::load(&DataConfig::for_source("text:/no/such"), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/no/such") && err.contains("unpack"), "{err}");
}

#[test]
fn a_text_run_saves_the_vocabulary_it_trained_on() {
    let dir = common::tmp();
    let train = dir.path().join("train");
    write_docs(
        &train,
        "space",
        &["orbit orbit rocket launch", "rocket orbit"],
    );
    write_docs(&train, "hockey", &["goal goal puck", "puck goal"]);
    let mut cfg = aekit::RunConfig {
        data: DataConfig::for_source(&format!("text:{}", train.display())),
        ..Default::default()
    };
    cfg.data.vocabulary = Some(4);
    cfg.data.val_fraction = 0.0;
    cfg.train.epochs = 1;
    let out = dir.path().join("run");
    let fitted = aekit::train(&cfg, &aekit::fit::FitOptions::new(out.clone())).unwrap();
    assert_eq!(fitted.model.input_dim(), 4);
    let saved = std::fs::read_to_string(out.join("vocabulary.txt")).unwrap();
    assert_eq!(
        saved.lines().collect::<Vec<_>>(),
        vocabulary(&train, 4).unwrap()
    );
}

/// Hinton & Salakhutdinov's Fig. 4 claim on 20 Newsgroups: 10-d autoencoder codes retrieve
/// better than 10-d LSA at every recall level. 12 epochs here (the preset trains 50).
#[test]
fn autoencoder_codes_beat_lsa_on_20_newsgroups() {
    let Some(dir) = common::shared_data("20news") else {
        return;
    };
    let tmp = common::tmp();
    let unpacked = std::process::Command::new("tar")
        .args(["xzf", &dir.join("20news-bydate.tar.gz").to_string_lossy()])
        .current_dir(tmp.path())
        .status();
    if !unpacked.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: could not unpack 20news-bydate.tar.gz with tar");
        return;
    }
    let mut cfg = aekit::presets::apply("hinton2006-docs", &aekit::RunConfig::default()).unwrap();
    cfg.data = DataConfig::for_source(&format!(
        "text:{}",
        tmp.path().join("20news-bydate-train").display()
    ));
    cfg.data.test_source = Some(format!(
        "text:{}",
        tmp.path().join("20news-bydate-test").display()
    ));
    cfg.train.epochs = 12;
    let out = tmp.path().join("run");
    aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
    let run = aekit::Run::open(&out, &burn::tensor::Device::flex()).unwrap();
    let test = run.load_data(None, Split::Test).unwrap();
    let train = run.load_data(None, Split::Train).unwrap();
    assert_eq!((train.len(), test.len(), test.dim()), (11_314, 7_532, 2000));
    let labels = test.labels.as_deref().unwrap();
    let ae = precision_recall(&run.model.encode(&test.x).unwrap(), labels, &RECALL_LEVELS).unwrap();
    let lsa = Pca::fit_uncentered(&train.x, 10).unwrap();
    let base = precision_recall(&lsa.transform(&test.x).unwrap(), labels, &RECALL_LEVELS).unwrap();
    eprintln!("autoencoder 10-d: {ae:.3?}\nLSA 10-d:         {base:.3?}");
    for (l, (a, b)) in ae.iter().zip(&base).enumerate() {
        assert!(
            a > b,
            "recall {}: autoencoder {a} <= LSA {b}",
            RECALL_LEVELS[l]
        );
    }
}
