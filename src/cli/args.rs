//! Flags shared by several subcommands.

use std::path::PathBuf;

use clap::Args;

use aekit::data::{DataConfig, Scaling};

/// Which data to use; each flag overrides the config file or the run's own data section.
#[derive(Args, Debug, Clone, Default)]
pub struct DataFlags {
    /// Dataset: shapes, mnist, csv:PATH, npy:PATH, npz:PATH, idx:IMAGES[,LABELS], images:DIR, text:DIR.
    #[arg(long)]
    pub data: Option<String>,
    /// Directory with the MNIST files (default: the `aekit data fetch` cache).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Held-out data for csv/npy/npz/idx sources.
    #[arg(long)]
    pub test_data: Option<String>,
    /// CSV label column (header name or zero-based index).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Labels for an npy source (a second .npy).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Use only the first N training samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Use only the first N test samples.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Vocabulary size for text:DIR sources (most frequent training words; default 2000).
    #[arg(long)]
    pub vocabulary: Option<usize>,
    /// Train only on these classes, e.g. 3 or 0,1 (the test split keeps every class).
    #[arg(long, value_delimiter = ',')]
    pub train_classes: Option<Vec<u32>>,
    /// Number of generated training images for `--data shapes`.
    #[arg(long)]
    pub shapes_train: Option<usize>,
    /// Number of generated test images for `--data shapes`.
    #[arg(long)]
    pub shapes_test: Option<usize>,
}

impl DataFlags {
    /// Applies the flags to `cfg`. A new `--data` source starts from that source's defaults.
    pub fn apply(&self, cfg: &mut DataConfig) {
        if let Some(d) = &self.data
            && *d != cfg.source
        {
            let keep_scale: Scaling = cfg.scale;
            *cfg = DataConfig {
                scale: keep_scale,
                val_fraction: cfg.val_fraction,
                ..DataConfig::for_source(d)
            };
        }
        if let Some(v) = &self.data_dir {
            cfg.data_dir = Some(v.clone());
        }
        if let Some(v) = &self.test_data {
            cfg.test_source = Some(v.clone());
        }
        if let Some(v) = &self.label_column {
            cfg.label_column = Some(v.clone());
        }
        if let Some(v) = &self.labels {
            cfg.labels = Some(v.clone());
        }
        if let Some(v) = self.limit {
            cfg.limit = Some(v);
        }
        if let Some(v) = self.test_limit {
            cfg.test_limit = Some(v);
        }
        if let Some(v) = self.vocabulary {
            cfg.vocabulary = Some(v);
        }
        if let Some(v) = &self.train_classes {
            cfg.train_classes = Some(v.clone());
        }
        if let Some(v) = self.shapes_train {
            cfg.shapes_train = v;
        }
        if let Some(v) = self.shapes_test {
            cfg.shapes_test = v;
        }
    }

    pub fn any(&self) -> bool {
        self.data.is_some()
            || self.data_dir.is_some()
            || self.test_data.is_some()
            || self.label_column.is_some()
            || self.labels.is_some()
            || self.limit.is_some()
            || self.test_limit.is_some()
            || self.train_classes.is_some()
            || self.vocabulary.is_some()
            || self.shapes_train.is_some()
            || self.shapes_test.is_some()
    }
}

/// Which split to read.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum SplitArg {
    Train,
    #[default]
    Test,
}

impl From<SplitArg> for aekit::data::Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => aekit::data::Split::Train,
            SplitArg::Test => aekit::data::Split::Test,
        }
    }
}

/// A trained run and the data to apply it to: the arguments every command that reads a run
/// directory shares.
#[derive(Args, Debug)]
pub struct RunData {
    /// Run directory written by `aekit train`.
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub data: DataFlags,
    /// Which split to use.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,
}

impl RunData {
    /// Loads the run and its data (the run's own unless flags say otherwise), preprocessed.
    pub fn open(
        &self,
        device: &burn::tensor::Device,
    ) -> aekit::Result<(aekit::Run, aekit::Dataset)> {
        let run = aekit::Run::open(&self.run_dir, device)?;
        let data = run.load_data(Some(&self.data_config(&run)), self.split.into())?;
        Ok((run, data))
    }

    /// The run's own data section with the flags applied.
    pub fn data_config(&self, run: &aekit::Run) -> DataConfig {
        let mut cfg = run.config.data.clone();
        self.data.apply(&mut cfg);
        cfg
    }
}

/// The corruption to evaluate denoising under.
#[derive(Args, Debug)]
pub struct NoiseArgs {
    /// Corruption (gaussian:SIGMA, masking:P, salt-pepper:P); default: the run's training noise.
    #[arg(long)]
    pub noise: Option<aekit::data::Corruption>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub noise_seed: u64,
}

impl NoiseArgs {
    /// The corruption given, else the one the run was trained with.
    pub fn for_run(&self, run: &aekit::Run) -> Option<aekit::data::Corruption> {
        self.noise.or(run.model.config().noise())
    }
}
