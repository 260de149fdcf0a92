//! Exploring a trained model's code space: blending two inputs in pixel space and in code
//! space, traversing one code dimension at a time, and decoding a grid over a 2-D code plane.

use crate::data::Matrix;
use crate::error::{Error, Result};
use crate::eval::pca::Pca;
use crate::model::Autoencoder;

/// `steps` evenly spaced values from 0 to 1 inclusive.
pub fn blend_weights(steps: usize) -> Vec<f32> {
    let steps = steps.max(2);
    (0..steps).map(|i| i as f32 / (steps - 1) as f32).collect()
}

/// Spherical interpolation between `a` and `b` (linear when they are parallel), as used for
/// Gaussian latents where the straight line passes through improbable, short codes.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum();
    let na = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let cos = if na > 0.0 && nb > 0.0 {
        (dot / (na * nb)).clamp(-1.0, 1.0)
    } else {
        1.0
    };
    let omega = cos.acos();
    let t = t as f64;
    let (wa, wb) = if omega.sin().abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * omega).sin() / omega.sin(),
            (t * omega).sin() / omega.sin(),
        )
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32)
        .collect()
}

/// Blends of two inputs for each weight `t`: `pixel` holds `(1−t)·a + t·b`, `latent` holds
/// `decode((1−t)·h_a + t·h_b)` (or the spherical path between the codes).
#[derive(Debug, Clone)]
pub struct Blend {
    pub weights: Vec<f32>,
    pub pixel: Matrix,
    pub latent: Matrix,
}

pub fn blend(
    model: &Autoencoder,
    a: &[f32],
    b: &[f32],
    steps: usize,
    spherical: bool,
) -> Result<Blend> {
    if a.len() != b.len() {
        return Err(Error::mismatch("the two inputs to blend differ in size"));
    }
    let weights = blend_weights(steps);
    let codes = model.encode(&Matrix::new(2, a.len(), [a, b].concat())?)?;
    let latent = model.decode(&blend_codes(
        codes.row(0),
        codes.row(1),
        &weights,
        spherical,
    )?)?;
    Ok(Blend {
        pixel: pixel_blend(a, b, &weights)?,
        latent,
        weights,
    })
}

fn lerp(x: &[f32], y: &[f32], t: f32) -> Vec<f32> {
    x.iter()
        .zip(y)
        .map(|(p, q)| (1.0 - t) * p + t * q)
        .collect()
}

/// `(1−t)·a + t·b` for each weight `t`, one row each.
pub fn pixel_blend(a: &[f32], b: &[f32], weights: &[f32]) -> Result<Matrix> {
    let rows: Vec<f32> = weights.iter().flat_map(|&t| lerp(a, b, t)).collect();
    Matrix::new(weights.len(), a.len(), rows)
}

/// The codes on the path from `ha` to `hb` at each weight: straight, or spherical.
pub fn blend_codes(ha: &[f32], hb: &[f32], weights: &[f32], spherical: bool) -> Result<Matrix> {
    if ha.len() != hb.len() {
        return Err(Error::mismatch("the two codes to blend differ in size"));
    }
    let codes: Vec<f32> = weights
        .iter()
        .flat_map(|&t| {
            if spherical {
                slerp(ha, hb, t)
            } else {
                lerp(ha, hb, t)
            }
        })
        .collect();
    Matrix::new(weights.len(), ha.len(), codes)
}

/// The lecture's deltas for latent traversals.
pub const DEFAULT_DELTAS: [f32; 7] = [-100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0];
/// Code dimensions a traversal shows when none are named, from the first: the figure, the
/// server's `traverse` and Python's `Run.traverse` alike.
pub const DEFAULT_TRAVERSE_DIMS: usize = 8;

/// Decodes the code of `x` with dimension `d` shifted by each delta, for each `d` in `dims`:
/// row `i * deltas.len() + j` is dimension `dims[i]` shifted by `deltas[j]`.
pub fn traverse(model: &Autoencoder, x: &[f32], dims: &[usize], deltas: &[f32]) -> Result<Matrix> {
    let code = model.encode(&Matrix::new(1, x.len(), x.to_vec())?)?;
    model.decode(&traverse_codes(&code.data, dims, deltas)?)
}

/// The codes [`traverse`] decodes: `code` with dimension `dims[i]` shifted by `deltas[j]` in row
/// `i * deltas.len() + j`.
pub fn traverse_codes(code: &[f32], dims: &[usize], deltas: &[f32]) -> Result<Matrix> {
    if let Some(d) = deltas.iter().find(|d| !d.is_finite()) {
        return Err(Error::invalid(format!(
            "--deltas must be finite numbers, got {d}"
        )));
    }
    if let Some(&d) = dims.iter().find(|&&d| d >= code.len()) {
        return Err(Error::invalid(format!(
            "code dimension {d} does not exist: the code has {} dimensions",
            code.len()
        )));
    }
    let mut codes = Vec::with_capacity(dims.len() * deltas.len() * code.len());
    for &d in dims {
        for &delta in deltas {
            let mut z = code.to_vec();
            z[d] += delta;
            codes.extend(z);
        }
    }
    Matrix::new(dims.len() * deltas.len(), code.len(), codes)
}

/// Φ⁻¹(p) for 0 < p < 1 (Acklam's rational approximation, relative error below 1.2e-9).
// The coefficients are quoted as published.
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549671010739319,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A grid of decoded images over a plane of the code space. Image `r * n + c` is decoded from
/// `codes` row `r * n + c`, which lies at `(xs[c], ys[r])` on the plane; `ys` decreases down
/// the rows so the grid has the orientation of a scatter plot.
#[derive(Debug, Clone)]
pub struct Manifold {
    pub n: usize,
    pub xs: Vec<f32>,
    pub ys: Vec<f32>,
    pub codes: Matrix,
    pub images: Matrix,
    /// What the axes are, for titles.
    pub axes: String,
}

/// Maps a point of the 2-D plane to a code.
type PlaneToCode = Box<dyn Fn(f32, f32) -> Vec<f32>>;

/// `q`-quantile of `v` (sorted copy, nearest rank).
fn quantile(v: &[f32], q: f64) -> f32 {
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// Decodes an `n x n` grid over the code space. A 2-D VAE spans its prior's 5%–95% quantiles
/// (as the Keras VAE example); another 2-D code spans the 2nd–98th percentiles of `codes` (the
/// codes of real data); a wider code spans the plane of the first two principal components of
/// `codes` through their mean.
/// Whether [`manifold`] spans its plane from the codes of data: all but a 2-D code with a
/// prior, whose grid lies at the prior's quantiles.
pub fn manifold_needs_codes(model: &Autoencoder) -> bool {
    !(model.latent_dim() == 2 && model.capabilities().prior)
}

pub fn manifold(model: &Autoencoder, codes: &Matrix, n: usize) -> Result<Manifold> {
    let n = n.max(2);
    crate::model::fits_in_memory(
        n.saturating_mul(n),
        model.input_dim(),
        "grid cells (--grid)",
    )?;
    let latent = model.latent_dim();
    let spaced = |lo: f32, hi: f32| -> Vec<f32> {
        (0..n)
            .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
            .collect()
    };
    let (xs, ys, axes, to_code): (Vec<f32>, Vec<f32>, String, PlaneToCode) =
        if !manifold_needs_codes(model) {
            let q: Vec<f32> = spaced(0.05, 0.95)
                .iter()
                .map(|&p| normal_quantile(p as f64) as f32)
                .collect();
            let mut ys = q.clone();
            ys.reverse();
            (
                q,
                ys,
                "z1, z2 at the prior's 5%-95% quantiles".into(),
                Box::new(|x, y| vec![x, y]),
            )
        } else {
            if codes.rows < 2 {
                return Err(Error::invalid(
                    "a manifold grid needs the codes of at least 2 samples",
                ));
            }
            let plane = if latent == 2 {
                codes.clone()
            } else if latent > 2 {
                Pca::fit(codes, 2)?.transform(codes)?
            } else {
                return Err(Error::invalid(
                    "a manifold grid needs a code of at least 2 dimensions",
                ));
            };
            let col = |j: usize| -> Vec<f32> { (0..plane.rows).map(|i| plane.row(i)[j]).collect() };
            let (c0, c1) = (col(0), col(1));
            let xs = spaced(quantile(&c0, 0.02), quantile(&c0, 0.98));
            let mut ys = spaced(quantile(&c1, 0.02), quantile(&c1, 0.98));
            ys.reverse();
            if latent == 2 {
                (
                    xs,
                    ys,
                    "code 1, code 2 over the 2nd-98th percentiles of the data's codes".into(),
                    Box::new(|x, y| vec![x, y]),
                )
            } else {
                let pca = Pca::fit(codes, 2)?;
                (
                    xs,
                    ys,
                    format!(
                        "principal components 1 and 2 of the {latent}-d code ({:.0}% of its variance)",
                        100.0 * (pca.explained_variance_ratio[0] + pca.explained_variance_ratio[1])
                    ),
                    Box::new(move |x, y| {
                        pca.inverse_transform(&Matrix::new(1, 2, vec![x, y]).expect("1x2"))
                            .expect("2 coordinates")
                            .data
                    }),
                )
            }
        };
    let grid: Vec<f32> = ys
        .iter()
        .flat_map(|&y| xs.iter().flat_map(|&x| to_code(x, y)).collect::<Vec<_>>())
        .collect();
    let grid = Matrix::new(n * n, latent, grid)?;
    let images = model.decode(&grid)?;
    Ok(Manifold {
        n,
        xs,
        ys,
        codes: grid,
        images,
        axes,
    })
}
