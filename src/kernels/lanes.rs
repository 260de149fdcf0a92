//! Element-wise maps and sums eight f32 values at a time through `wide`'s vectors, whose `exp`,
//! `ln_1p` and `tanh` are polynomials the compiler keeps in vector registers.
//!
//! Why: the per-element `expf`, `log1pf` and `tanhf` calls of libm took 55% of an IWAE step
//! (k = 50) and 65% of an importance-sampled likelihood (BENCHMARKS.md). `wide` picks its
//! instructions when aekit is compiled (SSE2 in the portable build), never at run time, so a
//! binary computes the same bits on every x86-64 CPU.

use wide::f32x8;

pub(crate) const LANES: usize = 8;

/// Eight values from `values` (fewer at the end of a slice: the rest `pad`).
fn load(values: &[f32], pad: f32) -> f32x8 {
    let mut lanes = [pad; LANES];
    lanes[..values.len()].copy_from_slice(values);
    f32x8::new(lanes)
}

/// `out[i] = f(a[i])`.
pub(crate) fn map(a: &[f32], out: &mut [f32], f: impl Fn(f32x8) -> f32x8) {
    debug_assert_eq!(a.len(), out.len());
    for (a, out) in a.chunks(LANES).zip(out.chunks_mut(LANES)) {
        let n = out.len();
        out.copy_from_slice(&f(load(a, 0.0)).to_array()[..n]);
    }
}

/// `out[i] = f(a[i], b[i])`.
pub(crate) fn zip_map(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32x8, f32x8) -> f32x8) {
    debug_assert!(a.len() == out.len() && b.len() == out.len());
    let groups = a.chunks(LANES).zip(b.chunks(LANES));
    for ((a, b), out) in groups.zip(out.chunks_mut(LANES)) {
        let n = out.len();
        out.copy_from_slice(&f(load(a, 0.0), load(b, 0.0)).to_array()[..n]);
    }
}

/// `Σ f(a[i], b[i])`, summed in eight running lanes and then across them.
pub(crate) fn zip_sum(a: &[f32], b: &[f32], f: impl Fn(f32x8, f32x8) -> f32x8) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut sum = f32x8::ZERO;
    for (a, b) in a.chunks(LANES).zip(b.chunks(LANES)) {
        let mut value = f(load(a, 0.0), load(b, 0.0));
        if a.len() < LANES {
            // The padded lanes hold f(0, 0), which need not be 0.
            let mut lanes = value.to_array();
            lanes[a.len()..].fill(0.0);
            value = f32x8::new(lanes);
        }
        sum += value;
    }
    sum.reduce_add()
}

/// `f` at one value: lane 0 of `f` at eight copies.
#[cfg(test)]
pub(crate) fn at(f: impl Fn(f32x8) -> f32x8, x: f32) -> f32 {
    f(f32x8::splat(x)).to_array()[0]
}

/// The logistic function `1 / (1 + e^(−z))`; 0 and 1 in the far tails, never NaN.
pub(crate) fn sigmoid(z: f32x8) -> f32x8 {
    f32x8::ONE / (f32x8::ONE + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector functions against f64 references over the range training meets, and the
    /// padded tails of every helper.
    #[test]
    fn vector_functions_match_f64_references() {
        let mut worst = [0.0f64; 3];
        for i in -4000..=4000 {
            let x = i as f32 / 100.0;
            let xd = x as f64;
            let checks = [
                (at(sigmoid, x) as f64, 1.0 / (1.0 + (-xd).exp())),
                (at(|v| v.tanh(), x) as f64, xd.tanh()),
                (
                    at(|v| (-v.abs()).exp().ln_1p(), x) as f64,
                    (-xd.abs()).exp().ln_1p(),
                ),
            ];
            for (w, (got, want)) in worst.iter_mut().zip(checks) {
                *w = w.max((got - want).abs() / want.abs().max(1e-30));
            }
        }
        // A few f32 ulps (2^-23 ≈ 1.2e-7) relative.
        for (name, w) in ["sigmoid", "tanh", "log1p(exp(-|x|))"].iter().zip(worst) {
            assert!(w < 1e-6, "{name}: relative error {w:e}");
        }
        assert_eq!(at(sigmoid, -200.0), 0.0);
        assert_eq!(at(sigmoid, 200.0), 1.0);

        let a: Vec<f32> = (0..19).map(|i| i as f32 - 9.0).collect();
        let b: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let mut out = vec![f32::NAN; 19];
        map(&a, &mut out, |v| v * f32x8::splat(2.0));
        assert!(out.iter().zip(&a).all(|(o, a)| *o == 2.0 * a));
        zip_map(&a, &b, &mut out, |x, y| x + y + f32x8::ONE);
        assert!(
            out.iter()
                .zip(a.iter().zip(&b))
                .all(|(o, (a, b))| *o == a + b + 1.0)
        );
        let want: f32 = a.iter().zip(&b).map(|(a, b)| a * b + 1.0).sum();
        assert_eq!(zip_sum(&a, &b, |x, y| x * y + f32x8::ONE), want);
    }
}
