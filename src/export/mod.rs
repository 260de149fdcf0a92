//! Models that leave aekit: a run as an ONNX graph with its preprocessing and anomaly score
//! inside ([`onnx`]), and codes as Embedding Projector files ([`projector`]).

pub mod onnx;
pub mod projector;
