//! Every activation's value and derivative equal torch's value and autograd derivative, on a grid
//! that includes 0, ±1e−30, ±1, ±30 and ±1000, in f32 and f64.

use backprop::reference::{tensor_to_vec, torch_activation};
use backprop::{Activation, Scalar};
use tch::{Kind, Tensor};

fn grid() -> Vec<f64> {
    let mut g = vec![0.0, 1e-30, -1e-30, 1.0, -1.0, 30.0, -30.0, 1000.0, -1000.0, 20.0, -20.0, 1e-7, -1e-7];
    g.extend((-80..=80).map(|i| i as f64 * 0.125));
    g
}

/// Values and derivatives agree to a few units in the last place: both sides evaluate the same formula, but
/// libm and libtorch's vectorised kernels may round differently.
fn check<T: Scalar>(kind: Kind) {
    let ulps = 4.0;
    let eps = T::epsilon().to64();
    let tiny = T::min_positive_value().to64();
    let xs: Vec<T> = grid().into_iter().map(T::of).collect();
    for phi in Activation::ALL {
        let a = Tensor::from_slice(&xs).to_kind(kind).set_requires_grad(true);
        let z = torch_activation(phi, &a);
        z.sum(kind).backward();
        let tz: Vec<T> = tensor_to_vec(&z);
        let tdz: Vec<T> = tensor_to_vec(&a.grad());
        for ((&x, &want_z), &want_dz) in xs.iter().zip(&tz).zip(&tdz) {
            let got_z = phi.apply(x);
            // Derivatives that torch takes through the output (sigmoid, tanh, relu) get torch's
            // output, so a one-ulp difference in z is not amplified by the cancellation in 1 − z².
            let got_dz = phi.derivative(x, want_z);
            for (what, got, want) in [("value", got_z, want_z), ("derivative", got_dz, want_dz)] {
                let (g, w) = (got.to64(), want.to64());
                let scale = cancelling_terms(phi, what, x.to64());
                let ok = (g - w).abs() <= ulps * eps * (w.abs().max(g.abs()) + scale) + tiny;
                assert!(
                    ok,
                    "{phi} {what} at a = {x:e} ({kind:?}): manual {g:e}, torch {w:e} (difference {:e})",
                    (g - w).abs()
                );
            }
        }
    }
}

/// The size of the terms that cancel in a derivative formula: a one-ulp difference in a term
/// (libm and libtorch evaluate erf, exp and tanh differently, and libtorch's f32 GELU gradient
/// groups its terms differently) is an error of that size in the result, however small the
/// result is. tanh: 1 − z²; gelu: ½(1 + erf(a/√2)) + a·φ(a); silu:
/// σ(a)(1 + a(1 − σ(a))); elsewhere nothing cancels.
/// For values, only gelu's a·½(1 + erf(a/√2)) cancels.
fn cancelling_terms(phi: Activation, what: &str, a: f64) -> f64 {
    let s = 1.0 / (1.0 + (-a).exp());
    if what == "value" {
        return if phi == Activation::Gelu { a.abs() } else { 0.0 };
    }
    match phi {
        Activation::Tanh => 1.0,
        // Φ(a) = ½(1 + erf(a/√2)) is itself a difference of numbers near 1 for a < 0.
        Activation::Gelu => 1.0 + (a * (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt()).abs(),
        Activation::Silu => s * (1.0 + (a * (1.0 - s)).abs()),
        _ => 0.0,
    }
}

#[test]
fn activations_match_torch_in_f64() {
    check::<f64>(Kind::Double);
}

#[test]
fn activations_match_torch_in_f32() {
    check::<f32>(Kind::Float);
}

#[test]
fn sigmoid_derivative_is_f_times_one_minus_f() {
    for x in grid() {
        let f = Activation::Sigmoid.apply(x);
        assert_eq!(Activation::Sigmoid.derivative(x, f), f * (1.0 - f), "eq. (8) at {x}");
    }
}

#[test]
fn kinks_follow_torch_autograd() {
    // relu'(0) = 0, leaky-relu'(0) = 0.01, elu'(0) = 1: torch's one-sided choices.
    assert_eq!(Activation::Relu.derivative(0.0_f64, 0.0), 0.0);
    assert_eq!(Activation::LeakyRelu.derivative(0.0_f64, 0.0), 0.01);
    assert_eq!(Activation::Elu.derivative(0.0_f64, 0.0), 1.0);
}
