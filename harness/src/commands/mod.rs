//! The CLI's subcommands.

pub mod vectors;
