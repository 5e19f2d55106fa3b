//! A multilayer perceptron trained by hand-written backpropagation, a libtorch reference model
//! built from the same [`Spec`], and the tools that prove the two compute the same thing.
//!
//! Notation follows the exercise sheet the project grew from: layers k = 1..L of widths
//! n_0..n_L; `a^k_j = Σ_i W^k_ij z^{k−1}_i` (2), `z^k = φ_k(a^k)`; `E = ½ Σ_n |ŷ_n − y(x_n)|²` (5);
//! `δ^k_j = φ'_k(a^k_j) Σ_i W^{k+1}_ji δ^{k+1}_i` (7); `∂E/∂W^k_ij = z^{k−1}_i δ^k_j` (6);
//! `ΔW = −η ∂E/∂W`. `W^k` is `n_{k−1} × n_k`; torch's `Linear.weight` is its transpose.

#![warn(missing_docs)]

pub mod commands;
pub mod data;
pub mod error;
pub mod fsio;
pub mod harness;
pub mod kernels;
pub mod manual;
pub mod model;
pub mod output;
pub mod plot;
#[cfg(feature = "torch")]
pub mod reference;

pub use manual::{Mlp, Workspace};
pub use model::{
    Activation, DType, Init, Layer, Loss, Matrix, OptimConfig, Optimizer, OptimizerKind, Params, Scalar, Spec,
};
#[cfg(feature = "torch")]
pub use reference::Reference;

// README.md's Rust example runs as a doctest, so it cannot go stale.
#[cfg(all(doctest, feature = "torch"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
