//! Folders of images (PNG, and PGM/PPM as the ORL faces come): one subfolder per class, or the
//! images directly in the folder (unlabelled). A folder with `train/` and `test/` subfolders
//! gives those splits; otherwise every fifth image of each class (in name order) is held out
//! as the test split, so small sets such as the ORL faces (10 per person) split 8 / 2.

use std::path::{Path, PathBuf};

use crate::data::{Dataset, Matrix, Split, ValueKind};
use crate::error::{Error, IoContext, Result};

pub(crate) const EXTENSIONS: [&str; 5] = ["png", "pgm", "ppm", "pnm", "pbm"];
/// Every `TEST_EVERY`-th image of a class goes to the test split.
const TEST_EVERY: usize = 5;

/// Orders names with digit runs compared as numbers, so `s2` comes before `s10`.
fn natural_key(name: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut chars = name.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digit = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() != digit {
                break;
            }
            run.push(d);
            chars.next();
        }
        key.push(if digit {
            (run.parse().unwrap_or(u64::MAX), String::new())
        } else {
            (u64::MAX, run)
        });
    }
    key
}

pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .at(dir)?
        .map(|e| e.map(|e| e.path()).at(dir))
        .collect::<Result<Vec<_>>>()?;
    entries
        .sort_by_cached_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    Ok(entries)
}

pub(crate) fn is_image(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// One image as channel-first bytes: gray images give 1 channel, colour ones 3 (alpha dropped).
pub(crate) fn read_image_bytes(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let img = image::open(path)
        .map_err(|e| Error::bad_file(path, format!("not a readable image: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if img.color().has_color() {
        let rgb = img.to_rgb8();
        let mut out = vec![0u8; 3 * w * h];
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * w * h + i] = p.0[c];
            }
        }
        Ok((vec![3, h, w], out))
    } else {
        Ok((vec![1, h, w], img.to_luma8().into_raw()))
    }
}

fn read_image(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let (shape, bytes) = read_image_bytes(path)?;
    Ok((shape, bytes.into_iter().map(f32::from).collect()))
}

/// Why two images of one data set cannot be rows of it, or `None` when their shapes agree.
pub(crate) fn shape_mismatch(
    shape: &[usize],
    first: &[usize],
    first_path: &Path,
) -> Option<String> {
    (shape != first).then(|| {
        format!(
            "is {}x{} with {} channel(s), but {} is {}x{} with {}: images of a dataset must agree",
            shape[2],
            shape[1],
            shape[0],
            first_path.display(),
            first[2],
            first[1],
            first[0]
        )
    })
}

/// Loads `split` of the image folder `dir`.
pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::bad_file(dir, "is not a folder of images"));
    }
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    let has_splits = train_dir.is_dir() && test_dir.is_dir();
    let root = match (has_splits, split) {
        (true, Split::Train) => train_dir,
        (true, Split::Test) => test_dir,
        (false, _) => dir.to_path_buf(),
    };
    let entries = sorted_entries(&root)?;
    let class_dirs: Vec<PathBuf> = entries.iter().filter(|p| p.is_dir()).cloned().collect();
    // (files, label) groups: one per class folder, or one unlabelled group.
    let groups: Vec<(Vec<PathBuf>, Option<u32>)> = if class_dirs.is_empty() {
        vec![(entries.into_iter().filter(|p| is_image(p)).collect(), None)]
    } else {
        class_dirs
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let files = sorted_entries(d)?
                    .into_iter()
                    .filter(|p| is_image(p))
                    .collect();
                Ok((files, Some(k as u32)))
            })
            .collect::<Result<_>>()?
    };
    let mut shape: Option<(Vec<usize>, PathBuf)> = None;
    let (mut data, mut labels, mut rows) = (Vec::new(), Vec::new(), 0usize);
    for (files, label) in &groups {
        for (i, path) in files.iter().enumerate() {
            let in_test = i % TEST_EVERY == TEST_EVERY - 1;
            if !has_splits && in_test != matches!(split, Split::Test) {
                continue;
            }
            let (s, values) = read_image(path)?;
            match &shape {
                None => shape = Some((s, path.clone())),
                Some((first, first_path)) => {
                    if let Some(msg) = shape_mismatch(&s, first, first_path) {
                        return Err(Error::bad_file(path, msg));
                    }
                }
            }
            data.extend(values);
            labels.extend(*label);
            rows += 1;
        }
    }
    let Some((sample_shape, _)) = shape else {
        return Err(Error::bad_file(
            &root,
            format!("holds no images ({}) for this split", EXTENSIONS.join(", ")),
        ));
    };
    let cols = sample_shape.iter().product();
    let labelled = !class_dirs.is_empty();
    Ok(Dataset {
        x: Matrix::new(rows, cols, data)?,
        labels: labelled.then_some(labels),
        class_names: labelled.then(|| {
            class_dirs
                .iter()
                .map(|d| {
                    d.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string()
                })
                .collect()
        }),
        sample_shape,
        value_kind: ValueKind::U8,
        origin: format!(
            "images:{} ({})",
            dir.display(),
            match split {
                Split::Train => "train",
                Split::Test => "test",
            }
        ),
    })
}
