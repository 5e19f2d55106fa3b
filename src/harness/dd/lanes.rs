//! tanh and its derivative in double-double over a layer, in a loop the compiler vectorises:
//! [`tanh_pair`]'s operations, one for one, without its branches. Both of tanh's forms are
//! computed for every entry and each keeps the one its |a| asks for; an entry outside
//! |a| < 37.5 (where tanh is ±1 exactly, or a is not finite) is then redone by [`tanh_pair`]
//! itself. Inside that range no operation meets a non-finite value or a scaling below 2⁻⁹⁶⁸, so
//! the special cases the scalar operations test for never arise, and every entry's bits are
//! [`tanh_pair`]'s (`tests/functions.rs` holds the two to that).
//!
//! [`tanh_pair`]: super::activation::tanh_pair

use super::activation::tanh_pair;
use super::arith::{fma, pow2i};
use super::exp_ln::{EXP2_TABLE, INV120, INV24, INV6, INV720, INV_FACT, L1, L2, LOG2E_64, SHIFTER};
use super::Dd;

/// Whether [`tanh_pairs`]' loop computes tanh at `a` as [`tanh_pair`] does.
#[inline(always)]
fn inside(a: Dd) -> bool {
    a.hi.abs() < 37.5 && a.lo.is_finite()
}

#[inline(always)]
fn two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    let bb = s - a;
    Dd { hi: s, lo: (a - (s - bb)) + (b - bb) }
}

#[inline(always)]
fn fast_two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    Dd { hi: s, lo: b - (s - a) }
}

/// `Dd::renorm` where the sum is finite.
#[inline(always)]
fn renorm(s: f64, e: f64) -> Dd {
    let h = s + e;
    Dd { hi: h, lo: e - (h - s) }
}

#[inline(always)]
fn two_prod(a: f64, b: f64) -> Dd {
    let p = a * b;
    Dd { hi: p, lo: a.mul_add(b, -p) }
}

#[inline(always)]
fn neg(x: Dd) -> Dd {
    Dd { hi: -x.hi, lo: -x.lo }
}

/// `Dd::add` where the sum is finite.
#[inline(always)]
fn add(x: Dd, o: Dd) -> Dd {
    let s = two_sum(x.hi, o.hi);
    let t = two_sum(x.lo, o.lo);
    let u = fast_two_sum(s.hi, s.lo + t.hi);
    renorm(u.hi, u.lo + t.lo)
}

/// `Dd::add_sloppy` where the sum is finite.
#[inline(always)]
fn add_sloppy(x: Dd, o: Dd) -> Dd {
    let s = two_sum(x.hi, o.hi);
    renorm(s.hi, s.lo + (x.lo + o.lo))
}

/// `Dd::add_f64` where the sum is finite.
#[inline(always)]
fn add_f64(x: Dd, b: f64) -> Dd {
    let s = two_sum(x.hi, b);
    renorm(s.hi, s.lo + x.lo)
}

/// `Dd::mul` where the product is finite.
#[inline(always)]
fn mul(x: Dd, o: Dd) -> Dd {
    let p = two_prod(x.hi, o.hi);
    let cross = fma(x.hi, o.lo, x.lo * o.hi);
    renorm(p.hi, p.lo + cross)
}

#[inline(always)]
fn mul_pow2(x: Dd, s: f64) -> Dd {
    Dd { hi: x.hi * s, lo: x.lo * s }
}

/// `Dd::square` where the square is finite.
#[inline(always)]
fn square(x: Dd) -> Dd {
    let p = two_prod(x.hi, x.hi);
    renorm(p.hi, p.lo + 2.0 * x.hi * x.lo)
}

/// `Dd::div` where the quotient and the divisor are finite.
#[inline(always)]
fn div(x: Dd, o: Dd) -> Dd {
    let q1 = x.hi / o.hi;
    let p = two_prod(q1, o.hi);
    let r = (((x.hi - p.hi) - p.lo) + x.lo) - q1 * o.lo;
    renorm(q1, r / o.hi)
}

/// `Dd::scale` where the result is at least 2⁻⁹⁶⁸.
#[inline(always)]
fn scale(d: Dd, m: i32) -> Dd {
    let m1 = m >> 1;
    let (f1, f2) = (pow2i(m1), pow2i(m - m1));
    let (a, b) = (d.hi * f1, d.lo * f1);
    renorm(a * f2, b * f2)
}

/// `Dd::horner_step`: c + q·h.
#[inline(always)]
fn horner_step(q: Dd, h: f64, c: Dd) -> Dd {
    let p = two_prod(q.hi, h);
    let s = two_sum(c.hi, p.hi);
    Dd { hi: s.hi, lo: s.lo + (p.lo + fma(q.lo, h, c.lo)) }
}

/// `Dd::expm1_poly`.
#[inline(always)]
fn expm1_poly(r: Dd) -> Dd {
    let h = r.hi;
    let f = INV_FACT;
    let t = f[0] + h * (f[1] + h * (f[2] + h * (f[3] + h * f[4])));
    let mut q = horner_step(Dd { hi: t, lo: 0.0 }, h, INV720);
    q = horner_step(q, h, INV120);
    q = horner_step(q, h, INV24);
    q = horner_step(q, h, INV6);
    q = horner_step(q, h, Dd { hi: 0.5, lo: 0.0 });
    let m = mul(two_prod(h, h), q);
    let s = fast_two_sum(h, m.hi);
    renorm(s.hi, s.lo + (m.lo + fma(r.lo, s.hi, r.lo)))
}

/// `Dd::exp_parts` of xh + xl (the low part its own f64): (m, 2^(j/64), e^r − 1).
#[inline(always)]
fn exp_parts(xh: f64, xl: f64) -> (i32, Dd, Dd) {
    let kf = (xh * LOG2E_64 + SHIFTER) - SHIFTER;
    let k = kf as i32;
    let r0 = xh - kf * L1;
    let p = two_prod(kf, L2.hi);
    let s = two_sum(r0, -p.hi);
    let t = two_sum(s.hi, xl);
    let r = two_sum(t.hi, t.lo + ((s.lo - p.lo) + (0.0 - kf * L2.lo)));
    (k >> 6, EXP2_TABLE[(k & 63) as usize], expm1_poly(r))
}

/// `tanh_pair(a)` for `inside(a)`, with no branch: both forms, and a select.
#[inline(always)]
fn tanh_pair_inside(a: Dd) -> (Dd, Dd) {
    let negative = a.hi.is_sign_negative();
    let x = if negative { neg(a) } else { a };

    // Below ½: e = e^(2x) − 1 (`Dd::exp_m1` inside its range), e/(e + 2), 4(e + 1)/(e + 2)².
    let x2 = mul_pow2(x, 2.0);
    let (m, t, p) = exp_parts(x2.hi, x2.lo);
    let s = mul_pow2(t, pow2i(m));
    let e = add(add_f64(s, -1.0), mul(s, p));
    let den = add_f64(e, 2.0);
    let z_small = div(e, den);
    let d_small = div(mul_pow2(add_f64(e, 1.0), 4.0), square(den));

    // From ½: t = e^(−2x) = M·2^m (`Dd::exp_mant`), (1 − t)/(1 + t), 4t/(1 + t)².
    let xn = mul_pow2(x, -2.0);
    let (ex, t, p) = exp_parts(xn.hi, xn.lo);
    let mant = add_sloppy(t, mul(t, p));
    let scaled = scale(mant, ex);
    let den = add_f64(scaled, 1.0);
    let z_large = div(add(Dd { hi: 1.0, lo: 0.0 }, neg(scaled)), den);
    let d_large = scale(div(mul_pow2(mant, 4.0), square(den)), ex);

    let small = x.hi < 0.5;
    let z = if small { z_small } else { z_large };
    let d = if small { d_small } else { d_large };
    (if negative { neg(z) } else { z }, d)
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
