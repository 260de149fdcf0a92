//! Orchestration of a training job: data → preprocessing → model → run directory → the
//! training loop → summary. The loop itself ([`crate::train::trainer`]) knows no files; the
//! run directory ([`crate::run`]) knows no training logic.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;

use crate::data::spec::StreamedSource;
use crate::data::table::feed::TableData;
use crate::data::table::scan::{self, TableIndex};
use crate::data::table::{Table, order};
use crate::data::{Dataset, Preprocessor, Split, train_val_indices};
use crate::error::{Error, Result};
use crate::eval::anomaly::{AnomalyDetector, DEFAULT_CONTAMINATION, ScoreKind};
use crate::model::Autoencoder;
use crate::run::{RunConfig, RunDir};
use crate::train::batches::{Batches, InMemoryRows, LabelledRows, TrainingRows};
use crate::train::config::TrainConfig;
use crate::train::progress::Progress;
use crate::train::ranks::{self, Ranks};
use crate::train::state::{Summary, TrainState};
use crate::train::streamed::StreamedRows;
use crate::train::trainer::{self, Optimizers, Session};

/// How to run a training job (as opposed to what to train, which is the [`RunConfig`]).
#[derive(Clone)]
pub struct FitOptions {
    pub out_dir: PathBuf,
    pub device: Device,
    /// Continue the run in `out_dir` from its last checkpoint.
    pub resume: bool,
    /// No progress output.
    pub quiet: bool,
    /// Set by a Ctrl-C handler: the loop saves a checkpoint and stops.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Behave as if interrupted after this many optimisation steps (for tests of resume).
    pub stop_after_steps: Option<usize>,
    /// Called after every optimisation step with the run's step count.
    pub on_step: Option<Arc<crate::train::trainer::StepHook>>,
    /// The processes training together, each on its own share of every batch
    /// ([`crate::train::ranks`]); rank 0 alone writes the run. `None` for one process.
    pub ranks: Option<Arc<dyn Ranks>>,
}

impl FitOptions {
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            device: Device::flex(),
            resume: false,
            quiet: true,
            interrupt: None,
            stop_after_steps: None,
            on_step: None,
            ranks: None,
        }
    }

    /// The ranks when more than one process trains.
    fn several_ranks(&self) -> Option<&dyn Ranks> {
        self.ranks.as_deref().filter(|r| r.size() > 1)
    }

    /// Whether this process writes the run: the only one, or rank 0 of several.
    pub fn writes_run(&self) -> bool {
        self.several_ranks().is_none_or(|r| r.rank() == 0)
    }
}

/// What [`fit`] returns.
pub struct Fitted {
    pub model: Autoencoder,
    pub preprocessor: Preprocessor,
    pub summary: Summary,
    pub run_dir: RunDir,
}

/// Loads the training data the config names and trains on it.
pub fn train(cfg: &RunConfig, opts: &FitOptions) -> Result<Fitted> {
    if let Some((path, format)) = crate::data::columns::typed_source(&cfg.data, &cfg.data.source)? {
        return fit_typed(cfg, &path, format, opts);
    }
    if let Some(source) = cfg.data.streamed_source()? {
        return fit_table(cfg, &source, opts);
    }
    if cfg.data.is_series() {
        return fit_series(cfg, opts);
    }
    // A text source's vocabulary is counted once over its documents, here: loading them and
    // writing the run's vocabulary.txt both use it.
    let vocabulary = crate::data::text_vocabulary(&cfg.data)?;
    let raw = crate::data::load_with_vocabulary(&cfg.data, Split::Train, vocabulary.as_deref())?;
    // Held-out data given apart is read now, so that a bad file is refused before training
    // rather than after it.
    if cfg.data.test_source.is_some() {
        let test =
            crate::data::load_with_vocabulary(&cfg.data, Split::Test, vocabulary.as_deref())?;
        if test.dim() != raw.dim() {
            return Err(Error::mismatch(format!(
                "{}: test samples have {} features, the training samples {}",
                test.origin,
                test.dim(),
                raw.dim()
            )));
        }
    }
    fit_data(cfg, raw, vocabulary.as_deref(), opts)
}

/// Trains on a typed table (numbers, booleans, categories, missing values): its columns are
/// fitted on the training file, its numbers' scaling on the training rows.
fn fit_typed(
    cfg: &RunConfig,
    path: &std::path::Path,
    format: crate::data::table::TableFormat,
    opts: &FitOptions,
) -> Result<Fitted> {
    cfg.validate()?;
    let table = crate::data::columns::read(&cfg.data, path, format)?;
    let mut notes = Vec::new();
    let columns = crate::data::columns::TableColumns::fit(&table, &cfg.data, &mut notes)?;
    let data = columns.dataset(&table, &mut notes)?;
    drop(table);
    if cfg.data.test_source.is_some() {
        crate::data::columns::load(&cfg.data, Split::Test, &columns, &mut notes)?;
    }
    for note in &notes {
        tracing::warn!("{note}");
    }
    let data = crate::data::spec::restrict(&cfg.data, Split::Train, data)?;
    fit_typed_data(cfg, data, columns, opts)
}

/// Trains on a typed table's rows already encoded with `columns` (read from its file, or
/// Python's frame).
pub fn fit_typed_data(
    cfg: &RunConfig,
    data: Dataset,
    columns: crate::data::columns::TableColumns,
    opts: &FitOptions,
) -> Result<Fitted> {
    let mut cfg = cfg.clone();
    cfg.data.typed = true;
    cfg.model
        .set_columns(crate::model::columns::OutputColumns::of(&columns))?;
    let preprocessor = Preprocessor::fit_typed(cfg.data.scale, &data.x, columns);
    fit_prepared(&cfg, data, None, opts, Some(preprocessor))
}

/// Trains on the windows of a time series: the scaling is fitted per channel on the points
/// of the training range (each point once, however many windows hold it).
fn fit_series(cfg: &RunConfig, opts: &FitOptions) -> Result<Fitted> {
    cfg.validate()?;
    let series = crate::data::series::read(&cfg.data, cfg.data.split_source(Split::Train))?;
    if cfg.data.test_source.is_some() {
        let test = crate::data::load(&cfg.data, Split::Test)?;
        if test.sample_shape[0] != series.channels.len() {
            return Err(Error::mismatch(format!(
                "{}: the test series has {} channels, the training series {}",
                test.origin,
                test.sample_shape[0],
                series.channels.len()
            )));
        }
    }
    fit_series_data(cfg, series, opts)
}

/// Trains on a series (read from its file, or Python's arrays), cut as `cfg.data` says, then
/// stores the point threshold of its training range with the run.
pub fn fit_series_data(
    cfg: &RunConfig,
    series: crate::data::series::Series,
    opts: &FitOptions,
) -> Result<Fitted> {
    cfg.validate()?;
    // The windows are cut twice, for training and for the threshold, rather than held twice:
    // overlapping windows take `window / stride` times the series' memory.
    let windowed = series.clone().split_windows(&cfg.data, Split::Train)?;
    let preprocessor = windowed.fit_preprocessor(cfg.data.scale);
    let raw = crate::data::spec::restrict(&cfg.data, Split::Train, windowed.data)?;
    let fitted = fit_prepared(cfg, raw, None, opts, Some(preprocessor))?;
    if opts.writes_run() {
        // Every front end reads the point threshold from the run, with or without the data.
        let stored = crate::run::Run::open(&fitted.run_dir.path, &opts.device).and_then(|run| {
            let train = series.split_windows(&cfg.data, Split::Train)?;
            crate::eval::series::PointDetector::fit_and_store(&run, train)
        });
        if let Err(e) = stored {
            tracing::warn!("no point threshold stored: {e}");
        }
    }
    Ok(fitted)
}

/// Trains an autoencoder on `raw` (unprocessed samples) as `cfg` says, writing the run into
/// `opts.out_dir`. With `opts.resume`, continues that run from its last checkpoint.
pub fn fit(cfg: &RunConfig, raw: &Dataset, opts: &FitOptions) -> Result<Fitted> {
    fit_owned(cfg, raw.clone(), opts)
}

/// [`fit`] on data it may consume: preprocessing happens in place and the validation split is
/// a list of indices, so the samples are held in memory once.
pub fn fit_owned(cfg: &RunConfig, data: Dataset, opts: &FitOptions) -> Result<Fitted> {
    let vocabulary = crate::data::text_vocabulary(&cfg.data)?;
    fit_data(cfg, data, vocabulary.as_deref(), opts)
}

/// [`fit_owned`] with a text source's vocabulary already known (saved with the run).
fn fit_data(
    cfg: &RunConfig,
    data: Dataset,
    vocabulary: Option<&[String]>,
    opts: &FitOptions,
) -> Result<Fitted> {
    fit_prepared(cfg, data, vocabulary, opts, None)
}

/// [`fit_data`] with the preprocessing fitted already where the samples alone do not say
/// how (a series' windows: per channel, on the points).
fn fit_prepared(
    cfg: &RunConfig,
    mut data: Dataset,
    vocabulary: Option<&[String]>,
    opts: &FitOptions,
    preprocessor: Option<Preprocessor>,
) -> Result<Fitted> {
    let mut cfg = cfg.clone();
    cfg.validate()?;
    let typed = preprocessor.as_ref().is_some_and(|p| p.columns.is_some());
    data.validate_values(typed)?;
    let tc = cfg.train.clone();

    let preprocessor = preprocessor.unwrap_or_else(|| Preprocessor::fit(cfg.data.scale, &data));
    cfg.data.scale = preprocessor.scaling;
    cfg.model
        .resolve(&data.sample_shape, preprocessor.scaling.is_unit_range())?;
    cfg.model.resolve_classes(&data)?;
    preprocessor.apply(&mut data.x)?;
    check_binarize(&cfg, &preprocessor, &data.origin)?;
    let (train_rows, val_rows) = train_val_indices(data.len(), cfg.data.val_fraction, tc.seed);
    if train_rows.is_empty() {
        return Err(Error::bad_file(
            &data.origin,
            "no training samples left after the validation split",
        ));
    }
    // The model is built before the run directory is touched: a model that cannot be built
    // (too large for memory, say) leaves no half-made run behind.
    let model = Autoencoder::new(&cfg.model, tc.seed, &opts.device)?;
    let labelled = labelled_rows(&cfg, &data, &train_rows)?;
    let batches = Batches::new(&data.x, cfg.model.noise(), tc.seed)
        .with_task(cfg.model.shared().task, &data.sample_shape)
        .with_binarize(cfg.data.binarize)
        .with_condition(data.labels.as_deref(), model.classes())
        .with_supervision(labelled.as_ref().and(data.labels.as_deref()));
    let rows = InMemoryRows {
        batches,
        train_rows,
        val_rows,
        seed: tc.seed,
        labelled,
    };
    let data_digest = || data_items(&data);
    let fitted = fit_rows(
        &cfg,
        model,
        preprocessor,
        vocabulary,
        &rows,
        opts,
        None,
        &data_digest,
    )?;
    drop(rows);
    if !opts.writes_run() {
        return Ok(fitted);
    }
    // The training rows as evaluation reads them (`Run::load_data`): preprocessed, and
    // binarised once with the evaluation draws.
    let mut x = data.x;
    if cfg.data.binarize {
        crate::data::batch::binarize(&mut x.data, &mut crate::run::eval_binarizer());
    }
    store_detector(&fitted, opts, |run| {
        AnomalyDetector::fit(
            run,
            &x,
            data.labels.as_deref(),
            ScoreKind::default_for(&cfg.model),
            DEFAULT_CONTAMINATION,
        )
    });
    Ok(fitted)
}

/// The training data as ranks compare it before they train together: its shape and the
/// SHA-256 of its values (after preprocessing) and labels.
fn data_items(data: &Dataset) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let mut values = Sha256::new();
    for v in &data.x.data {
        values.update(v.to_le_bytes());
    }
    let mut labels = Sha256::new();
    for l in data.labels.as_deref().unwrap_or_default() {
        labels.update(l.to_le_bytes());
    }
    vec![
        (
            "data.rows".into(),
            format!("{} × {}", data.x.rows, data.x.cols),
        ),
        (
            "data.values".into(),
            format!("sha256 {:x}", values.finalize()),
        ),
        (
            "data.labels".into(),
            format!("sha256 {:x}", labels.finalize()),
        ),
    ]
}

/// A streamed table as ranks compare it before they train together: its rows, its files (name
/// and size) and their row groups; the statistics of its values are compared with the
/// preprocessing. Each rank reads every file itself, so these say whether they read the same.
fn table_items(index: &TableIndex) -> Vec<(String, String)> {
    let files: Vec<String> = index
        .files
        .iter()
        .map(|f| {
            let name = f.path.file_name().unwrap_or_default().to_string_lossy();
            format!("{name} ({} bytes)", f.bytes)
        })
        .collect();
    vec![
        (
            "data.rows".into(),
            format!("{} × {}", index.rows, index.width),
        ),
        ("data.files".into(), files.join(", ")),
        ("data.row groups".into(), ranks::digest_of(&index.chunks)),
    ]
}

/// A semi-supervised model's labelled training rows: those of `train_rows` its
/// [`Supervision`](crate::model::variant::Supervision) keeps, drawn with the training seed.
/// `None` for other models.
fn labelled_rows(
    cfg: &RunConfig,
    data: &Dataset,
    train_rows: &[usize],
) -> Result<Option<LabelledRows>> {
    let Some(supervision) = cfg.model.supervision() else {
        return Ok(None);
    };
    // Classes were resolved from the data, so a semi-supervised model's data has labels;
    // rows marked unlabelled are never chosen.
    let labels = data.labels.as_deref().unwrap_or_default();
    let candidates: Vec<usize> = train_rows
        .iter()
        .copied()
        .filter(|&r| labels[r] != crate::data::UNLABELLED)
        .collect();
    if candidates.is_empty() {
        return Err(Error::bad_file(
            &data.origin,
            "no training row has a label: a semi-supervised model needs at least one per class",
        ));
    }
    let candidate_labels: Vec<u32> = candidates.iter().map(|&r| labels[r]).collect();
    let classes = cfg.model.shared().classes.unwrap_or(0);
    let chosen = supervision
        .labelled
        .choose(&candidate_labels, classes, cfg.train.seed)
        .map_err(|e| Error::bad_file(&data.origin, e.to_string()))?;
    Ok(Some(LabelledRows {
        rows: chosen.into_iter().map(|i| candidates[i]).collect(),
        per_batch: supervision.per_batch,
    }))
}

/// Stores the run's anomaly detector (squared error, the default contamination) beside its
/// model where the run is made, so that every front end — the CLI, Python, the server — flags
/// the same rows with the same threshold. One that cannot be fitted is a warning, not a
/// failed run.
fn store_detector(
    fitted: &Fitted,
    opts: &FitOptions,
    fit: impl FnOnce(&crate::run::Run) -> Result<AnomalyDetector>,
) {
    let stored = crate::run::Run::open(&fitted.run_dir.path, &opts.device).and_then(|run| {
        let detector = fit(&run)?;
        crate::io::write_json(&AnomalyDetector::path(&run), &detector)
    });
    if let Err(e) = stored {
        tracing::warn!("no anomaly threshold stored: {e}");
    }
}

/// Trains on a table streamed from its files: the preprocessing fitted in one pass that also
/// indexes the table (`data-index.json` in the run), then every epoch read ahead in a seeded
/// order of row groups and a bounded shuffle window.
fn fit_table(cfg: &RunConfig, source: &StreamedSource, opts: &FitOptions) -> Result<Fitted> {
    let mut cfg = cfg.clone();
    cfg.validate()?;
    if cfg.model.supervision().is_some() {
        return Err(Error::bad_file(
            &source.path,
            format!(
                "--model {} trains on data held in memory, not on a table streamed from its files",
                cfg.model.kind()
            ),
        ));
    }
    let tc = cfg.train.clone();
    let table = Table::open(&source.path, source.format, &cfg.data.column_choice(&[]))?;
    // A resumed run reads the index it was trained on (and refuses files that changed since);
    // a new one indexes the table in the same pass that fits the preprocessing.
    let indexed = if opts.resume {
        RunDir::read_data_index(&opts.out_dir)?
    } else {
        None
    };
    let (index, preprocessor, range) = match indexed {
        Some((file, preprocessor)) => {
            file.index.check_files()?;
            file.index.check_listing(&table.files)?;
            (file.index, preprocessor, file.range)
        }
        None => {
            let scanned = scan::scan(&table, &cfg.data.row_filter())?;
            let scaling = cfg.data.scale.resolve(scanned.index.value_kind);
            let preprocessor = Preprocessor::from_stats(scaling, &scanned.stats)?;
            let range = preprocessor.range_of(&scanned.stats.min, &scanned.stats.max);
            (scanned.index, preprocessor, range)
        }
    };
    cfg.data.scale = preprocessor.scaling;
    cfg.model
        .resolve(&index.sample_shape, preprocessor.scaling.is_unit_range())?;
    let origin = source.path.display().to_string();
    let labels_seen = table.layout.label.is_some().then_some(index.classes);
    cfg.model.resolve_class_count(&origin, labels_seen)?;
    if let Some(classes) = cfg.model.shared().classes
        && cfg.model.capabilities().conditional
        && index.classes > classes
    {
        return Err(Error::bad_file(
            &source.path,
            format!(
                "label {} is not one of the model's {classes} classes",
                index.classes - 1
            ),
        ));
    }
    check_binarize(&cfg, &preprocessor, &origin)?;
    let model = Autoencoder::new(&cfg.model, tc.seed, &opts.device)?;
    let width = index.width;
    let empty = crate::data::Matrix::zeros(0, width);
    let mut batches = Batches::new(&empty, cfg.model.noise(), tc.seed)
        .with_task(cfg.model.shared().task, &index.sample_shape)
        .with_binarize(cfg.data.binarize)
        .with_condition(Some(&[]), model.classes());
    if !cfg.data.binarize {
        batches.range = range;
    }
    let buffer = order::shuffle_rows(cfg.data.shuffle_buffer, width, tc.batch_size);
    let data = Arc::new(TableData {
        table,
        index: index.clone(),
        classes: cfg.data.train_classes.clone(),
    });
    let rows = StreamedRows::new(
        data,
        preprocessor.clone(),
        batches,
        tc.seed,
        cfg.data.val_fraction,
        buffer,
    );
    if rows.train_rows == 0 {
        return Err(Error::bad_file(
            &source.path,
            "no training rows left after the validation split",
        ));
    }
    let fitted = fit_rows(
        &cfg,
        model,
        preprocessor,
        None,
        &rows,
        opts,
        Some((&index, range)),
        &|| table_items(&index),
    )?;
    drop(rows);
    if !opts.writes_run() {
        return Ok(fitted);
    }
    store_detector(&fitted, opts, |run| {
        AnomalyDetector::fit_streamed(
            run,
            &run.config.data,
            ScoreKind::SquaredError,
            DEFAULT_CONTAMINATION,
        )
    });
    Ok(fitted)
}

/// What every training job shares once its rows are ready: the run directory (created, or
/// opened to resume), the checkpoint, the loop, the summary. With several ranks, they first
/// agree on the config and the data (`data_digest`), rank 0 alone makes or opens the run and
/// the others read its checkpoint, and they agree on where they start.
#[allow(clippy::too_many_arguments)]
fn fit_rows(
    cfg: &RunConfig,
    model: Autoencoder,
    preprocessor: Preprocessor,
    vocabulary: Option<&[String]>,
    rows: &dyn TrainingRows,
    opts: &FitOptions,
    data_index: Option<(&TableIndex, (f32, f32))>,
    data_digest: &dyn Fn() -> Vec<(String, String)>,
) -> Result<Fitted> {
    let tc = cfg.train.clone();
    let several = opts.several_ranks();
    if let Some(ranks) = several {
        ranks::check_trainable(&cfg.model, &model, tc.batch_size, ranks.size())?;
        let mut items = ranks::config_items("", cfg);
        items.push(("--resume".into(), opts.resume.to_string()));
        items.push(("aekit version".into(), env!("CARGO_PKG_VERSION").into()));
        items.push(("preprocessing".into(), ranks::digest_of(&preprocessor)));
        items.extend(data_digest());
        ranks::agree(ranks, "configuration or data", &items)?;
    }
    let writes = opts.writes_run();
    // A fresh run takes its starting weights now, so a source that does not fit leaves no run
    // behind; a resumed one only when it has no checkpoint of its own (below).
    let model = if opts.resume {
        model
    } else {
        warm_start(model, &tc)?
    };
    // The lock is held until training returns. Ranks other than 0 never write the run.
    let (run, _lock) = if !writes {
        (RunDir::new(&opts.out_dir), None)
    } else if opts.resume {
        let (run, lock) = RunDir::open_to_resume(&opts.out_dir, cfg)?;
        (run, Some(lock))
    } else {
        // A variant that cannot describe its network still trains; its runs stay in aekit.
        let graph = model.graph().ok();
        let (run, lock) = RunDir::create(
            &opts.out_dir,
            cfg,
            &preprocessor,
            vocabulary,
            graph.as_ref(),
        )?;
        (run, Some(lock))
    };

    if writes && opts.resume {
        // A run killed while it was being created may lack what creation writes after the
        // config; both are functions of the config and the data, so they are written again.
        run.complete_creation(&preprocessor, vocabulary)?;
    }
    if let Some((index, range)) = data_index.filter(|_| writes) {
        run.save_data_index(index, range)?;
    }
    let optimizers = Optimizers::new(&tc, &model);
    // Resuming a run killed before its first checkpoint starts it afresh; one that trained
    // (it has weights) but lost its checkpoint/ — deleted to save space — is refused: starting
    // afresh would replace the finished model with a new one.
    if writes && opts.resume && !run.has_checkpoint() && run.model_path().exists() {
        return Err(Error::bad_file(
            run.checkpoint_dir(),
            "is missing, so the optimiser state and the data position are lost; continue from the run's best weights with a fresh optimiser into a new run: aekit train --init-from RUN_DIR --out NEW_DIR",
        ));
    }
    // The other ranks read the checkpoint once rank 0 has made or opened the run.
    let from_checkpoint = if let Some(ranks) = several {
        let leader_has = opts.resume && writes && run.has_checkpoint();
        ranks.all_gather(&[u32::from(leader_has)])[0] != 0
    } else {
        opts.resume && run.has_checkpoint()
    };
    let (model, optimizers, state, history) = if from_checkpoint {
        let (model, optimizers, state) = run.load_checkpoint(model, optimizers)?;
        let mut history = if writes { run.metrics()? } else { Vec::new() };
        history.retain(|m| m.epoch <= state.epoch);
        (model, optimizers, state, history)
    } else {
        let model = if opts.resume {
            warm_start(model, &tc)?
        } else {
            model
        };
        let state = TrainState {
            batch_shares: Some(several.map_or_else(rayon::current_num_threads, |r| r.size())),
            ..TrainState::default()
        };
        if writes {
            run.save_checkpoint(&model, &optimizers, &state)?;
        }
        (model, optimizers, state, Vec::new())
    };
    if let Some(ranks) = several {
        ranks::check_resumable(ranks, &run.path, &state)?;
        let start = vec![
            (
                "the checkpoint's place".into(),
                format!("epoch {} step {}", state.epoch + 1, state.batch),
            ),
            (
                "the weights".into(),
                format!("sha256 {}", ranks::weights_digest(model.net())),
            ),
        ];
        ranks::agree(
            ranks,
            "starting point (is the run directory the same for every rank?)",
            &start,
        )?;
    }

    let mut progress = Progress::new(opts.quiet || !writes);
    progress.message(&format!(
        "training {} ({} parameters, {} loss) on {} samples, validating on {}; run directory {}{}",
        cfg.model.describe(),
        model.num_params(),
        cfg.model.loss_name(),
        rows.train_len(),
        rows.val_len(),
        run.path.display(),
        several.map_or(String::new(), |r| {
            let threads = rayon::current_num_threads();
            let plural = if threads == 1 { "" } else { "s" };
            format!("; {} ranks of {threads} thread{plural}", r.size())
        })
    ));
    if let Some(skipped) = data_index.and_then(|(index, _)| index.skipped.as_ref()) {
        progress.message(&skipped.to_string());
    }
    let session = Session {
        model: &cfg.model,
        train: &tc,
        rows,
        interrupt: opts.interrupt.as_deref(),
        stop_after_steps: opts.stop_after_steps,
        on_step: opts.on_step.as_deref(),
        ranks: several,
    };
    let unwritten = ranks::Unwritten {
        location: run.checkpoint_dir(),
        resume_hint: trainer::Checkpoints::resume_hint(&run),
    };
    let store: &dyn trainer::Checkpoints = if writes { &run } else { &unwritten };
    let outcome = trainer::run(
        session,
        model,
        optimizers,
        state,
        history,
        store,
        &mut progress,
    )?;

    let history = &outcome.history;
    let total_samples: f64 = history.iter().map(|m| m.samples_per_sec * m.seconds).sum();
    let total_secs: f64 = history.iter().map(|m| m.seconds).sum();
    let summary = Summary {
        model: cfg.model.describe(),
        parameters: outcome.model.num_params(),
        loss: cfg.model.loss_name().into(),
        epochs_completed: outcome.state.epoch,
        best_epoch: outcome.state.best_epoch,
        best_val_loss: outcome.state.best_val,
        final_train_loss: history.last().map(|m| m.train_loss),
        stop_reason: outcome.stop_reason,
        train_seconds: outcome.state.train_seconds,
        samples_per_sec: total_samples / total_secs.max(1e-9),
        train_samples: rows.train_len(),
        val_samples: rows.val_len(),
    };
    // Another rank's result is its last weights; the run's files are rank 0's.
    let model = if writes {
        run.save_summary(&summary)?;
        run.load_model(&opts.device, false)?
    } else {
        outcome.model
    };
    Ok(Fitted {
        model,
        preprocessor,
        summary,
        run_dir: run,
    })
}

/// Refuses `--binarize` for data not scaled into [0, 1].
fn check_binarize(cfg: &RunConfig, preprocessor: &Preprocessor, origin: &str) -> Result<()> {
    if cfg.data.binarize && !preprocessor.scaling.is_unit_range() {
        return Err(Error::invalid(format!(
            "--binarize needs values in [0, 1]; {origin} is scaled with {:?} (use --scale unit or minmax)",
            preprocessor.scaling
        )));
    }
    Ok(())
}

/// `model` with the best weights of the run `tc.init_from` names, if it names one.
fn warm_start(model: Autoencoder, tc: &TrainConfig) -> Result<Autoencoder> {
    let Some(source) = &tc.init_from else {
        return Ok(model);
    };
    let source = RunDir::open(source)?;
    let weights = source.model_path();
    if !weights.is_file() {
        return Err(Error::bad_file(
            &weights,
            "--init-from: no weights saved yet (that run has not completed an epoch)",
        ));
    }
    model.load_safetensors(&weights).map_err(|e| {
        Error::invalid(format!(
            "--init-from {}: {e} (the two models must have the same layers)",
            source.path.display()
        ))
    })
}

/// What [`finetune`] returns.
pub struct FinetuneOutcome {
    pub run: crate::run::classifier::ClassifierRun,
    /// Scores on the test data, when it was given with labels.
    pub evaluation: Option<crate::eval::classify::ClassificationReport>,
    pub history: Vec<crate::train::finetune::FinetuneEpoch>,
}

/// Fine-tunes `source`'s encoder with a classification head on the labelled rows of `train`
/// (in the model's scale; those `cfg.labels` keeps), scores it on `test` when given, and
/// writes the classifier run to `out` (replacing what is there only with `replace`): the one
/// fine-tuning job of every front end.
#[allow(clippy::too_many_arguments)]
pub fn finetune(
    source: &crate::Run,
    train: &Dataset,
    test: Option<&Dataset>,
    cfg: &crate::train::finetune::FinetuneConfig,
    out: &std::path::Path,
    replace: bool,
    quiet: bool,
    device: &Device,
) -> Result<FinetuneOutcome> {
    use crate::run::classifier::{ClassifierInfo, ClassifierRun, NewClassifierRun};
    use crate::train::finetune::{self, LabelledRows};
    cfg.validate()?;
    let name = source.dir.path.display().to_string();
    if source.model.classes() > 0 {
        return Err(Error::invalid(format!(
            "{name} is a conditional model: its encoder needs the class that a classifier would predict"
        )));
    }
    let labels = train.labels.as_deref().ok_or_else(|| {
        Error::invalid(format!(
            "{}: the data has no labels to fine-tune with",
            train.origin
        ))
    })?;
    source.check_width(&train.origin, train.dim())?;
    let classes = train.num_classes();
    let seed = cfg.train.seed;
    let chosen = cfg.labels.choose(labels, classes, seed)?;
    let (fit_at, val_at) = train_val_indices(chosen.len(), cfg.val_fraction, seed);
    let part = |at: &[usize]| train.subset(&at.iter().map(|&i| chosen[i]).collect::<Vec<_>>());
    let (fit_rows, val_rows) = (part(&fit_at), part(&val_at));
    fn labelled(d: &Dataset) -> LabelledRows<'_> {
        LabelledRows {
            x: &d.x,
            labels: d.labels.as_deref().unwrap_or_default(),
        }
    }

    let net = if cfg.from_scratch {
        Autoencoder::new(source.model.config(), seed, device)?.into_net()
    } else {
        source.model.net().clone()
    };
    let head = cfg.head.build(
        source.model.latent_dim(),
        classes,
        seed,
        &device.clone().autodiff(),
    )?;
    let mut progress = Progress::new(quiet);
    let tuned = finetune::finetune(
        cfg,
        crate::model::classifier::Classifier { net, head },
        labelled(&fit_rows),
        (!val_rows.is_empty()).then(|| labelled(&val_rows)),
        &source.model,
        &mut progress,
    )?;
    let info = ClassifierInfo {
        source: name,
        head: cfg.head.clone(),
        classes,
        class_names: train.class_names.clone(),
        finetune: cfg.clone(),
        train_rows: fit_rows.len(),
        validation_rows: val_rows.len(),
        kept_epoch: tuned.kept_epoch,
    };
    let mut run = source.clone();
    run.dir = RunDir::new(out);
    run.model = source.model.with_net(tuned.classifier.net);
    let made = ClassifierRun {
        run,
        info,
        head: tuned.classifier.head,
    };
    let evaluation = match test.filter(|t| t.labels.is_some()) {
        Some(test) => Some(crate::eval::classify::evaluate(&made, test)?.0),
        None => None,
    };
    let evaluation_json = evaluation
        .as_ref()
        .map(|e| serde_json::to_value(e).map_err(|e| Error::Serialize(e.to_string())))
        .transpose()?;
    NewClassifierRun {
        source,
        made: &made,
        history: &tuned.history,
        evaluation: evaluation_json.as_ref(),
    }
    .write(out, replace)?;
    Ok(FinetuneOutcome {
        run: made,
        evaluation,
        history: tuned.history,
    })
}
