//! aekit: train, evaluate and explore autoencoders.
//!
//! ```no_run
//! use aekit::{RunConfig, data::Split, fit::{FitOptions, train}};
//!
//! let mut cfg = RunConfig::default();            // dense autoencoder on the built-in shapes
//! cfg.train.epochs = 5;
//! let fitted = train(&cfg, &FitOptions::new("runs/example"))?;
//! let test = aekit::run::Run::open(&fitted.run_dir.path, &burn::tensor::Device::flex())?
//!     .load_data(None, Split::Test)?;
//! let codes = fitted.model.encode(&test.x)?;     // one row of codes per sample
//! let recon = fitted.model.decode(&codes)?;
//! # Ok::<(), aekit::Error>(())
//! ```

pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod explore;
pub mod export;
pub mod fit;
pub mod fuzz;
pub mod io;
pub mod kernels;
pub mod model;
pub mod options;
pub mod presets;
pub mod run;
pub mod serve;
pub mod train;
pub mod viz;

pub use data::{DataConfig, Dataset, Matrix, Split};
pub use error::{Error, Result};
pub use fit::{FitOptions, fit, train};
pub use model::{Activation, Autoencoder, DenseConfig, ModelConfig, ReconLoss, VaeConfig};
pub use run::{Run, RunConfig, RunDir};
pub use train::TrainConfig;
