//! `aekit._aekit`: the compiled core behind `import aekit`. Thin: NumPy arrays in, the library's
//! calls, NumPy arrays out; the estimators live in Python (python/aekit/__init__.py).

mod arrow_bridge;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;

use aekit::data::{Dataset, Matrix, Split, ValueKind};
use aekit::eval::anomaly::{AnomalyDetector, ScoreKind};

// The allocator the `aekit` binary trains with (BENCHMARKS.md: glibc malloc costs training
// several percent); it serves the extension's Rust allocations only, not Python's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The library's one-line messages, as the exception Python code expects: files → OSError,
/// Ctrl-C → KeyboardInterrupt, everything else a caller got wrong → ValueError.
fn py_err(e: aekit::Error) -> PyErr {
    match e {
        aekit::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        aekit::Error::Interrupted(_) => PyKeyboardInterrupt::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn matrix(x: &PyReadonlyArray2<'_, f32>) -> PyResult<Matrix> {
    let [rows, cols] = [x.shape()[0], x.shape()[1]];
    let data = match x.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => x.as_array().iter().copied().collect(),
    };
    Matrix::new(rows, cols, data).map_err(py_err)
}

fn array<'py>(py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (rows, cols) = (m.rows, m.cols);
    PyArray1::from_vec(py, m.data).reshape([rows, cols])
}

/// Arrays handed back to Python together.
type Pair<'py, A, B> = (Bound<'py, PyArray2<A>>, Bound<'py, PyArray1<B>>);
type MatrixPair<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>);

/// Rows from Python as a data set of real-valued features.
fn dataset(x: Matrix, labels: Option<Vec<u32>>) -> Dataset {
    let cols = x.cols;
    Dataset {
        x,
        labels,
        class_names: None,
        sample_shape: vec![cols],
        value_kind: ValueKind::Float,
        origin: "the array X".into(),
    }
}

fn device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}

/// The rows of `x`: a float32 NumPy matrix, or any Arrow object (its numeric columns, or
/// `columns`), read without a copy of its own.
fn rows_of(
    x: &Bound<'_, PyAny>,
    columns: Option<Vec<String>>,
    rows_hint: Option<usize>,
) -> PyResult<Matrix> {
    if arrow_bridge::is_arrow(x) {
        return arrow_bridge::matrix(x, "X", columns, rows_hint, Vec::new());
    }
    matrix(&x.extract::<PyReadonlyArray2<'_, f32>>()?)
}

/// The rows of an Arrow object `x` as a float32 NumPy matrix (moved, not copied, into NumPy).
#[pyfunction]
#[pyo3(signature = (x, columns=None, rows_hint=None, kept=None))]
fn table_rows<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    columns: Option<Vec<String>>,
    rows_hint: Option<usize>,
    kept: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let kept = kept.unwrap_or_default();
    array(py, arrow_bridge::matrix(x, "X", columns, rows_hint, kept)?)
}

/// Trains the run in `out_dir` from `config` (TOML) on the rows of `x` (a NumPy matrix or an
/// Arrow object). The GIL is released while training; every 50 ms the caller's thread wakes
/// to deliver new epochs to `on_epoch` (one JSON line of metrics each) and to notice Ctrl-C,
/// which stops training at the next step with the best weights kept, then raises
/// KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (config, x, labels, out_dir, on_epoch=None, columns=None, rows_hint=None, sample_shape=None))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    config: &str,
    x: &Bound<'_, PyAny>,
    labels: Option<PyReadonlyArray1<'_, i64>>,
    out_dir: &str,
    on_epoch: Option<Py<PyAny>>,
    columns: Option<Vec<String>>,
    rows_hint: Option<usize>,
    sample_shape: Option<Vec<usize>>,
) -> PyResult<()> {
    let cfg = aekit::RunConfig::from_toml(config, Path::new("the estimator's parameters"))
        .map_err(py_err)?;
    let x = rows_of(x, columns, rows_hint)?;
    let labels = class_indices(labels.as_ref())?;
    let mut data = dataset(x, labels);
    // Images given as [n, C, H, W] (or [n, H, W]) arrays keep their shape: convolutional
    // models need it.
    if let Some(shape) = sample_shape {
        if shape.iter().product::<usize>() != data.x.cols {
            return Err(PyValueError::new_err(format!(
                "X: a sample shape {shape:?} for rows of {} values",
                data.x.cols
            )));
        }
        data.sample_shape = shape;
    }
    train_in_background(py, out_dir, on_epoch, move |opts| {
        aekit::fit::fit_owned(&cfg, data, &opts).map(|_| ())
    })
}

/// Trains the run in `out_dir` from `config` (whose `[data]` cuts windows: `window`, `stride`,
/// `train_points`) on one series `x` (`points × channels`, in time order) with its points'
/// `labels`, as [`fit`] trains on rows.
#[pyfunction]
#[pyo3(signature = (config, x, labels, out_dir, on_epoch=None))]
fn fit_series(
    py: Python<'_>,
    config: &str,
    x: PyReadonlyArray2<'_, f32>,
    labels: Option<PyReadonlyArray1<'_, i64>>,
    out_dir: &str,
    on_epoch: Option<Py<PyAny>>,
) -> PyResult<()> {
    let cfg = aekit::RunConfig::from_toml(config, Path::new("the estimator's parameters"))
        .map_err(py_err)?;
    let labels = class_indices(labels.as_ref())?;
    let series = aekit::data::series::Series::one(matrix(&x)?, labels, "X").map_err(py_err)?;
    train_in_background(py, out_dir, on_epoch, move |opts| {
        aekit::fit::fit_series_data(&cfg, series, &opts).map(|_| ())
    })
}

/// Trains the run in `out_dir` from `config` on the typed table `x` (an Arrow object: numbers,
/// booleans, strings, missing values), its columns fitted as the command line fits a file's.
/// Returns what the fit decided on its own (levels pooled, ids carried).
#[pyfunction]
#[pyo3(signature = (config, x, out_dir, on_epoch=None))]
fn fit_table(
    py: Python<'_>,
    config: &str,
    x: &Bound<'_, PyAny>,
    out_dir: &str,
    on_epoch: Option<Py<PyAny>>,
) -> PyResult<Vec<String>> {
    let cfg = aekit::RunConfig::from_toml(config, Path::new("the estimator's parameters"))
        .map_err(py_err)?;
    let table = arrow_bridge::typed_table(x, "X")?;
    let mut notes = Vec::new();
    let columns =
        aekit::data::columns::TableColumns::fit(&table, &cfg.data, &mut notes).map_err(py_err)?;
    let data = columns.dataset(&table, &mut notes).map_err(py_err)?;
    drop(table);
    train_in_background(py, out_dir, on_epoch, move |opts| {
        aekit::fit::fit_typed_data(&cfg, data, columns, &opts).map(|_| ())
    })?;
    Ok(notes)
}

/// One column's part in a row's score, as Python sees it: `(column, value, reconstructed,
/// share)`.
type Share = (String, String, String, f64);

/// Trains the run in `out_dir` from `config` on `batches`, an iterable of NumPy matrices or
/// Arrow objects too large to hold together: they are written once, batch by batch, to a
/// Parquet file beside the run (removed afterwards), which every epoch then streams through
/// the library's data plane in a seeded order.
#[pyfunction]
#[pyo3(signature = (config, batches, out_dir, on_epoch=None, columns=None))]
fn fit_batches(
    py: Python<'_>,
    config: &str,
    batches: &Bound<'_, PyAny>,
    out_dir: &str,
    on_epoch: Option<Py<PyAny>>,
    columns: Option<Vec<String>>,
) -> PyResult<()> {
    let mut cfg = aekit::RunConfig::from_toml(config, Path::new("the estimator's parameters"))
        .map_err(py_err)?;
    let spool = Spool(PathBuf::from(format!("{out_dir}.batches.parquet")));
    let mut output = aekit::data::table::write::ParquetOutput::create(&spool.0);
    for (i, item) in batches.try_iter()?.enumerate() {
        let item = item?;
        let name = format!("X: batch {i}");
        if !arrow_bridge::is_arrow(&item) {
            let m = matrix(&item.extract::<PyReadonlyArray2<'_, f32>>()?)?;
            let x = aekit::data::table::write::OutputColumn {
                name: "x",
                values: &m,
            };
            output
                .write(None, &[x], None)
                .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
            continue;
        }
        // Record batch by record batch: a reader's stream is never held whole.
        for record in arrow_bridge::import_stream(&item, &name)? {
            let record = record.map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
            output
                .write(Some(&record), &[], None)
                .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
        }
    }
    if output.rows == 0 {
        return Err(PyValueError::new_err("X: the iterable gave no rows"));
    }
    output.finish().map_err(py_err)?;
    cfg.data.source = format!("parquet:{}", spool.0.display());
    cfg.data.columns = columns;
    train_in_background(py, out_dir, on_epoch, move |opts| {
        aekit::fit::train(&cfg, &opts).map(|_| ())
    })
}

/// A file removed when dropped.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `job` (training into `out_dir`) on its own thread while this one delivers epochs to
/// `on_epoch` and watches for Ctrl-C.
fn train_in_background(
    py: Python<'_>,
    out_dir: &str,
    on_epoch: Option<Py<PyAny>>,
    job: impl FnOnce(aekit::FitOptions) -> aekit::Result<()> + Send + 'static,
) -> PyResult<()> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let mut opts = aekit::FitOptions::new(out_dir);
    opts.quiet = true;
    opts.interrupt = Some(interrupt.clone());
    let training = std::thread::spawn(move || {
        // As `aekit train` does (and the pool's workers, set up at import): subnormals flushed.
        aekit::device::flush_denormals_on_this_thread();
        job(opts)
    });
    let metrics = PathBuf::from(out_dir).join("metrics.jsonl");
    let mut delivered = 0;
    let mut stopped_by_user: Option<PyErr> = None;
    loop {
        let finished = training.is_finished();
        if let Some(cb) = &on_epoch
            && stopped_by_user.is_none()
        {
            let text = std::fs::read_to_string(&metrics).unwrap_or_default();
            // Only whole lines: the trainer may be writing the next one.
            let lines: Vec<&str> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .collect();
            for line in &lines[delivered.min(lines.len())..] {
                // A callback that raises (KeyboardInterrupt included, which Python raises in
                // whatever Python code runs next) stops training like Ctrl-C: at the next step,
                // best weights kept, and only then does the exception reach the caller.
                if let Err(e) = cb.call1(py, (line.trim_end(),)) {
                    interrupt.store(true, Ordering::SeqCst);
                    stopped_by_user = Some(e);
                    break;
                }
                delivered += 1;
            }
        }
        if finished {
            break;
        }
        if stopped_by_user.is_none()
            && let Err(e) = py.check_signals()
        {
            interrupt.store(true, Ordering::SeqCst);
            stopped_by_user = Some(e);
        }
        py.detach(|| std::thread::sleep(Duration::from_millis(50)));
    }
    let result = training
        .join()
        .map_err(|_| PyValueError::new_err("training failed unexpectedly"))?;
    match (result, stopped_by_user) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(py_err(e)),
        (Ok(()), None) => Ok(()),
    }
}

/// Labels given as integers, as class indices.
fn class_indices(labels: Option<&PyReadonlyArray1<'_, i64>>) -> PyResult<Option<Vec<u32>>> {
    let Some(l) = labels else {
        return Ok(None);
    };
    // −1 marks a row without a label (scikit-learn's semi-supervised convention); the core
    // refuses such rows for every model but a semi-supervised one.
    l.as_array()
        .iter()
        .map(|&v| match v {
            -1 => Ok(aekit::data::UNLABELLED),
            v => u32::try_from(v)
                .map_err(|_| PyValueError::new_err(format!("y: label {v} is not a class index"))),
        })
        .collect::<PyResult<Vec<u32>>>()
        .map(Some)
}

/// The explorers started from this process: they serve until it ends.
static EXPLORERS: std::sync::Mutex<Vec<aekit::serve::BackgroundServer>> =
    std::sync::Mutex::new(Vec::new());

/// A run directory opened for use.
#[pyclass(frozen)]
struct RunHandle {
    run: aekit::Run,
    detector: Option<AnomalyDetector>,
}

impl RunHandle {
    fn preprocessed(&self, x: &PyReadonlyArray2<'_, f32>) -> PyResult<Matrix> {
        self.to_model_scale(matrix(x)?)
    }

    /// Raw rows `x` (classes `y`) given by the caller as a data set in the model's scale,
    /// shaped as the run's samples (images stay images for figures and the explorer).
    fn given_data(
        &self,
        x: &PyReadonlyArray2<'_, f32>,
        y: Option<&PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Dataset> {
        let mut data = dataset(self.preprocessed(x)?, class_indices(y)?);
        if let Some(shape) = self.run.model.config().shared().input_shape.clone() {
            data.sample_shape = shape;
        }
        Ok(data)
    }

    /// One sample given as a 1-D array, in the model's scale.
    fn preprocessed_sample(&self, x: &PyReadonlyArray1<'_, f32>) -> PyResult<Vec<f32>> {
        let m = Matrix::new(1, x.len(), x.as_array().to_vec()).map_err(py_err)?;
        Ok(self.to_model_scale(m)?.data)
    }

    /// Raw rows, checked against the run's width, preprocessed as training saw them.
    /// What figure `kind` draws when no rows are given: the run's own test data, or none
    /// where the figure needs none (learning curves, prior samples).
    fn own_data(&self, kind: aekit::viz::figures::FigureKind) -> PyResult<Dataset> {
        if !kind.needs_data(&self.run.model) {
            return Ok(dataset(
                Matrix::new(0, self.run.model.input_dim(), Vec::new()).map_err(py_err)?,
                None,
            ));
        }
        self.run.load_data(None, Split::Test).map_err(|e| {
            PyValueError::new_err(format!(
                "the {} figure draws samples of the data: pass X ({e})",
                kind.name()
            ))
        })
    }

    /// The rows of the Arrow table `x` read by a typed run's columns, in the table's units,
    /// with the notes on values never seen in training.
    fn typed_rows(&self, x: &Bound<'_, PyAny>) -> PyResult<(Matrix, Vec<String>)> {
        let columns = aekit::eval::columns::columns_of(&self.run).map_err(py_err)?;
        let table = arrow_bridge::typed_table(x, "X")?;
        let encoded = columns.encode(&table.batch, &table.path).map_err(py_err)?;
        let notes = encoded.unseen.iter().map(|u| u.to_string()).collect();
        Ok((encoded.x, notes))
    }

    fn to_model_scale(&self, m: Matrix) -> PyResult<Matrix> {
        self.run.to_model_scale("X", m).map_err(py_err)
    }

    fn raw<'py>(&self, py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyArray2<f32>>> {
        array(py, self.run.to_raw(m).map_err(py_err)?)
    }
}

#[pymethods]
impl RunHandle {
    #[new]
    fn open(path: &str) -> PyResult<Self> {
        if !Path::new(path).is_dir() {
            return Err(pyo3::exceptions::PyFileNotFoundError::new_err(format!(
                "{path}: no run directory there"
            )));
        }
        let run = aekit::Run::open(Path::new(path), &device()).map_err(py_err)?;
        let detector = AnomalyDetector::stored(&run).map_err(py_err)?;
        Ok(Self { run, detector })
    }

    #[getter]
    fn latent(&self) -> usize {
        self.run.model.latent_dim()
    }

    #[getter]
    fn input_dim(&self) -> usize {
        self.run.model.input_dim()
    }

    fn info(&self) -> PyResult<String> {
        let model = &self.run.model;
        let info = serde_json::json!({
            "path": self.run.dir.path,
            "kind": model.config().kind(),
            "architecture": model.config().describe(),
            "parameters": model.num_params(),
            "input_dim": model.input_dim(),
            "latent": model.latent_dim(),
            "capabilities": model.capabilities(),
            "training": self.run.dir.summary().ok(),
            "anomaly": self.detector,
        });
        Ok(info.to_string())
    }

    fn threshold(&self) -> Option<f64> {
        self.detector.as_ref().map(|d| d.threshold)
    }

    /// Starts the latent explorer for this run on a server of its own (`port` 0: a free one)
    /// and returns its port. The map shows the raw rows `x` (classes `y`) where given, else the
    /// run's own test data. The server lives as long as the process (a notebook's kernel).
    #[pyo3(signature = (x=None, y=None, host="127.0.0.1", port=0))]
    fn explore(
        &self,
        py: Python<'_>,
        x: Option<PyReadonlyArray2<'_, f32>>,
        y: Option<PyReadonlyArray1<'_, i64>>,
        host: &str,
        port: u16,
    ) -> PyResult<u16> {
        use aekit::serve::{BackgroundServer, ServeOptions, ServedRun};
        let opts = ServeOptions::default();
        let run = self.run.clone();
        let data = match &x {
            Some(x) => self.given_data(x, y.as_ref())?,
            None => run
                .load_sample(None, Split::Test, opts.load.map_points, 0)
                .map_err(|e| {
                    PyValueError::new_err(format!("the explorer maps data: pass X ({e})"))
                })?,
        };
        let addr: std::net::SocketAddr = format!("{host}:{port}")
            .parse()
            .map_err(|e| PyValueError::new_err(format!("host {host:?}: {e}")))?;
        let name = aekit::serve::runs::names(std::slice::from_ref(&run.dir.path))
            .pop()
            .unwrap_or_else(|| "run".into());
        let server = py
            .detach(|| {
                let served = ServedRun::with_data(run, name, data, &opts.load, |_, _| None)?;
                BackgroundServer::start(addr, vec![served], &opts)
            })
            .map_err(py_err)?;
        let port = server.addr.port();
        EXPLORERS
            .lock()
            .map_err(|_| PyValueError::new_err("the explorers' registry is poisoned"))?
            .push(server);
        Ok(port)
    }

    /// Writes `part` of the run as an ONNX model (as `aekit export`); a score part thresholds
    /// at `threshold` (scores of kind `score`) or the run's stored threshold.
    #[pyo3(signature = (path, part=None, threshold=None, score=None, force=false))]
    fn to_onnx(
        &self,
        path: &str,
        part: Option<&str>,
        threshold: Option<f64>,
        score: Option<&str>,
        force: bool,
    ) -> PyResult<()> {
        use aekit::export::onnx::{Part, parse_name};
        let part: Part = match part {
            Some(name) => parse_name("part", name).map_err(py_err)?,
            None => Part::default(),
        };
        let kind = match score {
            Some(name) => parse_name("score", name).map_err(py_err)?,
            None => ScoreKind::default_for(self.run.model.config()),
        };
        let detector = threshold
            .map(|t| AnomalyDetector::with_threshold(kind, t))
            .transpose()
            .map_err(py_err)?;
        self.run
            .export_onnx(Path::new(path), part, detector.as_ref(), force)
            .map_err(py_err)
    }

    /// The classes a conditional model is conditioned on (0 for others).
    #[getter]
    fn classes(&self) -> usize {
        self.run.model.classes()
    }

    #[pyo3(signature = (x, y=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        y: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x = self.preprocessed(&x)?;
        let y = class_indices(y.as_ref())?;
        let codes = py
            .detach(|| self.run.model.encode_given(&x, y.as_deref()))
            .map_err(py_err)?;
        array(py, codes)
    }

    /// The class probabilities q(y|x) of a semi-supervised model, `[rows, classes]`.
    fn class_probabilities<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x = self.preprocessed(&x)?;
        let p = py
            .detach(|| self.run.model.class_probabilities(&x))
            .map_err(py_err)?
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "a {} model does not classify: class probabilities come from a semi-supervised model (model=\"ssvae\")",
                    self.run.model.config().kind()
                ))
            })?;
        array(py, p)
    }

    #[pyo3(signature = (z, y=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        z: PyReadonlyArray2<'py, f32>,
        y: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let z = matrix(&z)?;
        let y = class_indices(y.as_ref())?;
        let out = py
            .detach(|| self.run.model.decode_given(&z, y.as_deref()))
            .map_err(py_err)?;
        self.raw(py, out)
    }

    #[pyo3(signature = (x, y=None))]
    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        y: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x = self.preprocessed(&x)?;
        let y = class_indices(y.as_ref())?;
        let out = py
            .detach(|| self.run.model.reconstruct_given(&x, y.as_deref()))
            .map_err(py_err)?;
        self.raw(py, out)
    }

    /// A series run's score of every point of the series `x` (`points × channels`), as
    /// `aekit score` gives them (`reduce`: "mean", "max" or "window"), and the threshold
    /// fitted so on its first `training` points with `contamination` of them above it
    /// (`training` 0: no threshold).
    #[pyo3(signature = (x, reduce, training, contamination))]
    fn point_scores<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        reduce: &str,
        training: usize,
        contamination: f64,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, Option<f64>)> {
        use aekit::data::series::{PointReduce, Series};
        use aekit::eval::series::{detector_of, score_windows};
        let reduce = PointReduce::from_name(reduce).map_err(py_err)?;
        let values = matrix(&x)?;
        let cfg = &self.run.config.data;
        let (scores, threshold) = py
            .detach(|| -> aekit::Result<_> {
                let series = Series::one(values, None, "X")?;
                let threshold = if training > 0 {
                    let head = Series::one(series.panels[0].values.head(training), None, "X")?;
                    let windows = head.split_windows(cfg, aekit::data::Split::Test)?;
                    let train = score_windows(&self.run, windows, 0, reduce)?;
                    Some(detector_of(&train, contamination)?.threshold)
                } else {
                    None
                };
                let windows = series.split_windows(cfg, aekit::data::Split::Test)?;
                let mut scored = score_windows(&self.run, windows, 0, reduce)?;
                Ok((scored.panels.remove(0).scores, threshold))
            })
            .map_err(py_err)?;
        Ok((PyArray1::from_vec(py, scores), threshold))
    }

    /// Squared reconstruction error per sample in the model's scale: `aekit score`'s numbers.
    #[pyo3(signature = (x, y=None))]
    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        y: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = self.preprocessed(&x)?;
        let y = class_indices(y.as_ref())?;
        let scores = py
            .detach(|| {
                aekit::eval::anomaly::scores(
                    &self.run,
                    &x,
                    y.as_deref(),
                    ScoreKind::SquaredError,
                    0,
                )
            })
            .map_err(py_err)?;
        Ok(PyArray1::from_vec(py, scores))
    }

    /// A typed table's scores (the run's loss, each column by its own likelihood) for the
    /// rows of the Arrow object `x`, with each row's `explain` largest columns' shares (0:
    /// every column) when asked, and the categories never seen in training (read as
    /// "(other)").
    #[pyo3(signature = (x, explain=None))]
    #[allow(clippy::type_complexity)]
    fn score_table<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        explain: Option<usize>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Option<Vec<Vec<Share>>>,
        Vec<String>,
    )> {
        let (raw, notes) = self.typed_rows(x)?;
        let x = self.to_model_scale(raw)?;
        let kind = ScoreKind::default_for(self.run.model.config());
        let (scores, explained) = py
            .detach(|| {
                aekit::eval::columns::scores_explained(&self.run, (kind, 0), &x, None, explain)
            })
            .map_err(py_err)?;
        let explained = explained.map(|rows| {
            rows.into_iter()
                .map(|e| {
                    e.columns
                        .into_iter()
                        .map(|c| (c.column, c.value, c.reconstructed, c.share))
                        .collect()
                })
                .collect()
        });
        Ok((PyArray1::from_vec(py, scores), explained, notes))
    }

    /// A typed table's reconstructions of the rows of the Arrow object `x`, decoded to its
    /// columns' types (a category's level, a boolean, a number in its units; with
    /// `missing="impute"` the given values kept and the missing ones filled): each column's
    /// name and its values as a list (None where missing).
    fn reconstruct_table<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        use arrow::array::{Array, AsArray};
        let (raw, _) = self.typed_rows(x)?;
        let (rows, _) = py
            .detach(|| aekit::eval::columns::reconstructed_table(&self.run, &raw))
            .map_err(py_err)?;
        let schema = rows.schema();
        schema
            .fields()
            .iter()
            .zip(rows.columns())
            .map(|(field, column)| {
                let n = column.len();
                let values = match field.data_type() {
                    arrow::datatypes::DataType::Float64 => {
                        let a = column.as_primitive::<arrow::datatypes::Float64Type>();
                        (0..n)
                            .map(|i| a.is_valid(i).then(|| a.value(i)))
                            .collect::<Vec<_>>()
                            .into_pyobject(py)?
                            .into_any()
                    }
                    arrow::datatypes::DataType::Boolean => {
                        let a = column.as_boolean();
                        (0..n)
                            .map(|i| a.is_valid(i).then(|| a.value(i)))
                            .collect::<Vec<_>>()
                            .into_pyobject(py)?
                            .into_any()
                    }
                    _ => {
                        let a = column.as_string::<i32>();
                        (0..n)
                            .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                            .collect::<Vec<_>>()
                            .into_pyobject(py)?
                            .into_any()
                    }
                };
                Ok((field.name().clone(), values))
            })
            .collect()
    }

    /// Prior samples; a conditional model's of class `label`, or of every class in turn.
    #[pyo3(signature = (n, seed, label=None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
        label: Option<u32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let model = match label {
            Some(c) => self.run.model.with_class(c).map_err(py_err)?,
            None => self.run.model.clone(),
        };
        let out = aekit::eval::sample_prior(&model, n, seed).map_err(py_err)?;
        self.raw(py, out)
    }

    #[pyo3(signature = (a, b, steps, spherical=None))]
    fn blend<'py>(
        &self,
        py: Python<'py>,
        a: PyReadonlyArray1<'py, f32>,
        b: PyReadonlyArray1<'py, f32>,
        steps: usize,
        spherical: Option<bool>,
    ) -> PyResult<MatrixPair<'py>> {
        let spherical = spherical.unwrap_or(self.run.model.capabilities().prior);
        let blend = aekit::explore::blend(
            &self.run.model,
            &self.preprocessed_sample(&a)?,
            &self.preprocessed_sample(&b)?,
            steps,
            spherical,
        )
        .map_err(py_err)?;
        Ok((self.raw(py, blend.pixel)?, self.raw(py, blend.latent)?))
    }

    fn traverse<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray1<'py, f32>,
        dims: Vec<usize>,
        deltas: Vec<f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x = self.preprocessed_sample(&x)?;
        let out = aekit::explore::traverse(&self.run.model, &x, &dims, &deltas).map_err(py_err)?;
        self.raw(py, out)
    }

    fn evaluate(&self, x: PyReadonlyArray2<'_, f32>) -> PyResult<String> {
        let x = self.preprocessed(&x)?;
        let data = dataset(x, None);
        let metrics = aekit::eval::evaluate(&self.run, &data).map_err(py_err)?;
        Ok(serde_json::to_string(&metrics).expect("metrics serialise"))
    }

    /// Figure `kind` as an RGB array of shape (H, W, 3): of the rows `x` (raw, with classes
    /// `y`); without them, of the run's own test data where the figure draws data, or of none
    /// (learning curves, prior samples).
    #[pyo3(signature = (kind, x=None, y=None))]
    fn figure<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        x: Option<PyReadonlyArray2<'py, f32>>,
        y: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Bound<'py, numpy::PyArray3<u8>>> {
        let kind = figure_kind(kind)?;
        // A series run's figure draws a series (`points × channels`), not samples.
        if kind == aekit::viz::figures::FigureKind::Series {
            let mut opts = aekit::viz::FigureOptions::default();
            opts.series.points = x.as_ref().map(matrix).transpose()?;
            let empty = dataset(Matrix::zeros(0, 0), None);
            let fig =
                aekit::viz::figures::figure(&self.run, &empty, kind, &opts).map_err(py_err)?;
            return image_array(py, fig);
        }
        let data = match &x {
            Some(x) => self.given_data(x, y.as_ref())?,
            None => self.own_data(kind)?,
        };
        let fig = aekit::viz::figures::figure(&self.run, &data, kind, &Default::default())
            .map_err(py_err)?;
        image_array(py, fig)
    }

    /// Figure `kind` of a typed run on the rows of the Arrow table `x` (without it, of the
    /// run's own test split).
    #[pyo3(signature = (kind, x=None))]
    fn table_figure<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        x: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, numpy::PyArray3<u8>>> {
        let kind = figure_kind(kind)?;
        let data = match x {
            Some(x) => dataset(self.to_model_scale(self.typed_rows(x)?.0)?, None),
            None => self.own_data(kind)?,
        };
        let fig = py
            .detach(|| aekit::viz::figures::figure(&self.run, &data, kind, &Default::default()))
            .map_err(py_err)?;
        image_array(py, fig)
    }
}

/// The figure named `kind`, or an error listing the names.
fn figure_kind(kind: &str) -> PyResult<aekit::viz::figures::FigureKind> {
    use aekit::viz::figures::FigureKind;
    FigureKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| {
            let names: Vec<&str> = FigureKind::ALL.iter().map(|k| k.name()).collect();
            PyValueError::new_err(format!("no figure {kind:?}; one of {}", names.join(", ")))
        })
}

/// A figure's image as an RGB array of shape (H, W, 3).
fn image_array<'py>(
    py: Python<'py>,
    figure: aekit::viz::figures::Figure,
) -> PyResult<Bound<'py, numpy::PyArray3<u8>>> {
    let (w, h) = figure.image.dimensions();
    PyArray1::from_vec(py, figure.image.into_raw()).reshape([h as usize, w as usize, 3])
}

/// The threshold that leaves `contamination` of the training `scores` above it: the core's
/// rule, for the estimators' `threshold_`.
#[pyfunction]
fn threshold_of(scores: PyReadonlyArray1<'_, f64>, contamination: f64) -> PyResult<f64> {
    let scores: Vec<f64> = scores.as_array().iter().copied().collect();
    aekit::eval::anomaly::threshold_of(&scores, contamination).map_err(py_err)
}

/// Refuses a contamination the core would refuse (outside [0, 0.5]), before training.
#[pyfunction]
fn check_contamination(contamination: f64) -> PyResult<()> {
    aekit::eval::anomaly::check_contamination(contamination).map_err(py_err)
}

/// `(X, y)`: `n` of the built-in shapes as raw bytes (0-255) in f32, and their classes.
/// Fine-tunes the encoder of the run in `run_dir` into a classifier run at `out_dir`, on the
/// raw rows `x` whose `y` marks each row's class index or −1 (unlabelled, scikit-learn's
/// semi-supervised convention), with the GIL released.
#[pyfunction]
#[pyo3(signature = (run_dir, x, y, out_dir, head, freeze_epochs, epochs, batch_size, lr, seed, class_names=None))]
#[allow(clippy::too_many_arguments)]
fn finetune(
    py: Python<'_>,
    run_dir: &str,
    x: PyReadonlyArray2<'_, f32>,
    y: PyReadonlyArray1<'_, i64>,
    out_dir: &str,
    head: &str,
    freeze_epochs: usize,
    epochs: usize,
    batch_size: usize,
    lr: f64,
    seed: u64,
    class_names: Option<Vec<String>>,
) -> PyResult<()> {
    let run = aekit::Run::open(Path::new(run_dir), &device()).map_err(py_err)?;
    let x = run.to_model_scale("X", matrix(&x)?).map_err(py_err)?;
    let targets = y.as_array().to_vec();
    if targets.len() != x.rows {
        return Err(PyValueError::new_err(format!(
            "y has {} labels for {} samples",
            targets.len(),
            x.rows
        )));
    }
    let (rows, labels) = aekit::data::labelled::marked_labels(&targets).map_err(py_err)?;
    let mut labelled = dataset(x.select_rows(&rows), Some(labels));
    labelled.class_names = class_names;
    if let Some(shape) = run.model.config().shared().input_shape.clone() {
        labelled.sample_shape = shape;
    }
    let mut cfg = aekit::train::finetune::FinetuneConfig {
        head: head.parse().map_err(py_err)?,
        freeze_epochs,
        ..Default::default()
    };
    cfg.train.epochs = epochs;
    cfg.train.batch_size = batch_size;
    cfg.train.lr = lr;
    cfg.train.seed = seed;
    let out = PathBuf::from(out_dir);
    py.detach(|| {
        aekit::fit::finetune(&run, &labelled, None, &cfg, &out, true, true, &device()).map(|_| ())
    })
    .map_err(py_err)
}

/// A loaded classifier run (see `aekit finetune`).
#[pyclass(frozen)]
struct ClassifierHandle {
    classifier: aekit::run::classifier::ClassifierRun,
}

#[pymethods]
impl ClassifierHandle {
    #[staticmethod]
    fn open(path: &str) -> PyResult<Self> {
        let classifier = aekit::run::classifier::ClassifierRun::open(Path::new(path), &device())
            .map_err(py_err)?;
        Ok(Self { classifier })
    }

    /// Class probabilities of raw rows.
    fn probabilities<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x = matrix(&x)?;
        let p = py
            .detach(|| self.classifier.probabilities_raw("X", x))
            .map_err(py_err)?;
        array(py, p)
    }

    /// `classifier.json` as JSON text.
    fn info(&self) -> PyResult<String> {
        serde_json::to_string(&self.classifier.info)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The fine-tuning history, one JSON object per epoch, as JSON text.
    fn history(&self) -> PyResult<String> {
        let h = self.classifier.history().map_err(py_err)?;
        serde_json::to_string(&h).map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

#[pyfunction]
fn shapes<'py>(py: Python<'py>, n: usize, seed: u64) -> PyResult<Pair<'py, f32, i64>> {
    let ds = aekit::data::shapes::generate(n, seed);
    let labels: Vec<i64> = ds
        .labels
        .unwrap_or_default()
        .into_iter()
        .map(i64::from)
        .collect();
    Ok((array(py, ds.x)?, PyArray1::from_vec(py, labels)))
}

/// An IDX file as an f32 array of its own shape.
#[pyfunction]
fn load_idx<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, numpy::PyArrayDyn<f32>>> {
    let idx = aekit::data::idx::read(Path::new(path)).map_err(py_err)?;
    PyArray1::from_vec(py, idx.values).reshape(idx.dims)
}

/// What the model a run config describes can do (its variant's capabilities, as JSON), known
/// before fitting, so that the estimators branch on capabilities, never on a variant's name.
#[pyfunction]
fn model_capabilities(config: &str) -> PyResult<String> {
    let cfg = aekit::RunConfig::from_toml(config, Path::new("the estimator's parameters"))
        .map_err(py_err)?;
    Ok(serde_json::json!(cfg.model.capabilities()).to_string())
}

/// The run config `aekit train FLAGS` would train, as TOML: the estimators' parameters reach
/// the core as the command line's flags, so both front ends make the same config.
#[pyfunction]
fn configure(flags: Vec<String>) -> PyResult<String> {
    let cfg = aekit::RunConfig::default()
        .with_flags(&flags)
        .map_err(py_err)?;
    cfg.to_toml().map_err(py_err)
}

/// The kinds of model the registry holds.
#[pyfunction]
fn model_kinds() -> Vec<&'static str> {
    aekit::model::variant::kinds()
}

/// Which of the model flags `ids` (by their ids, the config keys) a `kind` model takes.
#[pyfunction]
fn model_takes(kind: &str, ids: Vec<String>) -> PyResult<Vec<bool>> {
    ids.iter()
        .map(|id| aekit::model::ModelConfig::takes_flag(kind, id).map_err(py_err))
        .collect()
}

#[pymodule]
fn _aekit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The CLI's thread pool: one worker per core, subnormals flushed to zero on the workers (not
    // on the interpreter's threads). Fails only if the pool already exists, which changes nothing.
    let _ = aekit::device::init_cpu_pool(None, false);
    // The library's defaults, so that Python decides none of its own.
    m.add(
        "DEFAULT_TRAVERSE_DIMS",
        aekit::explore::DEFAULT_TRAVERSE_DIMS,
    )?;
    m.add("DEFAULT_DELTAS", aekit::explore::DEFAULT_DELTAS.to_vec())?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(threshold_of, m)?)?;
    m.add_function(wrap_pyfunction!(check_contamination, m)?)?;
    m.add_function(wrap_pyfunction!(fit_batches, m)?)?;
    m.add_function(wrap_pyfunction!(fit_series, m)?)?;
    m.add_function(wrap_pyfunction!(fit_table, m)?)?;
    m.add_function(wrap_pyfunction!(table_rows, m)?)?;
    m.add_function(wrap_pyfunction!(shapes, m)?)?;
    m.add_function(wrap_pyfunction!(load_idx, m)?)?;
    m.add_function(wrap_pyfunction!(model_capabilities, m)?)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(model_takes, m)?)?;
    m.add_function(wrap_pyfunction!(model_kinds, m)?)?;
    m.add_class::<RunHandle>()?;
    m.add_class::<ClassifierHandle>()?;
    m.add_function(wrap_pyfunction!(finetune, m)?)?;
    Ok(())
}
