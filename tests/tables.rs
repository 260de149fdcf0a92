//! The Arrow data plane: tables read in parts (Parquet row groups, IPC batches, CSV blocks),
//! the preprocessing fitted in one streaming pass, each epoch's order planned without reading,
//! streamed training that resumes bit for bit, streamed outputs, and bad tables refused with
//! one line naming the file and the column.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aekit::data::table::order::{EpochPlan, is_validation};
use aekit::data::table::scan::{self, RowFilter};
use aekit::data::table::{ColumnChoice, Table, TableFormat};
use aekit::data::{Preprocessor, Scaling, Split};
use aekit::eval::streamed::{self, Destination, Output};
use aekit::fit::{FitOptions, train};
use aekit::{Error, RunDir};
use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// The built-in shapes written as Parquet by `aekit data convert`'s writer, in row groups of
/// `rows_per_group`.
fn shapes_parquet(dir: &Path, n: usize, rows_per_group: usize) -> (PathBuf, aekit::Dataset) {
    let cfg = aekit::data::DataConfig {
        shapes_train: n,
        ..Default::default()
    };
    let ds = aekit::data::load(&cfg, Split::Train).unwrap();
    let path = dir.join("shapes.parquet");
    aekit::data::table::write::write_dataset(&path, &ds, rows_per_group).unwrap();
    (path, ds)
}

/// A Parquet file of the given columns, one row group per `rows_per_group` rows.
fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, rows_per_group: usize) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn table_config(spec: &str) -> aekit::RunConfig {
    let mut cfg = common::tiny_config();
    cfg.data = aekit::data::DataConfig::for_source(spec);
    cfg.data.shuffle_buffer = Some(120);
    cfg
}

#[test]
fn a_parquet_table_reads_back_bit_for_bit_with_its_shape_labels_and_classes() {
    let dir = common::tmp();
    let (path, ds) = shapes_parquet(dir.path(), 500, 64);
    let spec = format!("parquet:{}", path.display());
    let back =
        aekit::data::load(&aekit::data::DataConfig::for_source(&spec), Split::Train).unwrap();
    assert_eq!(back.x, ds.x);
    assert_eq!(back.labels, ds.labels);
    assert_eq!(back.sample_shape, ds.sample_shape);
    assert_eq!(back.value_kind, ds.value_kind);
    assert_eq!(back.class_names, ds.class_names);
    // The row groups are the chunks, read in parts.
    let table = Table::open(&path, TableFormat::Parquet, &ColumnChoice::default()).unwrap();
    let chunks = table.metadata_chunks().unwrap();
    assert_eq!(chunks.len(), 8);
    assert_eq!(chunks.iter().map(|c| c.rows).sum::<usize>(), 500);
}

#[test]
fn the_one_pass_fit_equals_the_in_memory_fit() {
    let dir = common::tmp();
    let path = dir.path().join("t.parquet");
    let n = 3000;
    let a: Vec<f64> = (0..n)
        .map(|i| 1e4 + (i as f64 * 0.37).sin() * 3.0)
        .collect();
    let b: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 7.0 - 50.0)
        .collect();
    let c: Vec<i64> = (0..n).map(|i| (i as i64 % 13) - 6).collect();
    write_parquet(
        &path,
        vec![
            ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
            ("b", Arc::new(Float32Array::from(b))),
            ("c", Arc::new(Int64Array::from(c))),
        ],
        256,
    );
    let table = Table::open(&path, TableFormat::Parquet, &ColumnChoice::default()).unwrap();
    let scanned = scan::scan(&table, &RowFilter::default()).unwrap();
    let whole = aekit::data::load(
        &aekit::data::DataConfig::for_source(&format!("parquet:{}", path.display())),
        Split::Train,
    )
    .unwrap();
    assert_eq!(scanned.index.rows, n);
    for scaling in [Scaling::Minmax, Scaling::Standardize] {
        let streamed = Preprocessor::from_stats(scaling, &scanned.stats).unwrap();
        let in_memory = Preprocessor::fit_matrix(scaling, &whole.x);
        for (s, m) in streamed
            .offset
            .iter()
            .chain(&streamed.scale)
            .zip(in_memory.offset.iter().chain(&in_memory.scale))
        {
            assert!(
                ((s - m) / m.abs().max(1e-30)).abs() <= 1e-6,
                "{scaling:?}: {s} against {m}"
            );
        }
    }
}

#[test]
fn an_epoch_plan_visits_every_training_row_once_and_never_a_validation_row() {
    let dir = common::tmp();
    let (path, _) = shapes_parquet(dir.path(), 1000, 70);
    let table = Table::open(&path, TableFormat::Parquet, &ColumnChoice::default()).unwrap();
    let index = scan::scan(&table, &RowFilter::default()).unwrap().index;
    let mut orders = Vec::new();
    for epoch in 0..2 {
        let plan = EpochPlan::new(&index, 7, epoch, 0.2, 128);
        let mut seen = Vec::new();
        for w in 0..plan.num_windows() {
            let window = plan.window(w);
            let rows: usize = window.segments.iter().map(|s| s.end - s.start).sum();
            assert!(rows <= 128, "a window holds at most the buffer");
            // Positions of the window's rows in file order.
            let positions: Vec<usize> = window
                .segments
                .iter()
                .flat_map(|s| (s.start..s.end).map(move |r| (s.chunk, r)))
                .map(|(c, r)| plan.chunk_position(c) + r)
                .collect();
            seen.extend(window.order.iter().map(|&i| positions[i]));
        }
        assert_eq!(seen.len(), plan.train_rows);
        assert!(seen.iter().all(|&p| !is_validation(7, p, 0.2)));
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "every row once");
        let val = (0..1000).filter(|&p| is_validation(7, p, 0.2)).count();
        assert_eq!(seen.len() + val, 1000);
        assert!((150..250).contains(&val), "about a fifth held out: {val}");
        orders.push(seen);
    }
    assert_ne!(orders[0], orders[1], "each epoch has its own order");
}

#[test]
fn streamed_training_learns_and_resumes_mid_epoch_bit_for_bit() {
    let dir = common::tmp();
    let (path, _) = shapes_parquet(dir.path(), 600, 64);
    let mut cfg = table_config(&format!("parquet:{}", path.display()));
    cfg.train.epochs = 3;
    cfg.model.shared_mut().noise = Some(aekit::data::Corruption::Masking { p: 0.25 });

    let straight = dir.path().join("straight");
    let fitted = train(&cfg, &FitOptions::new(&straight)).unwrap();
    let metrics = RunDir::new(&straight).metrics().unwrap();
    assert_eq!(metrics.len(), 3);
    assert!(
        metrics[2].val_loss.unwrap() < metrics[0].val_loss.unwrap(),
        "validation loss falls: {metrics:?}"
    );
    assert!(straight.join("data-index.json").is_file());
    // The same model on the same rows held in memory (another order and validation split)
    // reaches about the same loss: the streamed batches are scaled as the in-memory ones.
    let held = dir.path().join("held");
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
    aekit::fit::fit(&cfg, &raw, &FitOptions::new(&held)).unwrap();
    let in_memory = RunDir::new(&held).metrics().unwrap();
    let (a, b) = (metrics[2].train_loss, in_memory[2].train_loss);
    assert!(
        a > 0.0 && (a - b).abs() <= 0.1 * b,
        "streamed {a} against in memory {b}"
    );
    let train_rows = fitted.summary.train_samples;
    assert_eq!(train_rows + fitted.summary.val_samples, 600);

    let resumed = dir.path().join("resumed");
    let mut opts = FitOptions::new(&resumed);
    let steps_per_epoch = train_rows.div_ceil(cfg.train.batch_size);
    opts.stop_after_steps = Some(steps_per_epoch + 4);
    assert!(matches!(train(&cfg, &opts), Err(Error::Interrupted(_))));
    opts.resume = true;
    opts.stop_after_steps = None;
    train(&cfg, &opts).unwrap();
    assert_eq!(
        common::weights_bits(&straight),
        common::weights_bits(&resumed)
    );
    let mb = RunDir::new(&resumed).metrics().unwrap();
    for (x, y) in metrics.iter().zip(&mb) {
        assert_eq!((x.train_loss, x.val_loss), (y.train_loss, y.val_loss));
    }
}

#[test]
fn a_directory_of_csv_files_with_hive_partitions_streams_as_one_table() {
    let dir = common::tmp();
    let root = dir.path().join("lake");
    for (part, offset) in [("site=north", 0.0f32), ("site=south", 5.0)] {
        let d = root.join(part);
        std::fs::create_dir_all(&d).unwrap();
        for f in 0..2 {
            let mut text = String::from("a,b,c\n");
            for i in 0..150 {
                let t = (i + 150 * f) as f32 * 0.05;
                text += &format!("{},{},{}\n", t.sin() + offset, t.cos(), (2.0 * t).sin());
            }
            std::fs::write(d.join(format!("part-{f}.csv")), text).unwrap();
        }
    }
    let mut cfg = table_config(&format!("csv:{}", root.display()));
    cfg.data.label_column = Some("site".into());
    cfg.model = aekit::ModelConfig::new(aekit::DenseConfig::new(vec![16], 2));
    let out = dir.path().join("run");
    let fitted = train(&cfg, &FitOptions::new(&out)).unwrap();
    assert_eq!(
        fitted.summary.train_samples + fitted.summary.val_samples,
        600
    );
    let index: serde_json::Value = aekit::io::read_json(&out.join("data-index.json")).unwrap();
    assert_eq!(
        index["index"]["class_names"],
        serde_json::json!(["north", "south"])
    );
    assert_eq!(index["index"]["files"].as_array().unwrap().len(), 4);
}

#[test]
fn codes_stream_to_parquet_with_kept_columns_equal_to_the_in_memory_codes() {
    let dir = common::tmp();
    let path = dir.path().join("t.parquet");
    let n = 700;
    let ids: Vec<String> = (0..n).map(|i| format!("id-{i}")).collect();
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.1).sin()).collect();
    let y: Vec<f32> = (0..n).map(|i| (i as f32 * 0.1).cos()).collect();
    write_parquet(
        &path,
        vec![
            ("id", Arc::new(StringArray::from(ids.clone())) as ArrayRef),
            ("x", Arc::new(Float32Array::from(x))),
            ("y", Arc::new(Float32Array::from(y))),
        ],
        100,
    );
    let mut cfg = table_config(&format!("parquet:{}", path.display()));
    cfg.data.columns = Some(vec!["x".into(), "y".into()]);
    cfg.model = aekit::ModelConfig::new(aekit::DenseConfig::new(vec![8], 2));
    let out = dir.path().join("run");
    train(&cfg, &FitOptions::new(&out)).unwrap();
    let run = aekit::Run::open(&out, &burn::tensor::Device::flex()).unwrap();
    let codes = dir.path().join("codes.parquet");
    let written = stream_to(&run, &run.config.data, &["id"], Output::Codes, &codes);
    assert_eq!(written, n);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&codes).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o044,
            0o044 & !umask(),
            "an ordinary file's permissions: {mode:o}"
        );
    }
    let whole = run.load_data(None, Split::Test).unwrap();
    let expected = run.model.encode(&whole.x).unwrap();
    let (got_ids, got) = read_codes(&codes, Some("id"));
    assert_eq!(got_ids, ids);
    assert_close(&got, &expected.data);
}

/// Writes `output` of the test split to `out` a batch at a time with the `kept` columns;
/// returns the rows written.
fn stream_to(
    run: &aekit::Run,
    data: &aekit::data::DataConfig,
    kept: &[&str],
    output: Output,
    out: &Path,
) -> usize {
    let kept: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
    let dest = Destination {
        out: Some(out),
        labels_out: None,
        kept: &kept,
    };
    streamed::write(run, data, Split::Test, output, &dest)
        .unwrap()
        .rows
}

/// The codes (column `z`) of a streamed output, with the strings of column `id` if named.
fn read_codes(path: &Path, id: Option<&str>) -> (Vec<String>, Vec<f32>) {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let (mut ids, mut codes) = (Vec::new(), Vec::new());
    for batch in reader {
        let batch = batch.unwrap();
        if let Some(name) = id {
            let column = batch.column_by_name(name).unwrap();
            let column = column.as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend(column.iter().map(|s| s.unwrap().to_string()));
        }
        let z = batch.column_by_name("z").unwrap();
        let z = arrow::array::AsArray::as_fixed_size_list(z.as_ref());
        let values = arrow::array::AsArray::as_primitive::<arrow::datatypes::Float32Type>(
            z.values().as_ref(),
        );
        codes.extend(values.values().iter().copied());
    }
    (ids, codes)
}

/// Equal up to the rounding of products over batches of other sizes.
fn assert_close(got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "{g} against {e}");
    }
}

/// A binarised run's evaluation data is one draw of bits over the whole data set: read in
/// batches, each batch continues the draws (it once restarted them, so every batch of a table
/// got the same bits where the rows read alike).
#[test]
fn a_binarised_run_streams_the_bits_it_draws_when_reading_whole() {
    let dir = common::tmp();
    let (path, _) = shapes_parquet(dir.path(), 2500, 400);
    let mut cfg = table_config(&format!("parquet:{}", path.display()));
    cfg.data.binarize = true;
    cfg.train.epochs = 1;
    let out = dir.path().join("run");
    train(&cfg, &FitOptions::new(&out)).unwrap();
    let run = aekit::Run::open(&out, &burn::tensor::Device::flex()).unwrap();
    let codes = dir.path().join("codes.parquet");
    stream_to(&run, &run.config.data, &[], Output::Codes, &codes);
    let whole = run.load_data(None, Split::Test).unwrap();
    let expected = run.model.encode(&whole.x).unwrap();
    assert_close(&read_codes(&codes, None).1, &expected.data);
}

#[cfg(unix)]
fn umask() -> u32 {
    let probe = common::tmp();
    let p = probe.path().join("probe");
    std::fs::write(&p, b"").unwrap();
    use std::os::unix::fs::PermissionsExt;
    0o666 & !std::fs::metadata(&p).unwrap().permissions().mode()
}

/// The error of loading `spec` with `cfg` changed by `edit`.
fn load_error(spec: &str, edit: impl FnOnce(&mut aekit::data::DataConfig)) -> String {
    let mut cfg = aekit::data::DataConfig::for_source(spec);
    edit(&mut cfg);
    let err = aekit::data::load(&cfg, Split::Train)
        .expect_err("refused")
        .to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    err
}

#[test]
fn bad_tables_are_refused_with_one_line_naming_the_file_and_column() {
    let dir = common::tmp();
    let good = dir.path().join("good.parquet");
    write_parquet(
        &good,
        vec![
            (
                "a",
                Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef,
            ),
            ("name", Arc::new(StringArray::from(vec!["x", "y", "z"]))),
        ],
        2,
    );
    let spec = format!("parquet:{}", good.display());
    // A column that does not exist, and a text column among the features.
    let err = load_error(&spec, |c| c.columns = Some(vec!["nope".into()]));
    assert!(
        err.contains("good.parquet") && err.contains("'nope' does not exist"),
        "{err}"
    );
    let err = load_error(&spec, |_| {});
    assert!(err.contains("'name'") && err.contains("--columns"), "{err}");

    // Missing values in a numeric column.
    let nulls = dir.path().join("nulls.parquet");
    write_parquet(
        &nulls,
        vec![(
            "a",
            Arc::new(Float32Array::from(vec![Some(1.0), None, Some(3.0)])) as ArrayRef,
        )],
        10,
    );
    let err = load_error(&format!("parquet:{}", nulls.display()), |_| {});
    assert!(
        err.contains("nulls.parquet") && err.contains("column 'a' has missing values"),
        "{err}"
    );

    // A corrupt footer, and a file cut short.
    let bytes = std::fs::read(&good).unwrap();
    let corrupt = dir.path().join("corrupt.parquet");
    let mut broken = bytes.clone();
    let at = broken.len() - 6;
    broken[at] ^= 0xff;
    std::fs::write(&corrupt, &broken).unwrap();
    let err = load_error(&format!("parquet:{}", corrupt.display()), |_| {});
    assert!(err.contains("corrupt.parquet"), "{err}");
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(&format!("parquet:{}", cut.display()), |_| {});
    assert!(err.contains("cut.parquet"), "{err}");

    // Files of one directory whose schemas differ.
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    write_parquet(
        &lake.join("1.parquet"),
        vec![("a", Arc::new(Float32Array::from(vec![1.0])) as ArrayRef)],
        1,
    );
    write_parquet(
        &lake.join("2.parquet"),
        vec![("b", Arc::new(Float32Array::from(vec![1.0])) as ArrayRef)],
        1,
    );
    let err = load_error(&format!("parquet:{}", lake.display()), |_| {});
    assert!(
        err.contains("2.parquet") && err.contains("schema differs"),
        "{err}"
    );

    // A CSV row with too many fields.
    let csv_dir = dir.path().join("csvs");
    std::fs::create_dir_all(&csv_dir).unwrap();
    std::fs::write(csv_dir.join("a.csv"), "a,b\n1,2\n3,4,5\n").unwrap();
    let err = load_error(&format!("csv:{}", csv_dir.display()), |_| {});
    assert!(err.contains("a.csv"), "{err}");

    // Through the command line: exit code 2, one line, nothing written.
    let run_dir = dir.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(["train", "--data"])
        .arg(format!("parquet:{}", nulls.display()))
        .arg("--out")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("column 'a' has missing values"), "{stderr}");
    assert!(!run_dir.exists(), "no run directory for a refused table");
}

#[test]
fn a_file_that_changes_under_a_run_stops_it_and_the_run_resumes_once_restored() {
    let dir = common::tmp();
    let (path, _) = shapes_parquet(dir.path(), 400, 50);
    let cfg = table_config(&format!("parquet:{}", path.display()));
    let out = dir.path().join("run");
    let mut opts = FitOptions::new(&out);
    opts.stop_after_steps = Some(3);
    assert!(matches!(train(&cfg, &opts), Err(Error::Interrupted(_))));
    let original = std::fs::read(&path).unwrap();
    let moved = dir.path().join("elsewhere.parquet");
    std::fs::rename(&path, &moved).unwrap();
    opts.resume = true;
    opts.stop_after_steps = None;
    let err = train(&cfg, &opts).err().expect("refused");
    assert!(err.to_string().contains("shapes.parquet"), "{err}");
    std::fs::rename(&moved, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), original);
    train(&cfg, &opts).unwrap();
    let straight = dir.path().join("straight");
    train(&cfg, &FitOptions::new(&straight)).unwrap();
    assert_eq!(common::weights_bits(&straight), common::weights_bits(&out));
}

#[test]
fn an_arrow_ipc_file_streams_like_parquet() {
    let dir = common::tmp();
    let (_, ds) = shapes_parquet(dir.path(), 300, 100);
    let path = dir.path().join("t.arrow");
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Float32, false)]));
    let mut w =
        arrow::ipc::writer::FileWriter::try_new(std::fs::File::create(&path).unwrap(), &schema)
            .unwrap();
    for part in ds.x.data.chunks(ds.dim() * 100) {
        let col: ArrayRef = Arc::new(Float32Array::from(part.to_vec()));
        w.write(&RecordBatch::try_new(schema.clone(), vec![col]).unwrap())
            .unwrap();
    }
    w.finish().unwrap();
    let table = Table::open(&path, TableFormat::Arrow, &ColumnChoice::default()).unwrap();
    let index = scan::scan(&table, &RowFilter::default()).unwrap().index;
    assert_eq!(index.chunks.len(), 3);
    assert_eq!(index.rows, ds.x.data.len());
}

#[test]
fn a_reservoir_sample_is_uniform_seeded_and_in_file_order() {
    let dir = common::tmp();
    let (path, ds) = shapes_parquet(dir.path(), 900, 64);
    let choice = ColumnChoice::default();
    let sample = |n, seed| {
        aekit::data::table::reservoir(&path, TableFormat::Parquet, &choice, n, seed).unwrap()
    };
    let a = sample(100, 3);
    assert_eq!(a.len(), 100);
    assert_eq!(a.x, sample(100, 3).x, "the same seed, the same sample");
    assert_ne!(a.x, sample(100, 4).x);
    // Every sampled row is a row of the table, each once, in file order.
    let rows: Vec<&[f32]> = (0..ds.len()).map(|i| ds.x.row(i)).collect();
    let mut last = None;
    for i in 0..a.len() {
        let at = rows
            .iter()
            .position(|r| *r == a.x.row(i))
            .expect("a row of the table");
        assert!(
            last.is_none_or(|l| at > l),
            "in file order, without repeats"
        );
        last = Some(at);
    }
    // Rows from late in the table are drawn as often as early ones would be.
    assert!(last.unwrap() > 450, "the sample reaches the second half");
    assert_eq!(
        sample(5000, 0).x,
        ds.x,
        "a sample larger than the table is the table"
    );
}

#[test]
fn a_file_added_to_a_directory_under_a_run_is_refused_on_resume() {
    let dir = common::tmp();
    let (one, _) = shapes_parquet(dir.path(), 300, 60);
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    std::fs::copy(&one, lake.join("a.parquet")).unwrap();
    std::fs::copy(&one, lake.join("c.parquet")).unwrap();
    let cfg = table_config(&format!("parquet:{}", lake.display()));
    let out = dir.path().join("run");
    let mut opts = FitOptions::new(&out);
    opts.stop_after_steps = Some(2);
    assert!(matches!(train(&cfg, &opts), Err(Error::Interrupted(_))));
    // A file sorted between the two would shift every later chunk onto another file.
    std::fs::copy(&one, lake.join("b.parquet")).unwrap();
    opts.resume = true;
    opts.stop_after_steps = None;
    let Err(err) = train(&cfg, &opts) else {
        panic!("a resume over a changed listing must be refused")
    };
    let err = err.to_string();
    assert!(err.contains("b.parquet") && err.contains("added"), "{err}");
    std::fs::remove_file(lake.join("b.parquet")).unwrap();
    train(&cfg, &opts).unwrap();
}

/// The bytes of an `.npy` holding `values` (f32) shaped `shape`.
fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    aekit::data::npy::to_bytes(shape, values).unwrap()
}

/// The bytes of an `.npy` holding integer labels (i64).
fn npy_labels(labels: &[u32]) -> Vec<u8> {
    let probe = common::tmp();
    let path = probe.path().join("y.npy");
    aekit::data::npy::write_labels(&path, labels).unwrap();
    std::fs::read(&path).unwrap()
}

/// An `.npz` archive of the given members, stored as they are or deflated.
fn write_npz(path: &Path, members: &[(&str, Vec<u8>)], deflated: bool) {
    use npyz::zip::{CompressionMethod, ZipWriter, write::FileOptions};
    use std::io::Write;
    let mut zip = ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if deflated {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    };
    for (name, bytes) in members {
        zip.start_file(
            format!("{name}.npy"),
            FileOptions::default().compression_method(method),
        )
        .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn numpy_shards_stream_as_one_table_equal_to_the_arrays_read_whole() {
    let dir = common::tmp();
    let cfg = aekit::data::DataConfig {
        shapes_train: 3000,
        ..Default::default()
    };
    let ds = aekit::data::load(&cfg, Split::Train).unwrap();
    let labels = ds.labels.clone().unwrap();
    let shards = dir.path().join("shards");
    std::fs::create_dir_all(&shards).unwrap();
    // Shards of 1,500 rows (two chunks of about 4 MiB), 1,000 and 500 rows (deflated: one).
    let mut shape = vec![0];
    shape.extend(&ds.sample_shape);
    for (name, from, to, deflated) in [
        ("a.npz", 0, 1500, false),
        ("b.npz", 1500, 2500, false),
        ("c.npz", 2500, 3000, true),
    ] {
        shape[0] = to - from;
        let x = &ds.x.data[from * ds.x.cols..to * ds.x.cols];
        write_npz(
            &shards.join(name),
            &[
                ("x", npy_f32(&shape, x)),
                ("y", npy_labels(&labels[from..to])),
            ],
            deflated,
        );
    }
    let table = Table::open(&shards, TableFormat::Npy, &ColumnChoice::default()).unwrap();
    let chunks = table.metadata_chunks().unwrap();
    assert_eq!(
        chunks.iter().map(|c| (c.file, c.rows)).collect::<Vec<_>>(),
        [(0, 1337), (0, 163), (1, 1000), (2, 500)]
    );
    let back = aekit::data::load(
        &aekit::data::DataConfig::for_source(&format!("npz:{}", shards.display())),
        Split::Train,
    )
    .unwrap();
    assert_eq!(back.x, ds.x, "bit for bit");
    assert_eq!(back.labels, ds.labels);
    assert_eq!(back.sample_shape, ds.sample_shape);
    // The one-pass fit is the in-memory one.
    let scanned = scan::scan(&table, &RowFilter::default()).unwrap();
    let streamed = Preprocessor::from_stats(Scaling::Standardize, &scanned.stats).unwrap();
    let in_memory = Preprocessor::fit_matrix(Scaling::Standardize, &ds.x);
    for (s, m) in streamed.offset.iter().zip(&in_memory.offset) {
        assert!((s - m).abs() <= 1e-6 * m.abs().max(1.0), "{s} against {m}");
    }
    // One .npy read as a stream (`--stream`) is the same rows as read whole.
    let single = dir.path().join("one.npy");
    std::fs::write(&single, npy_f32(&[3000, ds.x.cols], &ds.x.data)).unwrap();
    let mut one = aekit::data::DataConfig::for_source(&format!("npy:{}", single.display()));
    one.stream = true;
    let source = one.streamed_source().unwrap().unwrap();
    assert_eq!(source.format, TableFormat::Npy);
    let whole =
        aekit::data::table::collect(&source.path, source.format, &ColumnChoice::default()).unwrap();
    assert_eq!(whole.x, ds.x);
}

#[test]
fn bad_numpy_shards_are_refused_with_one_line_naming_the_file() {
    let dir = common::tmp();
    let good = npy_f32(&[4, 3], &[1.0; 12]);
    let case = |name: &str, bytes: &[u8]| -> String {
        let d = dir.path().join(format!("case-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
        load_error(&format!("npy:{}", d.display()), |_| {})
    };
    // Shorter than its header says.
    let err = case("cut.npy", &good[..good.len() - 5]);
    assert!(
        err.contains("cut.npy") && err.contains("declares more data"),
        "{err}"
    );
    // Big-endian values.
    let mut big = good.clone();
    let at = big.windows(3).position(|w| w == b"<f4").unwrap();
    big[at] = b'>';
    let err = case("big.npy", &big);
    assert!(
        err.contains("big.npy") && err.contains("big-endian"),
        "{err}"
    );
    // Not an array at all.
    let err = case("junk.npy", b"hello, world");
    assert!(
        err.contains("junk.npy") && err.contains("not a valid"),
        "{err}"
    );
    // An archive without samples, and labels that do not match the samples.
    let d = dir.path().join("npz");
    std::fs::create_dir_all(&d).unwrap();
    write_npz(&d.join("a.npz"), &[("z", good.clone())], false);
    let err = load_error(&format!("npz:{}", d.display()), |_| {});
    assert!(
        err.contains("a.npz") && err.contains("no array 'x'"),
        "{err}"
    );
    write_npz(
        &d.join("a.npz"),
        &[("x", good.clone()), ("y", npy_labels(&[0, 1]))],
        false,
    );
    let err = load_error(&format!("npz:{}", d.display()), |_| {});
    assert!(err.contains("a.npz") && err.contains("labels 'y'"), "{err}");
    // Shards of one directory that disagree.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::write(mixed.join("1.npy"), &good).unwrap();
    std::fs::write(mixed.join("2.npy"), npy_f32(&[2, 5], &[0.0; 10])).unwrap();
    let err = load_error(&format!("npy:{}", mixed.display()), |_| {});
    assert!(
        err.contains("2.npy") && err.contains("schema differs"),
        "{err}"
    );
    // A shard cut short after the table was opened: the read names it, it does not crash.
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    std::fs::write(lake.join("1.npy"), &good).unwrap();
    let table = Table::open(&lake, TableFormat::Npy, &ColumnChoice::default()).unwrap();
    std::fs::write(lake.join("1.npy"), &good[..good.len() - 8]).unwrap();
    let chunk = &table.metadata_chunks().unwrap()[0];
    let err = table
        .read_chunk(chunk, 0)
        .unwrap()
        .find_map(|b| b.err())
        .expect("a short read")
        .to_string();
    assert!(err.contains("1.npy") && err.contains("truncated"), "{err}");
    // Through the command line: exit code 2, one line, no run directory; --labels refused.
    let run_dir = dir.path().join("run");
    for extra in [&[][..], &["--stream", "--labels", "y.npy"][..]] {
        let spec = if extra.is_empty() {
            format!("npy:{}", dir.path().join("case-cut.npy").display())
        } else {
            format!("npy:{}", lake.join("1.npy").display())
        };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args(["train", "--data", &spec])
            .args(extra)
            .arg("--out")
            .arg(&run_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!run_dir.exists(), "no run directory for refused data");
    }
}

/// A gray PNG of `w`×`h` whose pixels follow from `seed`.
fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([((x * 31 + y * 17 + seed * 7) % 251) as u8])
    })
    .save(path)
    .unwrap();
}

/// Image folders `root/{train,test}/{s1,s2,s10}/` of 6×4 PNGs: 30 training images per class
/// (two chunks in all), 3 test images.
fn image_folder(root: &Path) {
    for (split, n) in [("train", 30), ("test", 3)] {
        for (k, class) in ["s1", "s2", "s10"].iter().enumerate() {
            for i in 0..n {
                let seed = (k * 100 + i) as u32 + if split == "test" { 5000 } else { 0 };
                write_png(
                    &root.join(split).join(class).join(format!("{i}.png")),
                    6,
                    4,
                    seed,
                );
            }
        }
    }
}

#[test]
fn an_image_folder_streams_as_the_in_memory_reader_reads_it() {
    let dir = common::tmp();
    let root = dir.path().join("faces");
    image_folder(&root);
    for split in [Split::Train, Split::Test] {
        let whole = aekit::data::load(
            &aekit::data::DataConfig::for_source(&format!("images:{}", root.display())),
            split,
        )
        .unwrap();
        let mut cfg = aekit::data::DataConfig::for_source(&format!("images:{}", root.display()));
        cfg.stream = true;
        let source = cfg.streamed_split(split).unwrap().unwrap();
        let table = Table::open(&source.path, source.format, &cfg.column_choice(&[])).unwrap();
        assert_eq!(
            table.metadata_chunks().unwrap().len(),
            whole.x.rows.div_ceil(64)
        );
        let streamed =
            aekit::data::table::collect(&source.path, source.format, &cfg.column_choice(&[]))
                .unwrap();
        assert_eq!(streamed.x, whole.x, "bit for bit");
        assert_eq!(streamed.labels, whole.labels);
        // Classes in the folders' natural order, as read whole: s1, s2, s10.
        assert_eq!(streamed.class_names, whole.class_names);
        assert_eq!(
            streamed.class_names.unwrap(),
            ["s1".to_string(), "s2".into(), "s10".into()]
        );
        assert_eq!(streamed.sample_shape, vec![1, 4, 6]);
        assert_eq!(streamed.value_kind, aekit::data::ValueKind::U8);
    }
}

#[test]
fn an_undecodable_image_is_refused_or_left_out_and_counted_never_silently() {
    let dir = common::tmp();
    let root = dir.path().join("faces");
    image_folder(&root);
    let train = root.join("train");
    std::fs::write(train.join("s2").join("broken.png"), b"not a png").unwrap();
    let choice = |bad| ColumnChoice {
        bad_images: bad,
        ..Default::default()
    };
    use aekit::data::table::image_folder::BadImages;
    let table = Table::open(&train, TableFormat::Images, &choice(BadImages::Refuse)).unwrap();
    let err = scan::scan(&table, &RowFilter::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("broken.png") && err.contains("--bad-images skip") && !err.contains('\n'),
        "{err}"
    );
    let table = Table::open(&train, TableFormat::Images, &choice(BadImages::Skip)).unwrap();
    let index = scan::scan(&table, &RowFilter::default()).unwrap().index;
    assert_eq!(index.rows, 90);
    let skipped = index.skipped.expect("counted");
    assert_eq!(skipped.count, 1);
    assert!(skipped.first.ends_with("s2/broken.png"));

    // Through the command line: refused with exit code 2 and no run; trained with the
    // count said; the codes keep each image's file.
    let run_dir = dir.path().join("run");
    let train_cmd = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args(["train", "--data"])
            .arg(format!("images:{}", root.display()))
            .args([
                "--stream", "--epochs", "1", "--hidden", "8", "--latent", "2",
            ])
            .args(extra)
            .arg("--out")
            .arg(&run_dir)
            .output()
            .unwrap()
    };
    let out = train_cmd(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("broken.png"), "{stderr}");
    assert!(!run_dir.exists());
    let out = train_cmd(&["--bad-images", "skip"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("left out 1 image(s)"), "{stderr}");
    let run = aekit::Run::open(&run_dir, &burn::tensor::Device::flex()).unwrap();
    let codes = dir.path().join("codes.parquet");
    let mut data = run.config.data.clone();
    data.source = format!("images:{}", train.display());
    let written = stream_to(&run, &data, &["path"], Output::Codes, &codes);
    assert_eq!(written, 90);
    let (paths, _) = read_codes(&codes, Some("path"));
    assert!(paths[0].ends_with("s1/0.png"), "{}", paths[0]);
    assert!(!paths.iter().any(|p| p.contains("broken")));

    // An image of another size, and an image beside the class folders.
    std::fs::remove_file(train.join("s2").join("broken.png")).unwrap();
    write_png(&train.join("s10").join("big.png"), 8, 8, 1);
    let table = Table::open(&train, TableFormat::Images, &choice(BadImages::Skip)).unwrap();
    let err = scan::scan(&table, &RowFilter::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("big.png") && err.contains("must agree"),
        "{err}"
    );
    std::fs::remove_file(train.join("s10").join("big.png")).unwrap();
    write_png(&train.join("stray.png"), 6, 4, 1);
    let err = Table::open(&train, TableFormat::Images, &choice(BadImages::Refuse))
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("stray.png") && err.contains("class folder"),
        "{err}"
    );
}

/// Byte images are written as one fixed-size binary value per row (Parquet reads those as
/// plain bytes, not lists whose levels it must decode) and read back bit for bit, as bytes.
#[test]
fn byte_images_round_trip_through_parquet_as_fixed_size_binary() {
    let dir = common::tmp();
    let (n, side) = (300, 6);
    let values: Vec<f32> = (0..n * side * side)
        .map(|i| ((i * 37) % 256) as f32)
        .collect();
    let ds = aekit::Dataset {
        x: aekit::data::Matrix::new(n, side * side, values).unwrap(),
        labels: Some((0..n as u32).map(|i| i % 4).collect()),
        class_names: None,
        sample_shape: vec![1, side, side],
        value_kind: aekit::data::ValueKind::U8,
        origin: "bytes".into(),
    };
    let path = dir.path().join("bytes.parquet");
    aekit::data::table::write::write_dataset(&path, &ds, 128).unwrap();
    let table = Table::open(&path, TableFormat::Parquet, &ColumnChoice::default()).unwrap();
    assert_eq!(
        table.schema.field_with_name("x").unwrap().data_type(),
        &DataType::FixedSizeBinary((side * side) as i32)
    );
    let back = aekit::data::load(
        &aekit::data::DataConfig::for_source(&format!("parquet:{}", path.display())),
        Split::Train,
    )
    .unwrap();
    assert_eq!(back.x, ds.x);
    assert_eq!(back.labels, ds.labels);
    assert_eq!(back.sample_shape, ds.sample_shape);
    assert_eq!(back.value_kind, aekit::data::ValueKind::U8);

    // The same bytes as a list of bytes per row (as pyarrow writes images) read the same.
    let bytes: Vec<u8> = ds.x.data.iter().map(|&v| v as u8).collect();
    let item = Arc::new(Field::new("item", DataType::UInt8, false));
    let lists = arrow::array::FixedSizeListArray::try_new(
        item,
        (side * side) as i32,
        Arc::new(arrow::array::UInt8Array::from(bytes)),
        None,
    )
    .unwrap();
    let listed = dir.path().join("lists.parquet");
    write_parquet(&listed, vec![("x", Arc::new(lists) as ArrayRef)], 100);
    let back = aekit::data::load(
        &aekit::data::DataConfig::for_source(&format!("parquet:{}", listed.display())),
        Split::Train,
    )
    .unwrap();
    assert_eq!(back.x, ds.x);
    assert_eq!(back.value_kind, aekit::data::ValueKind::U8);
}

/// Every format a table's outputs are written in (.npy, .csv, .json for scores, Parquet)
/// streams the same values, labels and summary as the outputs of the table read whole.
#[test]
fn every_output_format_of_a_table_streams_what_the_whole_table_gives() {
    use aekit::data::matrix_file;
    use aekit::eval::anomaly::{AnomalyDetector, ScoreKind, ScoreSummary, truth};
    let dir = common::tmp();
    let (path, _) = shapes_parquet(dir.path(), 900, 100);
    let mut cfg = table_config(&format!("parquet:{}", path.display()));
    cfg.train.epochs = 1;
    let out = dir.path().join("run");
    train(&cfg, &FitOptions::new(&out)).unwrap();
    let run = aekit::Run::open(&out, &burn::tensor::Device::flex()).unwrap();
    let whole = run.load_data(None, Split::Test).unwrap();
    let labels = whole.labels.clone().expect("shapes are labelled");
    let codes = run.model.encode(&whole.x).unwrap();
    let data = &run.config.data;

    for ext in ["npy", "csv"] {
        let z = dir.path().join(format!("z.{ext}"));
        let y = dir.path().join(format!("y.{ext}"));
        let dest = Destination {
            out: Some(&z),
            labels_out: Some(&y),
            kept: &[],
        };
        let written = streamed::write(&run, data, Split::Test, Output::Codes, &dest).unwrap();
        assert_eq!(written.rows, whole.x.rows);
        let got = matrix_file::read(&z).unwrap();
        assert_eq!((got.rows, got.cols), (codes.rows, codes.cols), "{ext}");
        assert_close(&got.data, &codes.data);
        let got_labels: Vec<u32> = match ext {
            "npy" => aekit::data::npy::read(&z, Some(&y))
                .unwrap()
                .labels
                .unwrap(),
            _ => matrix_file::read(&y)
                .unwrap()
                .data
                .iter()
                .map(|&v| v as u32)
                .collect(),
        };
        assert_eq!(got_labels, labels, "{ext} labels");
        if ext == "csv" {
            // The layout of a whole matrix's CSV: z0..,label, the label last on every row.
            let text = std::fs::read_to_string(&z).unwrap();
            let mut lines = text.lines();
            let header: Vec<String> = (0..codes.cols)
                .map(|j| format!("z{j}"))
                .chain(["label".to_string()])
                .collect();
            assert_eq!(lines.next().unwrap(), header.join(","));
            let last: Vec<u32> = lines
                .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(last, labels);
        }
    }

    // Reconstructions in the raw scale.
    let x = dir.path().join("x.npy");
    let dest = Destination {
        out: Some(&x),
        labels_out: None,
        kept: &[],
    };
    let output = Output::Reconstructions { raw: true };
    streamed::write(&run, data, Split::Test, output, &dest).unwrap();
    let expected = run
        .to_raw(run.model.reconstruct(&whole.x).unwrap())
        .unwrap();
    assert_close(&matrix_file::read(&x).unwrap().data, &expected.data);

    // Scores: every format, and the summary of the table read whole.
    let kind = ScoreKind::SquaredError;
    let whole_scores = aekit::eval::anomaly::scores(&run, &whole.x, None, kind, 0).unwrap();
    let threshold = aekit::eval::anomaly::quantile(&whole_scores, 0.8);
    let detector = AnomalyDetector::with_threshold(kind, threshold).unwrap();
    let flagged = detector.label(&whole_scores);
    let anomaly = [0u32];
    let t = truth(Some(&labels), Some(&anomaly), None, &run).unwrap();
    let expected = ScoreSummary::new(&detector, &whole_scores, &flagged, Some(&t));
    for ext in ["npy", "csv", "json", "parquet"] {
        let s = dir.path().join(format!("s.{ext}"));
        let dest = Destination {
            out: Some(&s),
            labels_out: None,
            kept: &[],
        };
        let output = Output::Scores {
            detector: &detector,
            anomaly_classes: Some(&anomaly),
            normal_classes: None,
        };
        let summary = streamed::write(&run, data, Split::Test, output, &dest)
            .unwrap()
            .summary
            .unwrap();
        assert_eq!(summary.samples, expected.samples);
        assert_eq!(summary.anomalies, expected.anomalies);
        let (auc, expected_auc) = (summary.roc_auc.unwrap(), expected.roc_auc.unwrap());
        assert!(
            (auc - expected_auc).abs() < 1e-6,
            "{auc} against {expected_auc}"
        );
        let got: Vec<f64> = match ext {
            "npy" => aekit::data::npy::read_array(&s)
                .unwrap()
                .values
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
            "csv" => {
                let text = std::fs::read_to_string(&s).unwrap();
                let mut lines = text.lines();
                assert_eq!(lines.next(), Some("index,score,anomaly"));
                lines
                    .enumerate()
                    .map(|(i, l)| {
                        let fields: Vec<&str> = l.split(',').collect();
                        assert_eq!(fields[0], i.to_string(), "indices run on across batches");
                        fields[1].parse().unwrap()
                    })
                    .collect()
            }
            "json" => {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&s).unwrap()).unwrap();
                assert_eq!(v["samples"], whole.x.rows);
                v["scores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_f64().unwrap())
                    .collect()
            }
            _ => read_scores(&s),
        };
        assert_eq!(got.len(), whole_scores.len(), "{ext}");
        for (g, e) in got.iter().zip(&whole_scores) {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{ext}: {g} against {e}"
            );
        }
    }

    // The threshold stored at training is the one a streamed fit gives; another
    // contamination is fitted anew.
    let stored = AnomalyDetector::stored(&run).unwrap().expect("stored");
    let fitted = AnomalyDetector::fit_streamed(&run, data, kind, 0.1).unwrap();
    assert_eq!(stored, fitted);
    let other = AnomalyDetector::for_table(&run, data, kind, 0.3).unwrap();
    assert_eq!(other.contamination, Some(0.3));
    assert!(other.threshold < stored.threshold);
}

/// The `score` column of a streamed Parquet output.
fn read_scores(path: &Path) -> Vec<f64> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut scores = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("score").unwrap();
        // A one-wide output column is a plain column of floats.
        let values =
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Float32Type>(column.as_ref());
        scores.extend(values.values().iter().map(|&v| f64::from(v)));
    }
    scores
}

/// Through the command line, a table's .npy and .csv outputs stream like Parquet's; columns to
/// keep are refused where the output or the data cannot carry them: exit code 2, one line,
/// nothing written.
#[test]
fn the_cli_streams_every_output_of_a_table_and_refuses_columns_it_cannot_keep() {
    let dir = common::tmp();
    let (path, _) = shapes_parquet(dir.path(), 300, 100);
    let run_dir = dir.path().join("run");
    let aekit = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args(args)
            .output()
            .unwrap()
    };
    let spec = format!("parquet:{}", path.display());
    let run_s = run_dir.to_str().unwrap();
    let small = "--epochs 1 --hidden 8 --latent 2 -q --no-report";
    let mut train = vec!["train", "--data", &spec, "--out", run_s];
    train.extend(small.split(' '));
    let out = aekit(&train);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let z = dir.path().join("z.csv");
    let out = aekit(&["encode", run_s, "--out", z.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&z).unwrap().lines().count(), 301);
    let s = dir.path().join("s.csv");
    let out = aekit(&["score", run_s, "--out", s.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("300 samples scored"), "{stdout}");
    assert!(
        stdout.contains("10.0% quantile") || stdout.contains("90.0% quantile"),
        "{stdout}"
    );

    let refused = |args: &[&str], needle: &str, file: &Path| {
        let out = aekit(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!file.exists(), "{}", file.display());
    };
    let z2 = dir.path().join("z2.npy");
    let z2_s = z2.to_str().unwrap();
    refused(
        &["encode", run_s, "--keep-columns", "label", "--out", z2_s],
        "--keep-columns",
        &z2,
    );
    let npy = dir.path().join("x.npy");
    aekit::data::npy::write(
        &npy,
        &aekit::data::Matrix::new(4, 784, vec![0.5; 4 * 784]).unwrap(),
    )
    .unwrap();
    let npy_spec = format!("npy:{}", npy.display());
    refused(
        &[
            "encode",
            run_s,
            "--data",
            &npy_spec,
            "--keep-columns",
            "a",
            "--out",
            z2_s,
        ],
        "--keep-columns",
        &z2,
    );
    let bad = dir.path().join("s.txt");
    refused(
        &["score", run_s, "--out", bad.to_str().unwrap()],
        "s.txt",
        &bad,
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".aekit-tmp")),
        "no staging file left behind"
    );
}

/// A table read whole under a limit stops reading at the limit and gives the rows the whole
/// table's head gives, bit for bit (a grid of a few rows reads no more).
#[test]
fn a_limited_read_of_a_table_is_the_head_of_the_whole() {
    let dir = common::tmp();
    let (path, _) = shapes_parquet(dir.path(), 500, 100);
    let mut cfg = aekit::data::DataConfig::for_source(&format!("parquet:{}", path.display()));
    let whole = aekit::data::load(&cfg, Split::Test).unwrap();
    cfg.limit_rows(Split::Test, 137);
    let head = aekit::data::load(&cfg, Split::Test).unwrap();
    assert_eq!(head.x, whole.x.head(137));
    assert_eq!(head.labels.as_deref(), Some(&whole.labels.unwrap()[..137]));
}
