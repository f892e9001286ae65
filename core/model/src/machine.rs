//! The model machine: registers, pc, gas and memory, and one instruction at a time decoded
//! from the raw code bytes (PVMSPEC-1 §2, §4) and executed by §5, §6, §8 and §9.

use std::collections::HashMap;
use std::sync::Arc;

use javm_engine::{Backend, Config, Exit, GasModel, MemoryError, Profile, Program, NUM_REGS};

use crate::blob::{self, ModelBlob};
use crate::coverage::{Coverage, Rule};
use crate::memory::{AccessError, HostError, Memory};
use crate::table::{Layout, Numbering, OpcodeMap, Row, I};

/// The dynamic-jump address that halts (§6): 2^32 − 2^16.
const HALT_ADDRESS: u64 = (1 << 32) - (1 << 16);

/// How gas is charged (§9), read from the run's configuration.
#[derive(Clone, Debug)]
enum Gas {
    /// §9.1: a block costs its number of instructions, charged on entry.
    BlockUnit,
    /// §9.2: a block costs the table entry with the largest pc not above its start (at
    /// least 1: the project's rule, so every run ends).
    BlockTable(Vec<(u32, u64)>),
    /// GP text: 1 before every instruction; running out leaves the decremented gas.
    Instruction,
}

/// The loaded program, as the model sees it.
struct Code {
    blob: ModelBlob,
    map: OpcodeMap,
    numbering: Numbering,
    gas: Gas,
    /// ϖ (§3.2), one flag per code byte.
    targets: Vec<bool>,
    /// Whether a pc follows a terminator (the second set of ϖ's definition).
    after_terminator: Vec<bool>,
    /// Block-unit costs already computed, by start pc.
    costs: HashMap<u32, u64>,
    readings: Readings,
}

/// Readings of the spec that other implementations are known to take where PVMSPEC-1 (and the
/// GP) say otherwise. All off in the reference model; the harness turns them on only to
/// decide whether a divergence of an external implementation is a listed known difference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readings {
    /// Three-register destination `min(12, byte & 15)` (PolkaVM, JAR Lean) instead of
    /// `min(12, byte)` (§4 note).
    pub three_reg_destination_low_nibble: bool,
    /// Operand bytes past the instruction's own `pc + ℓ` read as 0 instead of through ζ.
    pub operands_within_instruction: bool,
    /// Under unit block gas, a start inside a block charges the whole enclosing block
    /// (PolkaVM) instead of the instructions from the start pc to the block's end (§9.1).
    pub enclosing_block_charge: bool,
    /// A jump table stored with entry size 0 is empty (PolkaVM) instead of holding entries
    /// that are all 0 (GP, §1.2).
    pub zero_entry_size_empty: bool,
    /// An access that wraps past 2^32 panics (PolkaVM) instead of following §7's rule.
    pub wrapping_access_panics: bool,
    /// A store running from a read-only page into an unmapped one faults at the unmapped
    /// page (PolkaVM) instead of the read-only one (§7).
    pub straddle_reports_missing_page: bool,
}

/// Decoded operands (§4).
#[derive(Clone, Copy, Debug, Default)]
struct Args {
    ra: usize,
    rb: usize,
    rd: usize,
    x: u64,
    y: u64,
    /// Static target `pc + offset` (may be negative or past the end: then invalid).
    target: i64,
}

enum Next {
    /// Continue at `pc + 1 + skip(pc)`.
    Fall,
    Jump(u64),
    Exit(Exit),
    /// An exit after which the program resumes at the next instruction.
    ExitResume(Exit),
}

/// Rule counters, when enabled.
#[derive(Default)]
struct Cov(Option<Coverage>);

impl Cov {
    fn hit(&mut self, rule: Rule) {
        if let Some(c) = &mut self.0 {
            c.hit(rule);
        }
    }
}

/// The reference model backend (`model`).
#[derive(Default)]
pub struct Model {
    code: Option<Code>,
    regs: [u64; NUM_REGS],
    pc: u32,
    gas: i64,
    memory: Memory,
    /// The next instruction begins a block that has not been paid for.
    charge_pending: bool,
    /// The last exit resumes after the instruction at `pc` (host call, ecall).
    resume_next: bool,
    /// Halt and panic end the program; later runs report them again.
    finished: Option<Exit>,
    /// The exit the next run resumes from (for coverage).
    last_exit: Option<Exit>,
    cov: Cov,
    readings: Readings,
}

fn sext(l: u32, x: u64) -> u64 {
    match l {
        0 => 0,
        8 => x,
        _ => {
            let shift = 64 - 8 * l;
            (((x << shift) as i64) >> shift) as u64
        }
    }
}

/// `X32(v)`: truncate to 32 bits, sign-extend to 64.
fn x32(v: u64) -> u64 {
    v as u32 as i32 as i64 as u64
}

fn s64(v: u64) -> i64 {
    v as i64
}

fn s32(v: u64) -> i32 {
    v as u32 as i32
}

fn reg(nibble: u8) -> usize {
    (nibble as usize).min(12)
}

impl Code {
    fn n(&self) -> u64 {
        self.blob.code.len() as u64
    }

    /// ζ(i).
    fn zeta(&self, i: u64) -> u8 {
        if i < self.n() {
            self.blob.code[i as usize]
        } else {
            0
        }
    }

    /// k'(i): the bitmask followed by infinitely many 1 bits.
    fn k_ext(&self, i: u64) -> bool {
        i >= self.n() || self.blob.k[i as usize]
    }

    /// skip(i) = min(24, j) for the smallest j ≥ 0 with k'(i + 1 + j) = 1 (§2).
    fn skip(&self, i: u64) -> u64 {
        (0..24).find(|&j| self.k_ext(i + 1 + j)).unwrap_or(24)
    }

    /// The instruction at pc, when pc < n, k[pc] = 1 and c[pc] is defined; otherwise the
    /// instruction behaves as `trap` (§2).
    fn row_at(&self, pc: u64) -> Option<Row> {
        if pc < self.n() && self.blob.k[pc as usize] {
            self.map.get(self.blob.code[pc as usize])
        } else {
            None
        }
    }

    /// The terminator set of the active profile (§3.1): T, plus `unlikely`, `ecalli` and
    /// `ecall` in profile J.
    fn ends_block(&self, row: Row) -> bool {
        row.in_t || (self.numbering == Numbering::J && matches!(row.i, I::unlikely | I::ecalli | I::ecall))
    }

    /// ϖ by definition: {0} ∪ {i + 1 + skip(i) : k[i] = 1, c[i] ∈ T}, intersected with the
    /// defined instruction starts below n.
    fn compute_targets(&mut self) {
        let n = self.n();
        let mut after_terminator = vec![false; n as usize];
        for i in 0..n {
            if let Some(row) = self.row_at(i) {
                let next = i + 1 + self.skip(i);
                if self.ends_block(row) && next < n {
                    after_terminator[next as usize] = true;
                }
            }
        }
        self.targets = (0..n).map(|j| self.row_at(j).is_some() && (j == 0 || after_terminator[j as usize])).collect();
        self.after_terminator = after_terminator;
    }

    fn is_target(&self, pc: i64) -> bool {
        pc >= 0 && (pc as u64) < self.n() && self.targets[pc as usize]
    }

    /// The cost charged on entering a block at pc.
    fn block_cost(&mut self, cov: &mut Cov, pc: u32) -> u64 {
        match &self.gas {
            Gas::Instruction => 1,
            Gas::BlockTable(table) => {
                let cost = table.iter().filter(|e| e.0 <= pc).max_by_key(|e| e.0).map_or(0, |e| e.1);
                if cost == 0 {
                    cov.hit(Rule::GasTableNoEntry);
                }
                cost.max(1)
            }
            Gas::BlockUnit => {
                if let Some(&c) = self.costs.get(&pc) {
                    return c;
                }
                // Count instructions up to and including the first terminator; anything
                // that behaves as trap is one instruction and ends the block.
                let mut at = pc as u64;
                if self.readings.enclosing_block_charge {
                    // The alternative reading: count from the start of the enclosing block.
                    while at > 0 && (at >= self.n() || !self.after_terminator[at as usize]) {
                        at -= 1;
                    }
                }
                let mut count = 1;
                while let Some(row) = self.row_at(at) {
                    if self.ends_block(row) {
                        break;
                    }
                    at += 1 + self.skip(at);
                    count += 1;
                }
                self.costs.insert(pc, count);
                count
            }
        }
    }

    /// Decodes the instruction at pc (counting the rules it exercises).
    fn decode(&self, cov: &mut Cov, pc: u64, layout: Layout) -> Args {
        if cov.0.is_some() {
            self.cover_decoding(cov, pc, layout);
        }
        self.decode_operands(pc, layout)
    }

    /// Counts the decoding rules an instruction exercises.
    fn cover_decoding(&self, cov: &mut Cov, pc: u64, layout: Layout) {
        let (b1, b2) = (self.zeta(pc + 1), self.zeta(pc + 2));
        let l = self.skip(pc);
        let li = l as i64;
        let cap4 = |v: i64| v.clamp(0, 4) as u64;
        let low = |cov: &mut Cov| {
            if b1 & 15 >= 13 {
                cov.hit(Rule::RegNibbleLow13)
            }
        };
        let high = |cov: &mut Cov| {
            if b1 >> 4 >= 13 {
                cov.hit(Rule::RegNibbleHigh13)
            }
        };
        let imm = |cov: &mut Cov, len: u64| {
            cov.hit([Rule::ImmLen0, Rule::ImmLen1, Rule::ImmLen2, Rule::ImmLen3, Rule::ImmLen4][len as usize])
        };
        // Bytes the operands use, to tell ignored bytes and reads past the end apart.
        let used = match layout {
            Layout::NoArgs => {
                cov.hit(Rule::FormatNoArgs);
                0
            }
            Layout::OneImm | Layout::OneOffset => {
                cov.hit(if layout == Layout::OneImm { Rule::FormatOneImm } else { Rule::FormatOneOffset });
                imm(cov, cap4(li));
                cap4(li)
            }
            Layout::RegExtImm => {
                cov.hit(Rule::FormatRegExtImm);
                low(cov);
                9
            }
            Layout::RegImm => {
                cov.hit(Rule::FormatRegImm);
                low(cov);
                imm(cov, cap4(li - 1));
                1 + cap4(li - 1)
            }
            Layout::TwoImms | Layout::RegTwoImms | Layout::RegImmOffset | Layout::TwoRegsTwoImms => {
                let (nibble, head) = match layout {
                    Layout::TwoImms => {
                        cov.hit(Rule::FormatTwoImms);
                        (b1 & 7, 1)
                    }
                    Layout::TwoRegsTwoImms => {
                        cov.hit(Rule::FormatTwoRegsTwoImms);
                        low(cov);
                        high(cov);
                        (b2 & 7, 2)
                    }
                    _ => {
                        cov.hit(if layout == Layout::RegTwoImms {
                            Rule::FormatRegTwoImms
                        } else {
                            Rule::FormatRegImmOffset
                        });
                        low(cov);
                        ((b1 >> 4) & 7, 1)
                    }
                };
                if nibble > 4 {
                    cov.hit(Rule::ImmLenNibbleCapped);
                }
                let lx = cap4(nibble as i64);
                if lx + head > l {
                    cov.hit(Rule::ImmShortSkip);
                }
                let ly = cap4(li - lx as i64 - head as i64);
                imm(cov, lx);
                imm(cov, ly);
                head + lx + ly
            }
            Layout::TwoRegs => {
                cov.hit(Rule::FormatTwoRegs);
                low(cov);
                high(cov);
                1
            }
            Layout::TwoRegsImm | Layout::TwoRegsOffset => {
                cov.hit(if layout == Layout::TwoRegsImm { Rule::FormatTwoRegsImm } else { Rule::FormatTwoRegsOffset });
                low(cov);
                high(cov);
                imm(cov, cap4(li - 1));
                1 + cap4(li - 1)
            }
            Layout::ThreeRegs => {
                cov.hit(Rule::FormatThreeRegs);
                low(cov);
                high(cov);
                match b2 {
                    13..=15 => cov.hit(Rule::RegThirdByte13),
                    16.. => cov.hit(Rule::RegThirdByte16),
                    _ => {}
                }
                2
            }
        };
        if l > used {
            cov.hit(Rule::SkipExtraBytes);
        }
        if pc + 1 + used > self.n() {
            cov.hit(Rule::OperandPastCode);
        }
        if l == 24 && (1..=25).all(|j| !self.k_ext(pc + j)) {
            cov.hit(Rule::SkipCapped);
        }
    }

    /// Operands of the instruction at pc with the given layout (§4).
    fn decode_operands(&self, pc: u64, layout: Layout) -> Args {
        let l = self.skip(pc) as i64;
        // The spec reads operand bytes through ζ wherever they are; the alternative reading
        // stops at the instruction's own bytes (pc + ℓ).
        let bounded = self.readings.operands_within_instruction;
        let arg = |i: u64| if bounded && i > pc + l as u64 { 0 } else { self.zeta(i) };
        let le = |i: u64, len: u32| (0..len as u64).map(|j| (arg(i + j) as u64) << (8 * j)).sum::<u64>();
        let b1 = arg(pc + 1);
        let b2 = arg(pc + 2);
        let cap4 = |v: i64| v.clamp(0, 4) as u32;
        let offset = |at: u64, len: u32| pc as i64 + sext(len, le(at, len)) as i64;
        let mut a = Args::default();
        match layout {
            Layout::NoArgs => {}
            Layout::OneImm => {
                let lx = cap4(l);
                a.x = sext(lx, le(pc + 1, lx));
            }
            Layout::RegExtImm => {
                a.ra = reg(b1 & 15);
                a.x = le(pc + 2, 8);
            }
            Layout::TwoImms => {
                let lx = cap4((b1 & 7) as i64);
                a.x = sext(lx, le(pc + 2, lx));
                let ly = cap4(l - lx as i64 - 1);
                a.y = sext(ly, le(pc + 2 + lx as u64, ly));
            }
            Layout::OneOffset => {
                let lx = cap4(l);
                a.target = offset(pc + 1, lx);
            }
            Layout::RegImm => {
                a.ra = reg(b1 & 15);
                let lx = cap4(l - 1);
                a.x = sext(lx, le(pc + 2, lx));
            }
            Layout::RegTwoImms | Layout::RegImmOffset => {
                a.ra = reg(b1 & 15);
                let lx = cap4(((b1 >> 4) & 7) as i64);
                a.x = sext(lx, le(pc + 2, lx));
                let ly = cap4(l - lx as i64 - 1);
                if layout == Layout::RegTwoImms {
                    a.y = sext(ly, le(pc + 2 + lx as u64, ly));
                } else {
                    a.target = offset(pc + 2 + lx as u64, ly);
                }
            }
            Layout::TwoRegs => {
                a.rd = reg(b1 & 15);
                a.ra = reg(b1 >> 4);
            }
            Layout::TwoRegsImm | Layout::TwoRegsOffset => {
                a.ra = reg(b1 & 15);
                a.rb = reg(b1 >> 4);
                let lx = cap4(l - 1);
                if layout == Layout::TwoRegsImm {
                    a.x = sext(lx, le(pc + 2, lx));
                } else {
                    a.target = offset(pc + 2, lx);
                }
            }
            Layout::TwoRegsTwoImms => {
                a.ra = reg(b1 & 15);
                a.rb = reg(b1 >> 4);
                let lx = cap4((b2 & 7) as i64);
                a.x = sext(lx, le(pc + 3, lx));
                let ly = cap4(l - lx as i64 - 2);
                a.y = sext(ly, le(pc + 3 + lx as u64, ly));
            }
            Layout::ThreeRegs => {
                a.ra = reg(b1 & 15);
                a.rb = reg(b1 >> 4);
                // GP: the whole byte, capped (§4 note; the project follows GP).
                a.rd = if self.readings.three_reg_destination_low_nibble { (b2 & 15) as usize } else { b2 as usize }
                    .min(12);
            }
        }
        a
    }

    /// A dynamic jump to `a = (base + imm) mod 2^32` (§6).
    fn dynamic(&self, cov: &mut Cov, address: u64) -> Next {
        let a = address % (1 << 32);
        if a == HALT_ADDRESS {
            cov.hit(Rule::DjumpHalt);
            return Next::Exit(Exit::Halt);
        }
        let table_len =
            if self.readings.zero_entry_size_empty && self.blob.entry_size == 0 { 0 } else { self.blob.table_len };
        if a == 0 || a % 2 == 1 || a > table_len * 2 {
            cov.hit(if a == 0 {
                Rule::DjumpZero
            } else if a % 2 == 1 {
                Rule::DjumpOdd
            } else {
                Rule::DjumpBeyond
            });
            return Next::Exit(Exit::Panic);
        }
        let t = self.blob.entry(a / 2 - 1);
        if self.blob.entry_size == 0 {
            cov.hit(Rule::BlobZeroEntrySizeTable);
        }
        if !self.is_target(t as i64) {
            cov.hit(Rule::DjumpInvalidTarget);
            return Next::Exit(Exit::Panic);
        }
        cov.hit(Rule::DjumpValid);
        if a / 2 == self.blob.table_len {
            cov.hit(Rule::DjumpLastEntry);
        }
        Next::Jump(t)
    }

    /// Why a static target is not in ϖ (for coverage).
    fn invalid_reason(&self, target: i64) -> Rule {
        if target < 0 || target as u64 >= self.n() {
            Rule::JumpInvalidOutside
        } else if !self.blob.k[target as usize] {
            Rule::JumpInvalidMid
        } else if self.row_at(target as u64).is_none() {
            Rule::JumpInvalidUndefined
        } else {
            Rule::JumpInvalidNotAfterTerm
        }
    }

    /// A static jump or branch (§3.3). Profile B (PolkaVM) panics unless both the target and
    /// the fall-through of a conditional branch are valid, whether or not it is taken.
    fn branch(&self, cov: &mut Cov, pc: u64, args: &Args, conditional: bool, taken: bool) -> Next {
        if conditional && self.numbering == Numbering::B {
            let fall = pc + 1 + self.skip(pc);
            if !self.is_target(fall as i64) {
                cov.hit(Rule::BranchStrictFallthrough);
                return Next::Exit(Exit::Panic);
            }
            if !self.is_target(args.target) {
                cov.hit(if taken { self.invalid_reason(args.target) } else { Rule::BranchStrictTarget });
                return Next::Exit(Exit::Panic);
            }
        }
        if !taken {
            if !self.is_target(args.target) {
                cov.hit(Rule::BranchNotTakenInvalid);
            }
            return Next::Fall;
        }
        if !self.is_target(args.target) {
            cov.hit(self.invalid_reason(args.target));
            return Next::Exit(Exit::Panic);
        }
        cov.hit(Rule::JumpValid);
        Next::Jump(args.target as u64)
    }
}

/// Counts the memory rules an access exercises.
fn cover_access(cov: &mut Cov, mem: &Memory, address: u32, len: u32, write: bool, result: Result<(), AccessError>) {
    if cov.0.is_none() {
        return;
    }
    let wraps = address as u64 + len as u64 > 1 << 32;
    if wraps {
        cov.hit(Rule::MemWrap);
    }
    match result {
        Ok(()) => cov.hit(if write { Rule::MemStore } else { Rule::MemLoad }),
        Err(AccessError::Panic) => {
            cov.hit(if wraps && address >= 1 << 16 { Rule::MemWrapLowPanic } else { Rule::MemLowPanic })
        }
        Err(AccessError::PageFault(page)) => {
            if page != address & !0xFFF {
                cov.hit(Rule::MemStraddle);
            }
            cov.hit(if write && mem.is_mapped(page) { Rule::MemReadOnly } else { Rule::MemUnmapped });
        }
    }
}

fn fault(e: AccessError) -> Next {
    match e {
        AccessError::Panic => Next::Exit(Exit::Panic),
        AccessError::PageFault(page) => Next::Exit(Exit::PageFault(page)),
    }
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// A model that takes these alternative readings (see [`Readings`]).
    pub fn with_readings(readings: Readings) -> Model {
        let mut model = Model { readings, ..Model::default() };
        model.memory.report_missing_page_first = readings.straddle_reports_missing_page;
        model
    }

    fn reset(&mut self) {
        self.regs = [0; NUM_REGS];
        self.pc = 0;
        self.gas = 0;
        self.memory.clear();
        self.charge_pending = true;
        self.resume_next = false;
        self.finished = None;
        self.last_exit = None;
    }

    /// Loads blob bytes under a configuration (profile, gas model).
    pub fn load_bytes(&mut self, bytes: &[u8], config: &Config) {
        self.reset();
        self.code = blob::parse(bytes).map(|blob| {
            let numbering = match config.profile {
                Profile::A => Numbering::A,
                Profile::B => Numbering::B,
                Profile::J => Numbering::J,
            };
            let gas = match &config.gas {
                GasModel::BlockUnit => Gas::BlockUnit,
                GasModel::BlockTable(t) => Gas::BlockTable(t.to_vec()),
                GasModel::Instruction => Gas::Instruction,
            };
            let mut code = Code {
                blob,
                map: OpcodeMap::new(numbering),
                numbering,
                gas,
                targets: Vec::new(),
                after_terminator: Vec::new(),
                costs: HashMap::new(),
                readings: self.readings,
            };
            code.compute_targets();
            code
        });
        if self.code.as_ref().is_some_and(|c| c.blob.entry_size == 4) {
            self.cov.hit(Rule::BlobWideEntries);
        }
    }

    /// Executes one instruction (with its block charge).
    fn one(&mut self) -> Option<Exit> {
        if let Some(exit) = self.finished {
            self.cov.hit(Rule::RunAfterEnd);
            return Some(exit);
        }
        let cov = &mut self.cov;
        let Some(code) = self.code.as_mut() else {
            // A blob that does not decode: panic with nothing changed (§1.2).
            cov.hit(Rule::BlobInvalid);
            self.finished = Some(Exit::Panic);
            return Some(Exit::Panic);
        };
        let resumed_host_call = self.resume_next;
        if self.resume_next {
            self.pc = (self.pc as u64 + 1 + code.skip(self.pc as u64)) as u32;
            self.resume_next = false;
        }
        let pc = self.pc as u64;
        let instruction_gas = matches!(code.gas, Gas::Instruction);
        if instruction_gas {
            let gas = self.gas.wrapping_sub(1);
            self.gas = gas;
            if gas < 0 {
                cov.hit(Rule::GasNegative);
                return self.exit(Exit::OutOfGas);
            }
        } else if self.charge_pending {
            let cost = code.block_cost(cov, self.pc);
            if self.gas < 0 || (self.gas as u64) < cost {
                return self.exit(Exit::OutOfGas);
            }
            self.gas -= cost as i64;
            self.charge_pending = false;
            cov.hit(Rule::GasBlockCharge);
            if resumed_host_call {
                cov.hit(Rule::GasChargeAfterHostCall);
            }
            if pc != 0 && (pc >= code.n() || !code.after_terminator[pc as usize]) {
                cov.hit(Rule::GasMidBlockStart);
            }
        }
        let row = code.row_at(pc);
        let ends_block = match row {
            None => true,
            Some(r) => code.ends_block(r),
        };
        let next = match row {
            None => {
                cov.hit(if pc >= code.n() {
                    Rule::TrapEndOfCode
                } else if !code.blob.k[pc as usize] {
                    Rule::TrapNotStart
                } else {
                    Rule::TrapUndefined
                });
                Next::Exit(Exit::Trap)
            }
            Some(row) => {
                if row.i == I::trap {
                    cov.hit(Rule::TrapExplicit);
                }
                let args = code.decode(cov, pc, row.layout);
                execute(code, cov, &mut self.regs, &mut self.memory, pc, row.i, &args)
            }
        };
        if ends_block {
            self.charge_pending = true;
        }
        let code = self.code.as_ref().expect("loaded");
        match next {
            Next::Fall => {
                self.pc = (pc + 1 + code.skip(pc)) as u32;
                None
            }
            Next::Jump(t) => {
                self.pc = t as u32;
                None
            }
            Next::Exit(exit) => {
                if !exit.is_resumable() {
                    self.finished = Some(exit);
                }
                self.exit(exit)
            }
            Next::ExitResume(exit) => {
                self.resume_next = true;
                self.exit(exit)
            }
        }
    }

    /// Records an exit (for coverage) and returns it.
    fn exit(&mut self, exit: Exit) -> Option<Exit> {
        self.cov.hit(match exit {
            Exit::Halt => Rule::ExitHalt,
            Exit::Trap | Exit::Panic => Rule::ExitPanic,
            Exit::OutOfGas => Rule::GasOutOfGas,
            Exit::PageFault(_) => Rule::ExitPageFault,
            Exit::HostCall(_) => Rule::ExitHostCall,
            Exit::Ecall => Rule::ExitEcall,
        });
        self.last_exit = Some(exit);
        Some(exit)
    }

    /// Starts counting which rules of the spec this machine applies.
    pub fn enable_coverage(&mut self) {
        self.cov.0.get_or_insert_with(Coverage::default);
    }

    /// The rules applied since coverage was enabled.
    pub fn coverage(&self) -> Option<&Coverage> {
        self.cov.0.as_ref()
    }
}

/// §5: what one instruction does.
fn execute(code: &Code, cov: &mut Cov, r: &mut [u64; NUM_REGS], mem: &mut Memory, pc: u64, i: I, a: &Args) -> Next {
    use I::*;
    let (ra, rb, rd, x, y) = (a.ra, a.rb, a.rd, a.x, a.y);
    let (va, vb) = (r[ra], r[rb]);
    let store = |cov: &mut Cov, mem: &mut Memory, address: u64, len: u32, value: u64| {
        let result = if code.readings.wrapping_access_panics && (address as u32) as u64 + len as u64 > 1 << 32 {
            Err(AccessError::Panic)
        } else {
            mem.store(address as u32, len, value)
        };
        cover_access(cov, mem, address as u32, len, true, result);
        match result {
            Ok(()) => Next::Fall,
            Err(e) => fault(e),
        }
    };
    let load =
        |cov: &mut Cov, r: &mut [u64; NUM_REGS], mem: &Memory, dest: usize, address: u64, len: u32, signed: bool| {
            let result = if code.readings.wrapping_access_panics && (address as u32) as u64 + len as u64 > 1 << 32 {
                Err(AccessError::Panic)
            } else {
                mem.load(address as u32, len)
            };
            cover_access(cov, mem, address as u32, len, false, result.map(|_| ()));
            match result {
                Ok(v) => {
                    r[dest] = if signed { sext(len, v) } else { v };
                    Next::Fall
                }
                Err(e) => fault(e),
            }
        };
    let set = |r: &mut [u64; NUM_REGS], dest: usize, v: u64| {
        r[dest] = v;
        Next::Fall
    };
    let b = |v: bool| v as u64;
    match i {
        // §5.1
        trap => Next::Exit(Exit::Trap),
        fallthrough | unlikely => Next::Fall,
        ecall => Next::ExitResume(Exit::Ecall),
        // §5.2: the id is the sign-extended immediate, truncated to 32 bits.
        ecalli => {
            if (x as i64) < 0 {
                cov.hit(Rule::HostCallNegative);
            }
            Next::ExitResume(Exit::HostCall(x as u32))
        }
        // §5.3
        load_imm_64 => set(r, ra, x),
        // §5.4
        store_imm_u8 => store(cov, mem, x, 1, y),
        store_imm_u16 => store(cov, mem, x, 2, y),
        store_imm_u32 => store(cov, mem, x, 4, y),
        store_imm_u64 => store(cov, mem, x, 8, y),
        // §5.5
        jump => code.branch(cov, pc, a, false, true),
        // §5.6
        jump_ind => code.dynamic(cov, va.wrapping_add(x)),
        load_imm => set(r, ra, x),
        load_u8 => load(cov, r, mem, ra, x, 1, false),
        load_i8 => load(cov, r, mem, ra, x, 1, true),
        load_u16 => load(cov, r, mem, ra, x, 2, false),
        load_i16 => load(cov, r, mem, ra, x, 2, true),
        load_u32 => load(cov, r, mem, ra, x, 4, false),
        load_i32 => load(cov, r, mem, ra, x, 4, true),
        load_u64 => load(cov, r, mem, ra, x, 8, false),
        store_u8 => store(cov, mem, x, 1, va),
        store_u16 => store(cov, mem, x, 2, va),
        store_u32 => store(cov, mem, x, 4, va),
        store_u64 => store(cov, mem, x, 8, va),
        // §5.7
        store_imm_ind_u8 => store(cov, mem, va.wrapping_add(x), 1, y),
        store_imm_ind_u16 => store(cov, mem, va.wrapping_add(x), 2, y),
        store_imm_ind_u32 => store(cov, mem, va.wrapping_add(x), 4, y),
        store_imm_ind_u64 => store(cov, mem, va.wrapping_add(x), 8, y),
        // §5.8: the write of load_imm_jump persists if the jump panics.
        load_imm_jump => {
            r[ra] = x;
            let next = code.branch(cov, pc, a, false, true);
            if matches!(next, Next::Exit(_)) {
                cov.hit(Rule::LoadImmJumpPanics);
            }
            next
        }
        branch_eq_imm => code.branch(cov, pc, a, true, va == x),
        branch_ne_imm => code.branch(cov, pc, a, true, va != x),
        branch_lt_u_imm => code.branch(cov, pc, a, true, va < x),
        branch_le_u_imm => code.branch(cov, pc, a, true, va <= x),
        branch_ge_u_imm => code.branch(cov, pc, a, true, va >= x),
        branch_gt_u_imm => code.branch(cov, pc, a, true, va > x),
        branch_lt_s_imm => code.branch(cov, pc, a, true, s64(va) < s64(x)),
        branch_le_s_imm => code.branch(cov, pc, a, true, s64(va) <= s64(x)),
        branch_ge_s_imm => code.branch(cov, pc, a, true, s64(va) >= s64(x)),
        branch_gt_s_imm => code.branch(cov, pc, a, true, s64(va) > s64(x)),
        // §5.9: destination rD, source rA.
        move_reg => set(r, rd, va),
        // §5.14: the project panics on sbrk in every profile that has it.
        sbrk => {
            cov.hit(Rule::Sbrk);
            Next::Exit(Exit::Panic)
        }
        count_set_bits_64 => set(r, rd, va.count_ones() as u64),
        count_set_bits_32 => set(r, rd, (va as u32).count_ones() as u64),
        leading_zero_bits_64 => set(r, rd, va.leading_zeros() as u64),
        leading_zero_bits_32 => set(r, rd, (va as u32).leading_zeros() as u64),
        trailing_zero_bits_64 => set(r, rd, va.trailing_zeros() as u64),
        trailing_zero_bits_32 => set(r, rd, (va as u32).trailing_zeros() as u64),
        sign_extend_8 => set(r, rd, sext(1, va & 0xFF)),
        sign_extend_16 => set(r, rd, sext(2, va & 0xFFFF)),
        zero_extend_16 => set(r, rd, va & 0xFFFF),
        reverse_bytes => set(r, rd, va.swap_bytes()),
        // §5.10: stores write A to B + X; loads write rA from B + X.
        store_ind_u8 => store(cov, mem, vb.wrapping_add(x), 1, va),
        store_ind_u16 => store(cov, mem, vb.wrapping_add(x), 2, va),
        store_ind_u32 => store(cov, mem, vb.wrapping_add(x), 4, va),
        store_ind_u64 => store(cov, mem, vb.wrapping_add(x), 8, va),
        load_ind_u8 => load(cov, r, mem, ra, vb.wrapping_add(x), 1, false),
        load_ind_i8 => load(cov, r, mem, ra, vb.wrapping_add(x), 1, true),
        load_ind_u16 => load(cov, r, mem, ra, vb.wrapping_add(x), 2, false),
        load_ind_i16 => load(cov, r, mem, ra, vb.wrapping_add(x), 2, true),
        load_ind_u32 => load(cov, r, mem, ra, vb.wrapping_add(x), 4, false),
        load_ind_i32 => load(cov, r, mem, ra, vb.wrapping_add(x), 4, true),
        load_ind_u64 => load(cov, r, mem, ra, vb.wrapping_add(x), 8, false),
        add_imm_32 => set(r, ra, x32(vb.wrapping_add(x))),
        and_imm => set(r, ra, vb & x),
        xor_imm => set(r, ra, vb ^ x),
        or_imm => set(r, ra, vb | x),
        mul_imm_32 => set(r, ra, x32(vb.wrapping_mul(x))),
        set_lt_u_imm => set(r, ra, b(vb < x)),
        set_lt_s_imm => set(r, ra, b(s64(vb) < s64(x))),
        shlo_l_imm_32 => set(r, ra, x32(vb << (x % 32))),
        shlo_r_imm_32 => set(r, ra, x32((vb as u32 >> (x % 32)) as u64)),
        shar_r_imm_32 => set(r, ra, (s32(vb) >> (x % 32)) as i64 as u64),
        neg_add_imm_32 => set(r, ra, x32(x.wrapping_sub(vb))),
        set_gt_u_imm => set(r, ra, b(vb > x)),
        set_gt_s_imm => set(r, ra, b(s64(vb) > s64(x))),
        shlo_l_imm_alt_32 => set(r, ra, x32(x << (vb % 32))),
        shlo_r_imm_alt_32 => set(r, ra, x32((x as u32 >> (vb % 32)) as u64)),
        shar_r_imm_alt_32 => set(r, ra, (s32(x) >> (vb % 32)) as i64 as u64),
        cmov_iz_imm => set(r, ra, if vb == 0 { x } else { va }),
        cmov_nz_imm => set(r, ra, if vb != 0 { x } else { va }),
        add_imm_64 => set(r, ra, vb.wrapping_add(x)),
        mul_imm_64 => set(r, ra, vb.wrapping_mul(x)),
        shlo_l_imm_64 => set(r, ra, vb << (x % 64)),
        shlo_r_imm_64 => set(r, ra, vb >> (x % 64)),
        shar_r_imm_64 => set(r, ra, (s64(vb) >> (x % 64)) as u64),
        neg_add_imm_64 => set(r, ra, x.wrapping_sub(vb)),
        shlo_l_imm_alt_64 => set(r, ra, x << (vb % 64)),
        shlo_r_imm_alt_64 => set(r, ra, x >> (vb % 64)),
        shar_r_imm_alt_64 => set(r, ra, (s64(x) >> (vb % 64)) as u64),
        rot_r_64_imm => set(r, ra, vb.rotate_right((x % 64) as u32)),
        rot_r_64_imm_alt => set(r, ra, x.rotate_right((vb % 64) as u32)),
        rot_r_32_imm => set(r, ra, x32((vb as u32).rotate_right((x % 32) as u32) as u64)),
        rot_r_32_imm_alt => set(r, ra, x32((x as u32).rotate_right((vb % 32) as u32) as u64)),
        // §5.11
        branch_eq => code.branch(cov, pc, a, true, va == vb),
        branch_ne => code.branch(cov, pc, a, true, va != vb),
        branch_lt_u => code.branch(cov, pc, a, true, va < vb),
        branch_lt_s => code.branch(cov, pc, a, true, s64(va) < s64(vb)),
        branch_ge_u => code.branch(cov, pc, a, true, va >= vb),
        branch_ge_s => code.branch(cov, pc, a, true, s64(va) >= s64(vb)),
        // §5.12: the address comes from the old B; the write persists on panic or halt.
        load_imm_jump_ind => {
            if ra == rb {
                cov.hit(Rule::DjumpSameReg);
            }
            let address = vb.wrapping_add(y);
            r[ra] = x;
            code.dynamic(cov, address)
        }
        // §5.13
        _ => set(r, rd, three_regs(i, va, vb, r[rd])),
    }
}

/// §5.13: `φ[rD] ← f(A, B)`; `d` is the old φ[rD] (for the conditional moves).
fn three_regs(i: I, a: u64, b: u64, d: u64) -> u64 {
    use I::*;
    let (sa, sb) = (s64(a), s64(b));
    let (a32, b32) = (a as u32, b as u32);
    match i {
        add_32 => x32(a.wrapping_add(b)),
        sub_32 => x32(a.wrapping_sub(b)),
        mul_32 => x32(a.wrapping_mul(b)),
        // B mod 2^32 = 0 → all ones; else X32(floor(A32 / B32)).
        div_u_32 => a32.checked_div(b32).map_or(u64::MAX, |q| x32(q as u64)),
        div_s_32 => {
            let (p, q) = (s32(a), s32(b));
            if q == 0 {
                u64::MAX
            } else if p == i32::MIN && q == -1 {
                p as i64 as u64
            } else {
                (p / q) as i64 as u64
            }
        }
        rem_u_32 => {
            if b32 == 0 {
                x32(a)
            } else {
                x32((a32 % b32) as u64)
            }
        }
        rem_s_32 => {
            let (p, q) = (s32(a), s32(b));
            if p == i32::MIN && q == -1 {
                0
            } else if q == 0 {
                p as i64 as u64
            } else {
                (p % q) as i64 as u64
            }
        }
        shlo_l_32 => x32(a << (b % 32)),
        shlo_r_32 => x32((a32 >> (b % 32)) as u64),
        shar_r_32 => (s32(a) >> (b % 32)) as i64 as u64,
        add_64 => a.wrapping_add(b),
        sub_64 => a.wrapping_sub(b),
        mul_64 => a.wrapping_mul(b),
        div_u_64 => a.checked_div(b).unwrap_or(u64::MAX),
        div_s_64 => {
            if b == 0 {
                u64::MAX
            } else if sa == i64::MIN && sb == -1 {
                a
            } else {
                (sa / sb) as u64
            }
        }
        rem_u_64 => {
            if b == 0 {
                a
            } else {
                a % b
            }
        }
        rem_s_64 => {
            if sa == i64::MIN && sb == -1 {
                0
            } else if b == 0 {
                a
            } else {
                (sa % sb) as u64
            }
        }
        shlo_l_64 => a << (b % 64),
        shlo_r_64 => a >> (b % 64),
        shar_r_64 => (sa >> (b % 64)) as u64,
        and => a & b,
        xor => a ^ b,
        or => a | b,
        mul_upper_s_s => ((sa as i128 * sb as i128) >> 64) as u64,
        mul_upper_u_u => ((a as u128 * b as u128) >> 64) as u64,
        mul_upper_s_u => ((sa as i128 * b as i128) >> 64) as u64,
        set_lt_u => (a < b) as u64,
        set_lt_s => (sa < sb) as u64,
        cmov_iz => {
            if b == 0 {
                a
            } else {
                d
            }
        }
        cmov_nz => {
            if b != 0 {
                a
            } else {
                d
            }
        }
        rot_l_64 => a.rotate_left((b % 64) as u32),
        rot_l_32 => x32(a32.rotate_left((b % 32) as u32) as u64),
        rot_r_64 => a.rotate_right((b % 64) as u32),
        rot_r_32 => x32(a32.rotate_right((b % 32) as u32) as u64),
        and_inv => a & !b,
        or_inv => a | !b,
        xnor => !(a ^ b),
        max => sa.max(sb) as u64,
        max_u => a.max(b),
        min => sa.min(sb) as u64,
        min_u => a.min(b),
        other => unreachable!("{other:?} is not a three-register instruction"),
    }
}

/// The model's host error as the trait's.
fn host(e: HostError) -> MemoryError {
    match e {
        HostError::OutOfRange { address, length } => MemoryError::OutOfRange { address, length },
        HostError::Unmapped { address } => MemoryError::Unmapped { address },
    }
}

impl Backend for Model {
    fn name(&self) -> &'static str {
        "model"
    }

    fn reads_blobs(&self) -> bool {
        true
    }

    fn load_blob(&mut self, bytes: &[u8], config: &Config) {
        self.load_bytes(bytes, config);
    }

    /// A prepared program (from the kernel) is read back as blob bytes.
    fn load(&mut self, program: Arc<Program>) {
        let bytes = program.blob.encode();
        self.load_bytes(&bytes, &program.config);
    }

    fn load_invalid(&mut self) {
        self.reset();
        self.code = None;
    }

    fn regs(&self) -> [u64; NUM_REGS] {
        self.regs
    }

    fn set_reg(&mut self, reg: usize, value: u64) {
        self.regs[reg] = value;
    }

    fn pc(&self) -> u32 {
        self.pc
    }

    fn set_pc(&mut self, pc: u32) {
        self.last_exit = None;
        self.pc = pc;
        self.resume_next = false;
        self.charge_pending = true;
    }

    fn resume_pc(&self) -> u32 {
        match (&self.code, self.resume_next) {
            (Some(code), true) => (self.pc as u64 + 1 + code.skip(self.pc as u64)) as u32,
            _ => self.pc,
        }
    }

    fn gas(&self) -> i64 {
        self.gas
    }

    fn set_gas(&mut self, gas: i64) {
        self.gas = gas;
    }

    fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError> {
        self.memory.map(address, length, writable).map_err(host)
    }

    fn write_memory(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
        self.memory.write(address, bytes).map_err(host)
    }

    fn read_memory(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
        self.memory.read(address, length).map_err(host)
    }

    fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.memory.pages()
    }

    fn memory_pages_sparse(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.memory.sparse_pages()
    }

    fn run(&mut self) -> Exit {
        match self.last_exit.take() {
            Some(Exit::HostCall(_) | Exit::Ecall) => self.cov.hit(Rule::ResumeHostCall),
            Some(Exit::PageFault(_)) => self.cov.hit(Rule::ResumePageFault),
            Some(Exit::OutOfGas) => self.cov.hit(Rule::ResumeOutOfGas),
            _ => {}
        }
        loop {
            if let Some(exit) = self.one() {
                return exit;
            }
        }
    }

    fn step(&mut self) -> Option<Exit> {
        self.one()
    }
}
