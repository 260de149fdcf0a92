//! A classifier on an autoencoder's encoder — the lectures' "unsupervised pretraining": the
//! features an autoencoder learnt from unlabelled data, followed by a head of linear layers
//! that gives class logits, trained (fine-tuned) with the labels there are.

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::batch::rng_for;
use crate::error::{Error, Result};
use crate::kernels::linear::linear;
use crate::model::layers::{Init, Layers, LayersBuilder, ParamFactory};
use crate::model::{Activation, Network};

/// The layer group a head's layers are named in (`head.0.weight`, ...).
pub const HEAD_GROUP: &str = "head";
/// A head's parameter ids start after this: far above any network's, so that the optimiser's
/// state, keyed by id, never mixes a head parameter with an encoder parameter.
const HEAD_IDS_AFTER: u64 = 1 << 40;
/// The draws a head is initialised from (the network's own come from stream 3).
const HEAD_INIT_STREAM: u64 = 1 << 45;
/// The activation between a multilayer head's layers.
const HEAD_HIDDEN: Activation = Activation::Relu;

/// What follows the encoder: one linear layer (softmax regression on the codes), or a
/// multilayer perceptron with ReLU hidden layers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Head {
    #[default]
    Linear,
    /// Hidden widths, e.g. `mlp:256` or `mlp:256,128`.
    Mlp(Vec<usize>),
}

impl FromStr for Head {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "linear" {
            return Ok(Head::Linear);
        }
        let bad = || {
            Error::invalid(format!(
                "head '{s}': use linear or mlp:WIDTH[,WIDTH...] with whole widths ≥ 1, e.g. mlp:256"
            ))
        };
        let widths = s.strip_prefix("mlp:").ok_or_else(bad)?;
        let widths = widths
            .split(',')
            .map(|w| w.trim().parse::<usize>().ok().filter(|w| *w >= 1))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?;
        Ok(Head::Mlp(widths))
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Head::Linear => write!(f, "linear"),
            Head::Mlp(widths) => {
                let w: Vec<String> = widths.iter().map(usize::to_string).collect();
                write!(f, "mlp:{}", w.join(","))
            }
        }
    }
}

impl TryFrom<String> for Head {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Head> for String {
    fn from(h: Head) -> String {
        h.to_string()
    }
}

impl Head {
    /// The head's layers for codes of `code_width` and `classes` classes, drawn from `seed`,
    /// on `device` (the autodiff one, for training).
    pub fn build(
        &self,
        code_width: usize,
        classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Layers> {
        if classes < 2 {
            return Err(Error::invalid(format!(
                "a classifier needs at least 2 classes in its labels, found {classes}"
            )));
        }
        let params = ParamFactory::new(rng_for(seed, HEAD_INIT_STREAM), Init::Auto, device)
            .with_ids_after(HEAD_IDS_AFTER);
        let mut builder = LayersBuilder::new(params);
        let hidden = match self {
            Head::Linear => &[][..],
            Head::Mlp(widths) => widths.as_slice(),
        };
        let mut width = code_width;
        for (i, &h) in hidden.iter().enumerate() {
            builder.linear(format!("{HEAD_GROUP}.{i}"), width, h, HEAD_HIDDEN)?;
            width = h;
        }
        builder.linear(
            format!("{HEAD_GROUP}.{}", hidden.len()),
            width,
            classes,
            Activation::Linear,
        )?;
        Ok(builder.finish())
    }
}

/// Class logits of codes `z` through `head`'s layers.
pub fn head_logits(head: &Layers, z: Tensor<2>) -> Tensor<2> {
    let layers: Vec<_> = head.linears(HEAD_GROUP).collect();
    let last = layers.len().saturating_sub(1);
    let mut h = z;
    for (i, l) in layers.into_iter().enumerate() {
        h = linear(l, h);
        if i < last {
            h = HEAD_HIDDEN.apply(h);
        }
    }
    h
}

/// Class probabilities of rows `x` (in the model's scale) by `model`'s encoder and `head`,
/// without gradients, split over the cores as the model's other outputs are.
pub fn probabilities(
    model: &crate::model::Autoencoder,
    head: &Layers,
    x: &crate::data::Matrix,
) -> Result<crate::data::Matrix> {
    model.check_inputs(x)?;
    let head = head.valid();
    let classes = head
        .linears(HEAD_GROUP)
        .last()
        .map_or(0, |l| l.weight.val().dims()[1]);
    model.map_batches(x, classes, |net, t| {
        burn::tensor::activation::softmax(head_logits(&head, net.encode(t)), 1)
    })
}

/// The most probable class of each row of class scores (logits or probabilities); the last
/// on ties.
pub fn predicted_classes(scores: &crate::data::Matrix) -> Vec<u32> {
    (0..scores.rows)
        .map(|r| {
            let row = scores.row(r);
            (0..row.len())
                .max_by(|a, b| row[*a].total_cmp(&row[*b]))
                .unwrap_or(0) as u32
        })
        .collect()
}

/// An encoder and its head, the module a fine-tuning step updates. The network keeps its
/// decoder (untouched: it gets no gradient), so that a classifier run is still a run whose
/// codes can be drawn and explored.
#[derive(Module, Debug)]
pub struct Classifier {
    pub net: Network,
    pub head: Layers,
}

impl Classifier {
    /// Class logits of inputs `x`.
    pub fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        head_logits(&self.head, self.net.encode(x))
    }

    /// Class logits as a training step computes them (the encoder's dropout drawn from `rng`);
    /// with `encoder_frozen` the codes are cut from the graph, so only the head learns.
    pub fn logits_training(
        &self,
        x: Tensor<2>,
        rng: &mut ChaCha8Rng,
        encoder_frozen: bool,
    ) -> Tensor<2> {
        let z = self.net.encode_training(x, rng);
        let z = if encoder_frozen { z.detach() } else { z };
        head_logits(&self.head, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_and_print_back() {
        for s in ["linear", "mlp:256", "mlp:64,32"] {
            assert_eq!(s.parse::<Head>().unwrap().to_string(), s);
        }
        for bad in ["", "mlp", "mlp:", "mlp:0", "mlp:a", "conv"] {
            let e = bad.parse::<Head>().unwrap_err().to_string();
            assert!(e.contains("linear or mlp:WIDTH"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_head_has_its_widths_and_ids_apart_from_the_network() {
        let device = Device::flex();
        let head = Head::Mlp(vec![8])
            .build(3, 4, 0, &device.clone().autodiff())
            .unwrap();
        let names: Vec<_> = head
            .export()
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect();
        assert_eq!(
            names,
            vec![
                ("head.0.weight".to_string(), vec![8, 3]),
                ("head.0.bias".to_string(), vec![8]),
                ("head.1.weight".to_string(), vec![4, 8]),
                ("head.1.bias".to_string(), vec![4]),
            ]
        );
        let ids = head.param_ids(&[HEAD_GROUP.to_string()]);
        assert!(ids.iter().all(|id| id.val() > HEAD_IDS_AFTER));
        assert!(Head::Linear.build(3, 1, 0, &device).is_err());
    }
}
