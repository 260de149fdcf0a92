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

use aekit::data::series::PointReduce;

use super::args::RunData;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    input: RunData,
    /// What the score is (default: loss for a typed table — each column by its own
    /// likelihood —, squared-error otherwise).
    #[arg(long = "score", value_enum)]
    kind: Option<ScoreKind>,
    /// Fraction of the training data taken to be anomalous: the threshold is that quantile of
    /// the training scores (as PyOD); 0 puts it at the largest training score.
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
    /// Write per-sample scores and labels (.csv, .json, .parquet, or .npy for the scores
    /// alone); a table source is read and written a batch at a time, memory holding one score
    /// per row for the summary.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Input columns copied beside each score (.parquet outputs of table sources).
    #[arg(long, value_delimiter = ',')]
    keep_columns: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// A time series run's point score: the mean (mean) or the largest (max) of the point's
    /// errors over the windows that cover it, or the mean of those windows' whole scores
    /// (window: smoother, for anomalies that span many points).
    #[arg(long, value_enum, default_value_t)]
    point_score: PointReduce,
    /// A typed table's K columns that contribute most to each row's score (their values,
    /// reconstructions and shares; 0: every column), written with --out (.csv or .json) and
    /// shown for the highest-scored rows.
    #[arg(long, value_name = "K")]
    explain: Option<usize>,
}

pub fn run(args: ScoreArgs, device: &burn::tensor::Device) -> Result<()> {
    // A bad output name is refused before any work.
    if let Some(path) = args.out.as_ref().filter(|p| !streamed::is_parquet(p)) {
        ScoresFormat::of(path)?;
    }
    let run = aekit::Run::open(&args.input.run_dir, device)?;
    let cfg = args.input.data_config(&run)?;
    let split: Split = args.input.split.into();
    let kind = args
        .kind
        .unwrap_or_else(|| ScoreKind::default_for(run.model.config()));
    if run.config.data.is_series() {
        return score_points(&args, &run, &cfg, split, kind);
    }
    if run.preprocessor.columns.is_some() {
        return score_table(&args, &run, &cfg, split, kind);
    }
    if args.explain.is_some() {
        aekit::eval::columns::columns_of(&run)?;
    }
    let given = args
        .threshold
        .map(|t| AnomalyDetector::with_threshold(kind, t))
        .transpose()?;
    let (detector, summary, origin) =
        if streamed::applies(&cfg, split, args.out.as_deref(), &args.keep_columns)? {
            let detector = match given {
                Some(d) => d,
                None => AnomalyDetector::for_table(&run, &cfg, kind, args.contamination)?,
            };
            let output = streamed::Output::Scores {
                detector: &detector,
                anomaly_classes: args.anomaly_classes.as_deref(),
                normal_classes: args.normal_classes.as_deref(),
            };
            let dest = streamed::Destination {
                out: args.out.as_deref(),
                labels_out: None,
                kept: &args.keep_columns,
            };
            let written = streamed::write(&run, &cfg, split, output, &dest)?;
            let summary = written.summary.expect("scores are summarised");
            (detector, summary, cfg.split_source(split).to_string())
        } else {
            let data = run.load_data(Some(&cfg), split)?;
            let detector = match given {
                Some(d) => d,
                None => {
                    let train = run.load_data(Some(&cfg), Split::Train)?;
                    AnomalyDetector::fit(
                        &run,
                        &train.x,
                        train.labels.as_deref(),
                        kind,
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
            (detector, summary, data.origin)
        };
    let heading = format!(
        "{} on {origin}: {} samples scored by {}",
        run.model.config().describe(),
        summary.samples,
        kind.name()
    );
    if !print_summary(args.json, &heading, &detector, &summary) {
        return Ok(());
    }
    if let Some(out) = &args.out {
        println!("scores written to {}", out.display());
    }
    Ok(())
}

/// A time series run scored point by point: one row per time point.
fn score_points(
    args: &ScoreArgs,
    run: &aekit::Run,
    cfg: &aekit::data::DataConfig,
    split: Split,
    kind: ScoreKind,
) -> Result<()> {
    use aekit::eval::series;
    if let Some(path) = &args.out {
        series::check_output(path)?;
    }
    if kind != ScoreKind::SquaredError || !args.keep_columns.is_empty() || args.explain.is_some() {
        return Err(aekit::Error::invalid(
            "a time series run scores its points by their squared errors (--score squared-error; a negative ELBO or loss is a whole window's), written with the series and time of each point (no --keep-columns)",
        ));
    }
    let detector = match args.threshold {
        Some(t) => AnomalyDetector::with_threshold(kind, t)?,
        None => series::PointDetector::for_data(run, cfg, args.point_score, args.contamination)?,
    };
    let points = series::point_scores(run, cfg, split, args.point_score)?;
    let truth = points.truth(
        args.anomaly_classes.as_deref(),
        args.normal_classes.as_deref(),
        run,
    );
    let summary = points.summary(&detector, truth.as_deref());
    if let Some(path) = &args.out {
        points.write(path, &summary, &detector)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serialises")
        );
        return Ok(());
    }
    let p = &summary.points;
    println!(
        "{} on {}: {} held-out points of {} series scored (a point's score: {})",
        run.model.config().describe(),
        points.origin,
        p.samples,
        summary.series,
        args.point_score.name()
    );
    print_judged(&detector, p, "the training point scores");
    if let (Some(hits), Some(of)) = (summary.top_point_hits, summary.series_with_anomalies) {
        println!(
            "  top-scored point within {} points of a labelled anomaly: {hits} of {of} series",
            series::UCR_TOLERANCE
        );
    }
    if let Some(out) = &args.out {
        println!("point scores written to {}", out.display());
    }
    Ok(())
}

/// Rows shown with their explanations after a typed table's summary.
const EXPLAINED_ROWS_SHOWN: usize = 5;

/// A typed table scored row by row, each score split by column.
fn score_table(
    args: &ScoreArgs,
    run: &aekit::Run,
    cfg: &aekit::data::DataConfig,
    split: Split,
    kind: ScoreKind,
) -> Result<()> {
    use aekit::eval::columns;
    if !args.keep_columns.is_empty() {
        return Err(aekit::Error::invalid(
            "--keep-columns: a typed table's outputs carry its ignored columns already (--ignore-columns when training)",
        ));
    }
    let mut notes = Vec::new();
    let (data, carried) = columns::load_split(run, cfg, split, &mut notes)?;
    let detector = match args.threshold {
        Some(t) => AnomalyDetector::with_threshold(kind, t)?,
        None => {
            let (train, _) = columns::load_split(run, cfg, Split::Train, &mut Vec::new())?;
            AnomalyDetector::fit(
                run,
                &train.x,
                train.labels.as_deref(),
                kind,
                args.contamination,
            )?
        }
    };
    let (scores, explained) = columns::scores_explained(
        run,
        (detector.kind, detector.seed),
        &data.x,
        data.labels.as_deref(),
        args.explain,
    )?;
    let flagged = detector.label(&scores);
    let truth = truth(
        data.labels.as_deref(),
        args.anomaly_classes.as_deref(),
        args.normal_classes.as_deref(),
        run,
    );
    let summary = ScoreSummary::new(&detector, &scores, &flagged, truth.as_deref());
    if let Some(path) = &args.out {
        match &explained {
            Some(e) => columns::write_explained(path, &summary, &flagged, e, &carried)?,
            None => write_scores(path, &summary, &scores, &flagged)?,
        }
    }
    for note in &notes {
        eprintln!("note: {note}");
    }
    let heading = format!(
        "{} on {}: {} rows scored by {}",
        run.model.config().describe(),
        data.origin,
        summary.samples,
        kind.name()
    );
    if !print_summary(args.json, &heading, &detector, &summary) {
        return Ok(());
    }
    if let Some(explained) = &explained {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        println!("  highest-scored rows, by the columns that contribute most:");
        for &r in order.iter().take(EXPLAINED_ROWS_SHOWN) {
            let parts: Vec<String> = explained[r]
                .columns
                .iter()
                .map(|c| {
                    format!(
                        "{} {} (reconstructed {}) {:.3}",
                        c.column,
                        if c.value.is_empty() {
                            "missing"
                        } else {
                            &c.value
                        },
                        c.reconstructed,
                        c.share
                    )
                })
                .collect();
            println!("    row {r}: score {:.4}: {}", scores[r], parts.join("; "));
        }
    }
    if let Some(out) = &args.out {
        println!("scores written to {}", out.display());
    }
    Ok(())
}

/// The summary as JSON (`json`: returns false, nothing more to print), or `heading` and its
/// judged lines (returns true).
fn print_summary(
    json: bool,
    heading: &str,
    detector: &AnomalyDetector,
    summary: &ScoreSummary,
) -> bool {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("summary serialises")
        );
        return false;
    }
    println!("{heading}");
    print_judged(detector, summary, "the training scores");
    true
}

/// The lines every score summary prints under its heading: the threshold and where it comes
/// from (`scores`: what it was fitted on), the flagged count, and the truth's figures.
fn print_judged(detector: &AnomalyDetector, summary: &ScoreSummary, scores: &str) {
    println!(
        "  threshold {:.6} ({})",
        detector.threshold,
        detector.threshold_origin(scores)
    );
    println!("  flagged as anomalies: {}", summary.flagged);
    if let (Some(n), Some(auc), Some(ap)) = (
        summary.anomalies,
        summary.roc_auc,
        summary.average_precision,
    ) {
        println!("  true anomalies: {n}; ROC AUC {auc:.4}, average precision {ap:.4}");
    }
}
