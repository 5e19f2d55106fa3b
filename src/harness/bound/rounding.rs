//! The arithmetic of error bounds, in either [`Mode`]: γ_n of a sum (worst-case, or Higham and
//! Mary's probabilistic √n·u), two independent errors joined (summed, or in quadrature), the error
//! a value's rounding adds, and an error carried through a product or a batch sum.

use super::Mode;
use crate::kernels::gemm::{gemm, Op};
use crate::kernels::matrix::Matrix;

/// γ_n = n·u / (1 − n·u): the relative error bound of a sum or dot product of n terms in any
/// order (Higham, Lemma 3.1).
pub(super) fn gamma(n: usize, u: f64) -> f64 {
    let nu = n as f64 * u;
    if nu < 1.0 {
        nu / (1.0 - nu)
    } else {
        f64::INFINITY
    }
}

pub(super) fn abs(m: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(m.rows(), m.cols(), m.as_slice().iter().map(|v| v.abs()).collect())
}

/// `e + g·|v|`, entrywise: an error bound plus the rounding of a sum that uses the value.
pub(super) fn plus_scaled(e: &Matrix<f64>, g: f64, v: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(
        e.rows(),
        e.cols(),
        e.as_slice().iter().zip(v.as_slice()).map(|(e, v)| e + g * v.abs()).collect(),
    )
}

/// Two independent error terms together: their sum (Worst) or √(a² + b²) (Rms, (S1)).
#[inline(always)]
pub(super) fn join(mode: Mode, a: f64, b: f64) -> f64 {
    match mode {
        Mode::Worst => a + b,
        Mode::Rms => quadrature(a, b),
    }
}

/// √(a² + b²): squared and summed where neither square can overflow or lose digits to
/// underflow (within 1.5 ulps, as σ needs a digit, not the last one), and by the C library's
/// `hypot` (scaled, within 1 ulp; ∞ and NaN as IEEE says) elsewhere, a call that costs several
/// times the two multiplications and the root.
#[inline(always)]
pub(super) fn quadrature(a: f64, b: f64) -> f64 {
    let (a, b) = (a.abs(), b.abs());
    let m = a.max(b);
    if (1e-150..=1e150).contains(&m) {
        (a * a + b * b).sqrt()
    } else if m == 0.0 {
        0.0
    } else {
        a.hypot(b)
    }
}

/// The error of a product p·q rounded once, (B6): |p| e(q) and |q| e(p) joined, its rounding u|pq|,
/// and the second-order e(p)·e(q) added whole (where both values round to zero, a saturated unit
/// under a vanishing δ, it is all there is).
#[inline(always)]
pub(super) fn product_error(mode: Mode, p: f64, ep: f64, q: f64, eq: f64, u: f64) -> f64 {
    join(mode, join(mode, p.abs() * eq, q.abs() * ep), u * (p * q).abs()) + ep * eq
}

/// [`plus_scaled`] by mode: `e + g·|v|` (Worst) or √(e² + (g·v)²) (Rms), entrywise.
pub(super) fn plus_rounding(mode: Mode, e: &Matrix<f64>, g: f64, v: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(
        e.rows(),
        e.cols(),
        e.as_slice().iter().zip(v.as_slice()).map(|(e, v)| join(mode, *e, g * v.abs())).collect(),
    )
}

/// C = op(A)·op(B) into a fresh matrix.
pub(super) fn product(a: &Matrix<f64>, op_a: Op, b: &Matrix<f64>, op_b: Op) -> Matrix<f64> {
    let m = if op_a == Op::N { a.rows() } else { a.cols() };
    let n = if op_b == Op::N { b.cols() } else { b.rows() };
    let mut c = Matrix::zeros(m, n);
    gemm(1.0, a, op_a, b, op_b, 0.0, &mut c);
    c
}

/// γ_n of a sum of n terms, worst-case or probabilistic.
pub(super) fn gam(mode: Mode, n: usize, u: f64) -> f64 {
    match mode {
        Mode::Worst => gamma(n, u),
        Mode::Rms => (n as f64).sqrt() * u,
    }
}

/// The typical rounding of a dot product's or a batch sum's n terms (S2): each of its n roundings
/// is at most u times a partial sum and, spread evenly, has a standard deviation u/√3, so the sum's
/// error has a standard deviation of u/√3 · √(Σ_k S_k²) ≤ u√(n/3) (‖terms‖₂ + |S|/√3) (partial
/// sums S_k drift as (k/n) S plus a random walk of the terms).
pub(super) fn gam_dot(mode: Mode, n: usize, u: f64) -> f64 {
    match mode {
        Mode::Worst => gamma(n, u),
        Mode::Rms => (n as f64 / 3.0).sqrt() * u,
    }
}

/// (S2) in `Mode::Rms`: a recursive sum's partial sums carry its value too, so each entry's error
/// `e` grows by g·|S|/√3 for the sum's value S (g = [`gam_dot`]); nothing in `Mode::Worst`, whose
/// γ_n already bounds every partial sum by the terms.
pub(super) fn plus_value(mode: Mode, e: &mut [f64], g: f64, values: &[f64]) {
    if mode == Mode::Rms {
        let g = g / 3f64.sqrt();
        for (e, v) in e.iter_mut().zip(values) {
            *e = join(mode, *e, g * v.abs());
        }
    }
}

/// An error carried through a product of two nonnegative factors: A·B (Worst) or √((A∘A)·(B∘B))
/// (Rms), each factor transposed as `op` says.
pub(super) fn carry(mode: Mode, a: &Matrix<f64>, op_a: Op, b: &Matrix<f64>, op_b: Op) -> Matrix<f64> {
    match mode {
        Mode::Worst => product(a, op_a, b, op_b),
        Mode::Rms => {
            let mut c = product(&squares(a), op_a, &squares(b), op_b);
            c.as_mut_slice().iter_mut().for_each(|v| *v = v.sqrt());
            c
        }
    }
}

pub(super) fn squares(m: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(m.rows(), m.cols(), m.as_slice().iter().map(|v| v * v).collect())
}

/// The column sums of errors: Σ_n e (Worst) or √(Σ_n e²) (Rms).
pub(super) fn carry_sums(mode: Mode, e: &Matrix<f64>, out: &mut [f64]) {
    match mode {
        Mode::Worst => e.column_sums(out),
        Mode::Rms => {
            squares(e).column_sums(out);
            out.iter_mut().for_each(|v| *v = v.sqrt());
        }
    }
}
