//! javm-kernel: the capability kernel of javm (KSPEC-1 §6–§12), on top of the execution engine
//! (`javm-engine`) and the capability layer (`javm-cap`).
//!
//! - [`stack`]: the call stack with instance and reference entries (§8).
//! - [`assist`]: the kernel-assist trait and its in-memory implementation (§7).
//! - [`memory`]: frame memory regions, kernel memory accesses and the MEM-1 digest (§6.3, §6.6,
//!   §12.3).
//! - [`frame`]: instance entries and `build_entry` (§6).
//! - [`ecall`]: the ecall dispatcher, MGMT and host ops (§9, §11).
//! - [`vm`]: the VM and its driver loop: invoke, nested calls, yield and resume (§10).
//! - [`observe`]: KOBS-1 records, digests and their field-by-field diff (§12).
//! - [`differential`]: runs one invocation on two backends and reports where they first differ.

#![forbid(unsafe_code)]

pub mod assist;
pub mod differential;
pub mod ecall;
pub mod error;
pub mod frame;
pub mod memory;
pub mod observe;
pub mod stack;
pub mod vm;

pub use assist::{AssistSnapshot, InMemoryAssist, KernelAssist};
pub use ecall::{EcallKind, EcallOutcome};
pub use error::{KernelError, VmError};
pub use frame::{build_entry, default_config, FrameState, InstanceEntry, Programs};
pub use observe::{diff, FieldDiff, Kobs, Trace, TraceRecord};
pub use stack::{CallStack, Entry, EntryStatus, DEFAULT_MAX_DEPTH};
pub use vm::{BackendFactory, CallResult, FaultReason, LegEnd, Vm};
