//! How well a classifier does on labelled rows: accuracy, the confusion matrix, and each
//! class's precision, recall and F1 (scikit-learn's definitions: a class never predicted has
//! precision 0, one with no rows recall 0).

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::classifier::predicted_classes;
use crate::run::Run;
use crate::run::classifier::ClassifierRun;

/// One class's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub class: usize,
    pub name: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Rows of this class.
    pub support: usize,
}

/// A classifier's scores on one labelled data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    pub origin: String,
    pub samples: usize,
    pub accuracy: f64,
    /// The unweighted mean of the classes' F1.
    pub macro_f1: f64,
    /// `confusion[true][predicted]`: rows of class `true` predicted as `predicted`.
    pub confusion: Vec<Vec<usize>>,
    pub per_class: Vec<ClassScores>,
}

impl ClassificationReport {
    /// Scores of `predicted` against `truth` for classes `0..classes`, named by `name`.
    pub fn new(
        origin: &str,
        predicted: &[u32],
        truth: &[u32],
        classes: usize,
        name: impl Fn(usize) -> String,
    ) -> Result<Self> {
        if predicted.len() != truth.len() {
            return Err(Error::mismatch(format!(
                "{} predictions for {} labels",
                predicted.len(),
                truth.len()
            )));
        }
        let mut confusion = vec![vec![0usize; classes]; classes];
        for (&p, &t) in predicted.iter().zip(truth) {
            let (p, t) = (p as usize, t as usize);
            if t >= classes || p >= classes {
                return Err(Error::invalid(format!(
                    "{origin}: label {t} is not one of the classifier's {classes} classes"
                )));
            }
            confusion[t][p] += 1;
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassScores> = (0..classes)
            .map(|c| {
                let hits = confusion[c][c];
                let support: usize = confusion[c].iter().sum();
                let predicted_as: usize = confusion.iter().map(|row| row[c]).sum();
                let (precision, recall) = (ratio(hits, predicted_as), ratio(hits, support));
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    class: c,
                    name: name(c),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let hits: usize = (0..classes).map(|c| confusion[c][c]).sum();
        Ok(Self {
            origin: origin.to_string(),
            samples: truth.len(),
            accuracy: ratio(hits, truth.len()),
            macro_f1: per_class.iter().map(|c| c.f1).sum::<f64>() / classes.max(1) as f64,
            confusion,
            per_class,
        })
    }
}

/// `run`'s scores on `data` (preprocessed as the run's, with labels), and its predictions.
/// The classes a model that classifies (a semi-supervised one) gives the rows of `data`,
/// scored against their labels; `None` for other models or unlabelled data.
pub fn evaluate_model(run: &Run, data: &Dataset) -> Result<Option<ClassificationReport>> {
    let (Some(truth), Some(probabilities)) = (
        data.labels.as_deref(),
        run.model.class_probabilities(&data.x)?,
    ) else {
        return Ok(None);
    };
    let name = |c| crate::data::class_name(data.class_names.as_deref(), c);
    let predicted = predicted_classes(&probabilities);
    ClassificationReport::new(&data.origin, &predicted, truth, probabilities.cols, name).map(Some)
}

pub fn evaluate(run: &ClassifierRun, data: &Dataset) -> Result<(ClassificationReport, Vec<u32>)> {
    let truth = data.labels.as_deref().ok_or_else(|| {
        Error::invalid(format!(
            "{}: the data has no labels to score the classifier against",
            data.origin
        ))
    })?;
    let predicted = predicted_classes(&run.probabilities(&data.x)?);
    let report = ClassificationReport::new(&data.origin, &predicted, truth, run.classes(), |c| {
        run.class_name(c)
    })?;
    Ok((report, predicted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_their_definitions() {
        // truth 0 0 1 1 2, predicted 0 1 1 1 0
        let r = ClassificationReport::new("t", &[0, 1, 1, 1, 0], &[0, 0, 1, 1, 2], 3, |c| {
            format!("c{c}")
        })
        .unwrap();
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]
        );
        assert!((r.accuracy - 0.6).abs() < 1e-12);
        let c0 = &r.per_class[0];
        assert_eq!((c0.precision, c0.recall, c0.support), (0.5, 0.5, 2));
        let c1 = &r.per_class[1];
        assert!((c1.precision - 2.0 / 3.0).abs() < 1e-12 && c1.recall == 1.0);
        assert!((c1.f1 - 0.8).abs() < 1e-12);
        assert_eq!((r.per_class[2].precision, r.per_class[2].f1), (0.0, 0.0));
        assert!((r.macro_f1 - (0.5 + 0.8) / 3.0).abs() < 1e-12);
        assert!(ClassificationReport::new("t", &[0], &[3], 3, |c| c.to_string()).is_err());
    }
}
