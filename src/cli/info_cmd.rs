//! `aekit info`

use std::path::PathBuf;

use clap::Args;

use aekit::error::Result;

#[derive(Args, Debug)]
pub struct InfoArgs {
    run_dir: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let dir = aekit::RunDir::open(&args.run_dir)?;
    let cfg = dir.config()?;
    let model = dir.load_model(&burn::tensor::Device::flex(), false)?;
    let summary = dir.summary().ok();
    let layers: Vec<(String, Vec<usize>)> = model
        .export()
        .into_iter()
        .map(|t| (t.name, t.shape))
        .collect();
    if args.json {
        let v = serde_json::json!({
            "model": cfg.model.describe(),
            "parameters": model.num_params(),
            "config": cfg,
            "tensors": layers,
            "summary": summary,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serialises"));
        return Ok(());
    }
    println!("run          {}", dir.path.display());
    println!("model        {}", cfg.model.describe());
    println!("parameters   {}", model.num_params());
    println!("loss         {}", cfg.model.loss_name());
    println!(
        "data         {} (scale {:?})",
        cfg.data.source, cfg.data.scale
    );
    println!(
        "optimiser    {:?} lr {} batch {} epochs {} schedule {:?} seed {}",
        cfg.train.optimizer,
        cfg.train.lr,
        cfg.train.batch_size,
        cfg.train.epochs,
        cfg.train.schedule,
        cfg.train.seed
    );
    println!("tensors");
    for (name, shape) in &layers {
        println!("  {name:<20} {shape:?}");
    }
    match summary {
        Some(s) => {
            println!(
                "training     {} epochs ({}), {:.1}s, {:.0} samples/s",
                s.epochs_completed, s.stop_reason, s.train_seconds, s.samples_per_sec
            );
            if let (Some(e), Some(v)) = (s.best_epoch, s.best_val_loss) {
                println!("best         epoch {e}, validation loss {v:.6} per element");
            }
        }
        None => println!("training     not finished (no summary.json)"),
    }
    Ok(())
}
