//! `aekit plot` and `aekit report`

use std::path::PathBuf;

use clap::Args;

use aekit::error::Result;
use aekit::viz::{FigureKind, FigureOptions};

use super::args::RunData;

/// Settings of the figures, shared by `plot` and `report`; their defaults are the library's
/// (`FigureOptions::default()`), defined there once.
#[derive(Args, Debug)]
pub struct FigureFlags {
    /// Samples per row of image grids (and the side of the VAE sample grid).
    #[arg(short, long, default_value_t = FigureOptions::default().n)]
    n: usize,
    /// Cells per side of the manifold grid.
    #[arg(long, default_value_t = FigureOptions::default().grid)]
    grid: usize,
    /// Images in a blend, endpoints included.
    #[arg(long, default_value_t = FigureOptions::default().blend_steps)]
    steps: usize,
    /// The two samples to blend, e.g. 3,17 (default: the first two of different classes).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    pair: Option<Vec<usize>>,
    /// Blend codes along the great circle (for Gaussian latents) instead of the straight line.
    #[arg(long)]
    spherical: bool,
    /// The sample whose code is traversed.
    #[arg(long, default_value_t = FigureOptions::default().traverse_index)]
    index: usize,
    /// Shifts of each code dimension in a traversal.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, num_args = 1)]
    deltas: Option<Vec<f32>>,
    /// Code dimensions traversed, from the first.
    #[arg(long, default_value_t = FigureOptions::default().traverse_dims)]
    dims: usize,
    /// Most samples in the code map.
    #[arg(long, default_value_t = FigureOptions::default().max_points)]
    points: usize,
    /// Seed of noise and prior draws.
    #[arg(long, default_value_t = FigureOptions::default().seed)]
    seed: u64,
    /// For a conditional model (--model cvae): the class grids and samples are decoded under
    /// (default: each grid's sample's own label; samples of every class in turn).
    #[arg(long)]
    class: Option<u32>,
    /// For the series figure of a panel of series: which one (default: the first).
    #[arg(long)]
    series_id: Option<String>,
    /// For the series figure: a point's score is the mean (mean) or the largest (max) of its
    /// errors over the windows that cover it, or the mean of their whole scores (window).
    #[arg(long, value_enum, default_value_t)]
    point_score: aekit::data::series::PointReduce,
    /// For the series figure: the share of the training range's point scores above the
    /// threshold (0: the largest of them).
    #[arg(long, default_value_t = FigureOptions::default().series.contamination)]
    contamination: f64,
}

impl FigureFlags {
    fn options(&self) -> FigureOptions {
        let d = FigureOptions::default();
        FigureOptions {
            n: self.n.max(1),
            grid: self.grid.max(2),
            blend_steps: self.steps.max(2),
            pair: self.pair.as_ref().map(|p| (p[0], p[1])),
            spherical: self.spherical,
            traverse_index: self.index,
            deltas: self.deltas.clone().unwrap_or(d.deltas),
            traverse_dims: self.dims.max(1),
            max_points: self.points.max(2),
            seed: self.seed,
            class: self.class,
            ..d
        }
    }
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    #[command(flatten)]
    input: RunData,
    /// Which figure.
    #[arg(value_enum)]
    figure: FigureKind,
    /// PNG to write (default RUN_DIR/<figure>.png).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    flags: FigureFlags,
}

/// The options, with the data's true factors where they are known (the built-in shapes).
fn options_for(
    flags: &FigureFlags,
    input: &RunData,
    run: &aekit::Run,
    data: &aekit::Dataset,
) -> Result<FigureOptions> {
    let factors = aekit::data::spec::factors(&input.data_config(run)?, input.split.into())?
        .filter(|f| f.rows == data.len());
    let series = aekit::viz::figures::SeriesFigure {
        data: Some(input.data_config(run)?),
        split: input.split.into(),
        reduce: flags.point_score,
        contamination: flags.contamination,
        id: flags.series_id.clone(),
        points: None,
    };
    Ok(FigureOptions {
        factors,
        series,
        ..flags.options()
    })
}

pub fn plot(args: PlotArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, data) = args.input.open(device)?;
    let opts = options_for(&args.flags, &args.input, &run, &data)?;
    let fig = aekit::viz::figure(&run, &data, args.figure, &opts)?;
    let path = args
        .out
        .unwrap_or_else(|| run.dir.path.join(format!("{}.png", args.figure.name())));
    aekit::viz::save_png(&path, &fig.image)?;
    println!(
        "{} ({}x{}) written to {}: {}",
        fig.title,
        fig.image.width(),
        fig.image.height(),
        path.display(),
        fig.caption
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    input: RunData,
    /// HTML file to write (default RUN_DIR/report.html).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    flags: FigureFlags,
}

pub fn report(args: ReportArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, data) = args.input.open(device)?;
    let opts = options_for(&args.flags, &args.input, &run, &data)?;
    let path = aekit::viz::write_report(&run, &data, &opts, args.out.as_deref())?;
    println!("report written to {}", path.display());
    Ok(())
}
