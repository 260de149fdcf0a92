//! The trainable network of any variant: its named layers (the burn module the optimiser
//! updates) and the variant's forward logic.

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::model::layers::{Layers, NamedTensor};
use crate::model::objective::{self, LossTerms};
use crate::model::variant::{Batch, StepContext, Variant};
use crate::model::{Activation, ModelConfig};

/// How far from 0 and 1 a residual model's input is clamped before its logit is taken (under a
/// sigmoid output); exporters repeat the skip with this value (see [`crate::model::graph`]).
pub const SKIP_CLAMP: f64 = 1e-4;

#[derive(Module, Debug)]
pub struct Network {
    pub layers: Layers,
    #[module(skip)]
    variant: Arc<dyn Variant>,
}

impl Network {
    pub fn new(layers: Layers, variant: Arc<dyn Variant>) -> Self {
        Self { layers, variant }
    }

    pub fn variant(&self) -> &dyn Variant {
        self.variant.as_ref()
    }

    /// The forward logic as a handle that outlives this value (to pass the network on).
    pub fn variant_handle(&self) -> Arc<dyn Variant> {
        self.variant.clone()
    }

    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.variant.encode(&self.layers, x)
    }

    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<2> {
        self.variant.decode_logits(&self.layers, z)
    }

    /// [`Self::encode`] as the training step runs it (with dropout where the variant has it).
    pub fn encode_training(&self, x: Tensor<2>, rng: &mut ChaCha8Rng) -> Tensor<2> {
        self.variant.encode_training(&self.layers, x, rng)
    }

    /// [`Self::decode_logits`] as the training step runs it.
    pub fn decode_logits_training(&self, z: Tensor<2>, rng: &mut ChaCha8Rng) -> Tensor<2> {
        self.variant.decode_logits_training(&self.layers, z, rng)
    }

    pub fn output_activation(&self) -> Activation {
        self.variant.output_activation()
    }

    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        self.output_activation().apply(self.decode_logits(z))
    }

    /// The class one-hot a conditional network's inputs `x` end with; `None` for others.
    pub fn condition_of(&self, x: &Tensor<2>) -> Option<Tensor<2>> {
        let width = self.variant.condition_width();
        let [_, cols] = x.dims();
        (width > 0).then(|| x.clone().narrow(1, cols - width, width))
    }

    /// The decoder's input for codes `z` of inputs whose condition is `condition`: the codes
    /// with the class one-hot appended, or the codes alone for an unconditional network.
    pub fn conditioned_code(z: Tensor<2>, condition: Option<Tensor<2>>) -> Tensor<2> {
        match condition {
            Some(c) => Tensor::cat(vec![z, c], 1),
            None => z,
        }
    }

    /// The input as output logits: the identity, or the inverse sigmoid under a sigmoid
    /// output (clamped to [`SKIP_CLAMP`, 1 − `SKIP_CLAMP`] so that 0 and 1 stay finite).
    pub(crate) fn skip(&self, x: Tensor<2>) -> Tensor<2> {
        match self.output_activation() {
            Activation::Sigmoid => {
                let p = x.clamp(SKIP_CLAMP, 1.0 - SKIP_CLAMP);
                (p.clone() / (p.neg().add_scalar(1.0))).log()
            }
            _ => x,
        }
    }

    /// The output for inputs `x`: `decode(encode(x))`, plus the input for residual models.
    pub fn restore(&self, x: Tensor<2>, residual: bool) -> Tensor<2> {
        if !residual {
            let condition = self.condition_of(&x);
            return self.decode(Self::conditioned_code(self.encode(x), condition));
        }
        let logits = self.decode_logits(self.encode(x.clone())) + self.skip(x);
        self.output_activation().apply(logits)
    }

    /// `‖∂h/∂x‖²_F` averaged over the batch `x` (see [`objective::jacobian_frobenius_sq`]).
    pub fn jacobian_frobenius_sq(
        &self,
        x: Tensor<2>,
        projections: usize,
        rng: &mut ChaCha8Rng,
    ) -> Tensor<1> {
        objective::jacobian_frobenius_sq(self, x, projections, rng)
    }

    /// The training objective of `config` on one batch (the variant's). `rng` draws what the
    /// objective samples; `epochs_done` drives warm-up schedules. The batch stands for a data
    /// set of its own size (see [`Self::objective_in`]).
    pub fn objective(
        &self,
        input: Tensor<2>,
        target: Tensor<2>,
        config: &ModelConfig,
        rng: &mut ChaCha8Rng,
        epochs_done: f64,
    ) -> LossTerms {
        let rows = input.dims()[0];
        let batch = Batch::unlabelled(input, target);
        self.objective_in(batch, config, rng, epochs_done, rows)
    }

    /// [`Self::objective`] of a batch drawn from a training set of `dataset_size` samples.
    pub fn objective_in(
        &self,
        batch: Batch,
        config: &ModelConfig,
        rng: &mut ChaCha8Rng,
        epochs_done: f64,
        dataset_size: usize,
    ) -> LossTerms {
        let mut cx = StepContext {
            config,
            rng,
            epochs_done,
            dataset_size,
        };
        self.variant.objective(self, batch, &mut cx)
    }

    pub fn export(&self) -> Vec<NamedTensor> {
        self.layers.export()
    }

    pub fn import(self, tensors: &HashMap<String, NamedTensor>) -> Result<Self> {
        Ok(Self {
            layers: self.layers.import(tensors)?,
            variant: self.variant,
        })
    }
}
