//! The semi-supervised VAE (Kingma, Rezende, Mohamed & Welling 2014, "M2"): a class y and a
//! code z generate x, p(x|y, z) p(y) p(z) with p(y) uniform and p(z) = N(0, I); a classifier
//! q(y|x) and a Gaussian q(z|x, y) infer them. A row with a label is trained on the ELBO of
//! (x, y), plus `class_weight` times the classifier's cross-entropy on it; a row without one on
//! the ELBO of x alone, the class marginalised by enumerating every class under q(y|x):
//!
//! ```text
//! L(x, y) = E_q(z|x,y)[−log p(x|y, z)] + KL(q(z|x, y) ‖ p(z)) + log C
//! U(x)    = Σ_y q(y|x) L(x, y) − H(q(y|x))
//! ```
//!
//! Trained on a VAE's codes (`aekit encode` of a VAE run, then this model on them), it is the
//! paper's "M1+M2". The code of a row is `[mean of q(z|x, q(y|x)) ‖ q(y|x)]`: the class
//! probabilities last, so the decoder takes a code as it is and the code says the class.
//! Dense only; its settings are the VAE's and three of its own.

use std::sync::Arc;

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::LabelChoice;
use crate::error::{Error, Result};
use crate::kernels::linear::linear;
use crate::model::layers::{Layers, LayersBuilder};
use crate::model::objective::{LossTerms, sampled_elbo_terms};
use crate::model::variant::{
    Batch, Capabilities, Resolved, StepContext, Supervision, UNLABELLED, Variant, VariantConfig,
    check_weight,
};
use crate::model::variants::vae::{Vae, VaeConfig};
use crate::model::{Activation, ModelConfig, Network, SharedConfig};

/// The classifier q(y|x)'s hidden layers, then its logits.
const CLASSIFIER_GROUP: &str = "classifier";
const CLASS_LOGITS: &str = "class_logits";

fn d_labelled_batch() -> usize {
    100
}
fn d_class_weight() -> f64 {
    // Nats of ELBO per nat of cross-entropy on a labelled row. Kingma et al. weigh the
    // cross-entropy by 0.1·N against an ELBO summed over N rows; Pyro's M2 example, whose
    // ELBO is per row like this one, settles on 46. Measured on MNIST here (RESULTS.md).
    50.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct SsVaeConfig {
    #[serde(flatten)]
    #[command(flatten)]
    pub vae: VaeConfig,
    /// Training rows that keep their label: all, or N drawn balanced across the classes with
    /// the training seed (the rest are trained on as unlabelled).
    #[serde(default)]
    #[arg(long, required = false)]
    pub labelled: LabelChoice,
    /// Labelled rows joined to every batch of rows without labels.
    #[serde(default = "d_labelled_batch")]
    #[arg(long, required = false)]
    pub labelled_batch: usize,
    /// Weight of the classifier's cross-entropy on a labelled row, in nats of ELBO (Kingma et
    /// al.'s alpha).
    #[serde(default = "d_class_weight")]
    #[arg(long, required = false)]
    pub class_weight: f64,
}

impl Default for SsVaeConfig {
    fn default() -> Self {
        Self {
            vae: VaeConfig::new(vec![500], 50),
            labelled: LabelChoice::All,
            labelled_batch: d_labelled_batch(),
            class_weight: d_class_weight(),
        }
    }
}

impl VariantConfig for SsVaeConfig {
    fn kind(&self) -> &'static str {
        "ssvae"
    }

    fn validate(&self, shared: &SharedConfig) -> Result<()> {
        if !self.vae.conv.is_empty() {
            return Err(Error::invalid(
                "the semi-supervised VAE is dense: it takes no convolutional encoder (--encoder)",
            ));
        }
        if self.vae.capacity.is_some() {
            return Err(Error::invalid(
                "the semi-supervised VAE takes no KL capacity (--capacity): its bound is per row",
            ));
        }
        if self.labelled_batch == 0 {
            return Err(Error::invalid("labelled_batch must be at least 1"));
        }
        check_weight("class_weight", self.class_weight)?;
        self.vae.validate(shared)
    }

    fn resolve(&mut self, shared: &SharedConfig) -> Result<()> {
        self.vae.resolve(shared)
    }

    /// z, then the class probabilities (0 until the classes are known).
    fn latent(&self, shared: &SharedConfig) -> usize {
        shared.classes.map_or(0, |c| self.vae.latent + c)
    }

    fn code_activation(&self) -> Activation {
        Activation::Linear
    }

    fn describe(&self, shared: &SharedConfig) -> String {
        let classes = shared
            .classes
            .map_or("the data's".to_string(), |c| c.to_string());
        format!(
            "semi-supervised VAE (M2) on {classes} classes, {} labelled rows, {}",
            self.labelled,
            self.vae.describe(shared)
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            semi_supervised: true,
            ..Capabilities::default()
        }
    }

    fn build(&self, input: &Resolved, layers: &mut LayersBuilder) -> Result<Arc<dyn Variant>> {
        let classes = input.shared.classes.ok_or_else(|| {
            Error::invalid(
                "the semi-supervised VAE's number of classes is not known: train it on labelled data",
            )
        })?;
        let vae = self.vae.build_conditioned(input, classes, layers)?;
        let mut widths = vec![input.input_dim];
        widths.extend(&self.vae.hidden);
        for (i, w) in widths.windows(2).enumerate() {
            layers.linear(
                format!("{CLASSIFIER_GROUP}.{i}"),
                w[0],
                w[1],
                self.vae.activation,
            )?;
        }
        let last = *widths.last().expect("input");
        layers.linear(CLASS_LOGITS, last, classes, Activation::Linear)?;
        Ok(Arc::new(SsVae {
            vae,
            classes,
            hidden: self.vae.activation,
            class_weight: self.class_weight,
        }))
    }

    fn supervision(&self) -> Option<Supervision> {
        Some(Supervision {
            labelled: self.labelled,
            per_batch: self.labelled_batch,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SsVae {
    /// q(z|x, y) and p(x|y, z): a VAE whose encoder inputs and decoder codes end with y.
    vae: Vae,
    classes: usize,
    hidden: Activation,
    class_weight: f64,
}

impl SsVae {
    fn class_logits(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        let h = layers
            .linears(CLASSIFIER_GROUP)
            .fold(x, |h, l| self.hidden.apply(linear(l, h)));
        linear(layers.linear(CLASS_LOGITS), h)
    }

    /// One one-hot row per class in `classes`.
    fn one_hot(&self, classes: &[usize], device: &burn::tensor::Device) -> Tensor<2> {
        let mut v = Vec::with_capacity(classes.len() * self.classes);
        for &c in classes {
            crate::data::push_with_one_hot(&mut v, &[], c, self.classes);
        }
        Tensor::<2>::from_data(TensorData::new(v, [classes.len(), self.classes]), device)
    }
}

/// Rows `rows` of `t`.
fn select_rows(t: &Tensor<2>, rows: &[usize]) -> Tensor<2> {
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &t.device());
    t.clone().select(0, idx)
}

/// `U(x) = Σ_y q(y|x)·(L(x, y) + log q(y|x))` per row, from the bounds `bound[r, y]` of each
/// class and the classifier's `log q(y|x)`: the expected bound less the entropy.
pub fn marginal_bound(bound: Tensor<2>, log_q: Tensor<2>) -> Tensor<1> {
    (log_q.clone().exp() * (bound + log_q))
        .sum_dim(1)
        .squeeze_dim(1)
}

impl Variant for SsVae {
    /// The mean of q(z|x, y) with y the class probabilities, then those probabilities.
    fn encode(&self, layers: &Layers, x: Tensor<2>) -> Tensor<2> {
        let q = softmax(self.class_logits(layers, x.clone()), 1);
        let (mu, _) = self
            .vae
            .gaussian(layers, Tensor::cat(vec![x, q.clone()], 1));
        Tensor::cat(vec![mu, q], 1)
    }

    /// A code's z and class part go to p(x|y, z) as they are.
    fn decode_logits(&self, layers: &Layers, z: Tensor<2>) -> Tensor<2> {
        self.vae.decode_logits(layers, z)
    }

    fn output_activation(&self) -> Activation {
        self.vae.output_activation()
    }

    fn class_probabilities(&self, layers: &Layers, x: Tensor<2>) -> Option<Tensor<2>> {
        Some(softmax(self.class_logits(layers, x), 1))
    }

    /// The bound of every row, labelled or not, and the weighted cross-entropy of the labelled
    /// ones, per element. A row without a label is taken through the VAE once per class.
    fn objective(&self, net: &Network, batch: Batch, cx: &mut StepContext) -> LossTerms {
        let Batch {
            input,
            target,
            labels,
        } = batch;
        let [n, dim] = target.dims();
        let device = input.device();
        let labels = labels.unwrap_or_else(|| vec![UNLABELLED; n]);
        let (labelled, unlabelled): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&r| labels[r] != UNLABELLED);
        let label_of: Vec<usize> = labelled.iter().map(|&r| labels[r] as usize).collect();
        let (n_l, n_u, k) = (labelled.len(), unlabelled.len(), self.classes);

        // Every (row, class) pair the bound needs: each unlabelled row under every class
        // (class-major), then each labelled row under its own.
        let x_u = select_rows(&input, &unlabelled);
        let x_l = select_rows(&input, &labelled);
        let mut parts_x = Vec::new();
        let mut parts_t = Vec::new();
        let mut pair_classes = Vec::with_capacity(k * n_u + n_l);
        if n_u > 0 {
            parts_x.push(x_u.clone().repeat_dim(0, k));
            parts_t.push(select_rows(&target, &unlabelled).repeat_dim(0, k));
            pair_classes.extend((0..k).flat_map(|c| std::iter::repeat_n(c, n_u)));
        }
        if n_l > 0 {
            parts_x.push(x_l.clone());
            parts_t.push(select_rows(&target, &labelled));
            pair_classes.extend(&label_of);
        }
        let y = self.one_hot(&pair_classes, &device);
        let posterior = self.vae.gaussian(
            &net.layers,
            Tensor::cat(vec![Tensor::cat(parts_x, 0), y.clone()], 1),
        );
        let (recon, kl, _) = sampled_elbo_terms(
            net,
            posterior,
            Tensor::cat(parts_t, 0),
            Some(y),
            cx.config.likelihood(),
            cx.rng,
        );
        let log_classes = (k as f64).ln();
        let beta = self.vae.kl_weight(cx.epochs_done);
        let bound = (recon.clone() + kl.clone().mul_scalar(beta)).add_scalar(log_classes);

        let per_element = |sum: Tensor<1>| sum.div_scalar((n * dim) as f64);
        let zero = || Tensor::<1>::zeros([1], &device);
        let (mut total, mut recon_sum, mut kl_sum) = (zero(), zero(), zero());
        if n_u > 0 {
            let log_q = log_softmax(self.class_logits(&net.layers, x_u), 1);
            let by_class = |t: Tensor<1>| t.narrow(0, 0, k * n_u).reshape([k, n_u]).transpose();
            total = total + marginal_bound(by_class(bound.clone()), log_q.clone()).sum();
            let q = log_q.exp();
            recon_sum = recon_sum + (q.clone() * by_class(recon.clone())).sum();
            kl_sum = kl_sum + (q * by_class(kl.clone())).sum();
        }
        if n_l > 0 {
            let start = k * n_u;
            let log_q = log_softmax(self.class_logits(&net.layers, x_l), 1);
            let cross_entropy = (self.one_hot(&label_of, &device) * log_q).sum().neg();
            total = total
                + bound.narrow(0, start, n_l).sum()
                + cross_entropy.mul_scalar(self.class_weight);
            recon_sum = recon_sum + recon.narrow(0, start, n_l).sum();
            kl_sum = kl_sum + kl.narrow(0, start, n_l).sum();
        }
        LossTerms {
            total: per_element(total),
            recon: per_element(recon_sum),
            kl: Some(per_element(kl_sum)),
        }
    }

    /// Each row's terms are its own: the batch's objective is their mean.
    fn rows_independent(&self, _config: &ModelConfig) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::<2>::from_data(TensorData::new(v, shape), &burn::tensor::Device::flex())
    }

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("floats")
    }

    /// U = Σ q·(L + log q) by hand; and with the same bound a under every class, U = a − H(q),
    /// least (a − log C) at the uniform q.
    #[test]
    fn the_marginal_bound_is_the_expected_bound_less_the_entropy() {
        let q = [0.7f64, 0.2, 0.1];
        let log_q: Vec<f32> = q.iter().map(|p| p.ln() as f32).collect();
        let bound = vec![10.0f32, 12.0, 9.0];
        let got = values(marginal_bound(t2(bound.clone(), [1, 3]), t2(log_q, [1, 3])))[0] as f64;
        let expected: f64 = q
            .iter()
            .zip(&bound)
            .map(|(p, &b)| p * b as f64 + p * p.ln())
            .sum();
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");

        let uniform = vec![(1.0f32 / 3.0).ln(); 3];
        let same = values(marginal_bound(
            t2(vec![5.0; 3], [1, 3]),
            t2(uniform, [1, 3]),
        ))[0];
        assert!((same as f64 - (5.0 - 3f64.ln())).abs() < 1e-5, "{same}");
        let peaked = values(marginal_bound(
            t2(vec![5.0; 3], [1, 3]),
            t2(q.iter().map(|p| p.ln() as f32).collect(), [1, 3]),
        ))[0];
        assert!(peaked > same, "a peaked q pays its lower entropy");
    }
}
