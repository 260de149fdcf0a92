//! The figures of a trained run, each built from the run and a dataset: reconstructions, the
//! 2-D code map, the manifold grid, blending, traversals, prior samples and training curves.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Matrix};
use crate::error::{Error, Result};
use crate::eval::pca::Pca;
use crate::explore;
use crate::run::Run;
use crate::viz::charts::{self, Titles};
use crate::viz::grid::ImageGrid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FigureKind {
    /// Originals above reconstructions (noisy / denoised / clean for denoising runs).
    Reconstructions,
    /// Test codes in 2-D (PCA of wider codes), coloured by label.
    Codes,
    /// Decoded grid over a 2-D plane of the code space.
    Manifold,
    /// Pixel-space blend beside latent-space blend of two inputs.
    Blend,
    /// Each code dimension of one input shifted by a list of deltas.
    Traverse,
    /// Decoded draws from a VAE's prior.
    Samples,
    /// Loss per epoch.
    Curves,
    /// A time series run's series, its reconstruction and its point scores with the
    /// threshold, flagged spans shaded.
    Series,
    /// A typed table's columns: each column's mean share of the rows' scores, and the
    /// highest-scored rows as a heat map of their columns' shares.
    Columns,
}

impl FigureKind {
    pub const ALL: [FigureKind; 9] = [
        FigureKind::Curves,
        FigureKind::Series,
        FigureKind::Columns,
        FigureKind::Reconstructions,
        FigureKind::Codes,
        FigureKind::Manifold,
        FigureKind::Blend,
        FigureKind::Traverse,
        FigureKind::Samples,
    ];

    /// Whether the figure draws samples of data (the learning curves, prior samples and a
    /// prior's 2-D manifold need none).
    pub fn needs_data(self, model: &crate::model::Autoencoder) -> bool {
        match self {
            // The series figure reads the series itself (its points, not windows).
            FigureKind::Curves | FigureKind::Samples | FigureKind::Series => false,
            FigureKind::Manifold => explore::manifold_needs_codes(model),
            _ => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FigureKind::Reconstructions => "reconstructions",
            FigureKind::Codes => "codes",
            FigureKind::Manifold => "manifold",
            FigureKind::Blend => "blend",
            FigureKind::Traverse => "traverse",
            FigureKind::Samples => "samples",
            FigureKind::Curves => "curves",
            FigureKind::Series => "series",
            FigureKind::Columns => "columns",
        }
    }
}

/// Settings shared by the figures.
#[derive(Debug, Clone)]
pub struct FigureOptions {
    /// Samples per row of image grids.
    pub n: usize,
    /// Cells per side of the manifold grid.
    pub grid: usize,
    /// Images in a blend, endpoints included.
    pub blend_steps: usize,
    /// The two samples to blend (indices into the data); default: the first two of different
    /// classes.
    pub pair: Option<(usize, usize)>,
    /// Spherical interpolation of the codes.
    pub spherical: bool,
    /// The sample to traverse.
    pub traverse_index: usize,
    /// Shifts applied to each code dimension.
    pub deltas: Vec<f32>,
    /// How many code dimensions to traverse, from the first.
    pub traverse_dims: usize,
    /// Most points in the code map.
    pub max_points: usize,
    /// Chart size in pixels.
    pub chart_size: (u32, u32),
    pub seed: u64,
    /// For a conditional model, the class grids are decoded under; default: the label of the
    /// sample a grid starts from, and every class in turn for samples.
    pub class: Option<u32>,
    /// The true factors of the data's samples, when known (the built-in shapes): the
    /// traversal then names the factor each dimension carries most.
    pub factors: Option<Matrix>,
    /// What the series figure scores and draws.
    pub series: SeriesFigure,
}

/// The series a time series run's figure draws, and how its points are scored.
#[derive(Debug, Clone)]
pub struct SeriesFigure {
    /// The data (default: the run's own).
    pub data: Option<crate::data::DataConfig>,
    pub split: crate::data::Split,
    pub reduce: crate::data::series::PointReduce,
    /// The threshold's share of the training range's point scores above it.
    pub contamination: f64,
    /// Which series of a panel (default: the first).
    pub id: Option<String>,
    /// A series held in memory (`points × channels`, raw) to draw instead of the data, with
    /// the point threshold the run stored when it was trained.
    pub points: Option<Matrix>,
}

impl Default for SeriesFigure {
    fn default() -> Self {
        Self {
            data: None,
            split: crate::data::Split::Test,
            reduce: Default::default(),
            contamination: crate::eval::anomaly::DEFAULT_CONTAMINATION,
            id: None,
            points: None,
        }
    }
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            n: 10,
            grid: 15,
            blend_steps: 9,
            pair: None,
            spherical: false,
            traverse_index: 0,
            deltas: explore::DEFAULT_DELTAS.to_vec(),
            traverse_dims: crate::explore::DEFAULT_TRAVERSE_DIMS,
            max_points: 5000,
            chart_size: (720, 560),
            seed: 0,
            class: None,
            factors: None,
            series: SeriesFigure::default(),
        }
    }
}

/// A rendered figure with what it shows.
#[derive(Debug, Clone)]
pub struct Figure {
    pub kind: FigureKind,
    pub title: String,
    pub caption: String,
    pub image: RgbImage,
}

fn grid_for(run: &Run) -> Result<ImageGrid> {
    let (c, h, w) = run.image_shape()?;
    Ok(ImageGrid::new(h, w, c))
}

/// Draws a grid (filled by `fill`) of an image run, to appear at `png` or
/// `RUN_DIR/default_name` when `outputs` are committed; returns where, or `None` when the
/// run's samples are not images.
pub fn save_run_grid(
    run: &Run,
    png: Option<&std::path::Path>,
    default_name: &str,
    outputs: &mut crate::io::OutputSet,
    fill: impl FnOnce(&mut ImageGrid),
) -> Result<Option<std::path::PathBuf>> {
    let Ok(mut grid) = grid_for(run) else {
        return Ok(None);
    };
    fill(&mut grid);
    let path = png.map_or_else(|| run.dir.path.join(default_name), |p| p.to_path_buf());
    let image = grid.render();
    outputs.write(&path, |p| crate::viz::save_png(p, &image))?;
    Ok(Some(path))
}

/// The first `max` samples of `data` (so figures stay quick on large test sets).
fn head(data: &Dataset, max: usize) -> (Matrix, Option<Vec<u32>>) {
    let n = data.len().min(max);
    (
        data.x.head(n),
        data.labels.as_ref().map(|l| l[..n].to_vec()),
    )
}

/// The model a grid is decoded with: a conditional model under `opts.class`, or else under
/// the label of sample `sample` of `data` (class 0 without labels); other models as they are.
fn model_for_grid<'r>(
    run: &'r Run,
    data: &Dataset,
    sample: usize,
    opts: &FigureOptions,
) -> Result<std::borrow::Cow<'r, crate::model::Autoencoder>> {
    if run.model.classes() == 0 {
        return Ok(std::borrow::Cow::Borrowed(&run.model));
    }
    let class = opts
        .class
        .or_else(|| data.labels.as_ref().and_then(|l| l.get(sample).copied()))
        .unwrap_or(0);
    Ok(std::borrow::Cow::Owned(run.model.with_class(class)?))
}

/// Builds figure `kind` of `run` on `data`.
pub fn figure(run: &Run, data: &Dataset, kind: FigureKind, opts: &FigureOptions) -> Result<Figure> {
    if data.is_empty() && kind.needs_data(&run.model) {
        return Err(Error::invalid(format!(
            "the {} figure draws samples of the data, and none were given",
            kind.name()
        )));
    }
    let model = &run.model;
    let make = |title: &str, caption: String, image: RgbImage| Figure {
        kind,
        title: title.to_string(),
        caption,
        image,
    };
    match kind {
        FigureKind::Series => {
            let (title, caption, image) = series_figure(run, &opts.series, opts.chart_size)?;
            Ok(make(&title, caption, image))
        }
        FigureKind::Columns => {
            let (caption, image) = columns_figure(run, data, opts.chart_size)?;
            Ok(make("Columns", caption, image))
        }
        FigureKind::Reconstructions => {
            let mut grid = grid_for(run)?;
            let (x, labels) = head(data, opts.n);
            let labels = labels.as_deref();
            match model.config().noise() {
                Some(noise) => {
                    let noisy = crate::eval::corrupt(&x, noise, opts.seed);
                    let out = model.reconstruct_given(&noisy, labels)?;
                    grid.stacked(&[&noisy, &out, &x], opts.n);
                    Ok(make(
                        "Denoising",
                        format!(
                            "Rows: inputs with {noise} noise, the model's outputs, the clean inputs."
                        ),
                        grid.render(),
                    ))
                }
                None => {
                    let out = model.reconstruct_given(&x, labels)?;
                    grid.stacked(&[&x, &out], opts.n);
                    Ok(make(
                        "Reconstructions",
                        "Top row: test inputs; bottom row: their reconstructions.".into(),
                        grid.render(),
                    ))
                }
            }
        }
        FigureKind::Codes => {
            let (x, labels) = head(data, opts.max_points);
            let codes = model.encode_given(&x, labels.as_deref())?;
            let (points, xt, yt, note) = match codes.cols {
                0 | 1 => {
                    return Err(Error::invalid(
                        "a code map needs a code of at least 2 dimensions",
                    ));
                }
                2 => (
                    codes,
                    "code 1".to_string(),
                    "code 2".to_string(),
                    String::new(),
                ),
                k => {
                    let pca = Pca::fit(&codes, 2)?;
                    let r = &pca.explained_variance_ratio;
                    (
                        pca.transform(&codes)?,
                        format!("PCA 1 of the {k}-d code ({:.0}% of variance)", 100.0 * r[0]),
                        format!("PCA 2 of the {k}-d code ({:.0}% of variance)", 100.0 * r[1]),
                        format!(
                            " The {k}-d codes are projected on their first two principal components."
                        ),
                    )
                }
            };
            let title = if run.model.capabilities().stochastic_encoder {
                "Posterior means of the test data"
            } else {
                "Codes of the test data"
            };
            let image = charts::scatter(
                &points,
                labels.as_deref(),
                data.class_names.as_deref(),
                &Titles {
                    title: title.into(),
                    x: xt,
                    y: yt,
                },
                opts.chart_size,
            )?;
            Ok(make(
                "Code map",
                format!("{} test samples, coloured by label.{note}", points.rows),
                image,
            ))
        }
        FigureKind::Manifold => {
            let mut grid = grid_for(run)?;
            grid.zoom = 1;
            grid.gap = 0;
            let (x, labels) = head(data, opts.max_points);
            let codes = model.encode_given(&x, labels.as_deref())?;
            let m = explore::manifold(&*model_for_grid(run, data, 0, opts)?, &codes, opts.grid)?;
            grid.tiled(&m.images, m.n);
            Ok(make(
                "Manifold",
                format!(
                    "Decoded {0}x{0} grid over {1}; the second coordinate decreases downwards.",
                    m.n, m.axes
                ),
                grid.render(),
            ))
        }
        FigureKind::Blend => {
            let mut grid = grid_for(run)?;
            let (a, b) = match opts.pair {
                Some(p) => p,
                None => default_pair(data),
            };
            if a >= data.len() || b >= data.len() {
                return Err(Error::invalid(format!(
                    "blend pair ({a}, {b}) is outside the {} samples",
                    data.len()
                )));
            }
            let bl = explore::blend(
                &*model_for_grid(run, data, a, opts)?,
                data.x.row(a),
                data.x.row(b),
                opts.blend_steps,
                opts.spherical,
            )?;
            grid.stacked(&[&bl.pixel, &bl.latent], bl.weights.len());
            let path = if opts.spherical {
                "spherical"
            } else {
                "linear"
            };
            Ok(make(
                "Blending",
                format!(
                    "Samples {a} and {b}. Top: pixel blend (1-t)a + t b; bottom: decoded {path} blend of their codes, t from 0 to 1."
                ),
                grid.render(),
            ))
        }
        FigureKind::Traverse => {
            let mut grid = grid_for(run)?;
            let i = opts.traverse_index;
            if i >= data.len() {
                return Err(Error::invalid(format!("sample {i} is outside the data")));
            }
            let dims: Vec<usize> = (0..model.latent_dim().min(opts.traverse_dims.max(1))).collect();
            let out = explore::traverse(
                &*model_for_grid(run, data, i, opts)?,
                data.x.row(i),
                &dims,
                &opts.deltas,
            )?;
            grid.tiled(&out, opts.deltas.len());
            let deltas: Vec<String> = opts.deltas.iter().map(|d| format!("{d:+}")).collect();
            let carried = match &opts.factors {
                Some(f) => factors_carried(model, data, f, dims.len())?,
                None => String::new(),
            };
            Ok(make(
                "Latent traversal",
                format!(
                    "Sample {i}: row k decodes its code with dimension k shifted by {} (columns).{carried}",
                    deltas.join(", ")
                ),
                grid.render(),
            ))
        }
        FigureKind::Samples => {
            let mut grid = grid_for(run)?;
            let n = opts.n.max(1);
            let sampled = match opts.class {
                Some(c) => std::borrow::Cow::Owned(model.with_class(c)?),
                None => std::borrow::Cow::Borrowed(model),
            };
            let s = crate::eval::sample_prior(&sampled, n * n, opts.seed)?;
            grid.tiled(&s, n);
            Ok(make(
                "Samples from the prior",
                format!("{} codes drawn from N(0, I), decoded.", n * n),
                grid.render(),
            ))
        }
        FigureKind::Curves => {
            let metrics = run.dir.metrics()?;
            let image = charts::training_curves(
                &metrics,
                run.model.capabilities().stochastic_encoder,
                opts.chart_size,
            )?;
            Ok(make(
                "Training curves",
                format!("Loss per element over {} epochs.", metrics.len()),
                image,
            ))
        }
    }
}

/// " Rows: z1 x 0.62, ...": the factor each of the first `rows` code dimensions carries most
/// (mutual information over the factor's entropy), from the codes of `data` against its true
/// `factors`.
fn factors_carried(
    model: &crate::model::Autoencoder,
    data: &Dataset,
    factors: &Matrix,
    rows: usize,
) -> Result<String> {
    let codes = model.encode_given(&data.x, data.labels.as_deref())?;
    let d = crate::eval::disentanglement::disentanglement(
        &codes,
        factors,
        &crate::data::shapes::FACTOR_NAMES,
        &crate::data::shapes::FACTOR_IS_CATEGORICAL,
    )?;
    let rows: Vec<String> = d
        .dimension_factor
        .iter()
        .take(rows)
        .enumerate()
        .map(|(j, (f, share))| format!("z{} {f} {share:.2}", j + 1))
        .collect();
    Ok(format!(
        " The factor each row's dimension carries most (normalised mutual information, MIG {:.3}): {}.",
        d.mig,
        rows.join(", ")
    ))
}

/// The first two samples of different classes (or the first two samples).
fn default_pair(data: &Dataset) -> (usize, usize) {
    if let Some(l) = &data.labels
        && let Some(b) = l.iter().position(|&c| c != l[0])
    {
        return (0, b);
    }
    (0, 1.min(data.len() - 1))
}

/// Whether `kind` applies to `run` (images for grids, 2-D codes and more for maps, a prior
/// for samples).
pub fn applies(run: &Run, kind: FigureKind) -> bool {
    let images = run.image_shape().is_ok();
    match kind {
        FigureKind::Curves => true,
        FigureKind::Series => run.config.data.is_series(),
        FigureKind::Columns => run.preprocessor.columns.is_some(),
        FigureKind::Codes => run.model.latent_dim() >= 2,
        FigureKind::Manifold => images && run.model.latent_dim() >= 2,
        FigureKind::Samples => images && run.model.capabilities().prior,
        FigureKind::Reconstructions | FigureKind::Blend | FigureKind::Traverse => images,
    }
}

/// Rows the columns figure draws as its heat map, the highest-scored first.
pub const COLUMNS_FIGURE_ROWS: usize = 20;

/// The columns figure of a typed run on the rows of `data`: `(caption, image)`. Rows are
/// flagged by the detector stored with the run when it judges the same score.
fn columns_figure(run: &Run, data: &Dataset, (w, h): (u32, u32)) -> Result<(String, RgbImage)> {
    use crate::eval::anomaly::{AnomalyDetector, ScoreKind};
    let columns = crate::eval::columns::columns_of(run)?;
    let explained = crate::eval::columns::explain(run, &data.x, 0)?;
    let detector = AnomalyDetector::stored(run)?
        .filter(|d| d.kind == ScoreKind::default_for(run.model.config()));
    let flagged: Vec<bool> = explained
        .iter()
        .map(|e| detector.as_ref().is_some_and(|d| e.score > d.threshold))
        .collect();
    let names: Vec<String> = columns.columns.iter().map(|c| c.name.clone()).collect();
    let mean_over = |keep: &dyn Fn(usize) -> bool| -> Vec<f64> {
        let rows: Vec<usize> = (0..explained.len()).filter(|&i| keep(i)).collect();
        (0..names.len())
            .map(|j| {
                rows.iter()
                    .map(|&i| explained[i].columns[j].share)
                    .sum::<f64>()
                    / rows.len().max(1) as f64
            })
            .collect()
    };
    let n_flagged = flagged.iter().filter(|f| **f).count();
    let mut order: Vec<usize> = (0..explained.len()).collect();
    order.sort_by(|&a, &b| explained[b].score.total_cmp(&explained[a].score));
    order.truncate(COLUMNS_FIGURE_ROWS);
    let fraction = |share: f64, score: f64| if score > 0.0 { share / score } else { 0.0 };
    let rows = order
        .iter()
        .map(|&i| charts::ColumnsRow {
            label: format!("row {i}: {:.3}", explained[i].score),
            cells: explained[i]
                .columns
                .iter()
                .map(|c| (c.value.clone(), fraction(c.share, explained[i].score)))
                .collect(),
            flagged: flagged[i],
        })
        .collect();
    let chart = charts::ColumnsChart {
        title: "Each column's share of the rows' scores".into(),
        columns: &names,
        mean_share: mean_over(&|_| true),
        flagged_share: (n_flagged > 0).then(|| mean_over(&|i| flagged[i])),
        rows,
    };
    let image = charts::columns(&chart, (w.max(960), h))?;
    let top = order.first().map_or_else(String::new, |&i| {
        let e = &explained[i];
        let most = e
            .columns
            .iter()
            .max_by(|a, b| a.share.total_cmp(&b.share))
            .expect("a typed table has columns");
        format!(
            "; row {i} scores highest ({:.3}), {:.0}% of it from '{}' ({}, reconstructed {})",
            e.score,
            100.0 * fraction(most.share, e.score),
            most.column,
            if most.value.is_empty() {
                "missing"
            } else {
                &most.value
            },
            most.reconstructed
        )
    });
    let bars = match (&detector, n_flagged) {
        (Some(d), 1..) => format!(
            "each column's mean share over every row (grey) and over the {n_flagged} rows above the threshold {:.4} (red)",
            d.threshold
        ),
        _ => "each column's mean share over every row".to_string(),
    };
    let caption = format!(
        "Bars: {bars}. Below, the {} highest-scored of {} rows (flagged ones' labels red), each cell the row's value shaded by its column's share of the row's score{top}.",
        order.len(),
        explained.len()
    );
    Ok((caption, image))
}

/// The series figure: `(title, caption, image)`.
fn series_figure(
    run: &Run,
    which: &SeriesFigure,
    (w, _): (u32, u32),
) -> Result<(String, String, RgbImage)> {
    use crate::eval::series;
    let cfg = which.data.as_ref().unwrap_or(&run.config.data);
    let (detector, points) = match &which.points {
        Some(values) => {
            let stored = series::PointDetector::stored(run)?
                .filter(|p| p.reduce == which.reduce)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: the run stored no point threshold for {} (draw the series from its data instead)",
                        run.dir.path.display(),
                        which.reduce.name()
                    ))
                })?;
            let series =
                crate::data::series::Series::one(values.clone(), None, "the series given")?;
            let windows = series.split_windows(&run.config.data, crate::data::Split::Test)?;
            let points = series::score_windows(run, windows, 0, which.reduce)?;
            (stored.detector, points)
        }
        None => (
            series::PointDetector::for_data(run, cfg, which.reduce, which.contamination)?,
            series::point_scores(run, cfg, which.split, which.reduce)?,
        ),
    };
    let index = match &which.id {
        None => 0,
        Some(id) => points
            .panels
            .iter()
            .position(|p| p.id.as_deref() == Some(id.as_str()))
            .ok_or_else(|| Error::invalid(format!("{}: no series '{id}'", points.origin)))?,
    };
    let panel = &points.panels[index];
    let flagged = detector.label(&panel.scores);
    let anomalies = points.truth(None, None, run).map(|t| {
        (0..t[index].len())
            .filter(|&i| t[index][i])
            .collect::<Vec<_>>()
    });
    let name = panel
        .id
        .as_ref()
        .map_or_else(|| "series".to_string(), |id| format!("series '{id}'"));
    let chart = charts::SeriesChart {
        title: format!("{name}: values, reconstruction and point scores"),
        channels: &points.channels,
        values: &panel.values,
        reconstruction: &panel.reconstruction,
        scores: &panel.scores,
        threshold: detector.threshold,
        flagged: &flagged,
        anomalies: anomalies.clone(),
        training: panel.training,
    };
    let image = charts::series(&chart, (w.max(960), 620))?;
    let caption = format!(
        "{} points from {} to {}; {} flagged above the threshold {:.4} ({}){}{}",
        panel.values.rows,
        panel.times.first().map_or("", String::as_str),
        panel.times.last().map_or("", String::as_str),
        flagged.iter().filter(|f| **f).count(),
        detector.threshold,
        detector.threshold_origin("the training point scores"),
        match panel.training {
            0 => String::new(),
            t => format!("; the first {t} points (grey) are the training range"),
        },
        match &anomalies {
            Some(a) => format!("; {} labelled anomalous (red marks)", a.len()),
            None => String::new(),
        },
    );
    Ok(("Series".into(), caption, image))
}
