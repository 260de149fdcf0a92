//! The layers every variant builds from, and the container that holds a network's layers by
//! name.
//!
//! - [`spec`]: the layer-spec language (`conv:16:3,maxpool:2,...`), shape inference, mirroring.
//! - [`stack`]: a runtime stack of those layers on flat rows.
//! - [`init`]: seeded initialisation and deterministic parameter ids.
//! - [`activation`]: element-wise activations.
//! - [`tensors`]: named tensors in PyTorch's layout, and host/tensor conversions.
//!
//! A variant creates its layers through a [`LayersBuilder`] under names that are also the
//! prefixes of their tensors in `model.safetensors` (`encoder.0` → `encoder.0.weight`,
//! `encoder.0.bias`), so export and import are the same for every variant.

pub mod activation;
pub mod init;
pub mod spec;
pub mod stack;
pub mod tensors;

use std::collections::{HashMap, HashSet};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};

pub use activation::Activation;
pub use init::{Init, ParamFactory, ParamIds, uniform};
pub use spec::{LayerSpec, Pad, UpMode, infer_shapes, mirror, parse_layers};
pub use stack::{Stack, StackActs, StackPlan, Weights};
pub use tensors::{
    Kernel, NamedTensor, bernoulli_mask, export_kernel, export_linear, fill_missing, import_kernel,
    import_linear, normal_tensor, rows_tensor, target_tensor, tensor_batches, tensor_matrix,
    tensor_values,
};

use crate::error::{Error, Result};

/// One learned layer of a network.
#[derive(Module, Debug)]
pub enum Layer {
    /// A fully connected layer (`NAME.weight` as `[out, in]`, `NAME.bias`).
    Linear(Linear),
    /// A stack of convolution, pooling, upsampling and dense layers (`NAME.I.weight`, ...,
    /// with I the index in the stack's spec, as in a PyTorch `Sequential`).
    Stack(Stack),
    /// A free matrix of parameters (`NAME`), e.g. tied weights or a codebook.
    Matrix(Param<Tensor<2>>),
}

/// A network's layers by name, in creation order.
#[derive(Module, Debug)]
pub struct Layers {
    items: Vec<Layer>,
    #[module(skip)]
    names: Vec<String>,
}

/// Whether layer `name` belongs to `group`: it is the group, or is numbered within it
/// (`encoder.3` is in `encoder`).
fn in_group(name: &str, group: &str) -> bool {
    name == group
        || name
            .strip_prefix(group)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl Layers {
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn get(&self, name: &str) -> Option<&Layer> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.items[i])
    }

    /// The linear layer `name`. Panics if the variant did not build one by that name: a
    /// variant reads only layers it created itself.
    pub fn linear(&self, name: &str) -> &Linear {
        match self.get(name) {
            Some(Layer::Linear(l)) => l,
            _ => panic!("the network has no linear layer '{name}'"),
        }
    }

    /// The names of the layers `group.0`, `group.1`, ... in creation order.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| in_group(n, group) && n.as_str() != group)
            .cloned()
            .collect()
    }

    /// The linear layers `group.0`, `group.1`, ... in creation order.
    pub fn linears<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Linear> + 'a {
        self.names
            .iter()
            .zip(&self.items)
            .filter(move |(n, _)| in_group(n, group) && n.as_str() != group)
            .filter_map(|(_, l)| match l {
                Layer::Linear(l) => Some(l),
                _ => None,
            })
    }

    /// The stack `name`, if the network has one.
    pub fn stack(&self, name: &str) -> Option<&Stack> {
        match self.get(name) {
            Some(Layer::Stack(s)) => Some(s),
            _ => None,
        }
    }

    /// The free matrix `name`. Panics if the variant did not build one by that name.
    pub fn matrix(&self, name: &str) -> Tensor<2> {
        match self.get(name) {
            Some(Layer::Matrix(p)) => p.val(),
            _ => panic!("the network has no matrix '{name}'"),
        }
    }

    /// These layers with the free matrix `name` set to `values` (row-major, same shape),
    /// keeping its parameter id: for updates without gradients, such as moving averages of a
    /// codebook. Panics if the variant did not build a matrix by that name.
    pub fn with_matrix(mut self, name: &str, values: Vec<f32>) -> Self {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("the network has no matrix '{name}'"));
        let Layer::Matrix(p) = &self.items[i] else {
            panic!("layer '{name}' is not a matrix");
        };
        let t = p.val();
        let value = Tensor::<2>::from_data(TensorData::new(values, t.dims()), &t.device());
        self.items[i] = Layer::Matrix(Param::initialized(p.id, value.require_grad()));
        self
    }

    /// The ids of the parameters of the layers in `groups` (names or name prefixes).
    pub fn param_ids(&self, groups: &[String]) -> HashSet<ParamId> {
        struct Ids(HashSet<ParamId>);
        impl ModuleVisitor for Ids {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.insert(param.id);
            }
        }
        let mut ids = Ids(HashSet::new());
        for (name, layer) in self.names.iter().zip(&self.items) {
            if groups.iter().any(|g| in_group(name, g)) {
                layer.visit(&mut ids);
            }
        }
        ids.0
    }

    /// Every weight as a named tensor in PyTorch's layout.
    pub fn export(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for (name, layer) in self.names.iter().zip(&self.items) {
            match layer {
                Layer::Linear(l) => export_linear(name, l, &mut out),
                Layer::Stack(s) => s.export(name, &mut out),
                Layer::Matrix(p) => {
                    let t = p.val();
                    out.push(NamedTensor {
                        name: name.clone(),
                        shape: t.dims().to_vec(),
                        data: tensor_values(t),
                    });
                }
            }
        }
        out
    }

    /// Replaces every weight by the tensor of the same name, keeping the parameter ids.
    pub fn import(self, tensors: &HashMap<String, NamedTensor>) -> Result<Self> {
        let items = self
            .names
            .iter()
            .zip(self.items)
            .map(|(name, layer)| {
                Ok(match layer {
                    Layer::Linear(l) => Layer::Linear(import_linear(name, l, tensors)?),
                    Layer::Stack(s) => Layer::Stack(s.import(name, tensors)?),
                    Layer::Matrix(p) => {
                        let t = p.val();
                        let dims = t.dims();
                        let stored = tensors::take(tensors, name, &dims)?;
                        let value = Tensor::<2>::from_data(
                            TensorData::new(stored.data.clone(), dims),
                            &t.device(),
                        );
                        Layer::Matrix(Param::initialized(p.id, value.require_grad()))
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            items,
            names: self.names,
        })
    }
}

/// Creates a network's layers: seeded values by the initialisation scheme, ids in creation
/// order, names checked unique.
pub struct LayersBuilder<'a> {
    params: ParamFactory<'a>,
    layers: Layers,
}

impl<'a> LayersBuilder<'a> {
    pub fn new(params: ParamFactory<'a>) -> Self {
        Self {
            params,
            layers: Layers {
                items: Vec::new(),
                names: Vec::new(),
            },
        }
    }

    fn push(&mut self, name: String, layer: Layer) -> Result<()> {
        if self.layers.names.contains(&name) {
            return Err(Error::invalid(format!("two layers are named '{name}'")));
        }
        self.layers.names.push(name);
        self.layers.items.push(layer);
        Ok(())
    }

    /// A linear layer `d_in -> d_out`, initialised for the activation that follows it.
    pub fn linear(
        &mut self,
        name: impl Into<String>,
        d_in: usize,
        d_out: usize,
        next: Activation,
    ) -> Result<()> {
        let layer = self.params.linear(d_in, d_out, next)?;
        self.push(name.into(), Layer::Linear(layer))
    }

    /// A stack of `specs` on inputs of `input_shape`; returns its output shape.
    pub fn stack(
        &mut self,
        name: impl Into<String>,
        specs: &[LayerSpec],
        input_shape: &[usize],
        acts: StackActs,
    ) -> Result<Vec<usize>> {
        let stack = Stack::init(specs, input_shape, acts, &mut self.params)?;
        let out = stack.plan.output_shape.clone();
        self.push(name.into(), Layer::Stack(stack))?;
        Ok(out)
    }

    /// A free `[rows, cols]` matrix drawn from U(-bound, bound).
    pub fn matrix(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        bound: f32,
    ) -> Result<()> {
        let p = self.params.matrix(rows, cols, bound)?;
        self.push(name.into(), Layer::Matrix(p))
    }

    /// The device the layers are created on.
    pub fn device(&self) -> &Device {
        self.params.device()
    }

    pub fn finish(self) -> Layers {
        self.layers
    }
}
