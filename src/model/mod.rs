//! What a network is, in description only: both implementations are built from these types and
//! neither owns them. The spec (widths, activations, bias, loss, dtype) and its validation, the
//! activations beside their derivatives, the losses, the parameters and their initialisation, and
//! the optimizers' update rules. The scalar and matrix types are [`crate::kernels`]'s, re-exported
//! here as [`Scalar`] and [`Matrix`].
//!
//! How the arithmetic runs is [`crate::kernels`]'s: the GEMM and the matrix's row loops are there.
//! The loops written here (an activation over a whole layer, an optimizer's elementwise update)
//! are compiled per instruction set through its one mechanism (`kernels::simd`); no file here
//! names an instruction set.

pub mod activation;
pub mod loss;
pub mod optim;
pub mod params;
pub mod spec;
pub(crate) mod splitmix;

pub use crate::kernels::matrix::Matrix;
pub use crate::kernels::scalar::Scalar;
pub use activation::Activation;
pub use optim::{OptimConfig, Optimizer, OptimizerKind};
pub use params::{Layer, Params};
pub use spec::{DType, Init, Loss, Spec};
