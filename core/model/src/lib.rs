//! javm-model: a reference model of the JAM PVM, written straight from PVMSPEC-1
//! (`../shared/spec/pvm.md`) as an independent judge of javm's backends.
//!
//! The interpreter and the JIT share the engine's instruction table, decoder, program
//! preparation, gas costs and memory rules; a mistake there makes both wrong together. This
//! crate shares none of it. It has its own opcode table ([`table`], from the spec's §0 and §5),
//! its own blob parser ([`blob`], §1), decodes every instruction from the raw bytes when it
//! runs it (§2, §4), computes ϖ and block costs from their definitions (§3, §9) and keeps its
//! own page memory with the fault rule (§7). Its only use of `javm-engine` is the
//! [`javm_engine::Backend`] trait it implements and the types in that trait's signatures;
//! `tests/independence.rs` enforces that.
//!
//! It is written to be obviously right, not fast: every rule is a few lines next to the
//! spec section it comes from.

#![forbid(unsafe_code)]

pub mod blob;
pub mod coverage;
pub mod machine;
pub mod memory;
pub mod table;

pub use machine::{Model, Readings};
