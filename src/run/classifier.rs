//! A classifier run: an autoencoder run whose encoder was fine-tuned with labels, and the head
//! that turns its codes into classes. It is a run directory like any other (its `model`
//! holds the fine-tuned encoder and the pretrained decoder, so its codes can be encoded,
//! drawn and explored), plus:
//!
//! ```text
//! CLASSIFIER_RUN/
//!   classifier.json            the head, the classes, the fine-tuning settings and data
//!   head.safetensors           the head's weights (head.0.weight, ...)
//!   classifier-metrics.jsonl   one JSON line per epoch of fine-tuning
//!   evaluation.json            accuracy, confusion matrix and per-class scores on the test split
//! ```
//!
//! The directory is written whole beside its destination and renamed into place, so a
//! fine-tuning that dies leaves nothing half-written.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::error::{Error, Result};
use crate::model::classifier::Head;
use crate::model::layers::Layers;
use crate::run::Run;
use crate::train::finetune::{FinetuneConfig, FinetuneEpoch};

pub const CLASSIFIER_FILE: &str = "classifier.json";
pub const HEAD_FILE: &str = "head.safetensors";
pub const CLASSIFIER_METRICS_FILE: &str = "classifier-metrics.jsonl";
pub const EVALUATION_FILE: &str = "evaluation.json";
/// What a classifier run copies from its source beside the fine-tuned weights: what opening
/// it as a run reads.
const COPIED_FROM_SOURCE: [&str; 4] = [
    "config.toml",
    "config.json",
    "preprocess.json",
    "vocabulary.txt",
];

/// What `classifier.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierInfo {
    /// The run whose encoder was fine-tuned, as given.
    pub source: String,
    pub head: Head,
    /// The head's width: classes are `0..classes`.
    pub classes: usize,
    /// Names of the classes, indexed by class, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    pub finetune: FinetuneConfig,
    /// Labelled rows trained on, and held out to choose the epoch.
    pub train_rows: usize,
    pub validation_rows: usize,
    /// The epoch whose weights were kept (1-based).
    pub kept_epoch: usize,
}

impl ClassifierInfo {
    /// Class `c`'s name, or its number when the classes have none.
    pub fn class_name(&self, c: usize) -> String {
        crate::data::class_name(self.class_names.as_deref(), c)
    }

    /// Every class's name, in class order.
    pub fn all_class_names(&self) -> Vec<String> {
        (0..self.classes).map(|c| self.class_name(c)).collect()
    }
}

/// A loaded classifier run.
#[derive(Debug, Clone)]
pub struct ClassifierRun {
    pub run: Run,
    pub info: ClassifierInfo,
    /// The head on the autodiff device, as the network is.
    pub head: Layers,
}

impl ClassifierRun {
    /// Whether `path` holds a classifier run (rather than an autoencoder's alone).
    pub fn is_classifier(path: &Path) -> bool {
        path.join(CLASSIFIER_FILE).is_file()
    }

    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        Self::from_run(Run::open(path, device)?)
    }

    /// The classifier of a loaded run: its head and `classifier.json` read beside it.
    pub fn from_run(run: Run) -> Result<Self> {
        let (info, head) = Self::read_head(&run)?;
        Ok(Self { run, info, head })
    }

    /// `classifier.json` and the head of a loaded run, built on its model's device.
    pub fn read_head(run: &Run) -> Result<(ClassifierInfo, Layers)> {
        let path = run.dir.path.as_path();
        let device = run.model.device().clone();
        let info_path = path.join(CLASSIFIER_FILE);
        if !info_path.is_file() {
            return Err(Error::bad_file(
                path,
                "is an autoencoder run, not a classifier (no classifier.json); make one with `aekit finetune`",
            ));
        }
        let info: ClassifierInfo = crate::io::read_json(&info_path)?;
        let head = info
            .head
            .build(
                run.model.latent_dim(),
                info.classes,
                0,
                &device.clone().autodiff(),
            )?
            .import(&crate::model::safetensors::read(&path.join(HEAD_FILE))?)
            .map_err(|e| Error::bad_file(path.join(HEAD_FILE), e.to_string()))?;
        Ok((info, head))
    }

    pub fn classes(&self) -> usize {
        self.info.classes
    }

    /// Class `c`'s name, or its number when the classes have none.
    pub fn class_name(&self, c: usize) -> String {
        self.info.class_name(c)
    }

    /// Class probabilities of rows already in the model's scale.
    pub fn probabilities(&self, x: &Matrix) -> Result<Matrix> {
        crate::model::classifier::probabilities(&self.run.model, &self.head, x)
    }

    /// Class probabilities of raw rows (a request's body, a Python array), scaled as training
    /// saw them; `origin` names them in errors.
    pub fn probabilities_raw(&self, origin: &str, raw: Matrix) -> Result<Matrix> {
        let x = self.run.to_model_scale(origin, raw)?;
        self.probabilities(&x)
    }

    /// The fine-tuning history.
    pub fn history(&self) -> Result<Vec<FinetuneEpoch>> {
        crate::io::read_json_lines(&self.run.dir.path.join(CLASSIFIER_METRICS_FILE))
    }
}

/// What a new classifier run is written from.
pub struct NewClassifierRun<'a> {
    /// The run whose encoder was fine-tuned: what the new run copies from it.
    pub source: &'a Run,
    /// The classifier made from it, in memory.
    pub made: &'a ClassifierRun,
    pub history: &'a [FinetuneEpoch],
    /// Written as `evaluation.json` when given.
    pub evaluation: Option<&'a serde_json::Value>,
}

impl NewClassifierRun<'_> {
    /// Writes the run to `dest` as a whole: refused where `dest` exists unless `replace`.
    pub fn write(&self, dest: &Path, replace: bool) -> Result<PathBuf> {
        if dest.exists() && !replace {
            return Err(Error::bad_file(
                dest,
                "already exists; choose another --out or pass --force to replace it",
            ));
        }
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if same(dest, &self.source.dir.path) {
            return Err(Error::bad_file(
                dest,
                "is the run being fine-tuned; choose another --out",
            ));
        }
        crate::io::replace_dir_atomic(dest, |dir| {
            for name in COPIED_FROM_SOURCE {
                let from = self.source.dir.path.join(name);
                if from.is_file() {
                    crate::io::write_atomic(&dir.join(name), &crate::io::read_file(&from)?)?;
                }
            }
            let made = self.made;
            made.run
                .model
                .save_safetensors(&dir.join("model.safetensors"))?;
            let info =
                serde_json::to_string(&made.info).map_err(|e| Error::Serialize(e.to_string()))?;
            crate::io::write_atomic(
                &dir.join(HEAD_FILE),
                &crate::model::safetensors::encode_with(
                    &made.head.export(),
                    "aekit_classifier",
                    info,
                )?,
            )?;
            crate::io::write_json_lines(&dir.join(CLASSIFIER_METRICS_FILE), self.history)?;
            if let Some(evaluation) = self.evaluation {
                crate::io::write_json(&dir.join(EVALUATION_FILE), evaluation)?;
            }
            crate::io::write_json(&dir.join(CLASSIFIER_FILE), &made.info)
        })?;
        Ok(dest.to_path_buf())
    }
}
