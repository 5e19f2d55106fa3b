//! The two floating-point types a network can be built in, and what the code needs of them.

use num_traits::{Float, FloatConst, NumCast};
use std::fmt::{Debug, Display};

use crate::spec::DType;

/// `f32` or `f64`: the element type of weights, activations and gradients.
///
/// Implemented for exactly those two; everything generic in the crate is generic over this trait,
/// and [`DType`] picks one at run time.
pub trait Scalar:
    Float
    + FloatConst
    + Debug
    + Display
    + std::fmt::LowerExp
    + Default
    + Send
    + Sync
    + 'static
    + tch::kind::Element
{
    /// The run-time tag of this type.
    const DTYPE: DType;

    /// The error function, as libm computes it (for the exact GELU).
    fn erf(self) -> Self;

    /// Converts from `f64`, rounding to nearest.
    fn of(x: f64) -> Self {
        <Self as NumCast>::from(x).expect("f64 converts to every Scalar")
    }

    /// Widens to `f64`, exactly.
    fn to64(self) -> f64 {
        <f64 as NumCast>::from(self).expect("every Scalar converts to f64")
    }

    /// `C ← α·op(A)·op(B) + β·C` on raw row/column strides, by `matrixmultiply`.
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m×k`, `k×n` and `m×n` matrices; `c` must not
    /// alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Scalar for f32 {
    const DTYPE: DType = DType::F32;
    fn erf(self) -> Self {
        libm::erff(self)
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

impl Scalar for f64 {
    const DTYPE: DType = DType::F64;
    fn erf(self) -> Self {
        libm::erf(self)
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
