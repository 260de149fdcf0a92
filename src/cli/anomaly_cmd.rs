//! `aekit score`: anomaly scores, a threshold, labels, and ROC AUC / average precision when the
//! truth is known.

use std::path::PathBuf;

use aekit::eval::streamed;

use clap::Args;

use aekit::data::Split;
use aekit::error::Result;
use aekit::eval::anomaly::{
    AnomalyDetector, ScoreKind, ScoreSummary, ScoresFormat, truth, write_scores,
};

use super::args::RunData;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    input: RunData,
    /// What the score is.
    #[arg(long = "score", value_enum, default_value_t = ScoreKind::SquaredError)]
    kind: ScoreKind,
    /// Fraction of the training data taken to be anomalous: the threshold is that quantile of
    /// the training scores (as PyOD).
    #[arg(long, default_value_t = 0.1, conflicts_with = "threshold")]
    contamination: f64,
    /// A fixed threshold instead of one fitted from --contamination.
    #[arg(long)]
    threshold: Option<f64>,
    /// Classes that are normal; every other class is an anomaly (default: the run's
    /// train_classes, or label 1 = anomaly for 0/1 labels).
    #[arg(long, value_delimiter = ',', conflicts_with = "anomaly_classes")]
    normal_classes: Option<Vec<u32>>,
    /// Classes that are anomalies.
    #[arg(long, value_delimiter = ',')]
    anomaly_classes: Option<Vec<u32>>,
    /// Write per-sample scores and labels (.csv, .json, or .npy for the scores alone; .parquet
    /// streams a table source batch by batch, with the threshold stored when the run was
    /// trained or given by --threshold).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Input columns copied beside each score (.parquet outputs of table sources).
    #[arg(long, value_delimiter = ',')]
    keep_columns: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ScoreArgs, device: &burn::tensor::Device) -> Result<()> {
    if let Some(path) = args.out.as_ref().filter(|p| streamed::is_parquet(p)) {
        let run = aekit::Run::open(&args.input.run_dir, device)?;
        let detector = match args.threshold {
            Some(t) => AnomalyDetector::with_threshold(args.kind, t)?,
            None => AnomalyDetector::stored(&run)?
                .filter(|d| d.kind == args.kind)
                .ok_or_else(|| {
                    aekit::Error::invalid(format!(
                        "{}: no stored {} threshold to stream scores with; give --threshold",
                        run.dir.path.display(),
                        args.kind.name()
                    ))
                })?,
        };
        let cfg = args.input.data_config(&run)?;
        let n = streamed::write(
            &run,
            &cfg,
            &args.keep_columns,
            streamed::Output::Scores(&detector),
            path,
        )?;
        println!(
            "{n} scores written to {} (threshold {:.6})",
            path.display(),
            detector.threshold
        );
        return Ok(());
    }
    // A bad output name is refused before any work.
    if let Some(path) = &args.out {
        ScoresFormat::of(path)?;
    }
    let (run, data) = args.input.open(device)?;
    let detector = match args.threshold {
        Some(t) => AnomalyDetector::with_threshold(args.kind, t)?,
        None => {
            let train = run.load_data(Some(&args.input.data_config(&run)?), Split::Train)?;
            AnomalyDetector::fit(
                &run,
                &train.x,
                train.labels.as_deref(),
                args.kind,
                args.contamination,
            )?
        }
    };
    let scores = detector.decision_function(&run, &data.x, data.labels.as_deref())?;
    let flagged = detector.label(&scores);
    let truth = truth(
        data.labels.as_deref(),
        args.anomaly_classes.as_deref(),
        args.normal_classes.as_deref(),
        &run,
    );
    let summary = ScoreSummary::new(&detector, &scores, &flagged, truth.as_deref());
    if let Some(path) = &args.out {
        write_scores(path, &summary, &scores, &flagged)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serialises")
        );
        return Ok(());
    }
    println!(
        "{} on {}: {} samples scored by {}",
        run.model.config().describe(),
        data.origin,
        summary.samples,
        args.kind.name()
    );
    match detector.contamination {
        Some(c) => println!(
            "  threshold {:.6} (the {:.1}% quantile of the training scores)",
            detector.threshold,
            100.0 * (1.0 - c)
        ),
        None => println!("  threshold {:.6} (given)", detector.threshold),
    }
    println!("  flagged as anomalies: {}", summary.flagged);
    if let (Some(n), Some(auc), Some(ap)) = (
        summary.anomalies,
        summary.roc_auc,
        summary.average_precision,
    ) {
        println!("  true anomalies: {n}; ROC AUC {auc:.4}, average precision {ap:.4}");
    }
    if let Some(out) = &args.out {
        println!("scores written to {}", out.display());
    }
    Ok(())
}
