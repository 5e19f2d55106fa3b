//! exp, tanh and the sigmoid written so that a loop over a slice compiles to SIMD: no branches
//! (selects only), no calls, no tables. The batched MLP spends most of its non-GEMM time here;
//! libm's scalar functions cost 6 ns an element, these a fraction of that once vectorised.
//!
//! Accuracy: a few units in the last place against libm and libtorch in f32 and f64 (tested in
//! `tests/activations.rs`). NaN propagates; ±∞ give the limits.

use crate::scalar::Scalar;

/// 1/k! for k = 0..13: the Taylor series of e^r, enough for |r| ≤ ln2/2 to f64 precision
/// (the first term left out is below 2^−57).
const EXP_TAYLOR: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
];

/// The odd Taylor coefficients of tanh, x, x³, ..., x²⁹ (from the Bernoulli numbers); on
/// |x| < 0.375 the first term left out is below 2^−56 of the result.
const TANH_TAYLOR: [f64; 15] = [
    1.0,
    -0.333_333_333_333_333_3,
    0.133_333_333_333_333_33,
    -0.053_968_253_968_253_97,
    0.021_869_488_536_155_203,
    -0.008_863_235_529_902_197,
    0.003_592_128_036_572_481,
    -0.001_455_834_387_051_318_3,
    0.000_590_027_440_945_586,
    -0.000_239_129_114_243_552_48,
    9.691_537_956_929_451e-5,
    -3.927_832_388_331_683e-5,
    1.591_890_506_932_896_4e-5,
    -6.451_689_215_655_431e-6,
    2.614_771_151_290_754_6e-6,
];

/// Below this |x|, tanh is its Taylor series; above, 1 − 2/(e^{2|x|} + 1), whose cancellation
/// there costs less than one bit.
const TANH_SERIES_BELOW: f64 = 0.375;
/// 2|x| is clamped here: tanh(22) rounds to 1 in f64 (and f32), and e^44 is finite.
const TANH_SATURATES_AT: f64 = 44.0;

#[inline(always)]
fn horner<T: Scalar>(coeffs: &[f64], x: T) -> T {
    let mut p = T::of(coeffs[coeffs.len() - 1]);
    for &c in coeffs[..coeffs.len() - 1].iter().rev() {
        p = p * x + T::of(c);
    }
    p
}

/// e^x: Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, then e^r by its Taylor series and
/// 2^n by building the exponent bits. Inputs below [`Scalar::EXP_LO`] give e^EXP_LO (the
/// smallest normal range) instead of a subnormal or 0.
#[inline(always)]
pub fn exp<T: Scalar>(x: T) -> T {
    let xc = x.max(T::EXP_LO).min(T::EXP_HI);
    let shifted = xc * T::of(std::f64::consts::LOG2_E) + T::ROUND_SHIFTER;
    let n = shifted - T::ROUND_SHIFTER;
    let r = xc - n * T::LN2_HI - n * T::LN2_LO;
    // 2·p(r)·2^(n−1): 2^n itself would overflow one step early, near the top of the range.
    let y = (horner(&EXP_TAYLOR, r) * T::of(2.0)) * T::pow2_minus_one(shifted);
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// tanh x.
#[inline(always)]
pub fn tanh<T: Scalar>(x: T) -> T {
    let ax = x.abs();
    let series = x * horner(&TANH_TAYLOR, x * x);
    let e = exp((ax + ax).min(T::of(TANH_SATURATES_AT)));
    let big = T::one() - T::of(2.0) / (e + T::one());
    let big = if x < T::zero() { -big } else { big };
    if x.is_nan() {
        x
    } else if ax < T::of(TANH_SERIES_BELOW) {
        series
    } else {
        big
    }
}

/// σ(x) = 1 / (1 + e^−x), as libtorch writes it.
#[inline(always)]
pub fn sigmoid<T: Scalar>(x: T) -> T {
    T::one() / (T::one() + exp(-x))
}
