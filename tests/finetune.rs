//! `aekit finetune`: a run's encoder with a classification head learns the shapes' classes, the
//! classifier run reopens to the same answers, a frozen encoder stays bit for bit, `serve`
//! predicts what the library computes, and bad requests are refused with one line and nothing
//! written.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use aekit::data::Split;
use aekit::run::classifier::ClassifierRun;
use aekit::train::finetune::FinetuneConfig;
use common::serving::*;

fn aekit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args)
        .output()
        .unwrap()
}

fn refused(args: &[&str], needle: &str) {
    let o = aekit(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

fn finetune_cli(source: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "finetune",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--json",
    ];
    args.extend(extra);
    let o = aekit(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let json = &text[..text.rfind('}').unwrap() + 1];
    serde_json::from_str(json).unwrap()
}

#[test]
fn a_fine_tuned_encoder_classifies_the_shapes_and_its_run_reopens_to_the_same_answers() {
    let dir = common::tmp();
    let source = train_shapes_run(dir.path(), "dense");
    let out = dir.path().join("classifier");
    let report = finetune_cli(&source, &out, &["--labelled", "all", "--head", "mlp:32"]);
    // Four classes of shapes: chance is a quarter.
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
    for file in [
        "classifier.json",
        "head.safetensors",
        "classifier-metrics.jsonl",
        "evaluation.json",
        "report.html",
        "model.safetensors",
        "config.toml",
        "preprocess.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    let device = burn::tensor::Device::flex();
    let clf = ClassifierRun::open(&out, &device).unwrap();
    let test = clf.run.load_data(None, Split::Test).unwrap();
    let (again, predicted) = aekit::eval::classify::evaluate(&clf, &test).unwrap();
    assert_eq!(
        again.accuracy, accuracy,
        "reopened, the run scores as when written"
    );
    assert_eq!(serde_json::to_value(&again).unwrap(), report);
    let p = clf.probabilities(&test.x).unwrap();
    for r in 0..p.rows {
        let sum: f32 = p.row(r).iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {r} sums to {sum}");
    }
    assert_eq!(predicted, aekit::model::classifier::predicted_classes(&p));
    // The report shows the confusion matrix and the misclassified samples' figure.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Confusion matrix") && html.contains("Per class"));
    // A classifier run is still a run: its codes are the fine-tuned encoder's.
    let codes = clf.run.model.encode(&test.x).unwrap();
    let source_run = aekit::Run::open(&source, &device).unwrap();
    assert_ne!(codes.data, source_run.model.encode(&test.x).unwrap().data);
}

#[test]
fn a_frozen_encoder_stays_bit_for_bit_and_a_balanced_choice_takes_each_class_share() {
    let dir = common::tmp();
    let source = train_shapes_run(dir.path(), "dense");
    let device = burn::tensor::Device::flex();
    let run = aekit::Run::open(&source, &device).unwrap();
    let train = run.load_data(None, Split::Train).unwrap();
    let mut cfg = FinetuneConfig::default();
    cfg.train.epochs = 4;
    cfg.freeze_epochs = 4;
    cfg.labels = aekit::data::LabelChoice::Balanced(30);
    let out = dir.path().join("frozen");
    let done = aekit::fit::finetune(&run, &train, None, &cfg, &out, false, true, &device).unwrap();
    assert_eq!(done.run.info.train_rows, 30);
    assert!(done.history.iter().all(|e| e.encoder_frozen));
    assert_eq!(
        common::weights_bits(&out),
        common::weights_bits(&source),
        "the head alone learnt: the encoder's weights are the source's to the bit"
    );
    assert!(done.evaluation.is_none(), "no test data was given");

    // Unfrozen after one epoch, the encoder moves; the same seed gives the same weights.
    cfg.freeze_epochs = 1;
    let tuned = |name: &str| {
        let out = dir.path().join(name);
        aekit::fit::finetune(&run, &train, None, &cfg, &out, false, true, &device).unwrap();
        (
            common::weights_bits(&out),
            std::fs::read(out.join("head.safetensors")).unwrap(),
        )
    };
    let (a, b) = (tuned("a"), tuned("b"));
    assert_ne!(a.0, common::weights_bits(&source));
    assert!(a == b, "fine-tuning is a pure function of the seed");
}

#[test]
fn serve_predicts_what_the_library_computes_and_an_autoencoder_refuses() {
    let dir = common::tmp();
    let source = train_shapes_run(dir.path(), "dense");
    let out = dir.path().join("shapes-classifier");
    finetune_cli(&source, &out, &["--epochs", "5"]);
    let device = burn::tensor::Device::flex();
    let clf = ClassifierRun::open(&out, &device).unwrap();
    let test = clf.run.load_data(None, Split::Test).unwrap();
    let x = test.x.head(7);
    let want = clf.probabilities(&x).unwrap();
    let mut raw = x.clone();
    clf.run.preprocessor.invert(&mut raw).unwrap();

    let server = TestServer::start(&[out.clone(), source.clone()], unbatched());
    let agent = agent();
    let json = assert_predicts(&server, "shapes-classifier", &raw, &want);
    assert_eq!(json["class_names"].as_array().unwrap().len(), 7);
    let listed = get(&agent, &server.url("/v1/runs")).json();
    assert_eq!(listed["runs"][0]["classifier"]["classes"], 4);

    let body = serde_json::json!({ "x": matrix_rows(&raw) });
    let refusal = post_json(&agent, &server.url("/v1/runs/shapes-dense/predict"), &body);
    assert_eq!(refusal.status, 400);
    let text = String::from_utf8_lossy(&refusal.body).to_string();
    assert!(text.contains("not a classifier"), "{text}");
}

#[test]
fn bad_fine_tunings_are_refused_with_one_line_and_write_nothing() {
    let dir = common::tmp();
    let source = train_shapes_run(dir.path(), "dense");
    let cvae = train_shapes_run(dir.path(), "cvae");
    let (src, out) = (
        source.to_str().unwrap(),
        dir.path().join("out").to_str().unwrap().to_string(),
    );
    let base = ["finetune", src, "--out", &out, "-q"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    for (extra, needle) in [
        (&["--labelled", "0"][..], "--labelled '0'"),
        (&["--labelled", "100000"], "only 1000 labelled rows"),
        (
            &["--labelled", "2"],
            "fewer than one row for each of the 4 classes",
        ),
        (&["--head", "mlp:0"], "head 'mlp:0'"),
        (
            &["--freeze-epochs", "50"],
            "--freeze-epochs 50 is more than",
        ),
        (&["--val-fraction", "0.95"], "val"),
        (&["--scale", "standardize"], "--scale applies when training"),
    ] {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, needle);
        assert!(!Path::new(&out).exists(), "{extra:?} wrote {out}");
    }
    refused(
        &["finetune", cvae.to_str().unwrap(), "--out", &out, "-q"],
        "is a conditional model",
    );
    refused(
        &[&base[..], &["--init-from", src]].concat(),
        "--init-from does not apply to fine-tuning",
    );
    refused(&["finetune", src, "--out", src, "-q"], "already exists");
    refused(
        &["finetune", src, "--out", src, "-q", "--force"],
        "is the run being fine-tuned",
    );
    assert!(!Path::new(&out).exists());
    // An existing --out is kept unless --force replaces it, as a whole.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(Path::new(&out).join("keep.txt"), "mine").unwrap();
    refused(
        &base,
        "already exists; choose another --out or pass --force",
    );
    assert!(Path::new(&out).join("keep.txt").is_file());
    let o = aekit(&[&base[..], &["--force", "--epochs", "1"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!Path::new(&out).join("keep.txt").exists());
    assert!(Path::new(&out).join("classifier.json").is_file());
    // Opening an autoencoder run as a classifier names what is missing.
    let e = ClassifierRun::open(&source, &burn::tensor::Device::flex()).unwrap_err();
    assert!(e.to_string().contains("not a classifier"), "{e}");
}
