//! The CLI's subcommands.

pub mod bench;
pub mod corpus;
pub mod diff;
pub mod nightly;
pub mod serve;
pub mod text;
pub mod vectors;
