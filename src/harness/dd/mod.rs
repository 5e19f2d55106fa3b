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
//!
//! # Layout
//!
//! - `arith`: the exact transformations, +, −, ·, ÷, √ and the operator traits;
//! - `exp_ln`: e^x, e^x − 1, ln, ln(1 + u), and the scaling by 2^m they share;
//! - `erf`: erf and erfc (the series and the continued fraction);
//! - `activation`: σ, tanh and every [`Activation`] with its derivative in double-double
//!   ([`activate`], [`activate_derivative`], [`activate_pair`], and [`activate_pairs`] over a
//!   layer);
//! - `lanes`: tanh and its derivative over a layer in a loop that vectorises, with the scalar
//!   form's bits (what [`activate_pairs`] takes for tanh; about a third of the scalar form's
//!   time).

mod activation;
mod arith;
mod erf;
mod exp_ln;
mod lanes;
#[cfg(test)]
mod tests;

#[cfg(doc)]
use crate::model::activation::Activation;
pub use activation::{activate, activate_derivative, activate_pair, activate_pairs};

/// hi + lo, |lo| ≤ ½ ulp(hi): a double-double number of about 106 significant bits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dd {
    /// The high part: the value rounded to f64.
    pub hi: f64,
    /// The low part: the rest, at most half an ulp of `hi`.
    pub lo: f64,
}
