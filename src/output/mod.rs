//! What a run leaves behind besides its trace ([`crate::harness::trace`]): `report.json`,
//! `metrics.csv` and the console summary, and saved weights; all written through the one
//! atomic-write helper, [`crate::fsio`].

pub mod report;
pub mod weights;
