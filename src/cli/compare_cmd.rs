//! `aekit compare` and `aekit probe`: autoencoders beside PCA, by reconstruction error and by
//! how well their codes classify.

use std::path::PathBuf;

use clap::Args;

use aekit::data::{DataConfig, Preprocessor, Split};
use aekit::error::{Error, Result};
use aekit::eval::compare::{ComparisonRow, pca_rows, run_row};
use aekit::eval::pca::Pca;
use aekit::eval::probe::{Distance, ProbeOptions, ProbeScores, SoftmaxOptions, probe};
use aekit::viz::charts::{Line, Titles, lines};

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
    // PCA sees the data as the first run saw it, so the errors are in the same units.
    let train = aekit::data::load(&data_cfg, Split::Train)?;
    let preprocessor = runs.first().map_or_else(
        || Preprocessor::fit(data_cfg.scale, &train),
        |r| r.preprocessor.clone(),
    );
    let train = preprocessor.transform(&train)?;
    let test = preprocessor.transform(&aekit::data::load(&data_cfg, Split::Test)?)?;
    let mut dims = args.dims.clone();
    dims.extend(runs.iter().map(|r| r.model.latent_dim()));
    dims.sort_unstable();
    dims.dedup();
    if dims.contains(&0) {
        return Err(Error::invalid("--dims: code sizes must be at least 1"));
    }
    let mut rows = pca_rows(&train.x, &test.x, &dims)?;
    for run in &runs {
        if run.preprocessor.scaling != preprocessor.scaling {
            tracing::warn!(
                "{} scales its data differently ({:?}); its error is in its own units",
                run.dir.path.display(),
                run.preprocessor.scaling
            );
        }
        rows.push(run_row(run, &run.load_data(Some(&data_cfg), Split::Test)?)?);
    }
    if let Some(path) = &args.chart {
        aekit::viz::grid::save_png(path, &comparison_chart(&rows)?)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialise")
        );
        return Ok(());
    }
    println!(
        "reconstruction error on {} ({} test samples of {} features; PCA fitted on {} training samples)",
        test.origin,
        test.len(),
        test.dim(),
        train.len()
    );
    println!(
        "  {:>5}  {:>12}  {:>12}  method",
        "dims", "mse/pixel", "sse/image"
    );
    for r in &rows {
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

/// Squared error per image against code size: PCA as a line, each run as a point.
fn comparison_chart(rows: &[ComparisonRow]) -> Result<image::RgbImage> {
    let mut series = vec![Line {
        name: "PCA".into(),
        points: rows
            .iter()
            .filter(|r| r.run.is_none())
            .map(|r| (r.dims as f32, r.sse_per_image as f32))
            .collect(),
    }];
    for r in rows.iter().filter(|r| r.run.is_some()) {
        series.push(Line {
            name: format!("{} ({})", r.method, r.run.as_deref().unwrap_or("")),
            points: vec![(r.dims as f32, r.sse_per_image as f32)],
        });
    }
    let titles = Titles {
        title: "Reconstruction error against code size".into(),
        x: "code dimensions".into(),
        y: "squared error per test sample".into(),
    };
    lines(&series, &titles, (720, 480))
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
    /// Skip the PCA baseline.
    #[arg(long)]
    no_pca: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct ProbeReport {
    k: usize,
    distance: Distance,
    train_samples: usize,
    test_samples: usize,
    autoencoder: ProbeScores,
    #[serde(skip_serializing_if = "Option::is_none")]
    pca: Option<ProbeScores>,
}

fn labels_of(data: &aekit::Dataset) -> Result<&[u32]> {
    data.labels.as_deref().ok_or_else(|| {
        Error::invalid(format!(
            "{} has no labels: probing codes needs labelled training and test data",
            data.origin
        ))
    })
}

pub fn probe_cmd(args: ProbeArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, test) = args.input.open(device)?;
    let train = run.load_data(Some(&args.input.data_config(&run)?), Split::Train)?;
    let (train_labels, test_labels) = (labels_of(&train)?, labels_of(&test)?);
    let opts = ProbeOptions {
        k: args.k,
        distance: args.distance,
        softmax: SoftmaxOptions {
            epochs: args.probe_epochs,
            ..SoftmaxOptions::default()
        },
    };
    let score = |tr: &aekit::Matrix, te: &aekit::Matrix| {
        probe(tr, train_labels, te, test_labels, &opts, device)
    };
    let autoencoder = score(&run.model.encode(&train.x)?, &run.model.encode(&test.x)?)?;
    let pca = if args.no_pca {
        None
    } else {
        let pca = Pca::fit(&train.x, run.model.latent_dim())?;
        Some(score(&pca.transform(&train.x)?, &pca.transform(&test.x)?)?)
    };
    let report = ProbeReport {
        k: args.k,
        distance: args.distance,
        train_samples: train.len(),
        test_samples: test.len(),
        autoencoder,
        pca,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
        return Ok(());
    }
    println!(
        "{}: codes fitted on {} training samples, scored on {} test samples",
        run.model.config().describe(),
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
