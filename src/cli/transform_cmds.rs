//! `aekit encode`, `decode`, `reconstruct`, `denoise` and `sample`: a run applied to data.

use std::path::PathBuf;

use clap::Args;

use aekit::data::matrix_file::{self, MatrixFormat};
use aekit::error::{Error, Result};
use aekit::eval::streamed::{self, Destination, Output};
use aekit::export::projector;
use aekit::io::OutputSet;
use aekit::viz::figures::save_run_grid;

use super::args::{NoiseArgs, RunData};

#[derive(Args, Debug)]
pub struct EncodeArgs {
    #[command(flatten)]
    input: RunData,
    /// Where to write the codes (.npy, .csv or .parquet; a table source is read and written
    /// a batch at a time, whatever its size).
    #[arg(long, required_unless_present = "projector")]
    out: Option<PathBuf>,
    /// Input columns copied beside each output row (.parquet outputs of table sources).
    #[arg(long, value_delimiter = ',')]
    keep_columns: Vec<String>,
    /// Also write the labels (.npy or .csv).
    #[arg(long)]
    labels_out: Option<PathBuf>,
    /// For a codebook model (VQ-VAE): write each position's codebook index instead of the
    /// quantised vectors.
    #[arg(long)]
    indices: bool,
    /// Also write the codes for TensorFlow's Embedding Projector into this directory:
    /// vectors.tsv, metadata.tsv (label, class, index), a sprite sheet of image data, and
    /// projector_config.json naming them.
    #[arg(long, value_name = "DIR")]
    projector: Option<PathBuf>,
}

pub fn encode(args: EncodeArgs, device: &burn::tensor::Device) -> Result<()> {
    if let Some(out) = &args.out
        && !streamed::is_parquet(out)
    {
        MatrixFormat::of(out)?;
    }
    if let Some(p) = &args.labels_out {
        MatrixFormat::of(p)?;
    }
    let run = aekit::Run::open(&args.input.run_dir, device)?;
    let cfg = args.input.data_config(&run)?;
    let split = args.input.split.into();
    let written = match &args.out {
        Some(out) => write_codes(&args, out, &run, &cfg, split)?,
        None => None,
    };
    if let Some(dir) = &args.projector {
        // The data and codes the output was written from, when it read them whole.
        let (data, codes) = match written {
            Some(whole) => whole,
            None => {
                let data = run.load_data(Some(&cfg), split)?;
                let codes = run.model.encode_given(&data.x, data.labels.as_deref())?;
                (data, codes)
            }
        };
        let raw = run
            .image_shape()
            .ok()
            .map(|(c, h, w)| run.to_raw(data.x.clone()).map(|x| (x, [c, h, w])))
            .transpose()?;
        let notes = projector::Annotations {
            labels: data.labels.as_deref(),
            class_names: data.class_names.as_deref(),
            images: raw.as_ref().map(|(x, shape)| (x, *shape)),
        };
        let files = projector::write(dir, &codes, &notes)?;
        println!(
            "{} codes for the Embedding Projector written to {} ({})",
            codes.rows,
            dir.display(),
            files.join(", ")
        );
    }
    Ok(())
}

/// The codes (or codebook indices) of `split` written to `out`, a table a batch at a time;
/// when the data was read whole for it, the data and its codes (not indices) come back.
fn write_codes(
    args: &EncodeArgs,
    out: &std::path::Path,
    run: &aekit::Run,
    cfg: &aekit::data::DataConfig,
    split: aekit::data::Split,
) -> Result<Option<(aekit::Dataset, aekit::Matrix)>> {
    let output = if args.indices {
        Output::CodebookIndices
    } else {
        Output::Codes
    };
    if streamed::applies(cfg, split, Some(out), &args.keep_columns)? {
        let dest = Destination {
            out: Some(out),
            labels_out: args.labels_out.as_deref(),
            kept: &args.keep_columns,
        };
        let written = streamed::write(run, cfg, split, output, &dest)?;
        println!("{} codes written to {}", written.rows, out.display());
        return Ok(None);
    }
    let data = run.load_data(Some(cfg), split)?;
    let codes = match output {
        Output::CodebookIndices => run.codebook_indices(&data.x)?,
        _ => run.model.encode_given(&data.x, data.labels.as_deref())?,
    };
    let mut outputs = OutputSet::default();
    outputs.write(out, |p| {
        matrix_file::write(p, &codes, "z", data.labels.as_deref())
    })?;
    if let (Some(p), Some(l)) = (&args.labels_out, &data.labels) {
        outputs.write(p, |staged| matrix_file::write_labels(staged, l))?;
    }
    outputs.commit()?;
    println!(
        "{} codes of width {} written to {}",
        codes.rows,
        codes.cols,
        out.display()
    );
    Ok((!args.indices).then_some((data, codes)))
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    run_dir: PathBuf,
    /// Codes to decode (.npy or .csv), one per row.
    #[arg(long)]
    codes: PathBuf,
    /// Where to write the outputs (.npy or .csv).
    #[arg(long)]
    out: PathBuf,
    /// Also draw the outputs as a PNG grid (image data only).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Map outputs back to the raw data scale (undo the run's preprocessing).
    #[arg(long)]
    raw: bool,
    /// For a conditional model (--model cvae): the class every code is decoded under.
    #[arg(long)]
    class: Option<u32>,
}

/// The run's model, given `class` when one is named (conditional models only).
fn model_of_class(run: &aekit::Run, class: Option<u32>) -> Result<aekit::model::Autoencoder> {
    match class {
        Some(c) => run
            .model
            .with_class(c)
            .map_err(|e| Error::invalid(format!("--class: {e}"))),
        None => Ok(run.model.clone()),
    }
}

pub fn decode(args: DecodeArgs, device: &burn::tensor::Device) -> Result<()> {
    MatrixFormat::of(&args.out)?;
    let run = aekit::Run::open(&args.run_dir, device)?;
    let codes = matrix_file::read(&args.codes)?;
    let out = model_of_class(&run, args.class)?
        .decode(&codes)
        .map_err(|e| Error::bad_file(&args.codes, e.to_string()))?;
    let mut outputs = OutputSet::default();
    if let Some(p) = &args.png {
        run.image_shape()?;
        save_run_grid(&run, Some(p.as_path()), "", &mut outputs, |g| {
            g.tiled(&out, 16);
        })?;
    }
    let mut written = out;
    if args.raw {
        run.preprocessor.invert(&mut written)?;
    }
    outputs.write(&args.out, |p| matrix_file::write(p, &written, "x", None))?;
    outputs.commit()?;
    println!("{} outputs written to {}", written.rows, args.out.display());
    Ok(())
}

#[derive(Args, Debug)]
pub struct ReconstructArgs {
    #[command(flatten)]
    input: RunData,
    /// Where to write all reconstructions (.npy, .csv or .parquet; a table source is read
    /// and written a batch at a time).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Input columns copied beside each output row (.parquet outputs of table sources).
    #[arg(long, value_delimiter = ',')]
    keep_columns: Vec<String>,
    /// PNG grid of originals above reconstructions (default RUN_DIR/reconstructions.png).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Samples in the grid.
    #[arg(short, long, default_value_t = 16)]
    n: usize,
    /// Map outputs back to the raw data scale.
    #[arg(long)]
    raw: bool,
}

pub fn reconstruct(args: ReconstructArgs, device: &burn::tensor::Device) -> Result<()> {
    let run = aekit::Run::open(&args.input.run_dir, device)?;
    let cfg = args.input.data_config(&run)?;
    let split = args.input.split.into();
    if run.preprocessor.columns.is_some() {
        return reconstruct_table(&args, &run, &cfg, split);
    }
    if let Some(o) = args.out.as_ref().filter(|o| !streamed::is_parquet(o)) {
        MatrixFormat::of(o)?;
    }
    if let Some(o) = &args.out
        && streamed::applies(&cfg, split, Some(o), &args.keep_columns)?
    {
        let output = Output::Reconstructions { raw: args.raw };
        let dest = Destination {
            out: Some(o),
            labels_out: None,
            kept: &args.keep_columns,
        };
        let written = streamed::write(&run, &cfg, split, output, &dest)?;
        println!(
            "{} reconstructions written to {}",
            written.rows,
            o.display()
        );
        return Ok(());
    }
    let n = args.n.max(1);
    let mut cfg = cfg;
    if args.out.is_none() && streamed::applies(&cfg, split, None, &[])? {
        // The grid shows the first rows only: a table is not read whole for it.
        cfg.limit_rows(split, n);
    }
    let data = run.load_data(Some(&cfg), split)?;
    let recon = run
        .model
        .reconstruct_given(&data.x, data.labels.as_deref())?;
    let mut outputs = OutputSet::default();
    let png = save_run_grid(
        &run,
        args.png.as_deref(),
        "reconstructions.png",
        &mut outputs,
        |g| {
            g.stacked(&[&data.x, &recon], n);
        },
    )?;
    if let Some(o) = &args.out {
        let mut written = recon.clone();
        if args.raw {
            run.preprocessor.invert(&mut written)?;
        }
        outputs.write(o, |p| {
            matrix_file::write(p, &written, "x", data.labels.as_deref())
        })?;
    }
    outputs.commit()?;
    if let Some(png) = png {
        println!(
            "grid of originals (top) and reconstructions (bottom) written to {}",
            png.display()
        );
    }
    if let Some(o) = &args.out {
        println!("{} reconstructions written to {}", recon.rows, o.display());
    }
    Ok(())
}

/// A typed table's reconstructions in its own columns and types (a category's level, a
/// boolean, a number in its units), its carried columns first.
fn reconstruct_table(
    args: &ReconstructArgs,
    run: &aekit::Run,
    cfg: &aekit::data::DataConfig,
    split: aekit::data::Split,
) -> Result<()> {
    use aekit::data::columns;
    let Some(out) = &args.out else {
        return Err(aekit::Error::invalid(
            "a typed table's reconstructions are rows of its columns: give --out ROWS.csv or .parquet",
        ));
    };
    if args.png.is_some() || !args.keep_columns.is_empty() {
        return Err(aekit::Error::invalid(
            "a typed table has no image grid, and carries its ignored columns already: leave out --png and --keep-columns",
        ));
    }
    let mut notes = Vec::new();
    let (data, carried) = aekit::eval::columns::load_split_raw(run, cfg, split, &mut notes)?;
    let (rows, filled) = aekit::eval::columns::reconstructed_table(run, &data.x)?;
    columns::write_table(out, &columns::beside(&carried, &rows)?)?;
    for note in &notes {
        eprintln!("note: {note}");
    }
    for (column, n) in &filled {
        println!("imputed {n} missing value(s) of column '{column}'");
    }
    println!(
        "{} reconstructions written to {}",
        rows.num_rows(),
        out.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct DenoiseArgs {
    #[command(flatten)]
    input: RunData,
    #[command(flatten)]
    noise: NoiseArgs,
    /// Where to write the denoised outputs (.npy or .csv).
    #[arg(long)]
    out: Option<PathBuf>,
    /// PNG grid: noisy (top), denoised (middle), clean (bottom); default RUN_DIR/denoised.png.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Samples in the grid.
    #[arg(short, long, default_value_t = 12)]
    n: usize,
}

pub fn denoise(args: DenoiseArgs, device: &burn::tensor::Device) -> Result<()> {
    if let Some(o) = &args.out {
        MatrixFormat::of(o)?;
    }
    let (run, data) = args.input.open(device)?;
    let noise = args.noise.for_run(&run).ok_or_else(|| {
        Error::invalid("this run was not trained with noise: give --noise, e.g. gaussian:0.4")
    })?;
    let (m, noisy, denoised) =
        aekit::eval::evaluate_denoising(&run, &data, noise, args.noise.noise_seed)?;
    let n = args.n.max(1);
    let mut outputs = OutputSet::default();
    let png = save_run_grid(
        &run,
        args.png.as_deref(),
        "denoised.png",
        &mut outputs,
        |g| {
            g.stacked(&[&noisy, &denoised, &data.x], n);
        },
    )?;
    if let Some(o) = &args.out {
        outputs.write(o, |p| {
            matrix_file::write(p, &denoised, "x", data.labels.as_deref())
        })?;
    }
    outputs.commit()?;
    if let Some(png) = png {
        println!(
            "grid of noisy (top), denoised (middle) and clean (bottom) written to {}",
            png.display()
        );
    }
    if let Some(o) = &args.out {
        println!(
            "{} denoised samples written to {}",
            denoised.rows,
            o.display()
        );
    }
    println!(
        "{noise}: PSNR {:.2} dB noisy -> {:.2} dB denoised (mse/pixel {:.6} -> {:.6})",
        m.psnr_noisy_db, m.psnr_denoised_db, m.noisy_input.mse_per_pixel, m.denoised.mse_per_pixel
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    run_dir: PathBuf,
    /// Number of samples.
    #[arg(short, long, default_value_t = 64)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where codes come from: prior (N(0, I), VAE-family models) or gmm[:K], a mixture of K
    /// Gaussians (default 10) fitted to the codes of the run's training data, which lets any
    /// autoencoder sample.
    #[arg(long, default_value = "prior")]
    sampler: aekit::eval::sampler::Sampler,
    /// PNG grid of the samples (default RUN_DIR/samples.png).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Also write the samples (.npy or .csv).
    #[arg(long)]
    out: Option<PathBuf>,
    /// For a conditional model (--model cvae): draw samples of this class (default: every
    /// class in turn).
    #[arg(long)]
    class: Option<u32>,
}

pub fn sample(args: SampleArgs, device: &burn::tensor::Device) -> Result<()> {
    if let Some(o) = &args.out {
        MatrixFormat::of(o)?;
    }
    let mut run = aekit::Run::open(&args.run_dir, device)?;
    run.model = model_of_class(&run, args.class)?;
    let x = aekit::eval::sampler::sample_run(&run, args.sampler, args.n.max(1), args.seed)?;
    let cols = (x.rows as f64).sqrt().ceil() as usize;
    let mut outputs = OutputSet::default();
    let png = save_run_grid(
        &run,
        args.png.as_deref(),
        "samples.png",
        &mut outputs,
        |g| {
            g.tiled(&x, cols);
        },
    )?;
    if let Some(o) = &args.out {
        outputs.write(o, |p| matrix_file::write(p, &x, "x", None))?;
    }
    outputs.commit()?;
    if let Some(png) = png {
        println!(
            "{} {} samples drawn in {}",
            x.rows,
            args.sampler,
            png.display()
        );
    }
    Ok(())
}
