//! Double-double ("dd") arithmetic: a number as an unevaluated sum hi + lo of two f64 with
//! |lo| ≤ ½ ulp(hi), about 106 significant bits.
//!
//! It is the arithmetic of the *witness*: an f64 training step recomputed in about 106 bits, so
//! that each f64 side's distance from the exact step can be measured. Accuracy comes first:
//! every operation and function here is within a few 2⁻¹⁰⁶ (≈ 1e−31) of the exact result,
//! relatively, wherever the result is at least 2⁻⁹⁶⁸; below that the low part is itself
//! subnormal and the error is at most half a unit of 2⁻¹⁰⁷⁴ beyond what the two parts can hold
//! (intermediates are kept scaled, so that nothing underflows early, and `to_f64()` stays the
//! correctly rounded value down to the subnormals).
//!
//! # Algorithms
//!
//! - Exact transformations: Knuth's two-sum (a + b = s + e exactly, [`Dd::two_sum`]) and Dekker's
//!   two-product done with a fused multiply-add (a·b = p + e exactly, e = fma(a, b, −p),
//!   [`Dd::two_prod`]).
//! - Sums, products and quotients follow the double-word algorithms of Joldes, Muller and
//!   Popescu ("Tight and rigorous error bounds for basic building blocks of double-word
//!   arithmetic", ACM TOMS 2017): the accurate sum of two dd (error ≤ 3·2⁻¹⁰⁶ even when it
//!   cancels), the product with its cross terms, a quotient as one correction of f64's quotient
//!   by an exactly computed residual, and √ as one Newton step from f64's root (Karp–Markstein).
//! - e^x: x = (64m + j)·ln2/64 + r, with ln2/64 split in three so that the reduction is exact
//!   and |r| ≤ ln2/128; e^r − 1 by its Taylor polynomial of degree 11 (the terms from r⁷ on in
//!   f64, the rest a Horner scheme with dd coefficients in the double variable r.hi, r.lo added
//!   to first order); e^x = 2^m · 2^(j/64) · (1 + p) with a table of 2^(j/64) in dd. e^x − 1 is
//!   (2^m 2^(j/64) − 1) + 2^m 2^(j/64) p, which cancels by at most 2:1, and is p itself near 0.
//! - ln(1 + u) (ln_1p, and ln once the binary exponent is taken out, the mantissa in
//!   [1/√2, √2]): one Newton step from f64's `ln_1p`, y + (1 + u)e^−y − 1, evaluated as
//!   y + [(e^−y − 1) + u e^−y], both brackets accurate relatively, so that the correction (a
//!   few ulps of y) comes out to 2⁻¹⁰⁶ of the result even for tiny u.
//! - tanh x = e/(e + 2) with e = e^(2|x|) − 1 below |x| = ½, (1 − t)/(1 + t) with t = e^−2|x|
//!   above; σ(x) = 1/(1 + e^−|x|) or e^−|x|/(1 + e^−|x|); the derivatives from the same e or t
//!   (4t/(1 + t)², not 1 − tanh²): no cancellation anywhere, no overflow.
//! - erf by the series of positive terms erf x = (2/√π) e^−x² Σ 2ⁿ x^(2n+1)/(1·3·…·(2n+1))
//!   below |x| = 3 (terms below 2⁻⁶⁰ of the sum in f64); erfc from x = 1.5 on by the even
//!   (J-fraction) contraction of Laplace's continued fraction,
//!   erfc x = (2x e^−x²/√π) / (2x² + 1 − 1·2/(2x² + 5 − 3·4/(2x² + 9 − …))), evaluated
//!   bottom-up from a depth fitted to reach 2⁻¹¹² of the value; erf = 1 − erfc above 3, and
//!   erfc = 1 − erf below 1.5, which loses at most log₂(1/erfc(1.5)) ≈ 5 bits. e^−x² comes from
//!   the exact square of x's high part, so that rounding x² costs nothing at large x.
//!
//! # Measured accuracy and cost
//!
//! Against mpmath at 60 digits, on random and logarithmic grids over each function's range,
//! arguments with and without a low part (worst relative errors): +, −, ·, ÷, √ 2e−32 to 6e−32
//! (4.2 and 5.2 units of 2⁻¹⁰⁶ for · and ÷ in the exact-expansion test below); e^x 2e−32;
//! e^x − 1, ln, ln(1 + u), tanh, erf 2.4e−31; σ 7e−32; erfc 8e−32 from 1.5 on and 1.3e−30 just
//! below it; the activations and their derivatives likewise (GELU 3.5e−30 where it takes erfc
//! just below 1.5), except next to the zeros of GELU' (a ≈ −0.752) and SiLU' (a ≈ −1.278),
//! where the error is about 1e−32 absolute. `to_f64()` was the correctly rounded value at every
//! one of those points. About 40 ns for e^x, 65–75 ns for σ and tanh, 95 ns for ln, 350 ns for
//! erf on [−3, 3], 500 ns for GELU there (1.1 µs for erfc on [1.5, 3], the slowest stretch of
//! the fraction), on an x86-64 Xeon core in a release build without `target-cpu` flags.

use crate::model::activation::{Activation, LEAKY_RELU_SLOPE, SOFTPLUS_THRESHOLD};
use std::cmp::Ordering;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// hi + lo, |lo| ≤ ½ ulp(hi): a double-double number of about 106 significant bits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dd {
    /// The high part: the value rounded to f64.
    pub hi: f64,
    /// The low part: the rest, at most half an ulp of `hi`.
    pub lo: f64,
}

/// ln 2.
const LN2: Dd = Dd::c(std::f64::consts::LN_2, 2.3190468138462996e-17);
/// 2/√π.
const FRAC_2_SQRT_PI: Dd = Dd::c(std::f64::consts::FRAC_2_SQRT_PI, 1.533545961316588e-17);
/// 1/√2.
const FRAC_1_SQRT_2: Dd = Dd::c(std::f64::consts::FRAC_1_SQRT_2, -4.833646656726457e-17);
/// 1/√(2π).
const FRAC_1_SQRT_2PI: Dd = Dd::c(0.3989422804014327, -2.49232720227773e-17);
/// 1/6, 1/24, 1/120, 1/720.
const INV6: Dd = Dd::c(0.16666666666666666, 9.25185853854297e-18);
const INV24: Dd = Dd::c(0.041666666666666664, 2.3129646346357427e-18);
const INV120: Dd = Dd::c(0.008333333333333333, 1.1564823173178714e-19);
const INV720: Dd = Dd::c(0.001388888888888889, -5.300543954373577e-20);
/// 1/n! for n = 7..11, the tail of e^r − 1 that f64 carries well enough.
const INV_FACT: [f64; 5] = [
    1.984126984126984e-4,
    2.48015873015873e-5,
    2.7557319223985893e-6,
    2.755731922398589e-7,
    2.505210838544172e-8,
];
/// 64/ln 2, for the reduction's k = round(64x/ln 2).
const LOG2E_64: f64 = 92.33248261689366;
/// ln2/64 = L1 + L2 (+ L2's low part): L1 with 36 significant bits so that k·L1 is exact for
/// |k| < 2¹⁷.
const L1: f64 = 0.010830424696223417;
const L2: Dd = Dd::c(2.572804622327669e-14, -1.5746795524851787e-30);
/// 1.5·2⁵²: adding and subtracting it rounds an f64 of magnitude < 2⁵¹ to an integer.
const SHIFTER: f64 = 6755399441055744.0;
/// √2 in f64: the split of ln's mantissa into [1/√2, √2].
const SQRT2: f64 = std::f64::consts::SQRT_2;
/// erf uses the series of positive terms below this, 1 − erfc (continued fraction) above: where
/// the two cost about the same.
const ERF_CF: f64 = 3.0;
/// erfc uses 1 − erf (series) below this, the continued fraction above: 1 − erf loses
/// log₂(1/erfc(1.5)) ≈ 5 bits, the fraction needs 190 steps here.
const ERFC_CF: f64 = 1.5;
/// The continued fraction's depth at x: c₀ + c₁/x + c₂/x², two or more terms beyond what reaches
/// 2⁻¹¹² relative anywhere in [1.5, 28] (found with mpmath at 45 digits).
const CF_DEPTH: [f64; 3] = [9.0, 24.0, 365.0];
/// Above this |x|, erfc(x) is below 2⁻¹⁰⁷⁴: erf = ±1, erfc = 0 or 2.
const ERFC_ZERO: f64 = 27.3;

/// 2^(j/64) for j = 0..63, rounded to dd (from mpmath at 60 digits).
const EXP2_TABLE: [Dd; 64] = [
    Dd::c(1.0, 0.0),
    Dd::c(1.0108892860517005, -1.5234778603368577e-17),
    Dd::c(1.0218971486541166, 5.109225028973444e-17),
    Dd::c(1.0330248790212284, 7.600838874027088e-18),
    Dd::c(1.0442737824274138, 8.551889705537965e-17),
    Dd::c(1.0556451783605572, 1.759325738772092e-18),
    Dd::c(1.0671404006768237, -7.899853966841582e-17),
    Dd::c(1.0787607977571199, -6.656660436056593e-17),
    Dd::c(1.0905077326652577, -3.046782079812471e-17),
    Dd::c(1.102382583307841, 5.2660368715706944e-17),
    Dd::c(1.1143867425958924, 1.0410278456845571e-16),
    Dd::c(1.1265216186082418, 5.165856758795457e-17),
    Dd::c(1.1387886347566916, 8.912812676025408e-17),
    Dd::c(1.1511892299529827, 3.250710218863827e-17),
    Dd::c(1.1637248587775775, 3.8292048369240935e-17),
    Dd::c(1.1763969916502812, 5.554203254218079e-17),
    Dd::c(1.189207115002721, 3.982015231465646e-17),
    Dd::c(1.202156731452703, 6.644981499252301e-17),
    Dd::c(1.215247359980469, -7.712630692681488e-17),
    Dd::c(1.22848053610687, -1.89878163130253e-17),
    Dd::c(1.241857812073484, 4.658027591836937e-17),
    Dd::c(1.255380757024691, -6.7113898212968784e-18),
    Dd::c(1.2690509571917332, 2.667932131342186e-18),
    Dd::c(1.2828700160787783, 1.713594918243561e-17),
    Dd::c(1.2968395546510096, 2.5382502794888315e-17),
    Dd::c(1.3109612115247644, -7.181536135519454e-17),
    Dd::c(1.3252366431597413, -2.8587312100388614e-17),
    Dd::c(1.339667524053303, 8.927282594831732e-17),
    Dd::c(1.3542555469368927, 7.70094837980299e-17),
    Dd::c(1.3690024229745905, 9.593797919118849e-17),
    Dd::c(1.383909881963832, -6.770511658794786e-17),
    Dd::c(1.3989796725383112, -9.614213209051323e-17),
    Dd::c(SQRT2, -9.667293313452913e-17),
    Dd::c(1.42961333839197, -1.2031642489053655e-17),
    Dd::c(1.4451808069770467, -3.0237581349939873e-17),
    Dd::c(1.460917794180647, -5.600377186075216e-17),
    Dd::c(1.4768261459394993, -3.483994556892796e-17),
    Dd::c(1.4929077282912648, 1.4192920154284036e-17),
    Dd::c(1.5091644275934228, -1.016455327754295e-16),
    Dd::c(1.5255981507445384, -1.1024941712342561e-16),
    Dd::c(1.5422108254079407, 7.949834809697621e-17),
    Dd::c(1.559004400237837, 3.7812070533575275e-17),
    Dd::c(1.5759808451078865, -1.0136916471278304e-17),
    Dd::c(1.593142151342267, -1.0094406542311964e-16),
    Dd::c(1.6104903319492543, 2.4707192569797888e-17),
    Dd::c(1.6280274218573478, -6.712955084707084e-17),
    Dd::c(1.645755478153965, -1.0125679913674773e-16),
    Dd::c(1.6636765803267364, 5.8909926967131e-17),
    Dd::c(1.681792830507429, 8.199010020581497e-17),
    Dd::c(1.7001063537185235, -8.0237193703977e-18),
    Dd::c(1.718619298122478, -1.851380418263111e-17),
    Dd::c(1.7373338352737062, 3.164389299292957e-17),
    Dd::c(1.7562521603732995, 2.960140695448873e-17),
    Dd::c(1.7753764925265212, 6.429731796556572e-17),
    Dd::c(1.7947090750031072, 1.8227458427912087e-17),
    Dd::c(1.8142521755003989, -9.969531538920349e-17),
    Dd::c(1.8340080864093424, 3.283107224245627e-17),
    Dd::c(1.8539791250833855, 9.761887490727594e-17),
    Dd::c(1.8741676341103, -6.122763413004143e-17),
    Dd::c(1.8945759815869656, 3.4034035352165297e-17),
    Dd::c(1.9152065613971474, -1.0619946056195963e-16),
    Dd::c(1.9360617934922943, 1.0332385960676326e-16),
    Dd::c(1.9571441241754002, 8.960767791036668e-17),
    Dd::c(1.978456026387951, 4.0388753109278167e-17),
];

/// 2^e for e in [−1022, 1023], from its bits.
#[inline(always)]
fn pow2i(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// a·b + c for the low-order terms: fused where the target has FMA instructions, else two
/// roundings (which those terms tolerate) rather than a library call.
#[inline(always)]
fn fma(a: f64, b: f64, c: f64) -> f64 {
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
    const fn c(hi: f64, lo: f64) -> Dd {
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
    fn fast_two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        Dd { hi: s, lo: b - (s - a) }
    }

    /// `fast_two_sum(s, e)`, or the non-finite `s + e` alone with a zero low part.
    #[inline(always)]
    fn renorm(s: f64, e: f64) -> Dd {
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
    fn div_f64(self, d: f64) -> Dd {
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

    /// The reduction of e^x for x = xh + xl (|xl| ≤ ulp(xh), or xh = 0):
    /// x = (64m + j)·ln2/64 + r with |r| ≤ ln2/128 (1 + 2⁻⁴⁰), absolutely to about 2⁻¹¹⁰;
    /// returns (m, 2^(j/64), e^r − 1). Needs |xh| < 2¹⁷ ln2/64 ≈ 1419.
    #[inline(always)]
    fn exp_parts(xh: f64, xl: Dd) -> (i32, Dd, Dd) {
        let kf = (xh * LOG2E_64 + SHIFTER) - SHIFTER;
        let k = kf as i32;
        // xh − k·L1 is exact (k·L1 has at most 53 bits and is within a factor 2 of xh), and so
        // are the two two-sums; the small rest is summed in f64, to 2⁻¹⁰⁶ of ln2/64 or better.
        let r0 = xh - kf * L1;
        let p = Dd::two_prod(kf, L2.hi);
        let s = Dd::two_sum(r0, -p.hi);
        let t = Dd::two_sum(s.hi, xl.hi);
        let r = Dd::two_sum(t.hi, t.lo + ((s.lo - p.lo) + (xl.lo - kf * L2.lo)));
        (k >> 6, EXP2_TABLE[(k & 63) as usize], Dd::expm1_poly(r))
    }

    /// c + q·h for a double-double c and q and an f64 h, left unnormalised (|lo| of a few ulps
    /// of hi): one step of a Horner scheme in a double variable.
    #[inline(always)]
    fn horner_step(q: Dd, h: f64, c: Dd) -> Dd {
        let p = Dd::two_prod(q.hi, h);
        let s = Dd::two_sum(c.hi, p.hi);
        Dd { hi: s.hi, lo: s.lo + (p.lo + fma(q.lo, h, c.lo)) }
    }

    /// e^r − 1 for |r| ≤ 0.0055, r = h + l: with P(h) = h + h²(1/2 + h(1/6 + … + h(1/720 + h·t)))
    /// (the tail t = Σ_{n=7..11} hⁿ⁻⁷/n! in f64, the rest a Horner scheme in dd with the double
    /// variable h), e^r − 1 = P(h) + l·(1 + P(h)) up to l²/2 < 2⁻¹⁰⁶·r². The truncation is below
    /// 3e−34 relative.
    #[inline(always)]
    fn expm1_poly(r: Dd) -> Dd {
        let h = r.hi;
        let t = INV_FACT[0] + h * (INV_FACT[1] + h * (INV_FACT[2] + h * (INV_FACT[3] + h * INV_FACT[4])));
        let mut q = Dd::horner_step(Dd::new(t), h, INV720);
        q = Dd::horner_step(q, h, INV120);
        q = Dd::horner_step(q, h, INV24);
        q = Dd::horner_step(q, h, INV6);
        q = Dd::horner_step(q, h, Dd::new(0.5));
        let m = Dd::two_prod(h, h).mul(q);
        // h + h²q: |h²q| < |h|/300, so the fast two-sum applies.
        let s = Dd::fast_two_sum(h, m.hi);
        Dd::renorm(s.hi, s.lo + (m.lo + fma(r.lo, s.hi, r.lo)))
    }

    /// d·2^m for d of order 1 and m in [−2040, 2040]: two exact scalings, so that neither
    /// factor leaves the normal range. Below 2⁻⁹⁶⁸, where the low part turns subnormal, the
    /// rounding is repaired so that `to_f64` stays the correctly rounded value.
    #[inline(always)]
    fn scale(d: Dd, m: i32) -> Dd {
        let m1 = m >> 1;
        let (f1, f2) = (pow2i(m1), pow2i(m - m1));
        let (a, b) = (d.hi * f1, d.lo * f1);
        let hi = a * f2;
        if hi.abs() >= 2.0 * pow2i(-969) {
            Dd::renorm(hi, b * f2)
        } else {
            Dd::scale_tiny(a, b, f2)
        }
    }

    /// (a + b)·f2 rounded to a dd whose low part is subnormal or zero (a, b normal and exact,
    /// f2 a power of two, the value below 2⁻⁹⁶⁸; or NaN).
    #[cold]
    fn scale_tiny(a: f64, b: f64, f2: f64) -> Dd {
        let q = f64::from_bits(1); // 2⁻¹⁰⁷⁴, the subnormal quantum
        let hi = a * f2;
        if hi.abs() >= 2.0 * f64::MIN_POSITIVE {
            // hi is exact; lo rounded to the quantum may have reached half an ulp of hi, which
            // would make hi + lo round away from hi: keep it strictly below.
            let mut lo = b * f2;
            let half = 0.5 * (f64::from_bits(hi.abs().to_bits() + 1) - hi.abs());
            if lo.abs() == half && lo / f2 != b {
                lo -= q.copysign(lo);
            }
            return Dd { hi, lo };
        }
        // ulp(hi) is the quantum (hi subnormal or in the lowest binade; or zero, or NaN): no low
        // part fits, and a + b must be rounded once, not a then b. a − hi/f2 (exact)
        // is what rounding a·f2 dropped; with b it decides the nearest multiple of the quantum.
        let rest = (a - hi / f2) + b;
        let half = q / f2 * 0.5;
        let odd = hi.to_bits() & 1 == 1;
        let hi = if rest > half || (rest == half && odd) {
            hi + q
        } else if rest < -half || (rest == -half && odd) {
            hi - q
        } else {
            hi
        };
        Dd::new(hi)
    }

    /// e^(xh + xl) = M·2^m as (M, m), M in [0.99, 2], for xh in (−1400, 709.79): nothing
    /// underflows before the caller scales.
    #[inline(always)]
    fn exp_mant(xh: f64, xl: Dd) -> (Dd, i32) {
        let (m, t, p) = Dd::exp_parts(xh, xl);
        (t.add_sloppy(t.mul(p)), m)
    }

    /// e^(xh + xl) once xh is known to lie in (−1400, 709.79).
    #[inline(always)]
    fn exp_in_range(xh: f64, xl: Dd) -> Dd {
        let (v, m) = Dd::exp_mant(xh, xl);
        Dd::scale(v, m)
    }

    /// e^self. +∞ above ln(f64::MAX), 0 below ln(2⁻¹⁰⁷⁵), NaN for NaN, as f64.
    pub fn exp(self) -> Dd {
        let x = self.hi;
        if !(x > -745.2 && x < 709.79) {
            return Dd::new(if x > 0.0 { f64::INFINITY } else { x.exp() });
        }
        Dd::exp_in_range(x, Dd::new(self.lo))
    }

    /// e^self − 1, accurate relatively near 0 as well (no cancellation).
    pub fn exp_m1(self) -> Dd {
        let x = self.hi;
        if !(x > -40.0 && x < 700.0) {
            // Here e^x − 1 does not cancel (or is NaN, ∞, −1).
            return self.exp().add_f64(-1.0);
        }
        let (m, t, p) = Dd::exp_parts(x, Dd::new(self.lo));
        // 2^m·2^(j/64) is exact and normal for these m; (s − 1) + s·p cancels at most 2:1.
        let s = t.mul_pow2(pow2i(m));
        s.add_f64(-1.0).add(s.mul(p))
    }

    /// ln(1 + u) for u in [1/√2 − 1, √2 − 1] (so that the f64 guess y is at most ln √2): one
    /// Newton step y + (1 + u)e^−y − 1 = y + [(e^−y − 1) + u·e^−y].
    #[inline(always)]
    fn ln1p_core(u: Dd) -> Dd {
        if u.hi == 0.0 {
            return u;
        }
        let y = u.hi.ln_1p();
        let (m, t, p) = Dd::exp_parts(-y, Dd::ZERO);
        let s = t.mul_pow2(pow2i(m));
        let sp = s.mul(p);
        // e^−y − 1 and u·e^−y cancel to a few ulps of y: their high parts subtract exactly
        // (Sterbenz), their low parts carry the rest.
        let em1 = s.add_f64(-1.0).add(sp);
        let b = u.mul(s.add_sloppy(sp));
        let c = (em1.hi + b.hi) + (em1.lo + b.lo);
        let r = Dd::two_sum(y, c);
        Dd::renorm(r.hi, r.lo)
    }

    /// ln self: self = 2^e·f with f in [1/√2, √2], ln self = e·ln2 + ln(1 + (f − 1)).
    /// −∞ at 0, NaN below 0, as f64.
    pub fn ln(self) -> Dd {
        let x = self.hi;
        if !(x > 0.0 && x < f64::INFINITY) {
            return Dd::new(x.ln());
        }
        let (mut v, mut e) = (self, 0i32);
        if x < f64::MIN_POSITIVE {
            v = v.mul_pow2(pow2i(54));
            e = -54;
        }
        let bits = v.hi.to_bits();
        let be = ((bits >> 52) & 0x7ff) as i32 - 1023;
        e += be;
        // The mantissa of hi in [1, 2), and lo scaled alike (exactly: its result is normal).
        let mut f =
            Dd { hi: f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52)), lo: v.lo / pow2i(be) };
        if f.hi > SQRT2 {
            f = f.mul_pow2(0.5);
            e += 1;
        }
        // f − 1 exactly: f.hi − 1 is exact, and so is its two-sum with f.lo.
        let u = Dd::two_sum(f.hi - 1.0, f.lo);
        let l = Dd::ln1p_core(u);
        if e == 0 {
            l
        } else {
            LN2.mul_f64(e as f64).add(l)
        }
    }

    /// ln(1 + self), accurate relatively for tiny self and down to self → −1.
    pub fn ln_1p(self) -> Dd {
        let u = self.hi;
        if u > -0.2928 && u < 0.4142 {
            Dd::ln1p_core(self)
        } else {
            // 1 + self is exact for self ≤ −1/2 and rounds by 2⁻¹⁰⁶ otherwise, which is 2⁻¹⁰⁶ of
            // a logarithm at least ln √2 here.
            Dd::ONE.add(self).ln()
        }
    }

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

/// e^(−s·x²) for s = 1 or ½, as (M, m) with the value M·2^m (M = 0 once s·x² ≥ 1400). x² is
/// taken as h² + (2h·l + l²) exactly from x = h + l, so that the rounding of x² to dd, which
/// would be 1e−29 of e^−x² at x² ≈ 700, is not made.
fn exp_neg_sq(x: Dd, s: f64) -> (Dd, i32) {
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
fn erf_series(x: Dd, (m, e): (Dd, i32)) -> Dd {
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
fn erfc_cf(x: Dd, emx2: (Dd, i32)) -> (Dd, i32) {
    let inv = 1.0 / x.hi;
    erfc_cf_depth(x, emx2, (CF_DEPTH[0] + inv * (CF_DEPTH[1] + CF_DEPTH[2] * inv)) as u32)
}

/// [`erfc_cf`] from depth n.
#[inline(always)]
fn erfc_cf_depth(x: Dd, (m, e): (Dd, i32), n: u32) -> (Dd, i32) {
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
fn erfc_scaled(x: Dd, emx2: (Dd, i32)) -> (Dd, i32) {
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
fn tanh_pair(a: Dd) -> (Dd, Dd) {
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

#[cfg(test)]
#[allow(clippy::approx_constant)] // reference values that happen to be e, ln 2, …
mod tests {
    use super::*;
    use crate::model::splitmix::SplitMix64;

    /// 2⁻¹⁰⁶: one unit of a double-double's last place, relatively.
    const U2: f64 = 1.232595164407831e-32;

    /// Reproducible inputs without a dependency, from [`SplitMix64`].
    struct Rng(SplitMix64);

    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(SplitMix64(seed))
        }
        fn next(&mut self) -> u64 {
            self.0.next()
        }
        /// Uniform in [a, b).
        fn uniform(&mut self, a: f64, b: f64) -> f64 {
            a + (b - a) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
        }
        /// A random normalised dd of magnitude about 2^e, either sign.
        fn dd(&mut self, e: i32) -> Dd {
            let hi = self.uniform(1.0, 2.0) * pow2i(e) * if self.next() & 1 == 1 { -1.0 } else { 1.0 };
            let lo = self.uniform(-0.5, 0.5) * ulp(hi);
            Dd::two_sum(hi, lo)
        }
    }

    fn ulp(x: f64) -> f64 {
        let x = x.abs();
        f64::from_bits(x.to_bits() + 1) - x
    }

    /// Distance in units in the last place between two f64 of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        if a.is_sign_negative() != b.is_sign_negative() {
            return u64::MAX;
        }
        a.to_bits().abs_diff(b.to_bits())
    }

    /// The exact sum of the terms, rounded (Shewchuk's expansion sum: a list of non-overlapping
    /// components grown by two-sums, then added from the smallest).
    fn exact_sum(terms: &[f64]) -> f64 {
        let mut e: Vec<f64> = Vec::new();
        for &x in terms {
            let mut q = x;
            let mut next = Vec::new();
            for &c in &e {
                let s = Dd::two_sum(q, c);
                if s.lo != 0.0 {
                    next.push(s.lo);
                }
                q = s.hi;
            }
            next.push(q);
            e = next;
        }
        e.iter().fold(0.0, |s, &c| s + c)
    }

    /// The exact products of the parts of a and b, as terms for [`exact_sum`].
    fn product_terms(a: Dd, b: Dd, sign: f64) -> Vec<f64> {
        let mut t = Vec::new();
        for x in [a.hi, a.lo] {
            for y in [b.hi, b.lo] {
                let p = Dd::two_prod(x, sign * y);
                t.extend([p.hi, p.lo]);
            }
        }
        t
    }

    fn normalised(x: Dd) -> bool {
        x.hi + x.lo == x.hi && x.lo.abs() <= 0.5 * ulp(x.hi)
    }

    /// |got − want|/|want|, the difference taken in dd (exact enough for close values), with
    /// the absolute floor of a dd whose low part is subnormal.
    fn rel(got: Dd, want: Dd) -> f64 {
        let d = got.sub(want).hi.abs();
        if d <= 1e-320 {
            return 0.0;
        }
        d / want.hi.abs()
    }

    /// A decimal string to dd: digits accumulated exactly while they fit, then scaled by a
    /// power of ten (error about 1e−31).
    fn parse(s: &str) -> Dd {
        if let Some(rest) = s.strip_prefix('-') {
            return parse(rest).neg();
        }
        let (mant, exp) = match s.split_once('e') {
            Some((m, e)) => (m, e.parse::<i32>().unwrap()),
            None => (s, 0),
        };
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let mut acc = Dd::ZERO;
        for c in int.chars().chain(frac.chars()) {
            acc = acc.mul_f64(10.0).add_f64(c.to_digit(10).unwrap() as f64);
        }
        let mut p = exp - frac.len() as i32;
        let (mut base, mut scale) = (Dd::new(10.0), Dd::ONE);
        let neg = p < 0;
        p = p.abs();
        while p > 0 {
            if p & 1 == 1 {
                scale = scale.mul(base);
            }
            base = base.square();
            p >>= 1;
        }
        if neg {
            acc.div(scale)
        } else {
            acc.mul(scale)
        }
    }

    fn eval(f: &str, x: Dd) -> Dd {
        let act = |a| activate(a, x);
        let der = |a| activate_derivative(a, x, activate(a, x));
        match f {
            "exp" => x.exp(),
            "exp_m1" => x.exp_m1(),
            "ln" => x.ln(),
            "ln_1p" => x.ln_1p(),
            "tanh" => x.tanh(),
            "sigmoid" => x.sigmoid(),
            "erf" => x.erf(),
            "erfc" => x.erfc(),
            "sqrt" => x.sqrt(),
            "gelu" => act(Activation::Gelu),
            "gelu'" => der(Activation::Gelu),
            "silu" => act(Activation::Silu),
            "silu'" => der(Activation::Silu),
            "softplus" => act(Activation::Softplus),
            "softplus'" => der(Activation::Softplus),
            "elu" => act(Activation::Elu),
            "elu'" => der(Activation::Elu),
            "tanh'" => der(Activation::Tanh),
            "sigmoid'" => der(Activation::Sigmoid),
            _ => panic!("unknown function {f}"),
        }
    }

    /// (function, x, hi, lo): the value at x rounded to dd, from mpmath at 60 digits.
    const REFERENCE: &[(&str, f64, f64, f64)] = &[
        ("exp", 1.0, 2.718281828459045, 1.4456468917292502e-16),
        ("exp", -1.0, 0.36787944117144233, -1.2428753672788363e-17),
        ("exp", 0.5, 1.6487212707001282, -4.731568479435833e-17),
        ("exp", 1e-10, 1.0000000001, -8.269037096265652e-18),
        ("exp", -1e-300, 1.0, 0.0),
        ("exp", 100.0, 2.6881171418161356e+43, -1.6101271449201627e+27),
        ("exp", -100.0, 3.720075976020836e-44, -1.5705024907732008e-60),
        ("exp", 700.0, 1.0142320547350045e+304, 1.6666571920734673e+287),
        ("exp", -650.0, 5.111951948651156e-283, 2.849121073604364e-299),
        ("exp", 709.7, 1.6549840276802644e+308, -4.1236453850611414e+291),
        ("exp", 2.5e-05, 1.0000250003125026, -2.7942979842197285e-17),
        ("exp", 12.3456, 229946.05110989933, 6.272846393665626e-12),
        ("exp", -0.34657359027997264, 0.7071067811865476, -4.013739792746569e-17),
        ("exp_m1", 1e-300, 1e-300, 0.0),
        ("exp_m1", 1e-20, 1e-20, 5e-41),
        ("exp_m1", -1e-10, -9.999999999500001e-11, 3.38967998878844e-27),
        ("exp_m1", 0.001, 0.0010005001667083417, 2.598544094203749e-20),
        ("exp_m1", -0.3, -0.2591817793182821, -1.805530505953e-18),
        ("exp_m1", 0.7, 1.0137527074704764, 2.146216942738339e-17),
        ("exp_m1", 5.0, 147.4131591025766, 3.4863514900464198e-15),
        ("exp_m1", -30.0, -0.9999999999999064, -1.557128749895031e-17),
        ("exp_m1", 50.0, 5.184705528587072e+21, 419030.45332293346),
        ("exp_m1", 0.0054, 0.005414606279467699, -2.3863395031503387e-19),
        ("exp_m1", -0.0109, -0.010840810251287523, -3.0151287849583596e-19),
        ("ln", 2.0, 0.6931471805599453, 2.3190468138462996e-17),
        ("ln", 10.0, 2.302585092994046, -2.1707562233822494e-16),
        ("ln", 0.5, -0.6931471805599453, -2.3190468138462996e-17),
        ("ln", 1.0000000000000002, 2.2204460492503128e-16, 3.649214750845877e-48),
        ("ln", 0.99, -0.01005033585350145, 4.341832787901688e-19),
        ("ln", 1e-300, -690.7755278982137, -2.3670096176709832e-14),
        ("ln", 1e+300, 690.7755278982137, 2.3747660028800243e-14),
        ("ln", 1.7976931348623157e+308, 709.782712893384, 2.3636017071323592e-14),
        ("ln", 5e-324, -744.4400719213812, -4.422444340918698e-14),
        ("ln", 1.4142135623730951, 0.3465735902799727, 2.4442169414592898e-17),
        ("ln", 0.7071067811865476, -0.3465735902799726, 1.2517012761299022e-18),
        ("ln_1p", 1e-300, 1e-300, 0.0),
        ("ln_1p", 1e-10, 9.999999999500001e-11, -3.389513322121794e-27),
        ("ln_1p", -0.5, -0.6931471805599453, -2.3190468138462996e-17),
        ("ln_1p", -0.999999, -13.815510557935518, -4.739035188150217e-16),
        ("ln_1p", 0.4, 0.33647223662121295, -3.704625908593426e-18),
        ("ln_1p", 1.0, 0.6931471805599453, 2.3190468138462996e-17),
        ("ln_1p", 10000000000.0, 23.025850930040455, 1.3736784183183428e-15),
        ("ln_1p", -1e-17, -1e-17, -5.000000000000001e-35),
        ("ln_1p", 3.0, 1.3862943611198906, 4.638093627692599e-17),
        ("ln_1p", -0.2928, -0.3464417676587034, 1.8550319673500328e-18),
        ("ln_1p", 0.4142, 0.3465640001880034, 1.3829833510171086e-17),
        ("tanh", 1e-300, 1e-300, 0.0),
        ("tanh", 1e-08, 1e-08, -3.3333333333333335e-25),
        ("tanh", 0.5, 0.46211715726000974, 2.1916603238260928e-17),
        ("tanh", -0.5, -0.46211715726000974, -2.1916603238260928e-17),
        ("tanh", 1.0, 0.7615941559557649, 3.7090214482164924e-17),
        ("tanh", 3.0, 0.9950547536867305, -1.2991892863562624e-17),
        ("tanh", 10.0, 0.9999999958776927, 3.693278996616596e-17),
        ("tanh", 20.0, 1.0, -8.496708510583178e-18),
        ("tanh", 30.0, 1.0, -1.751302152539304e-26),
        ("tanh", -25.0, -1.0, 3.8574996959278356e-22),
        ("tanh", 0.0027, 0.002699993439019132, -2.075992838134418e-19),
        ("sigmoid", 1.0, 0.7310585786300049, -1.679727399649845e-17),
        ("sigmoid", -1.0, 0.2689414213699951, 1.679727399649845e-17),
        ("sigmoid", 0.0, 0.5, 0.0),
        ("sigmoid", 0.5, 0.6224593312018546, -2.855738705812305e-17),
        ("sigmoid", -40.0, 4.248354255291589e-18, 1.063261941480036e-34),
        ("sigmoid", 40.0, 1.0, -4.248354255291589e-18),
        ("sigmoid", -650.0, 5.111951948651156e-283, 2.849121073604364e-299),
        ("sigmoid", 36.0, 0.9999999999999998, -9.907678099325577e-18),
        ("sigmoid", 1e-20, 0.5, 2.5e-21),
        ("sigmoid", -745.0, 5e-324, -0.0),
        ("erf", 1.0, 0.8427007929497149, -2.4801011789118602e-17),
        ("erf", 0.5, 0.5204998778130465, 1.900077467916287e-17),
        ("erf", 1e-300, 1.1283791670955126e-300, -1.495728e-317),
        ("erf", 1e-05, 1.1283791670579e-05, -3.369136869444807e-23),
        ("erf", 2.0, 0.9953222650189527, 2.20719858329765e-17),
        ("erf", 2.9, 0.9999589021219005, 1.310480248450443e-17),
        ("erf", 3.1, 0.9999883513426328, 4.7372455611367474e-17),
        ("erf", 5.0, 0.9999999999984626, -2.294992711807301e-17),
        ("erf", -1.5, -0.9661051464753108, 3.3867031441680696e-17),
        ("erf", 6.0, 1.0, -2.1519736712498913e-17),
        ("erf", -0.1, -0.1124629160182849, -9.255497413884101e-19),
        ("erfc", 3.0, 2.209049699858544e-05, 1.5563377960343457e-22),
        ("erfc", 10.0, 2.088487583762545e-45, -1.2006565763501381e-61),
        ("erfc", 0.5, 0.4795001221869535, -1.900077467916287e-17),
        ("erfc", 1.4, 0.0477148802373512, 1.2259250526432118e-18),
        ("erfc", 1.6, 0.023651616655355985, -5.856046120519227e-19),
        ("erfc", 2.0, 0.004677734981047266, -3.8794238326641256e-19),
        ("erfc", 5.0, 1.537459794428035e-12, -8.569418222079096e-29),
        ("erfc", 20.0, 5.395865611607901e-176, -2.4980975484348278e-192),
        ("erfc", 26.0, 5.663192408856143e-296, -3.454309640217e-312),
        ("erfc", -1.0, 1.8427007929497148, 8.622129067339705e-17),
        ("erfc", -3.0, 1.9999779095030015, -5.738833187615296e-17),
        ("erfc", 1e-10, 0.999999999887162, 4.44874363735484e-17),
        ("erfc", 1.5, 0.033894853524689274, -8.274380778554473e-19),
        ("erfc", 1.4999999999999998, 0.0338948535246893, -2.17518460920386e-18),
        ("sqrt", 2.0, 1.4142135623730951, -9.667293313452913e-17),
        ("sqrt", 3.0, 1.7320508075688772, 1.0035084221806903e-16),
        ("sqrt", 1e-300, 1e-150, 6.234187685431415e-168),
        ("sqrt", 5e-324, 2.2227587494850775e-162, 0.0),
        ("sqrt", 1e+300, 1e+150, 4.5416783955164837e+133),
        ("sqrt", 0.25, 0.5, 0.0),
        ("gelu", -10.0, -7.619853024160526e-23, 2.6618709732389316e-39),
        ("gelu", -3.0, -0.0040496940948902835, -6.522383392135303e-20),
        ("gelu", -1.0, -0.15865525393145705, -4.9468552901786335e-18),
        ("gelu", 1.0, 0.8413447460685429, 2.280872032545028e-17),
        ("gelu", 3.0, 2.99595030590511, -8.41993124187965e-17),
        ("gelu", 0.1, 0.053982783727702904, -2.9781433033492098e-18),
        ("gelu", -37.0, -2.1184613523340935e-298, 3.147750213e-315),
        ("gelu", -1e-10, -4.999999999601058e-11, 1.7955049658699908e-27),
        ("gelu'", -10.0, -7.618400096464814e-22, 3.1822803878089744e-38),
        ("gelu'", -3.0, -0.011945647204183927, -7.968197456950205e-20),
        ("gelu'", -1.0, -0.0833154705876863, 6.598759877332857e-18),
        ("gelu'", 1.0, 1.0833154705876864, -1.0374327453203405e-16),
        ("gelu'", 3.0, 1.011945647204184, 3.130470454215203e-17),
        ("gelu'", 0.1, 0.5795230920247302, -1.73928087187187e-17),
        ("gelu'", -37.5, -6.476271143055812e-305, -2.075e-321),
        ("gelu'", -0.5, 0.13250487534383715, 1.0091558400174798e-17),
        ("silu", -40.0, -1.6993417021166355e-16, -4.253047765920143e-33),
        ("silu", -1.0, -0.2689414213699951, -1.679727399649845e-17),
        ("silu", 2.0, 1.7615941559557649, 3.7090214482164924e-17),
        ("silu", -700.0, -6.90177358063184e-302, 3.210404e-318),
        ("silu", 1e-08, 5.000000025e-09, 4.0562102523114325e-25),
        ("silu'", -40.0, -1.6568581595637197e-16, -3.432931056143964e-34),
        ("silu'", -1.0, 0.07232948812851327, 1.4022440580496193e-18),
        ("silu'", 2.0, 1.0907842487848955, -7.052098483469027e-17),
        ("silu'", -700.0, -6.891913904088079e-302, -4.579964e-318),
        ("silu'", 1e-08, 0.500000005, 3.038735487589022e-17),
        ("silu'", 30.0, 1.0000000000027136, 1.0354417432638519e-16),
        ("softplus", -40.0, 4.248354255291589e-18, 1.1535045108723066e-34),
        ("softplus", -3.0, 0.04858735157374206, -2.8911149045062954e-18),
        ("softplus", 1.0, 1.3132616875182228, 2.515869523777819e-17),
        ("softplus", 20.0, 20.000000002061153, 5.942804456825612e-16),
        ("softplus", -700.0, 9.85967654375977e-305, 8.5e-322),
        ("softplus", 0.0, 0.6931471805599453, 2.3190468138462996e-17),
        ("softplus'", -40.0, 4.248354255291589e-18, 1.063261941480036e-34),
        ("softplus'", -3.0, 0.04742587317756678, -1.793305391834216e-19),
        ("softplus'", 1.0, 0.7310585786300049, -1.679727399649845e-17),
        ("softplus'", 20.0, 0.9999999979388464, -3.704475624817485e-17),
        ("elu", -1e-10, -9.999999999500001e-11, 3.38967998878844e-27),
        ("elu", -1.0, -0.6321205588285577, -1.2428753672788363e-17),
        ("elu", -20.0, -0.9999999979388464, 4.1293110494709923e-17),
        ("elu'", -1e-10, 0.9999999999, 8.279037096265651e-18),
        ("elu'", -1.0, 0.36787944117144233, -1.2428753672788363e-17),
        ("elu'", -20.0, 2.061153622438558e-09, -4.19755767595054e-26),
        ("tanh'", 30.0, 3.502604305078608e-26, 1.2052790586886852e-42),
        ("tanh'", 0.5, 0.7864477329659274, 6.0689685225374924e-18),
        ("tanh'", -3.0, 0.00986603716544019, 8.358295633404743e-19),
        ("tanh'", 300.0, 1.0601586212017243e-260, 2.550937126996558e-277),
        ("sigmoid'", 30.0, 9.357622968838423e-14, 3.884443130383061e-30),
        ("sigmoid'", -3.0, 0.04517665973091213, 2.2633220558509066e-18),
        ("sigmoid'", 0.5, 0.2350037122015945, -5.521447933028129e-18),
        ("sigmoid'", -700.0, 9.85967654375977e-305, 8.5e-322),
    ];

    #[test]
    fn matches_mpmath_reference_values() {
        let mut worst = 0.0f64;
        for &(f, x, hi, lo) in REFERENCE {
            let got = eval(f, Dd::new(x));
            let want = Dd { hi, lo };
            let r = rel(got, want);
            // erfc = 1 − erf just below the switch to the fraction loses 5 of the series' bits.
            let tol = if f == "erfc" && x > 1.0 && x < ERFC_CF { 3e-30 } else { 1e-30 };
            assert!(r <= tol, "{f}({x:e}) = {got:?}, want {want:?}: relative error {r:e}");
            assert!(normalised(got), "{f}({x:e}) = {got:?} is not normalised");
            worst = worst.max(r);
        }
        eprintln!("worst relative error against mpmath: {worst:e}");
    }

    #[test]
    fn known_digits() {
        let cases: [(&str, Dd, &str); 9] = [
            ("e", Dd::ONE.exp(), "2.71828182845904523536028747135266249775724709369995957496697"),
            ("ln 2", Dd::new(2.0).ln(), "0.693147180559945309417232121458176568075500134360255254120680"),
            ("erf(1)", Dd::ONE.erf(), "0.842700792949714869341220635082609259296066997966302908459937897"),
            ("erfc(3)", Dd::new(3.0).erfc(), "2.20904969985854413727761295823203798477e-5"),
            (
                "tanh(0.5)",
                Dd::new(0.5).tanh(),
                "0.462117157260009758502318483643672548730289280330113038552731",
            ),
            (
                "sigmoid(1)",
                Dd::ONE.sigmoid(),
                "0.731058578630004879251159241821836274365144640165056519276365",
            ),
            ("erfc(10)", Dd::new(10.0).erfc(), "2.08848758376254475700078629495778861156e-45"),
            ("sqrt 2", Dd::new(2.0).sqrt(), "1.41421356237309504880168872420969807856967187537694807317668"),
            ("ln 10", Dd::new(10.0).ln(), "2.30258509299404568401799145468436420760110148862877297603333"),
        ];
        for (name, got, digits) in cases {
            let want = parse(digits);
            assert!(rel(got, want) <= 1e-29, "{name}: {got:?} vs {want:?}");
        }
        // The two given as dd literals.
        assert_eq!(Dd::ONE.exp(), Dd { hi: 2.718281828459045, lo: 1.4456468917292502e-16 });
        assert_eq!(Dd::new(2.0).ln(), Dd { hi: 0.6931471805599453, lo: 2.3190468138462996e-17 });
    }

    #[test]
    fn arithmetic_errors_are_a_few_units_of_2_pow_minus_106() {
        let mut rng = Rng::new(1);
        let mut worst = [0.0f64; 7];
        for i in 0..100_000 {
            let (ea, eb) = ((rng.next() % 400) as i32 - 200, (rng.next() % 400) as i32 - 200);
            let (a, mut b) = (rng.dd(ea), rng.dd(eb));
            if i % 4 == 0 {
                // Cancelling sums: b within a few ulps of −a.
                let e = ea - 40 - (rng.next() % 70) as i32;
                b = a.neg().add(rng.dd(e));
            }
            let checks = [
                (a.add(b), exact_sum(&[a.hi, a.lo, b.hi, b.lo])),
                (a.sub(b), exact_sum(&[a.hi, a.lo, -b.hi, -b.lo])),
                (a.add_f64(b.hi), exact_sum(&[a.hi, a.lo, b.hi])),
            ];
            for (k, (got, _)) in checks.iter().enumerate() {
                let exact =
                    [vec![a.hi, a.lo, b.hi, b.lo], vec![a.hi, a.lo, -b.hi, -b.lo], vec![a.hi, a.lo, b.hi]];
                let mut t = exact[k].clone();
                t.extend([-got.hi, -got.lo]);
                let err = exact_sum(&t).abs() / got.hi.abs().max(f64::MIN_POSITIVE);
                assert!(normalised(*got), "{k}: {a:?} {b:?} -> {got:?}");
                worst[k] = worst[k].max(err / U2);
            }
            let p = a.mul(b);
            let mut t = product_terms(a, b, 1.0);
            t.extend([-p.hi, -p.lo]);
            worst[3] = worst[3].max(exact_sum(&t).abs() / p.hi.abs() / U2);
            let pf = a.mul_f64(b.hi);
            let mut t = product_terms(a, Dd::new(b.hi), 1.0);
            t.extend([-pf.hi, -pf.lo]);
            worst[4] = worst[4].max(exact_sum(&t).abs() / pf.hi.abs() / U2);
            // a/b: |a − q·b|/|a|.
            let q = a.div(b);
            let mut t = product_terms(q, b, -1.0);
            t.extend([a.hi, a.lo]);
            worst[5] = worst[5].max(exact_sum(&t).abs() / a.hi.abs() / U2);
            // √|a|: |a − s²|/(2|a|).
            let x = a.abs();
            let s = x.sqrt();
            let mut t = product_terms(s, s, -1.0);
            t.extend([x.hi, x.lo]);
            worst[6] = worst[6].max(exact_sum(&t).abs() / (2.0 * x.hi) / U2);
            for v in [p, pf, q, s] {
                assert!(normalised(v), "{a:?} {b:?} -> {v:?}");
            }
        }
        eprintln!("worst errors in units of 2^-106 (add, sub, add_f64, mul, mul_f64, div, sqrt): {worst:?}");
        let bounds = [3.0, 3.0, 2.0, 6.0, 3.0, 6.0, 3.0];
        for (w, b) in worst.iter().zip(bounds) {
            assert!(*w <= b, "{worst:?} exceeds {bounds:?}");
        }
    }

    #[test]
    fn identities_hold_to_the_last_bits() {
        let mut rng = Rng::new(2);
        for _ in 0..20_000 {
            // e^x·e^−x = 1, above 2⁻⁹⁶⁸ where a dd is still 106 bits.
            let x = Dd::new(rng.uniform(-650.0, 650.0));
            let one = x.exp().mul(x.neg().exp());
            assert!(one.sub(Dd::ONE).hi.abs() <= 1e-30, "exp({x:?})·exp(−x) = {one:?}");
            // ln e^x = x (the error of e^x is relative, so absolute in the logarithm).
            let back = x.exp().ln();
            assert!(back.sub(x).hi.abs() <= 1e-31 * x.hi.abs().max(1.0), "ln exp {x:?} = {back:?}");
            // expm1(ln1p(u)) = u, also for tiny u and u near −1.
            let u = match rng.next() % 3 {
                0 => Dd::new(rng.uniform(-1.0, 10.0)),
                1 => Dd::new(rng.uniform(-1.0, 1.0) * pow2i(-((rng.next() % 1000) as i32))),
                _ => Dd::new(-1.0 + pow2i(-((rng.next() % 53) as i32)) * rng.uniform(0.5, 1.0)),
            };
            let l = u.ln_1p();
            let back = l.exp_m1();
            assert!(rel(back, u) <= 4e-31 * (1.0 + l.hi.abs()), "expm1 ln1p {u:?} = {back:?}");
            // erf + erfc = 1.
            let y = Dd::new(rng.uniform(-6.0, 6.0));
            let s = y.erf().add(y.erfc());
            assert!(s.sub(Dd::ONE).hi.abs() <= 1e-30, "erf + erfc at {y:?} = {s:?}");
            // σ(x) + σ(−x) = 1.
            let z = Dd::new(rng.uniform(-80.0, 80.0));
            let s = z.sigmoid().add(z.neg().sigmoid());
            assert!(s.sub(Dd::ONE).hi.abs() <= 1e-30, "σ(x) + σ(−x) at {z:?} = {s:?}");
            // σ(x) = 1/(1 + e^−x), computed here the plain way.
            let w = Dd::new(rng.uniform(-650.0, 40.0));
            let plain = Dd::ONE.div(Dd::ONE.add(w.neg().exp()));
            assert!(rel(w.sigmoid(), plain) <= 1e-30, "σ({w:?})");
            // tanh x = expm1(2x)/(expm1(2x) + 2), and = (1 − e^−2x)/(1 + e^−2x) for x ≥ 0.
            let v = Dd::new(rng.uniform(-30.0, 30.0));
            let e = v.mul_pow2(2.0).exp_m1();
            assert!(rel(v.tanh(), e.div(e.add_f64(2.0))) <= 1e-30, "tanh {v:?}");
            let a = v.abs();
            let t = a.mul_pow2(-2.0).exp();
            let other = Dd::ONE.sub(t).div(Dd::ONE.add(t));
            assert!(rel(a.tanh(), other) <= 1e-30 / a.hi.min(1.0), "tanh {a:?}");
            // √x² = |x|.
            let e = (rng.next() % 960) as i32 - 470;
            let r = rng.dd(e);
            assert!(rel(r.square().sqrt(), r.abs()) <= 1e-31, "√({r:?})²");
        }
        // ln 2^k = k ln 2, exactly enough.
        for k in -1074..1024 {
            let x = Dd::new(pow2i(k.max(-1022)) * if k < -1022 { pow2i(k + 1022) } else { 1.0 });
            let want = LN2.mul_f64(k as f64);
            assert!(rel(x.ln(), want) <= 1e-31, "ln 2^{k}");
        }
    }

    #[test]
    fn erf_series_and_continued_fraction_agree_at_the_crossovers() {
        let mut worst = 0.0f64;
        for i in 0..=400 {
            // Around erfc's switch at 1.5 and erf's at 3; and beyond, down to the series' limit.
            for x in [ERFC_CF - 0.1 + 0.0005 * i as f64, ERF_CF - 0.1 + 0.0005 * i as f64] {
                let x = Dd::new(x);
                let e = exp_neg_sq(x, 1.0);
                let series = erf_series(x, e);
                let (m, s) = erfc_cf(x, e);
                let cf = Dd::scale(m, s);
                assert!(rel(series, Dd::ONE.sub(cf)) <= 2e-31, "erf({x:?}): {series:?} vs {cf:?}");
                if x.hi < 2.0 {
                    // 1 − series loses log₂(1/erfc) bits: 5 here.
                    let r = rel(Dd::ONE.sub(series), cf);
                    assert!(r <= 1e-29, "erfc({x:?}): 1 − series {:?}, fraction {cf:?}", Dd::ONE.sub(series));
                    worst = worst.max(r);
                }
            }
        }
        eprintln!("worst relative difference of erfc by the series and by the fraction: {worst:e}");
    }

    #[test]
    fn continued_fraction_depth_suffices() {
        // Forty more steps change nothing beyond rounding, anywhere the fraction is used.
        let mut x = ERFC_CF;
        while x < ERFC_ZERO {
            let d = Dd::new(x);
            let e = exp_neg_sq(d, 1.0);
            let inv = 1.0 / x;
            let n = (CF_DEPTH[0] + inv * (CF_DEPTH[1] + CF_DEPTH[2] * inv)) as u32;
            let (a, _) = erfc_cf_depth(d, e, n);
            let (b, _) = erfc_cf_depth(d, e, n + 40);
            assert!(rel(a, b) <= 1e-31, "depth {n} at {x}: {a:?} vs {b:?}");
            x += 0.01;
        }
    }

    #[test]
    fn rounds_to_within_an_ulp_of_libm() {
        let n = 20_000;
        let grid = |a: f64, b: f64| (0..=n).map(move |i| a + (b - a) * i as f64 / n as f64);
        let logs =
            |a: f64, b: f64| (0..=n).map(move |i| (a.ln() + (b.ln() - a.ln()) * i as f64 / n as f64).exp());
        type Check = (&'static str, fn(Dd) -> Dd, fn(f64) -> f64, u64);
        let checks: [Check; 8] = [
            ("exp", Dd::exp, f64::exp, 1),
            ("exp_m1", Dd::exp_m1, f64::exp_m1, 1),
            ("ln", Dd::ln, f64::ln, 1),
            ("ln_1p", Dd::ln_1p, f64::ln_1p, 1),
            // glibc's tanh is off by up to 1.7 ulps (e.g. at −0.35000000000002274).
            ("tanh", Dd::tanh, f64::tanh, 2),
            ("erf", Dd::erf, libm::erf, 1),
            // libm's erfc is off by up to 2 ulps (e.g. at 1.1574: 0.1016700132019914 for
            // 0.10167001320199137|78).
            ("erfc", Dd::erfc, libm::erfc, 2),
            (
                "sigmoid",
                Dd::sigmoid,
                |x| if x < 0.0 { x.exp() / (1.0 + x.exp()) } else { 1.0 / (1.0 + (-x).exp()) },
                2,
            ),
        ];
        for (name, f, g, tol) in checks {
            let xs: Vec<f64> = match name {
                "ln" => logs(1e-300, 1e300).collect(),
                "ln_1p" => logs(1e-300, 1e300).chain(grid(-0.999999, 1.0)).collect(),
                "erf" | "erfc" => grid(-6.0, 6.0).chain(grid(6.0, 26.5)).collect(),
                "exp" | "sigmoid" => grid(-745.2, 709.7).chain(grid(-2.0, 2.0)).collect(),
                _ => grid(-700.0, 700.0).chain(grid(-2.0, 2.0)).chain(logs(1e-300, 1.0)).collect(),
            };
            for x in xs {
                let want = g(x);
                if want.is_infinite() {
                    continue;
                }
                let got = f(Dd::new(x));
                assert!(ulps(got.to_f64(), want) <= tol, "{name}({x:e}) = {got:?}, libm {want:e}");
                assert_eq!(got.to_f64(), got.hi, "{name}({x:e}) not normalised");
            }
        }
    }

    #[test]
    fn non_finite_and_extreme_arguments_behave_like_f64() {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        let d = Dd::new;
        assert_eq!(d(1000.0).exp(), d(inf));
        assert_eq!(d(-1000.0).exp(), Dd::ZERO);
        assert_eq!(d(inf).exp(), d(inf));
        assert_eq!(d(-inf).exp(), Dd::ZERO);
        assert!(d(nan).exp().hi.is_nan());
        assert!(d(709.78).exp().is_finite() && d(709.79).exp() == d(inf));
        assert_eq!(d(inf).exp_m1(), d(inf));
        assert_eq!(d(-inf).exp_m1(), d(-1.0));
        assert_eq!(d(-800.0).exp_m1(), d(-1.0));
        assert!(d(nan).exp_m1().is_nan());
        assert_eq!(d(0.0).ln(), d(-inf));
        assert!(d(-1.0).ln().is_nan() && d(nan).ln().is_nan());
        assert_eq!(d(inf).ln(), d(inf));
        assert_eq!(d(-1.0).ln_1p(), d(-inf));
        assert!(d(-2.0).ln_1p().is_nan());
        assert_eq!(d(inf).ln_1p(), d(inf));
        assert_eq!(d(inf).tanh(), Dd::ONE);
        assert_eq!(d(-inf).tanh(), d(-1.0));
        assert_eq!(d(40.0).tanh(), Dd::ONE);
        assert!(d(nan).tanh().is_nan());
        assert_eq!(d(inf).sigmoid(), Dd::ONE);
        assert_eq!(d(-inf).sigmoid(), Dd::ZERO);
        assert!(d(nan).sigmoid().is_nan());
        assert_eq!((d(inf).erf(), d(-inf).erf()), (Dd::ONE, d(-1.0)));
        assert_eq!((d(inf).erfc(), d(-inf).erfc()), (Dd::ZERO, d(2.0)));
        assert!(d(nan).erf().is_nan() && d(nan).erfc().is_nan());
        assert_eq!(d(-0.0).sqrt().hi.to_bits(), (-0.0f64).to_bits());
        assert!(d(-1.0).sqrt().is_nan());
        assert_eq!(d(inf).sqrt(), d(inf));
        assert_eq!(d(inf).add(Dd::ONE), d(inf));
        assert_eq!(d(f64::MAX).add(d(f64::MAX)), d(inf));
        assert_eq!(d(f64::MAX).mul_f64(2.0), d(inf));
        assert_eq!(d(f64::MAX).mul(d(f64::MAX)), d(inf));
        assert_eq!(Dd::ONE.div(Dd::ZERO), d(inf));
        assert_eq!(Dd::ONE.div(d(inf)), Dd::ZERO);
        assert!(Dd::ZERO.div(Dd::ZERO).is_nan() && d(inf).sub(d(inf)).is_nan());
        assert!(d(nan) != d(nan) && d(nan).partial_cmp(&Dd::ONE).is_none());
        // Never NaN from a finite argument where f64 gives a number.
        let mut xs = vec![0.0, -0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, 1e-300, 1e300, 0.5, 745.2, 1400.0];
        xs.extend(xs.clone().iter().map(|x| -x));
        for x in xs {
            let x = d(x);
            for (name, v) in [
                ("exp", x.exp()),
                ("exp_m1", x.exp_m1()),
                ("tanh", x.tanh()),
                ("sigmoid", x.sigmoid()),
                ("erf", x.erf()),
                ("erfc", x.erfc()),
                ("square", x.square()),
            ] {
                assert!(!v.is_nan() && !v.lo.is_nan(), "{name}({x:?}) = {v:?}");
            }
            if x.hi >= 0.0 {
                assert!(!x.ln().lo.is_nan() && !x.sqrt().is_nan() && !x.ln_1p().is_nan(), "{x:?}");
            }
            for a in Activation::ALL {
                let z = activate(a, x);
                let g = activate_derivative(a, x, z);
                assert!(!z.is_nan() && !g.is_nan() && !z.lo.is_nan() && !g.lo.is_nan(), "{a:?} at {x:?}");
            }
        }
    }

    #[test]
    fn operators_and_order() {
        let (a, b) = (Dd::new(3.0), Dd::two_sum(1.0, 1e-20));
        assert_eq!(a + b, a.add(b));
        assert_eq!(a - b, a.sub(b));
        assert_eq!(a * b, a.mul(b));
        assert_eq!(a / b, a.div(b));
        assert_eq!(-b, b.neg());
        let mut c = a;
        c += b;
        c -= b;
        c *= b;
        c /= b;
        assert!(rel(c, a) < 1e-31);
        assert!(b > Dd::ONE && b.neg() < Dd::ZERO && Dd::from(2.0) == Dd::new(2.0));
        assert_eq!(Dd::ONE.partial_cmp(&b), Some(Ordering::Less));
        assert!(Dd::two_sum(1.0, -1e-20) < Dd::ONE);
        assert_eq!(
            Dd::two_prod(1.0 + f64::EPSILON, 1.0 - f64::EPSILON),
            Dd { hi: 1.0, lo: -f64::EPSILON * f64::EPSILON }
        );
        assert_eq!(b.neg().abs(), b);
        assert_eq!((b.neg().signum(), b.to_f64()), (Dd::new(-1.0), 1.0));
    }

    /// φ'(a) against a central difference of φ in dd, away from the kinks.
    #[test]
    fn derivatives_match_central_differences() {
        let mut rng = Rng::new(3);
        let h = 1e-12;
        for act in Activation::ALL {
            for i in 0..3000 {
                let a = match i % 3 {
                    0 => rng.uniform(-40.0, 40.0),
                    1 => rng.uniform(-4.0, 4.0),
                    _ => rng.uniform(-1.0, 1.0) * pow2i(-((rng.next() % 30) as i32)),
                };
                let kink = match act {
                    Activation::Relu | Activation::LeakyRelu | Activation::Elu => Some(0.0),
                    Activation::Softplus => Some(SOFTPLUS_THRESHOLD),
                    _ => None,
                };
                if kink.is_some_and(|k| (a - k).abs() < 1e-10) {
                    continue;
                }
                let x = Dd::new(a);
                let (up, down) = (activate(act, x.add_f64(h)), activate(act, x.add_f64(-h)));
                let fd = up.sub(down).div(Dd::new(h).mul_pow2(2.0));
                let d = activate_derivative(act, x, activate(act, x));
                let scale = d.hi.abs().max(1e-300);
                // Truncation h²φ'''/6 and rounding 1e−32/h: far below 1e−12 of φ' or of the terms.
                let tol = 1e-12 * scale + 1e-19;
                assert!(fd.sub(d).hi.abs() <= tol, "{act:?}'({a}) = {d:?}, difference quotient {fd:?}");
            }
        }
    }

    #[test]
    fn activate_pair_is_activate_and_activate_derivative() {
        let mut rng = Rng::new(5);
        for act in Activation::ALL {
            for i in 0..2000 {
                let a = match i % 3 {
                    0 => rng.uniform(-60.0, 60.0),
                    1 => rng.uniform(-3.0, 3.0),
                    _ => rng.uniform(-800.0, 800.0),
                };
                let x = Dd::two_sum(a, rng.uniform(-0.5, 0.5) * ulp(a));
                let z = activate(act, x);
                let (pz, pd) = activate_pair(act, x);
                assert_eq!((pz, pd), (z, activate_derivative(act, x, z)), "{act:?} at {x:?}");
            }
        }
    }

    #[test]
    fn activations_in_saturated_and_negative_regimes() {
        let d = Dd::new;
        let val = |a: Activation, x: f64| activate(a, d(x));
        let der = |a: Activation, x: f64| activate_derivative(a, d(x), activate(a, d(x)));
        // Relative accuracy where φ or φ' is tiny (see also the mpmath table).
        let tanh30 = parse("3.50260430507860813539549305895448182484684593e-26");
        assert!(rel(der(Activation::Tanh, 30.0), tanh30) <= 1e-29, "tanh'(30) = 4e^-60/(1 + e^-60)^2");
        let e40 = d(-40.0).exp();
        assert!(rel(val(Activation::Softplus, -40.0), e40.ln_1p()) <= 1e-31);
        assert!(rel(val(Activation::Silu, -40.0), d(-40.0).mul(e40).div(e40.add_f64(1.0))) <= 1e-30);
        let gelu10 = parse("-7.619853024160526065973343251599308363504e-23");
        assert!(rel(val(Activation::Gelu, -10.0), gelu10) <= 1e-29, "{:?}", val(Activation::Gelu, -10.0));
        let elu = parse("-9.99999999950000036433863978521146847797934661e-11");
        assert!(rel(val(Activation::Elu, -1e-10), elu) <= 1e-30);
        // The crate's branches and one-sided choices.
        let z0 = Dd::ZERO;
        assert_eq!(activate_derivative(Activation::Relu, z0, z0), Dd::ZERO);
        assert_eq!(activate_derivative(Activation::LeakyRelu, z0, z0), d(LEAKY_RELU_SLOPE));
        assert_eq!(activate_derivative(Activation::Elu, z0, z0), Dd::ONE);
        assert_eq!(val(Activation::Relu, -2.0), Dd::ZERO);
        assert!(val(Activation::Relu, f64::NAN).is_nan());
        assert_eq!(val(Activation::LeakyRelu, -2.0), d(-2.0).mul_f64(LEAKY_RELU_SLOPE));
        let above = 20.000000000000004;
        assert_eq!((val(Activation::Softplus, above), der(Activation::Softplus, above)), (d(above), Dd::ONE));
        assert_eq!(der(Activation::Softplus, 20.0), d(20.0).sigmoid());
        assert!(rel(val(Activation::Softplus, 20.0), d(20.0).exp().ln_1p()) == 0.0);
        assert_eq!(val(Activation::Identity, 1.5), d(1.5));
        assert_eq!(der(Activation::Identity, 1.5), Dd::ONE);
        // Saturated derivatives stay relative: σ'(±700), tanh'(300), silu'(−700).
        for x in [-700.0, 700.0] {
            let want = d(-700.0).exp().div(d(-700.0).exp().add_f64(1.0).square());
            assert!(rel(der(Activation::Sigmoid, x), want) <= 1e-30);
        }
        assert!(der(Activation::Tanh, 400.0) == Dd::ZERO && der(Activation::Sigmoid, -800.0) == Dd::ZERO);
    }

    /// Rough ns/call in a release build: `cargo test --release -- --ignored --nocapture timing`.
    #[test]
    #[ignore]
    fn timing() {
        let mut rng = Rng::new(4);
        let xs: Vec<Dd> = (0..200_000).map(|_| Dd::new(rng.uniform(-3.0, 3.0))).collect();
        let time = |name: &str, f: &dyn Fn(Dd) -> Dd| {
            let t = std::time::Instant::now();
            let s = xs.iter().fold(0.0, |s, &x| s + f(std::hint::black_box(x)).hi);
            let ns = t.elapsed().as_secs_f64() * 1e9 / xs.len() as f64;
            eprintln!("{name:12} {ns:7.1} ns/call ({s:.3})");
        };
        time("mul", &|x| x.mul(x));
        time("div", &|x| Dd::ONE.div(x));
        time("exp", &Dd::exp);
        time("exp_m1", &Dd::exp_m1);
        time("ln", &|x| x.abs().ln());
        time("tanh", &Dd::tanh);
        time("sigmoid", &Dd::sigmoid);
        time("erf", &Dd::erf);
        time("erfc", &Dd::erfc);
        for a in Activation::ALL {
            time(&format!("{a:?}"), &|x| activate(a, x));
            time(&format!("{a:?}'"), &|x| activate_derivative(a, x, x));
        }
    }
}
