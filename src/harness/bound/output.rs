//! δ^L = φ'_L(a^L) ∂E/∂y and the loss E with their bounds: (B4), (B5) and (B6) at k = L for the
//! squared losses, (B9), (B10) for the cross-entropy over softmax.

use super::forward::Forward;
use super::rounding::{gam, gamma, join, product_error};
use super::{Mode, ULPS, ULPS_TYPICAL};
use crate::kernels::matrix::Matrix;
use crate::model::spec::Loss;

/// (B4), (B5) for the squared losses: ∂E/∂y and E from d = y − ŷ, each d rounded once; with
/// (B6) at k = L, δ^L = φ'_L(a^L) ∂E/∂y. Returns δ^L, e(δ^L) and e(E).
pub(super) fn squared_output(
    mode: Mode,
    loss: Loss,
    out: &Forward,
    y: &Matrix<f64>,
    u: f64,
    tiny: f64,
) -> (Matrix<f64>, Matrix<f64>, f64) {
    let count = out.z.as_slice().len();
    let scale = match loss {
        Loss::Mse => 2.0 / count as f64,
        _ => 1.0,
    };
    let mut e_loss = 0.0;
    let mut sum_sq = 0.0;
    let (rows, cols) = out.z.shape();
    let mut delta = Matrix::zeros(rows, cols);
    let mut e_delta = Matrix::zeros(rows, cols);
    for q in 0..rows * cols {
        let (zv, ezv) = (out.z.as_slice()[q], out.ez.as_slice()[q]);
        let diff = zv - y.as_slice()[q];
        let e_diff = join(mode, ezv, u * diff.abs());
        sum_sq += diff * diff;
        e_loss += match mode {
            Mode::Worst => diff.abs() * e_diff,
            Mode::Rms => (diff * e_diff).powi(2),
        };
        // (B4): ∂E/∂y = d (or 2d/(N n_L)), and (B6) at k = L: δ^L = φ'_L(a^L) ∂E/∂y.
        let g = scale * diff;
        let eg = join(mode, scale * e_diff, 2.0 * u * g.abs());
        let (dv, edv) = (out.d.as_slice()[q], out.ed.as_slice()[q]);
        delta.as_mut_slice()[q] = dv * g;
        e_delta.as_mut_slice()[q] = product_error(mode, dv, edv, g, eg, u) + tiny;
    }
    // (B5): per-sample sums of squares, then the sum over samples (either order).
    if mode == Mode::Rms {
        e_loss = e_loss.sqrt();
        if !e_loss.is_finite() {
            // The squares overflowed: the worst case's sum instead.
            e_loss = (0..rows * cols)
                .map(|q| {
                    let diff = out.z.as_slice()[q] - y.as_slice()[q];
                    diff.abs() * (out.ez.as_slice()[q] + u * diff.abs())
                })
                .sum();
        }
    }
    let e_loss = match loss {
        Loss::Mse => scale * e_loss + gam(mode, count + 3, u) * sum_sq / count as f64,
        _ => e_loss + gam(mode, count + 3, u) * 0.5 * sum_sq,
    };
    (delta, e_delta, e_loss)
}

/// (B9), (B10) for the cross-entropy over the logits a = z^L (identity output): per sample, with
/// m = max_c a_c, s = Σ_c e^(a_c − m), p = softmax(a), t̃ = (1 − ε) t + ε/C and S = Σ_c t̃_c:
/// - (B9) δ^L_c = (S p_c − t̃_c)/N. A change of a moves p_c by p_c (da_c − Σ_j p_j da_j), so
///   e(p_c) ≤ p_c (e(a_c) + Σ_j p_j e(a_j)) plus its rounding: u|a_c − m| from the shift, ULPS
///   ulps of exp (and of the log that libtorch's log-softmax takes first), γ_C of the sum s;
///   e(δ_c) ≤ (p_c e(S) + S e(p_c) + e(t̃_c) + u S p_c + u |S p_c − t̃_c|)/N + u |δ_c|.
/// - (B10) E = −(1/N) Σ_n Σ_c t̃_nc ℓ_nc, ℓ = a − m − ln s: e(ℓ_c) ≤ e(a_c) + Σ_j p_j e(a_j) +
///   u (|a_c − m| + |ℓ_c|) + e(ln s), e(ln s) ≤ γ_C + ULPS·ε (1 + ln s); then the sum of N·C
///   terms, γ_{NC+2}.
pub(super) fn cross_entropy_output(
    mode: Mode,
    out: &Forward,
    y: &Matrix<f64>,
    smoothing: f64,
    u: f64,
    tiny: f64,
) -> (Matrix<f64>, Matrix<f64>, f64) {
    let (rows, c) = out.z.shape();
    let eps = 2.0 * u;
    let ulp_fn = match mode {
        Mode::Worst => ULPS,
        Mode::Rms => ULPS_TYPICAL,
    } * eps;
    let n = rows as f64;
    let g_c = gam(mode, c + 2, u);
    let normal = tiny / eps;
    let mut delta = Matrix::zeros(rows, c);
    let mut e_delta = Matrix::zeros(rows, c);
    let (mut e_loss, mut sum_abs) = (0.0, 0.0);
    for r in 0..rows {
        let a = out.z.row(r);
        let ea = out.ez.row(r);
        let t = y.row(r);
        let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = a.iter().map(|&v| (v - m).exp()).sum();
        let ln_s = s.ln();
        let p: Vec<f64> = a.iter().map(|&v| (v - m).exp() / s).collect();
        let pe: f64 = p.iter().zip(ea).map(|(p, e)| p * e).sum();
        let tt: Vec<f64> = t.iter().map(|&t| (1.0 - smoothing) * t + smoothing / c as f64).collect();
        let e_tt: Vec<f64> = t
            .iter()
            .map(|&t| {
                if smoothing == 0.0 {
                    0.0
                } else {
                    gamma(3, u) * ((1.0 - smoothing) * t.abs() + smoothing / c as f64)
                }
            })
            .collect();
        let s_t: f64 = tt.iter().sum();
        let e_s_t: f64 = e_tt.iter().sum::<f64>() + gam(mode, c, u) * tt.iter().map(|v| v.abs()).sum::<f64>();
        let e_ln_s = g_c + ulp_fn * (1.0 + ln_s);
        for j in 0..c {
            let shift = (a[j] - m).abs();
            let rel = u * shift + (ulp_fn + u) * (1.0 + ln_s) + g_c + ulp_fn + 2.0 * u;
            let e_p = p[j] * (ea[j] + pe + rel) + normal;
            let d = (s_t * p[j] - tt[j]) / n;
            delta[(r, j)] = d;
            e_delta[(r, j)] = (p[j] * e_s_t
                + s_t.abs() * e_p
                + e_tt[j]
                + u * (s_t * p[j]).abs()
                + u * (s_t * p[j] - tt[j]).abs())
                / n
                + u * d.abs()
                + tiny;
            let ell = a[j] - m - ln_s;
            let e_ell = ea[j] + pe + u * (shift + ell.abs()) + e_ln_s;
            let term = (tt[j].abs() * e_ell + e_tt[j] * ell.abs()) / n;
            e_loss += if mode == Mode::Rms { term * term } else { term };
            sum_abs += (tt[j] * ell).abs() / n;
        }
    }
    if mode == Mode::Rms {
        e_loss = e_loss.sqrt();
    }
    (delta, e_delta, e_loss + gam(mode, rows * c + 2, u) * sum_abs)
}
