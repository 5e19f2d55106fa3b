//! The double-double number's exact transformations (two-sum, two-product) and its arithmetic:
//! sums, products, quotients and √ by the double-word algorithms of Joldes, Muller and Popescu,
//! and the operator traits that spell them `+ − · /`.

use super::Dd;
use std::cmp::Ordering;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// 2^e for e in [−1022, 1023], from its bits.
#[inline(always)]
pub(super) fn pow2i(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// a·b + c for the low-order terms: fused where the target has FMA instructions, else two
/// roundings (which those terms tolerate) rather than a library call.
#[inline(always)]
pub(super) fn fma(a: f64, b: f64, c: f64) -> f64 {
    if cfg!(target_feature = "fma") {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

impl Dd {
    /// 0.
    pub const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };
    /// 1.
    pub const ONE: Dd = Dd { hi: 1.0, lo: 0.0 };

    /// `hi` exactly.
    #[inline(always)]
    pub const fn new(hi: f64) -> Dd {
        Dd { hi, lo: 0.0 }
    }

    /// A constant given as its two (already normalised) parts.
    pub(super) const fn c(hi: f64, lo: f64) -> Dd {
        Dd { hi, lo }
    }

    /// a + b exactly (Knuth's two-sum), for any finite a, b.
    #[inline(always)]
    pub fn two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        let bb = s - a;
        Dd { hi: s, lo: (a - (s - bb)) + (b - bb) }
    }

    /// a + b exactly, for |a| ≥ |b| or a = 0 (Dekker's fast two-sum).
    #[inline(always)]
    pub(super) fn fast_two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        Dd { hi: s, lo: b - (s - a) }
    }

    /// `fast_two_sum(s, e)`, or the non-finite `s + e` alone with a zero low part.
    #[inline(always)]
    pub(super) fn renorm(s: f64, e: f64) -> Dd {
        let h = s + e;
        let l = e - (h - s);
        if h.is_finite() {
            Dd { hi: h, lo: l }
        } else {
            Dd { hi: h, lo: 0.0 }
        }
    }

    /// a·b exactly, unless it underflows: p = a·b rounded, e = fma(a, b, −p) (the FMA
    /// two-product; `f64::mul_add` is the instruction where the target has it, else the C
    /// library's correctly rounded fma).
    #[inline(always)]
    pub fn two_prod(a: f64, b: f64) -> Dd {
        let p = a * b;
        Dd { hi: p, lo: a.mul_add(b, -p) }
    }

    /// The value rounded to f64: `hi + lo` (which is `hi` for a normalised number).
    #[inline(always)]
    pub fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    /// Whether the value is finite.
    #[inline(always)]
    pub fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    /// Whether the value is NaN.
    #[inline(always)]
    pub fn is_nan(self) -> bool {
        self.hi.is_nan()
    }

    /// Whether the sign bit of the high part is set (as `f64::is_sign_negative`).
    #[inline(always)]
    pub fn is_sign_negative(self) -> bool {
        self.hi.is_sign_negative()
    }

    /// ±1 by the sign of the high part, NaN for NaN (as `f64::signum`).
    #[inline(always)]
    pub fn signum(self) -> Dd {
        Dd::new(self.hi.signum())
    }

    /// |self|.
    #[inline(always)]
    pub fn abs(self) -> Dd {
        if self.hi.is_sign_negative() {
            self.neg()
        } else {
            self
        }
    }

    /// −self.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn neg(self) -> Dd {
        Dd { hi: -self.hi, lo: -self.lo }
    }

    /// self + o, the accurate double-word sum (relative error ≤ 3·2⁻¹⁰⁶ even when it cancels).
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, o: Dd) -> Dd {
        let s = Dd::two_sum(self.hi, o.hi);
        if !s.hi.is_finite() {
            return Dd::new(s.hi);
        }
        let t = Dd::two_sum(self.lo, o.lo);
        let u = Dd::fast_two_sum(s.hi, s.lo + t.hi);
        Dd::renorm(u.hi, u.lo + t.lo)
    }

    /// self + o with one two-sum instead of two: within about 2⁻¹⁰⁵ of |self| + |o| (not of
    /// |self + o|), so as accurate as [`Dd::add`] where the two do not cancel (same sign, or |o|
    /// well below |self|), and what a long dot product's accumulation needs, at half the cost.
    #[inline(always)]
    pub fn add_sloppy(self, o: Dd) -> Dd {
        let s = Dd::two_sum(self.hi, o.hi);
        if !s.hi.is_finite() {
            return Dd::new(s.hi);
        }
        Dd::renorm(s.hi, s.lo + (self.lo + o.lo))
    }

    /// self + b (relative error ≤ 2·2⁻¹⁰⁶).
    #[inline(always)]
    pub fn add_f64(self, b: f64) -> Dd {
        let s = Dd::two_sum(self.hi, b);
        if !s.hi.is_finite() {
            return Dd::new(s.hi);
        }
        Dd::renorm(s.hi, s.lo + self.lo)
    }

    /// self − o.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, o: Dd) -> Dd {
        self.add(o.neg())
    }

    /// self · o (relative error a few 2⁻¹⁰⁶: at most 4.2 units in the tests).
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn mul(self, o: Dd) -> Dd {
        let p = Dd::two_prod(self.hi, o.hi);
        if !p.hi.is_finite() {
            return Dd::new(p.hi);
        }
        let cross = fma(self.hi, o.lo, self.lo * o.hi);
        Dd::renorm(p.hi, p.lo + cross)
    }

    /// self · b (relative error a few 2⁻¹⁰⁶: at most 2.3 units in the tests).
    #[inline(always)]
    pub fn mul_f64(self, b: f64) -> Dd {
        let p = Dd::two_prod(self.hi, b);
        if !p.hi.is_finite() {
            return Dd::new(p.hi);
        }
        Dd::renorm(p.hi, fma(self.lo, b, p.lo))
    }

    /// self · s for s a power of two: exact unless the result over- or underflows.
    #[inline(always)]
    pub fn mul_pow2(self, s: f64) -> Dd {
        Dd { hi: self.hi * s, lo: self.lo * s }
    }

    /// self².
    #[inline(always)]
    pub fn square(self) -> Dd {
        let p = Dd::two_prod(self.hi, self.hi);
        if !p.hi.is_finite() {
            return Dd::new(p.hi);
        }
        Dd::renorm(p.hi, p.lo + 2.0 * self.hi * self.lo)
    }

    /// self / o: f64's quotient q, then q + r/o with the residual r = self − q·o computed from
    /// exact products (relative error a few 2⁻¹⁰⁶: at most 5.2 units in the tests). Division by
    /// ±0 or ±∞, and overflow, give f64's quotient of the high parts.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn div(self, o: Dd) -> Dd {
        let q1 = self.hi / o.hi;
        if !(q1.is_finite() && o.hi.is_finite()) {
            return Dd::new(q1);
        }
        // r = self − q1·o: self.hi − p.hi is exact (Sterbenz), the rest is of order 2⁻⁵³ self.
        let p = Dd::two_prod(q1, o.hi);
        let r = (((self.hi - p.hi) - p.lo) + self.lo) - q1 * o.lo;
        let q2 = r / o.hi;
        Dd::renorm(q1, q2)
    }

    /// self / d for a small exact d (a step of a series): as [`Dd::div`] with o.lo = 0.
    #[inline(always)]
    pub(super) fn div_f64(self, d: f64) -> Dd {
        let q1 = self.hi / d;
        let p = Dd::two_prod(q1, d);
        let r = ((self.hi - p.hi) - p.lo) + self.lo;
        Dd::renorm(q1, r / d)
    }

    /// 1/self.
    #[inline(always)]
    pub fn recip(self) -> Dd {
        Dd::ONE.div(self)
    }

    /// √self: one Newton step s + (self − s²)/(2s) from f64's root s (relative error at most 2.8
    /// units of 2⁻¹⁰⁶ in the tests). NaN below zero, as f64.
    #[inline(always)]
    pub fn sqrt(self) -> Dd {
        if !(self.hi > 0.0 && self.hi < f64::INFINITY) {
            return Dd::new(self.hi.sqrt());
        }
        if self.hi < 1e-270 {
            // Keep s² and its error term out of the subnormal range.
            return self.mul_pow2(pow2i(600)).sqrt().mul_pow2(pow2i(-300));
        }
        let s = self.hi.sqrt();
        let p = Dd::two_prod(s, s);
        let r = ((self.hi - p.hi) - p.lo) + self.lo;
        Dd::renorm(s, r / (2.0 * s))
    }
}

impl From<f64> for Dd {
    fn from(x: f64) -> Dd {
        Dd::new(x)
    }
}

impl PartialOrd for Dd {
    /// By the high parts, then by the low parts (the order of the values, for normalised
    /// numbers); `None` when either is NaN.
    fn partial_cmp(&self, o: &Dd) -> Option<Ordering> {
        match self.hi.partial_cmp(&o.hi) {
            Some(Ordering::Equal) => self.lo.partial_cmp(&o.lo),
            c => c,
        }
    }
}

impl Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd::neg(self)
    }
}

macro_rules! binary_ops {
    ($($trait:ident $method:ident $assign_trait:ident $assign:ident;)*) => {$(
        impl $trait for Dd {
            type Output = Dd;
            fn $method(self, o: Dd) -> Dd {
                Dd::$method(self, o)
            }
        }
        impl $trait<f64> for Dd {
            type Output = Dd;
            fn $method(self, o: f64) -> Dd {
                Dd::$method(self, Dd::new(o))
            }
        }
        impl $assign_trait for Dd {
            fn $assign(&mut self, o: Dd) {
                *self = Dd::$method(*self, o);
            }
        }
    )*};
}

binary_ops! {
    Add add AddAssign add_assign;
    Sub sub SubAssign sub_assign;
    Mul mul MulAssign mul_assign;
    Div div DivAssign div_assign;
}
