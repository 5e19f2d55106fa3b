//! What a run leaves behind besides its trace ([`crate::harness::trace`]): `report.json`,
//! `metrics.csv` and the console summary, and saved weights; all written through the one
//! atomic-write helper, [`crate::fsio`]; a run's figures and index.html ([`figures`]); and (with
//! the `torch` feature) the saturation study's figures and report, `study`.

pub mod figures;
pub mod report;
#[cfg(feature = "torch")]
pub mod study;
pub mod weights;
