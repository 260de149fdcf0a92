//! Command-line interface: one file per subcommand, each a thin call into the library.

mod anomaly_cmd;
mod args;
mod compare_cmd;
mod data_cmd;
mod eval_cmd;
mod export_cmd;
mod finetune_cmd;
mod info_cmd;
mod init_cmd;
mod plot_cmd;
mod retrieve_cmd;
mod serve_cmd;
mod task_cmd;
mod train_cmd;
mod transform_cmds;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use aekit::device::DeviceKind;

#[derive(Parser)]
#[command(
    name = "aekit",
    version,
    about = "Train, evaluate and explore autoencoders",
    long_about = None
)]
struct Cli {
    /// Compute device.
    #[arg(long, global = true, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
    /// CPU threads (default: all cores, shared evenly by the ranks `mpirun` starts on a machine).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Keep subnormal floats (slower; by default they are flushed to zero, as with PyTorch's
    /// set_flush_denormal).
    #[arg(long, global = true, hide = true)]
    keep_denormals: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an autoencoder and write a run directory.
    Train(Box<train_cmd::TrainArgs>),
    /// Reconstruction error of a trained run on test data.
    Eval(eval_cmd::EvalArgs),
    /// Write the codes of a dataset (NPY or CSV, by extension).
    Encode(transform_cmds::EncodeArgs),
    /// Decode codes (NPY or CSV) into outputs.
    Decode(transform_cmds::DecodeArgs),
    /// Reconstruct a dataset: outputs to NPY/CSV and a PNG grid of originals above reconstructions.
    Reconstruct(transform_cmds::ReconstructArgs),
    /// Denoise a corrupted dataset: outputs and a PNG grid of noisy / denoised / clean.
    Denoise(transform_cmds::DenoiseArgs),
    /// Decode draws from a VAE's prior into a PNG grid.
    Sample(transform_cmds::SampleArgs),
    /// Draw one figure of a run: reconstructions, codes, manifold, blend, traverse, samples, curves.
    Plot(plot_cmd::PlotArgs),
    /// Write a self-contained HTML report of a run (figures, metrics, config).
    Report(plot_cmd::ReportArgs),
    /// Reconstruction error of PCA and of trained runs at each code size, on the same test set.
    Compare(compare_cmd::CompareArgs),
    /// Write a run as an ONNX model: encoder, decoder, reconstruction or anomaly score, with
    /// the preprocessing inside.
    Export(export_cmd::ExportArgs),
    /// Fine-tune a run's encoder into a classifier with the labels there are (unsupervised
    /// pretraining), and write a classifier run.
    Finetune(Box<finetune_cmd::FinetuneArgs>),
    /// Classify with the codes (k-nearest neighbours, softmax regression), beside PCA codes.
    Probe(compare_cmd::ProbeArgs),
    /// Anomaly scores from reconstruction error (or a VAE's negative ELBO), a threshold and labels.
    Score(anomaly_cmd::ScoreArgs),
    /// Upscale images with a run trained with --task upscale:N (small images, or originals to
    /// measure against bilinear interpolation).
    Upscale(task_cmd::TaskArgs),
    /// Recolour grey images with a run trained with --task recolor.
    Recolor(task_cmd::TaskArgs),
    /// Fill blanked squares with a run trained with --task inpaint:N.
    Inpaint(task_cmd::TaskArgs),
    /// The documents (samples) nearest to a query by cosine similarity of codes.
    Retrieve(retrieve_cmd::RetrieveArgs),
    /// Architecture, parameter count and training summary of a run.
    Info(info_cmd::InfoArgs),
    /// Write a commented config template.
    Init(init_cmd::InitArgs),
    /// List the presets.
    Presets,
    /// Dataset utilities.
    Data(data_cmd::DataArgs),
    /// Serve runs over HTTP: a JSON API and the latent-space explorer in the browser.
    Serve(serve_cmd::ServeArgs),
}

pub fn main() -> ExitCode {
    let parsed = aekit::options::finite_floats(Cli::command())
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // Help and version go out as clap writes them; a bad command line gets one line.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AEKIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .with_target(false)
        .init();
    let result = (|| -> aekit::Result<()> {
        // Ranks started together on one machine share its cores.
        let threads = cli.threads.or_else(|| {
            aekit::train::ranks::launched().map(|l| aekit::train::ranks::default_threads(&l))
        });
        aekit::device::init_cpu(threads, cli.keep_denormals)?;
        let device = cli.device.device()?;
        match cli.command {
            Command::Train(a) => train_cmd::run(*a, &device),
            Command::Eval(a) => eval_cmd::run(a, &device),
            Command::Encode(a) => transform_cmds::encode(a, &device),
            Command::Decode(a) => transform_cmds::decode(a, &device),
            Command::Reconstruct(a) => transform_cmds::reconstruct(a, &device),
            Command::Denoise(a) => transform_cmds::denoise(a, &device),
            Command::Sample(a) => transform_cmds::sample(a, &device),
            Command::Plot(a) => plot_cmd::plot(a, &device),
            Command::Report(a) => plot_cmd::report(a, &device),
            Command::Compare(a) => compare_cmd::compare(a, &device),
            Command::Finetune(a) => finetune_cmd::run(*a, &device),
            Command::Probe(a) => compare_cmd::probe_cmd(a, &device),
            Command::Score(a) => anomaly_cmd::run(a, &device),
            Command::Export(a) => export_cmd::run(a, &device),
            Command::Upscale(a) => task_cmd::run("upscale", a, &device),
            Command::Recolor(a) => task_cmd::run("recolor", a, &device),
            Command::Inpaint(a) => task_cmd::run("inpaint", a, &device),
            Command::Retrieve(a) => retrieve_cmd::retrieve(a, &device),
            Command::Info(a) => info_cmd::run(a),
            Command::Init(a) => init_cmd::run(a),
            Command::Presets => {
                for (name, what) in aekit::presets::NAMES {
                    println!("{name:<12} {what}");
                }
                Ok(())
            }
            Command::Data(a) => data_cmd::run(a),
            Command::Serve(a) => serve_cmd::run(a, &device),
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e.to_string());
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Writes `error: MESSAGE` to stderr in one write, so that the lines of processes sharing a
/// terminal (the ranks under `mpirun`) do not interleave.
fn print_error(message: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("error: {message}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every float flag of every subcommand, found by walking the command (not listed by
    /// hand), refuses NaN and the infinities; a finite value passes its parser.
    #[test]
    fn every_float_flag_refuses_values_that_are_not_finite() {
        use clap::error::ErrorKind;
        let cmd = aekit::options::finite_floats(Cli::command());
        let flags = aekit::options::float_flags(&cmd);
        assert!(flags.len() > 40, "found {} float flags", flags.len());
        for (path, flag) in &flags {
            let argv = |value: &str| {
                let mut argv = vec!["aekit".to_string()];
                argv.extend(path.iter().cloned());
                argv.push(format!("{flag}={value}"));
                argv
            };
            for bad in ["nan", "NaN", "inf", "-inf", "1e999"] {
                let err = cmd
                    .clone()
                    .try_get_matches_from(argv(bad))
                    .expect_err("refused");
                assert_eq!(
                    err.kind(),
                    ErrorKind::ValueValidation,
                    "{path:?} {flag}={bad}"
                );
            }
            if let Err(e) = cmd.clone().try_get_matches_from(argv("0.5")) {
                assert_ne!(
                    e.kind(),
                    ErrorKind::ValueValidation,
                    "{path:?} {flag}=0.5: {e}"
                );
            }
        }
    }
}
