//! A typed table's columns as groups of the network's outputs, each with its own likelihood:
//! a numeric column's squared error (a Gaussian), a boolean's cross-entropy against a sigmoid
//! (a Bernoulli), a categorical column's cross-entropy against a softmax over its levels.
//!
//! Missing values arrive as NaN in the target: they are left out of the loss (their gradient is
//! zero) and filled with 0 on the way into the encoder (see
//! [`crate::model::layers::rows_tensor`]) — after scaling, a numeric column's centre and a
//! category's "none of the levels". Each column's term is multiplied by its weight, so that a
//! column is one term whatever its width: a categorical column of forty levels counts once,
//! not forty times.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::loss::{BCE_CLAMP, bce_with_logits};

/// What a group of outputs is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// One value, reconstructed as it is; squared error.
    Numeric,
    /// One value in {0, 1}, reconstructed through a sigmoid; binary cross-entropy.
    Boolean,
    /// A one-hot over the column's levels, reconstructed through a softmax; cross-entropy.
    Categorical,
}

/// One column's outputs: `width` of them from `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputGroup {
    pub name: String,
    pub kind: OutputKind,
    pub start: usize,
    pub width: usize,
    pub weight: f32,
}

/// Every column's group, in output order; together they cover the outputs once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputColumns {
    pub groups: Vec<OutputGroup>,
}

impl OutputColumns {
    /// The model's view of a typed table's columns: each one's outputs, kind and weight.
    pub fn of(table: &crate::data::columns::TableColumns) -> Self {
        use crate::data::columns::ColumnKind;
        let groups = table
            .columns
            .iter()
            .zip(table.starts())
            .map(|(c, start)| OutputGroup {
                name: c.name.clone(),
                kind: match c.kind {
                    ColumnKind::Numeric => OutputKind::Numeric,
                    ColumnKind::Boolean => OutputKind::Boolean,
                    ColumnKind::Categorical { .. } => OutputKind::Categorical,
                },
                start,
                width: c.width(),
                weight: c.weight,
            })
            .collect();
        Self { groups }
    }

    pub fn width(&self) -> usize {
        self.groups.last().map_or(0, |g| g.start + g.width)
    }

    fn single_columns(&self, kind: OutputKind) -> (Vec<i64>, Vec<f32>) {
        self.groups
            .iter()
            .filter(|g| g.kind == kind)
            .map(|g| (g.start as i64, g.weight))
            .unzip()
    }

    /// The weighted loss of every row `[batch]`, from the network's pre-activation outputs
    /// and a target holding NaN where a value is missing (left out of the loss). `target` may
    /// hold fewer rows than `logits`, a number that divides theirs (draws stacked against one
    /// batch, as [`crate::model::loss::per_sample`] allows).
    pub fn per_sample(&self, logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        let repeats = logits.dims()[0] / target.dims()[0].max(1);
        let target = if repeats > 1 {
            target.repeat_dim(0, repeats)
        } else {
            target
        };
        let device = logits.device();
        let [rows, _] = logits.dims();
        let missing = target.clone().is_nan();
        let present = missing.clone().bool_not().float();
        let target = target.mask_fill(missing, 0.0);
        let mut total = Tensor::<2>::zeros([rows, 1], &device);
        for kind in [OutputKind::Numeric, OutputKind::Boolean] {
            let (at, weights) = self.single_columns(kind);
            if at.is_empty() {
                continue;
            }
            let n = at.len();
            let index = Tensor::<1, Int>::from_data(TensorData::new(at, [n]), &device);
            let weights = Tensor::<2>::from_data(TensorData::new(weights, [1, n]), &device);
            let l = logits.clone().select(1, index.clone());
            let t = target.clone().select(1, index.clone());
            let keep = present.clone().select(1, index) * weights;
            let term = match kind {
                OutputKind::Numeric => {
                    let diff = l - t;
                    diff.clone() * diff
                }
                _ => bce_with_logits(l, t),
            };
            total = total + (term * keep).sum_dim(1);
        }
        for g in self
            .groups
            .iter()
            .filter(|g| g.kind == OutputKind::Categorical)
        {
            let l = logits.clone().narrow(1, g.start, g.width);
            let t = target.clone().narrow(1, g.start, g.width);
            let keep = present.clone().narrow(1, g.start, 1);
            // −log softmax(l)[true level] = logsumexp(l) − l[true level], the maximum taken out
            // first (detached: the identity holds for any shift).
            let shift = l.clone().max_dim(1).detach();
            let log_sum = (l.clone() - shift.clone()).exp().sum_dim(1).log() + shift;
            let nll = log_sum - (l * t).sum_dim(1);
            total = total + (nll * keep).mul_scalar(g.weight);
        }
        total.squeeze_dim(1)
    }

    /// The outputs as values of the data's scale: a boolean's probability (sigmoid), a
    /// categorical column's level probabilities (softmax); numeric outputs stay as they are.
    pub fn activate(&self, logits: &mut [f32], cols: usize) {
        for row in logits.chunks_exact_mut(cols) {
            for g in &self.groups {
                let out = &mut row[g.start..g.start + g.width];
                match g.kind {
                    OutputKind::Numeric => {}
                    OutputKind::Boolean => out[0] = 1.0 / (1.0 + (-out[0]).exp()),
                    OutputKind::Categorical => {
                        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let mut sum = 0.0;
                        for v in out.iter_mut() {
                            *v = (*v - max).exp();
                            sum += *v;
                        }
                        out.iter_mut().for_each(|v| *v /= sum);
                    }
                }
            }
        }
    }

    /// Each column's (unweighted) loss for one row, from its activated outputs
    /// ([`Self::activate`]) and its target (NaN where missing: that column's term is 0): what
    /// the score of a row splits into.
    pub fn column_losses(&self, output: &[f32], target: &[f32]) -> Vec<f64> {
        self.groups
            .iter()
            .map(|g| {
                let o = &output[g.start..g.start + g.width];
                let t = &target[g.start..g.start + g.width];
                if t[0].is_nan() {
                    return 0.0;
                }
                match g.kind {
                    OutputKind::Numeric => {
                        let d = o[0] as f64 - t[0] as f64;
                        d * d
                    }
                    OutputKind::Boolean => {
                        let p = (o[0] as f64).clamp(BCE_CLAMP, 1.0 - BCE_CLAMP);
                        let t = t[0] as f64;
                        -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
                    }
                    OutputKind::Categorical => {
                        let p: f64 = o.iter().zip(t).map(|(&p, &t)| p as f64 * t as f64).sum();
                        -p.max(BCE_CLAMP).ln()
                    }
                }
            })
            .collect()
    }

    /// Each column's share of the row's score: its loss times its weight (they sum to the
    /// score, [`Self::score`]).
    pub fn column_shares(&self, output: &[f32], target: &[f32]) -> Vec<f64> {
        self.column_losses(output, target)
            .into_iter()
            .zip(&self.groups)
            .map(|(l, g)| l * g.weight as f64)
            .collect()
    }

    /// A row's score: the weighted sum of its columns' losses, the training objective's value
    /// for the row.
    pub fn score(&self, output: &[f32], target: &[f32]) -> f64 {
        self.column_shares(output, target).iter().sum()
    }

    /// A row's squared error over the values it has, the outputs activated (a category's
    /// probabilities against its one-hot).
    pub fn squared_error(&self, output: &[f32], target: &[f32]) -> f64 {
        output
            .iter()
            .zip(target)
            .filter(|(_, t)| !t.is_nan())
            .map(|(&o, &t)| (o as f64 - t as f64).powi(2))
            .sum()
    }
}
