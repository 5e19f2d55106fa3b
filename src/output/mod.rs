//! What a run leaves behind: `report.json` and `metrics.csv`, the safetensors trace, saved weights,
//! the figures of a compare run, all written through one atomic-write helper ([`fsio`]).

pub mod figures;
pub mod fsio;
pub mod report;
pub mod trace;
pub mod weights;
