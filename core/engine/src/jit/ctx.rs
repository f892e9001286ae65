//! The context block shared by compiled code and Rust: it sits at the start of the context page,
//! `CTX_REGION` bytes below the guest base held in `r15`, so compiled code reaches every field
//! as `[r15 + disp(field)]`.

use std::mem::offset_of;

use crate::backend::NUM_REGS;
use crate::program::Program;

use super::compile::{Compiled, GuestAccess};
use super::memory::{GuestView, CTX_REGION};

/// Why compiled code returned.
pub(crate) mod kind {
    pub const TRAP: u32 = 0;
    pub const PANIC: u32 = 1;
    pub const HALT: u32 = 2;
    pub const OUT_OF_GAS: u32 = 3;
    pub const HOST_CALL: u32 = 4;
    pub const ECALL: u32 = 5;
    /// `exit_arg` is the page address.
    pub const PAGE_FAULT: u32 = 6;
    /// Single-step mode: the instruction finished; `exit_arg` is the next instruction index.
    pub const STEP: u32 = 7;
    /// Single-step mode: a dynamic jump to address `exit_arg`, resolved by Rust.
    pub const STEP_DYNAMIC: u32 = 8;
    /// Out of gas on entering a block, from the call before its charge: `exit_arg` is the
    /// call's return address, the charging entry, which names the block (no charge given
    /// back yet).
    pub const OUT_OF_GAS_CALL: u32 = 9;
}

/// Per-run information the slow paths need about the running module.
pub(crate) struct RunInfo {
    pub program: *const Program,
    /// The running module's instructions.
    pub insts: *const Compiled,
    pub code_base: usize,
    /// The slow-path descriptors: the module's registered accesses.
    pub accesses: *const GuestAccess,
    pub access_count: usize,
    /// Code offset of the exit routine that expects `exit_kind`/`exit_inst` already set.
    pub exit_common: usize,
    pub memory: GuestView,
}

impl RunInfo {
    /// The pc of instruction `index` of the running module.
    ///
    /// # Safety
    /// `index` must number an instruction of the running module (`insts` has one entry per
    /// instruction).
    pub unsafe fn pc_of(&self, index: u32) -> u32 {
        // SAFETY: guaranteed by the caller; the module outlives the run.
        unsafe { (*self.insts.add(index as usize)).pc }
    }
}

#[repr(C)]
pub(crate) struct Ctx {
    pub regs: [u64; NUM_REGS],
    pub gas: i64,
    pub spill: [u64; 2],
    pub host_rsp: u64,
    pub exit_kind: u32,
    pub exit_inst: u32,
    pub exit_arg: u64,
    /// Slow-path descriptor index (set by the fault handler or by compiled code).
    pub slow_desc: u32,
    /// Instruction index for the generic helper.
    pub helper_inst: u32,
    pub run: *const RunInfo,
    /// The thread's GS base while compiled code runs with GS pointing at guest memory.
    pub saved_gs: u64,
}

const _: () = assert!(std::mem::size_of::<Ctx>() <= CTX_REGION);

/// Displacement of a context field from the guest base (`r15`).
const fn disp(offset: usize) -> i32 {
    offset as i32 - CTX_REGION as i32
}

pub(crate) const REGS: i32 = disp(offset_of!(Ctx, regs));
pub(crate) const GAS: i32 = disp(offset_of!(Ctx, gas));
pub(crate) const SPILL0: i32 = disp(offset_of!(Ctx, spill));
pub(crate) const SPILL1: i32 = SPILL0 + 8;
pub(crate) const HOST_RSP: i32 = disp(offset_of!(Ctx, host_rsp));
pub(crate) const EXIT_KIND: i32 = disp(offset_of!(Ctx, exit_kind));
pub(crate) const EXIT_INST: i32 = disp(offset_of!(Ctx, exit_inst));
pub(crate) const EXIT_ARG: i32 = disp(offset_of!(Ctx, exit_arg));
pub(crate) const SLOW_DESC: i32 = disp(offset_of!(Ctx, slow_desc));
pub(crate) const HELPER_INST: i32 = disp(offset_of!(Ctx, helper_inst));
pub(crate) const SAVED_GS: i32 = disp(offset_of!(Ctx, saved_gs));
/// Displacement from `r15` of the context block itself.
pub(crate) const CTX: i32 = disp(0);
