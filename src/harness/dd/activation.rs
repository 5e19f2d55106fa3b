//! σ, tanh and each activation with its derivative in double-double, with the crate's own
//! branches and one-sided choices at the kinks, in forms that stay accurate where φ saturates
//! (nothing cancels, nothing overflows): what the witness recomputes eq. (2) and (7) with.

use super::erf::{erfc_scaled, exp_neg_sq};
use super::{lanes, Dd};
use crate::model::activation::{Activation, LEAKY_RELU_SLOPE, SOFTPLUS_THRESHOLD};

/// 1/√2.
const FRAC_1_SQRT_2: Dd = Dd::c(std::f64::consts::FRAC_1_SQRT_2, -4.833646656726457e-17);
/// 1/√(2π).
const FRAC_1_SQRT_2PI: Dd = Dd::c(0.3989422804014327, -2.49232720227773e-17);

impl Dd {
    /// tanh self: e/(e + 2) with e = e^(2|self|) − 1 below |self| = ½, (1 − t)/(1 + t) with
    /// t = e^(−2|self|) above; exactly ±1 beyond |self| = 37.5, where 1 − tanh < 2⁻¹⁰⁷.
    pub fn tanh(self) -> Dd {
        tanh_pair(self).0
    }

    /// σ(self) = 1/(1 + e^−self): 1/(1 + t) above 0, t/(1 + t) below, with t = e^−|self| (kept
    /// scaled until the end, so that σ is accurate down to its own underflow).
    pub fn sigmoid(self) -> Dd {
        sigmoid_pair(self).0
    }
}

/// e^−(s·|a|) as (M, m, 1 + M·2^m) with the value M·2^m: what σ and its relatives need.
/// M = 0 once s·|a| ≥ 1400, NaN for NaN.
#[inline(always)]
fn exp_neg_abs(a: Dd, s: f64) -> (Dd, i32, Dd) {
    let x = a.abs().mul_pow2(-s);
    let (m, e) = if x.hi > -1400.0 {
        Dd::exp_mant(x.hi, Dd::new(x.lo))
    } else {
        (Dd::new(if x.hi.is_nan() { x.hi } else { 0.0 }), 0)
    };
    (m, e, Dd::scale(m, e).add_f64(1.0))
}

/// (σ(a), σ'(a)) = (1/(1 + t) or t/(1 + t), t/(1 + t)²) with t = e^−|a|.
#[inline(always)]
fn sigmoid_pair(a: Dd) -> (Dd, Dd) {
    let (m, e, d) = exp_neg_abs(a, 1.0);
    let z = if a.hi >= 0.0 { d.recip() } else { Dd::scale(m.div(d), e) };
    (z, Dd::scale(m.div(d.square()), e))
}

/// (tanh a, tanh' a): below |a| = ½ from e = e^(2|a|) − 1, e/(e + 2) and 4(e + 1)/(e + 2)²;
/// above from t = e^(−2|a|), (1 − t)/(1 + t) and 4t/(1 + t)². Nothing cancels in either.
#[inline(always)]
pub(super) fn tanh_pair(a: Dd) -> (Dd, Dd) {
    let x = a.abs();
    let (z, d) = if x.hi < 0.5 {
        let e = x.mul_pow2(2.0).exp_m1();
        let den = e.add_f64(2.0);
        (e.div(den), e.add_f64(1.0).mul_pow2(4.0).div(den.square()))
    } else {
        let (m, ex, den) = exp_neg_abs(a, 2.0);
        let z = if x.hi < 37.5 {
            Dd::ONE.sub(Dd::scale(m, ex)).div(den)
        } else if x.hi.is_nan() {
            x
        } else {
            Dd::ONE
        };
        (z, Dd::scale(m.mul_pow2(4.0).div(den.square()), ex))
    };
    (if a.hi.is_sign_negative() { z.neg() } else { z }, d)
}

/// (a·σ(a), σ(a)(1 + a·σ(−a))), with σ(±|a|) = r, t·r for t = e^−|a|, r = 1/(1 + t).
#[inline(always)]
fn silu_pair(a: Dd) -> (Dd, Dd) {
    let (m, e, d) = exp_neg_abs(a, 1.0);
    let r = d.recip();
    if a.hi >= 0.0 {
        let small = Dd::scale(m, e).mul(r);
        (a.mul(r), r.mul(a.mul(small).add_f64(1.0)))
    } else {
        let mr = m.mul(r);
        (Dd::scale(a.mul(mr), e), Dd::scale(mr.mul(a.mul(r).add_f64(1.0)), e))
    }
}

/// (a·Φ(a), Φ(a) + a·e^(−a²/2)/√(2π)).
#[inline(always)]
fn gelu_pair(a: Dd) -> (Dd, Dd) {
    let ((cm, ce), (pm, pe)) = normal_cdf(a);
    let pdf = a.mul(pm.mul(FRAC_1_SQRT_2PI));
    let d = if ce == pe {
        // Both tiny together (the continued fraction's side): add before scaling.
        Dd::scale(cm.add(pdf), pe)
    } else {
        Dd::scale(cm, ce).add(Dd::scale(pdf, pe))
    };
    (Dd::scale(a.mul(cm), ce), d)
}

/// Φ(a) = ½ erfc(−a/√2), the standard normal distribution function, as (M, m) with the value
/// M·2^m, together with e^(−a²/2) = (M', m') (what GELU and its derivative need).
#[inline(always)]
fn normal_cdf(a: Dd) -> ((Dd, i32), (Dd, i32)) {
    let e = exp_neg_sq(a, 0.5);
    let (m, x) = erfc_scaled(a.mul(FRAC_1_SQRT_2).neg(), e);
    ((m.mul_pow2(0.5), x), e)
}

/// φ(a) in double-double, for each [`Activation`], with the crate's piecewise definitions
/// (`Activation::apply`): the same branches and thresholds ([`LEAKY_RELU_SLOPE`] as the f64
/// constant it is, [`SOFTPLUS_THRESHOLD`]), each piece computed to about 106 bits. GELU is
/// a·½·erfc(−a/√2), which does not cancel for a < 0.
pub fn activate(act: Activation, a: Dd) -> Dd {
    let zero = Dd::ZERO;
    match act {
        Activation::Identity => a,
        Activation::Sigmoid => a.sigmoid(),
        Activation::Tanh => a.tanh(),
        Activation::Relu => {
            if a > zero || a.is_nan() {
                a
            } else {
                zero
            }
        }
        Activation::LeakyRelu => {
            if a > zero {
                a
            } else {
                a.mul_f64(LEAKY_RELU_SLOPE)
            }
        }
        Activation::Elu => {
            if a > zero {
                a
            } else {
                a.exp_m1()
            }
        }
        Activation::Softplus => {
            if a > Dd::new(SOFTPLUS_THRESHOLD) {
                a
            } else {
                a.exp().ln_1p()
            }
        }
        Activation::Gelu => gelu_pair(a).0,
        Activation::Silu => silu_pair(a).0,
    }
}

/// φ'(a) in double-double, given a and z = φ(a): the exact derivative of the piecewise function
/// of [`activate`], with `Activation::derivative`'s one-sided choices at the kinks (relu' = 0
/// where z ≤ 0, leaky-relu' = 1 only for a > 0, elu' = e^a for a ≤ 0, softplus' = 1 above the
/// threshold). z is read only where the crate branches on it (relu); everything else is
/// computed from a, in forms that stay accurate where z saturates: σ' = t/(1 + t)² with
/// t = e^−|a|, tanh' = 4t/(1 + t)² with t = e^−2|a| (4(e + 1)/(e + 2)² with e = e^2|a| − 1
/// below |a| = ½), GELU' = Φ(a) + a·e^(−a²/2)/√(2π),
/// SiLU' = σ(a)(1 + a·σ(−a)). GELU' and SiLU' cross zero (near a = −0.75 and −1.28); there the
/// error is about 1e−32 absolute rather than relative. [`activate_pair`] gives φ and φ' at once.
pub fn activate_derivative(act: Activation, a: Dd, z: Dd) -> Dd {
    let (zero, one) = (Dd::ZERO, Dd::ONE);
    match act {
        Activation::Identity => one,
        Activation::Sigmoid => sigmoid_pair(a).1,
        Activation::Tanh => tanh_pair(a).1,
        Activation::Relu => {
            if z <= zero {
                zero
            } else {
                one
            }
        }
        Activation::LeakyRelu => {
            if a > zero {
                one
            } else {
                Dd::new(LEAKY_RELU_SLOPE)
            }
        }
        Activation::Elu => {
            if a <= zero {
                a.exp()
            } else {
                one
            }
        }
        Activation::Softplus => {
            if a > Dd::new(SOFTPLUS_THRESHOLD) {
                one
            } else {
                a.sigmoid()
            }
        }
        Activation::Gelu => gelu_pair(a).1,
        Activation::Silu => silu_pair(a).1,
    }
}

/// (φ(a), φ'(a)) at once, sharing the exponential (and for GELU the erfc) that both need for
/// σ, tanh, SiLU and GELU: bit for bit the values of [`activate`] and [`activate_derivative`].
#[inline(always)]
pub fn activate_pair(act: Activation, a: Dd) -> (Dd, Dd) {
    match act {
        Activation::Sigmoid => sigmoid_pair(a),
        Activation::Tanh => tanh_pair(a),
        Activation::Silu => silu_pair(a),
        Activation::Gelu => gelu_pair(a),
        _ => {
            let z = activate(act, a);
            (z, activate_derivative(act, a, z))
        }
    }
}

crate::kernels::simd::multiversion! {
    /// [`activate_pair`] of every entry of a layer, `a` into `z` and `d`: compiled for the widest
    /// instruction set the CPU has, where the two-products' fused multiply-adds are instructions
    /// rather than calls (an FMA is exact either way: the same bits at every level).
    /// tanh goes through `lanes`' loop, which vectorises (the same bits).
    pub fn activate_pairs(act: Activation, a: &[Dd], z: &mut [Dd], d: &mut [Dd]) {
        if act == Activation::Tanh {
            return lanes::tanh_pairs(a, z, d);
        }
        for ((&a, z), d) in a.iter().zip(z.iter_mut()).zip(d.iter_mut()) {
            (*z, *d) = activate_pair(act, a);
        }
    }
}
