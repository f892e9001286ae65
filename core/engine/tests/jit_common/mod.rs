//! Shared helpers of the JIT tests: a small assembler, a random generator, and a lockstep
//! comparison of the JIT against the reference interpreter.

#![allow(dead_code)]

use std::sync::Arc;

use javm_engine::isa::{Format, Op, Profile, TABLE};
use javm_engine::jit::Jit;
use javm_engine::{Backend, Blob, Config, Exit, GasModel, Interpreter, Program, NUM_REGS};

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A value biased towards edge cases.
    pub fn value(&mut self) -> u64 {
        match self.below(10) {
            0 => *self.pick(&EDGE_VALUES),
            1 => self.below(70),
            2 => (self.next() as i32) as i64 as u64,
            3 => self.next() & 0xFFFF_FFFF,
            4 => (self.below(64) as i64 - 32) as u64,
            _ => self.next(),
        }
    }
}

pub const EDGE_VALUES: [u64; 20] = [
    0,
    1,
    2,
    u64::MAX,
    u64::MAX - 1,
    1 << 63,
    (1 << 63) - 1,
    0x8000_0000,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x1_0000_0000,
    0xFFFF_FFFF_8000_0000,
    0xFFFF_FFFF_0000_0000,
    31,
    32,
    63,
    64,
    65,
    0x80,
    0xFFFF_0000,
];

/// Minimal sign-extended little-endian encoding of an immediate (0..=4 bytes).
pub fn imm_bytes(v: i64) -> Vec<u8> {
    for len in 0..=4usize {
        let shift = 64 - 8 * len as u32;
        let back = if len == 0 { 0 } else { (v << shift) >> shift };
        if back == v {
            return v.to_le_bytes()[..len].to_vec();
        }
    }
    panic!("immediate {v:#x} does not fit 4 bytes");
}

/// Builds code for one profile. Offsets are always encoded with 4 bytes.
pub struct Asm {
    pub profile: Profile,
    pub code: Vec<u8>,
    pub starts: Vec<bool>,
    labels: Vec<Option<u32>>,
    /// (position of the 4-byte offset field, instruction pc, label)
    fixups: Vec<(usize, u32, usize)>,
    pub jump_table: Vec<u32>,
    /// (jump-table entry, label)
    table_fixups: Vec<(usize, usize)>,
}

pub struct Label(usize);

impl Asm {
    pub fn new(profile: Profile) -> Asm {
        Asm {
            profile,
            code: Vec::new(),
            starts: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
            jump_table: Vec::new(),
            table_fixups: Vec::new(),
        }
    }

    pub fn pc(&self) -> u32 {
        self.code.len() as u32
    }

    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    pub fn bind(&mut self, label: &Label) {
        self.labels[label.0] = Some(self.pc());
    }

    /// Appends a raw instruction: opcode byte then argument bytes.
    pub fn raw(&mut self, opcode: u8, args: &[u8]) {
        self.code.push(opcode);
        self.starts.push(true);
        self.code.extend_from_slice(args);
        self.starts.extend(std::iter::repeat_n(false, args.len()));
    }

    fn opcode(&self, op: Op) -> u8 {
        op.number(self.profile).unwrap_or_else(|| panic!("{op} is not in profile {}", self.profile))
    }

    pub fn op(&mut self, op: Op, args: &[u8]) {
        let n = self.opcode(op);
        self.raw(n, args);
    }

    pub fn no_args(&mut self, op: Op) {
        self.op(op, &[]);
    }

    pub fn ecalli(&mut self, id: i64) {
        self.op(Op::Ecalli, &imm_bytes(id));
    }

    pub fn load_imm_64(&mut self, ra: u8, x: u64) {
        let mut args = vec![ra];
        args.extend_from_slice(&x.to_le_bytes());
        self.op(Op::LoadImm64, &args);
    }

    pub fn two_imm(&mut self, op: Op, x: i64, y: i64) {
        let xb = imm_bytes(x);
        let mut args = vec![xb.len() as u8];
        args.extend(xb);
        args.extend(imm_bytes(y));
        self.op(op, &args);
    }

    pub fn reg_imm(&mut self, op: Op, ra: u8, x: i64) {
        let mut args = vec![ra];
        args.extend(imm_bytes(x));
        self.op(op, &args);
    }

    pub fn reg_two_imm(&mut self, op: Op, ra: u8, x: i64, y: i64) {
        let xb = imm_bytes(x);
        let mut args = vec![ra | (xb.len() as u8) << 4];
        args.extend(xb);
        args.extend(imm_bytes(y));
        self.op(op, &args);
    }

    pub fn two_reg(&mut self, op: Op, rd: u8, ra: u8) {
        self.op(op, &[rd | ra << 4]);
    }

    pub fn two_reg_imm(&mut self, op: Op, ra: u8, rb: u8, x: i64) {
        let mut args = vec![ra | rb << 4];
        args.extend(imm_bytes(x));
        self.op(op, &args);
    }

    pub fn two_reg_two_imm(&mut self, op: Op, ra: u8, rb: u8, x: i64, y: i64) {
        let xb = imm_bytes(x);
        let mut args = vec![ra | rb << 4, xb.len() as u8];
        args.extend(xb);
        args.extend(imm_bytes(y));
        self.op(op, &args);
    }

    pub fn three_reg(&mut self, op: Op, rd: u8, ra: u8, rb: u8) {
        self.op(op, &[ra | rb << 4, rd]);
    }

    fn offset_fixup(&mut self, label: &Label, pc: u32) {
        self.fixups.push((self.code.len() - 4, pc, label.0));
    }

    pub fn jump(&mut self, label: &Label) {
        let pc = self.pc();
        self.op(Op::Jump, &[0; 4]);
        self.offset_fixup(label, pc);
    }

    pub fn jump_to_pc(&mut self, target: u32) {
        let pc = self.pc();
        self.op(Op::Jump, &(target.wrapping_sub(pc)).to_le_bytes());
    }

    /// `load_imm_jump` / `branch_*_imm`.
    pub fn reg_imm_branch(&mut self, op: Op, ra: u8, x: i64, label: &Label) {
        let pc = self.pc();
        let xb = imm_bytes(x);
        let mut args = vec![ra | (xb.len() as u8) << 4];
        args.extend(xb);
        args.extend([0; 4]);
        self.op(op, &args);
        self.offset_fixup(label, pc);
    }

    pub fn branch(&mut self, op: Op, ra: u8, rb: u8, label: &Label) {
        let pc = self.pc();
        self.op(op, &[ra | rb << 4, 0, 0, 0, 0]);
        self.offset_fixup(label, pc);
    }

    /// A jump-table entry pointing at `label` (resolved at `finish`); returns the jump address.
    pub fn table_entry(&mut self, label: &Label) -> u32 {
        self.table_fixups.push((self.jump_table.len(), label.0));
        self.jump_table.push(0);
        2 * self.jump_table.len() as u32
    }

    pub fn table_entry_pc(&mut self, pc: u32) -> u32 {
        self.jump_table.push(pc);
        2 * self.jump_table.len() as u32
    }

    pub fn blob(mut self) -> Blob {
        for (at, pc, label) in std::mem::take(&mut self.fixups) {
            let target = self.labels[label].expect("unbound label");
            self.code[at..at + 4].copy_from_slice(&target.wrapping_sub(pc).to_le_bytes());
        }
        for (entry, label) in std::mem::take(&mut self.table_fixups) {
            self.jump_table[entry] = self.labels[label].expect("unbound label");
        }
        Blob::new(self.jump_table, self.code, self.starts)
    }

    pub fn program(self, gas: GasModel) -> Arc<Program> {
        let profile = self.profile;
        Arc::new(Program::new(self.blob(), Config::new(profile, gas)))
    }
}

/// Instructions of a profile, with their opcode numbers.
pub fn profile_ops(profile: Profile) -> Vec<(Op, u8)> {
    TABLE.iter().filter_map(|row| row.op.number(profile).map(|n| (row.op, n))).collect()
}

/// How the host reacts to resumable exits during a comparison.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Maximum number of runs.
    pub max_runs: usize,
    /// Gas added after out-of-gas (0: stop there).
    pub refuel: i64,
    /// Map the faulting page (read-write) after a page fault, else stop.
    pub map_on_fault: bool,
    /// Use `step` instead of `run` for every other call.
    pub mix_steps: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { max_runs: 16, refuel: 0, map_on_fault: false, mix_steps: false }
    }
}

/// The full observable state of a backend.
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    pub exit: Option<Exit>,
    pub pc: u32,
    pub resume_pc: u32,
    pub gas: i64,
    pub regs: [u64; NUM_REGS],
    pub pages: Vec<(u32, bool, Vec<u8>)>,
    pub charge_pending: bool,
}

pub fn interp_state(b: &Interpreter, exit: Option<Exit>) -> State {
    State {
        exit,
        pc: b.pc(),
        resume_pc: b.resume_pc(),
        gas: b.gas(),
        regs: b.regs(),
        pages: b.memory_pages(),
        charge_pending: b.charge_pending(),
    }
}

pub fn jit_state(b: &Jit, exit: Option<Exit>) -> State {
    State {
        exit,
        pc: b.pc(),
        resume_pc: b.resume_pc(),
        gas: b.gas(),
        regs: b.regs(),
        pages: b.memory_pages(),
        charge_pending: b.charge_pending(),
    }
}

fn describe(a: &State, b: &State) -> String {
    let mut out = String::new();
    if a.exit != b.exit {
        out += &format!(" exit {:?} vs {:?};", a.exit, b.exit);
    }
    if a.pc != b.pc {
        out += &format!(" pc {} vs {};", a.pc, b.pc);
    }
    if a.resume_pc != b.resume_pc {
        out += &format!(" resume_pc {} vs {};", a.resume_pc, b.resume_pc);
    }
    if a.gas != b.gas {
        out += &format!(" gas {} vs {};", a.gas, b.gas);
    }
    for r in 0..NUM_REGS {
        if a.regs[r] != b.regs[r] {
            out += &format!(" r{r} {:#x} vs {:#x};", a.regs[r], b.regs[r]);
        }
    }
    if a.charge_pending != b.charge_pending {
        out += &format!(" charge_pending {} vs {};", a.charge_pending, b.charge_pending);
    }
    if a.pages != b.pages {
        out += " memory differs;";
    }
    out
}

/// Both backends with the same program and setup.
pub struct Pair<'a> {
    pub interp: &'a mut Interpreter,
    pub jit: &'a mut Jit,
}

impl<'a> Pair<'a> {
    pub fn new(interp: &'a mut Interpreter, jit: &'a mut Jit, program: &Arc<Program>) -> Self {
        // The JIT compiles first, from the code, as it does on its own: once the
        // interpreter has built the program's instruction list, the JIT would compile from
        // that (the equivalence of the two is `program`'s own test).
        jit.load(program.clone());
        jit.precompile();
        interp.load(program.clone());
        Pair { interp, jit }
    }

    pub fn each(&mut self, mut f: impl FnMut(&mut dyn Backend)) {
        f(self.interp);
        f(self.jit);
    }

    pub fn map(&mut self, address: u32, length: u64, writable: bool) {
        let a = self.interp.map(address, length, writable);
        let b = self.jit.map(address, length, writable);
        assert_eq!(a, b, "map {address:#x}+{length:#x}");
    }

    pub fn write(&mut self, address: u32, bytes: &[u8]) {
        let a = self.interp.write_memory(address, bytes);
        let b = self.jit.write_memory(address, bytes);
        assert_eq!(a, b, "write {address:#x}");
    }

    pub fn compare(&self, exit_a: Option<Exit>, exit_b: Option<Exit>) -> Result<(), String> {
        let a = interp_state(self.interp, exit_a);
        let b = jit_state(self.jit, exit_b);
        if a == b {
            Ok(())
        } else {
            Err(describe(&a, &b))
        }
    }

    /// Runs both in lockstep, comparing after every exit. Returns the exits seen.
    pub fn run(&mut self, policy: Policy) -> Result<Vec<Exit>, String> {
        let mut exits = Vec::new();
        let mut host_value = 0x1000u64;
        for n in 0..policy.max_runs {
            let step = policy.mix_steps && n % 2 == 1;
            let (ea, eb) = if step {
                (self.interp.step(), self.jit.step())
            } else {
                (Some(self.interp.run()), Some(self.jit.run()))
            };
            self.compare(ea, eb).map_err(|e| format!("after {} {n}:{e}", if step { "step" } else { "run" }))?;
            let Some(exit) = ea else { continue };
            exits.push(exit);
            match exit {
                Exit::HostCall(_) | Exit::Ecall => {
                    host_value = host_value.wrapping_mul(31).wrapping_add(7);
                    let v = host_value;
                    self.each(|b| b.set_reg(7, v));
                }
                Exit::OutOfGas if policy.refuel > 0 => {
                    let g = self.interp.gas().saturating_add(policy.refuel);
                    self.each(|b| b.set_gas(g));
                }
                Exit::PageFault(page) if policy.map_on_fault => self.map(page, 4096, true),
                e if !e.is_resumable() => {
                    // Terminal exits repeat.
                    let (a, b) = (self.interp.run(), self.jit.run());
                    self.compare(Some(a), Some(b)).map_err(|e| format!("after repeat:{e}"))?;
                    if a != exit {
                        return Err(format!("terminal exit did not repeat: {exit:?} then {a:?}"));
                    }
                    return Ok(exits);
                }
                _ => return Ok(exits),
            }
        }
        Ok(exits)
    }
}

/// Appends one random instruction of the profile. Offsets are 4-byte placeholders recorded in
/// `offsets` as (field position, instruction pc) for [`random_program`] to aim.
pub fn random_instruction(rng: &mut Rng, asm: &mut Asm, ops: &[(Op, u8)], offsets: &mut Vec<(usize, u32)>) {
    let (op, number) = *rng.pick(ops);
    let reg = |rng: &mut Rng| if rng.chance(90) { rng.below(13) as u8 } else { rng.below(16) as u8 };
    let imm = |rng: &mut Rng| -> Vec<u8> {
        let v = rng.value() as i64;
        let v = match rng.below(4) {
            0 => v as i8 as i64,
            1 => v as i16 as i64,
            2 => (v << 40) >> 40,
            _ => v as i32 as i64,
        };
        imm_bytes(v)
    };
    let pc = asm.pc();
    let offset = |_: &mut Rng, _: u32| -> Vec<u8> { vec![0; 4] };
    let mut args = Vec::new();
    match op.format() {
        Format::NoArgs => {}
        Format::OneImm => args.extend(imm(rng)),
        Format::RegExtImm => {
            args.push(reg(rng));
            args.extend(rng.value().to_le_bytes());
        }
        Format::TwoImm => {
            let x = imm(rng);
            args.push(x.len() as u8);
            args.extend(x);
            args.extend(imm(rng));
        }
        Format::OneOffset => args.extend(offset(rng, pc)),
        Format::RegImm => {
            args.push(reg(rng));
            args.extend(imm(rng));
        }
        Format::RegTwoImm => {
            let x = imm(rng);
            args.push(reg(rng) | (x.len() as u8) << 4);
            args.extend(x);
            args.extend(imm(rng));
        }
        Format::RegImmOffset => {
            let x = imm(rng);
            args.push(reg(rng) | (x.len() as u8) << 4);
            args.extend(x);
            args.extend(offset(rng, pc));
        }
        Format::TwoReg => args.push(reg(rng) | reg(rng) << 4),
        Format::TwoRegImm => {
            args.push(reg(rng) | reg(rng) << 4);
            args.extend(imm(rng));
        }
        Format::TwoRegOffset => {
            args.push(reg(rng) | reg(rng) << 4);
            args.extend(offset(rng, pc));
        }
        Format::TwoRegTwoImm => {
            args.push(reg(rng) | reg(rng) << 4);
            let x = imm(rng);
            args.push(x.len() as u8);
            args.extend(x);
            args.extend(imm(rng));
        }
        Format::ThreeReg => {
            args.push(reg(rng) | reg(rng) << 4);
            args.push(if rng.chance(95) { rng.below(13) as u8 } else { rng.below(256) as u8 });
        }
    }
    if op.format().has_offset() {
        offsets.push((asm.code.len() + 1 + args.len() - 4, pc));
    }
    // Occasionally truncate or pad the arguments (short and long skips).
    if rng.chance(5) && !args.is_empty() && !op.format().has_offset() {
        let keep = rng.below(args.len() as u64) as usize;
        args.truncate(keep);
    } else if rng.chance(3) {
        for _ in 0..rng.below(30) {
            args.push(rng.next() as u8);
        }
    }
    asm.raw(number, &args);
}

/// A random program: random instructions with jumps aimed mostly at block starts, and a jump
/// table of mostly valid entries.
pub fn random_program(rng: &mut Rng, profile: Profile) -> Arc<Program> {
    let ops = profile_ops(profile);
    let mut asm = Asm::new(profile);
    let mut offsets = Vec::new();
    let count = 1 + rng.below(40);
    for _ in 0..count {
        if rng.chance(8) {
            // A memory access or ALU op with a small immediate.
            let (op, _) = *rng.pick(&ops);
            if matches!(op.format(), Format::TwoRegImm) {
                asm.two_reg_imm(op, rng.below(13) as u8, rng.below(13) as u8, rng.below(16) as i64 - 8);
                continue;
            }
        }
        if rng.chance(4) {
            // A return through r0 (the halt address when the host set it so).
            asm.reg_imm(Op::JumpInd, 0, 0);
            continue;
        }
        random_instruction(rng, &mut asm, &ops, &mut offsets);
    }
    let len = asm.pc();
    // Instruction starts, and those that follow a terminator (valid targets).
    let starts: Vec<u32> = (0..len).filter(|&i| asm.starts[i as usize]).collect();
    let mut valid = vec![0u32];
    for w in starts.windows(2) {
        if profile.op(asm.code[w[0] as usize]).is_some_and(|op| profile.is_terminator(op)) {
            valid.push(w[1]);
        }
    }
    let aim = |rng: &mut Rng| -> u32 {
        match rng.below(10) {
            0..=5 => *rng.pick(&valid),
            6 | 7 => *rng.pick(&starts),
            8 => rng.below(len as u64 + 2) as u32,
            _ => rng.next() as u32,
        }
    };
    for (at, pc) in offsets {
        let target = aim(rng);
        asm.code[at..at + 4].copy_from_slice(&target.wrapping_sub(pc).to_le_bytes());
    }
    for _ in 0..rng.below(6) {
        let target = aim(rng);
        asm.table_entry_pc(target);
    }
    let mut blob = asm.blob();
    if rng.chance(5) {
        blob.entry_size = 0;
        blob.jump_table_len = rng.below(5) as u32;
        blob.jump_table.clear();
    }
    let gas = random_gas_model(rng, len);
    Arc::new(Program::new(blob, Config::new(profile, gas)))
}

/// Guest memory layout used by random programs.
pub const RW_PAGES: [u32; 4] = [0x10000, 0x11000, 0x2_0000, 0xFFFF_F000];
pub const RO_PAGE: u32 = 0x3_0000;

/// A random address near mapped memory (or anywhere).
pub fn random_address(rng: &mut Rng) -> u64 {
    let base = match rng.below(8) {
        0 => 0,
        1 => RO_PAGE as u64,
        2 => 0xFFFF_FFF8,
        3 => rng.next() & 0xFFFF_FFFF,
        4 => 0x2_1000,
        _ => *rng.pick(&RW_PAGES) as u64,
    };
    let a = base.wrapping_add(rng.below(4096 + 16)).wrapping_sub(8);
    if rng.chance(20) {
        a | (rng.next() << 32)
    } else {
        a & 0xFFFF_FFFF
    }
}

pub fn random_gas_model(rng: &mut Rng, code_len: u32) -> GasModel {
    match rng.below(3) {
        0 => GasModel::BlockUnit,
        1 => GasModel::Instruction,
        _ => {
            let mut entries = vec![(0u32, 1 + rng.below(20))];
            for _ in 0..rng.below(8) {
                entries.push((rng.below(code_len as u64 + 4) as u32, 1 + rng.below(30)));
            }
            GasModel::table(entries)
        }
    }
}

/// Sets up memory and registers for a random program on both backends.
pub fn random_setup(rng: &mut Rng, pair: &mut Pair<'_>) {
    for &page in &RW_PAGES {
        if rng.chance(85) {
            pair.map(page, 4096, true);
            let bytes: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
            let at = page + rng.below(4096 - 64) as u32;
            pair.write(at, &bytes);
        }
    }
    if rng.chance(30) {
        pair.map(0, 4096, rng.chance(50));
    }
    pair.map(RO_PAGE, 4096, false);
    let bytes: Vec<u8> = (0..32).map(|_| rng.next() as u8).collect();
    pair.write(RO_PAGE + 4000, &bytes);
    for r in 0..NUM_REGS {
        let v = match rng.below(10) {
            0..=3 => random_address(rng),
            4 => 2 * (1 + rng.below(6)),
            5..=7 if r == 0 => 0xFFFF_0000,
            _ => rng.value(),
        };
        pair.each(|b| b.set_reg(r, v));
    }
    let gas = match rng.below(4) {
        0 => rng.below(30) as i64,
        1 => -(rng.below(3) as i64),
        _ => 200 + rng.below(2000) as i64,
    };
    pair.each(|b| b.set_gas(gas));
}
