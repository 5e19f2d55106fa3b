//! The products too small for the GEMM crate's set-up or the register tiles (see
//! [`SMALL_GEMM`](crate::kernels::gemm::SMALL_GEMM)): plain loops with every sum in registers,
//! compiled per instruction set ([`multiversion!`]). Each entry of C is its own chain of fused
//! multiply-adds in a fixed order, so the bits do not depend on the level.
//!
//! [`multiversion!`]: crate::kernels::simd::multiversion

use crate::kernels::scalar::Scalar;
use crate::kernels::simd::multiversion;

multiversion! {
    /// `C = A·B` (`m × n`, row-major, overwritten) for small operands, read through their strides
    /// (entry (i, p) of A at `a[i·rsa + p·csa]`, (p, j) of B at `b[p·rsb + j·csb]`; the caller
    /// checks that B's rows or B's columns and A's rows are contiguous). Every sum runs over p in
    /// registers: where B's rows are contiguous, blocks of C's columns accumulate A[i][p]·B[p][·]
    /// (the forward product and ∇W); otherwise each entry is a dot product in eight lanes (Δ Wᵀ).
    /// A one-column C is a one-row C in the same memory, so it takes whichever form reads its
    /// operands with unit stride.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn small_product<T: Scalar>(
        m: usize,
        n: usize,
        k: usize,
        a: &[T],
        rsa: isize,
        csa: isize,
        b: &[T],
        rsb: isize,
        csb: isize,
        c: &mut [T],
    ) {
        let (rsa, csa, rsb, csb) = (rsa as usize, csa as usize, rsb as usize, csb as usize);
        if n == 0 || m == 0 {
            return;
        }
        if k == 0 {
            c[..m * n].fill(T::zero());
        } else if n == 1 && csa == 1 {
            dots(m, n, k, a, rsa, b, csb, c);
        } else if n == 1 && rsa == 1 {
            // C (m × 1) = A·b read as Cᵀ (1 × m) = bᵀ·Aᵀ: Aᵀ's rows are A's contiguous columns.
            rows_of(1, m, k, b, csb, rsb, a, csa, c);
        } else if csb == 1 {
            rows_of(m, n, k, a, rsa, csa, b, rsb, c);
        } else {
            dots(m, n, k, a, rsa, b, csb, c);
        }
    }
}

/// C[i][j..j+W] = Σ_p A[i][p]·B[p][j..j+W] for R rows i at once, the R·W sums in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<T: Scalar, const R: usize, const W: usize, const S: usize>(
    i: usize,
    j: usize,
    n: usize,
    k: usize,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    c: &mut [T],
) {
    // S partial sums over interleaved p, so that few rows still keep the FMA units busy
    // (one chain of dependent FMAs waits out each one's latency).
    let mut acc = [[[T::zero(); W]; R]; S];
    let full = k - k % S;
    let mut p = 0;
    while p < full {
        for (s, acc) in acc.iter_mut().enumerate() {
            let q = p + s;
            let bp: &[T; W] = b[q * rsb + j..q * rsb + j + W].try_into().expect("W entries");
            for r in 0..R {
                let aiq = a[(i + r) * rsa + q * csa];
                for l in 0..W {
                    acc[r][l] = aiq.mul_add(bp[l], acc[r][l]);
                }
            }
        }
        p += S;
    }
    for q in full..k {
        let bp: &[T; W] = b[q * rsb + j..q * rsb + j + W].try_into().expect("W entries");
        for r in 0..R {
            let aiq = a[(i + r) * rsa + q * csa];
            for l in 0..W {
                acc[0][r][l] = aiq.mul_add(bp[l], acc[0][r][l]);
            }
        }
    }
    for r in 0..R {
        let row = &mut c[(i + r) * n + j..(i + r) * n + j + W];
        for l in 0..W {
            let mut v = acc[0][r][l];
            for part in &acc[1..] {
                v = v + part[r][l];
            }
            row[l] = v;
        }
    }
}

/// The row form: B's rows contiguous (csb = 1), C's columns in blocks of 16, 8 and 1, its
/// rows four at a time, then two with two partial sums, then one with four (a 2 × 32 ∇W of
/// a two-input layer is a product of this shape).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_of<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    c: &mut [T],
) {
    macro_rules! columns {
        ($rows:literal, $sums:literal, $i:expr) => {{
            let mut j = 0;
            while n - j >= 16 {
                block::<T, $rows, 16, $sums>($i, j, n, k, a, rsa, csa, b, rsb, c);
                j += 16;
            }
            while n - j >= 8 {
                block::<T, $rows, 8, $sums>($i, j, n, k, a, rsa, csa, b, rsb, c);
                j += 8;
            }
            while j < n {
                block::<T, $rows, 1, 4>($i, j, n, k, a, rsa, csa, b, rsb, c);
                j += 1;
            }
        }};
    }
    let mut i = 0;
    while m - i >= 4 {
        columns!(4, 1, i);
        i += 4;
    }
    if m - i >= 2 {
        columns!(2, 2, i);
        i += 2;
    }
    if i < m {
        columns!(1, 4, i);
    }
}

/// The dot form: A's rows and B's columns contiguous, each entry a sum in eight lanes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dots<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], rsa: usize, b: &[T], csb: usize, c: &mut [T]) {
    const LANES: usize = 8;
    let body = k - k % LANES;
    for i in 0..m {
        let a_row = &a[i * rsa..i * rsa + k];
        for j in 0..n {
            let b_col = &b[j * csb..j * csb + k];
            let mut acc = [T::zero(); LANES];
            for (ac, bc) in a_row[..body].chunks_exact(LANES).zip(b_col[..body].chunks_exact(LANES)) {
                for l in 0..LANES {
                    acc[l] = ac[l].mul_add(bc[l], acc[l]);
                }
            }
            let mut sum = acc.iter().fold(T::zero(), |s, &v| s + v);
            for (&x, &y) in a_row[body..].iter().zip(&b_col[body..]) {
                sum = x.mul_add(y, sum);
            }
            c[i * n + j] = sum;
        }
    }
}
