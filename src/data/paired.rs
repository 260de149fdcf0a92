//! Paired tasks: the model sees a degraded image and learns to give back the original.
//! Super-resolution sees the image downscaled and brought back to full size by bilinear
//! interpolation (so its input *is* the bilinear baseline, and any gain is the model's),
//! recolouring sees the grey image in every channel, inpainting sees a square blanked out.
//! Shrinking averages each factor×factor block (area downscaling, the usual super-resolution
//! degradation); enlarging is the `image` crate's bilinear (triangle) filter.

use std::fmt;
use std::str::FromStr;

use image::imageops::{FilterType, resize};
use image::{ImageBuffer, Luma};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// ITU-R BT.601 luma weights, the usual RGB → grey conversion (PIL's "L" mode).
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PairedTask {
    /// Input: the image downscaled by `factor`, then upscaled back bilinearly.
    Upscale { factor: usize },
    /// Input: the grey (luma) image in all three channels.
    Recolor,
    /// Input: a `size`×`size` square at a random place set to the range's low end.
    Inpaint { size: usize },
}

impl FromStr for PairedTask {
    type Err = Error;

    /// `upscale:2`, `recolor`, `inpaint:10`.
    fn from_str(s: &str) -> Result<Self> {
        let (kind, arg) = match s.trim().split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s.trim(), None),
        };
        let number = |what: &str| -> Result<usize> {
            arg.and_then(|a| a.trim().parse::<usize>().ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "task '{s}' needs a whole {what} ≥ 1, e.g. {kind}:2"
                    ))
                })
        };
        match kind {
            "upscale" => {
                let factor = number("factor")?;
                if factor < 2 {
                    return Err(Error::invalid(format!(
                        "task '{s}': the factor must be 2 or more"
                    )));
                }
                Ok(PairedTask::Upscale { factor })
            }
            "recolor" | "recolour" if arg.is_none() => Ok(PairedTask::Recolor),
            "inpaint" => Ok(PairedTask::Inpaint {
                size: number("square size")?,
            }),
            _ => Err(Error::invalid(format!(
                "unknown task '{s}': use upscale:FACTOR, recolor or inpaint:SIZE"
            ))),
        }
    }
}

impl fmt::Display for PairedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairedTask::Upscale { factor } => write!(f, "upscale:{factor}"),
            PairedTask::Recolor => write!(f, "recolor"),
            PairedTask::Inpaint { size } => write!(f, "inpaint:{size}"),
        }
    }
}

impl TryFrom<String> for PairedTask {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<PairedTask> for String {
    fn from(t: PairedTask) -> String {
        t.to_string()
    }
}

/// `(channels, height, width)` of a sample shape, which must be an image.
pub fn image_dims(shape: &[usize]) -> Result<(usize, usize, usize)> {
    match shape {
        [c, h, w] => Ok((*c, *h, *w)),
        _ => Err(Error::invalid(format!(
            "paired tasks need image data (channels x height x width), got samples of shape {shape:?}"
        ))),
    }
}

/// Resizes every channel of a channel-first image.
pub fn resize_image(img: &[f32], c: usize, h: usize, w: usize, nh: usize, nw: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(c * nh * nw);
    for plane in img.chunks_exact(h * w).take(c) {
        let buf: ImageBuffer<Luma<f32>, Vec<f32>> =
            ImageBuffer::from_raw(w as u32, h as u32, plane.to_vec()).expect("plane size");
        out.extend(resize(&buf, nw as u32, nh as u32, FilterType::Triangle).into_raw());
    }
    out
}

/// Averages each `factor`×`factor` block of every channel (sides must divide by `factor`).
pub fn box_downscale(img: &[f32], c: usize, h: usize, w: usize, factor: usize) -> Vec<f32> {
    let (sh, sw) = (h / factor, w / factor);
    let norm = 1.0 / (factor * factor) as f32;
    let mut out = vec![0f32; c * sh * sw];
    for ch in 0..c {
        for y in 0..sh * factor {
            for x in 0..sw * factor {
                out[ch * sh * sw + (y / factor) * sw + x / factor] +=
                    img[ch * h * w + y * w + x] * norm;
            }
        }
    }
    out
}

impl PairedTask {
    /// The task's name, which is also the command that applies it (`aekit upscale`).
    pub fn name(&self) -> &'static str {
        match self {
            PairedTask::Upscale { .. } => "upscale",
            PairedTask::Recolor => "recolor",
            PairedTask::Inpaint { .. } => "inpaint",
        }
    }

    /// An example spec of the task `name`, for messages.
    pub fn example_spec(name: &str) -> &'static str {
        match name {
            "upscale" => "upscale:2",
            "inpaint" => "inpaint:10",
            _ => "recolor",
        }
    }

    /// What the model's output is measured against besides the originals: the degraded input,
    /// which for upscaling is bilinear interpolation.
    pub fn baseline(&self) -> &'static str {
        match self {
            PairedTask::Upscale { .. } => "bilinear",
            _ => "input",
        }
    }

    /// Checks that the task applies to samples of `shape`.
    pub fn check(&self, shape: &[usize]) -> Result<()> {
        let (c, h, w) = image_dims(shape)?;
        match *self {
            PairedTask::Upscale { factor } if h % factor != 0 || w % factor != 0 => {
                Err(Error::invalid(format!(
                    "upscale:{factor} needs images whose sides divide by {factor}; these are {w}x{h}"
                )))
            }
            PairedTask::Recolor if c != 3 => Err(Error::invalid(format!(
                "recolor needs colour (3-channel) images; these have {c} channel(s)"
            ))),
            PairedTask::Inpaint { size } if size >= h || size >= w => Err(Error::invalid(format!(
                "inpaint:{size} needs a square smaller than the {w}x{h} images"
            ))),
            _ => Ok(()),
        }
    }

    /// The shape of the small images an upscaling model takes (`shape` otherwise).
    pub fn small_shape(&self, shape: &[usize]) -> Vec<usize> {
        match (self, shape) {
            (PairedTask::Upscale { factor }, [c, h, w]) => vec![*c, h / factor, w / factor],
            _ => shape.to_vec(),
        }
    }

    /// The degraded version of one sample (`shape` = channels x height x width).
    pub fn degrade(&self, img: &mut [f32], shape: &[usize], range: (f32, f32), rng: &mut impl Rng) {
        let (c, h, w) = (shape[0], shape[1], shape[2]);
        match *self {
            PairedTask::Upscale { factor } => {
                let small = box_downscale(img, c, h, w, factor);
                img.copy_from_slice(&resize_image(&small, c, h / factor, w / factor, h, w));
            }
            PairedTask::Recolor => {
                let n = h * w;
                for i in 0..n {
                    let y: f32 = (0..3).map(|k| LUMA[k] * img[k * n + i]).sum();
                    for k in 0..3 {
                        img[k * n + i] = y;
                    }
                }
            }
            PairedTask::Inpaint { size } => {
                let top = rng.random_range(0..=h - size);
                let left = rng.random_range(0..=w - size);
                for plane in img.chunks_exact_mut(h * w) {
                    for y in top..top + size {
                        plane[y * w + left..y * w + left + size].fill(range.0);
                    }
                }
            }
        }
    }

    /// Degrades every sample of a flat batch.
    pub fn degrade_all(
        &self,
        x: &mut [f32],
        shape: &[usize],
        range: (f32, f32),
        rng: &mut impl Rng,
    ) {
        let size: usize = shape.iter().product();
        for img in x.chunks_exact_mut(size) {
            self.degrade(img, shape, range, rng);
        }
    }

    /// The model input for a new image: small images are brought to full size bilinearly,
    /// colour images turned grey; full-size images are used as they are.
    pub fn prepare(&self, img: &[f32], given: &[usize], full: &[usize]) -> Result<Vec<f32>> {
        let (c, h, w) = image_dims(given)?;
        match *self {
            PairedTask::Upscale { .. } if given == self.small_shape(full).as_slice() => {
                Ok(resize_image(img, c, h, w, full[1], full[2]))
            }
            PairedTask::Recolor if c == 1 && full[0] == 3 => Ok(img.repeat(3)),
            _ if given == full => Ok(img.to_vec()),
            _ => Err(Error::mismatch(format!(
                "{self}: the model takes {:?} images (or {:?} to upscale), got {given:?}",
                full,
                self.small_shape(full)
            ))),
        }
    }
}
