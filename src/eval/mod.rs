//! Evaluation of trained runs.

pub mod anomaly;
pub mod classify;
pub mod columns;
pub mod compare;
pub mod disentanglement;
pub mod frechet;
pub mod likelihood;
pub mod metrics;
pub mod pca;
pub mod probe;
pub mod retrieval;
pub mod sampler;
pub mod series;
pub mod streamed;

pub use metrics::{
    ClassMetrics, CodeStats, CodebookMetrics, ReconMetrics, code_stats, codebook_metrics, psnr,
    reconstruction_metrics,
};

use serde::{Deserialize, Serialize};

use crate::data::batch::rng_for;
use crate::data::paired::PairedTask;
use crate::data::{Corruption, Dataset, Matrix};
use crate::error::{Error, Result};
use crate::model::layers::{tensor_batches, tensor_values};
use crate::run::Run;

/// How well a model removes a given corruption: the corrupted inputs themselves and the
/// model's outputs for them, both measured against the clean samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenoiseMetrics {
    pub noise: String,
    pub noisy_input: ReconMetrics,
    pub denoised: ReconMetrics,
    /// Peak signal-to-noise ratio in dB, with the clean data's range as the peak.
    pub psnr_noisy_db: f64,
    pub psnr_denoised_db: f64,
}

/// A corrupted copy of `clean`, clipped to its value range, drawn from `seed`.
pub fn corrupt(clean: &Matrix, noise: Corruption, seed: u64) -> Matrix {
    let mut noisy = clean.clone();
    noise.apply(&mut noisy.data, clean.value_range(), &mut rng_for(seed, 77));
    noisy
}

/// Corrupts `data` with `noise` (seeded), denoises it with the run's model and measures both
/// against the clean data. Returns the metrics, the noisy inputs and the outputs.
pub fn evaluate_denoising(
    run: &Run,
    data: &Dataset,
    noise: Corruption,
    seed: u64,
) -> Result<(DenoiseMetrics, Matrix, Matrix)> {
    let noisy = corrupt(&data.x, noise, seed);
    let denoised = run
        .model
        .reconstruct_given(&noisy, data.labels.as_deref())?;
    let m = restoration_metrics(&noise.to_string(), data, &noisy, &denoised);
    Ok((m, noisy, denoised))
}

/// The degraded input and the model's output, both against the clean data.
fn restoration_metrics(
    what: &str,
    clean: &Dataset,
    input: &Matrix,
    output: &Matrix,
) -> DenoiseMetrics {
    let labels = clean.labels.as_deref();
    let names = clean.class_names.as_deref();
    let input_m = reconstruction_metrics(&clean.x, input, labels, names);
    let output_m = reconstruction_metrics(&clean.x, output, labels, names);
    let (lo, hi) = clean.x.value_range();
    let peak = (hi - lo) as f64;
    DenoiseMetrics {
        noise: what.to_string(),
        psnr_noisy_db: psnr(input_m.mse_per_pixel, peak),
        psnr_denoised_db: psnr(output_m.mse_per_pixel, peak),
        noisy_input: input_m,
        denoised: output_m,
    }
}

/// `clean` degraded by a paired task (seeded): what the model is given.
pub fn degrade(clean: &Dataset, task: PairedTask, seed: u64) -> Result<Matrix> {
    task.check(&clean.sample_shape)?;
    let mut x = clean.x.clone();
    let range = clean.x.value_range();
    task.degrade_all(
        &mut x.data,
        &clean.sample_shape,
        range,
        &mut rng_for(seed, 79),
    );
    Ok(x)
}

/// For a paired-task run: degrades `data`, restores it with the model, and measures the
/// degraded input (for upscaling: bilinear interpolation) and the output against the
/// originals. Returns the metrics, the inputs and the outputs; `None` for other runs.
pub fn evaluate_task(
    run: &Run,
    data: &Dataset,
    seed: u64,
) -> Result<Option<(DenoiseMetrics, Matrix, Matrix)>> {
    let Some(task) = run.model.config().shared().task else {
        return Ok(None);
    };
    let input = degrade(data, task, seed)?;
    let output = run
        .model
        .reconstruct_given(&input, data.labels.as_deref())?;
    let m = restoration_metrics(&task.to_string(), data, &input, &output);
    Ok(Some((m, input, output)))
}

/// A paired-task run applied to images: its inputs and outputs, and, when the images were
/// originals of the model's size (degraded here first), the originals and the metrics.
pub struct Restoration {
    pub task: PairedTask,
    pub input: Matrix,
    pub output: Matrix,
    pub measured: Option<(DenoiseMetrics, Matrix)>,
}

/// The task `run` was trained for, if it is the task `name` (e.g. `upscale`).
pub fn task_of(run: &Run, name: &str) -> Result<PairedTask> {
    run.model
        .config()
        .shared()
        .task
        .filter(|t| t.name() == name)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{} was not trained for {name} (train with --task {})",
                run.dir.path.display(),
                PairedTask::example_spec(name)
            ))
        })
}

/// Applies `run`'s paired task `name` to `data` (preprocessed): originals of the model's own
/// size are degraded first, so the output can be measured; other images (small ones to
/// upscale, grey ones to recolour) are prepared for the model and restored as given.
pub fn restore(run: &Run, name: &str, data: &Dataset, seed: u64) -> Result<Restoration> {
    let task = task_of(run, name)?;
    let full = run
        .model
        .config()
        .shared()
        .input_shape
        .clone()
        .ok_or_else(|| Error::invalid("the run's model has no image shape"))?;
    if data.sample_shape == full {
        let input = degrade(data, task, seed)?;
        let output = run.model.reconstruct(&input)?;
        let m = restoration_metrics(&task.to_string(), data, &input, &output);
        return Ok(Restoration {
            task,
            input,
            output,
            measured: Some((m, data.x.clone())),
        });
    }
    let size: usize = data.sample_shape.iter().product();
    let mut prepared = Vec::with_capacity(data.len() * full.iter().product::<usize>());
    for img in data.x.data.chunks_exact(size.max(1)) {
        prepared.extend(task.prepare(img, &data.sample_shape, &full)?);
    }
    let input = Matrix::new(data.len(), full.iter().product(), prepared)?;
    let output = run.model.reconstruct(&input)?;
    Ok(Restoration {
        task,
        input,
        output,
        measured: None,
    })
}

/// What `aekit eval` measures beside the reconstruction error.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Measure denoising under this corruption (default: the run's training noise, if any).
    pub noise: Option<Corruption>,
    pub noise_seed: u64,
    /// Estimate the encoder's Jacobian norm (always done for contractive runs).
    pub jacobian: bool,
    /// Estimate the negative log-likelihood with this many importance samples per sample.
    pub nll_samples: Option<usize>,
    /// Measure the Fréchet distance of this many samples from this sampler.
    pub frechet: Option<(usize, sampler::Sampler)>,
    /// Measure disentanglement against these true factors of the data's samples (one row
    /// per sample, columns as [`crate::data::shapes::FACTOR_NAMES`]).
    pub factors: Option<Matrix>,
}

/// Everything measured of a run on one data set.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    #[serde(flatten)]
    pub reconstruction: ReconMetrics,
    pub code: CodeStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian_frobenius_sq: Option<f64>,
    /// The negative ELBO and its terms, for a stochastic encoder.
    #[serde(rename = "vae", skip_serializing_if = "Option::is_none")]
    pub elbo: Option<ElboMetrics>,
    /// Codebook use of a codebook model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codebook: Option<CodebookMetrics>,
    /// The Fréchet distance of samples, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_quality: Option<frechet::SampleQuality>,
    /// The importance-sampled negative log-likelihood, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll: Option<likelihood::NllMetrics>,
    /// MIG and SAP against the data's true factors, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disentanglement: Option<disentanglement::DisentanglementMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoising: Option<DenoiseMetrics>,
    /// Paired tasks: the degraded input and the output against the originals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<DenoiseMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Vec<retrieval::RetrievalCurve>>,
    /// A model that classifies (semi-supervised), on labelled data: its classes against the
    /// labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<classify::ClassificationReport>,
}

/// The encoder's mean squared Jacobian norm is measured on at most this many samples.
const JACOBIAN_SAMPLES: usize = 2000;

/// Reconstruction, code statistics and whatever else applies to `run` on `data`
/// (preprocessed): the ELBO, the Jacobian norm, denoising, the paired task.
pub fn report(run: &Run, data: &Dataset, opts: &EvalOptions) -> Result<EvalReport> {
    let jacobian = if opts.jacobian || run.model.config().shared().contractive.is_some() {
        let x = data.x.head(JACOBIAN_SAMPLES);
        Some(jacobian_norm(&run.model, &x, 16, 0)?.0)
    } else {
        None
    };
    let denoising = match opts.noise.or(run.model.config().noise()) {
        Some(n) => Some(evaluate_denoising(run, data, n, opts.noise_seed)?.0),
        None => None,
    };
    let codes = run.model.encode_given(&data.x, data.labels.as_deref())?;
    let disentanglement = match &opts.factors {
        Some(factors) => Some(disentanglement::disentanglement(
            &codes,
            factors,
            &crate::data::shapes::FACTOR_NAMES,
            &crate::data::shapes::FACTOR_IS_CATEGORICAL,
        )?),
        None => None,
    };
    Ok(EvalReport {
        reconstruction: evaluate(run, data)?,
        code: code_stats(&codes),
        disentanglement,
        jacobian_frobenius_sq: jacobian,
        elbo: elbo(run, data, opts.noise_seed)?,
        codebook: match (
            run.model.codebook_indices(&data.x)?,
            run.model.codebook_size(),
        ) {
            (Some(indices), Some(entries)) => Some(codebook_metrics(&indices, entries)),
            _ => None,
        },
        nll: match opts.nll_samples {
            Some(k) => Some(likelihood::importance_sampled_nll(
                &run.model,
                &data.x,
                data.labels.as_deref(),
                k,
                opts.noise_seed,
            )?),
            None => None,
        },
        sample_quality: match opts.frechet {
            Some((n, s)) => Some(frechet::sample_quality(run, data, s, n, opts.noise_seed)?),
            None => None,
        },
        denoising,
        task: evaluate_task(run, data, opts.noise_seed)?.map(|t| t.0),
        retrieval: None,
        classification: classify::evaluate_model(run, data)?,
    })
}

/// Reconstruction metrics of `run` on `data` (already preprocessed, e.g. by [`Run::load_data`]).
pub fn evaluate(run: &Run, data: &Dataset) -> Result<ReconMetrics> {
    data.require_samples("evaluate")?;
    let recon = run
        .model
        .reconstruct_given(&data.x, data.labels.as_deref())?;
    Ok(reconstruction_metrics(
        &data.x,
        &recon,
        data.labels.as_deref(),
        data.class_names.as_deref(),
    ))
}

/// Mean squared Frobenius norm of the encoder's Jacobian `∂h/∂x` over the rows of `x`
/// (exact for a single sigmoid layer, otherwise estimated with `projections` random directions
/// per sample), and its square root.
pub fn jacobian_norm(
    model: &crate::model::Autoencoder,
    x: &Matrix,
    projections: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    use burn::module::Module;
    model.check_inputs(x)?;
    let net = model.net().valid();
    let mut rng = rng_for(seed, 91);
    let mut total = 0.0f64;
    for t in tensor_batches(x, 256, model.device()) {
        let rows = t.dims()[0] as f64;
        let sq = net
            .jacobian_frobenius_sq(t, projections, &mut rng)
            .into_scalar::<f32>() as f64;
        total += sq * rows;
    }
    let mean = total / x.rows.max(1) as f64;
    Ok((mean, mean.sqrt()))
}

/// A VAE's loss on data, summed over the pixels of an image and averaged over images, as the
/// VAE literature reports it: reconstruction (negative log-likelihood of the decoder) plus KL,
/// i.e. the negative ELBO, with one posterior sample per image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElboMetrics {
    pub recon_per_image: f64,
    pub kl_per_image: f64,
    /// `recon + kl`: the negative evidence lower bound (lower is better).
    pub loss_per_image: f64,
}

/// Per-image reconstruction and KL terms of a VAE run on `x` (one posterior sample each; a
/// conditional model's given the rows' `labels`); `None` for other models.
pub fn elbo_terms(
    run: &Run,
    x: &Matrix,
    labels: Option<&[u32]>,
    seed: u64,
) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
    if !run.model.capabilities().stochastic_encoder {
        return Ok(None);
    }
    let mut rng = rng_for(seed, 93);
    let (mut recon, mut kl) = (Vec::with_capacity(x.rows), Vec::with_capacity(x.rows));
    let loss = run.model.config().likelihood();
    let mut defined = true;
    run.model
        .for_each_batch(x, labels, 1024, |net, input, target| {
            // Undefined for one batch is undefined for the model: skip the remaining passes.
            if !defined {
                return Ok(());
            }
            match crate::model::objective::elbo_terms(net, input, target, loss, &mut rng) {
                Some((r, k)) => {
                    recon.extend(tensor_values(r).iter().map(|v| *v as f64));
                    kl.extend(tensor_values(k).iter().map(|v| *v as f64));
                }
                None => defined = false,
            }
            Ok(())
        })?;
    if !defined {
        return Ok(None);
    }
    Ok(Some((recon, kl)))
}

/// [`ElboMetrics`] of a VAE run on `data`; `None` for other models.
pub fn elbo(run: &Run, data: &Dataset, seed: u64) -> Result<Option<ElboMetrics>> {
    let Some((recon, kl)) = elbo_terms(run, &data.x, data.labels.as_deref(), seed)? else {
        return Ok(None);
    };
    let n = data.x.rows.max(1) as f64;
    let (recon, kl) = (recon.iter().sum::<f64>(), kl.iter().sum::<f64>());
    Ok(Some(ElboMetrics {
        recon_per_image: recon / n,
        kl_per_image: kl / n,
        loss_per_image: (recon + kl) / n,
    }))
}

/// Decodes `n` draws from the prior N(0, I) (seeded); fails for a model without a prior.
pub fn sample_prior(model: &crate::model::Autoencoder, n: usize, seed: u64) -> Result<Matrix> {
    model.decode_given(
        &prior_codes(model, n, seed)?,
        model.generation_labels(n).as_deref(),
    )
}

/// The `n` codes [`sample_prior`] decodes.
pub fn prior_codes(model: &crate::model::Autoencoder, n: usize, seed: u64) -> Result<Matrix> {
    if !model.capabilities().prior {
        return Err(Error::invalid(format!(
            "sampling from the prior needs a VAE or another model trained towards a prior (e.g. --model vae); this is a {} model",
            model.config().kind()
        )));
    }
    crate::model::fits_in_memory(n, model.input_dim(), "samples")?;
    let mut rng = rng_for(seed, 95);
    let l = model.latent_dim();
    Matrix::new(n, l, crate::data::batch::standard_normal(n * l, &mut rng))
}
