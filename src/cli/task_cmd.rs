//! `aekit upscale`, `aekit recolor` and `aekit inpaint`: apply a paired-task run to images.

use std::path::PathBuf;

use clap::Args;

use aekit::Matrix;
use aekit::data::paired::PairedTask;
use aekit::error::{Error, Result};

use super::args::RunData;
use super::io_cmds::{extension, save_run_grid, write_matrix};

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

/// Which commands run which task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCommand {
    Upscale,
    Recolor,
    Inpaint,
}

impl TaskCommand {
    fn name(self) -> &'static str {
        match self {
            TaskCommand::Upscale => "upscale",
            TaskCommand::Recolor => "recolor",
            TaskCommand::Inpaint => "inpaint",
        }
    }

    fn matches(self, task: PairedTask) -> bool {
        matches!(
            (self, task),
            (TaskCommand::Upscale, PairedTask::Upscale { .. })
                | (TaskCommand::Recolor, PairedTask::Recolor)
                | (TaskCommand::Inpaint, PairedTask::Inpaint { .. })
        )
    }
}

/// Originals of the model's own size are degraded first, so the output can be measured; other
/// images (small ones to upscale, grey ones to recolour) are prepared and restored as given.
pub fn run(cmd: TaskCommand, args: TaskArgs, device: &burn::tensor::Device) -> Result<()> {
    if let Some(o) = &args.out {
        extension(o)?;
    }
    let run = aekit::Run::open(&args.input.run_dir, device)?;
    let task = run
        .model
        .config()
        .io()
        .task
        .filter(|t| cmd.matches(*t))
        .ok_or_else(|| {
            Error::invalid(format!(
                "{} was not trained for {} (train with --task {}{})",
                run.dir.path.display(),
                cmd.name(),
                cmd.name(),
                match cmd {
                    TaskCommand::Upscale => ":2",
                    TaskCommand::Inpaint => ":10",
                    TaskCommand::Recolor => "",
                }
            ))
        })?;
    let full = run
        .model
        .config()
        .io()
        .input_shape
        .clone()
        .ok_or_else(|| Error::invalid("the run's model has no image shape"))?;
    let mut data = aekit::data::load(&args.input.data_config(&run)?, args.input.split.into())?;
    run.preprocessor.apply(&mut data.x)?;
    let n = args.n.max(1);
    let grid_name = format!("{}.png", cmd.name());
    let (outputs, grid_rows) = if data.sample_shape == full {
        let (m, input, output) =
            aekit::eval::evaluate_task(&run, &data, args.seed)?.expect("the run has a task");
        let baseline = match task {
            PairedTask::Upscale { .. } => "bilinear",
            _ => "input",
        };
        println!(
            "{task} on {} samples of {}: PSNR {:.2} dB ({baseline}) -> {:.2} dB (model); mse/pixel {:.6} -> {:.6}",
            data.len(),
            data.origin,
            m.psnr_noisy_db,
            m.psnr_denoised_db,
            m.noisy_input.mse_per_pixel,
            m.denoised.mse_per_pixel
        );
        let rows = [input.head(n), output.head(n), data.x.head(n)];
        (output, rows.to_vec())
    } else {
        let size: usize = data.sample_shape.iter().product();
        let mut prepared = Vec::with_capacity(data.len() * full.iter().product::<usize>());
        for img in data.x.data.chunks_exact(size) {
            prepared.extend(task.prepare(img, &data.sample_shape, &full)?);
        }
        let input = Matrix::new(data.len(), full.iter().product(), prepared)?;
        let output = run.model.reconstruct(&input)?;
        println!(
            "{task}: {} images of {} ({:?}) restored to {:?}",
            data.len(),
            data.origin,
            data.sample_shape,
            full
        );
        let rows = [input.head(n), output.head(n)];
        (output, rows.to_vec())
    };
    let refs: Vec<&Matrix> = grid_rows.iter().collect();
    if let Some(png) = save_run_grid(&run, args.png.as_ref(), &grid_name, |g| {
        g.stacked(&refs, n);
    })? {
        println!(
            "grid (input, output{}) written to {}",
            if refs.len() == 3 { ", original" } else { "" },
            png.display()
        );
    }
    if let Some(o) = &args.out {
        write_matrix(o, &outputs, "x", data.labels.as_deref())?;
        println!("{} outputs written to {}", outputs.rows, o.display());
    }
    Ok(())
}
