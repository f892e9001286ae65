//! Rust code called from compiled code: the slow memory path and the generic helper.

use crate::isa::{Format, Op};
use crate::memory::Fault;
use crate::program::Program;
use crate::semantics::{access_width, reg_imm, three_reg, two_reg};

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
    let (ctx, _, program) = unsafe { parts(ctx) };
    let inst = &program.insts[ctx.helper_inst as usize];
    let regs = &mut ctx.regs;
    let (ra, rb, rd) = (inst.ra as usize, inst.rb as usize, inst.rd as usize);
    match inst.op.format() {
        Format::TwoReg => regs[rd] = two_reg(inst.op, regs[ra]),
        Format::TwoRegImm => regs[ra] = reg_imm(inst.op, regs[rb], inst.x, regs[ra]),
        Format::ThreeReg => regs[rd] = three_reg(inst.op, regs[ra], regs[rb], regs[rd]),
        _ => unreachable!("{} has no helper", inst.op),
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
    let descs = unsafe { std::slice::from_raw_parts(run.access_descs, run.access_count) };
    let (index, cont) = descs[ctx.slow_desc as usize];
    let inst = &program.insts[index as usize];
    let regs = &mut ctx.regs;
    let (ra, rb) = (inst.ra as usize, inst.rb as usize);
    let (width, signed) = access_width(inst.op);
    let memory = run.memory;
    let load = |address: u64| memory.load(address as u32, width);
    let result = match inst.op {
        Op::StoreImmU8 | Op::StoreImmU16 | Op::StoreImmU32 | Op::StoreImmU64 => {
            memory.store(inst.x as u32, width, inst.y)
        }
        Op::StoreImmIndU8 | Op::StoreImmIndU16 | Op::StoreImmIndU32 | Op::StoreImmIndU64 => {
            memory.store(regs[ra].wrapping_add(inst.x) as u32, width, inst.y)
        }
        Op::StoreU8 | Op::StoreU16 | Op::StoreU32 | Op::StoreU64 => memory.store(inst.x as u32, width, regs[ra]),
        Op::StoreIndU8 | Op::StoreIndU16 | Op::StoreIndU32 | Op::StoreIndU64 => {
            memory.store(regs[rb].wrapping_add(inst.x) as u32, width, regs[ra])
        }
        Op::LoadU8 | Op::LoadI8 | Op::LoadU16 | Op::LoadI16 | Op::LoadU32 | Op::LoadI32 | Op::LoadU64 => {
            load(inst.x).map(|v| regs[ra] = extend(v, width, signed))
        }
        _ => load(regs[rb].wrapping_add(inst.x)).map(|v| regs[ra] = extend(v, width, signed)),
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
