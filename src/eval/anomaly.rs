//! Anomaly detection with a trained autoencoder, in PyOD's shape: `fit` sets a threshold from a
//! contamination fraction of the training data, `decision_function` scores samples (higher is
//! more anomalous), `predict` labels them. ROC AUC and average precision judge the scores when
//! the truth is known.

use std::fs::File;
use std::io::{BufWriter, Write};

use serde::{Deserialize, Serialize};

use crate::data::Matrix;
use crate::error::{Error, Result};
use crate::model::ReconLoss;
use crate::model::loss::per_sample_host;
use crate::run::Run;

/// What a sample's anomaly score is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum ScoreKind {
    /// Squared reconstruction error summed over the sample's features.
    #[default]
    SquaredError,
    /// The run's own reconstruction loss (e.g. BCE) summed over the features.
    Loss,
    /// A VAE's negative ELBO (reconstruction + KL, one posterior sample): the loss the model
    /// was trained to make small on normal data.
    NegativeElbo,
}

impl ScoreKind {
    /// The score a model's rows get unless told otherwise: a typed table's loss (each column
    /// judged by its own likelihood), the squared error for every other model.
    pub fn default_for(model: &crate::model::ModelConfig) -> Self {
        if model.columns().is_some() {
            ScoreKind::Loss
        } else {
            ScoreKind::SquaredError
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::SquaredError => "squared-error",
            ScoreKind::Loss => "loss",
            ScoreKind::NegativeElbo => "negative-elbo",
        }
    }
}

/// Anomaly scores of the rows of `x` (already preprocessed for `run`); a conditional model
/// scores each row under its class in `labels`.
pub fn scores(
    run: &Run,
    x: &Matrix,
    labels: Option<&[u32]>,
    kind: ScoreKind,
    seed: u64,
) -> Result<Vec<f64>> {
    if kind == ScoreKind::NegativeElbo {
        let (recon, kl) = super::elbo_terms(run, x, labels, seed)?.ok_or_else(|| {
            Error::invalid(format!(
                "{}: the negative-ELBO score needs a VAE run; this one is {}",
                run.dir.path.display(),
                run.model.config().kind()
            ))
        })?;
        return Ok(recon.iter().zip(&kl).map(|(r, k)| r + k).collect());
    }
    let recon = run.model.reconstruct_given(x, labels)?;
    Ok(scores_of_run_reconstructions(run, kind, &recon, x))
}

/// The scores of [`scores`] by `kind` (a squared error or the loss, not the negative ELBO,
/// which samples) from the reconstructions `recon` of the rows `x` already made.
pub fn scores_of_run_reconstructions(
    run: &Run,
    kind: ScoreKind,
    recon: &Matrix,
    x: &Matrix,
) -> Vec<f64> {
    if let Some(columns) = run.model.config().columns() {
        return (0..x.rows)
            .map(|i| match kind {
                ScoreKind::Loss => columns.score(recon.row(i), x.row(i)),
                _ => columns.squared_error(recon.row(i), x.row(i)),
            })
            .collect();
    }
    let loss = match kind {
        ScoreKind::Loss => run.model.config().loss(),
        _ => ReconLoss::Mse,
    };
    scores_of_reconstructions(loss, recon, x)
}

/// Per-sample `loss` between reconstructions and inputs (both in the model's scale): the
/// score of [`scores`] for callers that already hold the reconstructions.
pub fn scores_of_reconstructions(loss: ReconLoss, recon: &Matrix, x: &Matrix) -> Vec<f64> {
    (0..x.rows)
        .map(|i| per_sample_host(loss, recon.row(i), x.row(i)))
        .collect()
}

/// Each value's squared error, `(recon − x)²`, as a matrix of `x`'s shape: the per-feature
/// errors the scores sum.
pub fn squared_errors(recon: &Matrix, x: &Matrix) -> Matrix {
    Matrix {
        rows: x.rows,
        cols: x.cols,
        data: recon
            .data
            .iter()
            .zip(&x.data)
            .map(|(r, v)| (r - v) * (r - v))
            .collect(),
    }
}

pub use crate::data::preprocess::quantile;

/// PyOD's default share of anomalies in the training data.
pub const DEFAULT_CONTAMINATION: f64 = 0.1;

pub fn check_contamination(contamination: f64) -> Result<()> {
    // 0 is the largest training score: nothing the model was trained on is flagged.
    if !(0.0..=0.5).contains(&contamination) {
        return Err(Error::invalid(format!(
            "contamination must lie in [0, 0.5], got {contamination}"
        )));
    }
    Ok(())
}

/// The threshold that leaves `contamination` of `scores` (a model's scores of its training
/// rows) above it: their linear `1 − contamination` quantile, as NumPy's and PyOD's; 0 puts it
/// at the largest of them.
pub fn threshold_of(scores: &[f64], contamination: f64) -> Result<f64> {
    check_contamination(contamination)?;
    Ok(threshold_at(scores, contamination))
}

fn threshold_at(scores: &[f64], contamination: f64) -> f64 {
    quantile(scores, 1.0 - contamination)
}

/// A fitted detector: scores above `threshold` are anomalies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetector {
    pub kind: ScoreKind,
    pub threshold: f64,
    /// The contamination the threshold came from, if it was fitted.
    pub contamination: Option<f64>,
    pub seed: u64,
}

impl AnomalyDetector {
    /// Threshold at the `1 - contamination` quantile of the training scores (rows of a
    /// conditional model under their classes `labels`).
    pub fn fit(
        run: &Run,
        train: &Matrix,
        labels: Option<&[u32]>,
        kind: ScoreKind,
        contamination: f64,
    ) -> Result<Self> {
        check_contamination(contamination)?;
        let seed = 0;
        let s = scores(run, train, labels, kind, seed)?;
        Ok(Self::from_training_scores(kind, &s, contamination, seed))
    }

    /// The detector whose threshold leaves `contamination` of the training `scores` above it
    /// ([`threshold_of`]).
    fn from_training_scores(
        kind: ScoreKind,
        scores: &[f64],
        contamination: f64,
        seed: u64,
    ) -> Self {
        Self {
            kind,
            threshold: threshold_at(scores, contamination),
            contamination: Some(contamination),
            seed,
        }
    }

    /// The detector whose threshold leaves `contamination` of `scores` (a model's scores of
    /// its training data) above it; 0 puts it at the largest of them.
    pub fn from_scores(kind: ScoreKind, scores: &[f64], contamination: f64) -> Result<Self> {
        check_contamination(contamination)?;
        Ok(Self::from_training_scores(kind, scores, contamination, 0))
    }

    /// Where the threshold comes from, in words, `scores` naming what it was fitted on ("the
    /// training scores"): the largest of them, a quantile of them, or given.
    pub fn threshold_origin(&self, scores: &str) -> String {
        match self.contamination {
            Some(0.0) => format!("the largest of {scores}"),
            Some(c) => format!("the {:.1}% quantile of {scores}", 100.0 * (1.0 - c)),
            None => "given".to_string(),
        }
    }

    /// A detector with a given threshold.
    pub fn with_threshold(kind: ScoreKind, threshold: f64) -> Result<Self> {
        if !threshold.is_finite() {
            return Err(Error::invalid(format!(
                "--threshold must be a finite number, got {threshold}"
            )));
        }
        Ok(Self {
            kind,
            threshold,
            contamination: None,
            seed: 0,
        })
    }

    /// Where a run keeps the detector fitted when it was trained.
    pub fn path(run: &Run) -> std::path::PathBuf {
        run.dir.path.join("anomaly.json")
    }

    /// Fits a detector on the training split of the table `cfg` names, scored a batch at a
    /// time: memory holds the scores (8 bytes a row), never the rows. Training stores the
    /// default one (squared error, PyOD's contamination of 0.1) with the run.
    pub fn fit_streamed(
        run: &Run,
        cfg: &crate::data::DataConfig,
        kind: ScoreKind,
        contamination: f64,
    ) -> Result<Self> {
        check_contamination(contamination)?;
        let seed = 0;
        let mut all = Vec::new();
        crate::eval::streamed::each_batch(run, cfg, crate::data::Split::Train, &[], |rows| {
            let labels = rows.labels.as_deref().filter(|_| run.model.classes() > 0);
            all.extend(scores(run, &rows.x, labels, kind, seed)?);
            Ok(())
        })?;
        Ok(Self::from_training_scores(kind, &all, contamination, seed))
    }

    /// The detector [`Self::fit_streamed`] would fit: the one stored with the run when it
    /// was fitted so on the run's own data, which saves a pass over the training table.
    pub fn for_table(
        run: &Run,
        cfg: &crate::data::DataConfig,
        kind: ScoreKind,
        contamination: f64,
    ) -> Result<Self> {
        if *cfg == run.config.data
            && let Some(stored) = Self::stored(run)?
            && stored.kind == kind
            && stored.contamination == Some(contamination)
        {
            return Ok(stored);
        }
        Self::fit_streamed(run, cfg, kind, contamination)
    }

    /// The detector stored with the run, if training stored one.
    pub fn stored(run: &Run) -> Result<Option<Self>> {
        let path = Self::path(run);
        if !path.is_file() {
            return Ok(None);
        }
        let detector: Self = serde_json::from_slice(&crate::io::read_file(&path)?)
            .map_err(|e| Error::bad_file(&path, format!("not an anomaly detector: {e}")))?;
        if !detector.threshold.is_finite() {
            return Err(Error::bad_file(
                &path,
                "the threshold is not a finite number",
            ));
        }
        Ok(Some(detector))
    }

    /// Scores of the rows of `x` (see [`scores`]).
    pub fn decision_function(
        &self,
        run: &Run,
        x: &Matrix,
        labels: Option<&[u32]>,
    ) -> Result<Vec<f64>> {
        scores(run, x, labels, self.kind, self.seed)
    }

    /// `true` for anomalies.
    pub fn predict(&self, run: &Run, x: &Matrix, labels: Option<&[u32]>) -> Result<Vec<bool>> {
        Ok(self.label(&self.decision_function(run, x, labels)?))
    }

    pub fn label(&self, scores: &[f64]) -> Vec<bool> {
        scores.iter().map(|s| *s > self.threshold).collect()
    }
}

fn check_pair(scores: &[f64], truth: &[bool]) -> Option<(usize, usize)> {
    if scores.len() != truth.len() {
        return None;
    }
    let pos = truth.iter().filter(|t| **t).count();
    let neg = truth.len() - pos;
    (pos > 0 && neg > 0).then_some((pos, neg))
}

/// Area under the ROC curve: the probability that a random anomaly scores above a random
/// normal sample, ties counting one half (the Mann-Whitney statistic with average ranks).
/// `None` unless both kinds are present.
pub fn roc_auc(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let (pos, neg) = check_pair(scores, truth)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 are tied: each gets their mean.
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * order[i..=j].iter().filter(|k| truth[**k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Average precision as scikit-learn defines it: Σ (R_k − R_{k−1}) · P_k over the distinct
/// score thresholds, highest first. `None` unless both kinds are present.
pub fn average_precision(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let (pos, _) = check_pair(scores, truth)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        tp += order[i..=j].iter().filter(|k| truth[**k]).count();
        seen += j - i + 1;
        let recall = tp as f64 / pos as f64;
        ap += (recall - last_recall) * tp as f64 / seen as f64;
        last_recall = recall;
        i = j + 1;
    }
    Some(ap)
}

/// Which samples are truly anomalous, where the labels say: the `anomaly` classes, or every
/// class but the `normal` ones (by default the classes the run was trained on), or label 1 for
/// 0/1 labels. `None` without labels or a rule that applies.
pub fn truth(
    labels: Option<&[u32]>,
    anomaly: Option<&[u32]>,
    normal: Option<&[u32]>,
    run: &Run,
) -> Option<Vec<bool>> {
    let labels = labels?;
    if let Some(a) = anomaly {
        return Some(labels.iter().map(|l| a.contains(l)).collect());
    }
    match normal.or(run.config.data.train_classes.as_deref()) {
        Some(n) => Some(labels.iter().map(|l| !n.contains(l)).collect()),
        None if labels.iter().all(|l| *l <= 1) => Some(labels.iter().map(|l| *l == 1).collect()),
        None => None,
    }
}

/// The outcome of scoring a data set.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreSummary {
    pub score: ScoreKind,
    pub threshold: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contamination: Option<f64>,
    pub samples: usize,
    pub flagged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_precision: Option<f64>,
}

impl ScoreSummary {
    /// Counts and, when `truth` is known, ROC AUC and average precision of `scores`.
    pub fn new(
        detector: &AnomalyDetector,
        scores: &[f64],
        flagged: &[bool],
        truth: Option<&[bool]>,
    ) -> Self {
        Self {
            score: detector.kind,
            threshold: detector.threshold,
            contamination: detector.contamination,
            samples: scores.len(),
            flagged: flagged.iter().filter(|f| **f).count(),
            anomalies: truth.map(|t| t.iter().filter(|x| **x).count()),
            roc_auc: truth.and_then(|t| roc_auc(scores, t)),
            average_precision: truth.and_then(|t| average_precision(scores, t)),
        }
    }
}

/// The formats per-sample scores are written in, known from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoresFormat {
    /// The scores alone.
    Npy,
    /// `index,score,anomaly` rows.
    Csv,
    /// The summary with the scores and labels.
    Json,
}

impl ScoresFormat {
    /// The format of `path`; any other extension is an error naming the file.
    pub fn of(path: &std::path::Path) -> Result<Self> {
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

/// Writes per-sample `scores` and `flagged` labels to `path`, atomically.
pub fn write_scores(
    path: &std::path::Path,
    summary: &ScoreSummary,
    scores: &[f64],
    flagged: &[bool],
) -> Result<()> {
    let mut outputs = crate::io::OutputSet::default();
    outputs.write(path, |staged| {
        let mut w = ScoresWriter::create(staged)?;
        w.append(scores, flagged)?;
        w.finish(summary, scores, flagged)
    })?;
    outputs.commit()
}

/// Per-sample scores and labels written a block at a time, so that scoring a table larger
/// than memory holds no row: `.npy` holds the scores, `.csv` has `index,score,anomaly` rows;
/// a `.json` document (the summary, then every score and label) is written at the end from
/// the scores the caller keeps for the summary anyway.
pub struct ScoresWriter {
    path: std::path::PathBuf,
    out: ScoresOut,
    rows: usize,
}

enum ScoresOut {
    Npy(npyz::NpyWriter<f32, BufWriter<File>>),
    Csv(BufWriter<File>),
    Json,
}

impl ScoresWriter {
    /// Starts `path` (a staging file: the caller moves it into place when complete).
    pub fn create(path: &std::path::Path) -> Result<Self> {
        use npyz::WriterBuilder;
        let io = |e| Error::io(path, e);
        let format = ScoresFormat::of(path)?;
        let out = match format {
            ScoresFormat::Json => ScoresOut::Json,
            _ => {
                let mut file = BufWriter::new(File::create(path).map_err(io)?);
                if format == ScoresFormat::Csv {
                    writeln!(file, "index,score,anomaly").map_err(io)?;
                    ScoresOut::Csv(file)
                } else {
                    ScoresOut::Npy(
                        npyz::WriteOptions::new()
                            .default_dtype()
                            .writer(file)
                            .begin_1d()
                            .map_err(io)?,
                    )
                }
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            out,
            rows: 0,
        })
    }

    pub fn append(&mut self, scores: &[f64], flagged: &[bool]) -> Result<()> {
        let first = self.rows;
        match &mut self.out {
            ScoresOut::Npy(w) => w.extend(scores.iter().map(|&s| s as f32)),
            ScoresOut::Csv(file) => {
                scores
                    .iter()
                    .zip(flagged)
                    .enumerate()
                    .try_for_each(|(i, (score, flag))| {
                        writeln!(file, "{},{score},{}", first + i, u8::from(*flag))
                    })
            }
            ScoresOut::Json => Ok(()),
        }
        .map_err(|e| Error::io(&self.path, e))?;
        self.rows += scores.len();
        Ok(())
    }

    /// Completes the file; a `.json` document is `summary` and every row's `scores` and
    /// `flagged` (the ones appended, all of them).
    pub fn finish(self, summary: &ScoreSummary, scores: &[f64], flagged: &[bool]) -> Result<()> {
        match self.out {
            ScoresOut::Npy(w) => w.finish(),
            ScoresOut::Csv(mut file) => file.flush(),
            ScoresOut::Json => {
                #[derive(Serialize)]
                struct Out<'a> {
                    #[serde(flatten)]
                    summary: &'a ScoreSummary,
                    scores: &'a [f64],
                    anomaly: &'a [bool],
                }
                let out = Out {
                    summary,
                    scores,
                    anomaly: flagged,
                };
                let text = serde_json::to_string_pretty(&out)
                    .map_err(|e| Error::Serialize(e.to_string()))?;
                std::fs::write(&self.path, format!("{text}\n"))
            }
        }
        .map_err(|e| Error::io(&self.path, e))
    }
}
