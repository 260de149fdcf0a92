//! `aekit serve`: the HTTP API and the explorer over trained runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use aekit::error::{Error, Result};
use aekit::serve::{BatchPolicy, LoadOptions, ServeOptions, Server};

use super::args::DataFlags;

/// The library's defaults (`ServeOptions::default()`), defined there once: every flag below
/// takes its default from them.
static DEFAULTS: std::sync::LazyLock<ServeOptions> =
    std::sync::LazyLock::new(ServeOptions::default);

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Run directories written by `aekit train`; each is served under its directory's name.
    #[arg(required = true)]
    run_dirs: Vec<PathBuf>,
    /// Address to listen on (loopback unless you say otherwise).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    data: DataFlags,
    /// Samples of the data put on the explorer's map (a seeded subset when there are more).
    #[arg(long, default_value_t = DEFAULTS.load.map_points)]
    map_points: usize,
    /// Largest request body in MiB (larger ones are answered 413).
    #[arg(long, default_value_t = mib(DEFAULTS.max_body))]
    max_body_mib: f64,
    /// Largest answer in MiB a request may ask for (rows × values, as JSON text or binary);
    /// larger requests are refused before anything is computed.
    #[arg(long, default_value_t = mib(DEFAULTS.max_answer))]
    max_answer_mib: f64,
    /// Longest a batch waits for requests already on their way, in microseconds; 0 turns
    /// dynamic batching off (one forward pass per request).
    #[arg(long, default_value_t = DEFAULTS.load.batch.max_wait.as_micros() as u64)]
    batch_wait_us: u64,
    /// Rows above which a batch runs without waiting.
    #[arg(long, default_value_t = DEFAULTS.load.batch.max_rows)]
    batch_rows: usize,
    /// Requests that may queue per run before new ones are answered 503.
    #[arg(long, default_value_t = DEFAULTS.load.batch.queue)]
    queue: usize,
    /// Requests in progress at once before new ones are answered 503.
    #[arg(long, default_value_t = DEFAULTS.max_in_flight)]
    max_in_flight: usize,
    /// Name the data's files by their full paths in answers (by default only their names
    /// are shown, so that clients learn nothing of the server's directories).
    #[arg(long)]
    show_paths: bool,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, default_value_t = DEFAULTS.timeout.as_secs_f64())]
    timeout_secs: f64,
}

pub fn run(args: ServeArgs, device: &burn::tensor::Device) -> Result<()> {
    // `main` lets SIGPIPE end the program, which suits output into `| head`; a server must
    // instead survive clients that close their connection before reading the answer.
    #[cfg(unix)]
    // SAFETY: sets the disposition of one signal before the server's threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let positive = |v: f64, flag: &str| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(Error::invalid(format!(
                "{flag} must be a positive number, got {v}"
            )))
        }
    };
    let max_body = (positive(args.max_body_mib, "--max-body-mib")? * (1u64 << 20) as f64) as usize;
    let max_answer =
        (positive(args.max_answer_mib, "--max-answer-mib")? * (1u64 << 20) as f64) as usize;
    let timeout = Duration::from_secs_f64(positive(args.timeout_secs, "--timeout-secs")?);
    for (v, flag) in [
        (args.queue, "--queue"),
        (args.max_in_flight, "--max-in-flight"),
        (args.batch_rows, "--batch-rows"),
        (args.map_points, "--map-points"),
    ] {
        if v == 0 {
            return Err(Error::invalid(format!("{flag} must be at least 1")));
        }
    }
    let opts = ServeOptions {
        load: LoadOptions {
            map_points: args.map_points,
            show_paths: args.show_paths,
            batch: BatchPolicy {
                max_wait: Duration::from_micros(args.batch_wait_us),
                max_rows: args.batch_rows,
                queue: args.queue,
            },
        },
        max_body,
        timeout,
        max_in_flight: args.max_in_flight,
        max_answer,
    };
    let mut dirs = Vec::with_capacity(args.run_dirs.len());
    for dir in &args.run_dirs {
        let mut data = aekit::RunDir::open(dir)?.config()?.data;
        args.data.apply_to_run_data(&mut data)?;
        dirs.push((dir.clone(), Some(data)));
    }
    let runs = aekit::serve::load_runs(&dirs, &opts.load, device)?;
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    let runtime = aekit::serve::runtime(None)?;
    runtime.block_on(async {
        let server = Server::bind(args.addr, runs, &opts).await?;
        let addr = server.local_addr()?;
        println!(
            "serving {} at http://{addr}/ (Ctrl-C stops)",
            names.join(", ")
        );
        server.run(aekit::serve::shutdown_signal()).await?;
        eprintln!("stopped");
        Ok(())
    })
}
