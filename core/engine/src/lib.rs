//! javm-engine: the JAM PVM execution engine (PVMSPEC-1).
//!
//! Layers, bottom up: [`isa`] (the instruction table), [`starts`] (instruction-start flags),
//! [`blob`] (program blobs), [`decode`] (skip and operands), [`program`] (blocks, jump
//! targets, gas costs), [`memory`], [`gas`], [`semantics`] (instruction value semantics), and
//! the backends behind [`backend::Backend`]: [`interp::Interpreter`]. [`asm`] and [`disasm`]
//! read and write the instruction text form.
//!
//! `unsafe` lives only in the JIT (executable code, guest memory mapping, signal handling):
//! every other module is denied it, and each unsafe block there carries a `SAFETY:` comment
//! (`clippy::undocumented_unsafe_blocks`).

#![deny(unsafe_code)]

pub mod asm;
pub mod backend;
pub mod blob;
pub mod decode;
pub mod disasm;
pub mod gas;
pub mod interp;
pub mod isa;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(unsafe_code)]
#[deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
pub mod jit;
pub mod memory;
pub mod program;
pub mod run_state;
pub mod semantics;
pub mod starts;

pub use backend::{Backend, Exit, MemoryError, NUM_REGS};
pub use blob::{Blob, BlobError};
pub use gas::GasModel;
pub use interp::Interpreter;
pub use isa::{Format, Op, Profile};
pub use program::{Config, Program};
pub use starts::Starts;
