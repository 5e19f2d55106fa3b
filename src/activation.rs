//! The activation functions φ_k of eqs (1)–(3), each with its derivative φ'_k beside it.
//!
//! Values and derivatives follow libtorch's conventions, kinks included: where torch's autograd
//! picks a one-sided derivative (relu at 0 gives 0, leaky-relu at 0 gives the slope), so do we.

use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;

use crate::scalar::Scalar;

/// Negative-side slope of [`Activation::LeakyRelu`] (torch's default).
pub const LEAKY_RELU_SLOPE: f64 = 0.01;
/// Above `β·x > 20`, torch's softplus returns `x` itself (and derivative 1).
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;

/// One activation function φ, applied elementwise to a layer's pre-activations `a^k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// φ(a) = a.
    Identity,
    /// φ(a) = 1 / (1 + e^−a); the function of the seed's eq. (8): φ' = φ(1 − φ).
    Sigmoid,
    /// φ(a) = tanh a; φ' = 1 − φ².
    Tanh,
    /// φ(a) = max(a, 0); φ'(0) = 0, as torch's autograd gives.
    Relu,
    /// φ(a) = a for a > 0, else 0.01·a; φ'(0) = 0.01.
    LeakyRelu,
    /// φ(a) = a for a > 0, else e^a − 1 (α = 1).
    Elu,
    /// φ(a) = ln(1 + e^a) (β = 1), and a itself above a > 20, as torch.
    Softplus,
    /// φ(a) = a·Φ(a), the exact GELU with Φ(a) = ½(1 + erf(a/√2)).
    Gelu,
    /// φ(a) = a·σ(a) (also called swish).
    Silu,
}

impl Activation {
    /// Every activation, in a fixed order.
    pub const ALL: [Activation; 9] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Softplus,
        Activation::Gelu,
        Activation::Silu,
    ];

    /// The name used on the command line, in reports and in traces.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Elu => "elu",
            Activation::Softplus => "softplus",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
        }
    }

    /// z = φ(a), eqs (1)–(3).
    ///
    /// ```
    /// use backprop::Activation;
    /// assert_eq!(Activation::Relu.apply(-2.0_f64), 0.0);
    /// assert_eq!(Activation::LeakyRelu.apply(-2.0_f64), -0.02);
    /// assert_eq!(Activation::Sigmoid.apply(0.0_f64), 0.5);
    /// ```
    pub fn apply<T: Scalar>(self, a: T) -> T {
        let one = T::one();
        match self {
            Activation::Identity => a,
            Activation::Sigmoid => sigmoid(a),
            Activation::Tanh => a.tanh(),
            // `a > 0` is false for NaN: keep NaN flowing, as torch does.
            Activation::Relu => {
                if a > T::zero() || a.is_nan() {
                    a
                } else {
                    T::zero()
                }
            }
            Activation::LeakyRelu => {
                if a > T::zero() {
                    a
                } else {
                    a * T::of(LEAKY_RELU_SLOPE)
                }
            }
            Activation::Elu => {
                if a > T::zero() {
                    a
                } else {
                    a.exp_m1()
                }
            }
            Activation::Softplus => {
                if a > T::of(SOFTPLUS_THRESHOLD) {
                    a
                } else {
                    a.exp().ln_1p()
                }
            }
            Activation::Gelu => a * T::of(0.5) * (one + (a * T::FRAC_1_SQRT_2()).erf()),
            Activation::Silu => a / (one + (-a).exp()),
        }
    }

    /// φ'(a), given the pre-activation `a` and the value `z = φ(a)`: the factor of eq. (7).
    ///
    /// Where torch's autograd differentiates through the output (sigmoid, tanh, relu) this does
    /// too; the sigmoid's is the seed's eq. (8), φ' = φ(1 − φ).
    ///
    /// ```
    /// use backprop::Activation;
    /// let s = Activation::Sigmoid;
    /// let z = s.apply(0.3_f64);
    /// assert_eq!(s.derivative(0.3, z), z * (1.0 - z));
    /// assert_eq!(Activation::Relu.derivative(0.0_f64, 0.0), 0.0);
    /// ```
    pub fn derivative<T: Scalar>(self, a: T, z: T) -> T {
        let one = T::one();
        match self {
            Activation::Identity => one,
            Activation::Sigmoid => z * (one - z),
            // 1 − z² with one rounding (a fused multiply-add), as libtorch's compiled kernel
            // evaluates it: where z² ≈ 1 a separately rounded z² would lose the low bits.
            Activation::Tanh => z.mul_add(-z, one),
            Activation::Relu => {
                if z <= T::zero() {
                    T::zero()
                } else {
                    one
                }
            }
            Activation::LeakyRelu => {
                if a > T::zero() {
                    one
                } else {
                    T::of(LEAKY_RELU_SLOPE)
                }
            }
            Activation::Elu => {
                if a <= T::zero() {
                    a.exp()
                } else {
                    one
                }
            }
            Activation::Softplus => {
                if a > T::of(SOFTPLUS_THRESHOLD) {
                    one
                } else {
                    let e = a.exp();
                    e / (e + one)
                }
            }
            Activation::Gelu => {
                // Φ(a) + a·φ(a), in libtorch's order of operations (the constant 1/√(2π) rounded
                // once from f64, the sum fused), since the two terms nearly cancel for a < 0.
                let cdf = T::of(0.5) * (one + (a * T::FRAC_1_SQRT_2()).erf());
                let pdf = T::of(0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2)
                    * (a * a * T::of(-0.5)).exp();
                a.mul_add(pdf, cdf)
            }
            Activation::Silu => {
                let s = sigmoid(a);
                s * (one + a * (one - s))
            }
        }
    }
}

/// σ(a) = 1 / (1 + e^−a), finite for every finite `a` (e^−a overflows to ∞, and 1/∞ = 0).
fn sigmoid<T: Scalar>(a: T) -> T {
    T::one() / (T::one() + (-a).exp())
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        let found = Activation::ALL.into_iter().find(|a| a.name() == key).or(match key.as_str() {
            "linear" | "none" => Some(Activation::Identity),
            "leakyrelu" => Some(Activation::LeakyRelu),
            "swish" => Some(Activation::Silu),
            _ => None,
        });
        match found {
            Some(a) => Ok(a),
            None => bail!(
                "unknown activation {s:?} (expected one of: {})",
                Activation::ALL.map(Activation::name).join(", ")
            ),
        }
    }
}
