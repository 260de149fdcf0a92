//! Fuzzing every parser of untrusted bytes on the stable toolchain: each target starts from a
//! corpus of valid inputs made by aekit's own writers, mutates them at random (bit flips, byte
//! changes, insertions, deletions, truncation, splices, and the big-endian/little-endian size
//! fields that file formats carry), and feeds them to the parser. A panic is a finding; an
//! error is the expected answer to garbage. `aekit-fuzz` runs the targets for a time or a count
//! (FUZZING.md); the test suite runs each for a fixed number of inputs.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{Matrix, csv, idx, npy};
use crate::error::Result;

/// One parser and the files it starts from.
pub struct Target {
    pub name: &'static str,
    /// Valid inputs to mutate.
    pub seeds: fn(&Path) -> Vec<Vec<u8>>,
    /// Parses one input (written to a scratch file in the directory given, where the parser
    /// reads files).
    pub run: fn(&[u8], &Path) -> Result<()>,
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("scratch file");
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("in memory");
    gz.finish().expect("in memory")
}

fn small_matrix() -> Matrix {
    Matrix::new(3, 4, (0..12).map(|i| i as f32 / 11.0).collect()).expect("3x4")
}

fn idx_seeds(_: &Path) -> Vec<Vec<u8>> {
    let a = idx::IdxArray {
        dtype: idx::IdxType::U8,
        dims: vec![2, 3, 3],
        values: (0..18).map(|v| v as f32).collect(),
    };
    let b = idx::IdxArray {
        dtype: idx::IdxType::F32,
        dims: vec![4],
        values: vec![0.5, -1.0, 2.0, 3.5],
    };
    let (a, b) = (idx::encode(&a), idx::encode(&b));
    vec![a.clone(), b.clone(), gzip(&a), gzip(&b)]
}

fn file_seeds(dir: &Path, name: &str, write: impl Fn(&Path)) -> Vec<Vec<u8>> {
    let p = dir.join(name);
    write(&p);
    vec![std::fs::read(&p).expect("seed written")]
}

fn npy_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut v = file_seeds(dir, "seed.npy", |p| {
        npy::write(p, &small_matrix()).expect("npy seed")
    });
    v.extend(file_seeds(dir, "labels.npy", |p| {
        npy::write_labels(p, &[0, 1, 2]).expect("npy seed")
    }));
    v
}

fn npz_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let x = std::fs::read({
        let p = dir.join("x.npy");
        npy::write(&p, &small_matrix()).expect("npy");
        p
    })
    .expect("x.npy");
    let y = std::fs::read({
        let p = dir.join("y.npy");
        npy::write_labels(&p, &[0, 1, 2]).expect("npy");
        p
    })
    .expect("y.npy");
    let mut zip = zip_store(&[("x.npy", &x), ("y.npy", &y)]);
    let single = zip_store(&[("x.npy", &x)]);
    zip.shrink_to_fit();
    vec![zip, single]
}

/// An uncompressed zip archive (what `numpy.savez` writes).
pub fn zip_store(files: &[(&str, &[u8])]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes());
            }
            h.extend([20u8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                // Comment length, disk number, internal attributes; then external ones.
                h.extend([0u8; 6]);
                h.extend(0u32.to_le_bytes());
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(*data);
        central.extend(header(0x0201_4b50, true));
    }
    let start = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(start.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn csv_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut v = file_seeds(dir, "seed.csv", |p| {
        csv::write(p, &small_matrix(), "x", Some(&[0, 1, 0])).expect("csv seed")
    });
    v.push(b"1,2,3\n4,5,6\n".to_vec());
    v
}

fn image_seeds(_: &Path) -> Vec<Vec<u8>> {
    let gray = image::GrayImage::from_fn(5, 4, |x, y| image::Luma([(x * 40 + y * 10) as u8]));
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(gray.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let mut pgm = b"P5\n5 4\n255\n".to_vec();
    pgm.extend(gray.as_raw());
    vec![png, pgm]
}

fn safetensors_seeds(_: &Path) -> Vec<Vec<u8>> {
    let mut cfg = crate::model::ModelConfig::new(crate::model::DenseConfig::new(vec![3], 2));
    cfg.resolve(&[4], true).expect("resolves");
    let m = crate::model::Autoencoder::new(&cfg, 1, &burn::tensor::Device::flex()).expect("model");
    vec![crate::model::safetensors::encode(&m.export(), &cfg).expect("encodes")]
}

fn text_seeds(_: &Path) -> Vec<Vec<u8>> {
    let cfg = crate::run::RunConfig::default().to_toml().expect("toml");
    vec![
        cfg.into_bytes(),
        crate::run::template().expect("template").into_bytes(),
    ]
}

fn spec_seeds(_: &Path) -> Vec<Vec<u8>> {
    [
        "conv:16:3,maxpool:2,conv:8:3:s2:valid:tanh,up:2:bilinear,dense:32,reshape:2x4x4",
        "convt:32:3:s2:op1,avgpool:2:valid,up:7x7",
        "csv:data.csv",
        "idx:a.gz,b.gz",
        "gaussian:0.4",
        "masking:0.3",
        "upscale:2",
        "inpaint:10",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "idx",
            seeds: idx_seeds,
            run: |b, d| idx::read(&write_file(d, "in.idx", b)).map(drop),
        },
        Target {
            name: "npy",
            seeds: npy_seeds,
            run: |b, d| npy::read(&write_file(d, "in.npy", b), None).map(drop),
        },
        Target {
            name: "npz",
            seeds: npz_seeds,
            run: |b, d| npy::read_npz(&write_file(d, "in.npz", b)).map(drop),
        },
        Target {
            name: "csv",
            seeds: csv_seeds,
            run: |b, d| {
                let p = write_file(d, "in.csv", b);
                csv::read(&p, &csv::CsvOptions::default()).map(drop)
            },
        },
        Target {
            name: "images",
            seeds: image_seeds,
            run: |b, d| {
                let class = d.join("images").join("a");
                let _ = std::fs::remove_dir_all(&class);
                std::fs::create_dir_all(&class).expect("scratch dir");
                let name = if b.starts_with(b"\x89PNG") {
                    "0.png"
                } else {
                    "0.pgm"
                };
                write_file(&class, name, b);
                crate::data::images::load(&d.join("images"), crate::data::Split::Train).map(drop)
            },
        },
        Target {
            name: "text",
            seeds: |_| vec![b"Subject: orbit\n\norbit rocket the moon\n".to_vec()],
            run: |b, d| {
                let class = d.join("text").join("a");
                std::fs::create_dir_all(&class).expect("scratch dir");
                write_file(&class, "0", b);
                let vocab = crate::data::text::vocabulary(&d.join("text"), 20)?;
                crate::data::text::load(&d.join("text"), &vocab).map(drop)
            },
        },
        Target {
            name: "safetensors",
            seeds: safetensors_seeds,
            run: |b, d| crate::model::safetensors::read(&write_file(d, "in.st", b)).map(drop),
        },
        Target {
            name: "config",
            seeds: text_seeds,
            run: |b, _| {
                let text = String::from_utf8_lossy(b);
                let cfg = crate::run::RunConfig::from_toml(&text, Path::new("fuzz.toml"))?;
                cfg.validate()
            },
        },
        Target {
            name: "preprocess",
            seeds: |_| {
                let data = crate::data::shapes::generate(4, 1);
                let p = crate::data::Preprocessor::fit(crate::data::Scaling::Standardize, &data);
                vec![serde_json::to_vec(&p).expect("serialises")]
            },
            run: |b, _| {
                serde_json::from_slice::<crate::data::Preprocessor>(b)
                    .map(drop)
                    .map_err(|e| crate::Error::invalid(e.to_string()))
            },
        },
        Target {
            name: "layers",
            seeds: spec_seeds,
            run: |b, _| {
                // A layer spec built into a convolutional model and run forward on a small
                // image: shapes that pass inference must also run.
                let s = String::from_utf8_lossy(b);
                // Large widths are legitimate and only slow; the memory checks have their
                // own tests. Small ones explore the shapes.
                let big = s
                    .split(|c: char| !c.is_ascii_digit())
                    .any(|n| n.len() > 3 || n.parse::<u32>().is_ok_and(|v| v > 256));
                if big {
                    return Ok(());
                }
                let layers = crate::model::layers::parse_layers(&s)?;
                let mut cfg = crate::model::ModelConfig::new(crate::model::ConvConfig::new(layers));
                cfg.resolve(&[1, 12, 12], true)?;
                let model = crate::model::Autoencoder::new(&cfg, 1, &burn::tensor::Device::flex())?;
                model
                    .reconstruct(&Matrix::new(1, 144, vec![0.5; 144])?)
                    .map(drop)
            },
        },
        Target {
            name: "specs",
            seeds: spec_seeds,
            run: |b, _| {
                let s = String::from_utf8_lossy(b);
                // Every spec language on the same strings; shape inference on layer specs.
                if let Ok(layers) = crate::model::layers::parse_layers(&s) {
                    let _ = crate::model::layers::infer_shapes(&[1, 28, 28], &layers);
                    let _ = crate::model::layers::mirror(&[1, 28, 28], &layers);
                }
                let _ = crate::data::DataSource::parse(&s);
                let _ = s.parse::<crate::data::Corruption>();
                let _ = s.parse::<crate::data::paired::PairedTask>();
                Ok(())
            },
        },
    ]
}

/// Mutates `input` in place with a few random edits, sometimes splicing in `other`.
pub fn mutate(input: &mut Vec<u8>, other: &[u8], rng: &mut ChaCha8Rng) {
    for _ in 0..rng.random_range(1..=4) {
        let len = input.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] = *[0u8, 0xff, 0x7f, 0x80, b'0', b',', b'\n', b':']
                    .get(rng.random_range(0..8))
                    .unwrap_or(&0);
            }
            2 => {
                let i = rng.random_range(0..=len);
                input.insert(i, rng.random());
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(16));
                input.drain(i..i + n);
            }
            4 if len > 0 => input.truncate(rng.random_range(0..len)),
            5 if !other.is_empty() => {
                let i = rng.random_range(0..=len);
                let a = rng.random_range(0..other.len());
                let b = rng.random_range(a..=other.len().min(a + 64));
                input.splice(i..i, other[a..b].iter().copied());
            }
            // Size fields: a 4-byte integer set to an extreme value, either byte order.
            6 if len >= 4 => {
                let i = rng.random_range(0..=len - 4);
                let v: u32 = *[0, 1, 0x7fff_ffff, 0xffff_ffff, 1 << 20, 255]
                    .get(rng.random_range(0..6))
                    .unwrap_or(&0);
                let bytes = if rng.random() {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                input[i..i + 4].copy_from_slice(&bytes);
            }
            _ => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(0..32);
                let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                input.splice(i..i, junk);
            }
        }
    }
}

/// What a run of one target found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub inputs: u64,
    pub rejected: u64,
    /// Distinct error messages (with digits removed): a rough measure of how many of the
    /// parser's checks the inputs reached.
    pub distinct_errors: usize,
    /// Inputs that panicked, with the panic message.
    pub panics: Vec<(Vec<u8>, String)>,
}

/// Runs `target` on `count` mutated inputs (or until `deadline`), seeded by `seed`, with
/// scratch files in `dir`. `between` is called after each input (the binary checks its
/// allocation bound there).
pub fn run(
    target: &Target,
    count: u64,
    deadline: Option<std::time::Instant>,
    seed: u64,
    dir: &Path,
    mut between: impl FnMut(&[u8]),
) -> Report {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let corpus = (target.seeds)(dir);
    let mut errors = std::collections::HashSet::new();
    let mut report = Report::default();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while report.inputs < count && deadline.is_none_or(|d| std::time::Instant::now() < d) {
        let mut input = corpus[rng.random_range(0..corpus.len())].clone();
        let other = &corpus[rng.random_range(0..corpus.len())];
        if report.inputs > 0 {
            mutate(&mut input, other, &mut rng);
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input, dir)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                report.rejected += 1;
                let key: String = e
                    .to_string()
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .collect();
                errors.insert(key);
            }
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                report.panics.push((input.clone(), msg));
            }
        }
        between(&input);
        report.inputs += 1;
    }
    std::panic::set_hook(hook);
    report.distinct_errors = errors.len();
    report
}
