//! The equivalence harness: trains the implementation under test and the libtorch reference side
//! by side from the same weights on the same batches, and compares them at every step.
//!
//! - [`check`]: comparing two tensors entry by entry against a tolerance, and naming where they part;
//! - [`outcome`]: what a run is told and what it finds;
//! - [`batches`], [`saturation`]: the batch order, and what "saturated" means and the share of
//!   saturated units;
//! - `study` (with the `torch` feature): the saturation study's experiment;
//! - `run` (with the `torch` feature): the run itself, for any implementation of
//!   [`crate::manual::Backprop`];
//! - `replay` (with the `torch` feature): checking a recorded trace of an implementation written
//!   elsewhere; [`trace`]: the trace itself, written and read.

pub mod batches;
pub mod bound;
pub mod check;
pub mod dd;
#[cfg(feature = "torch")]
pub mod diagnose;
pub mod manifest;
pub mod outcome;
#[cfg(feature = "torch")]
pub mod replay;
#[cfg(feature = "torch")]
pub mod run;
pub mod saturation;
#[cfg(feature = "torch")]
pub mod study;
pub mod trace;
pub mod witness;

pub use batches::{batch_order, Batches};
pub use outcome::*;
#[cfg(feature = "torch")]
pub use run::{run, run_with};
pub use saturation::saturated_pct;
