//! A run on a time series scored point by point: every window's squared error per element,
//! brought back to the points it covers (the mean, or the largest, over those windows), a
//! threshold from the training range's points, and the reconstruction of the series for
//! figures.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::data::series::{PointReduce, Windowed, load_windows};
use crate::data::{DataConfig, Matrix, Split};
use crate::error::{Error, Result};
use crate::eval::anomaly::{
    AnomalyDetector, ScoreKind, ScoreSummary, ScoresFormat, squared_errors,
};
use crate::run::Run;

/// How far from a labelled anomaly the top-scored point of a series may lie and still find it:
/// the UCR anomaly archive's own measure (Wu and Keogh, 2021) allows 100 points either side.
pub const UCR_TOLERANCE: usize = 100;

/// One series scored point by point.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelScores {
    pub id: Option<String>,
    pub times: Vec<String>,
    /// The raw values, `points × channels`.
    pub values: Matrix,
    /// The reconstruction in the raw scale (each point the mean over its windows).
    pub reconstruction: Matrix,
    /// One score per point: its squared error summed over channels, reduced over windows.
    pub scores: Vec<f64>,
    pub labels: Option<Vec<u32>>,
    /// Points of the training range (the first `--train-points`; 0 without one).
    pub training: usize,
}

/// Every series of a split, scored point by point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointScores {
    pub channels: Vec<String>,
    pub panels: Vec<PanelScores>,
    pub origin: String,
}

/// The point scores of `split` of the series `cfg` names, under `run`.
pub fn point_scores(
    run: &Run,
    cfg: &DataConfig,
    split: Split,
    reduce: PointReduce,
) -> Result<PointScores> {
    if !run.config.data.is_series() {
        return Err(Error::invalid(format!(
            "{}: the run was not trained on a time series (no --window), so it has no point scores",
            run.dir.path.display()
        )));
    }
    let windowed = load_windows(cfg, split)?;
    let training = match (split, &cfg.test_source) {
        (Split::Test, None) => cfg.train_points.unwrap_or(0),
        _ => 0,
    };
    score_windows(run, windowed, training, reduce)
}

/// The point scores of series already cut into windows; the first `training` points of each
/// series are marked as the training range (left out of the summary).
pub fn score_windows(
    run: &Run,
    windowed: Windowed,
    training: usize,
    reduce: PointReduce,
) -> Result<PointScores> {
    let channels = &windowed.series.channels;
    if let Some(&[expected, _]) = run.model.config().shared().input_shape.as_deref()
        && expected != channels.len()
    {
        return Err(Error::mismatch(format!(
            "{}: the series has {} channels ({}), the model in {} takes {expected} per point (choose them with --columns, and name a label with --label-column)",
            windowed.series.origin,
            channels.len(),
            channels.join(", "),
            run.dir.path.display()
        )));
    }
    let x = run.to_model_scale(&windowed.data.origin, windowed.data.x.clone())?;
    let recon = run.model.reconstruct(&x)?;
    let scores = windowed.point_scores(&squared_errors(&recon, &x), reduce);
    let recon = windowed.to_points(&run.to_raw(recon)?, PointReduce::Mean);
    let series = windowed.series;
    Ok(PointScores {
        channels: series.channels,
        origin: series.origin,
        panels: series
            .panels
            .into_iter()
            .zip(scores)
            .zip(recon)
            .map(|((panel, scores), reconstruction)| PanelScores {
                training: training.min(panel.len()),
                id: panel.id,
                times: panel.times,
                values: panel.values,
                reconstruction,
                scores,
                labels: panel.labels,
            })
            .collect(),
    })
}

/// The point detector a series run stores where it is made (`anomaly-points.json`): how a
/// point's score comes from its windows and the threshold fitted so on the training range,
/// which the CLI, Python and the server read without the training data.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PointDetector {
    pub reduce: PointReduce,
    #[serde(flatten)]
    pub detector: AnomalyDetector,
}

impl PointDetector {
    pub fn path(run: &Run) -> std::path::PathBuf {
        run.dir.path.join("anomaly-points.json")
    }

    /// The detector stored with the run, if training stored one.
    pub fn stored(run: &Run) -> Result<Option<Self>> {
        let path = Self::path(run);
        if !path.is_file() {
            return Ok(None);
        }
        let stored: Self = serde_json::from_slice(&crate::io::read_file(&path)?)
            .map_err(|e| Error::bad_file(&path, format!("not a point detector: {e}")))?;
        if !stored.detector.threshold.is_finite() {
            return Err(Error::bad_file(
                &path,
                "the threshold is not a finite number",
            ));
        }
        Ok(Some(stored))
    }

    /// Fits the default detector (mean point scores, PyOD's contamination of 0.1) on the
    /// training windows `train` and stores it with `run`.
    pub fn fit_and_store(run: &Run, train: Windowed) -> Result<Self> {
        let reduce = PointReduce::default();
        let scores = score_windows(run, train, 0, reduce)?;
        let stored = Self {
            reduce,
            detector: detector_of(&scores, crate::eval::anomaly::DEFAULT_CONTAMINATION)?,
        };
        crate::io::write_json(&Self::path(run), &stored)?;
        Ok(stored)
    }

    /// The detector [`fit_point_detector`] would fit on `cfg`: the stored one where it was
    /// fitted so on the run's own data, which saves a pass over the training range.
    pub fn for_data(
        run: &Run,
        cfg: &DataConfig,
        reduce: PointReduce,
        contamination: f64,
    ) -> Result<AnomalyDetector> {
        if *cfg == run.config.data
            && let Some(stored) = Self::stored(run)?
            && stored.reduce == reduce
            && stored.detector.contamination == Some(contamination)
        {
            return Ok(stored.detector);
        }
        fit_point_detector(run, cfg, reduce, contamination)
    }
}

/// The point detector of a series run: the threshold leaves `contamination` of the training
/// range's point scores above it (0: the largest of them, the keras.io recipe's threshold).
pub fn fit_point_detector(
    run: &Run,
    cfg: &DataConfig,
    reduce: PointReduce,
    contamination: f64,
) -> Result<AnomalyDetector> {
    detector_of(
        &point_scores(run, cfg, Split::Train, reduce)?,
        contamination,
    )
}

/// The detector whose threshold leaves `contamination` of the point scores of `train` (a
/// run's training range) above it (0: the largest of them).
pub fn detector_of(train: &PointScores, contamination: f64) -> Result<AnomalyDetector> {
    let scores: Vec<f64> = train
        .panels
        .iter()
        .flat_map(|p| p.scores.iter().copied().filter(|s| !s.is_nan()))
        .collect();
    AnomalyDetector::from_scores(ScoreKind::SquaredError, &scores, contamination)
}

/// A split's points judged: the summary counts the held-out points (those after the training
/// range where the split shares the training file), with ROC AUC and average precision where
/// labels say which are anomalies (label 1 of 0/1 labels, or the classes `truth` names).
#[derive(Debug, Clone, Serialize)]
pub struct SeriesSummary {
    #[serde(flatten)]
    pub points: ScoreSummary,
    pub series: usize,
    /// Series whose top-scored held-out point lies within [`UCR_TOLERANCE`] points of a
    /// labelled anomaly (the UCR archive's measure), of those with a labelled anomaly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_point_hits: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_with_anomalies: Option<usize>,
}

impl PointScores {
    /// Every point's `(series index, point)` that the summary judges: the held-out ones
    /// that a window reached (the training split's windows stop at the training range).
    fn held_out(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.panels.iter().enumerate().flat_map(|(k, p)| {
            (p.training..p.scores.len())
                .filter(|&i| !p.scores[i].is_nan())
                .map(move |i| (k, i))
        })
    }

    /// Each point's flag under `detector`, series by series.
    pub fn flagged(&self, detector: &AnomalyDetector) -> Vec<Vec<bool>> {
        self.panels
            .iter()
            .map(|p| detector.label(&p.scores))
            .collect()
    }

    /// Which points are truly anomalous, series by series, by the rule every score of the
    /// library follows ([`crate::eval::anomaly::truth`]: the `anomaly` classes, every class but
    /// the `normal` ones, or label 1 of 0/1 labels); `None` where labels do not say.
    pub fn truth(
        &self,
        anomaly: Option<&[u32]>,
        normal: Option<&[u32]>,
        run: &Run,
    ) -> Option<Vec<Vec<bool>>> {
        let labels = self
            .panels
            .iter()
            .map(|p| p.labels.as_deref())
            .collect::<Option<Vec<_>>>()?;
        let flat = crate::eval::anomaly::truth(Some(&labels.concat()), anomaly, normal, run)?;
        let mut rest = flat.as_slice();
        Some(
            labels
                .iter()
                .map(|l| {
                    let (panel, after) = rest.split_at(l.len());
                    rest = after;
                    panel.to_vec()
                })
                .collect(),
        )
    }

    /// The summary of the held-out points; `truth` (from [`Self::truth`]) says which are
    /// anomalies.
    pub fn summary(
        &self,
        detector: &AnomalyDetector,
        truth: Option<&[Vec<bool>]>,
    ) -> SeriesSummary {
        let scores: Vec<f64> = self
            .held_out()
            .map(|(k, i)| self.panels[k].scores[i])
            .collect();
        let flagged = detector.label(&scores);
        let held_out_truth: Option<Vec<bool>> =
            truth.map(|t| self.held_out().map(|(k, i)| t[k][i]).collect());
        let (mut hits, mut with_anomalies) = (0, 0);
        for (p, t) in self.panels.iter().zip(truth.unwrap_or_default()) {
            let anomalies: Vec<usize> = (p.training..t.len()).filter(|&i| t[i]).collect();
            let top = (p.training..p.scores.len())
                .filter(|&i| !p.scores[i].is_nan())
                .max_by(|&a, &b| p.scores[a].total_cmp(&p.scores[b]));
            if let (false, Some(top)) = (anomalies.is_empty(), top) {
                with_anomalies += 1;
                hits += usize::from(anomalies.iter().any(|&a| a.abs_diff(top) <= UCR_TOLERANCE));
            }
        }
        SeriesSummary {
            points: ScoreSummary::new(detector, &scores, &flagged, held_out_truth.as_deref()),
            series: self.panels.len(),
            top_point_hits: truth.is_some().then_some(hits),
            series_with_anomalies: truth.is_some().then_some(with_anomalies),
        }
    }

    /// Writes one row per point (`series,time,score,anomaly,label,training` and each channel's
    /// value and reconstruction in `.csv`; the
    /// summary and the points in `.json`; the scores alone in `.npy`), atomically.
    pub fn write(
        &self,
        path: &Path,
        summary: &SeriesSummary,
        detector: &AnomalyDetector,
    ) -> Result<()> {
        let flagged = self.flagged(detector);
        match check_output(path)? {
            ScoresFormat::Csv => crate::io::write_atomic_with(path, |out| {
                write!(out, "series,time,score,anomaly,label,training")?;
                // Each channel's value and its reconstruction, so the series can be drawn
                // from the file alone.
                for c in &self.channels {
                    write!(
                        out,
                        ",{},{}",
                        crate::data::csv::field(c),
                        crate::data::csv::field(&format!("{c}_reconstructed"))
                    )?;
                }
                writeln!(out)?;
                for (p, flags) in self.panels.iter().zip(&flagged) {
                    let id = crate::data::csv::field(p.id.as_deref().unwrap_or(""));
                    for i in 0..p.scores.len() {
                        let label = p.labels.as_ref().map(|l| l[i].to_string());
                        write!(
                            out,
                            "{id},{},{},{},{},{}",
                            crate::data::csv::field(&p.times[i]),
                            p.scores[i],
                            u8::from(flags[i]),
                            label.unwrap_or_default(),
                            u8::from(i < p.training)
                        )?;
                        for (v, r) in p.values.row(i).iter().zip(p.reconstruction.row(i)) {
                            write!(out, ",{v},{r}")?;
                        }
                        writeln!(out)?;
                    }
                }
                Ok(())
            }),
            ScoresFormat::Json => {
                #[derive(Serialize)]
                struct Series<'a> {
                    #[serde(skip_serializing_if = "Option::is_none")]
                    id: Option<&'a str>,
                    times: &'a [String],
                    scores: &'a [f64],
                    anomaly: &'a [bool],
                    #[serde(skip_serializing_if = "Option::is_none")]
                    labels: Option<&'a [u32]>,
                    training: usize,
                }
                #[derive(Serialize)]
                struct Out<'a> {
                    #[serde(flatten)]
                    summary: &'a SeriesSummary,
                    points: Vec<Series<'a>>,
                }
                let points = self
                    .panels
                    .iter()
                    .zip(&flagged)
                    .map(|(p, f)| Series {
                        id: p.id.as_deref(),
                        times: &p.times,
                        scores: &p.scores,
                        anomaly: f,
                        labels: p.labels.as_deref(),
                        training: p.training,
                    })
                    .collect();
                crate::io::write_json(path, &Out { summary, points })
            }
            ScoresFormat::Npy => {
                let all: Vec<f32> = self
                    .panels
                    .iter()
                    .flat_map(|p| p.scores.iter().map(|&s| s as f32))
                    .collect();
                crate::data::npy::write_shaped(path, &[all.len()], &all)
            }
        }
    }
}

/// The format of a point-score output, refused before any work unless `.csv`, `.json` or
/// `.npy`.
pub fn check_output(path: &Path) -> Result<ScoresFormat> {
    ScoresFormat::of(path)
}
