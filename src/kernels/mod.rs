//! The numerical kernels both the batched MLP and the tools run on: the GEMM entry point
//! ([`gemm()`](gemm::gemm), over the `gemm` crate, the register tiles and the small products), the
//! matrices' row loops, the activations' loops over a layer, the vectorisable exp, tanh and
//! sigmoid ([`vmath`]), double-double arithmetic for the witness ([`dd`]), and the one run-time choice of instruction set with the one way a loop is
//! compiled for each (`simd`: `multiversion!` and `dispatch`).
//!
//! What the network is lives in [`crate::model`]; this module holds how its arithmetic runs fast.
//! `model` uses it for [`Matrix`](crate::Matrix)'s row loops, the activations' slice loops and the
//! optimizers' elementwise updates; `manual`, `harness` and `commands` call [`gemm()`](gemm::gemm)
//! and `simd`'s dispatch. Nothing here knows of layers, losses or libtorch, and every kernel gives
//! the same bits at every instruction set (each sum is one chain in a fixed order).

pub mod gemm;
pub mod matrix;
pub(crate) mod rows;
pub mod scalar;
pub(crate) mod simd;
pub(crate) mod small;
mod tile;
pub mod vmath;
