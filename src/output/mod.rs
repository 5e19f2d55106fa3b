//! What a run leaves behind: `report.json` and `metrics.csv`, the safetensors trace, saved weights,
//! all written through one atomic-write helper ([`fsio`]).

pub mod fsio;
pub mod report;
pub mod trace;
pub mod weights;
