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
    let elbo_s = elbo.to_str().unwrap();
    let to_elbo = |extra: &[&'static str]| -> Vec<&str> {
        [&["export", run.as_str(), "--onnx", elbo_s][..], extra].concat()
    };
    let negative_elbo = [
        "--threshold",
        "1",
        "--score",
        "negative-elbo",
        "--part",
        "score",
    ];
    refused(&to_elbo(&negative_elbo), "negative-elbo");
    assert!(!elbo.exists());
    // A score needs a threshold: the stored one, or one given.
    std::fs::remove_file(Path::new(&run).join("anomaly.json")).unwrap();
    refused(
        &to_elbo(&["--part", "score"]),
        "no stored anomaly threshold to export the score with; give --threshold",
    );
    let o = aekit(&to_elbo(&["--part", "score", "--threshold", "2.5"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(&elbo).unwrap();
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

#[test]
fn encode_writes_embedding_projector_files_with_a_sprite_of_the_images() {
    let dir = common::tmp();
    let run = train(dir.path(), "dense", &["--hidden", "8", "--latent", "2"]);
    let proj = dir.path().join("proj");
    let z = dir.path().join("z.npy");
    let o = aekit(&[
        "encode",
        &run,
        "--out",
        z.to_str().unwrap(),
        "--projector",
        proj.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let codes = aekit::data::matrix_file::read(&z).unwrap();
    let vectors: Vec<f32> = std::fs::read_to_string(proj.join("vectors.tsv"))
        .unwrap()
        .lines()
        .flat_map(|l| {
            l.split('\t')
                .map(|v| v.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(vectors, codes.data, "the codes, to the bit");
    let opened = aekit::Run::open(Path::new(&run), &burn::tensor::Device::flex()).unwrap();
    let test = opened.load_data(None, aekit::Split::Test).unwrap();
    let names = test.class_names.clone().unwrap();
    let metadata = std::fs::read_to_string(proj.join("metadata.tsv")).unwrap();
    let mut lines = metadata.lines();
    assert_eq!(lines.next(), Some("label\tclass\tindex"));
    for (i, line) in lines.enumerate() {
        let l = test.labels.as_ref().unwrap()[i];
        assert_eq!(line, format!("{l}\t{}\t{i}", names[l as usize]));
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(proj.join("projector_config.json")).unwrap())
            .unwrap();
    let embedding = &config["embeddings"][0];
    assert_eq!(embedding["tensorShape"], serde_json::json!([32, 2]));
    assert_eq!(
        embedding["sprite"]["singleImageDim"],
        serde_json::json!([28, 28])
    );
    // 32 images on a 6×6 sheet; the first tile is the first image, its range to bytes.
    let sprite = image::open(proj.join("sprite.png")).unwrap().to_rgb8();
    assert_eq!(sprite.dimensions(), (6 * 28, 6 * 28));
    let raw = opened.to_raw(test.x.clone()).unwrap();
    let (lo, hi) = raw
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    for (k, v) in raw.row(0).iter().enumerate() {
        let expected = (((v - lo) / (hi - lo)) * 255.0).round() as u8;
        let px = sprite.get_pixel((k % 28) as u32, (k / 28) as u32);
        assert_eq!(px.0, [expected; 3]);
    }
}
