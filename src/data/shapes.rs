//! The built-in `shapes` dataset: 28x28 grayscale images of a square, a ring, a
//! triangle or a bar, a little shifted, scaled and tilted at random, drawn with 4x4
//! supersampling for smooth edges.
//! Generated from a seed, so the main job needs no download and every machine sees the same data.
//!
//! `shapes-grid` is the disentanglement benchmark's variant, after dSprites: its factors
//! (shape, scale, rotation, x, y) vary widely and take values on a grid, each drawn uniformly
//! and independently, and [`factors`] gives every image's true factors.

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

/// The factors of variation of the images, in the order of [`factors`]' columns.
pub const FACTOR_NAMES: [&str; 5] = ["shape", "scale", "rotation", "x", "y"];
/// Which factors are classes rather than quantities.
pub const FACTOR_IS_CATEGORICAL: [bool; 5] = [true, false, false, false, false];

/// The grid of `shapes-grid`: values per factor after the shape (radius in pixels, angle in
/// radians, centre offsets in pixels).
const GRID_SCALES: [f32; 6] = [4.0, 4.6, 5.2, 5.8, 6.4, 7.0];
const GRID_ANGLES: usize = 8;
const GRID_MAX_ANGLE: f32 = std::f32::consts::FRAC_PI_4;
const GRID_POSITIONS: usize = 8;
const GRID_MAX_SHIFT: f32 = 5.0;

/// One image's factors.
#[derive(Debug, Clone, Copy)]
struct Factors {
    class: usize,
    size: f32,
    angle: f32,
    cx: f32,
    cy: f32,
}

/// The factors of `n` images from `seed`, drawn as [`generate`] (or, with `grid`,
/// [`generate_grid`]) draws them.
fn draw(n: usize, seed: u64, grid: bool) -> Vec<Factors> {
    let mut rng = rng_for(seed, if grid { 8 } else { 7 });
    let centre = SIDE as f32 / 2.0;
    let on_grid =
        |i: usize, count: usize, half: f32| -half + 2.0 * half * i as f32 / (count - 1) as f32;
    (0..n)
        .map(|i| {
            if grid {
                let class = rng.random_range(0..CLASS_NAMES.len());
                let size = GRID_SCALES[rng.random_range(0..GRID_SCALES.len())];
                let angle = on_grid(
                    rng.random_range(0..GRID_ANGLES),
                    GRID_ANGLES,
                    GRID_MAX_ANGLE,
                );
                let cx = centre
                    + on_grid(
                        rng.random_range(0..GRID_POSITIONS),
                        GRID_POSITIONS,
                        GRID_MAX_SHIFT,
                    );
                let cy = centre
                    + on_grid(
                        rng.random_range(0..GRID_POSITIONS),
                        GRID_POSITIONS,
                        GRID_MAX_SHIFT,
                    );
                return Factors {
                    class,
                    size,
                    angle,
                    cx,
                    cy,
                };
            }
            let class = (i + rng.random_range(0..CLASS_NAMES.len())) % CLASS_NAMES.len();
            let size: f32 = rng.random_range(SIZE);
            let cx = centre + rng.random_range(-SHIFT..SHIFT);
            let cy = centre + rng.random_range(-SHIFT..SHIFT);
            let angle = rng.random_range(-TILT..TILT);
            Factors {
                class,
                size,
                angle,
                cx,
                cy,
            }
        })
        .collect()
}

/// The true factors of the `n` images [`generate`] (or, with `grid`, [`generate_grid`])
/// makes from `seed`: one row per image, columns as [`FACTOR_NAMES`] (the shape's class
/// index, radius, angle, and the centre's x and y, in pixels).
pub fn factors(n: usize, seed: u64, grid: bool) -> Matrix {
    let data = draw(n, seed, grid)
        .iter()
        .flat_map(|f| [f.class as f32, f.size, f.angle, f.cx, f.cy])
        .collect();
    Matrix {
        rows: n,
        cols: FACTOR_NAMES.len(),
        data,
    }
}

/// Generates `n` labelled images from `seed`; classes are balanced and shuffled.
pub fn generate(n: usize, seed: u64) -> Dataset {
    render_all(&draw(n, seed, false), format!("shapes(n={n}, seed={seed})"))
}

/// Generates `n` images of `shapes-grid` from `seed`: every factor drawn uniformly from its
/// grid, independently, over wide ranges (the disentanglement benchmark's data).
pub fn generate_grid(n: usize, seed: u64) -> Dataset {
    render_all(
        &draw(n, seed, true),
        format!("shapes-grid(n={n}, seed={seed})"),
    )
}

fn render_all(factors: &[Factors], origin: String) -> Dataset {
    let n = factors.len();
    let mut data = vec![0f32; n * SIDE * SIDE];
    for (f, img) in factors.iter().zip(data.chunks_exact_mut(SIDE * SIDE)) {
        render(f.class, f.cx, f.cy, f.size, f.angle, img);
    }
    Dataset {
        x: Matrix {
            rows: n,
            cols: SIDE * SIDE,
            data,
        },
        labels: Some(factors.iter().map(|f| f.class as u32).collect()),
        class_names: Some(CLASS_NAMES.iter().map(|s| s.to_string()).collect()),
        sample_shape: vec![1, SIDE, SIDE],
        value_kind: ValueKind::U8,
        origin,
    }
}
