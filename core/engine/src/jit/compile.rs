//! Translation of a [`Program`] into x86-64 code.
//!
//! Register assignment: the 13 guest registers live in host registers ([`GUEST`]); `r15` holds
//! the guest memory base (the context block sits at a fixed negative offset from it, see
//! [`super::ctx`]); `rcx` is the only scratch register. Operations that need more (division,
//! the upper-half multiplications, dynamic jumps) spill `rax`/`rdx` to the context block. The
//! gas counter lives in the stack slot at `[rsp]` while compiled code runs (stack-relative
//! read-modify-writes are cheap on current cores); the trampoline copies it in and out.
//!
//! Layout: every instruction gets a body label (entered without charging gas); instructions
//! that can start a block (the successors of terminators, valid static and dynamic targets;
//! every instruction in the per-instruction gas model) get a charging prologue in front of
//! the body. Rust charges gas itself when it enters compiled code, so any instruction can be a
//! resumption point. A block charge's out-of-gas exit is a call right before it (see
//! [`x64::charge_prefix`]); other cold paths (exits, the out-of-gas paths of per-instruction
//! and wide charges) are emitted after all instructions.
//!
//! Guest memory accesses are a single host instruction: `gs:[reg32 + disp]` when GS holds the
//! guest base ([`Features::fsgsbase`]), else `[r15 + rcx]` after computing the 32-bit address
//! into `ecx`. Each access is registered with its code offset; when it faults, the signal
//! handler redirects to the slow path, which redoes the access in Rust with the exact PVM
//! rules.

// dynasm's dynamic-register operands (`Rq(n)`) convert the register number with `.into()`.
#![allow(clippy::useless_conversion)]

use std::io;

use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};

use crate::decode::Code as DecodeCode;
use crate::gas::GasModel;
use crate::isa::{Addr, BinaryOp, Cond as BranchCond, Kind, Op, Operands, Source, UnaryOp, Width, TABLE};
use crate::program::{
    is_jump_target_after_block, is_jump_target_at, target_allowed, walk, Inst, Program, Start, Visit, HALT_ADDRESS,
    NONE,
};

use super::code::{Code, CodeArena};
use super::ctx::{self, kind};
use super::emit::Emitter;
use super::x64::{self, Alu, AluImm, Cond, Mem, Shift};

/// Host register numbers of guest registers φ0..φ12.
pub(crate) const GUEST: [u8; 13] = [3, 5, 12, 13, 14, 6, 7, 8, 9, 10, 11, 0, 2];
const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;

/// CPU features the code generator may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Features {
    pub popcnt: bool,
    pub lzcnt: bool,
    /// `tzcnt`, `andn`.
    pub bmi1: bool,
    /// `shlx`/`shrx`/`sarx`, `rorx`.
    pub bmi2: bool,
    /// `rdgsbase`/`wrgsbase` usable in user mode: guest memory is addressed through the GS
    /// segment base, one instruction per access.
    pub fsgsbase: bool,
}

impl Features {
    /// What this CPU offers.
    pub fn detect() -> Features {
        Features {
            popcnt: std::arch::is_x86_feature_detected!("popcnt"),
            lzcnt: std::arch::is_x86_feature_detected!("lzcnt"),
            bmi1: std::arch::is_x86_feature_detected!("bmi1"),
            bmi2: std::arch::is_x86_feature_detected!("bmi2"),
            fsgsbase: fsgsbase_enabled(),
        }
    }

    /// Plain x86-64: every optional instruction replaced by its fallback.
    pub fn baseline() -> Features {
        Features { popcnt: false, lzcnt: false, bmi1: false, bmi2: false, fsgsbase: false }
    }
}

/// Whether the kernel lets user code use the FSGSBASE instructions (Linux 5.9+ on CPUs that
/// have them).
fn fsgsbase_enabled() -> bool {
    const HWCAP2_FSGSBASE: libc::c_ulong = 1 << 1;
    // SAFETY: getauxval only reads the auxiliary vector.
    let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    hwcap2 & HWCAP2_FSGSBASE != 0
}

/// Compiled code of one program.
pub(crate) struct Module {
    code: Code,
    /// Offset of the entry trampoline: `extern "sysv64" fn(base: *mut u8, entry: usize)`.
    pub enter: usize,
    /// Per instruction, in pc order: where its code is, its pc, whether it ends a block.
    pub insts: Vec<Compiled>,
    /// The registered guest accesses, in code order (their descriptors for the slow path).
    pub accesses: Vec<GuestAccess>,
    pub slow_entry: usize,
    pub exit_common: usize,
    /// Code addresses of the dynamic-jump table entries (0: invalid). Read by compiled code.
    _jump_table: Vec<usize>,
}

/// A registered guest access: where its instruction is in the code, the guest instruction
/// it belongs to, and where the code continues after it. Its place in
/// [`Module::accesses`] is its slow-path descriptor number.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct GuestAccess {
    pub at: u32,
    pub inst: u32,
    pub cont: u32,
}

/// The vectors of modules dropped from the cache, and the compiler's own lists, kept for
/// the next compilation: their memory is faulted in already, where a new allocation of that
/// size would be faulted in page by page again (the allocator returns large freed blocks,
/// and free space at the top of its heap, to the system).
#[derive(Default)]
pub(crate) struct Spare {
    insts: Vec<Compiled>,
    accesses: Vec<GuestAccess>,
    cold: Vec<Cold>,
    forward_targets: Vec<(usize, u32, u32)>,
}

impl Spare {
    /// Keeps the larger vectors of `module` and of what is kept already.
    pub fn keep(&mut self, module: Option<Module>) {
        if let Some(Module { insts, accesses, .. }) = module {
            if insts.capacity() > self.insts.capacity() {
                self.insts = insts;
            }
            if accesses.capacity() > self.accesses.capacity() {
                self.accesses = accesses;
            }
        }
    }

    /// A kept vector, emptied, with room for `len` elements.
    fn take<T>(kept: &mut Vec<T>, len: usize) -> Vec<T> {
        let mut v = std::mem::take(kept);
        v.clear();
        v.reserve(len);
        v
    }
}

/// What the runtime knows of one compiled instruction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Compiled {
    /// Offset of its body (entered without charging gas).
    pub body: u32,
    pub pc: u32,
    /// The length of its charging entry, right before the body; 0 when it has none.
    pub entry_len: u8,
    pub ends_block: bool,
    /// Whether its pc is a valid jump target (in ϖ).
    pub jump_target: bool,
}

impl Compiled {
    /// Offset of its charging entry, [`NOT_YET`] when it has none.
    #[inline]
    pub fn entry(&self) -> u32 {
        if self.entry_len == 0 {
            NOT_YET
        } else {
            self.body - u32::from(self.entry_len)
        }
    }
}

impl Module {
    /// The number of the instruction at `pc`, if one was compiled there.
    pub fn index_of(&self, pc: u32) -> Option<u32> {
        index_of(&self.insts, pc)
    }

    pub fn code_start(&self) -> usize {
        self.code.start()
    }

    pub fn code_len(&self) -> usize {
        self.code.len()
    }

    /// The block charge whose out-of-gas call returns to `address` (a
    /// [`kind::OUT_OF_GAS_CALL`] exit's argument), if it is one of this module's.
    pub fn failed_charge(&self, address: u64) -> Option<FailedCharge> {
        // The call returns to the charging entry right after it.
        let entry = usize::try_from(address).ok()?.checked_sub(self.code_start())?;
        let body = u32::try_from(entry.checked_add(x64::CHARGE_LEN)?).ok()?;
        // Bodies are in code order; an instruction that emits nothing shares its body with
        // the next, and only the first of them can have a charging entry.
        let inst = self.insts.partition_point(|c| c.body < body);
        self.insts.get(inst).filter(|c| c.body == body && c.entry_len as usize == x64::CHARGE_LEN)?;
        let call = entry.checked_sub(x64::CALL_LEN)?;
        let charge = self.code.bytes().get(call..entry + x64::CHARGE_LEN).and_then(x64::charged)?;
        Some(FailedCharge { inst: inst as u32, charge })
    }
}

/// The x86 condition code of a branch condition.
fn branch_cond(cond: BranchCond) -> Cond {
    match cond {
        BranchCond::Eq => Cond::E,
        BranchCond::Ne => Cond::Ne,
        BranchCond::LtU => Cond::B,
        BranchCond::LeU => Cond::Be,
        BranchCond::GeU => Cond::Ae,
        BranchCond::GtU => Cond::A,
        BranchCond::LtS => Cond::L,
        BranchCond::LeS => Cond::Le,
        BranchCond::GeS => Cond::Ge,
        BranchCond::GtS => Cond::G,
    }
}

macro_rules! asm {
    ($ops:expr $(; $($t:tt)*)?) => {
        dynasm!($ops ; .arch x64 $(; $($t)*)?)
    };
}

/// A static target compiled after the jump to it (see [`Compiler::static_target`]).
const FORWARD: u32 = u32::MAX - 1;

/// A charging entry not emitted (yet, or at all: see `Compiler::entry`).
pub(crate) const NOT_YET: u32 = u32::MAX;

/// Whether the instruction after one that ends a block (`prev_terminator`) or not gets a
/// charging entry (see [`Compiler::has_entry`]), given the compile's settings.
#[inline(always)]
fn entry_after(step: bool, per_instruction: bool, prev_terminator: bool) -> bool {
    !step & (per_instruction | prev_terminator)
}

/// Where a jump goes.
#[derive(Clone, Copy)]
enum Goto {
    Label(DynamicLabel),
    /// The charging entry of an instruction.
    Entry(u32),
    /// The charging entry of the instruction at a pc not compiled yet.
    Forward(u32),
}

/// A block charge made with a 32-bit immediate that ran out of gas. Its out-of-gas exit sits
/// right before it ([`x64::charge_prefix`]): a call of the runtime's out-of-gas routine, whose
/// return address (the charging entry) tells Rust which charge it was
/// ([`Module::failed_charge`]); Rust gives the charge back and names the instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FailedCharge {
    /// The block's first instruction.
    pub inst: u32,
    /// The charge to give back, read from the charge's own immediate.
    pub charge: i32,
}

/// Out-of-line code emitted after all instructions.
enum Cold {
    /// `mov ecx, inst; jmp exit`.
    Exit { label: DynamicLabel, inst: u32, exit: DynamicLabel },
    /// Out of gas per instruction (nothing to give back) or at a block whose cost is wider
    /// than 32 bits (given back from `rcx`), then exit; the charges with a 32-bit immediate
    /// have their call before them ([`FailedCharge`]). `from` is where the jump to it ends.
    OutOfGas { from: usize, inst: u32, refund: Option<u64> },
    /// Single-step mode: the instruction `from` continues at `to` ([`FORWARD`]: at the
    /// instruction at `to_pc`).
    Step { label: DynamicLabel, from: u32, to: u32, to_pc: u32 },
}

struct Exits {
    common: DynamicLabel,
    with_inst: DynamicLabel,
    trap: DynamicLabel,
    panic: DynamicLabel,
    halt: DynamicLabel,
    out_of_gas: DynamicLabel,
    out_of_gas_call: DynamicLabel,
    host_call: DynamicLabel,
    ecall: DynamicLabel,
    step: DynamicLabel,
    step_dynamic: DynamicLabel,
    slow_mem: DynamicLabel,
    helper: DynamicLabel,
}

impl Exits {
    /// Every label of the runtime, in one fixed order.
    fn all(&self) -> [DynamicLabel; 13] {
        [
            self.common,
            self.with_inst,
            self.trap,
            self.panic,
            self.halt,
            self.out_of_gas,
            self.out_of_gas_call,
            self.host_call,
            self.ecall,
            self.step,
            self.step_dynamic,
            self.slow_mem,
            self.helper,
        ]
    }
}

struct Compiler<'p> {
    program: &'p Program,
    /// The program's code, decoded as it is compiled.
    code: DecodeCode<'p>,
    /// The instance's assembly buffer, held by value while the program is compiled (its
    /// fields then sit in the compiler itself, one load nearer than behind a reference) and
    /// handed back by [`Compiler::finish`].
    ops: Emitter,
    features: Features,
    step: bool,
    per_instruction: bool,
    /// Unit block costs with charging entries: each entry's charge is the length of its
    /// block, patched in when the block ends.
    unit_blocks: bool,
    strict: bool,
    /// Jumps to charging entries emitted before the entry: where each jump ends, and the
    /// instruction.
    entry_fixups: Vec<(usize, u32)>,
    /// Jumps to the charging entries of static targets not compiled yet: where each jump
    /// ends, the target's pc, and the number of instructions compiled when it was made (the
    /// target comes at or after that one).
    forward_targets: Vec<(usize, u32, u32)>,
    /// The pc of the target [`Compiler::static_target`] last found to come later.
    forward_pc: u32,
    /// Under unit block costs: the first instruction of the block being compiled, and where
    /// its charge's immediate is; and where the immediate of the next block's charge is,
    /// once its charge is emitted (right after the terminator ending this block).
    block_first: u32,
    block_charge: Option<usize>,
    next_block_charge: Option<usize>,
    /// Code offset of the runtime's out-of-gas routine (the runtime comes first).
    gas_routine: usize,
    /// The length of the charging entry emitted for the next instruction (0: none).
    pending_entry_len: u8,
    /// Each instruction compiled so far: its body's offset, its entry's length, pc and block
    /// end.
    insts: Vec<Compiled>,
    /// Labels of bodies jumped to before they were emitted (rare: a block entry reached
    /// without a charge), defined once every body has its offset.
    forward_bodies: Vec<(u32, DynamicLabel)>,
    cold: Vec<Cold>,
    exits: Exits,
    accesses: Vec<GuestAccess>,
    /// Address of the table of code addresses (stable: allocated before emission), one per
    /// stored entry; filled once the code is placed.
    jump_table: Vec<usize>,
    /// With 0-byte entries: the one target every entry resolves to, if valid.
    uniform_target: Option<u32>,
}

/// The generic helper: Rust executes instruction `ctx.helper_inst` (a register-only ALU op) on
/// the saved registers.
///
/// # Safety
/// Only compiled code calls this, with the context block of its run in progress.
unsafe extern "sysv64" fn jit_helper(ctx: *mut ctx::Ctx) {
    // SAFETY: guaranteed by the caller (compiled code passes its own context block).
    unsafe { super::slow::helper(ctx) }
}

/// The slow memory path: Rust performs the access of descriptor `ctx.slow_desc`.
///
/// # Safety
/// Only compiled code calls this, with the context block of its run in progress.
unsafe extern "sysv64" fn jit_slow_mem(ctx: *mut ctx::Ctx) -> usize {
    // SAFETY: guaranteed by the caller (compiled code passes its own context block).
    unsafe { super::slow::memory(ctx) }
}

/// Compiles `program`. With `step` set every instruction returns to Rust after it ran.
/// `ops` is the instance's reusable assembly buffer.
pub(crate) fn compile(
    program: &Program,
    features: Features,
    step: bool,
    ops: &mut Emitter,
    spare: &mut Spare,
    arena: &mut CodeArena,
) -> io::Result<Module> {
    // About three bytes of code per byte of guest code, as compiled programs go: that much is
    // faulted in ahead of the pass (the lease holds the rest of its chunk, and a module that
    // outgrows even that is moved to the heap and copied back when placed).
    let expected = program.blob.code.len().saturating_mul(4).saturating_add(2048);
    match arena.lease(expected) {
        Ok(lease) => ops.clear_into(lease),
        Err(_) => {
            ops.clear();
            ops.reserve(expected);
        }
    }
    let mut c = Compiler::new(program, std::mem::take(ops), spare, features, step);
    c.emit_runtime();
    match c.ops.offset_of(c.exits.out_of_gas_call) {
        Some(routine) => c.gas_routine = routine,
        None => c.ops.fail("the runtime has no out-of-gas routine"),
    }
    c.emit_instructions();
    c.resolve_forward();
    c.emit_cold();
    spare.cold = std::mem::take(&mut c.cold);
    spare.forward_targets = std::mem::take(&mut c.forward_targets);
    let module;
    (module, *ops) = c.finish(arena);
    if module.is_err() {
        // Let go of the lease: nothing is written into it any more.
        ops.clear();
    }
    module
}

/// The compiler's side of [`walk`]: each instruction is compiled as the pass reaches it.
impl Visit for Compiler<'_> {
    /// One dispatch on the opcode per instruction: each arm decodes and compiles one opcode,
    /// whose format and kind are constants there ([`Compiler::start_op`]).
    #[inline(always)]
    fn start(&mut self, code: &DecodeCode, start: Start, unit: bool) {
        macro_rules! by_opcode {
            ($i:ident; $($n:literal)*) => {{
                // Every instruction of the table has an arm (the numbers are `Op as u8`).
                const _: () = assert!([$($n),*].len() == TABLE.len());
                match start.row.op as u8 {
                    $($n => self.start_op::<$n>(code, start, unit, $i),)*
                    _ => unreachable!("an opcode row names an instruction of the table"),
                }
            }};
        }
        // What every instruction begins with comes before the dispatch, so that each arm
        // holds only its own decoding and body (the pass's code stays small).
        let i = self.insts.len() as u32;
        self.begin_inst(i, start.pc, start.row.terminator, start.jump_target, start.cost, unit);
        by_opcode!(i;
            0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
            20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39
            40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59
            60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79
            80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99
            100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119
            120 121 122 123 124 125 126 127 128 129 130 131 132 133 134 135 136 137 138 139
            140
        )
    }

    #[inline(never)]
    #[cold]
    fn gap_trap(&mut self, inst: Inst, _in_gap: bool, following: u32) {
        // A trap: it exits, so its fall-through is never needed.
        debug_assert_eq!(inst.op, Op::Trap);
        let i = self.insts.len() as u32;
        self.emit_next_inst::<{ Op::Trap as u8 }>(i, &inst, self.unit_blocks);
        // It ends a block: the pass's next start, if any, follows it.
        if (following as usize) < self.code.len() {
            self.charge_next(i + 1, following, self.unit_blocks);
        }
    }

    #[inline(always)]
    fn block_end(&mut self) {
        self.end_block();
    }
}

/// [`index_of`] for a pc at or after instruction `from`, as forward jumps mostly go a
/// little way: searches ahead from `from` in steps that double, then within the last step.
fn index_of_ahead(insts: &[Compiled], from: usize, pc: u32) -> Option<u32> {
    // The next few one by one (a forward branch mostly skips a few), then by steps.
    let from = from.min(insts.len());
    let near = (from + NEAR).min(insts.len());
    if near == insts.len() || insts[near].pc >= pc {
        let end = (near + 1).min(insts.len());
        let k = insts[from..end].iter().position(|c| c.pc >= pc)?;
        return (insts[from + k].pc == pc).then_some((from + k) as u32);
    }
    let (mut lo, mut step) = (near, 1);
    loop {
        let hi = lo.saturating_add(step).min(insts.len());
        if hi == insts.len() || insts[hi].pc >= pc {
            let end = (hi + 1).min(insts.len());
            return index_of(&insts[lo..end], pc).map(|k| lo as u32 + k);
        }
        lo = hi;
        step *= 2;
    }
}

/// How many instructions [`index_of_recent`] and [`index_of_ahead`] look at one by one.
const NEAR: usize = 16;

/// [`index_of`] for a pc among the last instructions compiled, as backward jumps mostly
/// go: searches back from the end in steps that double, then within the last step.
fn index_of_recent(insts: &[Compiled], pc: u32) -> Option<u32> {
    // The last few one by one (a loop's branch back mostly lands there), then by steps.
    let near = insts.len().saturating_sub(NEAR);
    if insts.get(near).is_some_and(|c| c.pc <= pc) {
        let k = insts[near..].iter().rposition(|c| c.pc <= pc).expect("the first one is");
        return (insts[near + k].pc == pc).then_some((near + k) as u32);
    }
    let (mut hi, mut step) = (near, 1);
    loop {
        let lo = hi.saturating_sub(step);
        if lo == 0 || insts[lo].pc <= pc {
            return index_of(&insts[lo..hi], pc).map(|k| lo as u32 + k);
        }
        hi = lo;
        step *= 2;
    }
}

/// The number of the instruction at `pc` among `insts` (in pc order).
fn index_of(insts: &[Compiled], pc: u32) -> Option<u32> {
    insts.binary_search_by_key(&pc, |c| c.pc).ok().map(|i| i as u32)
}

/// The host register of guest register `reg`, or of the operand nibble `reg` as decoded
/// (13 to 15 mean r12, as for the decoder). A table of 16 indexed by the low four bits needs
/// no bounds check.
#[inline]
fn r(reg: u8) -> u8 {
    const HOST: [u8; 16] = {
        let mut host = [GUEST[12]; 16];
        let mut i = 0;
        while i < GUEST.len() {
            host[i] = GUEST[i];
            i += 1;
        }
        host
    };
    HOST[(reg & 15) as usize]
}

fn imm32(x: u64) -> Option<i32> {
    let v = x as i64;
    (v == v as i32 as i64).then_some(v as i32)
}

impl<'p> Compiler<'p> {
    fn new(program: &'p Program, mut ops: Emitter, spare: &mut Spare, features: Features, step: bool) -> Self {
        let blob = &program.blob;
        let code = DecodeCode::new(&blob.code, &blob.starts);
        let profile = program.profile();
        // Instructions are about three and a half bytes long.
        let estimate = blob.code.len() / 3 + 8;
        let mut label = || ops.new_dynamic_label();
        let exits = Exits {
            common: label(),
            with_inst: label(),
            trap: label(),
            panic: label(),
            halt: label(),
            out_of_gas: label(),
            out_of_gas_call: label(),
            host_call: label(),
            ecall: label(),
            step: label(),
            step_dynamic: label(),
            slow_mem: label(),
            helper: label(),
        };
        let gas = &program.config.gas;
        let stored = if blob.entry_size == 0 { 0 } else { blob.jump_table.len() };
        // With 0-byte entries every entry is pc 0, the first instruction when valid.
        let uniform_target =
            (blob.entry_size == 0 && blob.jump_table_len > 0 && is_jump_target_at(&code, profile, 0)).then_some(0);
        Compiler {
            program,
            code,
            ops,
            features,
            step,
            per_instruction: *gas == GasModel::Instruction,
            unit_blocks: *gas == GasModel::BlockUnit && !step,
            strict: profile.strict_branch_targets(),
            entry_fixups: Vec::new(),
            insts: Spare::take(&mut spare.insts, estimate),
            forward_bodies: Vec::new(),
            forward_targets: Spare::take(&mut spare.forward_targets, estimate / 16),
            forward_pc: 0,
            block_first: 0,
            block_charge: None,
            next_block_charge: None,
            gas_routine: 0,
            pending_entry_len: 0,
            // Sized for typical code, so that large programs do not grow these a dozen times.
            cold: Spare::take(&mut spare.cold, estimate / 4),
            exits,
            accesses: Spare::take(&mut spare.accesses, estimate / 2),
            jump_table: vec![0; stored],
            uniform_target,
        }
    }

    fn save_regs(&mut self) {
        for (i, &h) in GUEST.iter().enumerate() {
            asm!(self.ops ; mov QWORD [r15 + ctx::REGS + 8 * i as i32], Rq(h));
        }
    }

    fn load_regs(&mut self) {
        for (i, &h) in GUEST.iter().enumerate() {
            asm!(self.ops ; mov Rq(h), QWORD [r15 + ctx::REGS + 8 * i as i32]);
        }
    }

    /// Entry trampoline, exit routines and the slow-path thunks: the same bytes in every
    /// module for one feature set, assembled once per instance and copied after that.
    fn emit_runtime(&mut self) {
        let labels = self.exits.all();
        if let Some((features, bytes, offsets)) = self.ops.runtime.take() {
            if features == self.features {
                self.ops.extend_from_slice(&bytes);
                for (&label, &offset) in labels.iter().zip(&offsets) {
                    self.ops.define_at(label, offset);
                }
                self.ops.runtime = Some((features, bytes, offsets));
                return;
            }
        }
        self.assemble_runtime();
        // Every reference in the runtime is to one of its own labels: patch them now, so
        // the bytes are final and can be copied into the next module.
        self.ops.resolve_defined();
        let offsets: Option<Vec<usize>> = labels.iter().map(|&l| self.ops.offset_of(l)).collect();
        if let Some(offsets) = offsets {
            self.ops.runtime = Some((self.features, self.ops.bytes().to_vec(), offsets));
        }
    }

    fn assemble_runtime(&mut self) {
        let e = &self.exits;
        let (common, with_inst, slow_mem, helper) = (e.common, e.with_inst, e.slow_mem, e.helper);
        // enter(base = rdi, entry = rsi): save callee-saved registers, keep rsp 16-byte aligned.
        asm!(self.ops
            ; push rbx
            ; push rbp
            ; push r12
            ; push r13
            ; push r14
            ; push r15
            ; sub rsp, 8
            ; mov r15, rdi
            ; mov QWORD [r15 + ctx::HOST_RSP], rsp
            ; mov rcx, QWORD [r15 + ctx::GAS]
            ; mov QWORD [rsp], rcx
        );
        if self.features.fsgsbase {
            asm!(self.ops
                ; rdgsbase rcx
                ; mov QWORD [r15 + ctx::SAVED_GS], rcx
                ; wrgsbase r15
            );
        }
        asm!(self.ops ; mov rcx, rsi);
        self.load_regs();
        asm!(self.ops ; jmp rcx);

        let kinds = [
            (self.exits.trap, kind::TRAP),
            (self.exits.panic, kind::PANIC),
            (self.exits.halt, kind::HALT),
            (self.exits.out_of_gas, kind::OUT_OF_GAS),
            (self.exits.host_call, kind::HOST_CALL),
            (self.exits.ecall, kind::ECALL),
            (self.exits.step, kind::STEP),
            (self.exits.step_dynamic, kind::STEP_DYNAMIC),
        ];
        for (label, k) in kinds {
            asm!(self.ops
                ; =>label
                ; mov DWORD [r15 + ctx::EXIT_KIND], k as i32
                ; jmp =>with_inst
            );
        }
        // A block charge's out-of-gas call: its return address, the charging entry, names the
        // block.
        let out_of_gas_call = self.exits.out_of_gas_call;
        asm!(self.ops
            ; =>out_of_gas_call
            ; pop rcx
            ; mov QWORD [r15 + ctx::EXIT_ARG], rcx
            ; mov DWORD [r15 + ctx::EXIT_KIND], kind::OUT_OF_GAS_CALL as i32
            ; jmp =>common
            ; =>with_inst
            ; mov DWORD [r15 + ctx::EXIT_INST], ecx
            ; =>common
        );
        self.save_regs();
        asm!(self.ops
            ; mov rcx, QWORD [rsp]
            ; mov QWORD [r15 + ctx::GAS], rcx
        );
        if self.features.fsgsbase {
            asm!(self.ops
                ; mov rcx, QWORD [r15 + ctx::SAVED_GS]
                ; wrgsbase rcx
            );
        }
        asm!(self.ops
            ; mov rsp, QWORD [r15 + ctx::HOST_RSP]
            ; add rsp, 8
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop r12
            ; pop rbp
            ; pop rbx
            ; ret
        );

        // Slow memory path, entered by a jump with rsp 16-byte aligned; continues at the
        // address the Rust side returns.
        asm!(self.ops ; =>slow_mem);
        self.save_regs();
        asm!(self.ops
            ; lea rdi, [r15 + ctx::CTX]
            ; mov rax, QWORD jit_slow_mem as *const () as i64
            ; call rax
            ; mov rcx, rax
        );
        self.load_regs();
        asm!(self.ops ; jmp rcx);

        // Generic helper, entered by a call.
        asm!(self.ops ; =>helper);
        self.save_regs();
        asm!(self.ops
            ; sub rsp, 8
            ; lea rdi, [r15 + ctx::CTX]
            ; mov rax, QWORD jit_helper as *const () as i64
            ; call rax
            ; add rsp, 8
        );
        self.load_regs();
        asm!(self.ops ; ret);
    }

    /// Compiles every instruction in one pass over the code ([`walk`]): the JIT decodes
    /// the blob itself and never reads the program's instruction list, so `diff` judges its
    /// decoding and preparation against the interpreter's.
    fn emit_instructions(&mut self) {
        let (code, profile, gas) = (self.code, self.program.profile(), &self.program.config.gas);
        // The first instruction's charging entry (it counts as following a terminator).
        let first = code.starts.next_from(0);
        if first < code.len() {
            self.ops.reserve_room();
            self.charge_next(0, first as u32, self.unit_blocks);
            self.block_charge = self.next_block_charge.take();
        }
        if self.unit_blocks {
            walk::<true, _>(&code, profile, gas, self);
        } else {
            walk::<false, _>(&code, profile, gas, self);
        }
    }

    /// Decodes and compiles the instruction start at `pc`, whose opcode is `Op` number `N`:
    /// its format and kind are constants here. Inlined into the pass's loop in optimised
    /// builds; kept apart in builds with debug assertions, where an unoptimised loop holding
    /// every opcode's arm would need a stack frame of megabytes.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    fn start_op<const N: u8>(&mut self, code: &DecodeCode, start: Start, unit: bool, i: u32) {
        const { assert!(TABLE[N as usize].op as u8 == N, "the table's rows are in `Op` order") };
        let info = &TABLE[N as usize];
        // Register nibbles as they are: `r` maps 13 to 15 to r12's host register.
        let d = code.decode_format(start.pc, start.skip, info.op, start.row.defined, info.format, false);
        let mut inst = Inst::from_decoded(start.pc, &d, start.row.terminator, start.jump_target);
        inst.cost = start.cost;
        inst.next = i + 1;
        if info.format.has_offset() {
            inst.target = self.static_target(i, &inst);
        }
        self.emit_inst::<N>(i, &inst, unit);
        // Whether it ends a block is a constant of the opcode, but for the three javm adds
        // to the terminators in profile J.
        let terminator = if const { TABLE[N as usize].ends_block || N == Op::Trap as u8 } {
            true
        } else if const { matches!(TABLE[N as usize].op, Op::Unlikely | Op::Ecalli | Op::Ecall) } {
            start.row.terminator
        } else {
            false
        };
        debug_assert_eq!(terminator, start.row.terminator);
        if terminator {
            // The pass visits the pc it falls through to next: the next start, or the trap
            // there when it is not one.
            self.charge_next(i + 1, start.pc + 1 + start.skip, unit);
            if unit {
                self.end_block();
            }
        }
    }

    /// Charges are per block: the charging entry of an instruction after a terminator is
    /// emitted right after the terminator, by the terminator's own arm of the pass, where
    /// ending a block is a constant ([`Compiler::charge_next`]), so the pass takes no branch
    /// on it. Not when gas is charged per instruction (each instruction's entry comes with
    /// it) or in single steps (no entries).
    #[inline(always)]
    fn block_entries(&self) -> bool {
        !self.step && !self.per_instruction
    }

    /// Emits the charging entry of instruction `next`, at `pc`, which follows a terminator
    /// (see [`Compiler::block_entries`]); its record takes it when it begins.
    #[inline(always)]
    fn charge_next(&mut self, next: u32, pc: u32, unit: bool) {
        if !unit && !self.block_entries() {
            return;
        }
        if unit {
            self.emit_next_charge::<true>(next, pc);
        } else {
            self.emit_next_charge::<false>(next, pc);
        }
    }

    /// [`Compiler::charge_next`]'s charge, out of line: one copy for every terminator's arm.
    #[inline(never)]
    fn emit_next_charge<const UNIT: bool>(&mut self, next: u32, pc: u32) {
        let cost = if UNIT { 0 } else { crate::program::entry_cost(&self.program.config.gas, pc) };
        let entry = self.emit_charge(next, cost, UNIT);
        self.pending_entry_len = (self.ops.offset().0 as u32 - entry) as u8;
    }

    /// Emits instruction `i` (the next one), `Op` number `N`: its charging entry when it has
    /// one, then its body. `unit`: unit block costs, which a single-step module never has
    /// (the pass's constant, so that the tests below fold).
    #[inline(always)]
    fn emit_next_inst<const N: u8>(&mut self, i: u32, inst: &Inst, unit: bool) {
        self.begin_inst(i, inst.pc, inst.terminator, inst.jump_target, inst.cost, unit);
        self.emit_inst::<N>(i, inst, unit);
    }

    /// The record of instruction `i` (the next one) and its charging entry when it has one.
    #[inline(always)]
    fn begin_inst(&mut self, i: u32, pc: u32, terminator: bool, jump_target: bool, cost: u64, unit: bool) {
        debug_assert!(!unit || (self.unit_blocks && !self.step && !self.per_instruction));
        self.ops.reserve_room();
        let at = if unit || self.block_entries() {
            // Its entry, when it has one, was emitted right before (`charge_next`).
            self.ops.offset().0 as u32 - u32::from(std::mem::take(&mut self.pending_entry_len))
        } else if self.per_instruction && !self.step {
            self.emit_charge(i, cost, false)
        } else {
            self.ops.offset().0 as u32
        };
        let body = self.ops.offset().0 as u32;
        // A charge is a few instructions (at most 20 bytes: a wide cost's move, subtraction
        // and jump); without one the length is 0.
        debug_assert!(body - at < 256 && (body > at) == self.has_entry(i), "instruction {i}");
        self.insts.push(Compiled { body, entry_len: (body - at) as u8, pc, ends_block: terminator, jump_target });
    }

    /// The instruction a static jump or branch of instruction `i` goes to: its index when
    /// already compiled (or `i` itself), [`FORWARD`] when it comes later (its pc kept in
    /// `forward_pc`), [`NONE`] when the jump may not go there.
    fn static_target(&mut self, i: u32, inst: &Inst) -> u32 {
        let to = inst.target_pc;
        // A target compiled already (or this instruction) carries the pass's own verdict;
        // a later one is checked from the code around it.
        let (index, valid) = if to > inst.pc {
            (FORWARD, is_jump_target_at(&self.code, self.program.profile(), to))
        } else if to == inst.pc {
            (i, inst.jump_target)
        } else {
            match index_of_recent(&self.insts, to) {
                Some(j) => (j, self.insts[j as usize].jump_target),
                None => (NONE, false),
            }
        };
        let conditional = self.strict && inst.op.is_conditional_branch();
        let fall_through_valid =
            !conditional || is_jump_target_after_block(&self.code, self.program.profile(), inst.next_pc);
        if !target_allowed(self.strict, inst.op, valid, fall_through_valid) {
            return NONE;
        }
        if index == FORWARD {
            self.forward_pc = to;
        }
        index
    }

    /// The number of the compiled instruction at `pc` ([`NONE`] when there is none).
    fn index_of(&self, pc: u32) -> u32 {
        index_of(&self.insts, pc).unwrap_or(NONE)
    }

    /// Under unit block costs, the block compiled last has ended: its charge, emitted when it
    /// began, becomes its length.
    fn end_block(&mut self) {
        let len = self.insts.len() as u32 - self.block_first;
        self.block_first = self.insts.len() as u32;
        if let Some(at) = self.block_charge.take() {
            self.ops.patch_u32(at, len);
        }
        self.block_charge = self.next_block_charge.take();
    }

    /// Points every jump to a later instruction at its charging entry, now that every
    /// instruction is compiled.
    fn resolve_forward(&mut self) {
        for k in 0..self.forward_targets.len() {
            let (end, pc, after) = self.forward_targets[k];
            match index_of_ahead(&self.insts, after as usize, pc).map(|j| self.insts[j as usize].entry()) {
                Some(entry) if entry != NOT_YET => self.ops.patch_jump(end, entry as usize),
                _ => self.ops.fail("jump to an instruction without a charging entry"),
            }
        }
    }

    /// Whether instruction `i` gets a charging entry: every instruction when gas is charged
    /// per instruction, else the first and every one after a terminator. That covers every
    /// block entered after a terminator and every valid jump target (ϖ holds pc 0 and starts
    /// that follow a terminator), so no jump towards a charged successor lacks its entry. A
    /// single-step module charges in Rust and has no entries.
    #[inline]
    fn has_entry(&self, i: u32) -> bool {
        // The first instruction counts as following a terminator.
        entry_after(self.step, self.per_instruction, i == 0 || self.insts[i as usize - 1].ends_block)
    }

    /// The charging prologue of instruction `i`, entering whose block costs `cost`; returns
    /// the offset of its entry. `unit`: unit block costs (the pass's constant).
    #[inline(always)]
    fn emit_charge(&mut self, i: u32, cost: u64, unit: bool) -> u32 {
        // Under unit block costs the block's length is known once it ends
        // ([`Compiler::end_block`]).
        let charge = if unit {
            Some(0)
        } else if self.per_instruction {
            None
        } else {
            i32::try_from(cost).ok()
        };
        let Some(charge) = charge else {
            let entry = self.ops.offset().0 as u32;
            self.emit_other_charge(i, cost);
            return entry;
        };
        // The out-of-gas call comes first (jumped over by code falling into the block); the
        // entry is the charge right after it, which jumps back to it when gas runs out.
        let entry = self.ops.offset().0 + x64::CHARGE_PREFIX_LEN;
        self.ops.put(x64::charge_prefix(self.gas_routine as i32 - entry as i32));
        self.ops.put(x64::charge(charge));
        if unit {
            // The immediate of the subtraction.
            self.next_block_charge = Some(entry + 4);
        }
        entry as u32
    }

    /// [`Compiler::emit_charge`] per instruction, or of a cost wider than 32 bits.
    #[inline(never)]
    fn emit_other_charge(&mut self, i: u32, cost: u64) {
        if self.per_instruction {
            asm!(self.ops ; sub QWORD [rsp], 1);
            let from = self.ops.jump(Some(Cond::S), None);
            self.cold.push(Cold::OutOfGas { from, inst: i, refund: None });
            return;
        }
        let refund = if cost <= i64::MAX as u64 {
            asm!(self.ops
                ; mov rcx, QWORD cost as i64
                ; sub QWORD [rsp], rcx
            );
            Some(cost)
        } else {
            // No gas value reaches this cost.
            None
        };
        let cond = refund.map(|_| Cond::L);
        let from = self.ops.jump(cond, None);
        self.cold.push(Cold::OutOfGas { from, inst: i, refund });
    }

    fn emit_cold(&mut self) {
        let mut cold = std::mem::take(&mut self.cold);
        for stub in cold.drain(..) {
            self.ops.reserve_room();
            match stub {
                Cold::Exit { label, inst, exit } => {
                    asm!(self.ops ; =>label);
                    self.emit_exit(inst, exit);
                }
                Cold::OutOfGas { from, inst, refund } => {
                    let here = self.ops.offset().0;
                    self.ops.patch_jump(from, here);
                    if let Some(c) = refund {
                        asm!(self.ops
                            ; mov rcx, QWORD c as i64
                            ; add QWORD [rsp], rcx
                        );
                    }
                    let exit = self.exits.out_of_gas;
                    self.emit_exit(inst, exit);
                }
                Cold::Step { label, from, to, to_pc } => {
                    asm!(self.ops ; =>label);
                    let to = if to == FORWARD { self.index_of(to_pc) } else { to };
                    self.emit_step_exit(from, to);
                }
            }
        }
        self.cold = cold;
    }

    /// Places the code and makes the module; gives back the assembly buffer either way.
    fn finish(mut self, arena: &mut CodeArena) -> (io::Result<Module>, Emitter) {
        let module = self.place(arena);
        (module, self.ops)
    }

    fn place(&mut self, arena: &mut CodeArena) -> io::Result<Module> {
        for &(to, label) in &self.forward_bodies {
            self.ops.define_at(label, self.insts[to as usize].body as usize);
        }
        let ops = &self.ops;
        let offset = |l: DynamicLabel| ops.offset_of(l).ok_or_else(|| io::Error::other("label never defined"));
        let slow_entry = offset(self.exits.slow_mem)?;
        let exit_common = offset(self.exits.common)?;
        // Code offsets of the jump-table targets' charging entries, before the code moves:
        // every instruction is compiled, so the pass's own verdict says which are valid.
        let mut entries = Vec::with_capacity(self.jump_table.len());
        for &pc in &self.program.blob.jump_table[..self.jump_table.len()] {
            let target = index_of(&self.insts, pc).map(|j| self.insts[j as usize]).filter(|c| c.jump_target);
            entries.push(target.map(|c| c.entry()).filter(|&o| o != NOT_YET));
        }
        for &(end, to) in &self.entry_fixups {
            match self.insts[to as usize].entry() {
                NOT_YET => return Err(io::Error::other("jump to a charging entry never emitted")),
                target => self.ops.patch_jump(end, target as usize),
            }
        }
        self.ops.code().map_err(io::Error::other)?;
        let code = self.ops.place(arena)?;
        let start = code.start();
        for (slot, entry) in self.jump_table.iter_mut().zip(entries) {
            *slot = entry.map_or(0, |o| start + o as usize);
        }
        Ok(Module {
            code,
            enter: 0,
            insts: std::mem::take(&mut self.insts),
            accesses: std::mem::take(&mut self.accesses),
            slow_entry,
            exit_common,
            _jump_table: std::mem::take(&mut self.jump_table),
        })
    }

    // ---- control flow -------------------------------------------------------------------

    fn exit_label(&mut self, inst: u32, exit: DynamicLabel) -> DynamicLabel {
        let label = self.ops.new_dynamic_label();
        self.cold.push(Cold::Exit { label, inst, exit });
        label
    }

    fn emit_exit(&mut self, inst: u32, exit: DynamicLabel) {
        self.ops.put(x64::mov_ecx_imm(inst as i32));
        self.ops.jmp(exit);
    }

    fn emit_step_exit(&mut self, from: u32, to: u32) {
        let exit = self.exits.step;
        asm!(self.ops
            ; mov QWORD [r15 + ctx::EXIT_ARG], to as i32
            ; mov ecx, from as i32
            ; jmp =>exit
        );
    }

    /// Where control goes when instruction `to` is entered from `from`; `charge` when `from`
    /// is a terminator (a new block starts).
    fn successor(&mut self, to: u32, charge: bool) -> Goto {
        if to == FORWARD {
            // A static target, always entered with a charge.
            return Goto::Forward(self.forward_pc);
        }
        if charge || self.per_instruction {
            // A jump must never be emitted towards an entry that will not exist (in release
            // builds the jump's resolution refuses one that was not emitted).
            debug_assert!(self.has_entry(to), "block entry without a charging prologue");
            return Goto::Entry(to);
        }
        let label = self.ops.new_dynamic_label();
        match self.insts.get(to as usize) {
            None => self.forward_bodies.push((to, label)),
            Some(compiled) => self.ops.define_at(label, compiled.body as usize),
        }
        Goto::Label(label)
    }

    /// `jmp` (`cond` none) or `j<cond>` to `to`.
    fn emit_jump(&mut self, cond: Option<Cond>, to: Goto) {
        match to {
            Goto::Label(label) => self.ops.jump_label(cond, label),
            Goto::Forward(pc) => {
                let end = self.ops.jump(cond, None);
                // The target comes after every instruction compiled so far.
                self.forward_targets.push((end, pc, self.insts.len() as u32));
            }
            Goto::Entry(i) => {
                let offset = self.insts.get(i as usize).map_or(NOT_YET, |c| c.entry());
                if offset == NOT_YET {
                    let end = self.ops.jump(cond, None);
                    self.entry_fixups.push((end, i));
                } else {
                    self.ops.jump(cond, Some(offset as usize));
                }
            }
        }
    }

    /// Continues at instruction `to` after `from` (unconditionally), `from_ends_block` being
    /// whether `from` is a terminator. Inlined for its common case, the successor's code
    /// coming next (nothing to emit).
    #[inline]
    fn emit_goto(&mut self, from: u32, from_ends_block: bool, to: u32, charge: bool) {
        // Falls into the successor's code when it comes next and starts the right way (with
        // its charging entry exactly when this transfer charges). Whether the next
        // instruction has a charging entry follows from `from` itself (`has_entry`), so the
        // list is not read again.
        // (`from + 1` is never `NONE`: `from` indexes the list.)
        if to == from + 1 && !self.step {
            let entry_next = entry_after(self.step, self.per_instruction, from_ends_block);
            debug_assert_eq!(entry_next, self.has_entry(to));
            if (charge || self.per_instruction) == entry_next {
                return;
            }
        }
        self.emit_jump_to(from, to, charge);
    }

    /// [`Compiler::emit_goto`] when the successor's code does not come next (or a step exit
    /// or a panic is due).
    #[inline(never)]
    fn emit_jump_to(&mut self, from: u32, to: u32, charge: bool) {
        if to == NONE {
            let exit = self.exits.panic;
            self.emit_exit(from, exit);
            return;
        }
        if self.step {
            if to == FORWARD {
                // Its number is known once it is compiled.
                let to = self.goto_label(from, to, charge);
                self.emit_jump(None, to);
            } else {
                self.emit_step_exit(from, to);
            }
            return;
        }
        let to = self.successor(to, charge);
        self.emit_jump(None, to);
    }

    /// Where to jump (conditionally) to continue at `to` after `from`.
    fn goto_label(&mut self, from: u32, to: u32, charge: bool) -> Goto {
        if self.step {
            let label = self.ops.new_dynamic_label();
            self.cold.push(Cold::Step { label, from, to, to_pc: self.forward_pc });
            Goto::Label(label)
        } else {
            self.successor(to, charge)
        }
    }

    /// Flow after an instruction that does not transfer control itself. With unit block
    /// costs (so no single step) the next instruction's code comes next and starts the way
    /// this fall-through enters it, so [`Compiler::emit_goto`] would emit nothing.
    #[inline(always)]
    fn emit_next(&mut self, i: u32, inst: &Inst, unit: bool) {
        if !unit {
            self.emit_goto(i, inst.terminator, inst.next, inst.terminator);
        }
    }

    /// A conditional branch; `IMM`: it compares with an immediate rather than a register
    /// (a constant of the opcode, so the pass does not branch on it).
    fn emit_branch<const IMM: bool>(&mut self, i: u32, inst: &Inst, cond: BranchCond) {
        let a = r(inst.ra);
        let cond = branch_cond(cond);
        if inst.target == NONE && self.strict {
            let exit = self.exits.panic;
            self.emit_exit(i, exit);
            return;
        }
        if IMM {
            match imm32(inst.x) {
                Some(0) => self.ops.put(x64::alu_rr(Alu::Test, true, a, a)),
                Some(x) => self.emit_cmp_imm(a, x),
                None => asm!(self.ops
                    ; mov rcx, QWORD inst.x as i64
                    ; cmp Rq(a), rcx
                ),
            }
        } else {
            let b = r(inst.rb);
            self.ops.put(x64::cmp_rr(a, b));
        }
        let taken = if inst.target == NONE {
            let exit = self.exits.panic;
            Goto::Label(self.exit_label(i, exit))
        } else {
            self.goto_label(i, inst.target, true)
        };
        self.emit_jump(Some(cond), taken);
        self.emit_goto(i, inst.terminator, inst.next, true);
    }

    /// Dynamic jump to the address in `ecx`.
    fn emit_dynamic_jump(&mut self, i: u32) {
        if self.step {
            let exit = self.exits.step_dynamic;
            asm!(self.ops
                ; mov QWORD [r15 + ctx::EXIT_ARG], rcx
                ; mov ecx, i as i32
                ; jmp =>exit
            );
            return;
        }
        let halt_exit = self.exits.halt;
        let halt = self.exit_label(i, halt_exit);
        let panic_exit = self.exits.panic;
        let panic = self.exit_label(i, panic_exit);
        // The jumps to the exits are the emitter's own (no relocation records).
        asm!(self.ops ; cmp ecx, HALT_ADDRESS as i32);
        self.ops.jump_label(Some(Cond::E), halt);
        asm!(self.ops ; test ecx, 1);
        self.ops.jump_label(Some(Cond::Ne), panic);
        let blob = &self.program.blob;
        if blob.entry_size == 0 {
            // Every entry resolves alike: a ∈ [2, 2·J] even, then one fixed target.
            let len = blob.jump_table_len as u64;
            match self.uniform_target {
                Some(t) => {
                    self.emit_table_bound(len, panic);
                    let to = self.successor(t, true);
                    self.emit_jump(None, to);
                }
                None => self.ops.jmp(panic),
            }
            return;
        }
        let len = self.jump_table.len() as u64;
        if len == 0 {
            self.ops.jmp(panic);
            return;
        }
        let table = self.jump_table.as_ptr() as i64;
        self.emit_table_bound(len, panic);
        // Entry k = (a - 2) / 2 lives at table + 8k = table + 4(a - 2).
        asm!(self.ops
            ; mov QWORD [r15 + ctx::SPILL0], rax
            ; mov rax, QWORD table
            ; mov rcx, QWORD [rax + rcx * 4]
            ; mov rax, QWORD [r15 + ctx::SPILL0]
            ; test rcx, rcx
        );
        self.ops.jump_label(Some(Cond::E), panic);
        asm!(self.ops ; jmp rcx);
    }

    /// With an even address in `ecx` (not the halt address): computes `a - 2` and panics
    /// unless `2 <= a <= 2 * len`.
    fn emit_table_bound(&mut self, len: u64, panic: DynamicLabel) {
        asm!(self.ops ; sub ecx, 2);
        let bound = 2 * len - 2;
        if bound < 0xFFFF_FFFE {
            // a = 0 wraps to 0xFFFFFFFE, above the bound.
            asm!(self.ops ; cmp ecx, bound as u32 as i32);
            self.ops.jump_label(Some(Cond::A), panic);
        } else {
            // Every even address but 0 is in range.
            asm!(self.ops ; cmp ecx, -2);
            self.ops.jump_label(Some(Cond::E), panic);
        }
    }

    // ---- instructions --------------------------------------------------------------------

    /// The body of instruction `i`, `Op` number `N`.
    #[inline(always)]
    fn emit_inst<const N: u8>(&mut self, i: u32, inst: &Inst, unit: bool) {
        // Host registers are looked up by the arms that use them.
        match TABLE[N as usize].kind {
            Kind::Trap => {
                let exit = self.exits.trap;
                self.emit_exit(i, exit);
            }
            Kind::Sbrk => {
                let exit = self.exits.panic;
                self.emit_exit(i, exit);
            }
            Kind::Nop => self.emit_next(i, inst, unit),
            Kind::HostCall => {
                // The runtime reads the call's number from the exit, not from the program.
                asm!(self.ops ; mov QWORD [r15 + ctx::EXIT_ARG], inst.x as u32 as i32);
                let exit = self.exits.host_call;
                self.emit_exit(i, exit);
            }
            Kind::Ecall => {
                let exit = self.exits.ecall;
                self.emit_exit(i, exit);
            }
            Kind::LoadImm => {
                self.emit_load_imm(r(inst.ra), inst.x);
                self.emit_next(i, inst, unit);
            }
            Kind::Jump => self.emit_goto(i, inst.terminator, inst.target, true),
            Kind::LoadImmJump => {
                self.emit_load_imm(r(inst.ra), inst.x);
                self.emit_goto(i, inst.terminator, inst.target, true);
            }
            Kind::Branch { cond, rhs: Source::Imm } => self.emit_branch::<true>(i, inst, cond),
            Kind::Branch { cond, rhs: Source::Reg } => self.emit_branch::<false>(i, inst, cond),
            Kind::JumpInd => {
                self.emit_address(r(inst.ra), inst.x);
                self.emit_dynamic_jump(i);
            }
            Kind::LoadImmJumpInd => {
                self.emit_address(r(inst.rb), inst.y);
                self.emit_load_imm(r(inst.ra), inst.x);
                self.emit_dynamic_jump(i);
            }
            Kind::Load { .. } | Kind::Store { .. } => {
                if self.features.fsgsbase {
                    self.emit_memory_of::<N, true>(i, inst.ra, inst.rb, inst.x, inst.y);
                } else {
                    self.emit_memory_of::<N, false>(i, inst.ra, inst.rb, inst.x, inst.y);
                }
                self.emit_next(i, inst, unit);
            }
            Kind::Unary(_) | Kind::Binary { .. } => {
                self.emit_alu_of::<N>(i, inst);
                self.emit_next(i, inst, unit);
            }
        }
    }

    /// [`Compiler::emit_alu`] for the ALU operation `Op` number `N`, a constant here.
    #[inline(always)]
    fn emit_alu_of<const N: u8>(&mut self, i: u32, inst: &Inst) {
        self.emit_alu_inline(i, inst, TABLE[N as usize].kind);
    }

    /// An ALU operation's body.
    #[inline(always)]
    fn emit_alu_inline(&mut self, i: u32, inst: &Inst, kind: Kind) {
        match kind {
            Kind::Unary(op) => self.emit_two_reg(i, op, r(inst.rd), r(inst.ra)),
            Kind::Binary { op, operands: Operands::Regs } => {
                self.emit_three_reg(op, r(inst.rd), r(inst.ra), r(inst.rb))
            }
            Kind::Binary { op, operands } => self.emit_reg_imm(i, op, operands, r(inst.ra), r(inst.rb), inst.x),
            _ => unreachable!("not an ALU operation"),
        }
    }

    #[inline(always)]
    fn emit_load_imm(&mut self, a: u8, x: u64) {
        self.ops.put(match imm32(x) {
            Some(0) => x64::alu_rr(Alu::Xor, false, a, a),
            Some(v) if v >= 0 => x64::mov_r32_imm(a, v),
            Some(v) => x64::mov_r64_simm32(a, v),
            None => x64::mov_r64_imm64(a, x as i64),
        });
    }

    /// `ecx ← (φ + x) mod 2^32` for the host register `base` of φ.
    #[inline(always)]
    fn emit_address(&mut self, base: u8, x: u64) {
        match x as u32 as i32 {
            0 => self.ops.put(x64::alu_rr(Alu::Mov, false, RCX, base)),
            x => self.ops.put(x64::lea_disp(false, RCX, base, x)),
        }
    }

    fn emit_cmp_imm(&mut self, a: u8, x: i32) {
        self.ops.put(x64::alu_ri32(AluImm::Cmp, a, x));
    }

    fn mov64(&mut self, d: u8, s: u8) {
        if d != s {
            self.ops.put(x64::alu_rr(Alu::Mov, true, d, s));
        }
    }

    /// Executes instruction `i` through the Rust helper (fallback path).
    fn emit_helper(&mut self, i: u32) {
        let helper = self.exits.helper;
        asm!(self.ops
            ; mov DWORD [r15 + ctx::HELPER_INST], i as i32
            ; call =>helper
        );
    }

    /// [`Compiler::emit_memory`] for the load or store `Op` number `N`, whose width,
    /// addressing and access are constants here, as is `GS`: whether guest memory is
    /// addressed through the GS base (a CPU feature, the same for every access).
    #[inline(never)]
    fn emit_memory_of<const N: u8, const GS: bool>(&mut self, i: u32, ra: u8, rb: u8, x: u64, y: u64) {
        let operands = (ra, rb, x, y);
        match TABLE[N as usize].kind {
            Kind::Load { width, signed, addr } => {
                self.emit_access(i, operands, width, addr, Access::Load { signed }, GS)
            }
            Kind::Store { width, value, addr } => {
                self.emit_access(i, operands, width, addr, Access::Store { value }, GS)
            }
            _ => unreachable!("only loads and stores access memory"),
        }
    }

    /// A load or store with the operands `(rA, rB, X, Y)`.
    #[inline(always)]
    fn emit_access(
        &mut self,
        i: u32,
        operands: (u8, u8, u64, u64),
        width: Width,
        addr: Addr,
        access: Access,
        gs: bool,
    ) {
        let (ra, rb, x_full, y) = operands;
        let (a, b) = (r(ra), r(rb));
        let x = x_full as u32 as i32;
        let absolute = addr == Addr::Absolute;
        let base = if addr == Addr::IndirectA { a } else { b };
        // The guest address, as an operand: `[r15 + rcx]` with the address in ecx, or
        // GS-relative with 32-bit address arithmetic (wraps mod 2^32 by itself).
        let mem = if absolute {
            self.ops.put(x64::mov_ecx_imm(x));
            if gs {
                Mem::Gs(RCX, 0)
            } else {
                Mem::Base
            }
        } else if gs {
            Mem::Gs(base, x)
        } else {
            self.emit_address(base, x_full);
            Mem::Base
        };
        let access_at = self.ops.offset().0 as u32;
        let bytes = width.bytes();
        match access {
            Access::Load { signed } => self.ops.put(x64::load(a, mem, bytes, signed)),
            Access::Store { value: Source::Imm } => match (width, imm32(y)) {
                (Width::B8, None) => {
                    // Not encodable: let the slow path do the whole access.
                    let slow = self.exits.slow_mem;
                    let desc = self.accesses.len() as i32;
                    asm!(self.ops
                        ; mov DWORD [r15 + ctx::SLOW_DESC], desc
                        ; jmp =>slow
                    );
                }
                _ => self.ops.put(x64::store_imm(mem, bytes, y as i32)),
            },
            Access::Store { value: Source::Reg } => self.ops.put(x64::store(a, mem, bytes)),
        }
        let cont = self.ops.offset().0 as u32;
        self.accesses.push(GuestAccess { at: access_at, inst: i, cont });
    }

    #[inline(always)]
    fn emit_two_reg(&mut self, i: u32, op: UnaryOp, d: u8, a: u8) {
        let f = self.features;
        match op {
            UnaryOp::Move => self.mov64(d, a),
            UnaryOp::CountSetBits64 if f.popcnt => asm!(self.ops ; popcnt Rq(d), Rq(a)),
            UnaryOp::CountSetBits32 if f.popcnt => asm!(self.ops ; popcnt Rd(d), Rd(a)),
            UnaryOp::CountSetBits64 | UnaryOp::CountSetBits32 => self.emit_helper(i),
            UnaryOp::LeadingZeroBits64 if f.lzcnt => asm!(self.ops ; lzcnt Rq(d), Rq(a)),
            UnaryOp::LeadingZeroBits32 if f.lzcnt => asm!(self.ops ; lzcnt Rd(d), Rd(a)),
            UnaryOp::LeadingZeroBits64 => asm!(self.ops
                ; bsr rcx, Rq(a)
                ; jz >zero
                ; xor ecx, 63
                ; jmp >done
                ; zero:
                ; mov ecx, 64
                ; done:
                ; mov Rq(d), rcx
            ),
            UnaryOp::LeadingZeroBits32 => asm!(self.ops
                ; bsr ecx, Rd(a)
                ; jz >zero
                ; xor ecx, 31
                ; jmp >done
                ; zero:
                ; mov ecx, 32
                ; done:
                ; mov Rq(d), rcx
            ),
            UnaryOp::TrailingZeroBits64 if f.bmi1 => asm!(self.ops ; tzcnt Rq(d), Rq(a)),
            UnaryOp::TrailingZeroBits32 if f.bmi1 => asm!(self.ops ; tzcnt Rd(d), Rd(a)),
            UnaryOp::TrailingZeroBits64 => asm!(self.ops
                ; bsf rcx, Rq(a)
                ; jnz >done
                ; mov ecx, 64
                ; done:
                ; mov Rq(d), rcx
            ),
            UnaryOp::TrailingZeroBits32 => asm!(self.ops
                ; bsf ecx, Rd(a)
                ; jnz >done
                ; mov ecx, 32
                ; done:
                ; mov Rq(d), rcx
            ),
            UnaryOp::SignExtend8 => asm!(self.ops
                ; mov rcx, Rq(a)
                ; movsx Rq(d), cl
            ),
            UnaryOp::SignExtend16 => asm!(self.ops ; movsx Rq(d), Rw(a)),
            UnaryOp::ZeroExtend16 => asm!(self.ops ; movzx Rd(d), Rw(a)),
            UnaryOp::ReverseBytes => {
                self.mov64(d, a);
                asm!(self.ops ; bswap Rq(d));
            }
        }
    }

    /// `φ[rA] ← f(φ[rB], X)`; `a` is the destination, `b` the source.
    #[inline(always)]
    fn emit_reg_imm(&mut self, i: u32, op: BinaryOp, operands: Operands, a: u8, b: u8, x: u64) {
        let Some(v) = imm32(x) else {
            // Immediates of this format are at most 4 bytes, sign-extended; anything else goes
            // through the reference semantics.
            self.emit_helper(i);
            return;
        };
        let bmi2 = self.features.bmi2;
        match (op, operands) {
            (BinaryOp::Add32, Operands::RegImm) => {
                self.emit_address(b, x);
                self.ops.put(x64::movsxd(a, RCX));
            }
            (BinaryOp::And | BinaryOp::Xor | BinaryOp::Or, Operands::RegImm) => {
                self.mov64(a, b);
                let op = match op {
                    BinaryOp::And => AluImm::And,
                    BinaryOp::Xor => AluImm::Xor,
                    _ => AluImm::Or,
                };
                self.ops.put(match i8::try_from(v) {
                    Ok(v8) => x64::alu_ri8(op, a, v8),
                    Err(_) => x64::alu_ri32(op, a, v),
                });
            }
            (BinaryOp::Mul32, Operands::RegImm) => asm!(self.ops
                ; imul ecx, Rd(b), v
                ; movsxd Rq(a), ecx
            ),
            (BinaryOp::Mul64, Operands::RegImm) => match i8::try_from(v) {
                Ok(v8) => asm!(self.ops ; imul Rq(a), Rq(b), BYTE v8),
                Err(_) => asm!(self.ops ; imul Rq(a), Rq(b), v),
            },
            (BinaryOp::SetLtU | BinaryOp::SetLtS, _) => {
                self.emit_cmp_imm(b, v);
                match (op, operands) {
                    (BinaryOp::SetLtU, Operands::RegImm) => asm!(self.ops ; setb cl),
                    (_, Operands::RegImm) => asm!(self.ops ; setl cl),
                    (BinaryOp::SetLtU, _) => asm!(self.ops ; seta cl),
                    _ => asm!(self.ops ; setg cl),
                }
                asm!(self.ops ; movzx Rd(a), cl);
            }
            (BinaryOp::ShloL32 | BinaryOp::ShloR32 | BinaryOp::SharR32, Operands::RegImm) => {
                let s = (v & 31) as i8;
                asm!(self.ops ; mov ecx, Rd(b));
                match op {
                    BinaryOp::ShloL32 => asm!(self.ops ; shl ecx, s),
                    BinaryOp::ShloR32 => asm!(self.ops ; shr ecx, s),
                    _ => asm!(self.ops ; sar ecx, s),
                }
                asm!(self.ops ; movsxd Rq(a), ecx);
            }
            (BinaryOp::Sub32, Operands::ImmReg) => asm!(self.ops
                ; mov ecx, v
                ; sub ecx, Rd(b)
                ; movsxd Rq(a), ecx
            ),
            (BinaryOp::ShloL32 | BinaryOp::ShloR32 | BinaryOp::SharR32, Operands::ImmReg) => {
                if bmi2 {
                    asm!(self.ops ; mov ecx, v);
                    match op {
                        BinaryOp::ShloL32 => asm!(self.ops ; shlx Rd(a), ecx, Rd(b)),
                        BinaryOp::ShloR32 => asm!(self.ops ; shrx Rd(a), ecx, Rd(b)),
                        _ => asm!(self.ops ; sarx Rd(a), ecx, Rd(b)),
                    }
                } else {
                    asm!(self.ops
                        ; mov ecx, Rd(b)
                        ; mov Rd(a), v
                    );
                    match op {
                        BinaryOp::ShloL32 => asm!(self.ops ; shl Rd(a), cl),
                        BinaryOp::ShloR32 => asm!(self.ops ; shr Rd(a), cl),
                        _ => asm!(self.ops ; sar Rd(a), cl),
                    }
                }
                asm!(self.ops ; movsxd Rq(a), Rd(a));
            }
            (BinaryOp::CmovIz | BinaryOp::CmovNz, Operands::ImmReg) => {
                asm!(self.ops
                    ; mov rcx, v
                    ; test Rq(b), Rq(b)
                );
                if op == BinaryOp::CmovIz {
                    asm!(self.ops ; cmovz Rq(a), rcx);
                } else {
                    asm!(self.ops ; cmovnz Rq(a), rcx);
                }
            }
            (BinaryOp::Add64, Operands::RegImm) => match i8::try_from(v) {
                Ok(0) => self.mov64(a, b),
                Ok(v8) if a == b => self.ops.put(x64::alu_ri8(AluImm::Add, a, v8)),
                Err(_) if a == b => self.ops.put(x64::alu_ri32(AluImm::Add, a, v)),
                _ => self.ops.put(x64::lea_disp(true, a, b, v)),
            },
            (BinaryOp::ShloL64 | BinaryOp::ShloR64 | BinaryOp::SharR64, Operands::RegImm) => {
                let s = (v & 63) as i8;
                self.mov64(a, b);
                let op = match op {
                    BinaryOp::ShloL64 => Shift::Shl,
                    BinaryOp::ShloR64 => Shift::Shr,
                    _ => Shift::Sar,
                };
                self.ops.put(x64::shift_ri(op, a, s));
            }
            (BinaryOp::Sub64, Operands::ImmReg) => asm!(self.ops
                ; mov rcx, v
                ; sub rcx, Rq(b)
                ; mov Rq(a), rcx
            ),
            (BinaryOp::ShloL64 | BinaryOp::ShloR64 | BinaryOp::SharR64, Operands::ImmReg) => {
                if bmi2 {
                    asm!(self.ops ; mov rcx, v);
                    match op {
                        BinaryOp::ShloL64 => asm!(self.ops ; shlx Rq(a), rcx, Rq(b)),
                        BinaryOp::ShloR64 => asm!(self.ops ; shrx Rq(a), rcx, Rq(b)),
                        _ => asm!(self.ops ; sarx Rq(a), rcx, Rq(b)),
                    }
                } else {
                    asm!(self.ops
                        ; mov rcx, Rq(b)
                        ; mov Rq(a), v
                    );
                    match op {
                        BinaryOp::ShloL64 => asm!(self.ops ; shl Rq(a), cl),
                        BinaryOp::ShloR64 => asm!(self.ops ; shr Rq(a), cl),
                        _ => asm!(self.ops ; sar Rq(a), cl),
                    }
                }
            }
            (BinaryOp::RotR64, Operands::RegImm) => {
                let s = (v & 63) as i8;
                if bmi2 {
                    self.ops.put(x64::rorx(true, a, b, s));
                } else {
                    self.mov64(a, b);
                    self.ops.put(x64::shift_ri(Shift::Ror, a, s));
                }
            }
            (BinaryOp::RotR64, Operands::ImmReg) => asm!(self.ops
                ; mov rcx, Rq(b)
                ; mov Rq(a), v
                ; ror Rq(a), cl
            ),
            (BinaryOp::RotR32, Operands::RegImm) => {
                let s = (v & 31) as i8;
                if bmi2 {
                    self.ops.put(x64::rorx(false, RCX, b, s));
                } else {
                    asm!(self.ops
                        ; mov ecx, Rd(b)
                        ; ror ecx, s
                    );
                }
                asm!(self.ops ; movsxd Rq(a), ecx);
            }
            (BinaryOp::RotR32, Operands::ImmReg) => asm!(self.ops
                ; mov ecx, Rd(b)
                ; mov Rd(a), v
                ; ror Rd(a), cl
                ; movsxd Rq(a), Rd(a)
            ),
            // Any other operation in this form: through the reference semantics.
            _ => self.emit_helper(i),
        }
    }

    /// `φ[rD] ← f(φ[rA], φ[rB])`.
    #[inline(always)]
    fn emit_three_reg(&mut self, op: BinaryOp, d: u8, a: u8, b: u8) {
        let f = self.features;
        match op {
            BinaryOp::Add32 => {
                self.ops.put(x64::lea_rr(false, RCX, a, b));
                self.ops.put(x64::movsxd(d, RCX));
            }
            BinaryOp::Sub32 => {
                self.ops.put(x64::alu_rr(Alu::Mov, false, RCX, a));
                self.ops.put(x64::alu_rr(Alu::Sub, false, RCX, b));
                self.ops.put(x64::movsxd(d, RCX));
            }
            BinaryOp::Mul32 => asm!(self.ops
                ; mov ecx, Rd(a)
                ; imul ecx, Rd(b)
                ; movsxd Rq(d), ecx
            ),
            BinaryOp::DivU32
            | BinaryOp::DivS32
            | BinaryOp::RemU32
            | BinaryOp::RemS32
            | BinaryOp::DivU64
            | BinaryOp::DivS64
            | BinaryOp::RemU64
            | BinaryOp::RemS64 => self.emit_division(op, d, a, b),
            BinaryOp::ShloL32 | BinaryOp::ShloR32 | BinaryOp::SharR32 => {
                if f.bmi2 {
                    match op {
                        BinaryOp::ShloL32 => asm!(self.ops ; shlx Rd(d), Rd(a), Rd(b)),
                        BinaryOp::ShloR32 => asm!(self.ops ; shrx Rd(d), Rd(a), Rd(b)),
                        _ => asm!(self.ops ; sarx Rd(d), Rd(a), Rd(b)),
                    }
                } else {
                    asm!(self.ops
                        ; mov ecx, Rd(b)
                        ; mov Rd(d), Rd(a)
                    );
                    match op {
                        BinaryOp::ShloL32 => asm!(self.ops ; shl Rd(d), cl),
                        BinaryOp::ShloR32 => asm!(self.ops ; shr Rd(d), cl),
                        _ => asm!(self.ops ; sar Rd(d), cl),
                    }
                }
                asm!(self.ops ; movsxd Rq(d), Rd(d));
            }
            BinaryOp::Add64 if d == a => self.ops.put(x64::alu_rr(Alu::Add, true, d, b)),
            BinaryOp::Add64 if d == b => self.ops.put(x64::alu_rr(Alu::Add, true, d, a)),
            BinaryOp::Add64 => self.ops.put(x64::lea_rr(true, d, a, b)),
            BinaryOp::Sub64 => {
                if d == a {
                    self.ops.put(x64::alu_rr(Alu::Sub, true, d, b));
                } else if d == b {
                    asm!(self.ops
                        ; neg Rq(d)
                        ; add Rq(d), Rq(a)
                    );
                } else {
                    self.ops.put(x64::alu_rr(Alu::Mov, true, d, a));
                    self.ops.put(x64::alu_rr(Alu::Sub, true, d, b));
                }
            }
            BinaryOp::Mul64 | BinaryOp::And | BinaryOp::Xor | BinaryOp::Or => {
                let (x, y) = if d == b { (b, a) } else { (a, b) };
                self.mov64(d, x);
                self.ops.put(match op {
                    BinaryOp::Mul64 => x64::imul_rr(d, y),
                    BinaryOp::And => x64::alu_rr(Alu::And, true, d, y),
                    BinaryOp::Xor => x64::alu_rr(Alu::Xor, true, d, y),
                    _ => x64::alu_rr(Alu::Or, true, d, y),
                });
            }
            BinaryOp::ShloL64 | BinaryOp::ShloR64 | BinaryOp::SharR64 | BinaryOp::RotL64 | BinaryOp::RotR64 => {
                if f.bmi2 && !matches!(op, BinaryOp::RotL64 | BinaryOp::RotR64) {
                    match op {
                        BinaryOp::ShloL64 => asm!(self.ops ; shlx Rq(d), Rq(a), Rq(b)),
                        BinaryOp::ShloR64 => asm!(self.ops ; shrx Rq(d), Rq(a), Rq(b)),
                        _ => asm!(self.ops ; sarx Rq(d), Rq(a), Rq(b)),
                    }
                } else {
                    asm!(self.ops ; mov rcx, Rq(b));
                    self.mov64(d, a);
                    match op {
                        BinaryOp::ShloL64 => asm!(self.ops ; shl Rq(d), cl),
                        BinaryOp::ShloR64 => asm!(self.ops ; shr Rq(d), cl),
                        BinaryOp::SharR64 => asm!(self.ops ; sar Rq(d), cl),
                        BinaryOp::RotL64 => asm!(self.ops ; rol Rq(d), cl),
                        _ => asm!(self.ops ; ror Rq(d), cl),
                    }
                }
            }
            BinaryOp::RotL32 | BinaryOp::RotR32 => {
                asm!(self.ops
                    ; mov ecx, Rd(b)
                    ; mov Rd(d), Rd(a)
                );
                if op == BinaryOp::RotL32 {
                    asm!(self.ops ; rol Rd(d), cl);
                } else {
                    asm!(self.ops ; ror Rd(d), cl);
                }
                asm!(self.ops ; movsxd Rq(d), Rd(d));
            }
            BinaryOp::MulUpperSS | BinaryOp::MulUpperUU | BinaryOp::MulUpperSU => self.emit_mul_upper(op, d, a, b),
            BinaryOp::SetLtU | BinaryOp::SetLtS => {
                asm!(self.ops ; cmp Rq(a), Rq(b));
                if op == BinaryOp::SetLtU {
                    asm!(self.ops ; setb cl);
                } else {
                    asm!(self.ops ; setl cl);
                }
                asm!(self.ops ; movzx Rd(d), cl);
            }
            BinaryOp::CmovIz => asm!(self.ops
                ; test Rq(b), Rq(b)
                ; cmovz Rq(d), Rq(a)
            ),
            BinaryOp::CmovNz => asm!(self.ops
                ; test Rq(b), Rq(b)
                ; cmovnz Rq(d), Rq(a)
            ),
            BinaryOp::AndInv if f.bmi1 => asm!(self.ops ; andn Rq(d), Rq(b), Rq(a)),
            BinaryOp::AndInv | BinaryOp::OrInv => {
                asm!(self.ops
                    ; mov rcx, Rq(b)
                    ; not rcx
                );
                if op == BinaryOp::AndInv {
                    asm!(self.ops ; and rcx, Rq(a));
                } else {
                    asm!(self.ops ; or rcx, Rq(a));
                }
                asm!(self.ops ; mov Rq(d), rcx);
            }
            BinaryOp::Xnor => asm!(self.ops
                ; mov rcx, Rq(a)
                ; xor rcx, Rq(b)
                ; not rcx
                ; mov Rq(d), rcx
            ),
            BinaryOp::Max | BinaryOp::MaxU | BinaryOp::Min | BinaryOp::MinU => {
                asm!(self.ops
                    ; mov rcx, Rq(a)
                    ; cmp rcx, Rq(b)
                );
                match op {
                    BinaryOp::Max => asm!(self.ops ; cmovl rcx, Rq(b)),
                    BinaryOp::MaxU => asm!(self.ops ; cmovb rcx, Rq(b)),
                    BinaryOp::Min => asm!(self.ops ; cmovg rcx, Rq(b)),
                    _ => asm!(self.ops ; cmova rcx, Rq(b)),
                }
                asm!(self.ops ; mov Rq(d), rcx);
            }
        }
    }

    /// Division and remainder: `rax`/`rdx` are spilled, the divisor goes to `rcx`, zero and
    /// MIN / -1 are handled before `div`/`idiv` can fault. Its jumps are patched directly
    /// (dynasm's local labels cost a search by name each).
    fn emit_division(&mut self, op: BinaryOp, d: u8, a: u8, b: u8) {
        let wide = matches!(op, BinaryOp::DivU64 | BinaryOp::DivS64 | BinaryOp::RemU64 | BinaryOp::RemS64);
        let signed = matches!(op, BinaryOp::DivS32 | BinaryOp::RemS32 | BinaryOp::DivS64 | BinaryOp::RemS64);
        let rem = matches!(op, BinaryOp::RemU32 | BinaryOp::RemS32 | BinaryOp::RemU64 | BinaryOp::RemS64);
        asm!(self.ops
            ; mov QWORD [r15 + ctx::SPILL0], rax
            ; mov QWORD [r15 + ctx::SPILL1], rdx
        );
        if wide {
            asm!(self.ops
                ; mov rcx, Rq(b)
                ; mov rax, Rq(a)
                ; test rcx, rcx
            );
        } else {
            asm!(self.ops
                ; mov ecx, Rd(b)
                ; mov eax, Rd(a)
                ; test ecx, ecx
            );
        }
        let to_zero = self.ops.jump(Some(Cond::E), None);
        let mut to_result = None;
        if signed {
            if wide {
                asm!(self.ops ; cmp rcx, -1);
            } else {
                asm!(self.ops ; cmp ecx, -1);
            }
            let to_divide = self.ops.jump(Some(Cond::Ne), None);
            match (rem, wide) {
                (true, _) => asm!(self.ops ; xor eax, eax),
                (false, true) => asm!(self.ops ; neg rax),
                (false, false) => asm!(self.ops ; neg eax),
            }
            to_result = Some(self.ops.jump(None, None));
            self.here(to_divide);
            if wide {
                asm!(self.ops ; cqo ; idiv rcx);
            } else {
                asm!(self.ops ; cdq ; idiv ecx);
            }
        } else if wide {
            asm!(self.ops ; xor edx, edx ; div rcx);
        } else {
            asm!(self.ops ; xor edx, edx ; div ecx);
        }
        if rem {
            if wide {
                asm!(self.ops ; mov rax, rdx);
            } else {
                asm!(self.ops ; mov eax, edx);
            }
        }
        if let Some(to_result) = to_result {
            self.here(to_result);
        }
        if wide {
            asm!(self.ops ; mov rcx, rax);
        } else {
            asm!(self.ops ; movsxd rcx, eax);
        }
        let to_done = self.ops.jump(None, None);
        self.here(to_zero);
        match (rem, wide) {
            (true, true) => asm!(self.ops ; mov rcx, rax),
            (true, false) => asm!(self.ops ; movsxd rcx, eax),
            (false, _) => asm!(self.ops ; mov rcx, -1),
        }
        self.here(to_done);
        asm!(self.ops
            ; mov rax, QWORD [r15 + ctx::SPILL0]
            ; mov rdx, QWORD [r15 + ctx::SPILL1]
            ; mov Rq(d), rcx
        );
    }

    /// Points the jump that ends at `end` here.
    fn here(&mut self, end: usize) {
        let here = self.ops.offset().0;
        self.ops.patch_jump(end, here);
    }

    fn emit_mul_upper(&mut self, op: BinaryOp, d: u8, a: u8, b: u8) {
        asm!(self.ops
            ; mov QWORD [r15 + ctx::SPILL0], rax
            ; mov QWORD [r15 + ctx::SPILL1], rdx
            ; mov rcx, Rq(b)
            ; mov rax, Rq(a)
        );
        match op {
            BinaryOp::MulUpperSS => asm!(self.ops ; imul rcx),
            BinaryOp::MulUpperUU => asm!(self.ops ; mul rcx),
            _ => {
                // Signed × unsigned: the unsigned high half, minus B when A is negative.
                asm!(self.ops ; mul rcx);
                match a {
                    RAX => asm!(self.ops ; cmp QWORD [r15 + ctx::SPILL0], 0),
                    RDX => asm!(self.ops ; cmp QWORD [r15 + ctx::SPILL1], 0),
                    _ => asm!(self.ops ; test Rq(a), Rq(a)),
                }
                asm!(self.ops
                    ; jns >positive
                    ; sub rdx, rcx
                    ; positive:
                );
            }
        }
        asm!(self.ops
            ; mov rcx, rdx
            ; mov rax, QWORD [r15 + ctx::SPILL0]
            ; mov rdx, QWORD [r15 + ctx::SPILL1]
            ; mov Rq(d), rcx
        );
    }
}

/// What a guest memory access does with its value.
#[derive(Clone, Copy)]
enum Access {
    Load { signed: bool },
    Store { value: Source },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Profile;

    #[test]
    fn a_failed_charge_is_found_by_its_call_s_return_address_alone() {
        let source = "top: add_imm_64 r1, r1, 1\nadd_imm_64 r2, r2, 2\nbranch_ne_imm r1, 10, top\n\
                      move_reg r3, r1\nfallthrough\ntrap\n";
        let blob = crate::asm::assemble(source, Profile::A).expect("assembles");
        let program = Program::new(blob, crate::program::Config::new(Profile::A, GasModel::BlockUnit));
        let (mut ops, mut spare, mut arena) = (Emitter::default(), Spare::default(), CodeArena::default());
        let module = compile(&program, Features::detect(), false, &mut ops, &mut spare, &mut arena).expect("compiles");
        // Under unit costs every block's first instruction has a charge, of the block's length.
        let firsts: Vec<u32> =
            (0..module.insts.len() as u32).filter(|&i| module.insts[i as usize].entry_len > 0).collect();
        assert!(firsts.len() >= 3 && firsts[0] == 0, "{firsts:?}");
        for (k, &first) in firsts.iter().enumerate() {
            let next = firsts.get(k + 1).copied().unwrap_or(module.insts.len() as u32);
            let inst = module.insts[first as usize];
            assert_eq!(inst.entry_len as usize, x64::CHARGE_LEN, "block {k}");
            // Its out-of-gas call, right before it, returns to its entry, and names it.
            let returns_to = (module.code_start() + inst.entry() as usize) as u64;
            let expected = FailedCharge { inst: first, charge: (next - first) as i32 };
            assert_eq!(module.failed_charge(returns_to), Some(expected), "block {k}");
            assert!(module.failed_charge(returns_to - 1).is_none() && module.failed_charge(returns_to + 1).is_none());
            let body = (module.code_start() + inst.body as usize) as u64;
            assert!(module.failed_charge(body).is_none(), "no call returns to a block's body");
        }
        // Nor to any other instruction's code.
        for (i, inst) in module.insts.iter().enumerate().filter(|(_, c)| c.entry_len == 0) {
            let body = (module.code_start() + inst.body as usize) as u64;
            assert!(module.failed_charge(body).is_none(), "instruction {i}");
        }
        assert!(module.failed_charge(module.code_start() as u64).is_none(), "nor to the start");
        let end = (module.code_start() + module.code_len()) as u64;
        assert!(module.failed_charge(end).is_none(), "nor past the end");
        assert!(module.failed_charge(0).is_none() && module.failed_charge(u64::MAX).is_none());
    }

    #[test]
    #[cfg(debug_assertions)]
    fn every_unit_fits_its_room() {
        use crate::blob::Blob;
        use std::sync::Arc;
        // Every opcode with operand bytes of several patterns and every length up to the
        // largest skip (the widest immediates and offsets, the high registers), compiled under
        // every gas model, with single steps, with no optional CPU feature and with all of
        // them: the longest unit of code any of them writes.
        let patterns = [0x00u8, 0xFF, 0x7F, 0x80, 0xCC, 0x5A];
        let mut longest = 0;
        for profile in Profile::ALL {
            let (mut code, mut starts) = (Vec::new(), Vec::new());
            for op in 0..=255u8 {
                for &pattern in &patterns {
                    for skip in 0..=crate::decode::MAX_SKIP as usize {
                        code.push(op);
                        starts.push(true);
                        code.extend(std::iter::repeat_n(pattern, skip));
                        starts.extend(std::iter::repeat_n(false, skip));
                    }
                }
            }
            let table = vec![0, 1, 7, 0x7FFF_FFFF];
            let wide: Arc<[(u32, u64)]> = vec![(0, 3), (1000, u64::MAX / 3), (5000, 1 << 31)].into();
            let models = [GasModel::BlockUnit, GasModel::Instruction, GasModel::BlockTable(wide)];
            let all = Features { popcnt: true, lzcnt: true, bmi1: true, bmi2: true, fsgsbase: true };
            let none = Features { popcnt: false, lzcnt: false, bmi1: false, bmi2: false, fsgsbase: false };
            for gas in models {
                let blob = Blob::new(table.clone(), code.clone(), starts.clone());
                let program = Program::new(blob, crate::program::Config::new(profile, gas.clone()));
                for (features, step) in [(all, false), (none, false), (all, true)] {
                    let (mut ops, mut spare, mut arena) = (Emitter::default(), Spare::default(), CodeArena::default());
                    compile(&program, features, step, &mut ops, &mut spare, &mut arena).expect("compiles");
                    longest = longest.max(ops.longest_unit());
                }
            }
        }
        assert!(longest > 16, "the units were measured");
        assert!(longest <= crate::jit::buf::MAX_UNIT, "a unit of {longest} bytes");
        eprintln!("longest unit of code: {longest} bytes");
    }

    #[test]
    fn instruction_searches_agree_with_a_plain_scan() {
        // Lists of every length up to 60 with pcs 0, 2, 5, ... (gaps of 2 and 3), searched
        // for every pc from before the first to past the last, from every position.
        for len in 0..60u32 {
            let insts: Vec<Compiled> = (0..len)
                .map(|k| Compiled { body: k, pc: k * 5 / 2, entry_len: 0, ends_block: false, jump_target: false })
                .collect();
            let at = |pc: u32| insts.iter().position(|c| c.pc == pc).map(|i| i as u32);
            for pc in 0..len * 3 + 3 {
                assert_eq!(index_of_recent(&insts, pc), at(pc), "recent: {len} instructions, pc {pc}");
                for from in 0..=insts.len() + 1 {
                    let expected = at(pc).filter(|&i| i as usize >= from);
                    assert_eq!(
                        index_of_ahead(&insts, from, pc),
                        expected,
                        "ahead: {len} instructions, pc {pc} from {from}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_searches_from_the_end_and_ahead_find_what_the_binary_search_finds() {
        for len in 0..70u32 {
            // Instructions at even pcs 0, 2, …: every pc, present or not, below, among and
            // past them.
            let insts: Vec<Compiled> = (0..len)
                .map(|k| Compiled { body: 0, entry_len: 0, pc: 2 * k, ends_block: false, jump_target: true })
                .collect();
            for pc in 0..2 * len + 3 {
                assert_eq!(index_of_recent(&insts, pc), index_of(&insts, pc), "{len} instructions, pc {pc}");
                // Searching ahead from any instruction at or before the one at pc.
                for from in 0..=(pc as usize / 2).min(len as usize) {
                    assert_eq!(index_of_ahead(&insts, from, pc), index_of(&insts, pc), "{len}, pc {pc}, from {from}");
                }
                assert_eq!(index_of(&insts, pc), (pc % 2 == 0 && pc < 2 * len).then_some(pc / 2));
            }
        }
    }
}
