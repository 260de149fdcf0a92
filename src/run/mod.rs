//! Runs: the run config, the run directory training writes, and a loaded run that eval,
//! explore, viz and the front ends read.

pub mod classifier;
pub mod config;
pub mod dir;

use std::path::Path;

use burn::tensor::Device;

pub use config::{RunConfig, template};
pub use dir::RunDir;

use crate::data::Preprocessor;
use crate::error::{Error, Result};
use crate::model::Autoencoder;

/// A loaded run: config, preprocessing and model, ready for eval and exploration.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: RunDir,
    pub config: RunConfig,
    pub preprocessor: Preprocessor,
    pub model: Autoencoder,
}

impl Run {
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let dir = RunDir::open(path)?;
        let config = dir.config()?;
        let preprocessor = dir.preprocessor()?;
        let model = dir.load_model(device, false)?;
        Ok(Self {
            dir,
            config,
            preprocessor,
            model,
        })
    }

    /// `(channels, height, width)` of the run's samples, when they are images.
    pub fn image_shape(&self) -> Result<(usize, usize, usize)> {
        match self.model.config().shared().input_shape.as_deref() {
            Some([c, h, w]) => Ok((*c, *h, *w)),
            _ => Err(Error::invalid(format!(
                "{}: the run's samples are not images, so they cannot be drawn",
                self.dir.path.display()
            ))),
        }
    }

    /// Loads `split` of the data this run was trained on (or of `source` when given), already
    /// preprocessed the way training saw it.
    /// [`Self::load_data`] for a command that needs at most `n` rows: a table source is
    /// sampled in one streaming pass (a uniform sample of its rows, in file order, the same for
    /// the same `seed`), so a table of any size gives a sample; other sources are read whole
    /// as before.
    pub fn load_sample(
        &self,
        source: Option<&crate::data::DataConfig>,
        split: crate::data::Split,
        n: usize,
        seed: u64,
    ) -> Result<crate::data::Dataset> {
        let cfg = source.unwrap_or(&self.config.data);
        if self.preprocessor.columns.is_some() {
            return self.load_data(source, split);
        }
        let Some(table) = cfg.streamed_split(split)? else {
            return self.load_data(source, split);
        };
        let raw = crate::data::table::reservoir(
            &table.path,
            table.format,
            &cfg.column_choice(&[]),
            n,
            seed,
        )?;
        self.prepare(raw)
    }

    pub fn load_data(
        &self,
        source: Option<&crate::data::DataConfig>,
        split: crate::data::Split,
    ) -> Result<crate::data::Dataset> {
        let cfg = source.unwrap_or(&self.config.data);
        if let Some(columns) = &self.preprocessor.columns {
            let mut notes = Vec::new();
            let raw = crate::data::columns::load(cfg, split, columns, &mut notes)?;
            for note in notes {
                tracing::warn!("{note}");
            }
            return self.prepare(raw);
        }
        // Text runs count words against the vocabulary they were trained with.
        let path = self.dir.vocabulary_path();
        let vocabulary: Option<Vec<String>> = if path.is_file() {
            let text = String::from_utf8_lossy(&crate::io::read_file(&path)?).to_string();
            Some(text.lines().map(str::to_string).collect())
        } else {
            None
        };
        let raw = crate::data::load_with_vocabulary(cfg, split, vocabulary.as_deref())?;
        self.prepare(raw)
    }

    /// Raw samples checked against the model and preprocessed as the run was trained.
    pub(crate) fn prepare(&self, mut raw: crate::data::Dataset) -> Result<crate::data::Dataset> {
        self.check_width(&raw.origin, raw.dim())?;
        self.prepare_rows(&mut raw.x, &mut eval_binarizer())?;
        Ok(raw)
    }

    /// Refuses data whose rows are not as wide as the model's input.
    pub fn check_width(&self, origin: &str, width: usize) -> Result<()> {
        if width != self.model.input_dim() {
            return Err(Error::mismatch(format!(
                "{origin}: samples have {width} features, the model in {} expects {}",
                self.dir.path.display(),
                self.model.input_dim()
            )));
        }
        Ok(())
    }

    /// Raw rows from outside (a request's body, a Python array), checked against the model's
    /// width and brought to the model's scale as training saw them: the one raw→model
    /// conversion of every front end. `origin` names them in errors.
    pub fn to_model_scale(
        &self,
        origin: &str,
        mut x: crate::data::Matrix,
    ) -> Result<crate::data::Matrix> {
        self.check_width(origin, x.cols)?;
        self.preprocessor.apply(&mut x)?;
        Ok(x)
    }

    /// Model outputs (reconstructions, decodings, samples) in the raw data's scale: the one
    /// model→raw conversion of every front end.
    pub fn to_raw(&self, mut x: crate::data::Matrix) -> Result<crate::data::Matrix> {
        self.preprocessor.invert(&mut x)?;
        Ok(x)
    }

    /// Each position's codebook index for the rows of `x` (a VQ-VAE's); a model without a
    /// codebook is refused, naming the run and its kind.
    pub fn codebook_indices(&self, x: &crate::data::Matrix) -> Result<crate::data::Matrix> {
        self.model.codebook_indices(x)?.ok_or_else(|| {
            Error::invalid(format!(
                "--indices: {} has no codebook (a {} model; --model vqvae has one)",
                self.dir.path.display(),
                self.model.config().kind()
            ))
        })
    }

    /// Raw rows preprocessed in place as the run was trained, and for a binarised run drawn
    /// as bits from `binarizer` ([`eval_binarizer`], one for a whole pass over a data set, so
    /// a data set read in batches is binarised as when it is read whole).
    pub fn prepare_rows(
        &self,
        x: &mut crate::data::Matrix,
        binarizer: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<()> {
        self.preprocessor.apply(x)?;
        if self.config.data.binarize {
            crate::data::batch::binarize(&mut x.data, binarizer);
        }
        Ok(())
    }
}

/// The draws evaluation data is binarised with: seed 0, the same for every run of a data set.
pub fn eval_binarizer() -> rand_chacha::ChaCha8Rng {
    use crate::data::batch::{EVAL_BINARIZE_STREAM, rng_for};
    rng_for(0, EVAL_BINARIZE_STREAM)
}
