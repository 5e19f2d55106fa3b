//! tanh and its derivative in double-double over a layer, in a loop the compiler vectorises:
//! [`tanh_pair`]'s operations without its branches between tanh's two forms and out of range.
//! Both forms are computed for every entry and each keeps the one its |a| asks for; an entry
//! outside |a| < 37.5 (where tanh is ±1 exactly, or a is not finite) is then redone by
//! [`tanh_pair`] itself. Inside that range no operation meets a non-finite value or a scaling
//! below 2⁻⁹⁶⁸: the operations' own tests for those never fire (they become selects), the one
//! that would call out of the loop (`Dd::scale`'s repair of a tiny result) is left out, and every
//! entry's bits are [`tanh_pair`]'s (`tests/functions.rs` holds the two to that).
//!
//! [`tanh_pair`]: super::activation::tanh_pair

use super::activation::tanh_pair;
use super::arith::pow2i;
use super::Dd;

/// Whether [`tanh_pairs`]' loop computes tanh at `a` as [`tanh_pair`] does.
#[inline(always)]
fn inside(a: Dd) -> bool {
    a.hi.abs() < 37.5 && a.lo.is_finite()
}

/// `Dd::scale` where the result is at least 2⁻⁹⁶⁸ (no call to its repair of a tiny result).
#[inline(always)]
fn scale(d: Dd, m: i32) -> Dd {
    let m1 = m >> 1;
    let (f1, f2) = (pow2i(m1), pow2i(m - m1));
    Dd::renorm(d.hi * f1 * f2, d.lo * f1 * f2)
}

/// `tanh_pair(a)` for `inside(a)`, with no branch between the forms: both, and a select.
#[inline(always)]
fn tanh_pair_inside(a: Dd) -> (Dd, Dd) {
    let x = a.abs();

    // Below ½: e = e^(2x) − 1 (`Dd::exp_m1` inside its range), e/(e + 2), 4(e + 1)/(e + 2)².
    let x2 = x.mul_pow2(2.0);
    let (m, t, p) = Dd::exp_parts(x2.hi, Dd::new(x2.lo));
    let s = t.mul_pow2(pow2i(m));
    let e = s.add_f64(-1.0).add(s.mul(p));
    let den = e.add_f64(2.0);
    let small = (e.div(den), e.add_f64(1.0).mul_pow2(4.0).div(den.square()));

    // From ½: t = e^(−2x) = M·2^m, (1 − t)/(1 + t), 4t/(1 + t)².
    let xn = x.mul_pow2(-2.0);
    let (mant, ex) = Dd::exp_mant(xn.hi, Dd::new(xn.lo));
    let den = scale(mant, ex).add_f64(1.0);
    let large = (Dd::ONE.sub(scale(mant, ex)).div(den), scale(mant.mul_pow2(4.0).div(den.square()), ex));

    let (z, d) = if x.hi < 0.5 { small } else { large };
    (if a.hi.is_sign_negative() { z.neg() } else { z }, d)
}

/// (tanh a, tanh' a) of every entry of `a` into `z` and `d`, bit for bit `tanh_pair`'s.
#[inline(always)]
pub(super) fn tanh_pairs(a: &[Dd], z: &mut [Dd], d: &mut [Dd]) {
    let n = a.len().min(z.len()).min(d.len());
    let (a, z, d) = (&a[..n], &mut z[..n], &mut d[..n]);
    for p in 0..n {
        (z[p], d[p]) = tanh_pair_inside(a[p]);
    }
    for p in 0..n {
        if !inside(a[p]) {
            (z[p], d[p]) = tanh_pair(a[p]);
        }
    }
}
