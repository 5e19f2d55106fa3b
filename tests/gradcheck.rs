//! The manual gradient agrees with central finite differences in f64, and a wrong gradient is
//! caught and named.

mod common;

use backprop::harness::check::{compare_params, Divergence, Tolerance};
use backprop::manual::gradcheck::{gradcheck, gradcheck_of};
use backprop::{Activation, DType, Loss, Mlp};
use common::{batch, spec};

#[test]
fn manual_gradient_matches_central_differences() {
    // Smooth activations only: a central difference straddling a kink (relu at 0) is not a
    // derivative. Truncation error is O(h²·E'''), round-off O(ε·E/h); h = 1e−6 balances them
    // near 1e−10 for O(1) losses.
    let smooth = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Gelu,
        Activation::Silu,
    ];
    for (i, &phi) in smooth.iter().enumerate() {
        for widths in [&[2, 1][..], &[3, 5, 2], &[2, 4, 1, 3], &[1, 6, 5, 4, 2]] {
            for bias in [true, false] {
                for loss in [Loss::HalfSse, Loss::Mse] {
                    let s = spec(widths, phi, i % 2 == 0, bias, loss, DType::F64, i as u64);
                    let mlp = Mlp::<f64>::new(s.clone()).unwrap();
                    let (x, y) = batch::<f64>(&s, 5, 11);
                    let report = gradcheck(&mlp, &x, &y, 1e-6, 1e-8, 1e-6)
                        .unwrap_or_else(|e| panic!("{phi}, {widths:?}: {e}"));
                    assert_eq!(report.checked, s.param_count());
                }
            }
        }
    }
}

#[test]
fn gradcheck_catches_a_wrong_derivative() {
    // The gradient of a tanh network offered as the gradient of a sigmoid network with the same
    // weights: the finite differences must reject it and name a layer and entry.
    let sig = spec(&[2, 3, 1], Activation::Sigmoid, false, true, Loss::HalfSse, DType::F64, 3);
    let tanh = spec(&[2, 3, 1], Activation::Tanh, false, true, Loss::HalfSse, DType::F64, 3);
    let (x, y) = batch::<f64>(&sig, 4, 1);
    let sig = Mlp::<f64>::new(sig).unwrap();
    let tanh = Mlp::<f64>::with_params(tanh, sig.params().clone()).unwrap();
    let (_, wrong) = tanh.gradients_literal(&x, &y);
    let err = gradcheck_of(&wrong, &sig, &x, &y, 1e-6, 1e-8, 1e-6)
        .expect_err("a wrong gradient passed")
        .to_string();
    assert!(err.contains("layer ") && err.contains('['), "{err}");
}

#[test]
fn a_perturbed_gradient_is_named_by_layer_tensor_and_entry() {
    let s = spec(&[3, 4, 4, 2], Activation::Tanh, false, true, Loss::HalfSse, DType::F64, 5);
    let mlp = Mlp::<f64>::new(s.clone()).unwrap();
    let (x, y) = batch::<f64>(&s, 6, 2);
    let (_, good) = mlp.gradients_literal(&x, &y);
    let mut bad = good.clone();
    bad.layers[1].w[(2, 3)] *= 1.0 + 1e-6;
    let tol = Tolerance { rtol: 1e-12, atol: 1e-14 };
    let d = Divergence::first(17, &compare_params(&bad, &good, true, tol, None))
        .expect("perturbation not caught");
    assert_eq!((d.step, d.layer, d.tensor, d.index), (17, 2, "dW", (2, 3)));
    assert_eq!(d.manual, bad.layers[1].w[(2, 3)]);
    assert_eq!(d.torch, good.layers[1].w[(2, 3)]);
    let text = d.to_string();
    assert!(text.contains("step 17") && text.contains("layer 2") && text.contains("dW2[2,3]"), "{text}");

    let mut bad_b = good.clone();
    bad_b.layers[2].b.as_mut().unwrap()[1] += 1e-3;
    let d = Divergence::first(0, &compare_params(&bad_b, &good, true, tol, None))
        .expect("bias perturbation not caught");
    assert_eq!((d.layer, d.tensor, d.index), (3, "db", (0, 1)));
}
