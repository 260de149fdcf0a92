//! Data-parallel training across processes (`mpirun -np N aekit train …`): every rank reads
//! the same rows in the same seeded order and assembles the same global batch, computes the
//! loss and gradients of its own row share of it — the share a process with N cores would
//! give that core ([`crate::train::shares`]) — and one exchange per step hands every rank all
//! the shares' gradients, which each sums in rank order and steps its optimiser with. So every
//! rank holds the same weights after every step, and N ranks train exactly as one process
//! whose batch is split into the same N shares: the sum is the same additions in the same
//! order.
//!
//! The exchange is by default an all-gather followed by that ordered sum rather than MPI's
//! allreduce, whose order of additions is the library's choice: for two ranks both move the
//! same bytes (each rank receives the other's gradients once), and the weights stay bit for
//! bit those of one process. Past a few machines the all-gather moves N/2 times the
//! allreduce's bytes, so `--rank-sum allreduce` trades exactness (the weights then equal one
//! process's to rounding) for them; SCALING.md weighs the two.
//!
//! Rank 0 alone writes the run directory, the progress and the checkpoints; every rank's place
//! in the data is the checkpoint's (epoch, batch), since every rank walks the same order. The
//! engine behind [`Ranks`] is MPI ([`mpi`], the `mpi` cargo feature); the loop knows only the
//! trait, so tests also run ranks as threads of one process ([`local`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::model::{Autoencoder, ModelConfig, Network};
use crate::train::config::RankSum;
use crate::train::state::{EpochMetrics, TrainState};
use crate::train::trainer::{Checkpoints, Optimizers};

/// The processes of one training job and the one collective operation training needs.
pub trait Ranks: Send + Sync {
    /// This process's place, from 0.
    fn rank(&self) -> usize;
    /// How many processes train together.
    fn size(&self) -> usize;
    /// Every rank's `part`, one after another in rank order. Every rank passes a part of the
    /// same length.
    fn all_gather(&self, part: &[u32]) -> Vec<u32>;
    /// Replaces `values` on every rank by their sum over the ranks, added in whatever order
    /// the engine chooses.
    fn all_reduce_sum(&self, values: &mut [f32]);
}

/// How a launcher (`mpirun`, `srun` with PMI) started this process, read from its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub size: usize,
    /// Ranks started on this machine.
    pub local_size: usize,
}

/// The launch this process is part of, when a launcher started more than one process:
/// Open MPI's `OMPI_COMM_WORLD_*` or the PMI variables of MPICH's and Slurm's launchers.
pub fn launched() -> Option<Launch> {
    let number = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok()?.trim().parse::<usize>().ok())
    };
    let size = number(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"])?;
    let rank = number(&["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]).unwrap_or(0);
    let local_size = number(&["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]).unwrap_or(1);
    (size > 1).then_some(Launch {
        rank,
        size,
        local_size: local_size.max(1),
    })
}

/// The ranks of the launch this process is part of, joined: `None` when no launcher started
/// several processes. A build without the `mpi` feature refuses a launch rather than train
/// N separate copies that would race for the same run directory.
pub fn join_launch() -> Result<Option<Joined>> {
    let Some(launch) = launched() else {
        return Ok(None);
    };
    #[cfg(feature = "mpi")]
    {
        let (universe, ranks) = mpi::join()?;
        if ranks.size() != launch.size {
            return Err(Error::invalid(format!(
                "the launcher says {} processes, MPI {}: was aekit started by another MPI's launcher?",
                launch.size,
                ranks.size()
            )));
        }
        Ok(Some(Joined {
            ranks,
            engine: Box::new(universe),
        }))
    }
    #[cfg(not(feature = "mpi"))]
    Err(Error::invalid(format!(
        "this process is rank {} of {} started by an MPI launcher, but this aekit was built without MPI: build it with `cargo build --release --features mpi` (needs Open MPI's libopenmpi-dev and libclang-dev)",
        launch.rank, launch.size
    )))
}

/// This process's place among the ranks of a launch, and the engine that connects them.
pub struct Joined {
    pub ranks: std::sync::Arc<dyn Ranks>,
    engine: Box<dyn std::any::Any>,
}

impl Joined {
    /// Leaves the job. After a failure the engine is not shut down cleanly: a rank that
    /// leaves without that makes the launcher stop every other rank at once, where a clean
    /// shutdown would wait for ranks blocked in an exchange that never comes.
    pub fn finish(self, succeeded: bool) {
        if succeeded {
            drop(self.engine);
        } else {
            std::mem::forget(self.engine);
        }
    }
}

/// The threads of each rank when `--threads` is not given: this machine's cores shared evenly
/// by the ranks started on it, so that two ranks on two cores do not each start two threads.
pub fn default_threads(launch: &Launch) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / launch.local_size).max(1)
}

/// Refuses a model whose training cannot be split over `ranks` ranks: a variant with steps of
/// its own after the main one (their batch-wide objectives would need the whole batch's forward
/// pass on every rank), an objective that couples the rows of a batch, or batches of
/// `batch_size` rows too small to give every rank a share of at least
/// [`shares::MIN_SHARE_ROWS`](crate::train::shares::MIN_SHARE_ROWS).
pub fn check_trainable(
    config: &ModelConfig,
    model: &Autoencoder,
    batch_size: usize,
    ranks: usize,
) -> Result<()> {
    let least = crate::train::shares::MIN_SHARE_ROWS;
    if batch_size < least * ranks {
        return Err(Error::Ranks(format!(
            "--batch-size {batch_size} gives {ranks} ranks fewer than {least} rows each (a smaller share costs more to exchange than it computes): use --batch-size {} or more, or start at most {} ranks",
            least * ranks,
            (batch_size / least).max(1)
        )));
    }
    let variant = model.net().variant();
    if let Some(step) = variant.extra_steps().first() {
        return Err(Error::Ranks(format!(
            "--model {} cannot train on several ranks: its {} step trains on the whole batch after the main step; train it in one process",
            config.kind(),
            step.name
        )));
    }
    if !variant.rows_independent(config) {
        return Err(Error::Ranks(format!(
            "--model {} cannot train on several ranks with these settings: its objective couples the rows of a batch (a batch-wide term such as a sparsity target on the batch mean); train it in one process",
            config.kind()
        )));
    }
    Ok(())
}

/// Every rank's `bytes`, in rank order (the parts may differ in length).
pub fn gather_bytes(ranks: &dyn Ranks, bytes: &[u8]) -> Vec<Vec<u8>> {
    let lengths = ranks.all_gather(&[bytes.len() as u32]);
    let longest = lengths.iter().map(|&l| l as usize).max().unwrap_or(0);
    let mut words = vec![0u32; longest.div_ceil(4).max(1)];
    for (i, b) in bytes.iter().enumerate() {
        words[i / 4] |= u32::from(*b) << (8 * (i % 4));
    }
    ranks
        .all_gather(&words)
        .chunks(words.len())
        .zip(lengths)
        .map(|(w, len)| {
            (0..len as usize)
                .map(|i| (w[i / 4] >> (8 * (i % 4))) as u8)
                .collect()
        })
        .collect()
}

/// What the ranks of a job must agree on before training, as named items (`train.lr`, the
/// training data's digest …): every rank's items are compared with rank 0's, and the first
/// that differs is named. Every rank reaches the same verdict.
pub fn agree(ranks: &dyn Ranks, what: &str, items: &[(String, String)]) -> Result<()> {
    let mut text = String::new();
    for (name, value) in items {
        let _ = writeln!(text, "{name}\t{value}");
    }
    let all = gather_bytes(ranks, text.as_bytes());
    let parse = |bytes: &[u8]| -> Vec<(String, String)> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| {
                let (n, v) = l.split_once('\t').unwrap_or((l, ""));
                (n.to_string(), v.to_string())
            })
            .collect()
    };
    let leader = parse(&all[0]);
    for (rank, bytes) in all.iter().enumerate().skip(1) {
        let theirs = parse(bytes);
        let value_of = |list: &[(String, String)], name: &str| {
            list.iter()
                .find(|(n, _)| n == name)
                .map_or("(absent)".to_string(), |(_, v)| v.clone())
        };
        let names = leader.iter().chain(&theirs).map(|(n, _)| n.as_str());
        for name in names {
            let (ours, other) = (value_of(&leader, name), value_of(&theirs, name));
            if ours != other {
                return Err(Error::Ranks(format!(
                    "rank {rank} was started with a different {what} from rank 0's: {name} is {other} on rank {rank} and {ours} on rank 0; start every rank with the same command and data"
                )));
            }
        }
    }
    Ok(())
}

/// A config as named items: the dotted path of every value in its JSON form (`train.lr`).
pub fn config_items(prefix: &str, config: &impl serde::Serialize) -> Vec<(String, String)> {
    fn walk(path: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(&path, v, out);
                }
            }
            other => out.push((path.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    match serde_json::to_value(config) {
        Ok(value) => walk(prefix, &value, &mut out),
        Err(e) => out.push((prefix.to_string(), format!("(not serialisable: {e})"))),
    }
    out
}

/// The SHA-256 of `value`'s JSON form, for an item of [`agree`] too long to show.
pub fn digest_of(value: &impl serde::Serialize) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(value).unwrap_or_default();
    format!("sha256 {:x}", Sha256::digest(json))
}

/// Refuses to go on with a run whose batches are split into another number of shares than
/// there are ranks: the steps would differ from those it was trained with.
pub fn check_resumable(ranks: &dyn Ranks, run: &Path, state: &TrainState) -> Result<()> {
    match state.batch_shares {
        Some(shares) if shares == ranks.size() => Ok(()),
        Some(shares) => Err(Error::Ranks(format!(
            "{}: splits each batch into {shares} shares (the ranks or cores it was started with), not {}: resume it with `mpirun -np {shares}` or in one process",
            run.display(),
            ranks.size()
        ))),
        None => Err(Error::Ranks(format!(
            "{}: was trained before batches were split into shares: resume it in one process",
            run.display()
        ))),
    }
}

/// The checkpoint sink of a rank other than 0: rank 0 writes the run, the others nothing.
pub struct Unwritten {
    pub location: PathBuf,
    pub resume_hint: String,
}

impl Checkpoints for Unwritten {
    fn save_checkpoint(&self, _: &Autoencoder, _: &Optimizers, _: &TrainState) -> Result<()> {
        Ok(())
    }

    fn save_best(&self, _: &Autoencoder) -> Result<()> {
        Ok(())
    }

    fn save_metrics(&self, _: &[EpochMetrics]) -> Result<()> {
        Ok(())
    }

    fn checkpoint_location(&self) -> PathBuf {
        self.location.clone()
    }

    fn resume_hint(&self) -> String {
        self.resume_hint.clone()
    }
}

/// The SHA-256 of `net`'s parameters (their f32 values in visiting order): ranks compare it to
/// know they hold the same weights.
pub fn weights_digest(net: &Network) -> String {
    use sha2::{Digest, Sha256};
    struct Hash(Sha256);
    impl ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            for v in values(param.val()) {
                self.0.update(v.to_le_bytes());
            }
        }
    }
    let mut hash = Hash(Sha256::new());
    net.visit(&mut hash);
    format!("{:x}", hash.0.finalize())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// Appends `t`'s `count` values as f32 bits, read where the tensor's data lies when it holds
/// f32 (one copy fewer than through a `Vec`).
fn push_bits<const D: usize>(t: Tensor<D>, count: usize, words: &mut Vec<u32>) {
    let before = words.len();
    let data = t.into_data();
    match data.as_slice::<f32>() {
        Ok(values) => words.extend(values.iter().map(|v| v.to_bits())),
        Err(_) => {
            let values = data.convert::<f32>().try_into_vec::<f32>();
            words.extend(values.unwrap_or_default().iter().map(|v| v.to_bits()));
        }
    }
    // The message's layout is fixed by the parameters' shapes, whatever the data held.
    words.resize(before + count, 0);
}

/// What one exchange of a step gives every rank.
pub enum Exchanged {
    /// The batch's loss and its gradients: every rank's share summed in rank order.
    Step(f64, GradientsParams),
    /// A rank was interrupted (Ctrl-C, a signal): every rank stops before this step.
    Stop,
}

/// The one exchange of a training step. `mine` is this rank's share's loss and gradients
/// (`None` where the batch has fewer shares than there are ranks); `stop` asks every rank to
/// stop before the step. Gradients come back on `device` (the model's, without autodiff),
/// summed as `sum` says.
pub fn exchange(
    ranks: &dyn Ranks,
    net: &Network,
    mine: Option<(f64, GradientsParams)>,
    stop: bool,
    device: &Device,
    sum: RankSum,
) -> Exchanged {
    // A rank's head: [stop, has share, loss (two words of an f64)], then a word per parameter
    // saying whether it has a gradient. Its values: every parameter's gradient in visiting
    // order (zeros without one). In order, one message carries [head words 0–3, values, flags],
    // packed where the values are written; by allreduce the head goes apart from the values.
    struct Pack<'a> {
        grads: Option<&'a GradientsParams>,
        flags: Vec<u32>,
        values: Vec<u32>,
    }
    impl ModuleVisitor for Pack<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let count = param.val().shape().num_elements();
            let grad = self.grads.and_then(|g| g.get::<D>(param.id));
            self.flags.push(u32::from(grad.is_some()));
            match grad {
                Some(g) => push_bits(g, count, &mut self.values),
                None => self.values.extend(std::iter::repeat_n(0, count)),
            }
        }
    }
    let value = mine.as_ref().map_or(0.0, |(v, _)| *v).to_bits();
    let header = [
        u32::from(stop),
        u32::from(mine.is_some()),
        value as u32,
        (value >> 32) as u32,
    ];
    let in_order = sum == RankSum::Ordered;
    let mut pack = Pack {
        grads: mine.as_ref().map(|(_, g)| g),
        flags: Vec::new(),
        values: if in_order {
            header.to_vec()
        } else {
            Vec::new()
        },
    };
    net.visit(&mut pack);
    let gathered;
    let (heads, flags_at, values) = if in_order {
        let flags_at = pack.values.len();
        pack.values.extend(&pack.flags);
        gathered = ranks.all_gather(&pack.values);
        let parts: Vec<&[u32]> = gathered.chunks(pack.values.len()).collect();
        (parts, flags_at, Summed::InOrder { values_at: 4 })
    } else {
        let head = [&header[..], &pack.flags].concat();
        gathered = ranks.all_gather(&head);
        let heads: Vec<&[u32]> = gathered.chunks(head.len()).collect();
        let mut values: Vec<f32> = pack.values.into_iter().map(f32::from_bits).collect();
        if heads.iter().all(|h| h[0] == 0) {
            ranks.all_reduce_sum(&mut values);
        }
        (heads, 4, Summed::Reduced(values))
    };
    if heads.iter().any(|h| h[0] != 0) {
        return Exchanged::Stop;
    }
    let loss = heads
        .iter()
        .filter(|h| h[1] != 0)
        .map(|h| f64::from_bits(u64::from(h[2]) | (u64::from(h[3]) << 32)))
        .sum();

    /// Where the summed gradients come from.
    enum Summed {
        /// Every rank's message (`heads`, values from word `values_at`): summed here, the
        /// first share's gradient then each further share's added in rank order, as
        /// `shares::loss_and_grads` adds them.
        InOrder { values_at: usize },
        /// Already summed by the allreduce.
        Reduced(Vec<f32>),
    }
    struct Unpack<'a> {
        /// Every rank's head (in order, its whole message), its flags from word `flags_at`.
        heads: &'a [&'a [u32]],
        flags_at: usize,
        values: &'a Summed,
        param: usize,
        at: usize,
        device: &'a Device,
        grads: GradientsParams,
    }
    impl ModuleVisitor for Unpack<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let dims: [usize; D] = param.val().dims();
            let count: usize = dims.iter().product();
            let (flag, at) = (self.flags_at + self.param, self.at);
            (self.param, self.at) = (self.param + 1, self.at + count);
            let with_grad = |h: &[u32]| h[1] != 0 && h[flag] != 0;
            if !self.heads.iter().any(|h| with_grad(h)) {
                return;
            }
            let sum = match self.values {
                Summed::Reduced(values) => values[at..at + count].to_vec(),
                Summed::InOrder { values_at } => {
                    let mut sum: Option<Vec<f32>> = None;
                    for part in self.heads.iter().filter(|p| with_grad(p)) {
                        let start = values_at + at;
                        let values = part[start..start + count]
                            .iter()
                            .map(|b| f32::from_bits(*b));
                        match &mut sum {
                            None => sum = Some(values.collect()),
                            Some(s) => s.iter_mut().zip(values).for_each(|(a, b)| *a += b),
                        }
                    }
                    sum.unwrap_or_default()
                }
            };
            let tensor = Tensor::<D>::from_data(TensorData::new(sum, dims), self.device);
            self.grads.register::<D>(param.id, tensor);
        }
    }
    let mut unpack = Unpack {
        heads: &heads,
        flags_at,
        values: &values,
        param: 0,
        at: 0,
        device,
        grads: GradientsParams::new(),
    };
    net.visit(&mut unpack);
    Exchanged::Step(loss, unpack.grads)
}

/// The end of an epoch on every rank: rank 0's decision whether training stops (its clock
/// governs `max_minutes`; the other reasons are the same on every rank), and a check that every
/// rank still holds rank 0's weights.
pub fn epoch_end(ranks: &dyn Ranks, net: &Network, stop: Option<String>) -> Result<Option<String>> {
    let digest = weights_digest(net);
    let message = format!("{digest}\n{}", stop.unwrap_or_default());
    let all = gather_bytes(ranks, message.as_bytes());
    let leader = String::from_utf8_lossy(&all[0]).to_string();
    let (leader_digest, leader_stop) = leader.split_once('\n').unwrap_or((&leader, ""));
    for (rank, bytes) in all.iter().enumerate().skip(1) {
        let theirs = String::from_utf8_lossy(bytes);
        if theirs.split('\n').next() != Some(leader_digest) {
            return Err(Error::Ranks(format!(
                "rank {rank}'s weights differ from rank 0's after the same steps: the ranks do not compute alike (different aekit builds or CPUs?)"
            )));
        }
    }
    Ok((!leader_stop.is_empty()).then(|| leader_stop.to_string()))
}

/// Ranks as threads of one process, for tests: the same exchanges without MPI.
pub mod local {
    use std::sync::{Arc, Barrier, Mutex};

    use super::Ranks;

    /// One rank of a group of threads.
    pub struct ThreadRank {
        rank: usize,
        shared: Arc<Shared>,
    }

    struct Shared {
        parts: Mutex<Vec<Vec<u32>>>,
        barrier: Barrier,
    }

    /// `size` ranks that exchange through memory; give each to its own thread.
    pub fn group(size: usize) -> Vec<ThreadRank> {
        let shared = Arc::new(Shared {
            parts: Mutex::new(vec![Vec::new(); size]),
            barrier: Barrier::new(size),
        });
        (0..size)
            .map(|rank| ThreadRank {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    impl Ranks for ThreadRank {
        fn rank(&self) -> usize {
            self.rank
        }

        fn size(&self) -> usize {
            self.shared.parts.lock().map_or(0, |p| p.len())
        }

        fn all_gather(&self, part: &[u32]) -> Vec<u32> {
            if let Ok(mut parts) = self.shared.parts.lock() {
                parts[self.rank] = part.to_vec();
            }
            self.shared.barrier.wait();
            let all = self
                .shared
                .parts
                .lock()
                .map(|p| p.concat())
                .unwrap_or_default();
            // Nobody writes the next exchange's part before everyone has read this one.
            self.shared.barrier.wait();
            all
        }

        fn all_reduce_sum(&self, values: &mut [f32]) {
            let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
            let all = self.all_gather(&bits);
            values.fill(0.0);
            for part in all.chunks(bits.len().max(1)) {
                for (v, b) in values.iter_mut().zip(part) {
                    *v += f32::from_bits(*b);
                }
            }
        }
    }
}

/// The ranks of an MPI job (`mpirun -np N aekit train …`).
#[cfg(feature = "mpi")]
pub mod mpi {
    use std::sync::{Arc, Mutex};

    use mpi::collective::SystemOperation;
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::{Communicator, CommunicatorCollectives};

    use super::Ranks;
    use crate::error::{Error, Result};

    /// `MPI_COMM_WORLD`, used by one thread at a time.
    struct World {
        comm: Mutex<SimpleCommunicator>,
        rank: usize,
        size: usize,
    }

    // SAFETY: MPI is initialised at the `Serialized` threading level, under which any thread
    // may call it as long as no two do at once; the mutex makes every call one at a time.
    unsafe impl Send for World {}
    unsafe impl Sync for World {}

    impl Ranks for World {
        fn rank(&self) -> usize {
            self.rank
        }

        fn size(&self) -> usize {
            self.size
        }

        fn all_gather(&self, part: &[u32]) -> Vec<u32> {
            let mut all = vec![0u32; part.len() * self.size];
            if let Ok(comm) = self.comm.lock() {
                comm.all_gather_into(part, &mut all[..]);
            }
            all
        }

        fn all_reduce_sum(&self, values: &mut [f32]) {
            let mine = values.to_vec();
            if let Ok(comm) = self.comm.lock() {
                comm.all_reduce_into(&mine[..], values, SystemOperation::sum());
            }
        }
    }

    /// Joins the MPI job this process was started in. Keep the [`Universe`] until the job's
    /// work is done: dropping it finalises MPI. A rank that ends without that (an error, a
    /// kill) makes `mpirun` stop the others.
    pub fn join() -> Result<(Universe, Arc<dyn Ranks>)> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            .ok_or_else(|| Error::invalid("MPI is already initialised in this process"))?;
        let comm = universe.world();
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        let world = World {
            comm: Mutex::new(comm),
            rank,
            size,
        };
        Ok((universe, Arc::new(world)))
    }
}
