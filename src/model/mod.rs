//! What a network is, in description only: both implementations are built from these types and
//! neither owns them. The spec (widths, activations, bias, loss, dtype) and its validation, the
//! scalar types, the activations beside their derivatives, the losses, the parameters and their
//! initialisation, the optimizers' update rules, and the matrix type (storage and shape).
//!
//! How the arithmetic runs is [`crate::kernels`]'s: the matrix's row loops, the activations'
//! loops over a layer and the GEMM are there, and the optimizers' and the SGD step's elementwise
//! loops are compiled per instruction set through its dispatch.

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
