//! Numeric kernels: the arithmetic the computations are built from, apart from what a network is.
//! Double-double arithmetic for the witness ([`dd`]).

pub mod dd;
