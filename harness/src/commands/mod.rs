//! The CLI's subcommands.

pub mod bench;
pub mod diff;
pub mod text;
pub mod vectors;
