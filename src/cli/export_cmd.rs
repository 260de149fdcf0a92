//! `aekit export`: a run as an ONNX model, its preprocessing and score inside.

use std::path::PathBuf;

use clap::Args;

use aekit::error::Result;
use aekit::eval::anomaly::{AnomalyDetector, ScoreKind};
use aekit::export::onnx::Part;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Run directory written by `aekit train`.
    run_dir: PathBuf,
    /// Where to write the ONNX model (opset 17, a dynamic batch axis).
    #[arg(long)]
    onnx: PathBuf,
    /// What the model computes: raw rows to codes (encoder), codes to raw outputs (decoder),
    /// raw rows to raw reconstructions (reconstruct), or raw rows to anomaly scores (score).
    #[arg(long, value_enum, default_value_t)]
    part: Part,
    /// For --part score: the threshold (default: the one stored when the run was trained).
    #[arg(long)]
    threshold: Option<f64>,
    /// For --part score with --threshold: what the score is (default: the loss for a typed
    /// table, squared error for every other run).
    #[arg(long = "score", value_enum, requires = "threshold")]
    kind: Option<ScoreKind>,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

pub fn run(args: ExportArgs, device: &burn::tensor::Device) -> Result<()> {
    let run = aekit::Run::open(&args.run_dir, device)?;
    let detector = args
        .threshold
        .map(|t| {
            let kind = args
                .kind
                .unwrap_or_else(|| ScoreKind::default_for(run.model.config()));
            AnomalyDetector::with_threshold(kind, t)
        })
        .transpose()?;
    run.export_onnx(&args.onnx, args.part, detector.as_ref(), args.force)?;
    println!(
        "{} of {} written to {} (ONNX opset {})",
        args.part.name(),
        run.dir.path.display(),
        args.onnx.display(),
        aekit::export::onnx::OPSET
    );
    Ok(())
}
