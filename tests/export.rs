//! `aekit export`: the ONNX model's structure (opset, inputs, outputs, metadata), and bad
//! requests refused with one line, exit code 2 and nothing written. ONNX Runtime runs the
//! exported models against aekit's answers in python/tests/test_onnx.py.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use onnx_protobuf::Message;

fn aekit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args)
        .output()
        .unwrap()
}

fn train(dir: &Path, name: &str, extra: &[&str]) -> String {
    let out = dir.join(name);
    let mut args = vec![
        "train",
        "--shapes-train",
        "128",
        "--shapes-test",
        "32",
        "--epochs",
        "1",
        "-q",
        "--no-report",
        "--out",
    ];
    let path = out.to_str().unwrap().to_string();
    args.push(&path);
    args.extend(extra);
    let o = aekit(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path
}

fn refused(args: &[&str], needle: &str) {
    let o = aekit(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn an_exported_score_graph_has_a_dynamic_batch_the_threshold_and_the_preprocessing() {
    let dir = common::tmp();
    let run = train(dir.path(), "dense", &["--hidden", "16", "--latent", "3"]);
    let onnx = dir.path().join("score.onnx");
    let o = aekit(&[
        "export",
        &run,
        "--onnx",
        onnx.to_str().unwrap(),
        "--part",
        "score",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model =
        onnx_protobuf::ModelProto::parse_from_bytes(&std::fs::read(&onnx).unwrap()).unwrap();
    assert_eq!(model.opset_import[0].version, 17);
    let graph = model.graph.as_ref().unwrap();
    let names = |v: &[onnx_protobuf::ValueInfoProto]| -> Vec<String> {
        v.iter().map(|i| i.name.clone()).collect()
    };
    assert_eq!(names(&graph.input), ["x"]);
    assert_eq!(names(&graph.output), ["score", "feature_errors", "anomaly"]);
    let meta: std::collections::HashMap<_, _> = model
        .metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&run).join("anomaly.json")).unwrap(),
    )
    .unwrap();
    let threshold: f64 = meta["aekit.threshold"].parse().unwrap();
    assert_eq!(threshold, stored["threshold"].as_f64().unwrap());
    assert_eq!(meta["aekit.part"], "score");
    assert!(meta["aekit.preprocessing"].contains("\"scaling\":\"unit\""));
    // The weights are the run's, not copies of other values.
    let weights =
        aekit::model::safetensors::read(&Path::new(&run).join("model.safetensors")).unwrap();
    let first = graph
        .initializer
        .iter()
        .find(|t| t.name == "encoder.0.weight")
        .unwrap();
    assert_eq!(first.float_data, weights["encoder.0.weight"].data);
}

#[test]
fn bad_exports_are_refused_with_one_line_and_leave_nothing() {
    let dir = common::tmp();
    let run = train(dir.path(), "dense", &["--hidden", "8", "--latent", "2"]);
    let out = dir.path().join("m.onnx");
    let out_s = out.to_str().unwrap();
    assert!(aekit(&["export", &run, "--onnx", out_s]).status.success());
    refused(
        &["export", &run, "--onnx", out_s],
        "already exists; give --force",
    );
    assert!(
        aekit(&["export", &run, "--onnx", out_s, "--force"])
            .status
            .success()
    );
    // A directory that cannot be made: nothing is left behind.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, b"").unwrap();
    let inside = blocked.join("m.onnx");
    refused(
        &["export", &run, "--onnx", inside.to_str().unwrap()],
        "file",
    );
    refused(
        &[
            "export", &run, "--onnx", out_s, "--part", "middle", "--force",
        ],
        "invalid value 'middle'",
    );
    let elbo = dir.path().join("elbo.onnx");
    refused(
        &[
            "export",
            &run,
            "--onnx",
            elbo.to_str().unwrap(),
            "--part",
            "score",
            "--threshold",
            "1",
            "--score",
            "negative-elbo",
        ],
        "negative-elbo",
    );
    assert!(!elbo.exists());
    let bits = train(
        dir.path(),
        "bits",
        &["--hidden", "8", "--latent", "2", "--binarize"],
    );
    refused(
        &[
            "export",
            &bits,
            "--onnx",
            elbo.to_str().unwrap(),
            "--part",
            "encoder",
        ],
        "binarised",
    );
    assert!(
        aekit(&[
            "export",
            &bits,
            "--onnx",
            elbo.to_str().unwrap(),
            "--part",
            "decoder"
        ])
        .status
        .success()
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".aekit-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
