//! Every activation's value and derivative equal torch's value and autograd derivative, on a grid
//! that includes 0, ±1e−30, ±1, ±30, ±1000 and ±1e4, in f32 and f64.
#![cfg(feature = "torch")]

use backprop::reference::{slice_to_tensor, tensor_to_vec, torch_activation};
use backprop::{Activation, Scalar};
use tch::Kind;

fn grid() -> Vec<f64> {
    let mut g = vec![
        0.0, 1e-30, -1e-30, 1.0, -1.0, 30.0, -30.0, 1000.0, -1000.0, 1e4, -1e4, 20.0, -20.0, 1e-7, -1e-7,
    ];
    // Where exp over- or underflows in f32 (±88) and f64 (±709), and the formulas switch branches.
    g.extend([88.5, -88.5, 103.0, -103.0, 709.5, -709.5, 745.0, -745.0, 0.375, -0.375, 44.0, -44.0]);
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
        let a = slice_to_tensor(&xs, &[xs.len() as i64]).to_kind(kind).set_requires_grad(true);
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

/// Distance in units in the last place. Results below the smallest normal count as equal (the
/// SIMD exp flushes subnormal results to 0).
fn ulps<T: Scalar>(got: T, want: T) -> f64 {
    let (g, w) = (got.to64(), want.to64());
    let tiny = T::min_positive_value().to64();
    if g == w || (g.is_nan() && w.is_nan()) || (g.abs() < tiny && w.abs() < tiny) {
        return 0.0;
    }
    (g - w).abs() / (T::epsilon().to64() * w.abs().max(T::min_positive_value().to64()))
}

fn dense_grid() -> Vec<f64> {
    // Log-spaced magnitudes from 1e−12 to 1e3, both signs, plus a fine linear grid near 0.
    let mut g: Vec<f64> = (0..=30_000).map(|i| 10f64.powf(-12.0 + 15.0 * i as f64 / 30_000.0)).collect();
    g.extend((1..20_000).map(|i| i as f64 * 1e-4));
    let neg: Vec<f64> = g.iter().map(|v| -v).collect();
    g.extend(neg);
    g
}

fn vmath_accuracy<T: Scalar>() -> [f64; 4] {
    use backprop::model::vmath;
    let mut worst = [0.0f64; 4];
    for x in dense_grid() {
        let x = T::of(x);
        // The references: libm's exp, exp_m1 and tanh, and σ from libm's exp.
        let sigmoid_ref = T::one() / (T::one() + (-x).exp());
        for (w, (got, want)) in worst.iter_mut().zip([
            (vmath::exp(x), x.exp()),
            (vmath::expm1(x), x.exp_m1()),
            (vmath::tanh(x), x.tanh()),
            (vmath::sigmoid(x), sigmoid_ref),
        ]) {
            *w = w.max(ulps(got, want));
        }
    }
    worst
}

#[test]
fn simd_friendly_exp_expm1_tanh_and_sigmoid_are_within_a_few_ulps_of_libm() {
    // libm itself is within 1 ulp of the true values; 4 ulps between the two leaves room for
    // both errors and the few roundings of the range reduction.
    for (dtype, worst) in [("f64", vmath_accuracy::<f64>()), ("f32", vmath_accuracy::<f32>())] {
        eprintln!(
            "{dtype}: max ulps exp {:.2}, expm1 {:.2}, tanh {:.2}, sigmoid {:.2}",
            worst[0], worst[1], worst[2], worst[3]
        );
        for (name, w) in ["exp", "expm1", "tanh", "sigmoid"].iter().zip(worst) {
            assert!(w <= 4.0, "{dtype} {name}: {w:.2} ulps from libm");
        }
    }
}
