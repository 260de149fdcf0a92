//! The built-in `shapes` dataset: 28x28 grayscale images of a square, a circle, a triangle or a
//! bar at a random position, size and rotation, drawn with 4x4 supersampling for smooth edges.
//! Generated from a seed, so the main job needs no download and every machine sees the same data.

use rand::Rng;

use crate::data::batch::rng_for;
use crate::data::{Dataset, Matrix, ValueKind};

pub const SIDE: usize = 28;
pub const CLASS_NAMES: [&str; 4] = ["square", "circle", "triangle", "bar"];

fn inside(class: usize, u: f32, v: f32, size: f32) -> bool {
    match class {
        0 => u.abs() <= 0.8 * size && v.abs() <= 0.8 * size,
        1 => u * u + v * v <= size * size,
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
        let size: f32 = rng.random_range(5.0..9.5);
        let margin = size * 0.9;
        let cx = rng.random_range(margin..(SIDE as f32 - margin));
        let cy = rng.random_range(margin..(SIDE as f32 - margin));
        let angle = rng.random_range(0.0..std::f32::consts::TAU);
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
