//! `aekit eval`

use clap::Args;

use aekit::error::Result;

use super::args::RunData;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    input: RunData,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, data) = args.input.open(device)?;
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
