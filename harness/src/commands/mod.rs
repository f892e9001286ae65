//! The CLI's subcommands.

pub mod bench;
pub mod vectors;
