//! Rust code called from compiled code: the slow memory path and the generic helper.

use crate::isa::{Addr, Kind, Source};
use crate::memory::Fault;
use crate::program::Program;
use crate::semantics::alu;

use super::compile::GuestAccess;
use super::ctx::{kind, Ctx, RunInfo};

/// Borrows the context, the run information and the program of the current run.
///
/// # Safety
/// `ctx` must be the context block of a run in progress (compiled code passes it), whose
/// `run` pointer refers to the `RunInfo` of that run.
unsafe fn parts<'a>(ctx: *mut Ctx) -> (&'a mut Ctx, &'a RunInfo, &'a Program) {
    // SAFETY: guaranteed by the caller; the context page, the RunInfo (on the stack of
    // `Jit::enter`) and the program (held by an Arc there) outlive the call from compiled code.
    unsafe {
        let ctx = &mut *ctx;
        let run = &*ctx.run;
        let program = &*run.program;
        (ctx, run, program)
    }
}

/// Executes the register-only instruction `ctx.helper_inst` on the saved registers with the
/// reference semantics.
///
/// # Safety
/// `ctx` must be the context block of a run in progress (see [`parts`]); compiled code passes
/// its own.
pub(crate) unsafe fn helper(ctx: *mut Ctx) {
    // SAFETY: guaranteed by the caller.
    let (ctx, run, program) = unsafe { parts(ctx) };
    // SAFETY: compiled code names one of its own instructions.
    let inst = program.decode_at(unsafe { run.pc_of(ctx.helper_inst) });
    match alu(inst.op.kind(), &ctx.regs, inst.ra, inst.rb, inst.rd, inst.x) {
        Some((dst, value)) => ctx.regs[dst as usize] = value,
        None => unreachable!("{} has no helper", inst.op),
    }
}

/// Performs the guest access of slow-path descriptor `ctx.slow_desc` with the exact rules on
/// the saved registers. Returns the code address to continue at: after the access, or the
/// exit routine (with the exit recorded in the context) when the access fails.
///
/// # Safety
/// `ctx` must be the context block of a run in progress (see [`parts`]) whose `RunInfo`
/// describes the running module's access descriptors; compiled code passes its own.
pub(crate) unsafe fn memory(ctx: *mut Ctx) -> usize {
    // SAFETY: guaranteed by the caller.
    let (ctx, run, program) = unsafe { parts(ctx) };
    // SAFETY: the descriptor table belongs to the running module and has `access_count` entries.
    let descs = unsafe { std::slice::from_raw_parts(run.accesses, run.access_count) };
    let GuestAccess { inst: index, cont, .. } = descs[ctx.slow_desc as usize];
    // SAFETY: every descriptor names an instruction of the running module.
    let inst = program.decode_at(unsafe { run.pc_of(index) });
    let regs = &mut ctx.regs;
    let (ra, rb) = (inst.ra as usize, inst.rb as usize);
    let memory = run.memory;
    let address = |addr: Addr| match addr {
        Addr::Absolute => inst.x as u32,
        Addr::IndirectA => regs[ra].wrapping_add(inst.x) as u32,
        Addr::IndirectB => regs[rb].wrapping_add(inst.x) as u32,
    };
    let result = match inst.op.kind() {
        Kind::Load { width, signed, addr } => {
            let width = width.bytes();
            memory.load(address(addr), width).map(|v| regs[ra] = extend(v, width, signed))
        }
        Kind::Store { width, value, addr } => {
            let value = match value {
                Source::Imm => inst.y,
                Source::Reg => regs[ra],
            };
            memory.store(address(addr), width.bytes(), value)
        }
        _ => unreachable!("{} does not access memory", inst.op),
    };
    match result {
        Ok(()) => run.code_base + cont as usize,
        Err(fault) => {
            ctx.exit_inst = index;
            match fault {
                Fault::Panic => ctx.exit_kind = kind::PANIC,
                Fault::PageFault(page) => {
                    ctx.exit_kind = kind::PAGE_FAULT;
                    ctx.exit_arg = page as u64;
                }
            }
            run.code_base + run.exit_common
        }
    }
}

fn extend(value: u64, width: u32, signed: bool) -> u64 {
    if !signed || width == 8 {
        return value;
    }
    let shift = 64 - 8 * width;
    (((value << shift) as i64) >> shift) as u64
}
