//! Grids of images: rows of samples (originals above reconstructions, and so on).

use std::path::Path;

use image::{ImageEncoder, RgbImage};

use crate::data::Matrix;
use crate::error::{Error, Result};

/// A grid of equally sized images, laid out row by row, with a gap between cells.
#[derive(Debug, Clone)]
pub struct ImageGrid {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// Pixels per image pixel.
    pub zoom: usize,
    pub gap: usize,
    rows: Vec<Vec<Vec<f32>>>,
}

impl ImageGrid {
    pub fn new(height: usize, width: usize, channels: usize) -> Self {
        Self {
            height,
            width,
            channels,
            zoom: 2,
            gap: 2,
            rows: Vec::new(),
        }
    }

    /// One grid row per matrix, each showing that matrix's first `n` samples (e.g. originals
    /// above reconstructions).
    pub fn stacked(&mut self, rows: &[&Matrix], n: usize) -> &mut Self {
        for m in rows {
            let n = n.min(m.rows);
            self.push_row((0..n).map(|i| m.row(i).to_vec()).collect());
        }
        self
    }

    /// Every sample of `m`, `cols` to a grid row.
    pub fn tiled(&mut self, m: &Matrix, cols: usize) -> &mut Self {
        for chunk in (0..m.rows).collect::<Vec<_>>().chunks(cols.max(1)) {
            self.push_row(chunk.iter().map(|&i| m.row(i).to_vec()).collect());
        }
        self
    }

    /// Adds a row of images, each `channels*height*width` values in [0, 1] (channel-first).
    pub fn push_row(&mut self, images: Vec<Vec<f32>>) {
        self.rows.push(images);
    }

    pub fn cols(&self) -> usize {
        self.rows.iter().map(|r| r.len()).max().unwrap_or(0)
    }

    /// Top-left pixel of cell `(row, col)` in the rendered image.
    pub fn cell_origin(&self, row: usize, col: usize) -> (usize, usize) {
        let step_x = self.width * self.zoom + self.gap;
        let step_y = self.height * self.zoom + self.gap;
        (self.gap + col * step_x, self.gap + row * step_y)
    }

    pub fn render(&self) -> RgbImage {
        let cols = self.cols();
        let w = self.gap + cols * (self.width * self.zoom + self.gap);
        let h = self.gap + self.rows.len() * (self.height * self.zoom + self.gap);
        let mut img = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([255, 255, 255]));
        let plane = self.height * self.width;
        for (r, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (x0, y0) = self.cell_origin(r, c);
                for y in 0..self.height * self.zoom {
                    for x in 0..self.width * self.zoom {
                        let p = (y / self.zoom) * self.width + x / self.zoom;
                        let px = |ch: usize| {
                            let v = cell.get(ch * plane + p).copied().unwrap_or(0.0);
                            (v.clamp(0.0, 1.0) * 255.0).round() as u8
                        };
                        let rgb = if self.channels >= 3 {
                            [px(0), px(1), px(2)]
                        } else {
                            let g = px(0);
                            [g, g, g]
                        };
                        img.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb(rgb));
                    }
                }
            }
        }
        img
    }
}

/// An image as PNG bytes.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::invalid(format!("cannot encode PNG: {e}")))?;
    Ok(bytes)
}

/// Encodes an image as PNG and writes it atomically.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    let bytes = encode_png(img).map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
    crate::io::write_atomic(path, &bytes)
}
