//! `aekit eval`

use std::path::PathBuf;

use clap::Args;

use aekit::error::Result;

use super::args::{DataFlags, SplitArg, open_run_with_data};

#[derive(Args, Debug)]
pub struct EvalArgs {
    run_dir: PathBuf,
    #[command(flatten)]
    data: DataFlags,
    /// Which split to evaluate on.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    split: SplitArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, data) = open_run_with_data(&args.run_dir, &args.data, args.split, device)?;
    let m = aekit::eval::evaluate(&run, &data)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&m).expect("metrics serialise")
        );
        return Ok(());
    }
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
