//! A discriminator on codes, shared by the adversarial variants: an MLP from a code to one
//! logit, trained by its own optimiser step (the training loop's seam, [`ExtraStep`]) to tell
//! "real" codes from "fake" ones — a FactorVAE's codes from their dimension-wise shuffle, an
//! adversarial autoencoder's prior draws from its codes.

use burn::tensor::{Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::kernels::linear::linear;
use crate::model::Activation;
use crate::model::layers::{Layers, LayersBuilder};
use crate::model::loss::bce_with_logits;
use crate::model::variant::ExtraStep;

/// The hidden widths variants default to (the FactorVAE paper's discriminator is wider and
/// deeper: six layers of 1000).
pub fn default_hidden() -> Vec<usize> {
    vec![1000, 1000]
}

/// Refuses hidden widths the discriminator cannot be built with.
pub fn check_hidden(hidden: &[usize]) -> Result<()> {
    if hidden.contains(&0) {
        return Err(crate::error::Error::invalid(
            "discriminator widths must be at least 1",
        ));
    }
    Ok(())
}

/// The name (and prefix) of the discriminator's layers; the extra step owns them all.
pub const LAYERS: &str = "discriminator";

/// Slope of the hidden units' leaky rectifier (as the FactorVAE and AAE papers' MLPs).
const HIDDEN: Activation = Activation::LeakyRelu;

/// Creates the layers `discriminator.0..` from a code of `latent` values through `hidden`
/// widths to one logit.
pub fn build(layers: &mut LayersBuilder, latent: usize, hidden: &[usize]) -> Result<()> {
    let mut widths = vec![latent];
    widths.extend(hidden);
    widths.push(1);
    let last = widths.len() - 2;
    for (i, w) in widths.windows(2).enumerate() {
        let next = if i == last {
            Activation::Linear
        } else {
            HIDDEN
        };
        layers.linear(format!("{LAYERS}.{i}"), w[0], w[1], next)?;
    }
    Ok(())
}

/// The optimiser step that trains the discriminator, named `name` in checkpoints.
pub fn step(name: &'static str) -> ExtraStep {
    ExtraStep {
        name,
        layers: vec![LAYERS.into()],
    }
}

/// The discriminator's logit for each code, `[rows]`: log D(z) / (1 − D(z)).
pub fn logits(layers: &Layers, z: Tensor<2>) -> Tensor<1> {
    let all: Vec<_> = layers.linears(LAYERS).collect();
    let last = all.len() - 1;
    let mut h = z;
    for (i, l) in all.into_iter().enumerate() {
        h = linear(l, h);
        if i < last {
            h = HIDDEN.apply(h);
        }
    }
    let [n, _] = h.dims();
    h.reshape([n])
}

/// The discriminator's loss: binary cross-entropy with `real` codes labelled 1 and `fake`
/// codes 0, each half averaged over its rows.
pub fn loss(layers: &Layers, real: Tensor<2>, fake: Tensor<2>) -> Tensor<1> {
    let side = |z: Tensor<2>, label: f32| {
        let l = logits(layers, z);
        let target = l.zeros_like().add_scalar(label);
        bce_with_logits(l, target).mean()
    };
    side(real, 1.0) + side(fake, 0.0)
}

/// `z` with each column shuffled across the rows independently (draws from `rng`): samples
/// of the product of the marginals, the "fake" side of a FactorVAE's discriminator.
pub fn permute_dims(z: Tensor<2>, rng: &mut ChaCha8Rng) -> Tensor<2> {
    let [n, d] = z.dims();
    let mut idx = vec![0i64; n * d];
    for j in 0..d {
        let mut order: Vec<i64> = (0..n as i64).collect();
        order.shuffle(rng);
        for (i, &o) in order.iter().enumerate() {
            idx[i * d + j] = o;
        }
    }
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n, d]), &z.device());
    z.gather(0, idx)
}
