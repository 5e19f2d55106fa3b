//! Every activation's value and derivative equal torch's value and autograd derivative, on a grid
//! that includes 0, ±1e−30, ±1, ±30, ±1000 and ±1e4, in f32 and f64.
#![cfg(feature = "torch")]

use backprop::harness::bound::ULPS;
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

/// Each side computes its own value and its own derivative (the derivative from its own z, as
/// the harness compares them), and they agree within what the verdict's round-off bound allows
/// for one activation (src/harness/bound/forward.rs, (B2) and (B3)): [`ULPS`] ulps of the terms each
/// formula rounds ([`Activation::value_scale`], [`Activation::derivative_scale`]) on either side,
/// plus, for a derivative taken through the output, the difference in z carried through
/// dφ'/dz — so a one-ulp difference in z of a saturated tanh, amplified by 1 − z², is allowed
/// exactly as much as the bound allows it, and no more.
fn check<T: Scalar>(kind: Kind) {
    let eps = T::epsilon().to64();
    let normal = T::min_positive_value().to64();
    let xs: Vec<T> = grid().into_iter().map(T::of).collect();
    let mut worst: f64 = 0.0;
    for phi in Activation::ALL {
        let a = slice_to_tensor(&xs, &[xs.len() as i64]).to_kind(kind).set_requires_grad(true);
        let z = torch_activation(phi, &a);
        z.sum(kind).backward();
        let tz: Vec<T> = tensor_to_vec(&z);
        let tdz: Vec<T> = tensor_to_vec(&a.grad());
        for ((&x, &want_z), &want_dz) in xs.iter().zip(&tz).zip(&tdz) {
            let got_z = phi.apply(x);
            let got_dz = phi.derivative(x, got_z);
            let (a64, z64, d64) = (x.to64(), want_z.to64(), want_dz.to64());
            let dz = (got_z.to64() - z64).abs();
            let carried = match phi {
                Activation::Tanh => 2.0 * z64.abs() * dz,
                Activation::Sigmoid => (1.0 - 2.0 * z64).abs() * dz,
                _ => 0.0,
            };
            let tol_z = 2.0 * ULPS * eps * phi.value_scale(a64, z64) + normal;
            let tol_d = 2.0 * ULPS * eps * phi.derivative_scale(a64, z64, d64) + carried + normal;
            for (what, got, want, tol) in
                [("value", got_z, want_z, tol_z), ("derivative", got_dz, want_dz, tol_d)]
            {
                let (g, w) = (got.to64(), want.to64());
                let diff = if g == w { 0.0 } else { (g - w).abs() };
                worst = worst.max(diff / tol);
                assert!(
                    diff <= tol,
                    "{phi} {what} at a = {x:e} ({kind:?}): manual {g:e}, torch {w:e} (difference {diff:e}, tolerance {tol:e})"
                );
            }
        }
    }
    eprintln!("{kind:?}: largest difference {worst:.3} of the bound's allowance");
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

/// 2^e over the whole exponent range (`powi` loses the subnormal ones).
fn pow2(e: i32) -> f64 {
    2f64.powi(e / 2) * 2f64.powi(e - e / 2)
}

/// A double-double number hi + lo (|lo| ≤ ½ ulp(hi)): about 106 bits, the reference the
/// vectorised exp, expm1, tanh and σ are measured against (libm itself is off by up to an ulp).
#[derive(Clone, Copy, Debug)]
struct Dd(f64, f64);

impl Dd {
    fn new(x: f64) -> Dd {
        Dd(x, 0.0)
    }
    /// Knuth's two-sum: a + b = s + e exactly.
    fn two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        let bb = s - a;
        Dd(s, (a - (s - bb)) + (b - bb))
    }
    fn add(self, o: Dd) -> Dd {
        if !(self.0.is_finite() && o.0.is_finite()) {
            return Dd::new(self.0 + o.0);
        }
        let s = Dd::two_sum(self.0, o.0);
        let t = Dd::two_sum(self.1, o.1);
        let s = Dd::two_sum(s.0, s.1 + t.0);
        Dd::two_sum(s.0, s.1 + t.1)
    }
    fn neg(self) -> Dd {
        Dd(-self.0, -self.1)
    }
    fn mul(self, o: Dd) -> Dd {
        let p = self.0 * o.0;
        let e = self.0.mul_add(o.0, -p);
        Dd::two_sum(p, e + self.0 * o.1 + self.1 * o.0)
    }
    fn div(self, o: Dd) -> Dd {
        if o.0.is_infinite() {
            return Dd::new(0.0);
        }
        let q1 = self.0 / o.0;
        let r = self.add(o.mul(Dd::new(q1)).neg());
        let q2 = r.0 / o.0;
        let r = r.add(o.mul(Dd::new(q2)).neg());
        Dd::two_sum(q1, q2).add(Dd::new(r.0 / o.0))
    }
    /// e^x − 1 by its Taylor series, for |x| ≤ ½.
    fn expm1_series(x: Dd) -> Dd {
        let (mut term, mut sum) = (x, x);
        for k in 2..40 {
            term = term.mul(x).div(Dd::new(k as f64));
            sum = sum.add(term);
        }
        sum
    }
    /// e^x: x = n ln2 + r, e^r = (1 + expm1(r/2^8))^(2^8); ∞ and 0 outside f64's range.
    fn exp(x: f64) -> Dd {
        if x > 709.0 {
            return Dd::new(x.exp());
        }
        if x < -708.0 {
            // Subnormal or zero results: ulps() does not measure those.
            return Dd::new(x.exp());
        }
        const LN2: Dd = Dd(std::f64::consts::LN_2, 2.319_046_813_846_299_6e-17);
        let n = (x / LN2.0).round();
        let r = Dd::new(x).add(LN2.mul(Dd::new(n)).neg());
        let mut e = Dd::new(1.0).add(Dd::expm1_series(r.mul(Dd::new(1.0 / 256.0))));
        for _ in 0..8 {
            e = e.mul(e);
        }
        e.mul(Dd::new(pow2(n as i32)))
    }
    fn expm1(x: f64) -> Dd {
        if x.abs() <= 0.5 {
            Dd::expm1_series(Dd::new(x))
        } else {
            Dd::exp(x).add(Dd::new(-1.0))
        }
    }
    fn tanh(x: f64) -> Dd {
        if x < 0.0 {
            return Dd::tanh(-x).neg();
        }
        if x < 1.0 {
            // tanh x = expm1(2x) / (expm1(2x) + 2): no cancellation for 0 ≤ x < 1.
            let e = Dd::expm1(2.0 * x);
            return e.div(e.add(Dd::new(2.0)));
        }
        // tanh x = (1 − t) / (1 + t), t = e^{−2x} ≤ e^{−2}: no cancellation, no overflow.
        let t = Dd::exp(-2.0 * x);
        Dd::new(1.0).add(t.neg()).div(Dd::new(1.0).add(t))
    }
    fn sigmoid(x: f64) -> Dd {
        if x < -700.0 {
            // σ(x) = e^x / (1 + e^x) ≈ e^x, subnormal or zero here.
            return Dd::new(x.exp());
        }
        Dd::new(1.0).div(Dd::new(1.0).add(Dd::exp(-x)))
    }
}

/// Distance of `got` from the (nearly) exact `want`, in ulps of `T` at `want`. Below T's
/// smallest normal number an ulp is the fixed subnormal spacing and relative accuracy means
/// nothing, so results there count as equal (the harness's bound gives them an absolute
/// allowance instead).
fn ulps<T: Scalar>(got: T, want: Dd) -> f64 {
    let g = got.to64();
    if !want.0.is_finite() || want.0.abs() > T::max_value().to64() {
        // The exact value overflows T: the correctly rounded result is ±∞.
        return if g.is_infinite() && g.signum() == want.0.signum() { 0.0 } else { f64::INFINITY };
    }
    let normal = T::min_positive_value().to64();
    if g.abs() < normal && want.0.abs() < normal {
        return 0.0;
    }
    let bits = if T::epsilon().to64() == f64::EPSILON { 52 } else { 23 };
    let ulp = pow2(want.0.abs().max(normal).log2().floor() as i32 - bits);
    ((g - want.0) - want.1).abs() / ulp
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
    use backprop::kernels::vmath;
    let mut worst = [0.0f64; 4];
    for x in dense_grid() {
        let x = T::of(x);
        let x64 = x.to64();
        for (w, (got, want)) in worst.iter_mut().zip([
            (vmath::exp(x), Dd::exp(x64)),
            (vmath::expm1(x), Dd::expm1(x64)),
            (vmath::tanh(x), Dd::tanh(x64)),
            (vmath::sigmoid(x), Dd::sigmoid(x64)),
        ]) {
            *w = w.max(ulps(got, want));
        }
    }
    worst
}

#[test]
fn the_double_double_reference_is_exact_where_libm_is_correctly_rounded() {
    // At these points libm's results are correctly rounded; the reference must round to them.
    for x in [0.5, 1.0, -1.0, 1e-3, 10.0, -20.0, 100.0] {
        assert_eq!(Dd::exp(x).0, x.exp(), "exp {x}");
        assert_eq!(Dd::tanh(x).0, x.tanh(), "tanh {x}");
    }
    assert_eq!(Dd::expm1(1e-10).0, 1e-10f64.exp_m1());
    // e = 2.718281828459045 + 1.4456468917292502e-16 (the next 53 bits).
    let e = Dd::exp(1.0);
    assert!(e.0 == std::f64::consts::E && (e.1 - 1.4456468917292502e-16).abs() < 1e-30, "{e:?}");
}

#[test]
fn simd_friendly_exp_expm1_tanh_and_sigmoid_are_within_a_few_ulps_of_the_exact_value() {
    // Measured against a double-double reference (about 106 bits), so these are distances from
    // the exact value. The verdict's round-off bound assumes ULPS (4) for either side; these
    // must stay below 3 so that holds with room.
    for (dtype, worst) in [("f64", vmath_accuracy::<f64>()), ("f32", vmath_accuracy::<f32>())] {
        eprintln!(
            "{dtype}: max ulps from the exact value: exp {:.2}, expm1 {:.2}, tanh {:.2}, sigmoid {:.2}",
            worst[0], worst[1], worst[2], worst[3]
        );
        for (name, w) in ["exp", "expm1", "tanh", "sigmoid"].iter().zip(worst) {
            assert!(w <= 3.0, "{dtype} {name}: {w:.2} ulps from the exact value");
        }
    }
}
