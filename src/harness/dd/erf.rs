//! The error function in double-double: erf by its series of positive terms below |x| = 3,
//! erfc by the even contraction of Laplace's continued fraction from x = 1.5 on, each the
//! complement of the other elsewhere; e^−x² from the exact square of x's high part.

use super::arith::pow2i;
use super::Dd;

/// 2/√π.
const FRAC_2_SQRT_PI: Dd = Dd::c(std::f64::consts::FRAC_2_SQRT_PI, 1.533545961316588e-17);

/// erf uses the series of positive terms below this, 1 − erfc (continued fraction) above: where
/// the two cost about the same.
pub(super) const ERF_CF: f64 = 3.0;
/// erfc uses 1 − erf (series) below this, the continued fraction above: 1 − erf loses
/// log₂(1/erfc(1.5)) ≈ 5 bits, the fraction needs 190 steps here.
pub(super) const ERFC_CF: f64 = 1.5;
/// The continued fraction's depth at x: c₀ + c₁/x + c₂/x², two or more terms beyond what reaches
/// 2⁻¹¹² relative anywhere in [1.5, 28] (found with mpmath at 45 digits).
pub(super) const CF_DEPTH: [f64; 3] = [9.0, 24.0, 365.0];
/// Above this |x|, erfc(x) is below 2⁻¹⁰⁷⁴: erf = ±1, erfc = 0 or 2.
pub(super) const ERFC_ZERO: f64 = 27.3;

impl Dd {
    /// erf self: the series of positive terms below |self| = 3, 1 − erfc above.
    pub fn erf(self) -> Dd {
        erf_with(self, exp_neg_sq(self, 1.0))
    }

    /// erfc self = 1 − erf self, accurate relatively for large positive self, down to its
    /// underflow near 27.2: the continued fraction from 1.5 on, 1 − erf below, 1 + erf(|self|)
    /// for negative self.
    pub fn erfc(self) -> Dd {
        let (m, e) = erfc_scaled(self, exp_neg_sq(self, 1.0));
        Dd::scale(m, e)
    }
}

/// e^(−s·x²) for s = 1 or ½, as (M, m) with the value M·2^m (M = 0 once s·x² ≥ 1400). x² is
/// taken as h² + (2h·l + l²) exactly from x = h + l, so that the rounding of x² to dd, which
/// would be 1e−29 of e^−x² at x² ≈ 700, is not made.
pub(super) fn exp_neg_sq(x: Dd, s: f64) -> (Dd, i32) {
    let p = Dd::two_prod(x.hi, x.hi);
    let xh = -s * p.hi;
    if xh.is_nan() || xh <= -1400.0 {
        return (Dd::new(if xh.is_nan() { xh } else { 0.0 }), 0);
    }
    let q = Dd::two_prod(2.0 * x.hi, x.lo);
    let t = Dd::two_sum(p.lo, q.hi);
    let rest = Dd::renorm(t.hi, t.lo + (q.lo + x.lo * x.lo));
    Dd::exp_mant(xh, rest.mul_pow2(-s))
}

/// (2/√π) e^−x² Σ 2ⁿ x^(2n+1)/(1·3·…·(2n+1)) for 0 ≤ x < 3, given e^−x² = M·2^m: terms
/// t_n = t_(n−1)·(2x²/(2n+1)), the ratio computed off the chain of terms, until they fall
/// below 2⁻¹¹² of the sum (about 63 terms at x = 3).
#[inline(always)]
pub(super) fn erf_series(x: Dd, (m, e): (Dd, i32)) -> Dd {
    let y = x.square().mul_pow2(2.0);
    let (mut t, mut s) = (x, x);
    let mut d = 1.0;
    // In dd while the terms matter to 2⁻⁶⁰ of the sum (they decrease from there on)…
    while d < 300.0 {
        d += 2.0;
        t = t.mul(y.div_f64(d));
        s = s.add_sloppy(t);
        if t.hi <= s.hi * 8.7e-19 {
            break;
        }
    }
    // …then in f64, whose relative error of a few 2⁻⁵³ on a tail below 2⁻⁵⁹ of the sum is lost.
    let (mut tf, mut sf) = (t.hi, 0.0);
    let floor = s.hi * 1.9e-34;
    while tf > floor && d < 300.0 {
        d += 2.0;
        tf *= y.hi / d;
        sf += tf;
    }
    Dd::scale(FRAC_2_SQRT_PI.mul(m).mul(s.add_f64(sf)), e)
}

/// erfc x for x ≥ 1.5, given e^−x² = M·2^m, as (M', m) with the value M'·2^m: the J-fraction
/// 2x e^−x²/√π / (2x² + 1 − 1·2/(2x² + 5 − 3·4/(2x² + 9 − …))) evaluated from the bottom as a
/// ratio P/Q (no division per step; each step's subtraction cancels less than 2:1), from a
/// depth that reaches 2⁻¹¹² of the value (fitted against mpmath over [1.5, 28], with margin).
#[inline(always)]
pub(super) fn erfc_cf(x: Dd, emx2: (Dd, i32)) -> (Dd, i32) {
    let inv = 1.0 / x.hi;
    erfc_cf_depth(x, emx2, (CF_DEPTH[0] + inv * (CF_DEPTH[1] + CF_DEPTH[2] * inv)) as u32)
}

/// [`erfc_cf`] from depth n.
#[inline(always)]
pub(super) fn erfc_cf_depth(x: Dd, (m, e): (Dd, i32), n: u32) -> (Dd, i32) {
    let y = x.square().mul_pow2(2.0);
    let (mut p, mut q) = (Dd::ZERO, Dd::ONE);
    for k in (1..=n).rev() {
        let k = k as f64;
        let np = q.mul_f64((2.0 * k - 1.0) * (2.0 * k));
        q = y.add_f64(4.0 * k + 1.0).mul(q).add_sloppy(p.neg());
        p = np;
        if q.hi > 1e150 {
            p = p.mul_pow2(pow2i(-500));
            q = q.mul_pow2(pow2i(-500));
        }
    }
    let den = y.add_f64(1.0).mul(q).sub(p);
    (FRAC_2_SQRT_PI.mul(x).mul(m).mul(q.div(den)), e)
}

/// erf x given e^−x² (computed by the caller from whatever x is exactly).
fn erf_with(x: Dd, emx2: (Dd, i32)) -> Dd {
    let a = x.abs();
    let r = if a.hi < ERF_CF {
        erf_series(a, emx2)
    } else if a.hi < ERFC_ZERO {
        let (m, e) = erfc_cf(a, emx2);
        Dd::ONE.sub(Dd::scale(m, e))
    } else if a.hi.is_nan() {
        return x;
    } else {
        Dd::ONE
    };
    if x.hi.is_sign_negative() {
        r.neg()
    } else {
        r
    }
}

/// erfc x given e^−x², as (M, m) with the value M·2^m (m ≠ 0 only on the continued fraction's
/// side, where the value may be far below e^−x²'s underflow).
pub(super) fn erfc_scaled(x: Dd, emx2: (Dd, i32)) -> (Dd, i32) {
    let a = x.abs();
    if a.hi.is_nan() || a.hi >= ERFC_ZERO {
        let v = if a.hi.is_nan() {
            a.hi
        } else if x.hi > 0.0 {
            0.0
        } else {
            2.0
        };
        return (Dd::new(v), 0);
    }
    if x.hi < 0.0 {
        (Dd::ONE.add(erf_with(a, emx2)), 0)
    } else if a.hi < ERFC_CF {
        (Dd::ONE.sub(erf_series(a, emx2)), 0)
    } else {
        erfc_cf(a, emx2)
    }
}
