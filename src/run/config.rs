//! The run config: everything needed to rebuild a model and repeat its training, as one TOML
//! file (`config.toml` in every run directory, `--config` on the command line).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use crate::error::{Error, Result};
use crate::model::{DenseConfig, ModelConfig};
use crate::train::TrainConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
}

impl Default for RunConfig {
    /// The main job: a small dense autoencoder on the built-in shapes.
    fn default() -> Self {
        Self {
            data: DataConfig::default(),
            model: ModelConfig::new(DenseConfig::new(vec![256, 64], 8)),
            train: TrainConfig {
                epochs: 15,
                ..TrainConfig::default()
            },
        }
    }
}

impl RunConfig {
    /// Parses TOML text, rejecting keys the config does not have (typos would otherwise be
    /// silently ignored). `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| Error::bad_file(origin, format!("invalid TOML: {e}")))?;
        // Keys the structs do not know are reported by serde itself, from the same field
        // definitions that parse the known ones (the model's variant keys by its parser).
        let mut unknown = Vec::new();
        let cfg: RunConfig = serde_ignored::deserialize(toml::Value::Table(table), |path| {
            unknown.push(path.to_string())
        })
        .map_err(|e: toml::de::Error| Error::bad_file(origin, e.message().to_string()))?;
        if !unknown.is_empty() {
            return Err(Error::bad_file(
                origin,
                format!("unknown key(s): {}", unknown.join(", ")),
            ));
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid(e.to_string()))
    }

    /// Writes `config.toml` and `config.json` (the same content, for Python users) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        crate::io::write_atomic(&dir.join("config.toml"), self.to_toml()?.as_bytes())?;
        crate::io::write_json(&dir.join("config.json"), self)
    }

    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.model.validate()?;
        self.train.validate()
    }
}

/// The commented template written by `aekit init`.
pub const TEMPLATE: &str = r#"# aekit run configuration. Every key is optional except data.source and model.latent;
# command-line flags override what is set here.

[data]
# shapes (built in), mnist, csv:PATH, npy:PATH, npz:PATH, idx:IMAGES[,LABELS], images:DIR, text:DIR
source = "shapes"
# test_source = "csv:test.csv"   # held-out data for csv/npy/npz/idx sources
# data_dir = "data/mnist"         # where the MNIST files are (default: the fetch cache)
# label_column = "label"          # CSV label column, by name or zero-based index
# header = true                   # CSV header; detected when absent
# labels = "y.npy"                # labels for an npy source
scale = "auto"                    # auto | unit | minmax | standardize | none
val_fraction = 0.1                # held out of the training data for validation
# limit = 10000                   # use only the first N training samples
# train_classes = [3]             # train only on these classes (anomaly detection)
# vocabulary = 2000               # words kept for text:DIR sources
shapes_train = 6000
shapes_test = 1000

[model]
kind = "dense"
hidden = [256, 64]                # encoder widths; the decoder mirrors them
latent = 8
activation = "relu"               # relu | leaky-relu | sigmoid | tanh | gelu | elu | silu | linear
code_activation = "linear"
# output_activation = "sigmoid"   # default: sigmoid for data in [0, 1], linear otherwise
# loss = "bce"                    # mse | bce | l1; default: bce with a sigmoid output, else mse
# decoder_hidden = [64, 256]      # an explicit decoder instead of the mirror
# noise = "gaussian:0.4"          # denoising: corrupt inputs (gaussian | masking | salt-pepper)
# code_l1 = 1e-4                  # sparse: L1 penalty on the code
# sparsity_target = 0.05          # sparse: target mean activation (needs a sigmoid code)
# sparsity_weight = 1.0           # sparse: weight of the KL sparsity penalty
# contractive = 0.1               # contractive: weight of the squared Jacobian norm of the encoder
# contractive_projections = 1     # random projections per step (deep encoders)
# encoder_activations = ["relu", "tanh"]

[train]
epochs = 15
batch_size = 128
optimizer = "adam"                # sgd | adam | adamw | rmsprop
lr = 0.001
# momentum = 0.9                  # sgd (default 0.9) and rmsprop (default 0)
nesterov = false
beta1 = 0.9
beta2 = 0.999
eps = 1e-8
weight_decay = 0.0
schedule = "constant"             # constant | step | cosine
warmup_epochs = 0.0
min_lr = 0.0
step_epochs = 10
gamma = 0.1
# clip_grad_norm = 1.0
# early_stopping = 5              # patience in epochs
# max_minutes = 20.0
seed = 42
"#;
