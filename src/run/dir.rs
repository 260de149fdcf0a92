//! A run directory: what training writes and what every later command reads.
//!
//! ```text
//! RUN_DIR/
//!   config.toml, config.json   the resolved run config (rebuilds the model, repeats the run);
//!                              config.json also holds the network as plain operations (`graph`)
//!   preprocess.json            the fitted input scaling
//!   model.safetensors          best weights by validation loss (PyTorch names and layouts)
//!   metrics.jsonl              one JSON line per epoch
//!   summary.json               how training went
//!   data-index.json            a streamed run's table index (files, chunks, rows)
//!   .lock                      held (advisory) by the process that writes the run
//!   checkpoint/                the last state, for --resume: model.safetensors,
//!                              optimizer.bpk (and optimizer-STEP.bpk for a variant's extra
//!                              steps), state.json, clock.json (training time so far),
//!                              manifest.json (SHA-256 of the others but the clock);
//!                              replaced as a whole, atomically
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::data::Preprocessor;
use crate::data::table::scan::TableIndex;
use crate::error::{Error, Result};
use crate::model::Autoencoder;
use crate::run::RunConfig;
use crate::train::state::{EpochMetrics, Summary, TrainState};
use crate::train::trainer::{Checkpoints, Optimizers};

/// What `data-index.json` holds: the table index and the range of the preprocessed values
/// (the range corrupted inputs are clipped to).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DataIndexFile {
    pub index: TableIndex,
    pub range: (f32, f32),
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn preprocess_path(&self) -> PathBuf {
        self.path.join("preprocess.json")
    }
    /// The words of a text run's bags of words, one per line, in input order.
    pub fn vocabulary_path(&self) -> PathBuf {
        self.path.join("vocabulary.txt")
    }
    pub fn model_path(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    pub fn summary_path(&self) -> PathBuf {
        self.path.join("summary.json")
    }
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.path.join("checkpoint")
    }
    /// A streamed run's table index (files with their sizes and times, chunks and their
    /// rows) and the range of its preprocessed values: what a resume reads instead of the
    /// table.
    pub fn data_index_path(&self) -> PathBuf {
        self.path.join("data-index.json")
    }

    /// Writes the table index of a streamed run, once.
    pub fn save_data_index(&self, index: &TableIndex, range: (f32, f32)) -> Result<()> {
        if self.data_index_path().is_file() {
            return Ok(());
        }
        crate::io::write_json(
            &self.data_index_path(),
            &DataIndexFile {
                index: index.clone(),
                range,
            },
        )
    }

    /// The table index, preprocessing and value range a streamed run at `path` was started
    /// with; `None` where the run has no index yet.
    pub fn read_data_index(path: &Path) -> Result<Option<(DataIndexFile, Preprocessor)>> {
        let run = Self::new(path);
        if !run.data_index_path().is_file() || !run.preprocess_path().is_file() {
            return Ok(None);
        }
        let file: DataIndexFile = crate::io::read_json(&run.data_index_path())?;
        Ok(Some((file, run.preprocessor()?)))
    }

    /// Creates the run directory of a new run and writes what training starts from: the
    /// config, the fitted preprocessing and, for text sources, the vocabulary.
    /// The returned lock is held until it is dropped.
    pub fn create(
        path: &Path,
        cfg: &RunConfig,
        preprocessor: &Preprocessor,
        vocabulary: Option<&[String]>,
        graph: Option<&crate::model::graph::Graph>,
    ) -> Result<(Self, RunLock)> {
        let run = Self::new(path);
        let existed = run.path.exists();
        // Locked before the check, so two processes cannot both find the directory free.
        let lock = run.lock()?;
        // A creation killed before its config was written leaves staging files only.
        run.recover(&lock)?;
        if run.config_path().exists() {
            return Err(Error::bad_file(
                &run.path,
                "already holds a run; use --resume to continue it or choose another --out",
            ));
        }
        let written = crate::io::ensure_dir(&run.path)
            .and_then(|()| cfg.save(&run.path, graph))
            .and_then(|()| run.complete_creation(preprocessor, vocabulary));
        if let Err(e) = written {
            // A creation that failed (a full disk) leaves nothing: what it wrote is removed,
            // and the directory too when it made it.
            for file in [
                run.config_path(),
                run.path.join("config.json"),
                run.preprocess_path(),
                run.vocabulary_path(),
            ] {
                let _ = std::fs::remove_file(file);
            }
            drop(lock);
            let _ = std::fs::remove_file(run.path.join(".lock"));
            if !existed {
                let _ = std::fs::remove_dir(&run.path);
            }
            return Err(e);
        }
        Ok((run, lock))
    }

    /// Writes what a new run holds beside its config, where it is missing: the fitted
    /// preprocessing and a text run's vocabulary.
    pub fn complete_creation(
        &self,
        preprocessor: &Preprocessor,
        vocabulary: Option<&[String]>,
    ) -> Result<()> {
        if !self.preprocess_path().is_file() {
            crate::io::write_json(&self.preprocess_path(), preprocessor)?;
        }
        if let Some(words) = vocabulary
            && !self.vocabulary_path().is_file()
        {
            crate::io::write_atomic(
                &self.vocabulary_path(),
                format!("{}\n", words.join("\n")).as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Whether a checkpoint was saved (a run killed while being created may have none).
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint_dir().join("state.json").is_file()
    }

    /// Opens the run in `path` to continue it with `cfg`, which must build the same model,
    /// locks it and recovers what a crash left (see [`Self::recover`]).
    pub fn open_to_resume(path: &Path, cfg: &RunConfig) -> Result<(Self, RunLock)> {
        let run = Self::open(path)?;
        let lock = run.lock()?;
        run.recover(&lock)?;
        let saved = run.config()?;
        if saved.model != cfg.model {
            return Err(Error::mismatch(format!(
                "{}: the saved run is a {}, this config builds a {}",
                path.display(),
                saved.model.describe(),
                cfg.model.describe()
            )));
        }
        Ok((run, lock))
    }

    /// Makes the directory consistent after a process died while writing it (needs the lock):
    /// a checkpoint displaced by an unfinished swap is put back, and staging files are removed.
    /// The metrics are written before the checkpoint, so they never lack an epoch the
    /// checkpoint has; lines of later epochs are dropped on resume.
    pub fn recover(&self, _lock: &RunLock) -> Result<()> {
        let checkpoint = self.checkpoint_dir();
        let displaced = crate::io::displaced_dir(&checkpoint);
        if !checkpoint.exists() && displaced.is_dir() {
            std::fs::rename(&displaced, &checkpoint).map_err(|e| Error::io(&displaced, e))?;
        }
        for dir in [self.path.clone(), checkpoint] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if !crate::io::is_staging_name(&name) {
                    continue;
                }
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Takes the exclusive lock of the directory (`.lock`, an advisory lock the OS releases
    /// when the process ends, however it ends); fails at once if another process holds it.
    pub fn lock(&self) -> Result<RunLock> {
        crate::io::ensure_dir(&self.path)?;
        let path = self.path.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::bad_file(
                &self.path,
                "another aekit process is writing this run (it holds its .lock); wait for it to finish or choose another --out",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Fails unless `path` looks like a run directory.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let run = Self::new(path);
        if !run.path.is_dir() {
            return Err(Error::bad_file(&run.path, "run directory not found"));
        }
        if !run.config_path().is_file() {
            return Err(Error::bad_file(
                &run.path,
                "not a run directory (no config.toml)",
            ));
        }
        Ok(run)
    }

    pub fn config(&self) -> Result<RunConfig> {
        RunConfig::load(&self.config_path())
    }

    pub fn preprocessor(&self) -> Result<Preprocessor> {
        crate::io::read_json(&self.preprocess_path())
    }

    /// The best model (or, with `last`, the latest checkpoint) on `device`.
    pub fn load_model(&self, device: &Device, last: bool) -> Result<Autoencoder> {
        let cfg = self.config()?;
        let path = if last {
            self.checkpoint_dir().join("model.safetensors")
        } else {
            self.model_path()
        };
        if !path.is_file() {
            return Err(Error::bad_file(
                &path,
                "no weights saved yet (training has not completed an epoch)",
            ));
        }
        Autoencoder::new(&cfg.model, cfg.train.seed, device)?.load_safetensors(&path)
    }

    pub fn summary(&self) -> Result<Summary> {
        crate::io::read_json(&self.summary_path())
    }

    pub fn metrics(&self) -> Result<Vec<EpochMetrics>> {
        crate::io::read_json_lines(&self.metrics_path())
    }

    /// Rewrites `metrics.jsonl` atomically with `lines`.
    pub fn write_metrics(&self, lines: &[EpochMetrics]) -> Result<()> {
        crate::io::write_json_lines(&self.metrics_path(), lines)
    }

    pub fn save_summary(&self, summary: &Summary) -> Result<()> {
        crate::io::write_json(&self.summary_path(), summary)
    }

    /// Saves the resumable state as one directory swap: weights, optimisers and position.
    pub fn save_checkpoint(
        &self,
        model: &Autoencoder,
        optimizers: &Optimizers,
        state: &TrainState,
    ) -> Result<()> {
        let bytes = sorted_optimizer_bytes;
        let main = bytes(&optimizers.main)?;
        let extra = optimizers
            .extra
            .iter()
            .map(|(name, o)| Ok((optimizer_file(Some(name)), bytes(o)?)))
            .collect::<Result<Vec<_>>>()?;
        crate::io::replace_dir_atomic(&self.checkpoint_dir(), |dir| {
            model.save_safetensors(&dir.join("model.safetensors"))?;
            crate::io::write_atomic(&dir.join(optimizer_file(None)), &main)?;
            for (file, b) in &extra {
                crate::io::write_atomic(&dir.join(file), b)?;
            }
            crate::io::write_json(&dir.join("state.json"), state)?;
            crate::io::write_json(
                &dir.join("clock.json"),
                &Clock {
                    train_seconds: state.train_seconds,
                },
            )?;
            // Written last, inside the directory that is swapped in as a whole.
            write_manifest(dir)
        })
    }

    /// Loads what [`Self::save_checkpoint`] wrote.
    pub fn load_checkpoint(
        &self,
        model: Autoencoder,
        optimizers: Optimizers,
    ) -> Result<(Autoencoder, Optimizers, TrainState)> {
        let dir = self.checkpoint_dir();
        let state_path = dir.join("state.json");
        if !state_path.is_file() {
            return Err(Error::bad_file(&dir, "no checkpoint to resume from"));
        }
        verify_manifest(&dir)?;
        let mut state: TrainState = crate::io::read_json(&state_path)?;
        // Checkpoints written before the clock had its own file keep it in state.json.
        let clock = dir.join("clock.json");
        if clock.is_file() {
            state.train_seconds = crate::io::read_json::<Clock>(&clock)?.train_seconds;
        }
        let model = model.load_safetensors(&dir.join("model.safetensors"))?;
        let load = |file: String, o: burn::optim::ModuleOptimizer| {
            let path = dir.join(file);
            let bytes = crate::io::read_file(&path)?;
            o.from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
                .map_err(|e| Error::bad_file(&path, format!("invalid optimiser state: {e:?}")))
        };
        let main = load(optimizer_file(None), optimizers.main)?;
        let extra = optimizers
            .extra
            .into_iter()
            .map(|(name, o)| Ok((name.clone(), load(optimizer_file(Some(&name)), o)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((model, Optimizers { main, extra }, state))
    }
}

/// The optimiser state as burn writes it, with its tensors in name order: burn lists them in
/// the order of a hash map, so the same state would give different bytes from run to run.
fn sorted_optimizer_bytes(optimizer: &burn::optim::ModuleOptimizer) -> Result<Vec<u8>> {
    let bad = |e: String| Error::Serialize(format!("optimiser state: {e}"));
    let bytes = optimizer.into_bytes().map_err(|e| bad(format!("{e:?}")))?;
    let reader = burn_pack::Reader::from_bytes(bytes).map_err(|e| bad(format!("{e:?}")))?;
    let scalars = reader.scalars().clone();
    let metadata = reader.metadata().clone();
    let mut tensors = reader.into_tensors().map_err(|e| bad(format!("{e:?}")))?;
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let mut writer = burn_pack::Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    let sorted = writer.into_bytes().map_err(|e| bad(format!("{e:?}")))?;
    Ok(sorted.to_vec())
}

/// `manifest.json` of a checkpoint: the SHA-256 of each of its other files but the clock.
const MANIFEST: &str = "manifest.json";

fn sha256_of(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    Ok(format!("{:x}", Sha256::digest(crate::io::read_file(path)?)))
}

fn write_manifest(dir: &Path) -> Result<()> {
    let mut sums = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        // The clock measures time, so identical runs differ in it: it stays out, and the
        // manifest of identical runs is identical.
        if let Some(name) = name.filter(|n| n != MANIFEST && n != "clock.json" && path.is_file()) {
            sums.insert(name, sha256_of(&path)?);
        }
    }
    crate::io::write_json(&dir.join(MANIFEST), &sums)
}

/// Checks every file a checkpoint's manifest lists (checkpoints written before manifests
/// existed have none and are read as they are).
fn verify_manifest(dir: &Path) -> Result<()> {
    let manifest = dir.join(MANIFEST);
    if !manifest.is_file() {
        return Ok(());
    }
    let sums: std::collections::BTreeMap<String, String> = crate::io::read_json(&manifest)?;
    for (name, want) in sums {
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(Error::bad_file(&path, "missing from the checkpoint"));
        }
        if sha256_of(&path)? != want {
            return Err(Error::bad_file(
                &path,
                "does not match its checksum in manifest.json: the file is corrupt",
            ));
        }
    }
    Ok(())
}

/// The exclusive lock of a run directory, held while one process writes it.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Time spent training, the one part of a checkpoint that differs between identical runs.
#[derive(serde::Serialize, serde::Deserialize)]
struct Clock {
    train_seconds: f64,
}

/// `optimizer.bpk` for the main step, `optimizer-NAME.bpk` for a variant's extra step.
fn optimizer_file(step: Option<&str>) -> String {
    match step {
        None => "optimizer.bpk".into(),
        Some(name) => format!("optimizer-{name}.bpk"),
    }
}

impl Checkpoints for RunDir {
    fn save_checkpoint(
        &self,
        model: &Autoencoder,
        optimizers: &Optimizers,
        state: &TrainState,
    ) -> Result<()> {
        RunDir::save_checkpoint(self, model, optimizers, state)
    }

    fn save_best(&self, model: &Autoencoder) -> Result<()> {
        model.save_safetensors(&self.model_path())
    }

    fn save_metrics(&self, history: &[EpochMetrics]) -> Result<()> {
        self.write_metrics(history)
    }

    fn checkpoint_location(&self) -> PathBuf {
        self.checkpoint_dir()
    }

    fn resume_hint(&self) -> String {
        format!("aekit train --resume {}", self.path.display())
    }
}
