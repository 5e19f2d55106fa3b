//! The double-double arithmetic's tests: against mpmath's values and known digits
//! (`reference`), exact error measurements of +, −, ·, ÷, √ and the behaviour at non-finite and
//! extreme arguments (`arithmetic`), identities, crossovers, libm and difference quotients for
//! the functions and the activations (`functions`). The shared helpers are here.

#![allow(clippy::approx_constant)] // reference values that happen to be e, ln 2, …

mod arithmetic;
mod functions;
mod reference;

use super::arith::pow2i;
use super::erf::{erf_series, erfc_cf, erfc_cf_depth, exp_neg_sq, CF_DEPTH, ERFC_CF, ERFC_ZERO, ERF_CF};
use super::exp_ln::LN2;
use super::*;
use crate::model::activation::{Activation, LEAKY_RELU_SLOPE, SOFTPLUS_THRESHOLD};
use crate::model::splitmix::SplitMix64;
use std::cmp::Ordering;

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
