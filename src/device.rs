//! Compute devices. burn 0.22 carries the backend in the `Device` value rather than in a type
//! parameter, so model code is backend-agnostic and a GPU backend is a cargo feature plus a
//! variant here.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// burn's pure-Rust multi-threaded CPU backend (flex).
    #[default]
    Cpu,
    /// The first GPU through burn's wgpu backend on Vulkan (needs the `gpu` cargo feature).
    Gpu,
}

impl DeviceKind {
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::flex()),
            #[cfg(feature = "gpu")]
            DeviceKind::Gpu => {
                use burn::backend::{WgpuBackend, WgpuDevice};
                let device = Device::from(WgpuDevice::default().on(WgpuBackend::Vulkan));
                // burn's wgpu runtime panics (on its device thread, then here) when no adapter
                // exists; probe with one tiny tensor so that becomes a clear error instead.
                let hook = std::panic::take_hook();
                std::panic::set_hook(Box::new(|_| {}));
                let probe = std::panic::catch_unwind(|| {
                    burn::tensor::Tensor::<1>::zeros([1], &device).into_data()
                });
                std::panic::set_hook(hook);
                match probe {
                    Ok(_) => Ok(device),
                    Err(_) => Err(Error::invalid(
                        "no GPU is usable through Vulkan here (no adapter found); install the Vulkan loader and driver, or use --device cpu",
                    )),
                }
            }
            #[cfg(not(feature = "gpu"))]
            DeviceKind::Gpu => Err(Error::invalid(
                "this aekit was built without GPU support: rebuild with `cargo build --release --features gpu`",
            )),
        }
    }
}

/// Makes the calling thread treat subnormal floats as zero (x86 FTZ+DAZ, Arm FZ).
///
/// Why: as a network trains, Adam's moments and many activations decay through the subnormal
/// range, where x86 arithmetic is tens of times slower; on MNIST training slowed by a third
/// after some 30 epochs without this. Values below 1.2e-38 do not matter to a network, and
/// PyTorch's `set_flush_denormal(True)` does the same.
pub fn flush_denormals_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads and writes this thread's MXCSR register only; bits 15 (FTZ) and 6 (DAZ)
    // change how subnormal results and inputs are treated, nothing else.
    unsafe {
        let mut csr: u32 = 0;
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
        csr |= 0x8040;
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: sets bit 24 (FZ, flush-to-zero) of this thread's FPCR register only.
    unsafe {
        let mut fpcr: u64;
        std::arch::asm!("mrs {}, fpcr", out(reg) fpcr);
        fpcr |= 1 << 24;
        std::arch::asm!("msr fpcr, {}", in(reg) fpcr);
    }
}

/// Prepares the CPU backend: sizes the worker pool (`None`: one thread per core) and, unless
/// `keep_denormals`, flushes subnormals to zero on the workers and the calling thread. Call it
/// once, before the first tensor operation.
pub fn init_cpu(threads: Option<usize>, keep_denormals: bool) -> Result<()> {
    if !keep_denormals {
        flush_denormals_on_this_thread();
    }
    init_cpu_pool(threads, keep_denormals)
}

/// [`init_cpu`] without touching the calling thread: for a host process (the Python module)
/// whose own threads' floating-point mode is not aekit's to change. Threads that train call
/// [`flush_denormals_on_this_thread`] themselves.
pub fn init_cpu_pool(threads: Option<usize>, keep_denormals: bool) -> Result<()> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(Error::invalid("--threads must be at least 1"));
        }
        // Far more threads than cores only slows training, and absurd counts exhaust the
        // system before the first step.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if t > 8 * cores.max(8) {
            return Err(Error::invalid(format!(
                "--threads {t} is far more than this machine's {cores} cores (at most {} allowed)",
                8 * cores.max(8)
            )));
        }
        pool = pool.num_threads(t);
    }
    if !keep_denormals {
        pool = pool.start_handler(|_| flush_denormals_on_this_thread());
    }
    pool.build_global()
        .map_err(|e| Error::invalid(format!("cannot set up the thread pool: {e}")))
}

/// Memory the system can still give this process: Linux's `MemAvailable`, or less where the
/// process's memory cgroup (v1 or v2) has a limit closer to its usage; `None` where it is not
/// known, and then nothing is refused for its size.
pub fn available_memory() -> Option<u64> {
    let system = proc_bytes("/proc/meminfo", "MemAvailable:")?;
    Some(cgroup_room().map_or(system, |room| room.min(system)))
}

/// What one data set or buffer may take: half the available memory, so that the model, its
/// optimiser and the rest of the process keep the other half; `None` where memory is unknown.
pub fn memory_budget() -> Option<u64> {
    available_memory().map(|m| m / 2)
}

/// The available memory, when `bytes` is more than [`memory_budget`] allows (for the
/// refusal's message); `None` when it fits or memory is unknown.
pub fn beyond_budget(bytes: u64) -> Option<u64> {
    available_memory().filter(|&available| bytes > available / 2)
}

/// `bytes` and the memory they pass, in the words of every refusal to allocate — "12.0 GiB
/// of memory, more than half the 16.0 GiB available" — where they pass [`memory_budget`];
/// `None` when they fit or memory is unknown.
pub fn beyond_budget_words(bytes: u64) -> Option<String> {
    beyond_budget(bytes).map(|available| {
        format!(
            "{} of memory, more than half the {} available",
            human_bytes(bytes),
            human_bytes(available)
        )
    })
}

/// `limit - usage` of this process's memory cgroup, where it has a limit.
fn cgroup_room() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read =
        |path: String| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    for line in groups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let (limit, usage) = if controllers.split(',').any(|c| c == "memory") {
            let dir = format!("/sys/fs/cgroup/memory{path}");
            (
                read(format!("{dir}/memory.limit_in_bytes")),
                read(format!("{dir}/memory.usage_in_bytes")),
            )
        } else if controllers.is_empty() {
            let dir = format!("/sys/fs/cgroup{path}");
            // `max` (no limit) does not parse, which is what no limit means.
            (
                read(format!("{dir}/memory.max")),
                read(format!("{dir}/memory.current")),
            )
        } else {
            continue;
        };
        if let (Some(limit), Some(usage)) = (limit, usage)
            && limit < (1 << 60)
        {
            return Some(limit.saturating_sub(usage));
        }
    }
    None
}

/// This process's resident memory (Linux); `None` elsewhere.
pub fn resident_memory() -> Option<u64> {
    proc_bytes("/proc/self/status", "VmRSS:")
}

/// The `key:   N kB` line of a Linux `/proc` file, in bytes.
fn proc_bytes(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// "1.5 GiB"
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", units[unit])
}
