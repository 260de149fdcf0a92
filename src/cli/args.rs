//! Flags shared by several subcommands.

use std::path::PathBuf;

use clap::Args;

use aekit::data::DataConfig;

/// Which data to use: the flags derived from [`DataConfig`]'s fields, each overriding the
/// config file or the run's own data section.
#[derive(Debug, Clone, Default)]
pub struct DataFlags {
    flags: clap::ArgMatches,
}

impl clap::FromArgMatches for DataFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self { flags: m.clone() })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.flags = m.clone();
        Ok(())
    }
}

impl Args for DataFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        DataConfig::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        DataConfig::augment_args(cmd)
    }
}

impl DataFlags {
    /// Applies the flags to a data config.
    pub fn apply(&self, cfg: &mut DataConfig) -> aekit::Result<()> {
        cfg.apply_flags(&self.flags)
    }

    /// Applies the flags to the data a trained run reads, which keeps its own scaling.
    pub fn apply_to_run_data(&self, cfg: &mut DataConfig) -> aekit::Result<()> {
        self.apply_to_run_data_but(cfg, &["scale", "val_fraction"])
    }

    /// Applies the flags to the data a run is trained further on (fine-tuned): it keeps its
    /// scaling, and a validation share applies. Returns the share when it was given.
    pub fn apply_for_further_training(&self, cfg: &mut DataConfig) -> aekit::Result<Option<f64>> {
        self.apply_to_run_data_but(cfg, &["scale"])?;
        Ok(aekit::options::was_given(&self.flags, "val_fraction").then_some(cfg.val_fraction))
    }

    fn apply_to_run_data_but(&self, cfg: &mut DataConfig, refused: &[&str]) -> aekit::Result<()> {
        for &id in refused {
            if aekit::options::was_given(&self.flags, id) {
                return Err(aekit::Error::invalid(format!(
                    "{} applies when training: a trained run keeps its own",
                    aekit::options::flag_name(id)
                )));
            }
        }
        cfg.apply_flags(&self.flags)
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
        let data = run.load_data(Some(&self.data_config(&run)?), self.split.into())?;
        Ok((run, data))
    }

    /// The run's own data section with the flags applied.
    pub fn data_config(&self, run: &aekit::Run) -> aekit::Result<DataConfig> {
        let mut cfg = run.config.data.clone();
        self.data.apply_to_run_data(&mut cfg)?;
        Ok(cfg)
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
