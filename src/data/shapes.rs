//! The built-in `shapes` dataset: 28x28 grayscale images of a square, a ring, a
//! triangle or a bar, a little shifted, scaled and tilted at random, drawn with 4x4
//! supersampling for smooth edges.
//! Generated from a seed, so the main job needs no download and every machine sees the same data.

use rand::Rng;

use crate::data::batch::rng_for;
use crate::data::{Dataset, Matrix, ValueKind};

pub const SIDE: usize = 28;
pub const CLASS_NAMES: [&str; 4] = ["square", "ring", "triangle", "bar"];

// How much the shapes vary. Kept below what would let position, size and orientation
// dominate the pixels: then a 2-D code (and PCA's first two components) separates the classes,
// which is what the main job's code map is there to show.
/// Range of the shape's radius in pixels.
const SIZE: std::ops::Range<f32> = 6.5..9.0;
/// Largest shift of the centre from the image centre, in pixels per axis.
const SHIFT: f32 = 2.0;
/// Largest rotation either way, in radians (about 17 degrees).
const TILT: f32 = 0.3;

/// Inner radius of the ring, relative to the outer: a filled disc would differ from the square
/// only at the corners.
const RING_INNER: f32 = 0.55;

fn inside(class: usize, u: f32, v: f32, size: f32) -> bool {
    match class {
        0 => u.abs() <= 0.8 * size && v.abs() <= 0.8 * size,
        1 => {
            let r2 = u * u + v * v;
            r2 <= size * size && r2 >= RING_INNER * RING_INNER * size * size
        }
        2 => {
            // Equilateral triangle with circumradius `size`: inside all three edges, whose
            // outward normals point at 90°, 210° and 330° at distance size/2 from the centre.
            let h = 0.5 * size;
            [(0.0f32, 1.0f32), (-0.866_025_4, -0.5), (0.866_025_4, -0.5)]
                .iter()
                .all(|(nx, ny)| u * nx + v * ny <= h)
        }
        _ => u.abs() <= size && v.abs() <= 0.28 * size,
    }
}

/// Renders one shape into `out` (SIDE*SIDE bytes, row-major).
fn render(class: usize, cx: f32, cy: f32, size: f32, angle: f32, out: &mut [f32]) {
    const SS: usize = 4;
    let (sin, cos) = angle.sin_cos();
    for py in 0..SIDE {
        for px in 0..SIDE {
            let mut hits = 0;
            for sy in 0..SS {
                for sx in 0..SS {
                    let x = px as f32 + (sx as f32 + 0.5) / SS as f32 - cx;
                    let y = py as f32 + (sy as f32 + 0.5) / SS as f32 - cy;
                    // Rotate the sample point into the shape's own frame.
                    let u = cos * x + sin * y;
                    let v = -sin * x + cos * y;
                    hits += usize::from(inside(class, u, v, size));
                }
            }
            out[py * SIDE + px] = (255.0 * hits as f32 / (SS * SS) as f32).round();
        }
    }
}

/// Generates `n` labelled images from `seed`; classes are balanced and shuffled.
pub fn generate(n: usize, seed: u64) -> Dataset {
    let mut rng = rng_for(seed, 7);
    let mut data = vec![0f32; n * SIDE * SIDE];
    let mut labels = Vec::with_capacity(n);
    for (i, img) in data.chunks_exact_mut(SIDE * SIDE).enumerate() {
        let class = (i + rng.random_range(0..CLASS_NAMES.len())) % CLASS_NAMES.len();
        let size: f32 = rng.random_range(SIZE);
        let centre = SIDE as f32 / 2.0;
        let cx = centre + rng.random_range(-SHIFT..SHIFT);
        let cy = centre + rng.random_range(-SHIFT..SHIFT);
        let angle = rng.random_range(-TILT..TILT);
        render(class, cx, cy, size, angle, img);
        labels.push(class as u32);
    }
    Dataset {
        x: Matrix {
            rows: n,
            cols: SIDE * SIDE,
            data,
        },
        labels: Some(labels),
        class_names: Some(CLASS_NAMES.iter().map(|s| s.to_string()).collect()),
        sample_shape: vec![1, SIDE, SIDE],
        value_kind: ValueKind::U8,
        origin: format!("shapes(n={n}, seed={seed})"),
    }
}
