//! `aekit eval`

use clap::Args;

use aekit::error::Result;

use super::args::{NoiseArgs, RunData};

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    input: RunData,
    /// Denoising is measured for runs trained with noise, or when --noise is given.
    #[command(flatten)]
    noise: NoiseArgs,
    /// Also estimate the encoder's Jacobian norm (always done for contractive runs).
    #[arg(long)]
    jacobian: bool,
    /// Also estimate the test negative log-likelihood by importance sampling with K samples
    /// per image (VAE-family models; the IWAE paper uses 5000).
    #[arg(long, value_name = "K")]
    nll_samples: Option<usize>,
    /// Also measure sample quality: the Fréchet distance of N samples to the test data in
    /// the features of a classifier aekit trains once on the data's labels (and caches).
    #[arg(long, value_name = "N")]
    frechet_samples: Option<usize>,
    /// The sampler for --frechet-samples: prior or gmm[:K] (default: prior for VAE-family
    /// models, gmm:10 for others).
    #[arg(long)]
    sampler: Option<aekit::eval::sampler::Sampler>,
    /// Also measure disentanglement (MIG and SAP) against the true factors of the data's
    /// samples: data whose factors are known (--data shapes-grid, or shapes).
    #[arg(long)]
    disentanglement: bool,
    #[command(flatten)]
    retrieval: super::retrieve_cmd::RetrievalFlags,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, data) = args.input.open(device)?;
    let factors = if args.disentanglement {
        let cfg = args.input.data_config(&run)?;
        let factors = aekit::data::spec::factors(&cfg, args.input.split.into())?
            .filter(|f| f.rows == data.len())
            .ok_or_else(|| {
                aekit::Error::invalid(format!(
                    "--disentanglement needs data whose factors are known (--data shapes-grid or shapes); {} has none",
                    data.origin
                ))
            })?;
        Some(factors)
    } else {
        None
    };
    let opts = aekit::eval::EvalOptions {
        factors,
        noise: args.noise.noise,
        noise_seed: args.noise.noise_seed,
        jacobian: args.jacobian,
        nll_samples: args.nll_samples,
        frechet: args.frechet_samples.map(|n| {
            let default = if run.model.capabilities().prior {
                aekit::eval::sampler::Sampler::Prior
            } else {
                aekit::eval::sampler::Sampler::Gmm {
                    components: aekit::eval::sampler::DEFAULT_COMPONENTS,
                }
            };
            (n.max(2), args.sampler.unwrap_or(default))
        }),
    };
    let mut report = aekit::eval::report(&run, &data, &opts)?;
    if args.retrieval.retrieval {
        report.retrieval = Some(super::retrieve_cmd::evaluate(
            &args.retrieval,
            &args.input,
            &run,
            &data,
        )?);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("metrics serialise")
        );
        return Ok(());
    }
    let m = &report.reconstruction;
    let code = &report.code;
    println!(
        "{} on {} ({} samples of {} features)",
        run.model.config().describe(),
        data.origin,
        m.samples,
        m.features
    );
    println!("  mean squared error per pixel   {:.6}", m.mse_per_pixel);
    println!("  squared error per image        {:.4}", m.sse_per_image);
    println!("  mean absolute error per pixel  {:.6}", m.mae_per_pixel);
    if let Some(b) = m.bce_per_pixel {
        println!("  binary cross-entropy per pixel {b:.6}");
    }
    println!(
        "  code: {} units, mean {:.4}, mean |h| {:.4}, {:.1}% of values near zero (|h| < {}), {} dead units",
        code.units,
        code.mean_activation,
        code.mean_abs_activation,
        100.0 * code.near_zero_fraction,
        aekit::eval::metrics::NEAR_ZERO,
        code.dead_units
    );
    if let Some(c) = &report.classification {
        println!(
            "  classes from q(y|x): accuracy {:.2}% (error {:.2}%), macro F1 {:.4}",
            100.0 * c.accuracy,
            100.0 * (1.0 - c.accuracy),
            c.macro_f1
        );
    }
    if let Some(v) = &report.elbo {
        println!(
            "  VAE loss per image (negative ELBO) {:.3} = reconstruction {:.3} + KL {:.3}",
            v.loss_per_image, v.recon_per_image, v.kl_per_image
        );
    }
    if let Some(c) = &report.codebook {
        println!(
            "  codebook: {} of {} entries used, perplexity {:.1}",
            c.used, c.entries, c.perplexity
        );
    }
    if let Some(q) = &report.sample_quality {
        println!(
            "  Fréchet distance of {} samples ({} sampler) {:.3}; test vs training data {:.3} (aekit's classifier features{})",
            q.samples,
            q.sampler,
            q.frechet_distance,
            q.floor,
            q.classifier_test_accuracy
                .map_or(String::new(), |a| format!(
                    ", classifier test accuracy {:.2}%",
                    100.0 * a
                ))
        );
        if let Some(agreement) = &q.class_agreement {
            let shares: Vec<String> = agreement
                .iter()
                .enumerate()
                .map(|(c, a)| format!("{c}: {:.1}%", 100.0 * a))
                .collect();
            println!(
                "  samples the classifier calls the class they were drawn for: {}",
                shares.join(", ")
            );
        }
    }
    if let Some(d) = &report.disentanglement {
        let per = |v: &[f64]| {
            d.factors
                .iter()
                .zip(v)
                .map(|(f, m)| format!("{f} {m:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "  disentanglement on {} samples: MIG {:.3} ({}); SAP {:.3} ({})",
            d.samples,
            d.mig,
            per(&d.mig_per_factor),
            d.sap,
            per(&d.sap_per_factor)
        );
        let dims: Vec<String> = d
            .dimension_factor
            .iter()
            .enumerate()
            .map(|(j, (f, s))| format!("z{} {f} {s:.2}", j + 1))
            .collect();
        println!(
            "  each code dimension's factor (normalised MI): {}",
            dims.join(", ")
        );
    }
    if let Some(l) = &report.nll {
        println!(
            "  negative log-likelihood per image {:.3} ± {:.3} (importance sampling, K = {})",
            l.nll_per_image, l.standard_error, l.importance_samples
        );
    }
    if let Some(j) = report.jacobian_frobenius_sq {
        println!(
            "  encoder Jacobian: mean ||dh/dx||_F^2 {j:.4} (RMS norm {:.4})",
            j.sqrt()
        );
    }
    if let Some(curves) = &report.retrieval {
        println!("  retrieval: mean precision over all queries (cosine similarity of codes)");
        super::retrieve_cmd::print_table(curves);
    }
    if let Some(t) = &report.task {
        let input = match run.model.config().shared().task.map(|t| t.baseline()) {
            Some("bilinear") => "bilinear upscaling",
            _ => "degraded input",
        };
        println!("  task {} (against the originals):", t.noise);
        println!(
            "    {input:<20} mse/pixel {:.6}  PSNR {:.2} dB",
            t.noisy_input.mse_per_pixel, t.psnr_noisy_db
        );
        println!(
            "    {:<20} mse/pixel {:.6}  PSNR {:.2} dB",
            "model", t.denoised.mse_per_pixel, t.psnr_denoised_db
        );
    }
    if let Some(d) = &report.denoising {
        println!("  denoising {} (against the clean inputs):", d.noise);
        println!(
            "    noisy input: mse/pixel {:.6}  sse/image {:.4}  PSNR {:.2} dB{}",
            d.noisy_input.mse_per_pixel,
            d.noisy_input.sse_per_image,
            d.psnr_noisy_db,
            d.noisy_input
                .bce_per_pixel
                .map_or(String::new(), |b| format!("  bce/pixel {b:.6}"))
        );
        println!(
            "    denoised:    mse/pixel {:.6}  sse/image {:.4}  PSNR {:.2} dB{}",
            d.denoised.mse_per_pixel,
            d.denoised.sse_per_image,
            d.psnr_denoised_db,
            d.denoised
                .bce_per_pixel
                .map_or(String::new(), |b| format!("  bce/pixel {b:.6}"))
        );
    }
    if !m.per_class.is_empty() {
        println!(
            "  per class:  {:<12} {:>8} {:>12} {:>12}",
            "class", "samples", "mse/pixel", "sse/image"
        );
        for c in &m.per_class {
            println!(
                "              {:<12} {:>8} {:>12.6} {:>12.4}",
                c.name, c.samples, c.mse_per_pixel, c.sse_per_image
            );
        }
    }
    Ok(())
}
