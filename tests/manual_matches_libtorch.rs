//! literal == batched == libtorch, step by step: loss, every ∂E/∂W^k and ∂E/∂b^k, and the
//! updated W^k and b^k, over depth 1..6, widths including 1, every activation, bias on and off,
//! batch 1 and 9, both losses, f32 and f64.
//!
//! Tolerance, per entry, in the manner of `torch.testing.assert_close`: |a − b| ≤ atol + rtol·|b|
//! with rtol = atol = 1024·ε (ε = 2.2e−16 in f64, 1.2e−7 in f32). Why: each entry is a chain of
//! dot products, and a length-n dot product computed in another order differs by up to
//! γ_n·Σ|a_i b_i| ≈ n·ε times the size of its terms (Higham, Accuracy and Stability, §3.1). Here
//! the chains are at most 6 layers of sums of at most 9 terms each way, the data and weights are
//! O(1), so entries agree to a few hundred ε of the size of the terms; 1024·ε leaves headroom
//! for the exp/tanh/erf of two different maths libraries. That is 2.3e−13 in f64, six orders
//! tighter than assert_close's f64 default (1e−7), and 1.2e−4 in f32.
#![cfg(feature = "torch")]

mod common;

use backprop::harness::check::Tolerance;
use backprop::{Activation, DType, Loss, Scalar, Spec};
use common::{architectures, lockstep, spec, Worst};

fn tolerance<T: Scalar>() -> Tolerance {
    let eps = T::epsilon().to64();
    Tolerance { rtol: 1024.0 * eps, atol: 1024.0 * eps }
}

fn sweep(dtype: DType) -> (usize, Worst) {
    let mut worst = Worst::default();
    let mut cases = 0;
    for (a, &phi) in Activation::ALL.iter().enumerate() {
        for (w, widths) in architectures().iter().enumerate() {
            for bias in [true, false] {
                for loss in [Loss::HalfSse, Loss::Mse] {
                    for batch in [1, 9] {
                        let seed = (a * 1000 + w * 10 + batch) as u64;
                        // Even architectures put φ on the output layer too; odd ones use identity.
                        let s: Spec = spec(widths, phi, w % 2 == 0, bias, loss, dtype, seed);
                        let result = match dtype {
                            DType::F64 => lockstep::<f64>(&s, batch, 3, 0.05, tolerance::<f64>()),
                            DType::F32 => lockstep::<f32>(&s, batch, 3, 0.05, tolerance::<f32>()),
                        };
                        worst.merge(&result.unwrap_or_else(|e| panic!("{e}")));
                        cases += 1;
                    }
                }
            }
        }
    }
    (cases, worst)
}

#[test]
fn literal_batched_and_libtorch_agree_in_f64() {
    let (cases, worst) = sweep(DType::F64);
    eprintln!("f64: {cases} cases × 3 steps; largest normwise relative error: {worst:?}");
}

#[test]
fn literal_batched_and_libtorch_agree_in_f32() {
    let (cases, worst) = sweep(DType::F32);
    eprintln!("f32: {cases} cases × 3 steps; largest normwise relative error: {worst:?}");
}

#[test]
fn seed_network_without_bias_matches_for_a_larger_batch() {
    // The exercise sheet's own setting: no bias, eq. (5), a full batch of 64.
    for phi in [Activation::Tanh, Activation::Sigmoid] {
        let s = spec(&[3, 16, 16, 2], phi, false, false, Loss::HalfSse, DType::F64, 7);
        lockstep::<f64>(&s, 64, 5, 0.01, tolerance::<f64>()).unwrap_or_else(|e| panic!("{e}"));
    }
}
