//! `aekit score`: anomaly scores, a threshold, labels, and ROC AUC / average precision when the
//! truth is known.

use std::path::{Path, PathBuf};

use clap::Args;

use aekit::data::Split;
use aekit::error::{Error, Result};
use aekit::eval::anomaly::{AnomalyDetector, ScoreKind, average_precision, roc_auc};

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
    /// Write per-sample scores and labels (.csv, .json, or .npy for the scores alone).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Summary {
    score: ScoreKind,
    threshold: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    contamination: Option<f64>,
    samples: usize,
    flagged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    anomalies: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_precision: Option<f64>,
}

/// Which samples are truly anomalous, when the labels and the flags (or the run) say.
fn truth(args: &ScoreArgs, run: &aekit::Run, labels: Option<&[u32]>) -> Option<Vec<bool>> {
    let labels = labels?;
    if let Some(a) = &args.anomaly_classes {
        return Some(labels.iter().map(|l| a.contains(l)).collect());
    }
    let normal = args
        .normal_classes
        .clone()
        .or_else(|| run.config.data.train_classes.clone());
    match normal {
        Some(n) => Some(labels.iter().map(|l| !n.contains(l)).collect()),
        None if labels.iter().all(|l| *l <= 1) => Some(labels.iter().map(|l| *l == 1).collect()),
        None => None,
    }
}

/// The file formats `--out` accepts, known from its extension.
#[derive(Clone, Copy)]
enum ScoresFormat {
    Npy,
    Csv,
    Json,
}

impl ScoresFormat {
    fn of(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => Ok(ScoresFormat::Npy),
            Some("csv") => Ok(ScoresFormat::Csv),
            Some("json") => Ok(ScoresFormat::Json),
            _ => Err(Error::bad_file(
                path,
                "output must end in .csv, .json or .npy",
            )),
        }
    }
}

fn write_scores(
    (path, format): (&Path, ScoresFormat),
    s: &Summary,
    scores: &[f64],
    flagged: &[bool],
) -> Result<()> {
    match format {
        ScoresFormat::Npy => {
            let v: Vec<f32> = scores.iter().map(|x| *x as f32).collect();
            aekit::data::npy::write_shaped(path, &[v.len()], &v)
        }
        ScoresFormat::Csv => {
            let mut text = String::from("index,score,anomaly\n");
            for (i, (sc, f)) in scores.iter().zip(flagged).enumerate() {
                text.push_str(&format!("{i},{sc},{}\n", u8::from(*f)));
            }
            aekit::io::write_atomic(path, text.as_bytes())
        }
        ScoresFormat::Json => {
            #[derive(serde::Serialize)]
            struct Out<'a> {
                #[serde(flatten)]
                summary: &'a Summary,
                scores: &'a [f64],
                anomaly: &'a [bool],
            }
            aekit::io::write_json(
                path,
                &Out {
                    summary: s,
                    scores,
                    anomaly: flagged,
                },
            )
        }
    }
}

pub fn run(args: ScoreArgs, device: &burn::tensor::Device) -> Result<()> {
    // A bad output name is refused before any work.
    let out = match &args.out {
        Some(path) => Some((path.as_path(), ScoresFormat::of(path)?)),
        None => None,
    };
    let (run, data) = args.input.open(device)?;
    let detector = match args.threshold {
        Some(t) => AnomalyDetector::with_threshold(args.kind, t),
        None => {
            let train = run.load_data(Some(&args.input.data_config(&run)?), Split::Train)?;
            AnomalyDetector::fit(&run, &train.x, args.kind, args.contamination)?
        }
    };
    let scores = detector.decision_function(&run, &data.x)?;
    let flagged = detector.label(&scores);
    let truth = truth(&args, &run, data.labels.as_deref());
    let summary = Summary {
        score: args.kind,
        threshold: detector.threshold,
        contamination: detector.contamination,
        samples: scores.len(),
        flagged: flagged.iter().filter(|f| **f).count(),
        anomalies: truth.as_ref().map(|t| t.iter().filter(|x| **x).count()),
        roc_auc: truth.as_ref().and_then(|t| roc_auc(&scores, t)),
        average_precision: truth.as_ref().and_then(|t| average_precision(&scores, t)),
    };
    if let Some(out) = out {
        write_scores(out, &summary, &scores, &flagged)?;
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
