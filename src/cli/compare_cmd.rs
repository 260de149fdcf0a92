//! `aekit compare` and `aekit probe`: autoencoders beside PCA, by reconstruction error and by
//! how well their codes classify.

use std::path::PathBuf;

use clap::Args;

use aekit::data::{DataConfig, Split};
use aekit::error::Result;
use aekit::eval::probe::{Distance, ProbeOptions, ProbeScores, SoftmaxOptions, probe_run};
use aekit::viz::charts::comparison_chart;

use super::args::{DataFlags, RunData};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run directories to compare with PCA (their code sizes join --dims).
    runs: Vec<PathBuf>,
    #[command(flatten)]
    data: DataFlags,
    /// PCA code sizes.
    #[arg(long, value_delimiter = ',', default_value = "2,10,30")]
    dims: Vec<usize>,
    /// Also draw the errors against code size into this PNG.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn compare(args: CompareArgs, device: &burn::tensor::Device) -> Result<()> {
    let runs = args
        .runs
        .iter()
        .map(|p| aekit::Run::open(p, device))
        .collect::<Result<Vec<_>>>()?;
    let mut data_cfg = runs
        .first()
        .map_or_else(DataConfig::default, |r| r.config.data.clone());
    args.data.apply_to_run_data(&mut data_cfg)?;
    let c = aekit::eval::compare::compare(&runs, &data_cfg, &args.dims)?;
    for run in &c.differently_scaled {
        tracing::warn!("{run} scales its data differently; its error is in its own units");
    }
    if let Some(path) = &args.chart {
        aekit::viz::grid::save_png(path, &comparison_chart(&c.rows)?)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&c.rows).expect("rows serialise")
        );
        return Ok(());
    }
    println!(
        "reconstruction error on {} ({} test samples of {} features; PCA fitted on {} training samples)",
        c.test_origin, c.test_samples, c.features, c.train_samples
    );
    println!(
        "  {:>5}  {:>12}  {:>12}  method",
        "dims", "mse/pixel", "sse/image"
    );
    for r in &c.rows {
        let run = r.run.as_ref().map_or(String::new(), |p| format!("  ({p})"));
        println!(
            "  {:>5}  {:>12.6}  {:>12.4}  {}{run}",
            r.dims, r.mse_per_pixel, r.sse_per_image, r.method
        );
    }
    if let Some(path) = &args.chart {
        println!("chart written to {}", path.display());
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    #[command(flatten)]
    input: RunData,
    /// Neighbours of the kNN classifier.
    #[arg(short, long, default_value_t = 5)]
    k: usize,
    /// Distance of the kNN classifier.
    #[arg(long, value_enum, default_value_t = Distance::Euclidean)]
    distance: Distance,
    /// Epochs of the softmax probe.
    #[arg(long, default_value_t = SoftmaxOptions::default().epochs)]
    probe_epochs: usize,
    /// Training rows whose labels fit the probes: all, or N drawn balanced over the classes
    /// with --seed (the few-label protocol `aekit finetune --labelled` uses).
    #[arg(long, default_value_t = aekit::data::LabelChoice::All)]
    labelled: aekit::data::LabelChoice,
    /// Seed of the --labelled draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip the PCA baseline.
    #[arg(long)]
    no_pca: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn probe_cmd(args: ProbeArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, test) = args.input.open(device)?;
    let train = run.load_data(Some(&args.input.data_config(&run)?), Split::Train)?;
    let opts = ProbeOptions {
        k: args.k,
        distance: args.distance,
        softmax: SoftmaxOptions {
            epochs: args.probe_epochs,
            ..SoftmaxOptions::default()
        },
        labelled: args.labelled,
        label_seed: args.seed,
    };
    let report = probe_run(&run, &train, &test, &opts, !args.no_pca, device)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
        return Ok(());
    }
    println!(
        "{}: probes fitted on {} labelled of {} training samples, scored on {} test samples",
        run.model.config().describe(),
        report.labelled_samples,
        report.train_samples,
        report.test_samples
    );
    println!(
        "  {:<12} {:>5}  {:>14}  {:>16}",
        "codes",
        "dims",
        format!("{}-NN accuracy", args.k),
        "softmax accuracy"
    );
    let line = |name: &str, s: &ProbeScores| {
        println!(
            "  {:<12} {:>5}  {:>13.2}%  {:>15.2}%",
            name,
            s.dims,
            100.0 * s.knn_accuracy,
            100.0 * s.softmax_accuracy
        )
    };
    line("autoencoder", &report.autoencoder);
    if let Some(p) = &report.pca {
        line("PCA", p);
    }
    Ok(())
}
