//! `aekit finetune`

use std::path::PathBuf;

use clap::{Args, FromArgMatches};

use aekit::data::{DataConfig, LabelChoice, Split};
use aekit::error::Result;
use aekit::model::classifier::Head;
use aekit::train::TrainConfig;
use aekit::train::finetune::FinetuneConfig;

use super::args::DataFlags;

#[derive(Args, Debug)]
struct FinetuneOptions {
    /// Autoencoder run whose encoder is fine-tuned into a classifier.
    run_dir: PathBuf,
    /// Classifier run directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Training rows that keep their label: all, or N drawn balanced over the classes with
    /// --seed (the rest stay unlabelled). The labels themselves are the data's (--labels
    /// names a file of them for .npy data).
    #[arg(long, default_value_t = LabelChoice::All)]
    labelled: LabelChoice,
    /// Head on the codes: linear, or mlp:WIDTH[,WIDTH...] with ReLU hidden layers.
    #[arg(long, default_value_t = Head::Linear)]
    head: Head,
    /// Epochs in which only the head learns, before every layer does.
    #[arg(long, default_value_t = 0)]
    freeze_epochs: usize,
    /// Train the same network from fresh weights: the baseline pretraining is measured against.
    #[arg(long)]
    from_scratch: bool,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Do not write report.html.
    #[arg(long)]
    no_report: bool,
    /// Print the test evaluation as JSON.
    #[arg(long)]
    json: bool,
}

/// `aekit finetune`'s arguments: its own, the data flags (another labelled source, a
/// validation share) and the training flags, read from the matches.
pub struct FinetuneArgs {
    own: FinetuneOptions,
    data: DataFlags,
    flags: clap::ArgMatches,
}

impl FromArgMatches for FinetuneArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> std::result::Result<Self, clap::Error> {
        Ok(Self {
            own: FinetuneOptions::from_arg_matches(m)?,
            data: DataFlags::from_arg_matches(m)?,
            flags: m.clone(),
        })
    }

    fn update_from_arg_matches(
        &mut self,
        m: &clap::ArgMatches,
    ) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for FinetuneArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let cmd =
            DataConfig::augment_args(FinetuneOptions::augment_args(cmd).next_help_heading("Data"));
        TrainConfig::augment_args(cmd.next_help_heading("Training")).next_help_heading(None)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

pub fn run(all: FinetuneArgs, device: &burn::tensor::Device) -> Result<()> {
    let args = &all.own;
    let source = aekit::Run::open(&args.run_dir, device)?;
    let mut data_cfg = source.config.data.clone();
    let val_fraction = all.data.apply_for_further_training(&mut data_cfg)?;
    let mut cfg = FinetuneConfig {
        head: args.head.clone(),
        freeze_epochs: args.freeze_epochs,
        labels: args.labelled,
        val_fraction: val_fraction.unwrap_or(0.0),
        from_scratch: args.from_scratch,
        ..FinetuneConfig::default()
    };
    cfg.train.apply_flags(&all.flags)?;
    let train = source.load_data(Some(&data_cfg), Split::Train)?;
    let test = source.load_data(Some(&data_cfg), Split::Test)?;
    let done = aekit::fit::finetune(
        &source,
        &train,
        Some(&test),
        &cfg,
        &args.out,
        args.force,
        args.quiet,
        device,
    )?;
    let info = &done.run.info;
    eprintln!(
        "done: {} labelled rows ({} held out), {} classes, kept epoch {} of {}",
        info.train_rows,
        info.validation_rows,
        info.classes,
        info.kept_epoch,
        done.history.len()
    );
    if let Some(e) = &done.evaluation {
        if !args.no_report {
            // The run is already saved: a report that cannot be drawn is a warning.
            match aekit::viz::report::write_classifier_report(&done.run, &test, None) {
                Ok(path) => eprintln!("report: {}", path.display()),
                Err(err) => tracing::warn!("no report: {err}"),
            }
        }
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(e).expect("report serialises")
            );
        } else {
            println!(
                "test accuracy {:.2}% (macro F1 {:.4}) on {} samples of {}",
                100.0 * e.accuracy,
                e.macro_f1,
                e.samples,
                e.origin
            );
        }
    }
    if args.json {
        eprintln!("classifier run written to {}", args.out.display());
    } else {
        println!("classifier run written to {}", args.out.display());
    }
    Ok(())
}
