//! javm-harness: runs PVM programs from test vectors and from the generator through the
//! engine's backends and reports every difference from the expected results and between
//! backends.

#![forbid(unsafe_code)]

pub mod backends;
pub mod bench_programs;
#[cfg(feature = "polkavm")]
pub mod bench_reference;
pub mod commands;
pub mod coverage;
pub mod diff;
pub mod fuzzing;
pub mod generator;
pub mod input;
pub mod kernel_vectors;
pub mod oracle;
pub mod progress;
pub mod protocol;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod state;
pub mod vectors;
