//! Which training rows keep their label, for jobs that learn from few labels (fine-tuning, the
//! few-label probes): every labelled row, a balanced draw of N of them, or the rows a caller
//! marked (scikit-learn's semi-supervised convention: −1 is unlabelled).

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::batch::rng_for;
use crate::error::{Error, Result};

/// The label of a row that has none: in a semi-supervised model's training data (scikit-learn's
/// −1) and in its training batches.
pub const UNLABELLED: u32 = u32::MAX;

/// The draws of a balanced choice of labelled rows.
const LABEL_CHOICE_STREAM: u64 = 1 << 46;

/// How many training rows keep their label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LabelChoice {
    /// Every labelled row.
    #[default]
    All,
    /// N rows in all, the same number from every class (the first N mod classes classes take
    /// one more), drawn with the job's seed: the few-label benchmarks' protocol.
    Balanced(usize),
}

impl FromStr for LabelChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "all" => Ok(LabelChoice::All),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .map(LabelChoice::Balanced)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "--labelled '{s}': use all or a whole number of labelled rows ≥ 1, e.g. 100"
                    ))
                }),
        }
    }
}

impl fmt::Display for LabelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelChoice::All => write!(f, "all"),
            LabelChoice::Balanced(n) => write!(f, "{n}"),
        }
    }
}

impl TryFrom<String> for LabelChoice {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<LabelChoice> for String {
    fn from(c: LabelChoice) -> String {
        c.to_string()
    }
}

impl LabelChoice {
    /// The indices (ascending) of the rows of `labels` (classes `0..classes`) that keep their
    /// label. A class with fewer rows than its share is refused, naming it.
    pub fn choose(self, labels: &[u32], classes: usize, seed: u64) -> Result<Vec<usize>> {
        let LabelChoice::Balanced(n) = self else {
            return Ok((0..labels.len()).collect());
        };
        if n > labels.len() {
            return Err(Error::invalid(format!(
                "--labelled {n}: the training data has only {} labelled rows",
                labels.len()
            )));
        }
        if n < classes {
            return Err(Error::invalid(format!(
                "--labelled {n}: fewer than one row for each of the {classes} classes"
            )));
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
        for (row, &c) in labels.iter().enumerate() {
            if let Some(rows) = by_class.get_mut(c as usize) {
                rows.push(row);
            }
        }
        let mut rng = rng_for(seed, LABEL_CHOICE_STREAM);
        let mut chosen = Vec::with_capacity(n);
        for (class, rows) in by_class.iter_mut().enumerate() {
            let share = n / classes + usize::from(class < n % classes);
            if rows.len() < share {
                return Err(Error::invalid(format!(
                    "--labelled {n}: class {class} has {} rows, fewer than its share of {share}",
                    rows.len()
                )));
            }
            rows.shuffle(&mut rng);
            chosen.extend_from_slice(&rows[..share]);
        }
        chosen.sort_unstable();
        Ok(chosen)
    }
}

/// The labelled rows of `targets` in scikit-learn's semi-supervised convention: each row's
/// class (≥ 0) or −1 for an unlabelled row. Returns the labelled rows' indices and classes;
/// any other negative value is refused, naming its row.
pub fn marked_labels(targets: &[i64]) -> Result<(Vec<usize>, Vec<u32>)> {
    let mut rows = Vec::new();
    let mut classes = Vec::new();
    for (row, &t) in targets.iter().enumerate() {
        match t {
            -1 => {}
            t if (0..=u32::MAX as i64).contains(&t) => {
                rows.push(row);
                classes.push(t as u32);
            }
            t => {
                return Err(Error::invalid(format!(
                    "label {t} of row {row}: a class is a whole number ≥ 0, and −1 marks an unlabelled row"
                )));
            }
        }
    }
    Ok((rows, classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balanced_choice_takes_each_class_share_and_depends_on_the_seed() {
        let labels: Vec<u32> = (0..300).map(|i| (i % 3) as u32).collect();
        let rows = LabelChoice::Balanced(10).choose(&labels, 3, 7).unwrap();
        assert_eq!(rows.len(), 10);
        let count = |c| rows.iter().filter(|&&r| labels[r] == c).count();
        assert_eq!((count(0), count(1), count(2)), (4, 3, 3));
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            rows,
            LabelChoice::Balanced(10).choose(&labels, 3, 7).unwrap()
        );
        assert_ne!(
            rows,
            LabelChoice::Balanced(10).choose(&labels, 3, 8).unwrap()
        );
        assert_eq!(LabelChoice::All.choose(&labels, 3, 0).unwrap().len(), 300);
    }

    #[test]
    fn impossible_choices_and_bad_marks_are_refused_by_name() {
        let labels = [0u32, 0, 0, 1];
        let e = LabelChoice::Balanced(4).choose(&labels, 2, 0).unwrap_err();
        assert!(e.to_string().contains("class 1 has 1 rows"), "{e}");
        assert!("0".parse::<LabelChoice>().is_err());
        assert_eq!("all".parse::<LabelChoice>().unwrap(), LabelChoice::All);
        assert_eq!(
            marked_labels(&[3, -1, 0]).unwrap(),
            (vec![0, 2], vec![3, 0])
        );
        let e = marked_labels(&[0, -2]).unwrap_err().to_string();
        assert!(e.contains("row 1"), "{e}");
    }
}
