//! `aekit train`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use aekit::error::Result;
use aekit::fit::FitOptions;
use aekit::run::config::RunConfig;

#[derive(Args, Debug)]
struct TrainOptions {
    /// TOML config (see `aekit init`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start from a preset (see `aekit presets`).
    #[arg(long)]
    preset: Option<String>,
    /// Run directory to write (default: runs/<data>-<model>-<n>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, conflicts_with_all = ["config", "preset", "out"])]
    resume: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Do not write report.html at the end.
    #[arg(long)]
    no_report: bool,
}

/// `aekit train`'s arguments: its own, and a flag for every key of the run config, derived
/// from the config structs (see `aekit::options`) and read from the matches.
pub struct TrainArgs {
    own: TrainOptions,
    flags: clap::ArgMatches,
}

impl clap::FromArgMatches for TrainArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> std::result::Result<Self, clap::Error> {
        Ok(Self {
            own: TrainOptions::from_arg_matches(m)?,
            flags: m.clone(),
        })
    }

    fn update_from_arg_matches(
        &mut self,
        m: &clap::ArgMatches,
    ) -> std::result::Result<(), clap::Error> {
        self.own.update_from_arg_matches(m)?;
        self.flags = m.clone();
        Ok(())
    }
}

impl Args for TrainArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        RunConfig::flags(TrainOptions::augment_args(cmd))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

pub fn run(all: TrainArgs, device: &burn::tensor::Device) -> Result<()> {
    // Under `mpirun`, this process is one rank of a data-parallel job.
    let joined = aekit::train::ranks::join_launch()?;
    let ranks = joined.as_ref().map(|j| j.ranks.clone());
    let result = train(all, device, ranks);
    if let Some(joined) = joined {
        let rank = joined.ranks.rank();
        joined.finish(result.is_ok());
        // What every rank meets, rank 0 says once; what another rank meets alone, it says
        // with its rank.
        if let Err(e) = &result
            && rank != 0
        {
            if !e.is_met_by_every_rank() {
                super::print_error(&format!("rank {rank}: {e}"));
            }
            std::process::exit(e.exit_code());
        }
    }
    result
}

fn train(
    all: TrainArgs,
    device: &burn::tensor::Device,
    ranks: Option<Arc<dyn aekit::train::ranks::Ranks>>,
) -> Result<()> {
    let args = &all.own;
    let (cfg, out, resume) = if let Some(dir) = &args.resume {
        let cfg = aekit::RunDir::open(dir)?
            .config()?
            .resume_with(&all.flags)?;
        (cfg, dir.clone(), true)
    } else {
        let mut cfg = match &args.config {
            Some(p) => RunConfig::load(p)?,
            None => RunConfig::default(),
        };
        if let Some(p) = &args.preset {
            cfg = aekit::presets::apply(p, &cfg)?;
        }
        cfg.apply_flags(&all.flags)?;
        let out = args.out.clone().unwrap_or_else(|| cfg.default_run_dir());
        (cfg, out, false)
    };

    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupt.clone();
        // Failing to install the handler only loses the clean Ctrl-C save; training still works.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let opts = FitOptions {
        out_dir: out,
        device: device.clone(),
        resume,
        quiet: args.quiet,
        interrupt: Some(interrupt),
        stop_after_steps: None,
        on_step: None,
        ranks,
    };
    let fitted = aekit::train(&cfg, &opts)?;
    if !opts.writes_run() {
        return Ok(());
    }
    let s = &fitted.summary;
    eprintln!(
        "done: {} epochs, best validation loss {} at epoch {}, {:.0} samples/s, {:.1}s ({})",
        s.epochs_completed,
        s.best_val_loss.map_or("-".into(), |v| format!("{v:.6}")),
        s.best_epoch.map_or("-".into(), |e| e.to_string()),
        s.samples_per_sec,
        s.train_seconds,
        s.stop_reason
    );
    if !args.no_report {
        // The run is already saved: a report that cannot be drawn is a warning, not a failure.
        let written = aekit::Run::open(&fitted.run_dir.path, device).and_then(|run| {
            let test = run.load_data(None, aekit::Split::Test)?;
            aekit::viz::write_report(&run, &test, &Default::default(), None)
        });
        match written {
            Ok(p) => eprintln!("report: {}", p.display()),
            Err(e) => eprintln!("warning: no report written: {e}"),
        }
    }
    println!("run written to {}", fitted.run_dir.path.display());
    Ok(())
}
