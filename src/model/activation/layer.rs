//! The activations' loops over a whole layer, compiled per instruction set ([`multiversion!`]):
//! the formulas are this module's ([`Activation::apply`], [`Activation::derivative`]),
//! inlined here into loops the compiler vectorises.
//!
//! [`multiversion!`]: crate::kernels::simd::multiversion

use super::{Activation, LEAKY_RELU_SLOPE};
use crate::kernels::scalar::Scalar;
use crate::kernels::simd::multiversion;
use crate::kernels::vmath;

multiversion! {
    /// `z[i] = φ(a[i])` over a whole layer, eqs (1)–(3): [`Activation::apply`] with the choice of
    /// φ made once, one plain index loop per φ over equal-length slices, with no iterator adapters in
    /// between, so that the compiler sees a straight-line body it can vectorise.
    #[inline]
    #[allow(clippy::needless_range_loop)]
    pub(crate) fn forward<T: Scalar>(phi: Activation, a: &[T], z: &mut [T]) {
        let n = z.len();
        let a = &a[..n];
        match phi {
            Activation::Identity => z.copy_from_slice(a),
            Activation::Sigmoid => {
                for i in 0..n {
                    z[i] = vmath::sigmoid(a[i]);
                }
            }
            Activation::Tanh => {
                for i in 0..n {
                    z[i] = vmath::tanh(a[i]);
                }
            }
            Activation::Relu => {
                for i in 0..n {
                    z[i] = Activation::Relu.apply(a[i]);
                }
            }
            Activation::LeakyRelu => {
                for i in 0..n {
                    z[i] = Activation::LeakyRelu.apply(a[i]);
                }
            }
            Activation::Silu => {
                for i in 0..n {
                    z[i] = Activation::Silu.apply(a[i]);
                }
            }
            other => {
                for i in 0..n {
                    z[i] = other.apply(a[i]);
                }
            }
        }
    }
}

multiversion! {
    /// `d[i] *= φ'(a[i])` over a whole layer, given `z = φ(a)`: the ⊙ of eq. (7) in matrix form,
    /// [`Activation::derivative`] with the choice of φ made once, written as [`forward`] is.
    #[inline]
    #[allow(clippy::needless_range_loop)]
    pub(crate) fn backward<T: Scalar>(phi: Activation, a: &[T], z: &[T], d: &mut [T]) {
        let n = d.len();
        let (a, z) = (&a[..n], &z[..n]);
        match phi {
            Activation::Identity => {}
            Activation::Sigmoid => {
                for i in 0..n {
                    d[i] = d[i] * (z[i] * (T::one() - z[i]));
                }
            }
            Activation::Tanh => {
                for i in 0..n {
                    d[i] = d[i] * z[i].mul_add(-z[i], T::one());
                }
            }
            Activation::Relu => {
                for i in 0..n {
                    d[i] = if z[i] <= T::zero() { T::zero() } else { d[i] };
                }
            }
            Activation::LeakyRelu => {
                let slope = T::of(LEAKY_RELU_SLOPE);
                for i in 0..n {
                    d[i] = if a[i] > T::zero() { d[i] } else { d[i] * slope };
                }
            }
            other => {
                for i in 0..n {
                    d[i] = d[i] * other.derivative(a[i], z[i]);
                }
            }
        }
    }
}
