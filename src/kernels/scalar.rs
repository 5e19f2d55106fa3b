//! The two floating-point types a network can be built in, and what the code needs of them.

use num_traits::{Float, FloatConst, NumCast};
use std::fmt::{Debug, Display};

/// The element type both implementations compute in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

/// `f32` or `f64`: the element type of weights, activations and gradients.
///
/// Implemented for exactly those two; everything generic in the crate is generic over this trait,
/// and [`DType`] picks one at run time.
pub trait Scalar:
    Float + FloatConst + Debug + Display + std::fmt::LowerExp + Default + Send + Sync + 'static + bytemuck::Pod
{
    /// The run-time tag of this type.
    const DTYPE: DType;

    /// The error function, as libm computes it (for the exact GELU).
    fn erf(self) -> Self;

    /// ln 2 split for Cody–Waite range reduction: `n·LN2_HI` is exact for the exponents `n`
    /// that [`crate::kernels::vmath::exp`] meets, and `LN2_HI + LN2_LO` is ln 2 to twice the precision.
    const LN2_HI: Self;
    /// See [`Scalar::LN2_HI`].
    const LN2_LO: Self;
    /// 1.5·2^p (p the mantissa width): adding it rounds to an integer kept in the low bits.
    const ROUND_SHIFTER: Self;
    /// Inputs of [`crate::kernels::vmath::exp`] are clamped to `[EXP_LO, EXP_HI]`: below, e^x rounds to
    /// 0; above, it overflows to ∞ as it should.
    const EXP_LO: Self;
    /// See [`Scalar::EXP_LO`].
    const EXP_HI: Self;

    /// Terms of e^r's Taylor series needed at this precision (|r| ≤ ln2/2).
    const EXP_TERMS: usize;

    /// The largest n with 2^n finite (1023 for f64, 127 for f32).
    const MAX_EXP2: Self;

    /// 2^n for an integral `n` within the normal exponent range, built directly in the exponent
    /// bits: adding [`Scalar::ROUND_SHIFTER`] leaves n in the low bits of the sum.
    fn pow2(n: Self) -> Self;

    /// Converts from `f64`, rounding to nearest.
    fn of(x: f64) -> Self {
        <Self as NumCast>::from(x).expect("f64 converts to every Scalar")
    }

    /// Widens to `f64`, exactly.
    fn to64(self) -> f64 {
        <f64 as NumCast>::from(self).expect("every Scalar converts to f64")
    }
}

impl Scalar for f32 {
    const DTYPE: DType = DType::F32;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND_SHIFTER: f32 = 12_582_912.0;
    const EXP_LO: f32 = -104.0;
    const EXP_HI: f32 = 89.0;
    const MAX_EXP2: f32 = 127.0;
    // 0.347^8/8! = 5e−9, below half an f32 ulp.
    const EXP_TERMS: usize = 8;
    #[inline(always)]
    fn pow2(n: f32) -> f32 {
        // The low 9 bits of n + 1.5·2^23 hold n (mod 512); shifted into the exponent field with
        // the bias 127 they make 2^n.
        f32::from_bits((n + Self::ROUND_SHIFTER).to_bits().wrapping_add(127) << 23)
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erff(self)
    }
}

impl Scalar for f64 {
    const DTYPE: DType = DType::F64;
    // 0.693147180369123816490, the top 32 bits of ln 2 (fdlibm's ln2_hi).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const ROUND_SHIFTER: f64 = 6_755_399_441_055_744.0;
    const EXP_LO: f64 = -746.0;
    const EXP_HI: f64 = 710.0;
    const MAX_EXP2: f64 = 1023.0;
    const EXP_TERMS: usize = 14;
    #[inline(always)]
    fn pow2(n: f64) -> f64 {
        // As for f32: the low 12 bits hold n (mod 4096); bias 1023.
        f64::from_bits((n + Self::ROUND_SHIFTER).to_bits().wrapping_add(1023) << 52)
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erf(self)
    }
}

/// max(a, b) of two numbers that are not NaN (one comparison; `f64::max` also looks for NaN).
#[inline(always)]
pub(crate) fn max_of_numbers(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}
