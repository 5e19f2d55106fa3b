//! What `compare` and `check` draw: [`crate::output::figures`], under the path the commands and
//! tests have always used.

pub use crate::output::figures::*;
