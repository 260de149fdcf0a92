//! A run directory: what training writes and what every later command reads.
//!
//! ```text
//! RUN_DIR/
//!   config.toml, config.json   the resolved run config (rebuilds the model, repeats the run)
//!   preprocess.json            the fitted input scaling
//!   model.safetensors          best weights by validation loss (PyTorch names and layouts)
//!   metrics.jsonl              one JSON line per epoch
//!   summary.json               how training went
//!   checkpoint/                the last state, for --resume: model.safetensors,
//!                              optimizer.bpk, state.json (replaced as a whole, atomically)
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::data::Preprocessor;
use crate::error::{Error, Result};
use crate::model::Autoencoder;

/// Where training stands, saved with every checkpoint so that a resumed run continues exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epoch in progress (0-based).
    pub epoch: usize,
    /// Next batch of that epoch.
    pub batch: usize,
    /// Optimisation steps taken so far.
    pub global_step: usize,
    /// Sum of batch losses (weighted by batch size) in the current epoch so far.
    pub epoch_loss_sum: f64,
    pub epoch_samples: usize,
    pub best_val: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Epochs since the validation loss last improved.
    pub bad_epochs: usize,
    pub train_seconds: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Mean training loss per element (pixel).
    pub train_loss: f64,
    /// Mean validation loss per element, when there is a validation set.
    pub val_loss: Option<f64>,
    /// The same, summed over the elements of a sample.
    pub train_loss_per_sample: f64,
    pub val_loss_per_sample: Option<f64>,
    /// The reconstruction part of the validation loss (equal to it without penalties).
    #[serde(default)]
    pub val_recon: Option<f64>,
    pub lr: f64,
    pub seconds: f64,
    pub samples_per_sec: f64,
}

/// The final `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    pub parameters: usize,
    pub loss: String,
    pub epochs_completed: usize,
    pub best_epoch: Option<usize>,
    pub best_val_loss: Option<f64>,
    pub final_train_loss: Option<f64>,
    pub stop_reason: String,
    pub train_seconds: f64,
    pub samples_per_sec: f64,
    pub train_samples: usize,
    pub val_samples: usize,
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
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| Error::bad_file(&path, format!("line {}: {e}", i + 1)))
            })
            .collect()
    }

    /// Rewrites `metrics.jsonl` atomically with `lines`.
    pub fn write_metrics(&self, lines: &[EpochMetrics]) -> Result<()> {
        let mut text = String::new();
        for m in lines {
            text.push_str(&serde_json::to_string(m).map_err(|e| Error::invalid(e.to_string()))?);
            text.push('\n');
        }
        crate::io::write_atomic(&self.metrics_path(), text.as_bytes())
    }

    /// Saves the resumable state as one directory swap: weights, optimiser and position.
    pub fn save_checkpoint(
        &self,
        model: &Autoencoder,
        optimizer: &burn::optim::ModuleOptimizer,
        state: &TrainState,
    ) -> Result<()> {
        let optim_bytes = optimizer
            .into_bytes()
            .map_err(|e| Error::invalid(format!("cannot serialise optimiser state: {e:?}")))?;
        crate::io::replace_dir_atomic(&self.checkpoint_dir(), |dir| {
            model.save_safetensors(&dir.join("model.safetensors"))?;
            crate::io::write_atomic(&dir.join("optimizer.bpk"), &optim_bytes)?;
            crate::io::write_json(&dir.join("state.json"), state)
        })
    }

    /// Loads what [`Self::save_checkpoint`] wrote.
    pub fn load_checkpoint(
        &self,
        model: Autoencoder,
        optimizer: burn::optim::ModuleOptimizer,
    ) -> Result<(Autoencoder, burn::optim::ModuleOptimizer, TrainState)> {
        let dir = self.checkpoint_dir();
        let state_path = dir.join("state.json");
        if !state_path.is_file() {
            return Err(Error::bad_file(&dir, "no checkpoint to resume from"));
        }
        let state: TrainState = crate::io::read_json(&state_path)?;
        let model = model.load_safetensors(&dir.join("model.safetensors"))?;
        let optim_path = dir.join("optimizer.bpk");
        let bytes = crate::io::read_file(&optim_path)?;
        let optimizer = optimizer
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::bad_file(&optim_path, format!("invalid optimiser state: {e:?}")))?;
        Ok((model, optimizer, state))
    }
}

/// A loaded run: config, preprocessing and model, ready for eval and exploration.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: RunDir,
    pub config: RunConfig,
    pub preprocessor: Preprocessor,
    pub model: Autoencoder,
}

impl Run {
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let dir = RunDir::open(path)?;
        let config = dir.config()?;
        let preprocessor = dir.preprocessor()?;
        let model = dir.load_model(device, false)?;
        Ok(Self {
            dir,
            config,
            preprocessor,
            model,
        })
    }

    /// Loads `split` of the data this run was trained on (or of `source` when given), already
    /// preprocessed the way training saw it.
    pub fn load_data(
        &self,
        source: Option<&crate::data::DataConfig>,
        split: crate::data::Split,
    ) -> Result<crate::data::Dataset> {
        let mut cfg = source.unwrap_or(&self.config.data).clone();
        // Text runs count words against the vocabulary they were trained with.
        let vocab = self.dir.vocabulary_path();
        if cfg.vocabulary_words.is_none() && vocab.is_file() {
            let text = String::from_utf8_lossy(&crate::io::read_file(&vocab)?).to_string();
            cfg.vocabulary_words = Some(text.lines().map(str::to_string).collect());
        }
        let raw = crate::data::load(&cfg, split)?;
        if raw.dim() != self.model.input_dim() {
            return Err(Error::mismatch(format!(
                "{}: samples have {} features, the model in {} expects {}",
                raw.origin,
                raw.dim(),
                self.dir.path.display(),
                self.model.input_dim()
            )));
        }
        self.preprocessor.transform(&raw)
    }
}
