//! Readers and writers: round trips must be exact, and bad files must give errors that name the
//! file and the problem.

mod common;

use std::io::Write;

use aekit::data::{
    DataConfig, Matrix, Preprocessor, Scaling, Split, ValueKind, csv, idx, npy, shapes,
    train_val_split,
};
use aekit::{Dataset, Error};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sample_images() -> idx::IdxArray {
    idx::IdxArray {
        dtype: idx::IdxType::U8,
        dims: vec![3, 2, 4],
        values: (0..24).map(|v| (v * 10 % 256) as f32).collect(),
    }
}

#[test]
fn idx_round_trip_raw_and_gzip() {
    let dir = common::tmp();
    let a = sample_images();
    let raw = dir.path().join("x-idx3-ubyte");
    std::fs::write(&raw, idx::encode(&a)).unwrap();
    assert_eq!(idx::read(&raw).unwrap(), a);
    let gzp = dir.path().join("x-idx3-ubyte.gz");
    std::fs::write(&gzp, gz(&idx::encode(&a))).unwrap();
    assert_eq!(idx::read(&gzp).unwrap(), a);

    for dtype in [
        idx::IdxType::I16,
        idx::IdxType::I32,
        idx::IdxType::F32,
        idx::IdxType::F64,
    ] {
        let b = idx::IdxArray {
            dtype,
            dims: vec![2, 3],
            values: vec![-3.0, 0.0, 7.0, 1000.0, -1000.0, 12.0],
        };
        assert_eq!(idx::parse(&idx::encode(&b), &raw).unwrap(), b, "{dtype:?}");
    }
}

fn expect_bad_file(err: Error, file: &str, needle: &str) {
    let msg = err.to_string();
    assert!(msg.contains(file), "message '{msg}' should name {file}");
    assert!(
        msg.contains(needle),
        "message '{msg}' should mention '{needle}'"
    );
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn idx_rejects_wrong_magic_truncation_and_trailing_data() {
    let dir = common::tmp();
    let p = dir.path().join("bad-idx3-ubyte");
    let good = idx::encode(&sample_images());

    let mut wrong = good.clone();
    wrong[2] = 0x42;
    std::fs::write(&p, &wrong).unwrap();
    expect_bad_file(idx::read(&p).unwrap_err(), "bad-idx3-ubyte", "magic");

    std::fs::write(&p, &good[..good.len() - 5]).unwrap();
    expect_bad_file(idx::read(&p).unwrap_err(), "bad-idx3-ubyte", "truncated");

    let mut long = good.clone();
    long.push(0);
    std::fs::write(&p, &long).unwrap();
    expect_bad_file(idx::read(&p).unwrap_err(), "bad-idx3-ubyte", "trailing");

    std::fs::write(&p, [0u8, 0]).unwrap();
    expect_bad_file(idx::read(&p).unwrap_err(), "bad-idx3-ubyte", "too short");

    let zipped = gz(&good);
    std::fs::write(&p, &zipped[..zipped.len() / 2]).unwrap();
    expect_bad_file(idx::read(&p).unwrap_err(), "bad-idx3-ubyte", "gzip");

    let missing = dir.path().join("missing-idx");
    expect_bad_file(
        idx::read(&missing).unwrap_err(),
        "missing-idx",
        "No such file",
    );
}

#[test]
fn idx_image_and_label_counts_must_agree() {
    let dir = common::tmp();
    let images = dir.path().join("img");
    let labels = dir.path().join("lab");
    std::fs::write(&images, idx::encode(&sample_images())).unwrap();
    let lab = idx::IdxArray {
        dtype: idx::IdxType::U8,
        dims: vec![2],
        values: vec![1.0, 2.0],
    };
    std::fs::write(&labels, idx::encode(&lab)).unwrap();
    let err = idx::read_images_and_labels(&images, Some(&labels)).unwrap_err();
    expect_bad_file(err, "lab", "2 labels but");

    let lab3 = idx::IdxArray {
        dims: vec![3],
        values: vec![1.0, 2.0, 9.0],
        ..lab
    };
    std::fs::write(&labels, idx::encode(&lab3)).unwrap();
    let (x, shape, l) = idx::read_images_and_labels(&images, Some(&labels)).unwrap();
    assert_eq!((x.rows, x.cols, shape), (3, 8, vec![2, 4]));
    assert_eq!(l.unwrap(), vec![1, 2, 9]);
}

#[test]
fn csv_round_trip_is_exact_and_keeps_labels() {
    let dir = common::tmp();
    let p = dir.path().join("codes.csv");
    let m = Matrix::new(3, 2, vec![0.1, -2.5e-7, 3.0, 1e10, -0.333_333_34, 7.0]).unwrap();
    csv::write(&p, &m, "z", Some(&[4, 0, 4])).unwrap();
    let back = csv::read(
        &p,
        &csv::CsvOptions {
            header: None,
            label_column: Some("label".into()),
        },
    )
    .unwrap();
    assert_eq!(back.x, m, "f32 values must survive text exactly");
    assert_eq!(back.labels.unwrap(), vec![4, 0, 4]);
}

#[test]
fn csv_string_labels_header_detection_and_label_index() {
    let dir = common::tmp();
    let p = dir.path().join("iris.csv");
    std::fs::write(&p, "a,b,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n").unwrap();
    let d = csv::read(
        &p,
        &csv::CsvOptions {
            header: None,
            label_column: Some("2".into()),
        },
    )
    .unwrap();
    assert_eq!(d.x.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(d.labels.unwrap(), vec![0, 1, 0]);
    assert_eq!(d.class_names.unwrap(), vec!["setosa", "virginica"]);

    std::fs::write(&p, "1,2\n3,4\n").unwrap();
    let d = csv::read(&p, &csv::CsvOptions::default()).unwrap();
    assert_eq!((d.x.rows, d.x.cols), (2, 2), "numeric first row is data");
}

#[test]
fn csv_rejects_nan_ragged_rows_text_and_empty_files() {
    let dir = common::tmp();
    let p = dir.path().join("bad.csv");
    let opts = csv::CsvOptions::default();
    std::fs::write(&p, "a,b\n1,2\n3,NaN\n").unwrap();
    expect_bad_file(
        csv::read(&p, &opts).unwrap_err(),
        "bad.csv",
        "line 3 column 2",
    );
    std::fs::write(&p, "a,b\n1,2\n3\n").unwrap();
    expect_bad_file(csv::read(&p, &opts).unwrap_err(), "bad.csv", "1 columns");
    std::fs::write(&p, "a,b\n1,2\n3,x\n").unwrap();
    expect_bad_file(csv::read(&p, &opts).unwrap_err(), "bad.csv", "not a number");
    std::fs::write(&p, "").unwrap();
    expect_bad_file(csv::read(&p, &opts).unwrap_err(), "bad.csv", "empty");
    std::fs::write(&p, "a,b\n").unwrap();
    expect_bad_file(csv::read(&p, &opts).unwrap_err(), "bad.csv", "no data rows");
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    let err = csv::read(
        &p,
        &csv::CsvOptions {
            header: None,
            label_column: Some("nope".into()),
        },
    )
    .unwrap_err();
    expect_bad_file(err, "bad.csv", "label column 'nope'");
}

#[test]
fn npy_round_trip_is_bit_exact() {
    let dir = common::tmp();
    let p = dir.path().join("x.npy");
    let m = Matrix::new(2, 3, vec![f32::MIN_POSITIVE, -0.0, 1.5, 1e-30, 3.25, -7.0]).unwrap();
    npy::write(&p, &m).unwrap();
    let back = npy::read(&p, None).unwrap();
    assert_eq!(
        back.x.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        m.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(back.sample_shape, vec![3]);
    assert_eq!(back.value_kind, ValueKind::Float);

    let lp = dir.path().join("y.npy");
    npy::write_labels(&lp, &[3, 1]).unwrap();
    let back = npy::read(&p, Some(&lp)).unwrap();
    assert_eq!(back.labels.unwrap(), vec![3, 1]);

    let img = dir.path().join("img.npy");
    npy::write_shaped(&img, &[2, 2, 3], &[0.0; 12]).unwrap();
    assert_eq!(npy::read(&img, None).unwrap().sample_shape, vec![1, 2, 3]);
}

#[test]
fn npy_reads_u8_and_f64_and_rejects_garbage() {
    use npyz::WriterBuilder;
    let dir = common::tmp();
    let p = dir.path().join("bytes.npy");
    let mut buf = Vec::new();
    {
        let mut w = npyz::WriteOptions::<u8>::new()
            .default_dtype()
            .shape(&[2, 2])
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend([0u8, 255, 7, 128]).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(&p, &buf).unwrap();
    let d = npy::read(&p, None).unwrap();
    assert_eq!(d.value_kind, ValueKind::U8);
    assert_eq!(d.x.data, vec![0.0, 255.0, 7.0, 128.0]);

    let p64 = dir.path().join("f64.npy");
    let mut buf = Vec::new();
    {
        let mut w = npyz::WriteOptions::<f64>::new()
            .default_dtype()
            .shape(&[1, 2])
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend([0.5f64, -2.0]).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(&p64, &buf).unwrap();
    assert_eq!(npy::read(&p64, None).unwrap().x.data, vec![0.5, -2.0]);

    let junk = dir.path().join("junk.npy");
    std::fs::write(&junk, b"definitely not numpy").unwrap();
    expect_bad_file(
        npy::read(&junk, None).unwrap_err(),
        "junk.npy",
        "not a valid .npy",
    );

    std::fs::write(&junk, &buf[..buf.len() - 4]).unwrap();
    expect_bad_file(npy::read(&junk, None).unwrap_err(), "junk.npy", "");
}

#[test]
fn shapes_are_deterministic_balanced_and_bytes() {
    let a = shapes::generate(400, 1);
    let b = shapes::generate(400, 1);
    let c = shapes::generate(400, 2);
    assert_eq!(a.x, b.x);
    assert_ne!(a.x, c.x);
    assert_eq!(a.sample_shape, vec![1, 28, 28]);
    let labels = a.labels.as_ref().unwrap();
    for class in 0..4 {
        let n = labels.iter().filter(|&&l| l == class).count();
        assert!((60..=140).contains(&n), "class {class} has {n} of 400");
    }
    assert!(
        a.x.data
            .iter()
            .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0)
    );
    // Every image shows something, and none fills the frame.
    for i in 0..a.len() {
        let ink: f32 = a.x.row(i).iter().sum::<f32>() / 255.0;
        assert!(
            (10.0..500.0).contains(&ink),
            "image {i} has {ink} pixels of ink"
        );
    }
}

fn toy(rows: usize, cols: usize) -> Dataset {
    Dataset {
        x: Matrix::new(
            rows,
            cols,
            (0..rows * cols)
                .map(|v| (v % 17) as f32 * 3.0 - 5.0)
                .collect(),
        )
        .unwrap(),
        labels: Some((0..rows as u32).collect()),
        class_names: None,
        sample_shape: vec![cols],
        value_kind: ValueKind::Float,
        origin: "toy".into(),
    }
}

#[test]
fn preprocessing_fits_and_inverts() {
    let d = toy(20, 3);
    for scaling in [Scaling::Minmax, Scaling::Standardize, Scaling::None] {
        let p = Preprocessor::fit(scaling, &d);
        let mut m = d.x.clone();
        p.apply(&mut m).unwrap();
        match scaling {
            Scaling::Minmax => {
                for j in 0..3 {
                    let col: Vec<f32> = (0..20).map(|i| m.row(i)[j]).collect();
                    let lo = col.iter().cloned().fold(f32::INFINITY, f32::min);
                    let hi = col.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    assert!(lo.abs() < 1e-6 && (hi - 1.0).abs() < 1e-6);
                }
            }
            Scaling::Standardize => {
                for j in 0..3 {
                    let col: Vec<f64> = (0..20).map(|i| m.row(i)[j] as f64).collect();
                    let mean = col.iter().sum::<f64>() / 20.0;
                    let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 20.0;
                    assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4);
                }
            }
            _ => assert_eq!(m, d.x),
        }
        p.invert(&mut m).unwrap();
        for (a, b) in m.data.iter().zip(&d.x.data) {
            assert!((a - b).abs() < 1e-4, "{scaling:?}: {a} vs {b}");
        }
    }
    assert_eq!(Scaling::Auto.resolve(ValueKind::U8), Scaling::Unit);
    assert_eq!(Scaling::Auto.resolve(ValueKind::Float), Scaling::None);
}

#[test]
fn split_is_seeded_disjoint_and_complete() {
    let d = toy(100, 2);
    let (t1, v1) = train_val_split(&d, 0.2, 7);
    let (t2, v2) = train_val_split(&d, 0.2, 7);
    let (_, v3) = train_val_split(&d, 0.2, 8);
    assert_eq!((t1.len(), v1.len()), (80, 20));
    assert_eq!(v1.labels, v2.labels);
    assert_eq!(t1.labels, t2.labels);
    assert_ne!(v1.labels, v3.labels);
    let mut all: Vec<u32> = t1.labels.unwrap();
    all.extend(v1.labels.unwrap());
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}

#[test]
fn spec_parsing_and_limits() {
    use aekit::data::DataSource;
    assert_eq!(
        DataSource::parse("shapes").unwrap(),
        DataSource::Shapes { grid: false }
    );
    assert_eq!(
        DataSource::parse("shapes-grid").unwrap(),
        DataSource::Shapes { grid: true }
    );
    assert_eq!(
        DataSource::parse("csv:a/b.csv").unwrap(),
        DataSource::Csv("a/b.csv".into())
    );
    assert!(DataSource::parse("csv:").is_err());
    assert!(
        DataSource::parse("hdf5:x")
            .unwrap_err()
            .to_string()
            .contains("unknown dataset")
    );
    let cfg = DataConfig {
        shapes_train: 50,
        limit: Some(20),
        ..DataConfig::default()
    };
    assert_eq!(aekit::data::load(&cfg, Split::Train).unwrap().len(), 20);
    assert_eq!(aekit::data::load(&cfg, Split::Test).unwrap().len(), 1000);
}

#[test]
fn mnist_loads_from_shared_data() {
    let Some(dir) = common::shared_data("mnist") else {
        return;
    };
    let mut cfg = DataConfig::for_source("mnist");
    cfg.data_dir = Some(dir);
    let test = aekit::data::load(&cfg, Split::Test).unwrap();
    assert_eq!((test.len(), test.dim()), (10_000, 784));
    assert_eq!(test.sample_shape, vec![1, 28, 28]);
    let labels = test.labels.as_ref().unwrap();
    assert_eq!(
        labels.iter().filter(|&&l| l == 0).count(),
        980,
        "official t10k count of zeros"
    );
    assert_eq!(test.x.data.iter().cloned().fold(0.0, f32::max), 255.0);
}

/// Atomic writes go through a private temporary file; the result must still get the
/// permissions an ordinary new file gets (0666 less the umask), or users could not share runs.
#[cfg(unix)]
#[test]
fn atomic_writes_get_ordinary_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::tmp();
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, b"x").unwrap();
    let atomic = dir.path().join("atomic.txt");
    aekit::io::write_atomic(&atomic, b"y").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&atomic), mode(&plain));
    assert_eq!(std::fs::read(&atomic).unwrap(), b"y");
}

/// Robust scaling: each feature's median to 0 and its interquartile range (NumPy's linear
/// quantiles) to 1, an outlier moving neither; a constant feature keeps scale 1; a streamed
/// table, read in one pass, is refused by name before anything is read.
#[test]
fn robust_scaling_centres_medians_and_scales_quartile_ranges() {
    // Column 0: 1 2 3 4 100 → median 3, quartiles 2 and 4; column 1 constant.
    let x = Matrix::new(5, 2, vec![1., 7., 2., 7., 3., 7., 4., 7., 100., 7.]).unwrap();
    let p = Preprocessor::fit_matrix(Scaling::Robust, &x);
    assert_eq!(p.offset, vec![3.0, 7.0]);
    assert_eq!(p.scale, vec![0.5, 1.0]);
    let mut y = x.clone();
    p.apply(&mut y).unwrap();
    assert_eq!(y.row(4), &[48.5, 0.0]);
    p.invert(&mut y).unwrap();
    assert_eq!(y, x, "inverted back exactly");

    let dir = common::tmp();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "a,b\n1,7\n2,7\n3,7\n4,7\n100,7\n").unwrap();
    let run = dir.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(["train", "--data", &format!("csv:{}", csv.display())])
        .args([
            "--scale",
            "robust",
            "--val-fraction",
            "0",
            "--hidden",
            "4",
            "--latent",
            "2",
        ])
        .args(["--epochs", "1", "--quiet", "--no-report", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: Preprocessor = aekit::io::read_json(&run.join("preprocess.json")).unwrap();
    assert_eq!(
        saved, p,
        "the run keeps the robust scaling it was trained with"
    );
    let streamed = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args([
            "train",
            "--data",
            &format!("csv:{}", csv.display()),
            "--stream",
        ])
        .args([
            "--scale",
            "robust",
            "--epochs",
            "1",
            "--quiet",
            "--no-report",
            "--out",
        ])
        .arg(dir.path().join("streamed"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&streamed.stderr);
    assert_eq!(streamed.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--scale robust needs the data in memory"),
        "{err}"
    );
    assert!(!dir.path().join("streamed").exists());
}
