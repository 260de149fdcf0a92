//! Matrix products on contiguous f32 slices through the `gemm` crate, and the conversions
//! between burn-flex tensors and slices, shared by this crate's CPU kernels.

use burn::tensor::TensorData;
use burn_flex::FlexTensor;
pub(super) use gemm::Parallelism;

/// A matrix given by its storage and its row and column strides.
#[derive(Clone, Copy)]
pub(super) struct MatRef<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    pub(super) fn rows(data: &'a [f32], cols: usize) -> Self {
        MatRef {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    pub(super) fn transposed(data: &'a [f32], rows: usize) -> Self {
        MatRef {
            data,
            row_stride: 1,
            col_stride: rows,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst` (row-major `m×n`) = `a·b` (`a` m×k, `b` k×n), added to `dst` with `accumulate`.
pub(super) fn matmul(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    a: MatRef,
    b: MatRef,
    accumulate: bool,
    parallelism: Parallelism,
) {
    assert!(dst.len() >= m * n, "matmul output out of bounds");
    // SAFETY: `dst` holds `m×n` values and is borrowed mutably, so it aliases neither operand.
    unsafe { gemm_into(dst.as_mut_ptr(), (m, n, k), a, b, accumulate, parallelism) }
}

/// `a·b` (`a` m×k, `b` k×n) in a new row-major `m×n` buffer that the product writes once:
/// zero-filling it first costs a pass over the output (1.3% of workload A's samples,
/// all on the thread that runs the graph).
pub(super) fn product(
    (m, n, k): (usize, usize, usize),
    a: MatRef,
    b: MatRef,
    parallelism: Parallelism,
) -> Vec<f32> {
    let mut dst = Vec::with_capacity(m * n);
    // SAFETY: the buffer has room for `m×n` values; without `accumulate` the product never
    // reads `dst` (gemm zeroes its weight on the old values) and writes every one of them,
    // also for `k = 0`, so all are initialised before the length is set.
    unsafe {
        gemm_into(dst.as_mut_ptr(), (m, n, k), a, b, false, parallelism);
        dst.set_len(m * n);
    }
    dst
}

/// # Safety
/// `dst` must be valid for writes (and for reads with `accumulate`) of `m×n` row-major values
/// and overlap neither operand.
unsafe fn gemm_into(
    dst: *mut f32,
    (m, n, k): (usize, usize, usize),
    a: MatRef,
    b: MatRef,
    accumulate: bool,
    parallelism: Parallelism,
) {
    assert!(
        a.fits(m, k) && b.fits(k, n),
        "matmul operands out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertion keeps every operand index inside its slice; the caller vouches
    // for `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

thread_local! {
    static PRODUCTS_ON_ONE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every product it makes on the calling thread alone: for callers that keep
/// every core busy with a share of the rows themselves, where splitting each product again
/// would only add hand-offs.
pub fn products_on_this_thread<R>(f: impl FnOnce() -> R) -> R {
    /// Puts the flag back however `f` ends: a pool thread outlives a panic unwinding through it.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PRODUCTS_ON_ONE_THREAD.set(self.0);
        }
    }
    let _restore = Restore(PRODUCTS_ON_ONE_THREAD.replace(true));
    f()
}

/// Parallelism for one product of this size: both cores from about 7 MFLOP (burn-flex's
/// threshold), one below, where splitting costs more than it gains.
pub(super) fn parallelism_for(m: usize, n: usize, k: usize) -> Parallelism {
    if !PRODUCTS_ON_ONE_THREAD.get() && m.saturating_mul(n).saturating_mul(k) >= 192 * 192 * 192 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// `t` where its f32 values are one contiguous slice, else a contiguous copy.
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The f32 values of a tensor made [`contiguous`].
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

pub(super) fn flex<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `product` writes every value of its fresh buffer: equal to a naive product for shapes that
    /// take gemm's different paths (vector-matrix, matrix-vector, empty inner dimension, blocked).
    #[test]
    fn product_matches_naive_product() {
        for (m, n, k) in [(1, 9, 5), (9, 1, 5), (4, 6, 0), (37, 29, 300), (3, 3, 1)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 4.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
                .collect();
            for transposed in [false, true] {
                let a_t: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
                let lhs = if transposed {
                    MatRef::transposed(&a_t, m)
                } else {
                    MatRef::rows(&a, k)
                };
                let got = product((m, n, k), lhs, MatRef::rows(&b, n), Parallelism::None);
                assert_eq!(got.len(), m * n);
                for i in 0..m {
                    for j in 0..n {
                        let want: f32 = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
                        let g = got[i * n + j];
                        assert!(
                            (g - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{m}x{n}x{k} [{i},{j}]: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
