//! A run as an ONNX model (opset 17, a dynamic batch axis), with nothing left outside: raw
//! inputs in, the run's preprocessing, the network of its `graph` (see
//! [`crate::model::graph`]), and codes, outputs in the raw scale or anomaly scores out — as
//! aekit computes them. The graph is built as ONNX's protobuf messages (`onnx-protobuf`,
//! generated from the official `onnx.proto`); ONNX Runtime checks it in the tests.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{EnumOrUnknown, MessageField};

use crate::error::{Error, Result};
use crate::eval::anomaly::{AnomalyDetector, ScoreKind};
use crate::model::columns::{OutputColumns, OutputKind};
use crate::model::graph::{Graph, Node, ResizeMode};
use crate::model::{Activation, NamedTensor, ReconLoss};
use crate::run::Run;

/// The operator set the graphs use: one every current ONNX Runtime runs.
pub const OPSET: i64 = 17;
/// How a typed table's row becomes the graph's input `x`, for its metadata.
pub const TYPED_ROWS: &str = "each column's features from its start: a number in its own units, a boolean 0 or 1, a category's one-hot over its levels (a value not among them: the last level, '(other)'); NaN for every feature of a missing value";
/// The IR version of opset 17.
const IR_VERSION: i64 = 8;

/// What an exported model computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum Part {
    /// Raw rows `x` → the run's preprocessing → `code` (a VAE's posterior mean; a VQ-VAE's
    /// quantised grid, and `indices`, its codebook entries).
    Encoder,
    /// Codes `z` → `output` in the raw scale.
    Decoder,
    /// Raw rows `x` → `reconstruction` in the raw scale.
    #[default]
    Reconstruct,
    /// Raw rows `x` → `score` per row, `feature_errors` per feature (in the model's scale,
    /// summed into the score; a typed table's loss: `column_scores`, each column's share) and
    /// `anomaly` (score above the threshold).
    Score,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Encoder => "encoder",
            Part::Decoder => "decoder",
            Part::Reconstruct => "reconstruct",
            Part::Score => "score",
        }
    }
}

/// Parses a part or a score kind by its name (as the command line spells it), the error
/// listing the names there are: for front ends without clap (Python).
pub fn parse_name<T: clap::ValueEnum>(what: &str, name: &str) -> Result<T> {
    T::from_str(name, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        Error::invalid(format!(
            "{what} '{name}': expected one of {}",
            names.join(", ")
        ))
    })
}

/// The graph under construction: nodes, initialisers, and the run's tensors to draw from.
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    weights: HashMap<String, NamedTensor>,
    added: HashSet<String>,
    next: usize,
}

fn attribute(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        type_: EnumOrUnknown::new(kind),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: v,
        ..attribute(name, AttributeType::INT)
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attribute(name, AttributeType::INTS)
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: v,
        ..attribute(name, AttributeType::FLOAT)
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: v.as_bytes().to_vec(),
        ..attribute(name, AttributeType::STRING)
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

impl Builder {
    fn new(weights: Vec<NamedTensor>) -> Self {
        Self {
            nodes: Vec::new(),
            initializers: Vec::new(),
            weights: weights.into_iter().map(|t| (t.name.clone(), t)).collect(),
            added: HashSet::new(),
            next: 0,
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Node `op` on `inputs` with one new output, returned.
    fn op(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.op_into(op, inputs, attributes, &out);
        out
    }

    /// Node `op` on `inputs` writing `output`.
    fn op_into(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>, out: &str) {
        let name = self.fresh(op);
        self.nodes.push(NodeProto {
            op_type: op.to_string(),
            name,
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            attribute: attributes,
            ..Default::default()
        });
    }

    /// The run's tensor `name` as an initialiser (once), and its shape.
    fn weight(&mut self, name: &str) -> Result<(String, Vec<usize>)> {
        let tensor = self.weights.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "the graph uses a tensor '{name}' the model does not hold"
            ))
        })?;
        let shape = tensor.shape.clone();
        if self.added.insert(name.to_string()) {
            let proto = TensorProto {
                name: name.to_string(),
                dims: dims(&tensor.shape),
                data_type: DataType::FLOAT as i32,
                float_data: tensor.data.clone(),
                ..Default::default()
            };
            self.initializers.push(proto);
        }
        Ok((name.to_string(), shape))
    }

    fn floats(&mut self, hint: &str, shape: &[usize], values: Vec<f32>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims(shape),
            data_type: DataType::FLOAT as i32,
            float_data: values,
            ..Default::default()
        });
        name
    }

    fn scalar(&mut self, hint: &str, v: f32) -> String {
        self.floats(hint, &[], vec![v])
    }

    fn int64s(&mut self, hint: &str, values: Vec<i64>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![values.len() as i64],
            data_type: DataType::INT64 as i32,
            int64_data: values,
            ..Default::default()
        });
        name
    }

    fn activation(&mut self, x: &str, function: Activation) -> String {
        match function {
            Activation::Relu => self.op("Relu", &[x], vec![]),
            Activation::LeakyRelu => self.op("LeakyRelu", &[x], vec![float("alpha", 0.01)]),
            Activation::Sigmoid => self.op("Sigmoid", &[x], vec![]),
            Activation::Tanh => self.op("Tanh", &[x], vec![]),
            Activation::Elu => self.op("Elu", &[x], vec![float("alpha", 1.0)]),
            Activation::Silu => {
                let s = self.op("Sigmoid", &[x], vec![]);
                self.op("Mul", &[x, &s], vec![])
            }
            // Opset 17 has no Gelu: x · Φ(x) with Φ from Erf, the exact form aekit computes.
            Activation::Gelu => {
                let root2 = self.scalar("sqrt2", std::f32::consts::SQRT_2);
                let (one, half) = (self.scalar("one", 1.0), self.scalar("half", 0.5));
                let scaled = self.op("Div", &[x, &root2], vec![]);
                let erf = self.op("Erf", &[&scaled], vec![]);
                let phi = self.op("Add", &[&erf, &one], vec![]);
                let xphi = self.op("Mul", &[x, &phi], vec![]);
                self.op("Mul", &[&xphi, &half], vec![])
            }
            Activation::Linear => x.to_string(),
        }
    }

    /// Columns `start..start + width` of a `[rows, cols]` value.
    fn columns(&mut self, x: &str, start: usize, width: usize) -> String {
        let from = self.int64s("from", vec![start as i64]);
        let to = self.int64s("to", vec![(start + width) as i64]);
        let axis = self.int64s("axis", vec![1]);
        self.op("Slice", &[x, &from, &to, &axis], vec![])
    }

    fn concat_columns(&mut self, parts: &[String]) -> String {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.op("Concat", &parts, vec![int("axis", 1)])
    }

    /// Binary cross-entropy of probabilities `p` (clamped as aekit clamps them) against
    /// targets `t`, element by element.
    fn bce(&mut self, p: &str, t: &str) -> String {
        let c = crate::model::loss::BCE_CLAMP;
        let (lo, hi) = (
            self.scalar("lo", c as f32),
            self.scalar("hi", (1.0 - c) as f32),
        );
        let p = self.op("Clip", &[p, &lo, &hi], vec![]);
        let one = self.scalar("one", 1.0);
        let q = self.op("Sub", &[&one, &p], vec![]);
        let (lp, lq) = (self.op("Log", &[&p], vec![]), self.op("Log", &[&q], vec![]));
        let t_not = self.op("Sub", &[&one, t], vec![]);
        let a = self.op("Mul", &[t, &lp], vec![]);
        let b = self.op("Mul", &[&t_not, &lq], vec![]);
        let sum = self.op("Add", &[&a, &b], vec![]);
        self.op("Neg", &[&sum], vec![])
    }

    /// A typed table's outputs as aekit activates them: numbers as they are, a boolean's
    /// sigmoid, a softmax over each categorical column's levels.
    fn typed_activation(&mut self, logits: &str, columns: &OutputColumns) -> String {
        let parts: Vec<String> = columns
            .groups
            .iter()
            .map(|g| {
                let l = self.columns(logits, g.start, g.width);
                match g.kind {
                    OutputKind::Numeric => l,
                    OutputKind::Boolean => self.op("Sigmoid", &[&l], vec![]),
                    OutputKind::Categorical => self.op("Softmax", &[&l], vec![int("axis", 1)]),
                }
            })
            .collect();
        self.concat_columns(&parts)
    }

    /// Each column's weighted loss `[rows, columns]` — the shares of the score — of the
    /// activated outputs `out` against the rows `target` in the model's scale (`missing`
    /// where they are NaN: that column's share is 0), as [`OutputColumns::column_shares`]
    /// computes them.
    fn typed_shares(
        &mut self,
        out: &str,
        target: &str,
        missing: &str,
        columns: &OutputColumns,
    ) -> String {
        let zero = self.scalar("zero", 0.0);
        let t = self.op("Where", &[missing, &zero, target], vec![]);
        let given = self.op("Not", &[missing], vec![]);
        let present = self.op("Cast", &[&given], vec![int("to", DataType::FLOAT as i64)]);
        let parts: Vec<String> = columns
            .groups
            .iter()
            .map(|g| {
                let o = self.columns(out, g.start, g.width);
                let tg = self.columns(&t, g.start, g.width);
                let loss = match g.kind {
                    OutputKind::Numeric => {
                        let d = self.op("Sub", &[&o, &tg], vec![]);
                        self.op("Mul", &[&d, &d], vec![])
                    }
                    OutputKind::Boolean => self.bce(&o, &tg),
                    OutputKind::Categorical => {
                        let both = self.op("Mul", &[&o, &tg], vec![]);
                        let axis = self.int64s("axis", vec![1]);
                        let p = self.op("ReduceSum", &[&both, &axis], vec![int("keepdims", 1)]);
                        let lo = self.scalar("lo", crate::model::loss::BCE_CLAMP as f32);
                        let p = self.op("Max", &[&p, &lo], vec![]);
                        let log = self.op("Log", &[&p], vec![]);
                        self.op("Neg", &[&log], vec![])
                    }
                };
                let keep = self.columns(&present, g.start, 1);
                let kept = self.op("Mul", &[&loss, &keep], vec![]);
                let weight = self.scalar("weight", g.weight);
                self.op("Mul", &[&kept, &weight], vec![])
            })
            .collect();
        self.concat_columns(&parts)
    }

    /// A convolution `op` (`Conv`, `ConvTranspose`) of `x` by the run's tensors `(weight,
    /// bias)`, square strides, `pads` `[top, left, bottom, right]`, and `extra` attributes.
    fn convolution(
        &mut self,
        op: &str,
        x: &str,
        (weight, bias): (&str, &str),
        stride: usize,
        pads: [usize; 4],
        extra: Vec<AttributeProto>,
    ) -> Result<String> {
        let (w, shape) = self.weight(weight)?;
        let (b, _) = self.weight(bias)?;
        let s = stride as i64;
        let mut attributes = vec![
            ints("kernel_shape", &dims(&shape[2..])),
            ints("strides", &[s, s]),
            ints("pads", &dims(&pads)),
        ];
        attributes.extend(extra);
        Ok(self.op(op, &[x, &w, &b], attributes))
    }

    /// `nodes` applied to `x` (and the classes `y`); a quantisation's indices go to `indices`.
    fn path(
        &mut self,
        nodes: &[Node],
        mut x: String,
        y: Option<&str>,
        indices: &mut Option<String>,
    ) -> Result<String> {
        for node in nodes {
            x = match node {
                Node::Linear { weight, bias } => {
                    let (w, _) = self.weight(weight)?;
                    let (b, _) = self.weight(bias)?;
                    self.op("Gemm", &[&x, &w, &b], vec![int("transB", 1)])
                }
                Node::Activation { function } => self.activation(&x, *function),
                Node::Conv {
                    weight,
                    bias,
                    stride,
                    pads,
                } => self.convolution("Conv", &x, (weight, bias), *stride, *pads, vec![])?,
                Node::ConvTranspose {
                    weight,
                    bias,
                    stride,
                    pads,
                    output_padding,
                } => {
                    let [h, w] = *pads;
                    let extra = vec![ints("output_padding", &dims(output_padding))];
                    let (tensors, pads) = ((weight.as_str(), bias.as_str()), [h, w, h, w]);
                    self.convolution("ConvTranspose", &x, tensors, *stride, pads, extra)?
                }
                Node::MaxPool { size, pads } | Node::AvgPool { size, pads } => {
                    let k = *size as i64;
                    let mut attributes = vec![
                        ints("kernel_shape", &[k, k]),
                        ints("strides", &[k, k]),
                        ints("pads", &dims(pads)),
                    ];
                    if matches!(node, Node::MaxPool { .. }) {
                        self.op("MaxPool", &[&x], attributes)
                    } else {
                        // Padding is not counted in the average (ONNX's default, said here).
                        attributes.push(int("count_include_pad", 0));
                        self.op("AveragePool", &[&x], attributes)
                    }
                }
                Node::Resize { size, mode } => {
                    // Sizes of the batch and channel axes as they come, then [H, W].
                    let shape = self.op("Shape", &[&x], vec![]);
                    let (start, end) = (self.int64s("start", vec![0]), self.int64s("end", vec![2]));
                    let lead = self.op("Slice", &[&shape, &start, &end], vec![]);
                    let hw = self.int64s("hw", dims(size));
                    let sizes = self.op("Concat", &[&lead, &hw], vec![int("axis", 0)]);
                    let attributes = match mode {
                        // PyTorch's nearest: the pixel at floor(i · in / out).
                        ResizeMode::Nearest => vec![
                            string("mode", "nearest"),
                            string("coordinate_transformation_mode", "asymmetric"),
                            string("nearest_mode", "floor"),
                        ],
                        ResizeMode::Bilinear => vec![
                            string("mode", "linear"),
                            string("coordinate_transformation_mode", "pytorch_half_pixel"),
                        ],
                    };
                    self.op("Resize", &[&x, "", "", &sizes], attributes)
                }
                Node::Reshape { shape } => {
                    // 0 keeps the batch axis as it comes.
                    let target =
                        self.int64s("shape", std::iter::once(0).chain(dims(shape)).collect());
                    self.op("Reshape", &[&x, &target], vec![])
                }
                Node::AppendClass { classes } => {
                    let y = y.ok_or_else(|| {
                        Error::invalid("a conditional model's graph needs the classes y")
                    })?;
                    let depth = self.int64s("depth", vec![*classes as i64]);
                    let values = self.floats("onehot_values", &[2], vec![0.0, 1.0]);
                    let onehot = self.op("OneHot", &[y, &depth, &values], vec![int("axis", -1)]);
                    self.op("Concat", &[&x, &onehot], vec![int("axis", 1)])
                }
                Node::Quantize { codebook } => {
                    let (e, shape) = self.weight(codebook)?;
                    let width = shape[1] as i64;
                    // [N, C, H, W] → one row per position: [N, P, C].
                    let grid = self.int64s("grid", vec![0, width, -1]);
                    let flat = self.op("Reshape", &[&x, &grid], vec![]);
                    let v = self.op("Transpose", &[&flat], vec![ints("perm", &[0, 2, 1])]);
                    // ‖v − e‖² less ‖v‖² (the same for every entry): ‖e‖² − 2 v·e.
                    let e_sq = self.op("Mul", &[&e, &e], vec![]);
                    let axis = self.int64s("axis", vec![1]);
                    let e_norm = self.op("ReduceSum", &[&e_sq, &axis], vec![int("keepdims", 0)]);
                    let e_t = self.op("Transpose", &[&e], vec![ints("perm", &[1, 0])]);
                    let dot = self.op("MatMul", &[&v, &e_t], vec![]);
                    let two = self.scalar("two", 2.0);
                    let twice = self.op("Mul", &[&dot, &two], vec![]);
                    let dist = self.op("Sub", &[&e_norm, &twice], vec![]);
                    let idx = self.op("ArgMin", &[&dist], vec![int("axis", 2), int("keepdims", 0)]);
                    *indices = Some(idx.clone());
                    let q = self.op("Gather", &[&e, &idx], vec![int("axis", 0)]);
                    let back = self.op("Transpose", &[&q], vec![ints("perm", &[0, 2, 1])]);
                    let like = self.op("Shape", &[&x], vec![]);
                    self.op("Reshape", &[&back, &like], vec![])
                }
            };
        }
        Ok(x)
    }
}

fn value_info(name: &str, elem: DataType, shape: &[Option<usize>]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => dimension::Value::DimValue(*n as i64),
                None => dimension::Value::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: elem as i32,
        shape: MessageField::some(TensorShapeProto {
            dim,
            ..Default::default()
        }),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.to_string(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The detector a score graph thresholds with: the one given, else the one stored with the
/// run at training.
fn score_detector(run: &Run, given: Option<&AnomalyDetector>) -> Result<AnomalyDetector> {
    match given {
        Some(d) => Ok(d.clone()),
        None => AnomalyDetector::stored(run)?.ok_or_else(|| {
            Error::invalid(format!(
                "{}: no stored anomaly threshold to export the score with; give --threshold",
                run.dir.path.display()
            ))
        }),
    }
}

/// What a score graph sums into a row's score.
enum ScoreLoss {
    /// A loss per feature (`feature_errors`).
    Features(ReconLoss),
    /// A typed table's weighted loss per column (`column_scores`).
    Typed(OutputColumns),
}

/// A graph's rows in the model's scale: as given (`prepared`), as the encoder takes them
/// (`fed`), and where they are missing (NaN), for a typed table's.
struct PreparedRows {
    prepared: String,
    fed: String,
    missing: Option<String>,
}

/// `run` as an ONNX model computing `part`; a score graph thresholds with `detector` (else the
/// run's stored one).
pub fn model(run: &Run, part: Part, detector: Option<&AnomalyDetector>) -> Result<ModelProto> {
    let graph: Graph = run.model.graph()?;
    // A typed table's outputs are logits per column, each activated by its own likelihood.
    let typed = run.model.config().columns().cloned();
    let takes_rows = part != Part::Decoder;
    if takes_rows && run.config.data.binarize {
        return Err(Error::invalid(format!(
            "{}: a run trained on binarised inputs draws each input's bits at random, which a \
             graph cannot repeat; export --part decoder",
            run.dir.path.display()
        )));
    }
    let detector = match part {
        Part::Score => Some(score_detector(run, detector)?),
        _ => None,
    };
    let score_loss = match detector.as_ref().map(|d| d.kind) {
        Some(ScoreKind::NegativeElbo) => {
            return Err(Error::invalid(
                "--score negative-elbo draws a posterior sample, which a graph cannot repeat; \
                 export the squared-error or loss score",
            ));
        }
        Some(ScoreKind::Loss) => Some(match &typed {
            Some(columns) => ScoreLoss::Typed(columns.clone()),
            None => ScoreLoss::Features(run.model.config().loss()),
        }),
        Some(ScoreKind::SquaredError) => Some(ScoreLoss::Features(ReconLoss::Mse)),
        None => None,
    };
    let mut b = Builder::new(run.model.export());
    let y = (graph.classes > 0).then_some("y");
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let offset = b.floats(
        "offset",
        &[run.preprocessor.offset.len()],
        run.preprocessor.offset.clone(),
    );
    let scale = b.floats(
        "scale",
        &[run.preprocessor.scale.len()],
        run.preprocessor.scale.clone(),
    );
    let width = graph.input_width;
    let mut indices = None;

    // Raw rows to the model's scale, and the code.
    let (code, prepared) = if takes_rows {
        inputs.push(value_info("x", DataType::FLOAT, &[None, Some(width)]));
        let centred = b.op("Sub", &["x", &offset], vec![]);
        let prepared = b.op("Mul", &[&centred, &scale], vec![]);
        // A typed row's missing values (NaN) reach the encoder as 0, as in aekit.
        let missing = typed.as_ref().map(|_| b.op("IsNaN", &[&prepared], vec![]));
        let fed = match &missing {
            Some(missing) => {
                let zero = b.scalar("zero", 0.0);
                b.op("Where", &[missing, &zero, &prepared], vec![])
            }
            None => prepared.clone(),
        };
        let code = b.path(&graph.encoder, fed.clone(), y, &mut indices)?;
        (
            code,
            Some(PreparedRows {
                prepared,
                fed,
                missing,
            }),
        )
    } else {
        inputs.push(value_info(
            "z",
            DataType::FLOAT,
            &[None, Some(graph.code_width)],
        ));
        ("z".to_string(), None)
    };
    if y.is_some() {
        inputs.push(value_info("y", DataType::INT64, &[None]));
    }
    if part == Part::Encoder {
        b.op_into("Identity", &[&code], vec![], "code");
        outputs.push(value_info(
            "code",
            DataType::FLOAT,
            &[None, Some(graph.code_width)],
        ));
        if let Some(idx) = indices {
            b.op_into("Identity", &[&idx], vec![], "indices");
            outputs.push(value_info("indices", DataType::INT64, &[None, None]));
        }
    } else {
        let logits = b.path(&graph.decoder, code, y, &mut None)?;
        let logits = match (&prepared, graph.residual) {
            (Some(PreparedRows { fed: x, .. }), true) => {
                let skip = if graph.output_activation == Activation::Sigmoid {
                    let c = graph.skip_clamp;
                    let (lo, hi) = (b.scalar("lo", c as f32), b.scalar("hi", (1.0 - c) as f32));
                    let p = b.op("Clip", &[x, &lo, &hi], vec![]);
                    let one = b.scalar("one", 1.0);
                    let q = b.op("Sub", &[&one, &p], vec![]);
                    let odds = b.op("Div", &[&p, &q], vec![]);
                    b.op("Log", &[&odds], vec![])
                } else {
                    x.clone()
                };
                b.op("Add", &[&logits, &skip], vec![])
            }
            _ => logits,
        };
        let out = match &typed {
            Some(columns) => b.typed_activation(&logits, columns),
            None => b.activation(&logits, graph.output_activation),
        };
        match (part, &prepared, &score_loss) {
            (
                Part::Score,
                Some(PreparedRows {
                    prepared: x,
                    missing,
                    ..
                }),
                Some(loss),
            ) => {
                // Per column for a typed table's loss (its shares), else per feature.
                let (errors, name, errors_width) = match loss {
                    ScoreLoss::Typed(columns) => (
                        b.typed_shares(
                            &out,
                            x,
                            missing.as_deref().expect("a typed table's rows"),
                            columns,
                        ),
                        "column_scores",
                        columns.groups.len(),
                    ),
                    ScoreLoss::Features(loss) => {
                        let d = b.op("Sub", &[&out, x], vec![]);
                        let errors = match loss {
                            ReconLoss::Mse => b.op("Mul", &[&d, &d], vec![]),
                            ReconLoss::L1 => b.op("Abs", &[&d], vec![]),
                            ReconLoss::Bce => b.bce(&out, x),
                        };
                        // A typed row's missing values are left out of its squared error.
                        let errors = match missing {
                            Some(missing) => {
                                let zero = b.scalar("zero", 0.0);
                                b.op("Where", &[missing, &zero, &errors], vec![])
                            }
                            None => errors,
                        };
                        (errors, "feature_errors", width)
                    }
                };
                b.op_into("Identity", &[&errors], vec![], name);
                let axis = b.int64s("axis", vec![1]);
                b.op_into(
                    "ReduceSum",
                    &[&errors, &axis],
                    vec![int("keepdims", 0)],
                    "score",
                );
                let detector = detector.as_ref().expect("a score part has a detector");
                let threshold = b.scalar("threshold", detector.threshold as f32);
                b.op_into("Greater", &["score", &threshold], vec![], "anomaly");
                outputs.push(value_info("score", DataType::FLOAT, &[None]));
                outputs.push(value_info(
                    name,
                    DataType::FLOAT,
                    &[None, Some(errors_width)],
                ));
                outputs.push(value_info("anomaly", DataType::BOOL, &[None]));
            }
            _ => {
                let unscaled = b.op("Div", &[&out, &scale], vec![]);
                let name = if part == Part::Decoder {
                    "output"
                } else {
                    "reconstruction"
                };
                b.op_into("Add", &[&unscaled, &offset], vec![], name);
                outputs.push(value_info(name, DataType::FLOAT, &[None, Some(width)]));
            }
        }
    }

    let mut metadata = vec![
        ("aekit.part", part.name().to_string()),
        ("aekit.kind", run.model.config().kind().to_string()),
        ("aekit.architecture", run.model.config().describe()),
        (
            "aekit.input_shape",
            serde_json::json!(graph.input_shape).to_string(),
        ),
        ("aekit.code_width", graph.code_width.to_string()),
        ("aekit.classes", graph.classes.to_string()),
        (
            "aekit.preprocessing",
            serde_json::json!({
                "scaling": run.preprocessor.scaling,
                "offset": run.preprocessor.offset,
                "scale": run.preprocessor.scale,
                "formula": "(x - offset) * scale",
            })
            .to_string(),
        ),
    ];
    if let Some(columns) = &run.preprocessor.columns {
        // What a caller needs to make the graph's rows from a table, and to read its outputs.
        let starts: Vec<usize> = columns.starts();
        metadata.push((
            "aekit.columns",
            serde_json::json!({
                "columns": columns.columns.iter().zip(starts).map(|(c, start)| {
                    let mut entry = serde_json::to_value(c).expect("a column serialises");
                    entry["start"] = serde_json::json!(start);
                    entry["width"] = serde_json::json!(c.width());
                    entry
                }).collect::<Vec<_>>(),
                "carried": columns.carried,
                "rows": TYPED_ROWS,
            })
            .to_string(),
        ));
    }
    if let Ok(summary) = run.dir.summary() {
        metadata.push(("aekit.training", serde_json::json!(summary).to_string()));
    }
    if let Some(d) = &detector {
        metadata.push(("aekit.score", d.kind.name().to_string()));
        metadata.push(("aekit.threshold", d.threshold.to_string()));
        if let Some(c) = d.contamination {
            metadata.push(("aekit.contamination", c.to_string()));
        }
    }
    let graph_proto = GraphProto {
        name: format!("aekit-{}", part.name()),
        node: b.nodes,
        initializer: b.initializers,
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "aekit".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: MessageField::some(graph_proto),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key: key.into(),
                value,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

impl Run {
    /// Writes `part` of this run as an ONNX model to `out`, atomically: an existing file is
    /// refused unless `force`; a score thresholds with `detector` (else the stored one).
    pub fn export_onnx(
        &self,
        out: &Path,
        part: Part,
        detector: Option<&AnomalyDetector>,
        force: bool,
    ) -> Result<()> {
        if out.exists() && !force {
            return Err(Error::bad_file(
                out,
                "already exists; give --force to replace it",
            ));
        }
        let bytes = model(self, part, detector)?
            .write_to_bytes()
            .map_err(|e| Error::Serialize(e.to_string()))?;
        crate::io::write_atomic(out, &bytes)
    }
}
