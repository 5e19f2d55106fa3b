//! What a network is, in description only: both implementations are built from these types and
//! neither owns them. The spec (widths, activations, bias, loss, dtype) and its validation, the
//! scalar types, the activations beside their derivatives, the losses, the parameters and their
//! initialisation, the matrix type and its one GEMM entry point.

pub mod activation;
pub mod loss;
pub mod matrix;
pub mod optim;
pub mod params;
pub mod scalar;
pub(crate) mod simd;
pub mod spec;
pub(crate) mod splitmix;
mod tile;
pub mod vmath;

pub use activation::Activation;
pub use matrix::Matrix;
pub use optim::{OptimConfig, Optimizer, OptimizerKind};
pub use params::{Layer, Params};
pub use scalar::Scalar;
pub use spec::{DType, Init, Loss, Spec};
