//! End-to-end tests of the `aekit` command: the main job, every subcommand, and each bad input
//! giving a one-line error that names the file, exit code 2, and no partial output.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn aekit(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args)
        .current_dir(cwd)
        .env("AEKIT_CACHE", cwd.join("cache"))
        .output()
        .expect("runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs `aekit` with `args`, which must succeed and print JSON.
fn aekit_json(args: &[&str], cwd: &Path) -> serde_json::Value {
    let out = ok(&aekit(args, cwd));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Asserts exit code 2 and a single `error:` line containing every needle.
fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    for n in needles {
        assert!(line.contains(n), "'{line}' should contain '{n}'");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// One epoch on 100 shapes into `out`.
fn train_quick(dir: &Path, out: &str) -> Output {
    aekit(
        &[
            "train", "--data", "shapes", "--limit", "100", "--epochs", "1", "--out", out,
        ],
        dir,
    )
}

const TINY: &[&str] = &[
    "--hidden",
    "32",
    "--latent",
    "4",
    "--epochs",
    "2",
    "--batch-size",
    "50",
    "--quiet",
];

fn train_tiny(dir: &Path, out: &str, extra: &[&str]) -> String {
    let mut args = vec!["train", "--data", "shapes", "--limit", "300", "--out", out];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    ok(&aekit(&args, dir))
}

#[test]
fn main_job_and_every_subcommand() {
    let d = common::tmp();
    let dir = d.path();
    let out = train_tiny(dir, "runs/a", &[]);
    assert!(out.contains("run written to runs/a"), "{out}");

    let json = ok(&aekit(
        &["eval", "runs/a", "--json", "--test-limit", "200"],
        dir,
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["samples"], 200);
    assert_eq!(v["per_class"].as_array().unwrap().len(), 4);
    let sse = v["sse_per_image"].as_f64().unwrap();
    let mse = v["mse_per_pixel"].as_f64().unwrap();
    assert!((sse - mse * 784.0).abs() < 1e-6 * sse.max(1.0));

    let table = ok(&aekit(&["eval", "runs/a", "--test-limit", "50"], dir));
    assert!(table.contains("squared error per image") && table.contains("triangle"));

    ok(&aekit(
        &[
            "encode",
            "runs/a",
            "--out",
            "z.npy",
            "--labels-out",
            "y.npy",
            "--test-limit",
            "30",
        ],
        dir,
    ));
    let z = aekit::data::npy::read(&dir.join("z.npy"), Some(&dir.join("y.npy"))).unwrap();
    assert_eq!((z.len(), z.dim()), (30, 4));
    ok(&aekit(
        &["encode", "runs/a", "--out", "z.csv", "--test-limit", "30"],
        dir,
    ));
    ok(&aekit(
        &[
            "decode", "runs/a", "--codes", "z.csv", "--out", "x.npy", "--png", "x.png",
        ],
        dir,
    ));
    let x = aekit::data::npy::read(&dir.join("x.npy"), None).unwrap();
    assert_eq!((x.len(), x.dim()), (30, 784));
    assert!(dir.join("x.png").is_file());

    ok(&aekit(
        &[
            "reconstruct",
            "runs/a",
            "--out",
            "r.npy",
            "-n",
            "8",
            "--test-limit",
            "40",
        ],
        dir,
    ));
    let png = image::open(dir.join("runs/a/reconstructions.png")).unwrap();
    // 8 cells of 28*2 pixels plus 2-pixel gaps, two rows.
    assert_eq!((png.width(), png.height()), (2 + 8 * 58, 2 + 2 * 58));
    let r = aekit::data::npy::read(&dir.join("r.npy"), None).unwrap();
    assert_eq!(r.len(), 40);

    // decode(encode(x)) through files equals reconstruct.
    ok(&aekit(
        &["encode", "runs/a", "--out", "z40.npy", "--test-limit", "40"],
        dir,
    ));
    ok(&aekit(
        &["decode", "runs/a", "--codes", "z40.npy", "--out", "x40.npy"],
        dir,
    ));
    let x40 = aekit::data::npy::read(&dir.join("x40.npy"), None).unwrap();
    for (a, b) in x40.x.data.iter().zip(&r.x.data) {
        assert!((a - b).abs() < 1e-5);
    }

    let info = ok(&aekit(&["info", "runs/a"], dir));
    assert!(info.contains("dense 784-32-4-32-784") && info.contains("encoder.0.weight"));
    let info: serde_json::Value = aekit_json(&["info", "runs/a", "--json"], dir);
    assert_eq!(
        info["parameters"],
        784 * 32 + 32 + 32 * 4 + 4 + 4 * 32 + 32 + 32 * 784 + 784
    );

    train_tiny(dir, "runs/asym", &["--decoder-hidden", "16,48"]);
    let info = ok(&aekit(&["info", "runs/asym"], dir));
    assert!(info.contains("dense 784-32-4-16-48-784"), "{info}");

    ok(&aekit(&["init", "my.toml"], dir));
    fails_with(
        &aekit(&["init", "my.toml"], dir),
        &["my.toml", "already exists"],
    );
    let out = ok(&aekit(
        &[
            "train", "--config", "my.toml", "--limit", "200", "--epochs", "1", "--quiet", "--out",
            "runs/b",
        ],
        dir,
    ));
    assert!(out.contains("runs/b"));
    assert!(ok(&aekit(&["presets"], dir)).contains("hinton2006"));
}

#[test]
fn compare_and_probe_put_runs_beside_pca() {
    let d = common::tmp();
    let dir = d.path();
    train_tiny(dir, "runs/p", &[]);
    let limits = ["--limit", "300", "--test-limit", "100"];
    let mut args = vec![
        "compare", "runs/p", "--dims", "2,4", "--json", "--chart", "c.png",
    ];
    args.extend_from_slice(&limits);
    let rows: serde_json::Value = aekit_json(&args, dir);
    let rows = rows.as_array().unwrap();
    // PCA at 2 and 4 (the run's size is already listed), then the run.
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["method"], "PCA");
    assert!(rows[0]["sse_per_image"].as_f64() > rows[1]["sse_per_image"].as_f64());
    assert_eq!(rows[2]["dims"], 4);
    assert_eq!(rows[2]["run"], "runs/p");
    let png = image::open(dir.join("c.png")).unwrap();
    assert_eq!((png.width(), png.height()), (720, 480));
    let table = ok(&aekit(
        &[
            "compare",
            "--data",
            "shapes",
            "--dims",
            "1",
            "--shapes-train",
            "200",
            "--shapes-test",
            "50",
        ],
        dir,
    ));
    assert!(
        table.contains("PCA") && table.contains("50 test samples"),
        "{table}"
    );

    let mut args = vec![
        "probe",
        "runs/p",
        "--json",
        "-k",
        "3",
        "--probe-epochs",
        "2",
    ];
    args.extend_from_slice(&limits);
    let v: serde_json::Value = aekit_json(&args, dir);
    assert_eq!(v["test_samples"], 100);
    for codes in ["autoencoder", "pca"] {
        assert_eq!(v[codes]["dims"], 4);
        let acc = v[codes]["knn_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    fails_with(
        &aekit(&["compare", "--dims", "0,2", "--shapes-train", "50"], dir),
        &["--dims"],
    );
    fails_with(
        &aekit(&["compare", "--dims", "900", "--shapes-train", "50"], dir),
        &["900", "784 features"],
    );
}

#[test]
fn score_flags_anomalies_and_writes_scores() {
    let d = common::tmp();
    let dir = d.path();
    train_tiny(dir, "runs/bars", &["--train-classes", "3"]);
    let v: serde_json::Value = aekit_json(
        &[
            "score",
            "runs/bars",
            "--json",
            "--test-limit",
            "80",
            "--out",
            "s.csv",
        ],
        dir,
    );
    assert_eq!(v["samples"], 80);
    assert_eq!(v["contamination"], 0.1);
    // The run was trained on bars only, so every other shape counts as an anomaly.
    let labels = aekit::data::load(
        &aekit::DataConfig {
            test_limit: Some(80),
            ..Default::default()
        },
        aekit::Split::Test,
    )
    .unwrap()
    .labels
    .unwrap();
    let others = labels.iter().filter(|l| **l != 3).count();
    assert_eq!(v["anomalies"], others);
    let auc = v["roc_auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc));
    let csv = std::fs::read_to_string(dir.join("s.csv")).unwrap();
    assert_eq!(csv.lines().count(), 81);
    assert!(csv.starts_with("index,score,anomaly\n0,"));
    let flagged = csv.lines().skip(1).filter(|l| l.ends_with(",1")).count();
    assert_eq!(v["flagged"], flagged);
    let t = ok(&aekit(
        &[
            "score",
            "runs/bars",
            "--threshold",
            "0",
            "--test-limit",
            "10",
        ],
        dir,
    ));
    assert!(t.contains("flagged as anomalies: 10"), "{t}");
    fails_with(
        &aekit(&["score", "runs/bars", "--out", "s.txt"], dir),
        &["s.txt", ".csv"],
    );
    fails_with(
        &aekit(&["score", "runs/bars", "--score", "negative-elbo"], dir),
        &["needs a VAE"],
    );
    assert!(!dir.join("s.txt").exists());
}

#[test]
fn paired_task_commands_restore_originals_and_small_images() {
    let d = common::tmp();
    let dir = d.path();
    train_tiny(dir, "runs/up", &["--task", "upscale:2", "--residual"]);
    let out = ok(&aekit(
        &[
            "upscale",
            "runs/up",
            "--test-limit",
            "20",
            "-n",
            "4",
            "--out",
            "o.npy",
        ],
        dir,
    ));
    assert!(
        out.contains("dB (bilinear)") && out.contains("input, output, original"),
        "{out}"
    );
    assert_eq!(
        aekit::data::npy::read(&dir.join("o.npy"), None)
            .unwrap()
            .dim(),
        784
    );
    let png = image::open(dir.join("runs/up/upscale.png")).unwrap();
    assert_eq!(png.height(), 2 + 3 * 58);
    // New 14x14 images are brought to 28x28 first.
    std::fs::create_dir_all(dir.join("small")).unwrap();
    for i in 0..3 {
        image::GrayImage::from_fn(14, 14, |x, y| image::Luma([((x + y + i) * 9) as u8]))
            .save(dir.join(format!("small/{i}.png")))
            .unwrap();
    }
    let out = ok(&aekit(
        &[
            "upscale",
            "runs/up",
            "--data",
            "images:small",
            "--split",
            "train",
            "--out",
            "s.csv",
        ],
        dir,
    ));
    assert!(
        out.contains("[1, 14, 14]") && out.contains("[1, 28, 28]"),
        "{out}"
    );
    let csv = std::fs::read_to_string(dir.join("s.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3);
    fails_with(
        &aekit(&["recolor", "runs/up"], dir),
        &["not trained for recolor"],
    );
    fails_with(
        &aekit(&["train", "--data", "shapes", "--task", "recolor"], dir),
        &["recolor needs colour"],
    );
    fails_with(
        &aekit(&["train", "--task", "zoom:2"], dir),
        &["unknown task"],
    );
}

#[test]
fn text_runs_retrieve_documents_and_measure_retrieval() {
    let d = common::tmp();
    let dir = d.path();
    let topics = [
        ("space", "orbit rocket launch moon"),
        ("hockey", "goal puck ice team"),
    ];
    for (class, words) in topics {
        std::fs::create_dir_all(dir.join("docs").join(class)).unwrap();
        for i in 0..12 {
            let w: Vec<&str> = words.split(' ').collect();
            let text = format!("{} {} {}", w[i % 4], w[(i + 1) % 4], w[(i * 3) % 4]);
            std::fs::write(dir.join("docs").join(class).join(i.to_string()), text).unwrap();
        }
    }
    let mut args = vec![
        "train",
        "--data",
        "text:docs",
        "--out",
        "runs/t",
        "--loss",
        "bce",
    ];
    args.extend_from_slice(&["--output-activation", "sigmoid"]);
    args.extend_from_slice(TINY);
    ok(&aekit(&args, dir));
    let v: serde_json::Value = aekit_json(
        &["retrieve", "runs/t", "--query", "3", "-k", "4", "--json"],
        dir,
    );
    assert_eq!(v["class"], "hockey");
    assert_eq!(v["nearest"].as_array().unwrap().len(), 4);
    let v: serde_json::Value = aekit_json(
        &["eval", "runs/t", "--retrieval", "--lsa-dims", "2", "--json"],
        dir,
    );
    let curves = v["retrieval"].as_array().unwrap();
    assert_eq!(curves.len(), 2);
    assert_eq!(curves[1]["method"], "LSA");
    assert_eq!(curves[0]["precision"].as_array().unwrap().len(), 11);
    assert!(dir.join("runs/t/retrieval.png").is_file());
    fails_with(
        &aekit(&["retrieve", "runs/t", "--query", "999"], dir),
        &["out of range"],
    );
}

#[test]
fn resume_continues_a_run() {
    let d = common::tmp();
    let dir = d.path();
    train_tiny(dir, "runs/r", &[]);
    let out = ok(&aekit(
        &["train", "--resume", "runs/r", "--epochs", "3", "--quiet"],
        dir,
    ));
    assert!(out.contains("runs/r"));
    let m = aekit::RunDir::new(dir.join("runs/r")).metrics().unwrap();
    assert_eq!(m.iter().map(|m| m.epoch).collect::<Vec<_>>(), vec![1, 2, 3]);
}

/// Flags come from the config structs' fields: every key of `aekit init`'s template is a flag
/// of `aekit train`, a flag of another variant names the variant that takes it, and flags a
/// command would ignore are refused.
#[test]
fn every_config_key_is_a_flag_and_ignored_flags_are_refused() {
    let d = common::tmp();
    let dir = d.path();
    ok(&aekit(&["init", "t.toml"], dir));
    let template = std::fs::read_to_string(dir.join("t.toml")).unwrap();
    let help = ok(&aekit(&["train", "--help"], dir));
    let renamed = [
        ("kind", "model"),
        ("source", "data"),
        ("test_source", "test-data"),
    ];
    let mut keys = 0;
    for line in template
        .lines()
        .filter(|l| !l.starts_with("# ") || l.ends_with(" ="))
    {
        let Some((key, _)) = line.trim_start_matches("# ").split_once(" =") else {
            continue;
        };
        let flag = renamed
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(key.replace('_', "-"), |(_, f)| f.to_string());
        assert!(
            help.contains(&format!("--{flag} ")),
            "no --{flag} for key {key}"
        );
        keys += 1;
    }
    assert!(keys > 40, "{keys} keys in the template");

    fails_with(
        &aekit(&["train", "--beta", "2"], dir),
        &["--beta", "dense", "--model vae"],
    );
    fails_with(
        &aekit(&["train", "--model", "conv", "--hidden", "8"], dir),
        &["--hidden", "--model dense or --model vae"],
    );
    train_tiny(dir, "runs/r", &[]);
    fails_with(
        &aekit(&["train", "--resume", "runs/r", "--lr", "0.1"], dir),
        &["--resume", "--lr", "--epochs"],
    );
    fails_with(
        &aekit(&["train", "--resume", "runs/r", "--model", "vae"], dir),
        &["--resume", "--model"],
    );
    fails_with(
        &aekit(&["eval", "runs/r", "--scale", "unit"], dir),
        &["--scale", "training"],
    );
}

#[test]
fn bad_inputs_give_one_line_errors_and_exit_code_2() {
    let d = common::tmp();
    let dir = d.path();
    train_tiny(dir, "runs/a", &[]);

    // Zero samples: a clear error, not a failed assertion.
    fails_with(
        &aekit(&["eval", "runs/a", "--test-limit", "0"], dir),
        &["no samples"],
    );

    // NaN and infinities are refused wherever a number is taken.
    fails_with(
        &aekit(&["train", "--max-minutes", "NaN", "--out", "runs/nan"], dir),
        &["--max-minutes", "finite"],
    );
    fails_with(
        &aekit(&["score", "runs/a", "--threshold", "inf"], dir),
        &["--threshold", "finite"],
    );
    fails_with(
        &aekit(&["plot", "runs/a", "traverse", "--deltas", "1,NaN"], dir),
        &["--deltas", "finite"],
    );

    // Absurd sizes are refused before anything is allocated, leaving no run directory.
    for (args, needle) in [
        (&["--hidden", "100000000"][..], "parameters"),
        (&["--latent", "4000000000"][..], "parameters"),
        (
            &["--model", "conv", "--encoder", "dense:1000000000"][..],
            "parameters",
        ),
        (&["--shapes-train", "100000000"][..], "--shapes-train"),
        (&["--threads", "100000"][..], "--threads"),
    ] {
        let mut a = vec!["train", "--out", "runs/huge", "--quiet"];
        a.extend_from_slice(args);
        fails_with(&aekit(&a, dir), &[needle]);
        assert!(
            !dir.join("runs/huge").exists(),
            "{args:?} left a run directory"
        );
    }
    fails_with(
        &aekit(&["plot", "runs/a", "manifold", "--grid", "100000"], dir),
        &["--grid", "memory"],
    );

    // A command's outputs appear together or not at all: the grid is not left behind when
    // the NPY beside it cannot be written, and no staging file stays.
    std::fs::write(dir.join("afile"), "x").unwrap();
    fails_with(
        &aekit(
            &[
                "reconstruct",
                "runs/a",
                "--png",
                "grid.png",
                "--out",
                "afile/x.npy",
            ],
            dir,
        ),
        &["afile"],
    );
    assert!(!dir.join("grid.png").exists(), "a partial output was left");
    let staging = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".aekit-")
        })
        .count();
    assert_eq!(staging, 0);

    // Missing file.
    fails_with(
        &aekit(&["train", "--data", "csv:nope.csv", "--out", "o1"], dir),
        &["nope.csv", "No such file"],
    );
    assert!(!dir.join("o1").exists(), "no partial output");

    // Truncated and wrong-magic IDX, and mismatched counts.
    let images = aekit::data::idx::IdxArray {
        dtype: aekit::data::idx::IdxType::U8,
        dims: vec![4, 28, 28],
        values: vec![0.0; 4 * 784],
    };
    let bytes = aekit::data::idx::encode(&images);
    std::fs::write(dir.join("trunc-idx3"), &bytes[..1000]).unwrap();
    fails_with(
        &aekit(&["train", "--data", "idx:trunc-idx3", "--out", "o2"], dir),
        &["trunc-idx3", "truncated"],
    );
    let mut magic = bytes.clone();
    magic[2] = 0x77;
    std::fs::write(dir.join("magic-idx3"), &magic).unwrap();
    fails_with(
        &aekit(&["train", "--data", "idx:magic-idx3", "--out", "o3"], dir),
        &["magic-idx3", "magic"],
    );
    std::fs::write(dir.join("good-idx3"), &bytes).unwrap();
    let labels = aekit::data::idx::IdxArray {
        dtype: aekit::data::idx::IdxType::U8,
        dims: vec![3],
        values: vec![0.0; 3],
    };
    std::fs::write(dir.join("lab-idx1"), aekit::data::idx::encode(&labels)).unwrap();
    fails_with(
        &aekit(
            &["train", "--data", "idx:good-idx3,lab-idx1", "--out", "o4"],
            dir,
        ),
        &["lab-idx1", "3 labels but"],
    );

    // NaN in CSV, an empty dataset.
    std::fs::write(dir.join("nan.csv"), "a,b\n1,2\nnan,3\n").unwrap();
    fails_with(
        &aekit(&["train", "--data", "csv:nan.csv", "--out", "o5"], dir),
        &["nan.csv", "line 3 column 1"],
    );
    std::fs::write(dir.join("empty.csv"), "").unwrap();
    fails_with(
        &aekit(&["train", "--data", "csv:empty.csv", "--out", "o6"], dir),
        &["empty.csv", "empty"],
    );
    for o in ["o2", "o3", "o4", "o5", "o6"] {
        assert!(!dir.join(o).exists(), "{o}: no partial output");
    }

    // A model whose input size differs from the data.
    std::fs::write(dir.join("small.csv"), "a,b,c\n1,2,3\n4,5,6\n").unwrap();
    fails_with(
        &aekit(&["eval", "runs/a", "--data", "csv:small.csv"], dir),
        &["small.csv", "3 features", "expects 784"],
    );

    // An unwritable output directory.
    let ro = dir.join("readonly");
    std::fs::create_dir(&ro).unwrap();
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o555);
    std::fs::set_permissions(&ro, perm).unwrap();
    let out = train_quick(dir, "readonly/run");
    // Root ignores permission bits; only check the refusal when the OS enforces them.
    if std::fs::write(ro.join("probe"), b"x").is_err() {
        fails_with(&out, &["readonly"]);
    }
    let out = aekit(&["encode", "runs/a", "--out", "z.txt"], dir);
    fails_with(&out, &["z.txt", ".npy or .csv"]);
    std::fs::write(dir.join("file"), b"x").unwrap();
    fails_with(
        &aekit(
            &[
                "encode",
                "runs/a",
                "--out",
                "file/z.npy",
                "--test-limit",
                "5",
            ],
            dir,
        ),
        &["file"],
    );

    // A checkpoint from another model.
    train_tiny(dir, "runs/b", &["--hidden", "16"]);
    std::fs::copy(
        dir.join("runs/b/model.safetensors"),
        dir.join("runs/a/model.safetensors"),
    )
    .unwrap();
    fails_with(
        &aekit(&["eval", "runs/a"], dir),
        &["model.safetensors", "another model"],
    );

    // Not a run directory; an unknown dataset; a bad config key.
    fails_with(&aekit(&["info", "cache"], dir), &["cache"]);
    fails_with(
        &aekit(&["train", "--data", "hdf5:x"], dir),
        &["unknown dataset"],
    );
    std::fs::write(
        dir.join("bad.toml"),
        "[data]\nsource = \"shapes\"\nsauce = 1\n[model]\nkind = \"dense\"\nlatent = 2\n",
    )
    .unwrap();
    fails_with(
        &aekit(&["train", "--config", "bad.toml"], dir),
        &["bad.toml", "data.sauce"],
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_finishes_the_run() {
    stop_saves_a_checkpoint_and_resume_finishes_the_run("INT");
}

/// SIGTERM (a scheduler, `docker stop`) stops training as Ctrl-C does.
#[test]
fn sigterm_saves_a_checkpoint_and_resume_finishes_the_run() {
    stop_saves_a_checkpoint_and_resume_finishes_the_run("TERM");
}

/// While one process trains a run, another can neither resume it nor write over it.
fn stop_saves_a_checkpoint_and_resume_finishes_the_run(signal: &str) {
    let d = common::tmp();
    let dir = d.path();
    let child = Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args([
            "train", "--data", "shapes", "--hidden", "64", "--latent", "4", "--epochs", "500",
            "--out", "runs/c", "--quiet",
        ])
        .current_dir(dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until at least one epoch is recorded, then press Ctrl-C.
    let metrics = dir.join("runs/c/metrics.jsonl");
    for _ in 0..600 {
        if metrics.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(metrics.exists(), "training never finished an epoch");
    fails_with(
        &aekit(&["train", "--resume", "runs/c", "--quiet"], dir),
        &["runs/c", "another aekit process"],
    );
    fails_with(
        &aekit(
            &["train", "--data", "shapes", "--out", "runs/c", "--quiet"],
            dir,
        ),
        &["runs/c", "another aekit process"],
    );
    let kill = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume runs/c"), "{err}");
    let state: aekit::train::TrainState =
        aekit::io::read_json(&dir.join("runs/c/checkpoint/state.json")).unwrap();
    assert!(state.global_step > 0);
    let done = state.epoch + 1;
    let out = ok(&aekit(
        &[
            "train",
            "--resume",
            "runs/c",
            "--epochs",
            &done.to_string(),
            "--quiet",
        ],
        dir,
    ));
    assert!(out.contains("runs/c"));
    let m = aekit::RunDir::new(dir.join("runs/c")).metrics().unwrap();
    assert_eq!(m.len(), done);
}

#[test]
fn output_under_a_file_is_refused_before_training() {
    let d = common::tmp();
    let dir = d.path();
    std::fs::write(dir.join("plain"), b"x").unwrap();
    let out = train_quick(dir, "plain/run");
    fails_with(&out, &["plain"]);
    assert_eq!(std::fs::read(dir.join("plain")).unwrap(), b"x");
}

#[test]
fn denoising_run_reports_psnr_and_draws_the_grid() {
    let d = common::tmp();
    let dir = d.path();
    ok(&aekit(
        &[
            "train",
            "--data",
            "shapes",
            "--hidden",
            "128",
            "--latent",
            "8",
            "--epochs",
            "8",
            "--lr",
            "3e-3",
            "--noise",
            "gaussian:0.3",
            "--out",
            "runs/dn",
            "--quiet",
        ],
        dir,
    ));
    let v: serde_json::Value =
        aekit_json(&["eval", "runs/dn", "--json", "--test-limit", "200"], dir);
    let dn = &v["denoising"];
    assert_eq!(dn["noise"], "gaussian:0.3");
    let (noisy, clean) = (
        dn["psnr_noisy_db"].as_f64().unwrap(),
        dn["psnr_denoised_db"].as_f64().unwrap(),
    );
    assert!(clean > noisy + 2.0, "PSNR {noisy} -> {clean}");
    assert!(
        v["mse_per_pixel"].as_f64().is_some(),
        "plain metrics stay at the top level"
    );

    let out = ok(&aekit(
        &[
            "denoise",
            "runs/dn",
            "-n",
            "5",
            "--out",
            "dn.npy",
            "--test-limit",
            "20",
        ],
        dir,
    ));
    assert!(out.contains("PSNR"));
    let png = image::open(dir.join("runs/dn/denoised.png")).unwrap();
    assert_eq!((png.width(), png.height()), (2 + 5 * 58, 2 + 3 * 58));
    assert_eq!(
        aekit::data::npy::read(&dir.join("dn.npy"), None)
            .unwrap()
            .len(),
        20
    );

    // Another corruption at evaluation time, and a plain run that needs --noise.
    let v: serde_json::Value = aekit_json(
        &[
            "eval",
            "runs/dn",
            "--json",
            "--noise",
            "masking:0.5",
            "--test-limit",
            "50",
        ],
        dir,
    );
    assert_eq!(v["denoising"]["noise"], "masking:0.5");
    train_tiny(dir, "runs/plain", &[]);
    fails_with(&aekit(&["denoise", "runs/plain"], dir), &["--noise"]);
    fails_with(
        &aekit(&["train", "--data", "shapes", "--noise", "blur:1"], dir),
        &["unknown noise"],
    );
}

#[test]
fn vae_trains_evaluates_and_samples() {
    let d = common::tmp();
    let dir = d.path();
    train_tiny(
        dir,
        "runs/v",
        &["--model", "vae", "--beta", "0.5", "--kl-warmup-epochs", "1"],
    );
    let info = ok(&aekit(&["info", "runs/v"], dir));
    assert!(
        info.contains("vae 784-32-4-32-784 beta 0.5") && info.contains("fc_logvar.weight"),
        "{info}"
    );
    let v: serde_json::Value =
        aekit_json(&["eval", "runs/v", "--json", "--test-limit", "100"], dir);
    let (loss, recon, kl) = (
        v["vae"]["loss_per_image"].as_f64().unwrap(),
        v["vae"]["recon_per_image"].as_f64().unwrap(),
        v["vae"]["kl_per_image"].as_f64().unwrap(),
    );
    assert!((loss - recon - kl).abs() < 1e-6 * loss && kl >= 0.0, "{v}");
    let out = ok(&aekit(
        &["sample", "runs/v", "-n", "9", "--out", "s.npy"],
        dir,
    ));
    assert!(out.contains("9 prior samples"));
    let png = image::open(dir.join("runs/v/samples.png")).unwrap();
    assert_eq!((png.width(), png.height()), (2 + 3 * 58, 2 + 3 * 58));
    let s = aekit::data::npy::read(&dir.join("s.npy"), None).unwrap();
    assert!(s.x.data.iter().all(|&p| (0.0..=1.0).contains(&p)));

    train_tiny(dir, "runs/plain", &[]);
    fails_with(&aekit(&["sample", "runs/plain"], dir), &["needs a VAE"]);
    fails_with(
        &aekit(&["train", "--data", "shapes", "--beta", "2"], dir),
        &["--model vae"],
    );
}

#[test]
fn conv_models_train_from_layer_specs_and_bad_specs_are_refused() {
    let d = common::tmp();
    let dir = d.path();
    ok(&aekit(
        &[
            "train",
            "--data",
            "shapes",
            "--limit",
            "300",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
            "--quiet",
            "--out",
            "runs/c",
            "--model",
            "conv",
            "--encoder",
            "conv:4:3,maxpool:2,conv:4:3:s2",
            "--latent",
            "2",
            "--hidden-noise",
            "gaussian:0.1",
        ],
        dir,
    ));
    let info = ok(&aekit(&["info", "runs/c"], dir));
    assert!(
        info.contains("code 2") && info.contains("hidden noise gaussian:0.1"),
        "{info}"
    );
    let v: serde_json::Value = aekit_json(&["eval", "runs/c", "--json", "--test-limit", "50"], dir);
    // Untrained outputs near 0.5 score 0.69.
    assert!(v["bce_per_pixel"].as_f64().unwrap() < 0.5, "{v}");
    let codes = ok(&aekit(
        &["encode", "runs/c", "--test-limit", "20", "--out", "z.npy"],
        dir,
    ));
    assert!(codes.contains("20"), "{codes}");
    assert_eq!(
        aekit::data::npy::read(&dir.join("z.npy"), None)
            .unwrap()
            .x
            .cols,
        2
    );

    // A convolutional VAE from the same flag.
    train_tiny(
        dir,
        "runs/cv",
        &["--model", "vae", "--encoder", "conv:4:3:s2"],
    );
    assert!(ok(&aekit(&["info", "runs/cv"], dir)).contains("conv_encoder.0.weight"));

    for (args, needle) in [
        (
            &["--model", "conv", "--encoder", "conv:4:3,pool:2"][..],
            "unknown layer",
        ),
        (
            &["--model", "conv", "--encoder", "conv:4:31:valid"][..],
            "does not fit",
        ),
        (&["--encoder", "conv:4:3"][..], "--model conv"),
        (&["--model", "conv", "--hidden", "64"][..], "--encoder"),
        (&["--hidden-noise", "salt-pepper:0.1"][..], "hidden_noise"),
    ] {
        let mut a = vec!["train", "--data", "shapes", "--out", "runs/bad"];
        a.extend_from_slice(args);
        fails_with(&aekit(&a, dir), &[needle]);
        assert!(!dir.join("runs/bad").exists());
    }
}

/// A process killed (aborted without unwinding, as by `kill -9`) between the two renames of a
/// checkpoint swap, or between writing the metrics and the checkpoint, resumes to the same
/// weights as an uninterrupted run, with every epoch's metrics once and no staging files left.
#[test]
fn a_crash_while_saving_resumes_bit_for_bit() {
    let d = common::tmp();
    let dir = d.path();
    let args = |out: &str| {
        let mut a = vec!["train", "--data", "shapes", "--limit", "300", "--out", out];
        a.extend_from_slice(&["--hidden", "32", "--latent", "4", "--batch-size", "50"]);
        // A checkpoint at every epoch's end: the swaps counted below.
        a.extend_from_slice(&[
            "--epochs",
            "3",
            "--checkpoint-seconds",
            "0",
            "--quiet",
            "--no-report",
        ]);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let whole = Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args("runs/whole"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let expected = std::fs::read(dir.join("runs/whole/model.safetensors")).unwrap();
    // Swap 1 writes the initial checkpoint (nothing to displace); 2 and 3 end epochs 1 and 2.
    for point in ["swap:2", "swap:3", "epoch-end:1", "epoch-end:2"] {
        let out = format!("runs/{}", point.replace(':', "-"));
        let crashed = Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args(args(&out))
            .env("AEKIT_TEST_CRASH", point)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            !crashed.status.success(),
            "{point}: the crash hook did not fire"
        );
        ok(&aekit(
            &["train", "--resume", &out, "--quiet", "--no-report"],
            dir,
        ));
        assert_finished_as_uninterrupted(&dir.join(&out), &expected, point);
    }
}

/// A recovered 3-epoch run: the uninterrupted run's weights, every epoch's metrics once, and
/// no staging files in the run or its checkpoint.
fn assert_finished_as_uninterrupted(run: &Path, expected: &[u8], label: &str) {
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        expected,
        "{label}"
    );
    let epochs: Vec<usize> = aekit::RunDir::new(run)
        .metrics()
        .unwrap()
        .iter()
        .map(|m| m.epoch)
        .collect();
    assert_eq!(epochs, [1, 2, 3], "{label}");
    for sub in [run.to_path_buf(), run.join("checkpoint")] {
        for entry in std::fs::read_dir(&sub).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            assert!(
                !name.starts_with(".aekit-"),
                "{label}: {name} left in {sub:?}"
            );
        }
    }
}

/// `kill -9` at random moments of a real training process: whatever moment it hit, `--resume`
/// (or, if the run had not been created yet, training again into the same directory) finishes
/// the run with the weights of an uninterrupted one, every epoch's metrics once, and no
/// staging files.
#[test]
fn kill_9_at_random_moments_resumes_bit_for_bit() {
    use rand::{Rng, SeedableRng};
    let d = common::tmp();
    let dir = d.path();
    let args = |out: &str| -> Vec<String> {
        [
            "train", "--data", "shapes", "--limit", "600", "--hidden", "64", "--latent", "4",
        ]
        .into_iter()
        .chain([
            "--batch-size",
            "20",
            "--epochs",
            "3",
            "--quiet",
            "--no-report",
        ])
        .chain(["--out", out])
        .map(String::from)
        .collect()
    };
    let whole = Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args("runs/whole"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(whole.status.success());
    let expected = std::fs::read(dir.join("runs/whole/model.safetensors")).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    for k in 0..6 {
        let out = format!("runs/k{k}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args(args(&out))
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(5..1500)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let run = dir.join(&out);
        let resume = if run.join("config.toml").is_file() {
            vec![
                "train".to_string(),
                "--resume".into(),
                out.clone(),
                "--quiet".into(),
            ]
        } else {
            args(&out)
        };
        let again = Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args(&resume)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            again.status.success(),
            "kill {k}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_finished_as_uninterrupted(&run, &expected, &format!("kill {k}"));
    }
}
