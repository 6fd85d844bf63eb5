//! The scan module compiled on its own for fuzzing (sandload has no lib target).
#[path = "../../src/scan/mod.rs"]
pub mod scan;
