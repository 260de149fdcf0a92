//! Codes as files for TensorFlow's Embedding Projector (projector.tensorflow.org, and
//! TensorBoard's projector plugin): `vectors.tsv` (one code per line), `metadata.tsv` (label,
//! class name, row index), and for images a sprite sheet with `projector_config.json`, which
//! names them all.

use std::fmt::Write as _;
use std::path::Path;

use crate::data::Matrix;
use crate::error::{Error, Result};
use crate::io::OutputSet;
use crate::viz::grid::{ImageGrid, encode_png};

/// The largest sprite sheet the Embedding Projector loads, in pixels a side.
pub const MAX_SPRITE_SIDE: usize = 8192;

/// What the projector shows beside each code.
pub struct Annotations<'a> {
    pub labels: Option<&'a [u32]>,
    pub class_names: Option<&'a [String]>,
    /// The samples themselves, in the raw scale, with their `[channels, height, width]`: a
    /// sprite sheet is drawn of them.
    pub images: Option<(&'a Matrix, [usize; 3])>,
}

/// Writes the projector's files for `codes` into `dir`; they appear together or not at all.
/// Returns the files written.
pub fn write(dir: &Path, codes: &Matrix, notes: &Annotations) -> Result<Vec<String>> {
    let mut vectors = String::new();
    for i in 0..codes.rows {
        let line: Vec<String> = codes.row(i).iter().map(|v| v.to_string()).collect();
        writeln!(vectors, "{}", line.join("\t")).expect("a String takes writes");
    }
    // A header line: with more than one column the projector reads the first as names.
    let mut metadata = String::from("label\tclass\tindex\n");
    for i in 0..codes.rows {
        let label = notes.labels.map(|l| l[i]);
        let class = match (label, notes.class_names) {
            (Some(l), Some(names)) => names.get(l as usize).cloned().unwrap_or_default(),
            (Some(l), None) => l.to_string(),
            _ => String::new(),
        };
        let label = label.map(|l| l.to_string()).unwrap_or_default();
        // Tabs and line breaks would split a field.
        let class = class.replace(['\t', '\n', '\r'], " ");
        writeln!(metadata, "{label}\t{class}\t{i}").expect("a String takes writes");
    }
    let mut embedding = serde_json::json!({
        "tensorName": "aekit codes",
        "tensorShape": [codes.rows, codes.cols],
        "tensorPath": "vectors.tsv",
        "metadataPath": "metadata.tsv",
    });
    let sprite = match notes.images {
        Some((images, shape)) => {
            let (png, side) = sprite(images, shape)?;
            embedding["sprite"] = serde_json::json!({
                "imagePath": "sprite.png",
                "singleImageDim": [side[1], side[0]],
            });
            Some(png)
        }
        None => None,
    };
    let config = serde_json::json!({ "embeddings": [embedding] });
    let mut outputs = OutputSet::default();
    let mut written = vec!["vectors.tsv", "metadata.tsv", "projector_config.json"];
    outputs.write(&dir.join("vectors.tsv"), |p| {
        crate::io::write_atomic(p, vectors.as_bytes())
    })?;
    outputs.write(&dir.join("metadata.tsv"), |p| {
        crate::io::write_atomic(p, metadata.as_bytes())
    })?;
    outputs.write(&dir.join("projector_config.json"), |p| {
        crate::io::write_json(p, &config)
    })?;
    if let Some(png) = sprite {
        outputs.write(&dir.join("sprite.png"), |p| {
            crate::io::write_atomic(p, &png)
        })?;
        written.push("sprite.png");
    }
    outputs.commit()?;
    Ok(written.into_iter().map(String::from).collect())
}

/// A sheet of the images in row order, `ceil(√n)` to a row (the figures' grid without zoom or
/// gaps: grey, or RGB for three channels), scaled from their common range to bytes, as PNG
/// bytes; and one image's `[height, width]`.
fn sprite(images: &Matrix, [c, h, w]: [usize; 3]) -> Result<(Vec<u8>, [usize; 2])> {
    let n = images.rows;
    let per_side = (n as f64).sqrt().ceil() as usize;
    if per_side * h.max(w) > MAX_SPRITE_SIDE {
        return Err(Error::invalid(format!(
            "--projector: {n} images of {h}x{w} make a sprite larger than the projector's \
             {MAX_SPRITE_SIDE}x{MAX_SPRITE_SIDE}; take fewer rows (--test-limit)"
        )));
    }
    // The images' common range to [0, 1], as the figures' grid draws values.
    let (lo, hi) = images
        .data
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut unit = images.clone();
    unit.data.iter_mut().for_each(|v| *v = (*v - lo) / span);
    let mut sheet = ImageGrid::new(h, w, c);
    (sheet.zoom, sheet.gap) = (1, 0);
    let png = encode_png(&sheet.tiled(&unit, per_side).render())?;
    Ok((png, [h, w]))
}
