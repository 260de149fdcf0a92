//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/data/<name>` beside the repository, if present. Tests that need it print why
/// they skip when it is absent.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("data")
        .join(name);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} not found; this test needs the shared datasets beside the repository",
            p.display()
        );
        None
    }
}

/// Every tensor of a run's `model.safetensors` as raw bits, sorted by name: weights compared
/// bit for bit.
pub fn weights_bits(dir: &std::path::Path) -> Vec<(String, Vec<u32>)> {
    let mut t: Vec<_> = aekit::model::safetensors::read(&dir.join("model.safetensors"))
        .unwrap()
        .into_values()
        .map(|t| (t.name, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect();
    t.sort();
    t
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A tiny, fast config on the built-in shapes.
pub fn tiny_config() -> aekit::RunConfig {
    let mut cfg = aekit::RunConfig::default();
    cfg.data.shapes_train = 400;
    cfg.data.shapes_test = 100;
    cfg.model = aekit::ModelConfig::new(aekit::DenseConfig::new(vec![32], 4));
    cfg.train.epochs = 2;
    cfg.train.batch_size = 50;
    cfg
}

/// `cfg` trained into `split`, interrupted after `steps` steps then resumed, must end in the
/// same model bytes as the uninterrupted run already trained into `whole`.
pub fn assert_resumes_to_the_same_bytes(
    cfg: &aekit::RunConfig,
    whole: &std::path::Path,
    split: &std::path::Path,
    steps: usize,
) {
    let mut opts = aekit::FitOptions::new(split);
    opts.stop_after_steps = Some(steps);
    assert!(
        aekit::train(cfg, &opts).is_err(),
        "interrupted after {steps} steps"
    );
    let mut opts = aekit::FitOptions::new(split);
    opts.resume = true;
    aekit::train(cfg, &opts).unwrap();
    let read = |d: &std::path::Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(
        read(whole),
        read(split),
        "resumed, the run ends in other weights"
    );
}

/// Checks `analytic` (the gradient of `objective` with respect to the parameter `name`, flat
/// in PyTorch layout) at indices `ks` against central finite differences of step 1e-2,
/// perturbing the exported tensor and importing it back into a copy of `m`'s network.
pub fn check_against_finite_differences(
    m: &aekit::Autoencoder,
    name: &str,
    analytic: &[f32],
    ks: impl IntoIterator<Item = usize>,
    objective: impl Fn(&aekit::model::Network) -> f64,
) {
    let base: std::collections::HashMap<String, aekit::model::layers::NamedTensor> = m
        .export()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let eval = |k: usize, delta: f32| {
        let mut t = base.clone();
        t.get_mut(name).unwrap().data[k] += delta;
        objective(&m.net().clone().import(&t).unwrap())
    };
    let h = 1e-2;
    for k in ks {
        let fd = (eval(k, h) - eval(k, -h)) / (2.0 * h as f64);
        assert!(
            (analytic[k] as f64 - fd).abs() < 1e-3 + 0.03 * fd.abs(),
            "{name}[{k}]: autodiff {} vs finite difference {fd}",
            analytic[k]
        );
    }
}

/// `cfg`'s whole training objective of `net` on `x` (input = target, fixed random stream).
pub fn objective(
    net: &aekit::model::Network,
    cfg: &aekit::ModelConfig,
    x: &aekit::Matrix,
    dev: &burn::tensor::Device,
) -> burn::tensor::Tensor<1> {
    use burn::tensor::{Tensor, TensorData};
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [x.rows, x.cols]), dev);
    net.objective(
        xt.clone(),
        xt,
        cfg,
        &mut aekit::data::batch::rng_for(0, 0),
        f64::INFINITY,
    )
    .total
}

pub mod serving;

/// The bytes of `path`, or a panic naming it.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files two runs must share to the byte: the best weights, the checkpoint's weights,
/// optimiser and place.
pub fn assert_same_run(a: &Path, b: &Path) {
    for file in [
        "model.safetensors",
        "checkpoint/model.safetensors",
        "checkpoint/optimizer.bpk",
        "checkpoint/state.json",
        "metrics.jsonl",
    ] {
        if file == "metrics.jsonl" {
            // Seconds and samples per second differ; the losses must not.
            let losses = |d: &Path| -> Vec<(f64, Option<f64>)> {
                String::from_utf8(read(&d.join(file)))
                    .unwrap()
                    .lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        (v["train_loss"].as_f64().unwrap(), v["val_loss"].as_f64())
                    })
                    .collect()
            };
            assert_eq!(losses(a), losses(b), "{file}");
        } else {
            assert!(
                read(&a.join(file)) == read(&b.join(file)),
                "{file} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    }
}

/// The next draw in [0, 1) of a small seeded generator (Knuth's MMIX LCG, its top 31 bits):
/// test data that needs no crate and repeats on every machine.
pub fn uniform(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) as f64 / (1u64 << 31) as f64
}

/// `aekit ARGS` run in `cwd`, its output.
pub fn run_aekit(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// `aekit ARGS` run in `cwd`, which must succeed: its standard output.
pub fn aekit_stdout(args: &[&str], cwd: &Path) -> String {
    let out = run_aekit(args, cwd);
    assert!(
        out.status.success(),
        "aekit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
