//! The reference interpreter: runs a [`Program`]'s prepared instructions one at a time.

use std::sync::Arc;

use crate::backend::{Backend, Exit};
use crate::gas::GasModel;
use crate::isa::Op;
use crate::memory::{Fault, PageMemory};
use crate::program::{DynamicJump, Inst, Program, NONE};
use crate::run_state::{charge, state_backend_methods, RunState};
use crate::semantics::{access_width, branch_taken, reg_imm, three_reg, two_reg};

/// The interpreter backend. One instance can run many programs; its memory pages are reused.
#[derive(Debug, Default)]
pub struct Interpreter {
    state: RunState,
    memory: PageMemory,
}

enum Flow {
    Next,
    Jump(u32),
    Exit(Exit),
    /// Exit that continues at the next instruction on resume.
    ExitNext(Exit),
}

impl Interpreter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn memory(&self) -> &PageMemory {
        &self.memory
    }

    pub fn memory_mut(&mut self) -> &mut PageMemory {
        &mut self.memory
    }

    pub fn program(&self) -> Option<&Arc<Program>> {
        self.state.program.as_ref()
    }

    /// Whether the next run charges a block before its first instruction.
    pub fn charge_pending(&self) -> bool {
        self.state.charge_pending
    }

    fn fault(fault: Fault) -> Flow {
        match fault {
            Fault::Panic => Flow::Exit(Exit::Panic),
            Fault::PageFault(address) => Flow::Exit(Exit::PageFault(address)),
        }
    }

    /// Runs from the current state; with `single` set, stops after one instruction.
    fn exec(&mut self, single: bool) -> Option<Exit> {
        let (program, mut idx) = match self.state.start() {
            Ok(start) => start,
            Err(exit) => return Some(exit),
        };
        let per_instruction = program.config.gas == GasModel::Instruction;
        let strict = program.profile().strict_branch_targets();
        let insts = &program.insts[..];
        let mut regs = self.state.regs;
        let mut gas = self.state.gas;
        let mut pending = self.state.charge_pending;
        let memory = &mut self.memory;

        let (exit, at, resume_next) = loop {
            let inst: &Inst = &insts[idx as usize];
            if pending && !charge(&mut gas, &mut pending, per_instruction, inst.cost) {
                break (Exit::OutOfGas, inst.pc, false);
            }
            let (ra, rb, rd) = (inst.ra as usize, inst.rb as usize, inst.rd as usize);
            let flow = match inst.op {
                Op::Trap => Flow::Exit(Exit::Trap),
                Op::Fallthrough | Op::Unlikely => Flow::Next,
                Op::Ecall => Flow::ExitNext(Exit::Ecall),
                Op::Ecalli => Flow::ExitNext(Exit::HostCall(inst.x as u32)),
                Op::LoadImm64 | Op::LoadImm => {
                    regs[ra] = inst.x;
                    Flow::Next
                }
                op @ (Op::StoreImmU8 | Op::StoreImmU16 | Op::StoreImmU32 | Op::StoreImmU64) => {
                    match store(memory, op, inst.x as u32, inst.y) {
                        Ok(()) => Flow::Next,
                        Err(f) => Self::fault(f),
                    }
                }
                op @ (Op::StoreImmIndU8 | Op::StoreImmIndU16 | Op::StoreImmIndU32 | Op::StoreImmIndU64) => {
                    match store(memory, op, regs[ra].wrapping_add(inst.x) as u32, inst.y) {
                        Ok(()) => Flow::Next,
                        Err(f) => Self::fault(f),
                    }
                }
                op @ (Op::StoreU8 | Op::StoreU16 | Op::StoreU32 | Op::StoreU64) => {
                    match store(memory, op, inst.x as u32, regs[ra]) {
                        Ok(()) => Flow::Next,
                        Err(f) => Self::fault(f),
                    }
                }
                op @ (Op::StoreIndU8 | Op::StoreIndU16 | Op::StoreIndU32 | Op::StoreIndU64) => {
                    match store(memory, op, regs[rb].wrapping_add(inst.x) as u32, regs[ra]) {
                        Ok(()) => Flow::Next,
                        Err(f) => Self::fault(f),
                    }
                }
                op
                @ (Op::LoadU8 | Op::LoadI8 | Op::LoadU16 | Op::LoadI16 | Op::LoadU32 | Op::LoadI32 | Op::LoadU64) => {
                    match load(memory, op, inst.x as u32) {
                        Ok(v) => {
                            regs[ra] = v;
                            Flow::Next
                        }
                        Err(f) => Self::fault(f),
                    }
                }
                op @ (Op::LoadIndU8
                | Op::LoadIndI8
                | Op::LoadIndU16
                | Op::LoadIndI16
                | Op::LoadIndU32
                | Op::LoadIndI32
                | Op::LoadIndU64) => match load(memory, op, regs[rb].wrapping_add(inst.x) as u32) {
                    Ok(v) => {
                        regs[ra] = v;
                        Flow::Next
                    }
                    Err(f) => Self::fault(f),
                },
                Op::Jump => static_jump(inst.target),
                Op::LoadImmJump => {
                    regs[ra] = inst.x;
                    static_jump(inst.target)
                }
                op @ (Op::BranchEqImm
                | Op::BranchNeImm
                | Op::BranchLtUImm
                | Op::BranchLeUImm
                | Op::BranchGeUImm
                | Op::BranchGtUImm
                | Op::BranchLtSImm
                | Op::BranchLeSImm
                | Op::BranchGeSImm
                | Op::BranchGtSImm) => branch(inst, branch_taken(op, regs[ra], inst.x), strict),
                op @ (Op::BranchEq | Op::BranchNe | Op::BranchLtU | Op::BranchLtS | Op::BranchGeU | Op::BranchGeS) => {
                    branch(inst, branch_taken(op, regs[ra], regs[rb]), strict)
                }
                Op::JumpInd => dynamic_jump(&program, regs[ra].wrapping_add(inst.x) as u32),
                Op::LoadImmJumpInd => {
                    let address = regs[rb].wrapping_add(inst.y) as u32;
                    regs[ra] = inst.x;
                    dynamic_jump(&program, address)
                }
                Op::Sbrk => Flow::Exit(Exit::Panic),
                op @ (Op::MoveReg
                | Op::CountSetBits64
                | Op::CountSetBits32
                | Op::LeadingZeroBits64
                | Op::LeadingZeroBits32
                | Op::TrailingZeroBits64
                | Op::TrailingZeroBits32
                | Op::SignExtend8
                | Op::SignExtend16
                | Op::ZeroExtend16
                | Op::ReverseBytes) => {
                    regs[rd] = two_reg(op, regs[ra]);
                    Flow::Next
                }
                op @ (Op::AddImm32
                | Op::AndImm
                | Op::XorImm
                | Op::OrImm
                | Op::MulImm32
                | Op::SetLtUImm
                | Op::SetLtSImm
                | Op::ShloLImm32
                | Op::ShloRImm32
                | Op::SharRImm32
                | Op::NegAddImm32
                | Op::SetGtUImm
                | Op::SetGtSImm
                | Op::ShloLImmAlt32
                | Op::ShloRImmAlt32
                | Op::SharRImmAlt32
                | Op::CmovIzImm
                | Op::CmovNzImm
                | Op::AddImm64
                | Op::MulImm64
                | Op::ShloLImm64
                | Op::ShloRImm64
                | Op::SharRImm64
                | Op::NegAddImm64
                | Op::ShloLImmAlt64
                | Op::ShloRImmAlt64
                | Op::SharRImmAlt64
                | Op::RotR64Imm
                | Op::RotR64ImmAlt
                | Op::RotR32Imm
                | Op::RotR32ImmAlt) => {
                    regs[ra] = reg_imm(op, regs[rb], inst.x, regs[ra]);
                    Flow::Next
                }
                op => {
                    regs[rd] = three_reg(op, regs[ra], regs[rb], regs[rd]);
                    Flow::Next
                }
            };
            if inst.terminator {
                pending = true;
            }
            match flow {
                Flow::Next => idx = inst.next,
                Flow::Jump(target) => idx = target,
                Flow::Exit(exit) => break (exit, inst.pc, false),
                Flow::ExitNext(exit) => break (exit, inst.pc, true),
            }
            if single {
                self.state.regs = regs;
                self.state.gas = gas;
                self.state.charge_pending = pending;
                self.state.pc = insts[idx as usize].pc;
                return None;
            }
        };
        self.state.regs = regs;
        self.state.gas = gas;
        Some(self.state.finish(exit, at, pending, resume_next))
    }
}

#[inline(always)]
fn static_jump(target: u32) -> Flow {
    if target == NONE {
        Flow::Exit(Exit::Panic)
    } else {
        Flow::Jump(target)
    }
}

#[inline(always)]
fn branch(inst: &Inst, taken: bool, strict: bool) -> Flow {
    if inst.target == NONE && (taken || strict) {
        Flow::Exit(Exit::Panic)
    } else if taken {
        Flow::Jump(inst.target)
    } else {
        Flow::Next
    }
}

#[inline(always)]
fn dynamic_jump(program: &Program, address: u32) -> Flow {
    match program.dynamic_target(address) {
        DynamicJump::Halt => Flow::Exit(Exit::Halt),
        DynamicJump::Invalid => Flow::Exit(Exit::Panic),
        DynamicJump::To(target) => Flow::Jump(target),
    }
}

#[inline(always)]
fn load(memory: &PageMemory, op: Op, address: u32) -> Result<u64, Fault> {
    Ok(match access_width(op) {
        (1, false) => u8::from_le_bytes(memory.load(address)?) as u64,
        (1, true) => i8::from_le_bytes(memory.load(address)?) as i64 as u64,
        (2, false) => u16::from_le_bytes(memory.load(address)?) as u64,
        (2, true) => i16::from_le_bytes(memory.load(address)?) as i64 as u64,
        (4, false) => u32::from_le_bytes(memory.load(address)?) as u64,
        (4, true) => i32::from_le_bytes(memory.load(address)?) as i64 as u64,
        _ => u64::from_le_bytes(memory.load(address)?),
    })
}

#[inline(always)]
fn store(memory: &mut PageMemory, op: Op, address: u32, value: u64) -> Result<(), Fault> {
    match access_width(op).0 {
        1 => memory.store(address, (value as u8).to_le_bytes()),
        2 => memory.store(address, (value as u16).to_le_bytes()),
        4 => memory.store(address, (value as u32).to_le_bytes()),
        _ => memory.store(address, value.to_le_bytes()),
    }
}

impl Backend for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn load(&mut self, program: Arc<Program>) {
        self.state.load(Some(program));
        self.memory.reset();
    }

    state_backend_methods!();

    fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.memory.pages().into_iter().map(|(a, w, bytes)| (a, w, bytes.to_vec())).collect()
    }

    fn memory_pages_sparse(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.memory
            .sparse_pages()
            .into_iter()
            .map(|(a, w, bytes)| (a, w, bytes.map_or_else(Vec::new, |b| b.to_vec())))
            .collect()
    }

    fn run(&mut self) -> Exit {
        self.exec(false).unwrap_or(Exit::Panic)
    }

    fn step(&mut self) -> Option<Exit> {
        self.exec(true)
    }
}
