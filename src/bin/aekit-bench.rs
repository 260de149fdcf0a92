//! The reference workloads of BENCHMARKS.md, one per process so that peak RSS is per workload:
//!   A  dense 784-1000-500-250-30 (ReLU, linear code, sigmoid output), MSE, Adam 1e-3, batch 256
//!   B  the Keras conv autoencoder (preset keras-conv), BCE, Adam 1e-3, batch 128
//!   C  encoding with workload A's model, batches of 1024 (median of five passes)
//! on random data of MNIST's shape in [0, 1]. Prints one JSON line; `bench/peer_pytorch.py` does
//! the same work in PyTorch and `bench/run.sh` alternates the two.
//! `aekit-bench limits` instead times each matrix product of workloads A and C alone through the
//! `gemm` crate (the one aekit's CPU kernels call) and prints the samples/s the workloads would
//! reach if nothing but those products ran: the arithmetic limit the ratios are read against.
//! Usage: aekit-bench A|B|C [SAMPLES] | aekit-bench limits

use std::time::Instant;

use aekit::data::{Dataset, Matrix, Scaling, ValueKind};
use aekit::fit::{FitOptions, fit, fit_owned};
use aekit::model::{Activation, DenseConfig, ModelConfig, ReconLoss};
use aekit::{Autoencoder, RunConfig};
use rand::Rng;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Workload C reports the median of this many passes over the samples: one pass takes about
/// two seconds, too short to measure alone on a shared machine (as in `peer_pytorch.py`).
const C_PASSES: usize = 5;

fn random_images(n: usize, seed: u64) -> Dataset {
    let mut rng = aekit::data::batch::rng_for(seed, 5);
    let data = (0..n * 784).map(|_| rng.random::<f32>()).collect();
    Dataset {
        x: Matrix::new(n, 784, data).expect("sizes agree"),
        labels: None,
        class_names: None,
        sample_shape: vec![1, 28, 28],
        value_kind: ValueKind::Float,
        origin: "random".into(),
    }
}

fn dense_a() -> ModelConfig {
    let mut arch = DenseConfig::new(vec![1000, 500, 250], 30);
    arch.activation = Activation::Relu;
    arch.code_activation = Activation::Linear;
    let mut m = ModelConfig::new(arch);
    m.shared_mut().output_activation = Some(Activation::Sigmoid);
    m.shared_mut().loss = Some(ReconLoss::Mse);
    m
}

fn config(workload: &str) -> RunConfig {
    let mut cfg = match workload {
        "B" => aekit::presets::apply("keras-conv", &RunConfig::default()).expect("preset exists"),
        _ => RunConfig {
            model: dense_a(),
            ..RunConfig::default()
        },
    };
    cfg.data.scale = Scaling::None;
    cfg.data.val_fraction = 0.0;
    cfg.train.epochs = 1;
    cfg.train.lr = 1e-3;
    cfg.train.batch_size = if workload == "B" { 128 } else { 256 };
    cfg
}

/// Peak resident set size of this process in MiB (Linux), from /proc/self/status.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Seconds for one `m×k` by `k×n` product (the left operand transposed in memory with
/// `lhs_transposed`, as for weight gradients), the best of five rounds of repeated calls.
fn product_seconds((m, n, k): (usize, usize, usize), lhs_transposed: bool) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0f32; m * n];
    let (lhs_cs, lhs_rs) = if lhs_transposed {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    let calls = (2e9 / (2.0 * (m * n * k) as f64)).max(3.0) as usize;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..calls {
            // SAFETY: `a`, `b` and `c` hold exactly the m×k, k×n and m×n values the strides
            // address, and `c` is a separate buffer.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    lhs_cs,
                    lhs_rs,
                    b.as_ptr(),
                    1,
                    n as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                );
            }
        }
        best = best.min(t.elapsed().as_secs_f64() / calls as f64);
    }
    best
}

/// The products of one step of workload A (batch 256) and of one batch of C (1,024), timed alone.
fn gemm_limits() {
    let sizes = [784, 1000, 500, 250, 30];
    let layers: Vec<(usize, usize)> = sizes
        .windows(2)
        .map(|w| (w[0], w[1]))
        .chain(sizes.windows(2).rev().map(|w| (w[1], w[0])))
        .collect();
    let (mut a_seconds, mut a_flop) = (0.0, 0.0);
    for (i, &(d_in, d_out)) in layers.iter().enumerate() {
        let mut products = vec![((256, d_out, d_in), false), ((d_in, d_out, 256), true)];
        if i > 0 {
            // The first layer's input is data: it needs no gradient.
            products.push(((256, d_in, d_out), false));
        }
        for (shape, transposed) in products {
            a_seconds += product_seconds(shape, transposed);
            a_flop += 2.0 * (shape.0 * shape.1 * shape.2) as f64;
        }
    }
    let (mut c_seconds, mut c_flop) = (0.0, 0.0);
    for &(d_in, d_out) in &layers[..4] {
        c_seconds += product_seconds((1024, d_out, d_in), false);
        c_flop += 2.0 * (1024 * d_out * d_in) as f64;
    }
    for (workload, batch, seconds, flop) in [
        ("A", 256.0, a_seconds, a_flop),
        ("C", 1024.0, c_seconds, c_flop),
    ] {
        let line = serde_json::json!({
            "impl": "gemm-limit",
            "workload": workload,
            "threads": rayon::current_num_threads(),
            "samples_per_sec": batch / seconds,
            "gflop_per_sec": flop / seconds / 1e9,
        });
        println!("{line}");
    }
}

fn main() -> aekit::Result<()> {
    let start = Instant::now();
    // As the CLI does: all cores, subnormals flushed to zero (so does the PyTorch peer).
    aekit::device::init_cpu(None, false)?;
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "limits") {
        gemm_limits();
        return Ok(());
    }
    let workload = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("A")
        .to_uppercase();
    let samples: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(if workload == "B" { 19_200 } else { 60_000 });
    let data = random_images(samples, 1);
    let cfg = config(&workload);
    let dir = tempfile::tempdir().map_err(|e| aekit::Error::invalid(e.to_string()))?;
    let (samples_per_sec, first_step_s) = match workload.as_str() {
        "A" | "B" => {
            // One step first, from process start: what a user waits before training moves
            // (on a head of the data, so that its copy does not count in the peak RSS).
            let mut once = FitOptions::new(dir.path().join("first"));
            once.stop_after_steps = Some(1);
            match fit(&cfg, &data.head(cfg.train.batch_size * 4), &once) {
                Ok(_) | Err(aekit::Error::Interrupted(_)) => {}
                Err(e) => return Err(e),
            }
            let first = start.elapsed().as_secs_f64();
            // The data is handed over, as `aekit train` does: held in memory once.
            let fitted = fit_owned(&cfg, data, &FitOptions::new(dir.path().join("run")))?;
            (fitted.summary.samples_per_sec, Some(first))
        }
        "C" => {
            let mut model_cfg = cfg.model.clone();
            model_cfg.resolve(&[1, 28, 28], true)?;
            let model = Autoencoder::new(&model_cfg, 0, &burn::tensor::Device::flex())?;
            model.encode(&data.x.head(1024))?;
            let mut rates = Vec::with_capacity(C_PASSES);
            for _ in 0..C_PASSES {
                let t = Instant::now();
                let codes = model.encode(&data.x)?;
                assert_eq!(codes.rows, samples);
                rates.push(samples as f64 / t.elapsed().as_secs_f64());
            }
            rates.sort_by(f64::total_cmp);
            (rates[C_PASSES / 2], None)
        }
        other => {
            return Err(aekit::Error::invalid(format!(
                "unknown workload '{other}': use A, B or C"
            )));
        }
    };
    let line = serde_json::json!({
        "impl": "aekit",
        "workload": workload,
        "samples": samples,
        "threads": rayon::current_num_threads(),
        "samples_per_sec": samples_per_sec,
        "first_step_s": first_step_s,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{line}");
    Ok(())
}
