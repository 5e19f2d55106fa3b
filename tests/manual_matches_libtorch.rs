//! literal == batched == libtorch, step by step: loss, every ∂E/∂W^k and ∂E/∂b^k, and the
//! updated W^k and b^k, over depth 1..6, widths including 1, every activation, bias on and off,
//! batch 1 and 9, both losses, f32 and f64.
//!
//! Tolerance: every entry against its own round-off bound (src/harness/bound/, docs/verdict.md),
//! the harness's default. The largest error ÷ bound is printed (`--nocapture`): a correct
//! implementation stays well below 1.
#![cfg(feature = "torch")]

mod common;

use backprop::{Activation, DType, Loss, Spec};
use common::{architectures, lockstep, spec, Worst};

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
                            DType::F64 => lockstep::<f64>(&s, batch, 3, 0.05, None),
                            DType::F32 => lockstep::<f32>(&s, batch, 3, 0.05, None),
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
    eprintln!("f64: {cases} cases × 3 steps; largest normwise relative errors and error ÷ bound: {worst:?}");
}

#[test]
fn literal_batched_and_libtorch_agree_in_f32() {
    let (cases, worst) = sweep(DType::F32);
    eprintln!("f32: {cases} cases × 3 steps; largest normwise relative errors and error ÷ bound: {worst:?}");
}

#[test]
fn seed_network_without_bias_matches_for_a_larger_batch() {
    // The exercise sheet's own setting: no bias, eq. (5), a full batch of 64.
    for phi in [Activation::Tanh, Activation::Sigmoid] {
        let s = spec(&[3, 16, 16, 2], phi, false, false, Loss::HalfSse, DType::F64, 7);
        lockstep::<f64>(&s, 64, 5, 0.01, None).unwrap_or_else(|e| panic!("{e}"));
    }
}
