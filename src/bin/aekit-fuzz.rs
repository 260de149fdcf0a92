//! Fuzzes aekit's parsers of untrusted bytes (see `aekit::fuzz` and FUZZING.md).
//!
//! Usage: aekit-fuzz [--seconds S | --inputs N] [--seed K] [TARGET ...]
//!
//! Prints one JSON line per target: inputs tried, rejected (an error, as garbage should be),
//! distinct error messages, panics, and the most memory one input made the parser allocate at
//! once, against the stated bound of 512 MiB. Inputs that panicked or passed the bound are
//! written to `fuzz-findings/TARGET-N.bin`. Exits 1 on any finding.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live bytes and their peak, so that every input's largest allocation is known.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most one input may make a parser hold at once.
const BOUND: usize = 512 << 20;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seconds = None;
    let mut inputs = u64::MAX;
    let mut seed = 1u64;
    let mut names = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match args[i].as_str() {
            "--seconds" => seconds = value(i),
            "--inputs" => inputs = value(i).unwrap_or(u64::MAX),
            "--seed" => seed = value(i).unwrap_or(1),
            name => {
                names.push(name.to_string());
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    if seconds.is_none() && inputs == u64::MAX {
        inputs = 10_000;
    }
    let targets: Vec<_> = aekit::fuzz::targets()
        .into_iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .collect();
    let per_target = seconds.map(|s| Duration::from_secs(s) / targets.len().max(1) as u32);
    let scratch = tempfile::tempdir().expect("scratch dir");
    let mut findings = 0;
    for target in &targets {
        let started = Instant::now();
        let mut worst = 0usize;
        let mut over: Vec<Vec<u8>> = Vec::new();
        // Each input is measured from what was live before it (the runner's own records
        // grow between inputs and are not the parser's).
        let mut before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let report = aekit::fuzz::run(
            target,
            inputs,
            per_target.map(|d| started + d),
            seed,
            scratch.path(),
            |input| {
                let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
                worst = worst.max(peak);
                if peak > BOUND {
                    over.push(input.to_vec());
                }
                before = LIVE.load(Ordering::Relaxed);
                PEAK.store(before, Ordering::Relaxed);
            },
        );
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{{\"target\":\"{}\",\"inputs\":{},\"rejected\":{},\"distinct_errors\":{},\"panics\":{},\"over_bound\":{},\"peak_alloc_mib\":{:.1},\"seconds\":{:.0},\"inputs_per_sec\":{:.0}}}",
            target.name,
            report.inputs,
            report.rejected,
            report.distinct_errors,
            report.panics.len(),
            over.len(),
            worst as f64 / (1 << 20) as f64,
            secs,
            report.inputs as f64 / secs.max(1e-9)
        );
        let bad: Vec<(Vec<u8>, String)> = report
            .panics
            .into_iter()
            .chain(
                over.into_iter()
                    .map(|b| (b, "over the allocation bound".to_string())),
            )
            .collect();
        if !bad.is_empty() {
            std::fs::create_dir_all("fuzz-findings").expect("findings dir");
            for (n, (input, msg)) in bad.iter().enumerate().take(20) {
                let path = format!("fuzz-findings/{}-{n}.bin", target.name);
                std::fs::write(&path, input).expect("finding written");
                eprintln!("{}: {msg} ({path})", target.name);
            }
            findings += bad.len();
        }
    }
    if findings > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}
