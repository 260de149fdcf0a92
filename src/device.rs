//! Compute devices. burn 0.22 carries the backend in the `Device` value rather than in a type
//! parameter, so model code is backend-agnostic and a GPU backend is a cargo feature plus a
//! variant here.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// burn's pure-Rust multi-threaded CPU backend (flex).
    #[default]
    Cpu,
}

impl DeviceKind {
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::flex()),
        }
    }
}

/// Sizes the thread pool used by the CPU backend. Must run before the first tensor operation.
pub fn set_threads(threads: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| Error::invalid(format!("cannot size the thread pool: {e}")))
}
