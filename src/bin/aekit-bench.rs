//! The reference workloads of BENCHMARKS.md, one per process so that peak RSS is per workload:
//!   A  dense 784-1000-500-250-30 (ReLU, linear code, sigmoid output), MSE, Adam 1e-3, batch 256
//!   B  the Keras conv autoencoder (preset keras-conv), BCE, Adam 1e-3, batch 128
//!   C  encoding with workload A's model, batches of 1024 (median of five passes)
//!   latency  A's model encoding and decoding batches of 1, 8 and 64 rows (those up to SAMPLES)
//!      through the library
//!      (`Autoencoder::encode`/`decode`, the server's and the Python module's path), 10,000
//!      timed calls each: p50 and p99 in microseconds
//! on random data of MNIST's shape in [0, 1]. Prints one JSON line; `bench/peer_pytorch.py` does
//! the same work in PyTorch and `bench/run.sh` alternates the two.
//! `aekit-bench limits` instead times each matrix product of workloads A, B (its convolutions as
//! the im2col products aekit's kernel runs) and C alone through the `gemm` crate (the one aekit's
//! CPU kernels call) and prints the samples/s the workloads would reach if nothing but those
//! products ran, each product split over the cores by `gemm` and the rows split with each core
//! taking its share through all of them (as aekit trains and infers); the faster is the
//! arithmetic limit the ratios are read against. It also prints the time to read
//! workload A's encoder weights once on one core and on the pool: the memory floor of a
//! batch-1 forward pass, which reads every weight once and does little arithmetic per byte.
//! Usage: aekit-bench A|B|C|latency [SAMPLES] [--device cpu|gpu] | aekit-bench limits

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use aekit::data::{Dataset, Matrix, Scaling, ValueKind};
use aekit::device::DeviceKind;
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

/// Timed calls per batch size and direction in the latency workload.
const LATENCY_CALLS: usize = 10_000;

/// `n` random images of MNIST's shape, drawn in blocks of rows across the pool (one stream
/// per block): the time to the first step counts from process start, data included, and drawn
/// on one thread 60,000 images took 1.2 s of A's 1.5 s (PyTorch's `torch.rand` is parallel).
fn random_images(n: usize, seed: u64) -> Dataset {
    use rayon::prelude::*;
    const BLOCK: usize = 1024 * 784;
    let mut data = vec![0f32; n * 784];
    data.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(i, block)| {
            let mut rng = aekit::data::batch::rng_for(seed, 5 + i as u64);
            block.iter_mut().for_each(|v| *v = rng.random::<f32>());
        });
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

/// `c` = `a·b` (`a` m×k, transposed in memory with `lhs_transposed`; `b` k×n; `c` m×n) through
/// `gemm`, the call every limit below times.
fn product_into(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
    lhs_transposed: bool,
    parallelism: gemm::Parallelism,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let (lhs_cs, lhs_rs) = if lhs_transposed {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    // SAFETY: `a`, `b` and `c` hold at least the m×k, k×n and m×n values the strides address
    // (checked above), and `c` is borrowed mutably, so it aliases neither operand.
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
            parallelism,
        );
    }
}

/// One matrix product of a workload: `(m, n, k)` and whether the left operand is transposed in
/// memory (as for weight gradients).
type Product = ((usize, usize, usize), bool);

/// A workload's products for a batch of the given number of rows.
type ProductsOf<'a> = dyn Fn(usize) -> Vec<Product> + 'a;

/// Seconds for one `m×k` by `k×n` product (the left operand transposed in memory with
/// `lhs_transposed`, as for weight gradients), the best of five rounds of repeated calls.
fn product_seconds((m, n, k): (usize, usize, usize), lhs_transposed: bool) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0f32; m * n];
    let calls = (2e9 / (2.0 * (m * n * k) as f64)).max(3.0) as usize;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..calls {
            product_into(
                &mut c,
                &a,
                &b,
                (m, n, k),
                lhs_transposed,
                gemm::Parallelism::Rayon(0),
            );
        }
        best = best.min(t.elapsed().as_secs_f64() / calls as f64);
    }
    best
}

/// Seconds for a workload's products over a batch when every thread takes an even share of
/// the rows through all of them on its own (`gemm` single-threaded; `products(share)` lists
/// them for a share's rows): the way aekit's inference and training run them, with no hand-off
/// inside a product. Best of five rounds.
fn row_split_seconds(rows: usize, products: impl Fn(usize) -> Vec<Product>) -> f64 {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    let products = products(rows.div_ceil(threads));
    let buffers =
        |&((m, n, k), _): &Product| (vec![0.5f32; m * k], vec![0.25f32; k * n], vec![0f32; m * n]);
    let mut shares: Vec<Vec<_>> = (0..threads)
        .map(|_| products.iter().map(buffers).collect())
        .collect();
    let flop: usize = threads
        * products
            .iter()
            .map(|((m, n, k), _)| 2 * m * n * k)
            .sum::<usize>();
    let calls = (2e9 / flop as f64).max(3.0) as usize;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..calls {
            shares.par_iter_mut().for_each(|share_buffers| {
                for (&(shape, transposed), (a, b, c)) in
                    products.iter().zip(share_buffers.iter_mut())
                {
                    product_into(c, a, b, shape, transposed, gemm::Parallelism::None);
                }
            });
        }
        best = best.min(t.elapsed().as_secs_f64() / calls as f64);
    }
    best
}

/// The products of a training step over `rows` rows, for layers `(inputs, outputs)` with the
/// first layer's input being data (it needs no gradient).
fn training_products(rows: usize, layers: &[(usize, usize)]) -> Vec<Product> {
    let mut products = Vec::new();
    for (i, &(d_in, d_out)) in layers.iter().enumerate() {
        products.push(((rows, d_out, d_in), false));
        products.push(((d_in, d_out, rows), true));
        if i > 0 {
            products.push(((rows, d_in, d_out), false));
        }
    }
    products
}

/// Workload A's dense layers, encoder then decoder, as `(inputs, outputs)`.
fn dense_a_layers() -> Vec<(usize, usize)> {
    let sizes = [784, 1000, 500, 250, 30];
    sizes
        .windows(2)
        .map(|w| (w[0], w[1]))
        .chain(sizes.windows(2).rev().map(|w| (w[1], w[0])))
        .collect()
}

/// The keras-conv preset's 3×3 convolutions as im2col products for a batch of `rows` images:
/// forward `[N·H·W, 9·Cin] × [9·Cin, Cout]`, weight gradient `[9·Cin, N·H·W] × [N·H·W, Cout]`
/// and, past the first layer, input gradient `[N·H·W, Cout] × [Cout, 9·Cin]`: the arithmetic
/// `kernels/conv2d.rs` does, as one product over the batch's positions where the kernel runs
/// one per image.
fn keras_conv_products(rows: usize) -> Vec<Product> {
    // (input channels, output channels, output height = width) of each convolution.
    let convs = [
        (1, 16, 28),
        (16, 8, 14),
        (8, 8, 7),
        (8, 8, 4),
        (8, 8, 8),
        (8, 16, 14), // "valid" 3×3 on 16×16
        (16, 1, 28),
    ];
    let mut products = Vec::new();
    for (i, &(c_in, c_out, side)) in convs.iter().enumerate() {
        let positions = rows * side * side;
        let patch = 9 * c_in;
        products.push(((positions, c_out, patch), false));
        products.push(((patch, c_out, positions), true));
        if i > 0 {
            products.push(((positions, patch, c_out), false));
        }
    }
    products
}

/// The products of one step of workload A (batch 256), B (128) and of one batch of C (1,024),
/// timed alone both ways of running them over the cores (each product split by `gemm`, or the
/// rows split): each workload's limit is the faster way, the way aekit runs it.
fn gemm_limits() {
    let layers = dense_a_layers();
    let workloads: [(&str, usize, &ProductsOf<'_>); 3] = [
        ("A", 256, &|rows| training_products(rows, &layers)),
        ("B", 128, &keras_conv_products),
        ("C", 1024, &|rows| {
            layers[..4]
                .iter()
                .map(|&(i, o)| ((rows, o, i), false))
                .collect()
        }),
    ];
    let encoder_weights: usize = layers[..4].iter().map(|&(i, o)| i * o).sum();
    let weights = vec![0.5f32; encoder_weights];
    let line = serde_json::json!({
        "impl": "read-limit",
        "workload": "latency",
        "threads": rayon::current_num_threads(),
        "encoder_weight_mib": (encoder_weights * 4) as f64 / (1 << 20) as f64,
        "read_us_one_core": read_seconds(&weights, false) * 1e6,
        "read_us_pool": read_seconds(&weights, true) * 1e6,
    });
    println!("{line}");
    for (workload, batch, products) in workloads {
        let whole = products(batch);
        let each_split: f64 = whole
            .iter()
            .map(|&(shape, t)| product_seconds(shape, t))
            .sum();
        let rows_split = row_split_seconds(batch, products);
        let flop: f64 = whole
            .iter()
            .map(|((m, n, k), _)| 2.0 * (m * n * k) as f64)
            .sum();
        println!(
            "{}",
            serde_json::json!({
                "impl": "gemm-limit-ways",
                "workload": workload,
                "each_product_split_samples_per_sec": batch as f64 / each_split,
                "rows_split_samples_per_sec": batch as f64 / rows_split,
            })
        );
        let seconds = each_split.min(rows_split);
        let line = serde_json::json!({
            "impl": "gemm-limit",
            "workload": workload,
            "threads": rayon::current_num_threads(),
            "samples_per_sec": batch as f64 / seconds,
            "gflop_per_sec": flop / seconds / 1e9,
        });
        println!("{line}");
    }
}

/// Seconds to read every value of `values` once (a vectorised sum), on this thread or split
/// over the pool, the best of many rounds (the values stay in whatever cache holds them, as
/// a server's weights do between requests).
fn read_seconds(values: &[f32], pool: bool) -> f64 {
    use rayon::prelude::*;
    fn sum(part: &[f32]) -> f32 {
        let mut acc = [0f32; 16];
        for c in part.chunks_exact(16) {
            for (a, v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        acc.iter().sum()
    }
    let chunk = values.len().div_ceil(rayon::current_num_threads());
    let mut best = f64::MAX;
    for _ in 0..2000 {
        let t = Instant::now();
        let total: f32 = if pool {
            values.par_chunks(chunk).map(sum).sum()
        } else {
            sum(values)
        };
        std::hint::black_box(total);
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// The workload's model, freshly initialised on `device`, for the inference workloads.
fn untrained_model(cfg: &RunConfig, device: &burn::tensor::Device) -> aekit::Result<Autoencoder> {
    let mut model_cfg = cfg.model.clone();
    model_cfg.resolve(&[1, 28, 28], true)?;
    Autoencoder::new(&model_cfg, 0, device)
}

/// p50 and p99 of `calls` timings of `f`, in microseconds, after a warm-up of a tenth as many.
fn latency_us(calls: usize, mut f: impl FnMut() -> aekit::Result<()>) -> aekit::Result<(f64, f64)> {
    for _ in 0..calls / 10 {
        f()?;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// Encode and decode latencies of workload A's model at batches of 1, 8 and 64 rows.
fn latencies(model: &Autoencoder, data: &Dataset) -> aekit::Result<serde_json::Value> {
    let mut report = serde_json::Map::new();
    for batch in [1usize, 8, 64].into_iter().filter(|&b| b <= data.x.rows) {
        let x = data.x.head(batch);
        let z = model.encode(&x)?;
        let (enc50, enc99) = latency_us(LATENCY_CALLS, || model.encode(&x).map(drop))?;
        let (dec50, dec99) = latency_us(LATENCY_CALLS, || model.decode(&z).map(drop))?;
        report.insert(
            batch.to_string(),
            serde_json::json!({
                "encode_p50_us": enc50, "encode_p99_us": enc99,
                "decode_p50_us": dec50, "decode_p99_us": dec99,
            }),
        );
    }
    Ok(report.into())
}

fn main() -> aekit::Result<()> {
    let start = Instant::now();
    // As the CLI does: all cores, subnormals flushed to zero (so does the PyTorch peer).
    aekit::device::init_cpu(None, false)?;
    let mut args: Vec<String> = std::env::args().collect();
    let device_kind = match args.iter().position(|a| a == "--device") {
        Some(i) => {
            let name = args.get(i + 1).cloned().unwrap_or_default();
            args.drain(i..(i + 2).min(args.len()));
            match name.as_str() {
                "cpu" => DeviceKind::Cpu,
                "gpu" => DeviceKind::Gpu,
                other => {
                    return Err(aekit::Error::invalid(format!(
                        "--device '{other}': use cpu or gpu"
                    )));
                }
            }
        }
        None => DeviceKind::Cpu,
    };
    let device = device_kind.device()?;
    if args.get(1).is_some_and(|a| a == "limits") {
        gemm_limits();
        return Ok(());
    }
    let workload = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("A")
        .to_uppercase();
    let samples: usize =
        args.get(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(match workload.as_str() {
                "B" => 19_200,
                "LATENCY" => 64,
                _ => 60_000,
            });
    let data = random_images(samples, 1);
    let cfg = config(&workload);
    let dir = tempfile::tempdir().map_err(|e| aekit::Error::invalid(e.to_string()))?;
    let (samples_per_sec, first_step_s) = match workload.as_str() {
        "A" | "B" => {
            // One step first, from process start: what a user waits before training moves
            // (on a head of the data, so that its copy does not count in the peak RSS). The
            // clock stops when the step ends, before the checkpoint the interruption writes
            // (PyTorch's peer saves nothing either).
            let mut once = FitOptions::new(dir.path().join("first"));
            once.device = device.clone();
            let first_step = Arc::new(std::sync::OnceLock::new());
            let stop = Arc::new(AtomicBool::new(false));
            once.interrupt = Some(stop.clone());
            once.on_step = Some(Arc::new({
                let (first_step, stop) = (first_step.clone(), stop.clone());
                move |_| {
                    first_step.get_or_init(|| start.elapsed().as_secs_f64());
                    stop.store(true, Ordering::SeqCst);
                }
            }));
            match fit(&cfg, &data.head(cfg.train.batch_size * 4), &once) {
                Ok(_) | Err(aekit::Error::Interrupted(_)) => {}
                Err(e) => return Err(e),
            }
            let first = *first_step.get().expect("one step ran");
            // The data is handed over, as `aekit train` does: held in memory once.
            let mut opts = FitOptions::new(dir.path().join("run"));
            opts.device = device.clone();
            let fitted = fit_owned(&cfg, data, &opts)?;
            (fitted.summary.samples_per_sec, Some(first))
        }
        "LATENCY" => {
            let model = untrained_model(&cfg, &device)?;
            let line = serde_json::json!({
                "impl": "aekit",
                "workload": "latency",
                "device": device_kind,
                "threads": rayon::current_num_threads(),
                "calls": LATENCY_CALLS,
                "latency": latencies(&model, &data)?,
            });
            println!("{line}");
            return Ok(());
        }
        "C" => {
            let model = untrained_model(&cfg, &device)?;
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
                "unknown workload '{other}': use A, B, C or latency"
            )));
        }
    };
    let line = serde_json::json!({
        "impl": "aekit",
        "workload": workload,
        "device": device_kind,
        "samples": samples,
        "threads": rayon::current_num_threads(),
        "samples_per_sec": samples_per_sec,
        "first_step_s": first_step_s,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{line}");
    Ok(())
}
