//! The floor of the crate: numbers and arrays, and how their arithmetic runs fast. The scalar
//! types ([`scalar::Scalar`]: f32 and f64), the dense row-major [`matrix::Matrix`], the one GEMM
//! entry point ([`gemm()`](gemm::gemm): the `gemm` crate, the register tiles or the small
//! products), the matrices' row loops (bias rows, column sums), the vectorisable exp, tanh and
//! sigmoid ([`vmath`]), one core's measured FMA peak ([`peak`]), and the one run-time choice of
//! instruction set with the one way a loop is compiled for each (`simd`: `multiversion!` and
//! `dispatch`, capped by `BACKPROP_SIMD`).
//!
//! It imports nothing else of the crate: it knows of no layer, loss or libtorch. What a network
//! is lives in [`crate::model`], which builds on these types and compiles its own loops (the
//! activations over a layer, the optimizers' updates) through `simd`. Every kernel gives the same
//! bits at every instruction set (each sum is one chain in a fixed order).

pub mod gemm;
pub mod matrix;
pub mod peak;
pub(crate) mod rows;
pub mod scalar;
pub(crate) mod simd;
pub(crate) mod small;
mod tile;
pub mod vmath;

/// The machine's cores, as the standard library sees them (1 when it cannot tell): the default
/// thread count of every pool the crate builds.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
