//! Dynamic batching: concurrent requests to one run share one forward pass.
//!
//! Each run has one worker thread that owns the model. Handlers queue jobs on a bounded channel
//! (full → the request is refused with 503 instead of the queue growing); the worker takes the
//! first job, then every job already queued, and — only while other requests are known to be
//! on their way — waits up to `max_wait` for more, until `max_rows` rows are gathered. A lone
//! client therefore never waits, and 64 clients share forward passes. The rows of a batch are
//! computed as one matrix. A request answered alone gets exactly what the library computes for
//! its rows; in a batch, a row may differ from that in the last bits, because the
//! matrix-product kernel blocks the inner dimension by the size of the whole matrix.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::data::Matrix;
use crate::error::{Error, Result};
use crate::model::Autoencoder;

/// What a job asks of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Encode,
    Decode,
    Reconstruct,
    /// Class probabilities, for a classifier run or a semi-supervised model.
    Predict,
}

/// How requests are gathered into forward passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchPolicy {
    /// Longest a gathered batch waits for requests known to be coming; zero turns batching
    /// off (one forward pass per request).
    pub max_wait: Duration,
    /// Rows above which a batch is run without waiting for more.
    pub max_rows: usize,
    /// Jobs that may wait in the queue before requests are refused.
    pub queue: usize,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_micros(2000),
            max_rows: 4096,
            queue: 1024,
        }
    }
}

impl BatchPolicy {
    pub fn batching(&self) -> bool {
        !self.max_wait.is_zero()
    }
}

struct Job {
    pass: Pass,
    x: Matrix,
    /// Each row's class, for a conditional model.
    labels: Option<Vec<u32>>,
    reply: oneshot::Sender<Result<Matrix>>,
}

/// Why a job got no answer.
#[derive(Debug)]
pub enum Refusal {
    /// The queue is full: the client should retry later (503).
    Busy,
    /// The model refused the input (400), or the worker is gone (500).
    Failed(Error),
    Gone,
}

/// The handle handlers use; cloning it shares the worker.
#[derive(Clone)]
pub struct Batcher {
    jobs: SyncSender<Job>,
    /// Requests between arrival and answer: the worker waits for more only while some are
    /// outside the batch it holds.
    in_flight: Arc<AtomicUsize>,
    stats: Arc<BatchStats>,
}

/// Counters the metrics endpoint reports.
#[derive(Default, Debug)]
pub struct BatchStats {
    passes: AtomicUsize,
    jobs: AtomicUsize,
    rows: AtomicUsize,
}

impl BatchStats {
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed) as u64
    }

    pub fn jobs(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed) as u64
    }

    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed) as u64
    }
}

impl Batcher {
    /// Starts the worker thread for `model`. The thread ends when every handle is dropped.
    /// `head`: a classifier run's head, which [`Pass::Predict`] needs.
    pub fn start(
        model: Autoencoder,
        head: Option<crate::model::layers::Layers>,
        policy: BatchPolicy,
        name: &str,
    ) -> Result<Self> {
        let (jobs, rx) = sync_channel(policy.queue.max(1));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(BatchStats::default());
        let worker = Worker {
            model,
            head,
            policy,
            jobs: rx,
            in_flight: in_flight.clone(),
            stats: stats.clone(),
        };
        std::thread::Builder::new()
            .name(format!("aekit-serve-{name}"))
            .spawn(move || worker.run())
            .map_err(|e| Error::invalid(format!("cannot start the worker for run {name}: {e}")))?;
        Ok(Self {
            jobs,
            in_flight,
            stats,
        })
    }

    pub fn stats_handle(&self) -> Arc<BatchStats> {
        self.stats.clone()
    }

    /// Runs `pass` on the rows of `x` (of the classes `labels`, for a conditional model), in a
    /// batch with whatever else is queued.
    pub async fn run(
        &self,
        pass: Pass,
        x: Matrix,
        labels: Option<Vec<u32>>,
    ) -> std::result::Result<Matrix, Refusal> {
        let (reply, answer) = oneshot::channel();
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _done = InFlight(&self.in_flight);
        match self.jobs.try_send(Job {
            pass,
            x,
            labels,
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Refusal::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(Refusal::Gone),
        }
        match answer.await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(Refusal::Failed(e)),
            Err(_) => Err(Refusal::Gone),
        }
    }
}

/// Counts a request out however its future ends (answered, refused, or dropped on timeout).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Worker {
    model: Autoencoder,
    head: Option<crate::model::layers::Layers>,
    policy: BatchPolicy,
    jobs: Receiver<Job>,
    in_flight: Arc<AtomicUsize>,
    stats: Arc<BatchStats>,
}

impl Worker {
    fn run(self) {
        while let Ok(first) = self.jobs.recv() {
            let batch = self.gather(first);
            self.stats.jobs.fetch_add(batch.len(), Ordering::Relaxed);
            self.answer(batch);
        }
    }

    fn gather(&self, first: Job) -> Vec<Job> {
        let mut batch = vec![first];
        if !self.policy.batching() {
            return batch;
        }
        let mut rows = batch[0].x.rows;
        let deadline = Instant::now() + self.policy.max_wait;
        while rows < self.policy.max_rows {
            let job = match self.jobs.try_recv() {
                Ok(job) => job,
                Err(_) => {
                    // Wait only for requests already on their way (parsed or being parsed).
                    if self.in_flight.load(Ordering::SeqCst) <= batch.len() {
                        break;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.jobs.recv_timeout(left) {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            rows += job.x.rows;
            batch.push(job);
        }
        batch
    }

    /// One forward pass per kind of job in the batch; each job gets its own rows back.
    fn answer(&self, batch: Vec<Job>) {
        let mut by_pass: [Vec<Job>; 4] = Default::default();
        for job in batch {
            let slot = match job.pass {
                Pass::Encode => 0,
                Pass::Decode => 1,
                Pass::Reconstruct => 2,
                Pass::Predict => 3,
            };
            by_pass[slot].push(job);
        }
        for jobs in by_pass.into_iter().filter(|j| !j.is_empty()) {
            let pass = jobs[0].pass;
            if jobs.len() == 1 {
                let job = jobs.into_iter().next().expect("one job");
                let out = self.forward(pass, &job.x, job.labels.as_deref());
                let _ = job.reply.send(out);
                continue;
            }
            // Jobs whose width does not fit the model, or that differ from the first in
            // giving classes, are answered alone, so that one bad request cannot fail its
            // neighbours.
            let width = jobs[0].x.cols;
            let labelled = jobs[0].labels.is_some();
            let (same, odd): (Vec<Job>, Vec<Job>) = jobs
                .into_iter()
                .partition(|j| j.x.cols == width && j.labels.is_some() == labelled);
            for job in odd {
                let out = self.forward(pass, &job.x, job.labels.as_deref());
                let _ = job.reply.send(out);
            }
            let rows: usize = same.iter().map(|j| j.x.rows).sum();
            let mut data = Vec::with_capacity(rows * width);
            let mut labels = Vec::with_capacity(if labelled { rows } else { 0 });
            for job in &same {
                data.extend_from_slice(&job.x.data);
                labels.extend(job.labels.iter().flatten());
            }
            let labels = labelled.then_some(labels.as_slice());
            let result =
                Matrix::new(rows, width, data).and_then(|x| self.forward(pass, &x, labels));
            match result {
                Ok(out) => {
                    let mut start = 0;
                    for job in same {
                        let n = job.x.rows;
                        let part = Matrix::new(
                            n,
                            out.cols,
                            out.data[start * out.cols..(start + n) * out.cols].to_vec(),
                        );
                        start += n;
                        let _ = job.reply.send(part);
                    }
                }
                Err(_) => {
                    for job in same {
                        let out = self.forward(pass, &job.x, job.labels.as_deref());
                        let _ = job.reply.send(out);
                    }
                }
            }
        }
    }

    fn forward(&self, pass: Pass, x: &Matrix, labels: Option<&[u32]>) -> Result<Matrix> {
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        self.stats.rows.fetch_add(x.rows, Ordering::Relaxed);
        match pass {
            Pass::Encode => self.model.encode_given(x, labels),
            Pass::Decode => self.model.decode_given(x, labels),
            Pass::Reconstruct => self.model.reconstruct_given(x, labels),
            Pass::Predict => match &self.head {
                Some(head) => crate::model::classifier::probabilities(&self.model, head, x),
                None => self.model.class_probabilities(x)?.ok_or_else(|| {
                    Error::invalid("the run is not a classifier: make one with `aekit finetune`")
                }),
            },
        }
    }
}
