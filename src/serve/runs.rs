//! The runs a server holds: each loaded once at start with its model worker, its anomaly
//! threshold and the map of its data's codes. Requests name runs only by these names, never by
//! a path.

use std::path::Path;

use rand::seq::index::sample;
use serde_json::{Value, json};

use crate::data::{DataConfig, Matrix, Split};
use crate::error::{Error, Result};
use crate::eval::anomaly::{AnomalyDetector, ScoreKind};
use crate::eval::pca::Pca;
use crate::run::Run;

use super::batcher::{BatchPolicy, Batcher};

/// The samples shown on the explorer's map and their codes on its plane.
#[derive(Debug, Clone)]
pub struct CodeMap {
    /// Samples in the raw data scale, one per point.
    pub raw: Matrix,
    /// The same samples as the model sees them.
    pub x: Matrix,
    pub codes: Matrix,
    /// `[x, y]` of each point: the codes themselves when they are 2-D, else their first two
    /// principal components.
    pub points: Matrix,
    /// The plane's principal axes, when the codes are wider than 2-D.
    pub projection: Option<Pca>,
    pub labels: Option<Vec<u32>>,
    pub class_names: Option<Vec<String>>,
    pub origin: String,
}

impl CodeMap {
    fn new(run: &Run, data: &crate::data::Dataset, max_points: usize, seed: u64) -> Result<Self> {
        let n = data.len();
        let keep: Vec<usize> = if n > max_points {
            let mut rng = crate::data::batch::rng_for(seed, 31);
            let mut picked = sample(&mut rng, n, max_points).into_vec();
            picked.sort_unstable();
            picked
        } else {
            (0..n).collect()
        };
        let cols = data.x.cols;
        let mut rows = Vec::with_capacity(keep.len() * cols);
        for &i in &keep {
            rows.extend_from_slice(data.x.row(i));
        }
        let x = Matrix::new(keep.len(), cols, rows)?;
        let mut raw = x.clone();
        run.preprocessor.invert(&mut raw)?;
        let labels: Option<Vec<u32>> = data
            .labels
            .as_ref()
            .map(|l| keep.iter().map(|&i| l[i]).collect());
        let codes = run.model.encode_given(&x, labels.as_deref())?;
        let projection = match codes.cols {
            1 | 2 => None,
            _ => Some(Pca::fit(&codes, 2)?),
        };
        let points = points_on_plane(projection.as_ref(), &codes)?;
        Ok(Self {
            raw,
            x,
            codes,
            points,
            projection,
            labels,
            class_names: data.class_names.clone(),
            origin: data.origin.clone(),
        })
    }

    /// Where codes fall on the map's plane.
    pub fn points_of(&self, codes: &Matrix) -> Result<Matrix> {
        points_on_plane(self.projection.as_ref(), codes)
    }

    /// Codes of points on the map's plane (the inverse of the projection).
    pub fn codes_of_points(&self, points: &Matrix, latent: usize) -> Result<Matrix> {
        match (&self.projection, latent) {
            (Some(pca), _) => pca.inverse_transform(points),
            (None, 1) => Matrix::new(
                points.rows,
                1,
                (0..points.rows).map(|i| points.row(i)[0]).collect(),
            ),
            (None, _) => Ok(points.clone()),
        }
    }
}

/// Codes on the map's plane: their principal components when there is a projection, a 1-D
/// code on the horizontal axis, a 2-D code as it is.
fn points_on_plane(projection: Option<&Pca>, codes: &Matrix) -> Result<Matrix> {
    match (projection, codes.cols) {
        (Some(pca), _) => pca.transform(codes),
        (None, 1) => Matrix::new(
            codes.rows,
            2,
            codes.data.iter().flat_map(|&c| [c, 0.0]).collect(),
        ),
        (None, _) => Ok(codes.clone()),
    }
}

/// What the server may change about how a run is loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub map_points: usize,
    pub batch: BatchPolicy,
    /// Whether answers may name the data's files by their paths; otherwise by their names
    /// only, so that a client learns nothing of the server's directories.
    pub show_paths: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            map_points: 5000,
            batch: BatchPolicy::default(),
            show_paths: false,
        }
    }
}

/// Classes named by their numbers (a semi-supervised run keeps no names).
fn class_numbers(classes: usize) -> Vec<String> {
    (0..classes)
        .map(|c| crate::data::class_name(None, c))
        .collect()
}

/// One served run.
pub struct ServedRun {
    pub name: String,
    pub run: Run,
    pub batcher: Batcher,
    /// `None` when the run stored no threshold and its training data could not be read.
    pub detector: Option<AnomalyDetector>,
    /// A series run's point detector, as training stored it (`score-points`).
    pub points: Option<crate::eval::series::PointDetector>,
    pub map: CodeMap,
    /// `GET /v1/runs` entry, built once.
    pub info: Value,
    /// The names, in class order, of the classes `predict` answers with: a classifier run's
    /// (its head's), or a semi-supervised model's own; `None` for a run that does not classify.
    pub class_names: Option<Vec<String>>,
}

impl ServedRun {
    /// Loads the run in `path`; `data_cfg` replaces the run's own data (for the map and, when the
    /// run stored no threshold, the training scores).
    pub fn load(
        path: &Path,
        name: String,
        data_cfg: Option<&DataConfig>,
        opts: &LoadOptions,
        device: &burn::tensor::Device,
    ) -> Result<Self> {
        let run = Run::open(path, device)?;
        // A table is sampled as it streams past; other sources are read whole, as before.
        let data = run.load_sample(data_cfg, Split::Test, opts.map_points.max(1), 0)?;
        Self::with_data(run, name, data, opts, |run, name| {
            run.load_data(data_cfg, Split::Train)
                .and_then(|train| {
                    AnomalyDetector::fit(
                        run,
                        &train.x,
                        train.labels.as_deref(),
                        ScoreKind::SquaredError,
                        crate::eval::anomaly::DEFAULT_CONTAMINATION,
                    )
                })
                .inspect_err(|e| {
                    tracing::warn!("{name}: no anomaly threshold ({e}); scores come without one")
                })
                .ok()
        })
    }

    /// A loaded run served with `data` (in the model's scale) on its map: for a front end that
    /// holds the data itself (a notebook). The threshold is the one stored with the run, else
    /// what `no_stored` fits.
    pub fn with_data(
        run: Run,
        name: String,
        data: crate::data::Dataset,
        opts: &LoadOptions,
        no_stored: impl FnOnce(&Run, &str) -> Option<AnomalyDetector>,
    ) -> Result<Self> {
        if data.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no samples to put on the map",
                data.origin
            )));
        }
        let mut map = CodeMap::new(&run, &data, opts.map_points.max(1), 0)?;
        if !opts.show_paths {
            map.origin = without_paths(&map.origin);
        }
        let detector = match AnomalyDetector::stored(&run)? {
            Some(d) => Some(d),
            None => no_stored(&run, &name),
        };
        let points = crate::eval::series::PointDetector::stored(&run)?;
        let eval = crate::eval::evaluate(&run, &data).ok();
        let classifier = crate::run::classifier::ClassifierRun::is_classifier(&run.dir.path)
            .then(|| crate::run::classifier::ClassifierRun::read_head(&run))
            .transpose()?;
        let mut info = describe(&name, &run, &map, detector.as_ref(), eval);
        let (class_names, head_kind, head) = match classifier {
            Some((c, head)) => (Some(c.all_class_names()), json!(c.head), Some(head)),
            // A semi-supervised model classifies with its own q(y|x).
            None => (
                run.model.classes_predicted().map(class_numbers),
                json!("the model's own q(y|x)"),
                None,
            ),
        };
        info["classifier"] = class_names.as_ref().map_or(Value::Null, |names| {
            json!({
                "classes": names.len(),
                "class_names": names,
                "head": head_kind,
            })
        });
        let batcher = Batcher::start(run.model.clone(), head, opts.batch, &name)?;
        Ok(Self {
            name,
            run,
            batcher,
            detector,
            points,
            map,
            info,
            class_names,
        })
    }

    pub fn latent(&self) -> usize {
        self.run.model.latent_dim()
    }

    pub fn input_dim(&self) -> usize {
        self.run.model.input_dim()
    }

    /// VAEs blend along the great circle, where their codes have prior mass.
    pub fn spherical_blend(&self) -> bool {
        self.run.model.capabilities().prior
    }

    /// The label of sample `i` of the map, when the map's data has labels.
    pub fn map_label(&self, i: usize) -> Option<u32> {
        self.map.labels.as_ref().and_then(|l| l.get(i).copied())
    }

    /// Raw values to model space.
    pub fn preprocess(&self, x: Matrix) -> Result<Matrix> {
        self.run.to_model_scale("the request", x)
    }

    /// Model outputs to the raw data scale.
    pub fn to_raw(&self, x: Matrix) -> Result<Matrix> {
        self.run.to_raw(x)
    }
}

/// The raw values that map to black and white in the explorer: what model-space 0 and 1 stand
/// for when the run scales to [0, 1] with one scale, else the data's own extremes.
fn value_range(run: &Run, map: &CodeMap) -> [f32; 2] {
    let p = &run.preprocessor;
    if p.scaling.is_unit_range() && p.offset.len() == 1 && p.scale.len() == 1 {
        let mut ends = Matrix {
            rows: 2,
            cols: 1,
            data: vec![0.0, 1.0],
        };
        if p.invert(&mut ends).is_ok() {
            return [ends.data[0], ends.data[1]];
        }
    }
    let lo = map.raw.data.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = map
        .raw
        .data
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    [lo, hi]
}

/// Unique names for the runs: each directory's own name, numbered when two share one.
pub fn names(paths: &[std::path::PathBuf]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        let base: String = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "run".into())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let base = if base.is_empty() || base.starts_with('.') {
            format!("run{base}")
        } else {
            base
        };
        let mut name = base.clone();
        let mut k = 2;
        while out.contains(&name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        out.push(name);
    }
    out
}

fn describe(
    name: &str,
    run: &Run,
    map: &CodeMap,
    detector: Option<&AnomalyDetector>,
    eval: Option<crate::eval::metrics::ReconMetrics>,
) -> Value {
    let model = &run.model;
    let cfg = model.config();
    let image = run
        .image_shape()
        .ok()
        .map(|(c, h, w)| json!({"channels": c, "height": h, "width": w}));
    json!({
        "name": name,
        "kind": cfg.kind(),
        "architecture": cfg.describe(),
        "parameters": model.num_params(),
        "input_dim": model.input_dim(),
        "latent": model.latent_dim(),
        "image": image,
        // Windows of a time series are drawn as lines over time, not as images or bars.
        "series": run.config.data.window.and(match cfg.shared().input_shape.as_deref() {
            Some(&[c, w]) => Some(json!({"channels": c, "window": w})),
            _ => None,
        }),
        // A typed table's rows are shown as tables, column by column.
        // (each column's kind, where its features start and, for a category, its levels: what
        // the page decodes a row of features with).
        "table": run.preprocessor.columns.as_ref().map(|t| json!({
            "columns": t.columns.iter().zip(t.starts()).map(|(c, start)| {
                let levels = match &c.kind {
                    crate::data::columns::ColumnKind::Categorical { levels, .. } => Some(levels),
                    _ => None,
                };
                json!({"name": c.name, "kind": c.kind_name(), "start": start, "levels": levels})
            }).collect::<Vec<_>>(),
        })),
        "capabilities": model.capabilities(),
        "denoising": cfg.noise().is_some(),
        "scaling": run.preprocessor.scaling,
        "value_range": value_range(run, map),
        "training": run.dir.summary().ok(),
        "eval": eval.map(|e| json!({"data": map.origin, "metrics": e})),
        "anomaly": detector.map(|d| json!({
            "score": d.kind,
            "threshold": d.threshold,
            "contamination": d.contamination,
        })),
        "classes": map.class_names,
        // A conditional model's number of classes (0 for others): its requests name a class.
        "condition_classes": model.classes(),
        "map_points": map.points.rows,
    })
}

/// `text` with every path in it cut to its last component: `images:/srv/data/faces (test)`
/// becomes `images:faces (test)`. A path starts with `/`, `~` or `.` after the text's start, a
/// space, a parenthesis, a colon, a comma or an equals sign, and runs to a space, a comma or a
/// closing parenthesis.
pub fn without_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut at_boundary = true;
    while let Some(c) = rest.chars().next() {
        if at_boundary && matches!(c, '/' | '~' | '.') && rest.len() > 1 {
            let end = rest.find([' ', ',', ')']).unwrap_or(rest.len());
            let path = &rest[..end];
            let last = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(path);
            out.push_str(last);
            rest = &rest[end..];
            at_boundary = false;
            continue;
        }
        out.push(c);
        at_boundary = matches!(c, ' ' | '(' | ':' | ',' | '=');
        rest = &rest[c.len_utf8()..];
    }
    out
}
