//! Double-double arithmetic: a number as hi + lo with |lo| ≤ ½ ulp(hi), about 106 bits. It is the
//! arithmetic of the witness of an f64 run ([`crate::harness::witness`]): the whole step
//! recomputed far more precisely than either side computes it, so that each side's distance from
//! the exact step can be measured.
//!
//! The building blocks are exact transformations: Knuth's two-sum (a + b = s + e exactly) and the
//! FMA two-product (a·b = p + e exactly, e = fma(a, b, −p)). Sums and products of double-double
//! numbers follow the accurate algorithms of Joldes, Muller and Popescu ("Tight and rigorous
//! error bounds for basic building blocks of double-word arithmetic", 2017): relative errors of
//! a few units of 2⁻¹⁰⁶. The elementary functions reduce their argument exactly, then sum short
//! series in double-double:
//!
//! - e^x: x = k ln 2 + r, e^r = (1 + expm1(r/2⁸))^(2⁸) with expm1 by its Taylor series;
//! - ln x: one Newton step y + x e^−y − 1 from f64's ln (which doubles the correct bits);
//! - erf by the series of positive terms (2/√π) e^−x² Σ 2ⁿ x^(2n+1)/(1·3·…·(2n+1)) for |x| < 3,
//!   erfc by its continued fraction above: neither cancels.
//!
//! Measured against mpmath at 50 digits in this module's tests: within 1e−30 relative.

use crate::model::activation::{Activation, LEAKY_RELU_SLOPE, SOFTPLUS_THRESHOLD};
use std::cmp::Ordering;

/// hi + lo, |lo| ≤ ½ ulp(hi): about 106 bits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dd {
    /// The high part, the value rounded to f64.
    pub hi: f64,
    /// The low part.
    pub lo: f64,
}

const LN2: Dd = Dd { hi: 0.6931471805599453, lo: 2.3190468138462996e-17 };
const TWO_OVER_SQRT_PI: Dd = Dd { hi: 1.1283791670955126, lo: 1.533545961316588e-17 };
const ONE_OVER_SQRT_PI: Dd = Dd { hi: 0.5641895835477563, lo: 7.66772980658294e-18 };
const FRAC_1_SQRT_2: Dd = Dd { hi: 0.7071067811865476, lo: -4.833646656726457e-17 };
const FRAC_1_SQRT_2PI: Dd = Dd { hi: 0.3989422804014327, lo: -2.49232720227773e-17 };

/// 1/k! for k = 0..27, each rounded to double-double (from mpmath at 60 digits).
const INV_FACT: [Dd; 28] = [
    Dd { hi: 1.0, lo: 0.0 },
    Dd { hi: 1.0, lo: 0.0 },
    Dd { hi: 0.5, lo: 0.0 },
    Dd { hi: 0.16666666666666666, lo: 9.25185853854297e-18 },
    Dd { hi: 0.041666666666666664, lo: 2.3129646346357427e-18 },
    Dd { hi: 0.008333333333333333, lo: 1.1564823173178714e-19 },
    Dd { hi: 0.001388888888888889, lo: -5.300543954373577e-20 },
    Dd { hi: 0.0001984126984126984, lo: 1.7209558293420705e-22 },
    Dd { hi: 2.48015873015873e-05, lo: 2.1511947866775882e-23 },
    Dd { hi: 2.7557319223985893e-06, lo: -1.858393274046472e-22 },
    Dd { hi: 2.755731922398589e-07, lo: 2.3767714622250297e-23 },
    Dd { hi: 2.505210838544172e-08, lo: -1.448814070935912e-24 },
    Dd { hi: 2.08767569878681e-09, lo: -1.20734505911326e-25 },
    Dd { hi: 1.6059043836821613e-10, lo: 1.2585294588752098e-26 },
    Dd { hi: 1.1470745597729725e-11, lo: 2.0655512752830745e-28 },
    Dd { hi: 7.647163731819816e-13, lo: 7.03872877733453e-30 },
    Dd { hi: 4.779477332387385e-14, lo: 4.399205485834081e-31 },
    Dd { hi: 2.8114572543455206e-15, lo: 1.6508842730861433e-31 },
    Dd { hi: 1.5619206968586225e-16, lo: 1.1910679660273754e-32 },
    Dd { hi: 8.22063524662433e-18, lo: 2.2141894119604265e-34 },
    Dd { hi: 4.110317623312165e-19, lo: 1.4412973378659527e-36 },
    Dd { hi: 1.9572941063391263e-20, lo: -1.3643503830087908e-36 },
    Dd { hi: 8.896791392450574e-22, lo: -7.911402614872376e-38 },
    Dd { hi: 3.868170170630684e-23, lo: -8.843177655482344e-40 },
    Dd { hi: 1.6117375710961184e-24, lo: -3.6846573564509766e-41 },
    Dd { hi: 6.446950284384474e-26, lo: -1.9330404233703465e-42 },
    Dd { hi: 2.4795962632247976e-27, lo: -1.2953730964765229e-43 },
    Dd { hi: 9.183689863795546e-29, lo: 1.4303150396787322e-45 },
];

/// Veltkamp's split: a = hi + lo exactly, each with at most 26 significant bits (|a| < 2⁹⁹⁶).
#[inline(always)]
fn veltkamp(a: f64) -> (f64, f64) {
    let c = 134_217_729.0 * a;
    let hi = c - (c - a);
    (hi, a - hi)
}

/// 2^e over the whole exponent range.
fn pow2(e: i32) -> f64 {
    2f64.powi(e / 2) * 2f64.powi(e - e / 2)
}

impl Dd {
    /// 0.
    pub const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };
    /// 1.
    pub const ONE: Dd = Dd { hi: 1.0, lo: 0.0 };

    /// `hi` exactly.
    pub const fn new(hi: f64) -> Dd {
        Dd { hi, lo: 0.0 }
    }

    /// a + b exactly (Knuth's two-sum).
    #[inline(always)]
    pub fn two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        let bb = s - a;
        Dd { hi: s, lo: (a - (s - bb)) + (b - bb) }
    }

    /// a + b exactly, for |a| ≥ |b| (or a = 0).
    #[inline(always)]
    fn fast_two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        Dd { hi: s, lo: b - (s - a) }
    }

    /// a·b exactly (Dekker's two-product; the same bits on every machine, with or without FMA,
    /// and no call into a software fma where the build does not assume the instruction). Beyond
    /// 2⁹⁹⁶ (where the split would overflow) the product's rounding error is dropped.
    #[inline(always)]
    pub fn two_prod(a: f64, b: f64) -> Dd {
        let p = a * b;
        if a.abs() > 1e299 || b.abs() > 1e299 {
            return Dd { hi: p, lo: 0.0 };
        }
        let (ah, al) = veltkamp(a);
        let (bh, bl) = veltkamp(b);
        Dd { hi: p, lo: ((ah * bh - p) + ah * bl + al * bh) + al * bl }
    }

    /// The value rounded to f64.
    pub fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    /// Whether the value is finite.
    pub fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    /// A non-finite value (or one that left the range) as f64 arithmetic gives it.
    #[inline(always)]
    fn special(hi: f64) -> Dd {
        Dd { hi, lo: 0.0 }
    }

    /// self + o.
    #[inline(always)]
    pub fn add(self, o: Dd) -> Dd {
        let s = Dd::two_sum(self.hi, o.hi);
        if !s.hi.is_finite() {
            return Dd::special(s.hi);
        }
        let t = Dd::two_sum(self.lo, o.lo);
        let s = Dd::fast_two_sum(s.hi, s.lo + t.hi);
        Dd::fast_two_sum(s.hi, s.lo + t.lo)
    }

    /// self + o with one two-sum instead of two: within about 2⁻¹⁰⁵ of |self| + |o| (not of
    /// |self + o|), which is what a long dot product's accumulation needs, at half the cost.
    #[inline(always)]
    pub fn add_sloppy(self, o: Dd) -> Dd {
        let s = Dd::two_sum(self.hi, o.hi);
        if !s.hi.is_finite() {
            return Dd::special(s.hi);
        }
        Dd::fast_two_sum(s.hi, s.lo + (self.lo + o.lo))
    }

    /// self + b.
    #[inline(always)]
    pub fn add_f64(self, b: f64) -> Dd {
        let s = Dd::two_sum(self.hi, b);
        if !s.hi.is_finite() {
            return Dd::special(s.hi);
        }
        Dd::fast_two_sum(s.hi, s.lo + self.lo)
    }

    /// −self.
    #[inline(always)]
    pub fn neg(self) -> Dd {
        Dd { hi: -self.hi, lo: -self.lo }
    }

    /// self − o.
    #[inline(always)]
    pub fn sub(self, o: Dd) -> Dd {
        self.add(o.neg())
    }

    /// self · o.
    #[inline(always)]
    pub fn mul(self, o: Dd) -> Dd {
        let p = Dd::two_prod(self.hi, o.hi);
        if !p.hi.is_finite() {
            return Dd::special(p.hi);
        }
        let lo = self.hi * o.lo + self.lo * o.hi;
        Dd::fast_two_sum(p.hi, p.lo + lo)
    }

    /// self · b.
    #[inline(always)]
    pub fn mul_f64(self, b: f64) -> Dd {
        let p = Dd::two_prod(self.hi, b);
        if !p.hi.is_finite() {
            return Dd::special(p.hi);
        }
        Dd::fast_two_sum(p.hi, self.lo * b + p.lo)
    }

    /// self².
    pub fn square(self) -> Dd {
        self.mul(self)
    }

    /// self / o: two correction steps on f64's quotient.
    pub fn div(self, o: Dd) -> Dd {
        let q1 = self.hi / o.hi;
        if !q1.is_finite() || !o.hi.is_finite() || q1 == 0.0 {
            return Dd::special(q1);
        }
        let r = self.sub(o.mul_f64(q1));
        let q2 = r.hi / o.hi;
        let r = r.sub(o.mul_f64(q2));
        let q3 = r.hi / o.hi;
        Dd::fast_two_sum(q1, q2).add_f64(q3)
    }

    /// √self (one Newton step on f64's root); NaN below 0.
    pub fn sqrt(self) -> Dd {
        if self.hi <= 0.0 || !self.hi.is_finite() {
            return Dd::special(self.hi.sqrt());
        }
        let s = self.hi.sqrt();
        let r = self.sub(Dd::two_prod(s, s));
        Dd::fast_two_sum(s, r.hi / (2.0 * s))
    }

    /// |self|.
    pub fn abs(self) -> Dd {
        if self.hi < 0.0 {
            self.neg()
        } else {
            self
        }
    }

    /// e^x − 1 by its Taylor series to x^terms/terms! (Horner), for |x| ≤ ½ (no cancellation).
    fn expm1_series(x: Dd, terms: usize) -> Dd {
        let mut p = INV_FACT[terms];
        for c in INV_FACT[1..terms].iter().rev() {
            p = p.mul(x).add(*c);
        }
        p.mul(x)
    }

    /// e^x; +∞ above f64's range, 0 below it.
    pub fn exp(self) -> Dd {
        let x = self.hi;
        if x.is_nan() {
            return self;
        }
        if x > 709.79 {
            return Dd::special(f64::INFINITY);
        }
        if x < -745.2 {
            return Dd::ZERO;
        }
        let n = (x / LN2.hi).round();
        let r = self.sub(LN2.mul_f64(n));
        let e = Dd::expm1_reduced(r).add_f64(1.0);
        let k = n as i32;
        if k > 1000 || k < -1000 {
            e.mul_f64(pow2(k / 2)).mul_f64(pow2(k - k / 2))
        } else {
            e.mul_f64(pow2(k))
        }
    }

    /// e^r − 1 for |r| ≤ ½: the series at r/2⁸ (|r/2⁸| < 2⁻⁹, so 9 terms leave less than
    /// 2⁻⁹⁰/10! ≈ 2⁻¹¹¹ relative), then eight doublings e ← e(e + 2) ((1 + e)² − 1, which keeps the
    /// small part exact).
    fn expm1_reduced(r: Dd) -> Dd {
        let mut e = Dd::expm1_series(r.mul_f64(1.0 / 256.0), 9);
        for _ in 0..8 {
            e = e.mul(e.add_f64(2.0));
        }
        e
    }

    /// e^x − 1, without cancellation near 0.
    pub fn exp_m1(self) -> Dd {
        if self.hi.abs() <= 0.5 {
            if self.hi == 0.0 || self.hi.abs() < 1e-290 {
                return self.add(self.square().mul_f64(0.5));
            }
            Dd::expm1_reduced(self)
        } else {
            self.exp().add_f64(-1.0)
        }
    }

    /// ln x (NaN below 0, −∞ at 0).
    pub fn ln(self) -> Dd {
        if self.hi <= 0.0 || !self.hi.is_finite() {
            return Dd::special(self.hi.ln());
        }
        let y = Dd::new(self.hi.ln());
        // y + x e^−y − 1: Newton's step for e^y = x.
        y.add(self.mul(y.neg().exp())).add_f64(-1.0)
    }

    /// ln(1 + x), without cancellation near 0.
    pub fn ln_1p(self) -> Dd {
        if self.hi.abs() > 0.25 {
            return self.add_f64(1.0).ln();
        }
        if self.hi == 0.0 {
            return self;
        }
        // Newton's step for e^y − 1 = x from f64's ln_1p: y + (x − expm1(y)) / (1 + expm1(y)).
        let y = Dd::new(self.hi.ln_1p());
        let e = y.exp_m1();
        y.add(self.sub(e).div(e.add_f64(1.0)))
    }

    /// tanh x: expm1(2x)/(expm1(2x) + 2) below 1, (1 − e^−2x)/(1 + e^−2x) above.
    pub fn tanh(self) -> Dd {
        if self.hi < 0.0 {
            return self.neg().tanh().neg();
        }
        if self.hi.is_nan() {
            return self;
        }
        if self.hi < 1.0 {
            let e = self.mul_f64(2.0).exp_m1();
            return e.div(e.add_f64(2.0));
        }
        let t = self.mul_f64(-2.0).exp();
        Dd::ONE.sub(t).div(Dd::ONE.add(t))
    }

    /// σ(x) = 1/(1 + e^−x); for x < 0 as e^x/(1 + e^x), accurate where it is tiny.
    pub fn sigmoid(self) -> Dd {
        if self.hi.is_nan() {
            return self;
        }
        if self.hi >= 0.0 {
            Dd::ONE.div(Dd::ONE.add(self.neg().exp()))
        } else {
            let e = self.exp();
            e.div(e.add_f64(1.0))
        }
    }

    /// erf x.
    pub fn erf(self) -> Dd {
        let x = self.hi;
        if x.is_nan() {
            return self;
        }
        if x < 0.0 {
            return self.neg().erf().neg();
        }
        if x < 3.0 {
            erf_series(self)
        } else {
            Dd::ONE.sub(erfc_fraction(self))
        }
    }

    /// erfc x = 1 − erf x, accurate relatively where it is tiny (x large).
    pub fn erfc(self) -> Dd {
        let x = self.hi;
        if x.is_nan() {
            return self;
        }
        if x < 0.0 {
            return Dd::new(2.0).sub(self.neg().erfc());
        }
        if x < 3.0 {
            Dd::ONE.sub(erf_series(self))
        } else {
            erfc_fraction(self)
        }
    }
}

/// erf x = (2/√π) e^−x² Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)), for 0 ≤ x < 3: positive terms.
fn erf_series(x: Dd) -> Dd {
    let x2 = x.square();
    let (mut term, mut sum) = (x, x);
    let mut n = 0.0;
    loop {
        n += 1.0;
        term = term.mul(x2).mul_f64(2.0).div(Dd::new(2.0 * n + 1.0));
        sum = sum.add(term);
        if term.hi.abs() < 1e-34 * sum.hi.abs() || n > 200.0 {
            break;
        }
    }
    sum.mul(x2.neg().exp()).mul(TWO_OVER_SQRT_PI)
}

/// erfc x = e^−x²/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), for x ≥ 3, evaluated from the
/// tail.
fn erfc_fraction(x: Dd) -> Dd {
    if x.hi > 27.3 {
        return Dd::ZERO;
    }
    let mut f = x;
    for k in (1..=160).rev() {
        f = x.add(Dd::new(k as f64 * 0.5).div(f));
    }
    x.square().neg().exp().mul(ONE_OVER_SQRT_PI).div(f)
}

impl PartialOrd for Dd {
    fn partial_cmp(&self, o: &Dd) -> Option<Ordering> {
        match self.hi.partial_cmp(&o.hi) {
            Some(Ordering::Equal) => self.lo.partial_cmp(&o.lo),
            c => c,
        }
    }
}

impl From<f64> for Dd {
    fn from(v: f64) -> Dd {
        Dd::new(v)
    }
}

/// φ(a) in double-double, with [`Activation::apply`]'s pieces.
pub fn activate(phi: Activation, a: Dd) -> Dd {
    match phi {
        Activation::Identity => a,
        Activation::Sigmoid => a.sigmoid(),
        Activation::Tanh => a.tanh(),
        Activation::Relu => {
            if a.hi > 0.0 || a.hi.is_nan() {
                a
            } else {
                Dd::ZERO
            }
        }
        Activation::LeakyRelu => {
            if a.hi > 0.0 {
                a
            } else {
                a.mul_f64(LEAKY_RELU_SLOPE)
            }
        }
        Activation::Elu => {
            if a.hi > 0.0 {
                a
            } else {
                a.exp_m1()
            }
        }
        Activation::Softplus => {
            if a.hi > SOFTPLUS_THRESHOLD {
                a
            } else {
                a.exp().ln_1p()
            }
        }
        // a·Φ(a), Φ(a) = ½ erfc(−a/√2): no cancellation for a < 0.
        Activation::Gelu => a.mul(cdf(a)),
        Activation::Silu => a.mul(a.sigmoid()),
    }
}

/// (φ(a), φ'(a)) at once, sharing the exponential where φ and φ' both need it (tanh, σ, SiLU);
/// the same values as [`activate`] and [`activate_derivative`] to double-double accuracy.
pub fn activate_pair(phi: Activation, a: Dd) -> (Dd, Dd) {
    // σ(|a|) and σ(−|a|) from e = e^−|a|: 1/(1 + e) and e/(1 + e).
    let sigmoids = |a: Dd| {
        let e = a.abs().neg().exp();
        let inv = Dd::ONE.div(e.add_f64(1.0));
        let (big, small) = (inv, e.mul(inv));
        if a.hi >= 0.0 {
            (big, small)
        } else {
            (small, big)
        }
    };
    match phi {
        Activation::Tanh if a.hi.is_finite() && a.hi.abs() >= 0.5 => {
            let x = a.abs();
            // |a| < 1: e = expm1(2|a|), tanh = e/(e + 2), 1 − tanh² = 4(e + 1)/(e + 2)²;
            // above: t = e^−2|a|, tanh = (1 − t)/(1 + t), 1 − tanh² = 4t/(1 + t)². No cancellation.
            let (z, d) = if x.hi < 1.0 {
                let e = x.mul_f64(2.0).exp_m1();
                let den = e.add_f64(2.0);
                (e.div(den), e.add_f64(1.0).mul_f64(4.0).div(den.square()))
            } else {
                let t = x.mul_f64(-2.0).exp();
                let den = t.add_f64(1.0);
                (Dd::ONE.sub(t).div(den), t.mul_f64(4.0).div(den.square()))
            };
            (if a.hi < 0.0 { z.neg() } else { z }, d)
        }
        Activation::Sigmoid if a.hi.is_finite() => {
            let (s, s_neg) = sigmoids(a);
            (s, s.mul(s_neg))
        }
        Activation::Silu if a.hi.is_finite() => {
            let (s, s_neg) = sigmoids(a);
            (a.mul(s), s.mul(Dd::ONE.add(a.mul(s_neg))))
        }
        _ => {
            let z = activate(phi, a);
            (z, activate_derivative(phi, a, z))
        }
    }
}

/// Φ(a) = ½ erfc(−a/√2).
fn cdf(a: Dd) -> Dd {
    a.neg().mul(FRAC_1_SQRT_2).erfc().mul_f64(0.5)
}

/// φ'(a) in double-double, given z = φ(a), with [`Activation::derivative`]'s one-sided choices at
/// the kinks; computed from a where 1 − z² or z(1 − z) would cancel.
pub fn activate_derivative(phi: Activation, a: Dd, z: Dd) -> Dd {
    match phi {
        Activation::Identity => Dd::ONE,
        // σ(a)σ(−a): no cancellation at either end.
        Activation::Sigmoid => a.sigmoid().mul(a.neg().sigmoid()),
        Activation::Tanh => {
            if a.hi.abs() < 0.5 {
                Dd::ONE.sub(z.square())
            } else {
                // 1 − tanh² a = 4t/(1 + t)², t = e^−2|a|.
                let t = a.abs().mul_f64(-2.0).exp();
                t.mul_f64(4.0).div(Dd::ONE.add(t).square())
            }
        }
        Activation::Relu => {
            if z.hi <= 0.0 {
                Dd::ZERO
            } else {
                Dd::ONE
            }
        }
        Activation::LeakyRelu => {
            if a.hi > 0.0 {
                Dd::ONE
            } else {
                Dd::new(LEAKY_RELU_SLOPE)
            }
        }
        Activation::Elu => {
            if a.hi <= 0.0 {
                a.exp()
            } else {
                Dd::ONE
            }
        }
        Activation::Softplus => {
            if a.hi > SOFTPLUS_THRESHOLD {
                Dd::ONE
            } else {
                a.sigmoid()
            }
        }
        Activation::Gelu => cdf(a).add(a.mul(a.square().mul_f64(-0.5).exp()).mul(FRAC_1_SQRT_2PI)),
        Activation::Silu => {
            let s = a.sigmoid();
            // σ(1 + a σ(−a)).
            s.mul(Dd::ONE.add(a.mul(a.neg().sigmoid())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative distance of `got` from the reference hi + lo.
    fn rel(got: Dd, hi: f64, lo: f64) -> f64 {
        (((got.hi - hi) + (got.lo - lo)) / hi).abs()
    }

    /// Against mpmath at 50 digits (the reference values split into hi + lo).
    #[test]
    fn functions_are_within_1e30_of_the_exact_values() {
        let cases: [(&str, Dd, f64, f64); 16] = [
            ("exp 1", Dd::new(1.0).exp(), 2.718281828459045, 1.4456468917292502e-16),
            ("exp 3", Dd::new(3.0).exp(), 20.085536923187668, -1.8275625525512858e-16),
            ("exp -2.5", Dd::new(-2.5).exp(), 0.0820849986238988, -4.8047346661059284e-18),
            ("exp 10", Dd::new(10.0).exp(), 22026.465794806718, -1.3780134700517372e-12),
            ("exp 0.5", Dd::new(0.5).exp(), 1.6487212707001282, -4.731568479435833e-17),
            ("ln 2", Dd::new(2.0).ln(), 0.6931471805599453, 2.3190468138462996e-17),
            ("erf 0.5", Dd::new(0.5).erf(), 0.5204998778130465, 1.900077467916287e-17),
            ("erf 1", Dd::new(1.0).erf(), 0.8427007929497149, -2.4801011789118602e-17),
            ("erfc 1", Dd::new(1.0).erfc(), 0.15729920705028513, -2.954563826510312e-18),
            ("erfc 3", Dd::new(3.0).erfc(), 2.209049699858544e-05, 1.5563377960343457e-22),
            ("erfc -2.5", Dd::new(-2.5).erfc(), 1.999593047982555, 4.6925151097042234e-17),
            ("erfc 10", Dd::new(10.0).erfc(), 2.088487583762545e-45, -1.2006565763501381e-61),
            ("tanh 0.5", Dd::new(0.5).tanh(), 0.46211715726000974, 2.1916603238260928e-17),
            ("tanh 1", Dd::new(1.0).tanh(), 0.7615941559557649, 3.7090214482164924e-17),
            ("tanh -2.5", Dd::new(-2.5).tanh(), -0.9866142981514303, 2.4529238788172874e-17),
            ("tanh 10", Dd::new(10.0).tanh(), 0.9999999958776927, 3.693278996616596e-17),
        ];
        for (name, got, hi, lo) in cases {
            assert!(rel(got, hi, lo) < 1e-30, "{name}: {got:?} vs {hi:e} + {lo:e}: {:e}", rel(got, hi, lo));
        }
    }

    /// Identities in double-double over wide ranges, and agreement with libm's f64 results.
    #[test]
    fn identities_hold_to_double_double_precision() {
        for i in -400..=400 {
            let x = i as f64 * 0.0371 + 1e-3;
            let e = Dd::new(x).exp();
            let back = e.mul(Dd::new(-x).exp());
            assert!((back.hi - 1.0 + back.lo).abs() < 1e-30, "exp({x})·exp(−{x}) = {back:?}");
            let l = e.ln();
            assert!(((l.hi - x) + l.lo).abs() < 1e-30 * x.abs().max(1.0), "ln(exp({x})) = {l:?}");
            assert!((e.hi - x.exp()).abs() <= 2.3e-16 * x.exp(), "exp({x})");
            let t = Dd::new(x).tanh();
            assert!((t.hi - x.tanh()).abs() <= 2.3e-16 * x.tanh().abs(), "tanh({x})");
            let s = Dd::new(x).sigmoid().add(Dd::new(-x).sigmoid());
            assert!((s.hi - 1.0 + s.lo).abs() < 1e-30, "σ(x) + σ(−x) at {x}: {s:?}");
            let ef = Dd::new(x / 4.0).erf().add(Dd::new(x / 4.0).erfc());
            assert!((ef.hi - 1.0 + ef.lo).abs() < 1e-30, "erf + erfc at {}: {ef:?}", x / 4.0);
        }
        // The series and the continued fraction meet at 3 (1 − erf there keeps 2⁻¹⁰⁶/erfc(3) ≈ 5e−28
        // relative).
        let below = Dd::ONE.sub(erf_series(Dd::new(3.0)));
        let above = erfc_fraction(Dd::new(3.0));
        assert!(rel(below, above.hi, above.lo) < 1e-26, "{below:?} vs {above:?}");
        // Tiny arguments keep their relative accuracy (against four terms of each series).
        for x in [1e-300, 1e-20, 1e-8] {
            let d = Dd::new(x);
            let (x2, x3, x4) = (d.square(), d.square().mul(d), d.square().square());
            let want = d.add(x2.mul_f64(0.5)).add(x3.div(Dd::new(6.0))).add(x4.div(Dd::new(24.0)));
            let m = d.exp_m1();
            assert!(rel(m, want.hi, want.lo) < 1e-30, "expm1({x}) = {m:?}");
            let want = d.sub(x2.mul_f64(0.5)).add(x3.div(Dd::new(3.0))).sub(x4.mul_f64(0.25));
            let l = d.ln_1p();
            assert!(rel(l, want.hi, want.lo) < 1e-30, "ln1p({x}) = {l:?}");
        }
        // Saturated derivatives: 1 − tanh²(30) = 4e^−60/(1 + e^−60)².
        let d = activate_derivative(Activation::Tanh, Dd::new(30.0), Dd::new(30.0).tanh());
        let want = 4.0 * (-60f64).exp();
        assert!((d.hi - want).abs() < 1e-15 * want, "{d:?}");
        // Non-finite values as f64 gives them.
        assert_eq!(Dd::new(1000.0).exp().hi, f64::INFINITY);
        assert_eq!(Dd::new(-1000.0).exp().hi, 0.0);
        assert_eq!(Dd::new(f64::INFINITY).tanh().hi, 1.0);
        assert!(Dd::new(f64::NAN).tanh().hi.is_nan());
    }

    /// The shared-exponential pair gives the separate functions' values.
    #[test]
    fn the_pair_is_the_function_and_its_derivative() {
        for phi in Activation::ALL {
            for i in -300..=300 {
                let a = Dd::new(i as f64 * 0.0713 + 1e-4);
                let (z, d) = activate_pair(phi, a);
                let (z1, d1) = (activate(phi, a), activate_derivative(phi, a, activate(phi, a)));
                for (x, y) in [(z, z1), (d, d1)] {
                    let scale = y.hi.abs().max(1e-300);
                    assert!(
                        ((x.hi - y.hi) + (x.lo - y.lo)).abs() <= 1e-29 * scale,
                        "{phi} at {a:?}: {x:?} vs {y:?}"
                    );
                }
            }
        }
    }

    /// Each derivative is the derivative of its activation (central differences in double-double).
    #[test]
    fn derivatives_match_central_differences() {
        for phi in Activation::ALL {
            for a in [-12.0, -3.3, -0.7, -1e-3, 0.25, 1.5, 4.0, 18.0] {
                let h = 1e-9;
                let up = activate(phi, Dd::new(a).add_f64(h));
                let down = activate(phi, Dd::new(a).add_f64(-h));
                let fd = up.sub(down).mul_f64(0.5 / h);
                let d = activate_derivative(phi, Dd::new(a), activate(phi, Dd::new(a)));
                // The difference of two values near |φ| keeps 2⁻¹⁰⁶|φ|/h of absolute accuracy.
                let noise = 1e-31 * up.hi.abs().max(down.hi.abs()) / h;
                assert!(
                    (fd.hi - d.hi).abs() <= 1e-12 * d.hi.abs() + noise + 1e-300,
                    "{phi} at {a}: {d:?} vs {fd:?}"
                );
            }
        }
    }
}
