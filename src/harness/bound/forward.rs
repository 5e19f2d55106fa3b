//! One layer's forward quantities and their bounds: a^k and e(a^k) from the layer below (B1),
//! z^k = φ(a^k) and φ'(a^k) with e(z) (B2) and e(φ') (B3), entry by entry in vectorised loops,
//! the entries near a kink of φ measured instead.

use super::common_mode::{common_of, plus_common};
use super::rounding::{carry, gam_dot, plus_rounding, plus_value};
use super::{Mode, ULPS, ULPS_TYPICAL};
use crate::kernels::gemm::{gemm, Op};
use crate::kernels::matrix::Matrix;
use crate::model::activation::Activation;
use crate::model::params::Layer;

/// One layer's forward quantities and their bounds, f64.
pub(super) struct Forward {
    /// Z^k and e(Z^k) (B2).
    pub(super) z: Matrix<f64>,
    pub(super) ez: Matrix<f64>,
    /// φ'_k(A^k) and e(φ'_k) (B3).
    pub(super) d: Matrix<f64>,
    pub(super) ed: Matrix<f64>,
    /// `Mode::Rms`: the common-mode share of e(A^k), entrywise in [0, 1] (S1″); e(Z^k) and e(φ'_k)
    /// come from e(A^k), and take its share.
    pub(super) share: Matrix<f64>,
}

impl Forward {
    /// The common-mode part of e(Z^k), entrywise (S1″).
    pub(super) fn cz(&self) -> Matrix<f64> {
        let v = self.ez.as_slice().iter().zip(self.share.as_slice()).map(|(e, s)| e * s).collect();
        Matrix::from_vec(self.ez.rows(), self.ez.cols(), v)
    }
}

/// The largest |f(a ± e) − f(a)|: what an error e in a may do to f, kinks and curvature included.
fn spread(f: impl Fn(f64) -> f64, a: f64, e: f64) -> f64 {
    let f0 = f(a);
    let d = (f(a - e) - f0).abs().max((f(a + e) - f0).abs());
    if d.is_nan() {
        0.0
    } else {
        d
    }
}

/// Whether a's error may carry it past a kink of φ, or is too large for the Taylor terms: there
/// the change is measured, φ(a ± e(a)) − φ(a), instead.
#[inline(always)]
pub(super) fn near_kink(phi: Activation, av: f64, e: f64) -> bool {
    phi.kink().is_some_and(|k| (av - k).abs() <= e) || e > 1e-3 * (1.0 + av.abs())
}

/// (B2) and (B3) of one entry: e(z) and e(φ'), from a, e(a), z = φ(a), d = φ'(a).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn element_bounds(
    phi: Activation,
    av: f64,
    e: f64,
    zv: f64,
    dv: f64,
    eps: f64,
    normal: f64,
    near: bool,
) -> (f64, f64) {
    let curvature = phi.second_derivative(av, zv).abs();
    // Near a kink the two sides may take different branches, and a large e(a) reaches past
    // what the Taylor terms describe: there the change is measured, φ(a ± e(a)) − φ(a).
    // (B2): e(z) ≤ |φ'(a)| e(a) + ½|φ''(a)| e(a)² (or, at a kink, |φ(a ± e(a)) − φ(a)|)
    // + ULPS ulps of the terms φ rounds.
    let mut carried_z = dv.abs() * e + 0.5 * curvature * e * e;
    if near {
        carried_z = carried_z.max(spread(|a| phi.apply(a), av, e));
    }
    let ezv = carried_z + ULPS * eps * phi.value_scale(av, zv) + normal;
    // (B3): φ' from z (sigmoid, tanh) carries e(z); from a, e(a); plus its own rounding.
    let carried = if phi.derivative_from_value() {
        match phi {
            Activation::Tanh => 2.0 * zv.abs() * ezv,
            _ => (1.0 - 2.0 * zv).abs() * ezv,
        }
    } else if near {
        (curvature * e).max(spread(|a| phi.derivative(a, phi.apply(a)), av, e))
    } else {
        curvature * e
    };
    (ezv, carried + ULPS * eps * phi.derivative_scale(av, zv, dv) + normal)
}

/// [`element_bounds`] of every entry of a layer, each with its own `near`: the smooth form in
/// vectorised loops, then the entries near a kink again.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_bounds(
    phi: Activation,
    a: &[f64],
    ea: &[f64],
    z: &[f64],
    d: &[f64],
    ez: &mut [f64],
    ed: &mut [f64],
    eps: f64,
    normal: f64,
) {
    let n = ez.len();
    let (a, ea, z, d, ed) = (&a[..n], &ea[..n], &z[..n], &d[..n], &mut ed[..n]);
    // Every entry as if no kink were near: one straight loop per φ, compiled for the widest SIMD
    // the CPU has. No fused multiply-adds are formed, so every instruction set gives the same
    // bits.
    crate::kernels::simd::dispatch(
        #[inline(always)]
        || {
            macro_rules! fixed {
                ($($phi:ident),*) => {
                    match phi {
                        $(Activation::$phi => {
                            for p in 0..n {
                                (ez[p], ed[p]) =
                                    element_bounds(Activation::$phi, a[p], ea[p], z[p], d[p], eps, normal, false);
                            }
                        })*
                    }
                };
            }
            fixed!(Identity, Sigmoid, Tanh, Relu, LeakyRelu, Elu, Softplus, Gelu, Silu);
        },
    );
    // Then the few entries near a kink (or with a large e(a)) again, with the measured spread
    // (counted first: a count vectorises, a search for the first does not).
    if a.iter().zip(ea).filter(|&(&av, &e)| near_kink(phi, av, e)).count() > 0 {
        for p in 0..n {
            if near_kink(phi, a[p], ea[p]) {
                (ez[p], ed[p]) = element_bounds(phi, a[p], ea[p], z[p], d[p], eps, normal, true);
            }
        }
    }
}

/// Layer k's forward quantities and their bounds from the layer below's z^{k−1}, its error and its
/// common part (`cz_prev`): a^k and e(a^k) (B1), with the common parts of (S1′), (S1″) and the
/// (S5) tangents' `floor` in `Mode::Rms`; then z^k, φ'_k and their errors, (B2), (B3).
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_layer(
    mode: Mode,
    phi: Activation,
    z_prev: &Matrix<f64>,
    ez_prev: &Matrix<f64>,
    cz_prev: &Matrix<f64>,
    layer: &Layer<f64>,
    abs_w: &Matrix<f64>,
    kappa: f64,
    floor: Option<&Matrix<f64>>,
    u: f64,
    tiny: f64,
) -> Forward {
    let eps = 2.0 * u;
    // Below the smallest normal number an exp-based φ or φ' keeps no relative accuracy: libraries
    // flush such results to zero or round them on a coarser grid. Its absolute error is this.
    let normal = tiny / eps;
    let n_in = z_prev.cols() + usize::from(layer.b.is_some());
    let g = gam_dot(mode, n_in, u);
    // (B1): a^k_j = Σ_i W_ij z^{k−1}_i + b_j, eq. (2): e(a) ≤ Σ_i |W_ij| (e(z_i) + γ_n |z_i|) + γ_n |b_j|.
    let mut a = Matrix::zeros(z_prev.rows(), layer.w.cols());
    gemm(1.0, z_prev, Op::N, &layer.w, Op::N, 0.0, &mut a);
    let mut ea = carry(mode, &plus_rounding(mode, ez_prev, g, z_prev), Op::N, abs_w, Op::N);
    let mut ca = plus_common(mode, &mut ea, cz_prev, z_prev, &a);
    match &layer.b {
        Some(b) => {
            a.add_to_rows(b);
            let eb: Vec<f64> = b.iter().map(|b| g * b.abs() + n_in as f64 * tiny).collect();
            ea.add_to_rows(&eb);
        }
        None => ea.as_mut_slice().iter_mut().for_each(|e| *e += n_in as f64 * tiny),
    }
    plus_value(mode, ea.as_mut_slice(), g, a.as_slice());
    if let Some(f) = floor {
        for (e, f) in ea.as_mut_slice().iter_mut().zip(f.as_slice()) {
            *e = e.max(*f);
        }
    }
    common_of(&ea, &mut ca, kappa);
    let share = Matrix::from_vec(
        ca.rows(),
        ca.cols(),
        ca.as_slice().iter().zip(ea.as_slice()).map(|(c, e)| if *e > 0.0 { c / e } else { 0.0 }).collect(),
    );
    let (rows, cols) = a.shape();
    // z = φ(a) and φ'(a) for the whole layer at once, by the vectorised loops.
    let mut z = Matrix::zeros(rows, cols);
    phi.forward_slice(a.as_slice(), z.as_mut_slice());
    let mut d = Matrix::from_vec(rows, cols, vec![1.0; rows * cols]);
    phi.backward_slice(a.as_slice(), z.as_slice(), d.as_mut_slice());
    let (mut ez, mut ed) = (Matrix::zeros(rows, cols), Matrix::zeros(rows, cols));
    layer_bounds(
        phi,
        a.as_slice(),
        ea.as_slice(),
        z.as_slice(),
        d.as_slice(),
        ez.as_mut_slice(),
        ed.as_mut_slice(),
        // The activation's own error: ULPS ulps (Worst) or ULPS_TYPICAL (Rms).
        match mode {
            Mode::Worst => eps,
            // (S3): relu and the identity are exact, their φ and φ' alike.
            Mode::Rms if matches!(phi, Activation::Relu | Activation::Identity) => 0.0,
            Mode::Rms => eps * ULPS_TYPICAL / ULPS,
        },
        normal,
    );
    Forward { z, ez, d, ed, share }
}
