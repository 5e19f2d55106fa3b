//! The row loops of a row-major matrix: the bias added to every row, eq. (1), and the column sums
//! of the bias gradient, eq. (6). Each is compiled per instruction set ([`multiversion!`]); neither
//! forms a fused multiply-add, so the bits do not depend on the level.
//!
//! [`multiversion!`]: crate::kernels::simd::multiversion

use crate::kernels::scalar::Scalar;
use crate::kernels::simd::multiversion;

multiversion! {
    /// Adds `b` to every row of `data` (rows of `b.len()` entries): the `1 (b^k)ᵀ` term of
    /// `A^k = Z^{k−1} W^k + 1 (b^k)ᵀ`, eq. (1) with a bias.
    #[inline]
    pub(crate) fn add_to_rows<T: Scalar>(data: &mut [T], b: &[T]) {
        for row in data.chunks_exact_mut(b.len().max(1)) {
            for (v, &c) in row.iter_mut().zip(b) {
                *v = *v + c;
            }
        }
    }
}

/// Sums `W` adjacent columns from column `j` on, in registers, row after row.
#[inline(always)]
fn sum_block<T: Scalar, const W: usize>(data: &[T], cols: usize, j: usize, out: &mut [T]) {
    let mut acc = [T::zero(); W];
    for row in data.chunks_exact(cols) {
        let part = &row[j..j + W];
        for l in 0..W {
            acc[l] = acc[l] + part[l];
        }
    }
    out[j..j + W].copy_from_slice(&acc);
}

multiversion! {
    /// The column sums `Σ_r M[r][j]` of `data` (rows of `out.len()` entries) into `out`:
    /// `∇b^k = (Δ^k)ᵀ 1`, eq. (6) for the bias. Each column is summed from the first row to the
    /// last, in blocks of 32, 8 and 1 columns held in registers.
    #[inline]
    pub(crate) fn column_sums<T: Scalar>(data: &[T], out: &mut [T]) {
        let cols = out.len();
        if cols == 0 {
            return;
        }
        let mut j = 0;
        while cols - j >= 32 {
            sum_block::<T, 32>(data, cols, j, out);
            j += 32;
        }
        while cols - j >= 8 {
            sum_block::<T, 8>(data, cols, j, out);
            j += 8;
        }
        while j < cols {
            sum_block::<T, 1>(data, cols, j, out);
            j += 1;
        }
    }
}
