//! The interpreter: runs a [`Program`] through pre-selected handlers.
//!
//! On first run a program is translated into slots (`Slot`), one per instruction plus one gas
//! charge in front of every block entry (of every instruction under per-instruction gas);
//! static jumps and branches take their target block's charge themselves and skip it.
//! Each slot holds the handler its instruction's [`Kind`] selects, monomorphised per
//! operation, width and addressing mode, so executing an instruction is one indirect call
//! with no decoding, no per-instruction gas test and no match on the opcode. The handlers
//! compute through [`semantics`](crate::semantics); the run-state rules are [`RunState`]'s.

use std::sync::Arc;

use crate::backend::{Backend, Exit, NUM_REGS};
use crate::gas::GasModel;
use crate::isa::{Addr, Cond, Kind, Operands, Source, UnaryOp, Width};
use crate::memory::{Fault, PageMemory};
use crate::program::{DynamicJump, Program, NONE};
use crate::run_state::{charge, state_backend_methods, RunState};
use crate::semantics::{BinaryOp, SelectOp};

/// The interpreter backend. One instance can run many programs; its memory pages and its
/// translation buffers are reused.
#[derive(Debug, Default)]
pub struct Interpreter {
    state: RunState,
    memory: PageMemory,
    code: Translation,
}

/// A program translated into slots.
#[derive(Debug, Default)]
struct Translation {
    /// The program these slots are for.
    program: Option<Arc<Program>>,
    slots: Vec<Slot>,
    /// Slot index → the index of its instruction (or of the instruction it charges for).
    inst_of: Vec<u32>,
    /// Instruction index → the slot a jump to it enters (its charge, if it has one).
    entry: Vec<u32>,
    /// Instruction index → the instruction's own slot (after its charge).
    body: Vec<u32>,
}

/// What a handler returns instead of a slot index when the run stops.
const STOP: u32 = u32::MAX;

/// A handler: executes its slot (the third argument is the slot's index) and returns the
/// next slot's index, or [`STOP`] after recording the exit in the machine. Slots are laid out
/// in fall-through order, so the next instruction's slot is always the one after.
type Handler = fn(&mut Machine<'_>, &Slot, u32) -> u32;

/// One translated instruction, or the gas charge of a block entry.
#[derive(Clone, Copy)]
struct Slot {
    handler: Handler,
    /// Registers `rA`, `rB`, `rD` (always below 13).
    a: u8,
    b: u8,
    d: u8,
    /// `X` (the cost, for a charge).
    x: u64,
    /// `Y`; for a static jump or branch, the charge of the target block.
    y: u64,
    /// The static target's slot, `NONE` when the target is not valid: its instruction under
    /// block gas (the jump charges the block), its charge under per-instruction gas.
    target: u32,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot(x {:#x}, y {:#x}, target {})", self.x, self.y, self.target)
    }
}

/// The machine state handlers work on.
struct Machine<'a> {
    regs: [u64; 16],
    gas: i64,
    memory: &'a mut PageMemory,
    program: &'a Program,
    entry: &'a [u32],
    /// The exit, once a handler stops the run.
    exit: Option<Stopped>,
}

/// How and where a run stopped.
#[derive(Clone, Copy)]
struct Stopped {
    exit: Exit,
    /// The slot it stopped at.
    slot: u32,
    /// The next run continues after the instruction (host calls).
    resume_next: bool,
    /// Stopped at a block's charge: the charge is still due.
    at_charge: bool,
}

impl Machine<'_> {
    #[inline(always)]
    fn reg(&self, r: u8) -> u64 {
        self.regs[(r & 15) as usize]
    }

    #[inline(always)]
    fn set(&mut self, r: u8, value: u64) {
        self.regs[(r & 15) as usize] = value;
    }

    #[cold]
    fn stop(&mut self, exit: Exit, at: u32) -> u32 {
        self.exit = Some(Stopped { exit, slot: at, resume_next: false, at_charge: false });
        STOP
    }

    #[cold]
    fn fault(&mut self, fault: Fault, at: u32) -> u32 {
        match fault {
            Fault::Panic => self.stop(Exit::Panic, at),
            Fault::PageFault(address) => self.stop(Exit::PageFault(address), at),
        }
    }

    #[inline(always)]
    fn address<const ADDR: u8>(&self, slot: &Slot) -> u32 {
        let base = match ADDR {
            ABSOLUTE => 0,
            INDIRECT_A => self.reg(slot.a),
            _ => self.reg(slot.b),
        };
        base.wrapping_add(slot.x) as u32
    }

    /// A static jump: the target block's charge (`cost`) is taken here, and the run goes on
    /// at the target instruction itself.
    #[inline(always)]
    fn jump(&mut self, slot: &Slot, at: u32, cost: u64) -> u32 {
        let mut pending = true;
        if slot.target == NONE {
            self.stop(Exit::Panic, at)
        } else if charge(&mut self.gas, &mut pending, false, cost) {
            slot.target
        } else {
            self.exit = Some(Stopped { exit: Exit::OutOfGas, slot: slot.target, resume_next: false, at_charge: true });
            STOP
        }
    }

    #[inline(always)]
    fn dynamic_jump(&mut self, address: u32, at: u32) -> u32 {
        match self.program.dynamic_target(address) {
            DynamicJump::To(inst) => self.entry[inst as usize],
            DynamicJump::Halt => self.stop(Exit::Halt, at),
            DynamicJump::Invalid => self.stop(Exit::Panic, at),
        }
    }
}

const ABSOLUTE: u8 = 0;
const INDIRECT_A: u8 = 1;
const INDIRECT_B: u8 = 2;

const fn addr_index(addr: Addr) -> u8 {
    match addr {
        Addr::Absolute => ABSOLUTE,
        Addr::IndirectA => INDIRECT_A,
        Addr::IndirectB => INDIRECT_B,
    }
}

// ---- handlers ---------------------------------------------------------------------------

fn charge_block(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    let mut pending = true;
    if charge(&mut m.gas, &mut pending, false, s.x) {
        at + 1
    } else {
        out_of_gas(m, at)
    }
}

fn charge_unit(m: &mut Machine<'_>, _: &Slot, at: u32) -> u32 {
    m.gas = m.gas.wrapping_sub(1);
    if m.gas >= 0 {
        at + 1
    } else {
        out_of_gas(m, at)
    }
}

#[cold]
fn out_of_gas(m: &mut Machine<'_>, at: u32) -> u32 {
    m.exit = Some(Stopped { exit: Exit::OutOfGas, slot: at, resume_next: false, at_charge: true });
    STOP
}

fn trap(m: &mut Machine<'_>, _: &Slot, at: u32) -> u32 {
    m.stop(Exit::Trap, at)
}

fn panic(m: &mut Machine<'_>, _: &Slot, at: u32) -> u32 {
    m.stop(Exit::Panic, at)
}

fn nop(_: &mut Machine<'_>, _: &Slot, at: u32) -> u32 {
    at + 1
}

fn ecall(m: &mut Machine<'_>, _: &Slot, at: u32) -> u32 {
    m.exit = Some(Stopped { exit: Exit::Ecall, slot: at, resume_next: true, at_charge: false });
    STOP
}

fn host_call(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.exit = Some(Stopped { exit: Exit::HostCall(s.x as u32), slot: at, resume_next: true, at_charge: false });
    STOP
}

fn load_imm(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.set(s.a, s.x);
    at + 1
}

fn load<const N: usize, const SIGNED: bool, const ADDR: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    match m.memory.load_recent::<N>(m.address::<ADDR>(s)) {
        Some(value) => {
            m.set(s.a, extend::<N, SIGNED>(value));
            at + 1
        }
        None => load_table::<N, SIGNED, ADDR>(m, s, at),
    }
}

/// A load outside the recent pages: kept out of line so the handler's common path needs no
/// saved registers.
#[inline(never)]
fn load_table<const N: usize, const SIGNED: bool, const ADDR: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    match m.memory.load_le::<N>(m.address::<ADDR>(s)) {
        Ok(value) => {
            m.set(s.a, extend::<N, SIGNED>(value));
            at + 1
        }
        Err(fault) => m.fault(fault, at),
    }
}

/// The loaded `N` bytes as a register value.
#[inline(always)]
fn extend<const N: usize, const SIGNED: bool>(value: u64) -> u64 {
    if SIGNED && N < 8 {
        let shift = 64 - 8 * N as u32;
        (((value << shift) as i64) >> shift) as u64
    } else {
        value
    }
}

fn store<const N: usize, const IMM: bool, const ADDR: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    let value = if IMM { s.y } else { m.reg(s.a) };
    if m.memory.store_recent::<N>(m.address::<ADDR>(s), value) {
        at + 1
    } else {
        store_table::<N, IMM, ADDR>(m, s, at)
    }
}

/// A store outside the recent page (see [`load_table`]).
#[inline(never)]
fn store_table<const N: usize, const IMM: bool, const ADDR: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    let value = if IMM { s.y } else { m.reg(s.a) };
    match m.memory.store_le::<N>(m.address::<ADDR>(s), value) {
        Ok(()) => at + 1,
        Err(fault) => m.fault(fault, at),
    }
}

fn jump(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.jump(s, at, s.y)
}

fn load_imm_jump(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.set(s.a, s.x);
    m.jump(s, at, s.y)
}

fn jump_ind(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    let address = m.reg(s.a).wrapping_add(s.x) as u32;
    m.dynamic_jump(address, at)
}

fn load_imm_jump_ind(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    let address = m.reg(s.b).wrapping_add(s.y) as u32;
    m.set(s.a, s.x);
    m.dynamic_jump(address, at)
}

/// A branch; `FUSED`: `y` holds the target block's cost in its low half and the next
/// block's in its high half, and not taking the branch charges the next block here and goes
/// on at its first instruction (the slot after its charge).
fn branch<const COND: u8, const IMM: bool, const FUSED: bool>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    let rhs = if IMM { s.x } else { m.reg(s.b) };
    if Cond::from_index(COND).apply(m.reg(s.a), rhs) {
        m.jump(s, at, if FUSED { s.y & u32::MAX as u64 } else { s.y })
    } else if FUSED {
        if charge(&mut m.gas, &mut true, false, s.y >> 32) {
            at + 2
        } else {
            out_of_gas(m, at + 1)
        }
    } else {
        at + 1
    }
}

fn unary<const OP: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.set(s.d, UnaryOp::from_index(OP).apply(m.reg(s.a)));
    at + 1
}

fn binary_regs<const OP: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.set(s.d, BinaryOp::from_index(OP).apply(m.reg(s.a), m.reg(s.b), m.reg(s.d)));
    at + 1
}

fn binary_reg_imm<const OP: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.set(s.a, BinaryOp::from_index(OP).apply(m.reg(s.b), s.x, m.reg(s.a)));
    at + 1
}

fn binary_imm_reg<const OP: u8>(m: &mut Machine<'_>, s: &Slot, at: u32) -> u32 {
    m.set(s.a, BinaryOp::from_index(OP).apply(s.x, m.reg(s.b), m.reg(s.a)));
    at + 1
}

// ---- handler selection ------------------------------------------------------------------

struct SelectUnary;

impl SelectOp for SelectUnary {
    type Out = Handler;
    fn select<const OP: u8>(self) -> Handler {
        unary::<OP>
    }
}

struct SelectBinary(Operands);

impl SelectOp for SelectBinary {
    type Out = Handler;
    fn select<const OP: u8>(self) -> Handler {
        match self.0 {
            Operands::Regs => binary_regs::<OP>,
            Operands::RegImm => binary_reg_imm::<OP>,
            Operands::ImmReg => binary_imm_reg::<OP>,
        }
    }
}

/// A branch's handler: its right-hand side and whether it takes the next block's charge.
struct SelectBranch(Source, bool);

impl SelectOp for SelectBranch {
    type Out = Handler;
    fn select<const COND: u8>(self) -> Handler {
        match self {
            SelectBranch(Source::Imm, false) => branch::<COND, true, false>,
            SelectBranch(Source::Reg, false) => branch::<COND, false, false>,
            SelectBranch(Source::Imm, true) => branch::<COND, true, true>,
            SelectBranch(Source::Reg, true) => branch::<COND, false, true>,
        }
    }
}

fn memory<const N: usize, const FLAG: bool, const ADDR: u8, const STORE: bool>(
    m: &mut Machine<'_>,
    s: &Slot,
    at: u32,
) -> u32 {
    if STORE {
        store::<N, FLAG, ADDR>(m, s, at)
    } else {
        load::<N, FLAG, ADDR>(m, s, at)
    }
}

/// The handler of a load (`flag`: it sign-extends) or a store (`flag`: it stores `Y`) of
/// `width` bytes at `addr`.
fn memory_handler(store: bool, width: Width, flag: bool, addr: Addr) -> Handler {
    fn by_addr<const N: usize, const FLAG: bool, const STORE: bool>(addr: Addr) -> Handler {
        match addr {
            Addr::Absolute => memory::<N, FLAG, { addr_index(Addr::Absolute) }, STORE>,
            Addr::IndirectA => memory::<N, FLAG, { addr_index(Addr::IndirectA) }, STORE>,
            Addr::IndirectB => memory::<N, FLAG, { addr_index(Addr::IndirectB) }, STORE>,
        }
    }
    fn by_flag<const N: usize, const STORE: bool>(flag: bool, addr: Addr) -> Handler {
        if flag {
            by_addr::<N, true, STORE>(addr)
        } else {
            by_addr::<N, false, STORE>(addr)
        }
    }
    fn by_width<const STORE: bool>(width: Width, flag: bool, addr: Addr) -> Handler {
        match width {
            Width::B1 => by_flag::<1, STORE>(flag, addr),
            Width::B2 => by_flag::<2, STORE>(flag, addr),
            Width::B4 => by_flag::<4, STORE>(flag, addr),
            Width::B8 => by_flag::<8, STORE>(flag, addr),
        }
    }
    if store {
        by_width::<true>(width, flag, addr)
    } else {
        by_width::<false>(width, flag, addr)
    }
}

/// The handler of an instruction of `kind` (`fused`: a branch takes the next block's
/// charge, see [`branch`]).
fn handler(kind: Kind, fused: bool) -> Handler {
    match kind {
        Kind::Trap => trap,
        Kind::Nop => nop,
        Kind::Ecall => ecall,
        Kind::HostCall => host_call,
        Kind::Sbrk => panic,
        Kind::LoadImm => load_imm,
        Kind::Load { width, signed, addr } => memory_handler(false, width, signed, addr),
        Kind::Store { width, value, addr } => memory_handler(true, width, value == Source::Imm, addr),
        Kind::Jump => jump,
        Kind::LoadImmJump => load_imm_jump,
        Kind::JumpInd => jump_ind,
        Kind::LoadImmJumpInd => load_imm_jump_ind,
        Kind::Branch { cond, rhs } => cond.select(SelectBranch(rhs, fused)),
        Kind::Unary(op) => op.select(SelectUnary),
        Kind::Binary { op, operands } => op.select(SelectBinary(operands)),
    }
}

impl Translation {
    /// Translates `program` unless these slots are already its own.
    fn prepare(&mut self, program: &Arc<Program>) {
        if self.program.as_ref().is_some_and(|p| Arc::ptr_eq(p, program)) {
            return;
        }
        let insts = program.insts();
        let per_instruction = program.config.gas == GasModel::Instruction;
        let strict = program.profile().strict_branch_targets();
        self.slots.clear();
        self.inst_of.clear();
        self.entry.clear();
        self.body.clear();
        // Slot positions first (targets point forward and backward).
        let mut n = 0u32;
        for i in 0..insts.len() {
            let block_start = i == 0 || insts[i - 1].terminator || per_instruction;
            self.entry.push(n);
            n += block_start as u32;
            self.body.push(n);
            n += 1;
        }
        let charge: Handler = if per_instruction { charge_unit } else { charge_block };
        for (i, inst) in insts.iter().enumerate() {
            let body = self.body[i];
            let kind = inst.op.kind();
            // Falling through goes to the next slot: the next instruction's.
            debug_assert!(
                inst.next as usize == i + 1
                    || matches!(kind, Kind::Trap | Kind::Sbrk | Kind::Jump | Kind::JumpInd | Kind::LoadImmJumpInd),
                "instruction {i} falls through to {}",
                inst.next
            );
            if self.entry[i] != body {
                self.slots.push(Slot { handler: charge, a: 0, b: 0, d: 0, x: inst.cost, y: 0, target: NONE });
                self.inst_of.push(i as u32);
            }
            let static_jump = matches!(kind, Kind::Jump | Kind::LoadImmJump | Kind::Branch { .. });
            let (mut target, mut y) = match inst.target {
                NONE => (NONE, inst.y),
                t if static_jump && !per_instruction => (self.body[t as usize], insts[t as usize].cost),
                t if static_jump => (self.entry[t as usize], 0),
                t => (self.entry[t as usize], inst.y),
            };
            // The cost of the block that starts right after this instruction when this one
            // can take its charge (a terminator falling into it under block gas).
            let next_cost = insts
                .get(i + 1)
                .filter(|next| inst.terminator && !per_instruction && next.cost <= u32::MAX as u64)
                .map(|next| next.cost);
            // Under the strict rule a branch without a valid target always panics.
            let handler = if strict && inst.target == NONE && matches!(kind, Kind::Branch { .. }) {
                panic
            } else if let (Kind::Nop, Some(cost)) = (kind, next_cost) {
                // A fallthrough is a jump to the next instruction.
                (target, y) = (self.body[i + 1], cost);
                jump
            } else if let (Kind::Branch { .. }, Some(cost), true) = (kind, next_cost, y <= u32::MAX as u64) {
                y |= cost << 32;
                handler(kind, true)
            } else {
                handler(kind, false)
            };
            self.slots.push(Slot {
                handler,
                a: inst.ra.min(NUM_REGS as u8 - 1),
                b: inst.rb.min(NUM_REGS as u8 - 1),
                d: inst.rd.min(NUM_REGS as u8 - 1),
                x: inst.x,
                y,
                target,
            });
            self.inst_of.push(i as u32);
        }
        self.program = Some(program.clone());
    }
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

    /// Runs from the current state; with `single` set, stops after one instruction.
    fn exec(&mut self, single: bool) -> Option<Exit> {
        let index = match self.state.start() {
            Ok(index) => index,
            Err(exit) => return Some(exit),
        };
        // The program is borrowed from the run state for the whole run (a host call's
        // round trip takes no reference count).
        let Interpreter { state, memory, code } = self;
        let program = state.program.as_ref().expect("a run that starts has a program");
        code.prepare(program);
        let per_instruction = program.config.gas == GasModel::Instruction;
        let insts = program.insts();
        let mut regs = [0u64; 16];
        regs[..NUM_REGS].copy_from_slice(&state.regs);
        let mut machine = Machine { regs, gas: state.gas, memory, program, entry: &code.entry, exit: None };
        let slots = &code.slots[..];
        let inst_of = &code.inst_of[..];
        let mut at = code.body[index as usize];
        let mut pending = state.charge_pending;
        if pending && !charge(&mut machine.gas, &mut pending, per_instruction, insts[index as usize].cost) {
            machine.exit = Some(Stopped { exit: Exit::OutOfGas, slot: at, resume_next: false, at_charge: true });
        } else if single {
            let slot = &slots[at as usize];
            at = (slot.handler)(&mut machine, slot, at);
            // A step ends before the next block's charge: a static jump that took its
            // target's charge gives it back (or its failed charge is not reported yet).
            if let Some(Stopped { at_charge: true, slot, .. }) = machine.exit {
                machine.exit = None;
                at = code.entry[inst_of[slot as usize] as usize];
            } else if at != STOP && !per_instruction {
                let inst = inst_of[at as usize] as usize;
                if code.entry[inst] != at {
                    machine.gas += insts[inst].cost as i64;
                    at = code.entry[inst];
                }
            }
        } else {
            // STOP is past the end, so one test ends the loop on an exit. The dispatch is
            // written out twice: each indirect call site keeps its own prediction history.
            // Of two to six and eight sites, two predicted the bench programs' handlers best
            // (`bench` against PolkaVM's interpreter: four were up to 15% slower on sort and
            // memops, five and eight up to 80% slower on blake2b).
            while let Some(slot) = slots.get(at as usize) {
                at = (slot.handler)(&mut machine, slot, at);
                let Some(slot) = slots.get(at as usize) else { break };
                at = (slot.handler)(&mut machine, slot, at);
            }
        }
        state.regs.copy_from_slice(&machine.regs[..NUM_REGS]);
        state.gas = machine.gas;
        match machine.exit {
            Some(stopped) => {
                let inst = &insts[inst_of[stopped.slot as usize] as usize];
                let pending = stopped.at_charge || inst.terminator || per_instruction;
                Some(state.finish(stopped.exit, inst.pc, pending, stopped.resume_next))
            }
            None if (at as usize) < slots.len() => {
                // One step done: the next instruction, behind its charge if it has one.
                let inst = inst_of[at as usize];
                state.pc = insts[inst as usize].pc;
                state.charge_pending = at != code.body[inst as usize];
                None
            }
            // Fell off the translated code (the program always ends in a trap, so only a
            // broken translation gets here).
            None => Some(state.finish(Exit::Panic, state.pc, true, false)),
        }
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

    /// Translates the loaded program (decoding its instruction list first).
    fn precompile(&mut self) {
        if let Some(program) = self.state.program.clone() {
            self.code.prepare(&program);
        }
    }
}
