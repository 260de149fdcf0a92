//! `aekit upscale`, `aekit recolor` and `aekit inpaint`: apply a paired-task run to images.

use std::path::PathBuf;

use clap::Args;

use aekit::Matrix;
use aekit::error::Result;
use aekit::io::OutputSet;

use super::args::RunData;
use aekit::data::matrix_file::{self, MatrixFormat};
use aekit::viz::figures::save_run_grid;

#[derive(Args, Debug)]
pub struct TaskArgs {
    #[command(flatten)]
    input: RunData,
    /// Where to write the outputs (.npy or .csv).
    #[arg(long)]
    out: Option<PathBuf>,
    /// PNG grid: input (top), output, and the original when known (bottom); default
    /// RUN_DIR/<command>.png.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Samples in the grid.
    #[arg(short, long, default_value_t = 12)]
    n: usize,
    /// Seed of the degradation (inpainting squares) applied to full-size originals.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Applies the run's paired task `name` (upscale, recolor, inpaint) to the images given.
pub fn run(name: &str, args: TaskArgs, device: &burn::tensor::Device) -> Result<()> {
    if let Some(o) = &args.out {
        MatrixFormat::of(o)?;
    }
    let run = aekit::Run::open(&args.input.run_dir, device)?;
    aekit::eval::task_of(&run, name)?;
    // Raw images of any size: the run's preprocessing, without its size check.
    let mut data = aekit::data::load(&args.input.data_config(&run)?, args.input.split.into())?;
    run.preprocessor.apply(&mut data.x)?;
    let r = aekit::eval::restore(&run, name, &data, args.seed)?;
    let n = args.n.max(1);
    let mut rows = vec![r.input.head(n), r.output.head(n)];
    match &r.measured {
        Some((m, original)) => {
            println!(
                "{} on {} samples of {}: PSNR {:.2} dB ({}) -> {:.2} dB (model); mse/pixel {:.6} -> {:.6}",
                r.task,
                data.len(),
                data.origin,
                m.psnr_noisy_db,
                r.task.baseline(),
                m.psnr_denoised_db,
                m.noisy_input.mse_per_pixel,
                m.denoised.mse_per_pixel
            );
            rows.push(original.head(n));
        }
        None => println!(
            "{}: {} images of {} ({:?}) restored to {:?}",
            r.task,
            data.len(),
            data.origin,
            data.sample_shape,
            run.model
                .config()
                .shared()
                .input_shape
                .clone()
                .unwrap_or_default()
        ),
    }
    let refs: Vec<&Matrix> = rows.iter().collect();
    let grid_name = format!("{name}.png");
    let mut outputs = OutputSet::default();
    let png = save_run_grid(&run, args.png.as_deref(), &grid_name, &mut outputs, |g| {
        g.stacked(&refs, n);
    })?;
    if let Some(o) = &args.out {
        outputs.write(o, |p| {
            matrix_file::write(p, &r.output, "x", data.labels.as_deref())
        })?;
    }
    outputs.commit()?;
    if let Some(png) = png {
        println!(
            "grid (input, output{}) written to {}",
            if refs.len() == 3 { ", original" } else { "" },
            png.display()
        );
    }
    if let Some(o) = &args.out {
        println!("{} outputs written to {}", r.output.rows, o.display());
    }
    Ok(())
}
