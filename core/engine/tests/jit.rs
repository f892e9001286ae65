//! Differential tests of the JIT against the reference interpreter: every opcode of every
//! profile, the three gas models, out-of-gas at every block, page faults, dynamic jumps,
//! resumption after every resumable exit, randomized programs and hostile programs.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod jit_common;

use std::sync::Arc;

use javm_engine::isa::{Format, Op, Profile};
use javm_engine::jit::{Features, Jit};
use javm_engine::{Backend, Blob, Config, Exit, GasModel, Interpreter, Program, NUM_REGS};

use jit_common::*;

fn jit() -> Jit {
    Jit::new().expect("jit")
}

/// Registers that exercise every host-register class of the JIT (rax/rdx-mapped, rbp, r12,
/// r13, plain) plus the nibbles 13..15 that mean r12.
const REG_TRIPLES: [(u8, u8, u8); 12] = [
    (1, 2, 3),
    (1, 1, 2),
    (1, 2, 1),
    (4, 4, 4),
    (11, 12, 0),
    (12, 11, 12),
    (0, 11, 11),
    (12, 12, 11),
    (11, 11, 12),
    (2, 3, 7),
    (3, 13, 15),
    (9, 14, 2),
];

const IMMEDIATES: [i64; 18] = [
    0,
    1,
    -1,
    2,
    31,
    32,
    33,
    63,
    64,
    0x7F,
    -0x80,
    0x7FFF,
    -0x8000,
    0x7F_FFFF,
    i32::MAX as i64,
    i32::MIN as i64,
    0x1234_5678,
    -0x1234_5678,
];

/// Register vectors: pairs of edge values for the operand registers plus random fill.
fn register_sets(rng: &mut Rng, count: usize) -> Vec<[u64; NUM_REGS]> {
    let mut sets = Vec::new();
    for i in 0..count {
        let mut regs = [0u64; NUM_REGS];
        for (r, v) in regs.iter_mut().enumerate() {
            *v = if i < EDGE_VALUES.len() * 2 {
                EDGE_VALUES[(i + r * (1 + i / EDGE_VALUES.len())) % EDGE_VALUES.len()]
            } else {
                rng.value()
            };
        }
        sets.push(regs);
    }
    sets
}

fn run_alu_cases(jit: &mut Jit, profile: Profile, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let mut interp = Interpreter::new();
    let sets = register_sets(&mut rng, 60);
    let mut cases = 0;
    for (op, _) in profile_ops(profile) {
        let format = op.format();
        let memory = op.mnemonic().starts_with("load_ind") || op.mnemonic().starts_with("store_ind");
        let alu = matches!(format, Format::TwoReg | Format::ThreeReg) || (format == Format::TwoRegImm && !memory);
        if !alu || op == Op::Sbrk {
            continue;
        }
        let imms: &[i64] = if format == Format::TwoRegImm { &IMMEDIATES } else { &[0] };
        for &(d, a, b) in &REG_TRIPLES {
            for &x in imms {
                let mut asm = Asm::new(profile);
                match format {
                    Format::TwoReg => asm.two_reg(op, d, a),
                    Format::ThreeReg => asm.three_reg(op, d, a, b),
                    _ => asm.two_reg_imm(op, a, b, x),
                }
                asm.no_args(Op::Trap);
                let program = asm.program(GasModel::BlockUnit);
                for regs in &sets {
                    let mut pair = Pair::new(&mut interp, jit, &program);
                    pair.each(|bk| {
                        bk.set_regs(*regs);
                        bk.set_gas(100);
                    });
                    let (ea, eb) = (pair.interp.run(), pair.jit.run());
                    if let Err(e) = pair.compare(Some(ea), Some(eb)) {
                        panic!("{op} d={d} a={a} b={b} x={x:#x} regs={regs:x?}:{e}");
                    }
                    cases += 1;
                }
            }
        }
    }
    cases
}

#[test]
fn alu_opcodes_match_in_every_profile() {
    let mut jit = jit();
    for (k, profile) in Profile::ALL.into_iter().enumerate() {
        let cases = run_alu_cases(&mut jit, profile, 11 + k as u64);
        assert!(cases > 10_000, "{profile}: only {cases} cases");
    }
}

#[test]
fn alu_fallbacks_match() {
    let mut jit = Jit::with_features(Features::baseline()).expect("jit");
    assert_eq!(jit.features(), Features::baseline());
    run_alu_cases(&mut jit, Profile::A, 5);
    run_alu_cases(&mut jit, Profile::B, 6);
}

#[test]
fn sbrk_panics_like_the_interpreter() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in [Profile::A, Profile::J] {
        let mut asm = Asm::new(profile);
        asm.load_imm_64(3, 77);
        asm.two_reg(Op::Sbrk, 1, 2);
        asm.no_args(Op::Trap);
        let program = asm.program(GasModel::BlockUnit);
        let mut pair = Pair::new(&mut interp, &mut jit, &program);
        pair.each(|b| b.set_gas(10));
        assert_eq!(pair.run(Policy::default()).unwrap(), vec![Exit::Panic]);
    }
}

/// A blob built in code (not parsed) can hold fewer start flags than code bytes; the missing
/// flags are not starts, and the JIT checks its static targets without reading past them.
#[test]
fn start_flags_shorter_than_the_code_are_not_starts() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let mut asm = Asm::new(Profile::A);
    let forward = asm.label();
    asm.load_imm_64(1, 5);
    asm.jump(&forward);
    asm.no_args(Op::Trap);
    asm.bind(&forward);
    asm.load_imm_64(2, 7);
    asm.no_args(Op::Trap);
    let full = asm.blob();
    for keep in 0..=full.starts.len() {
        let mut blob = full.clone();
        blob.starts.truncate(keep);
        let program = Arc::new(Program::new(blob, Config::new(Profile::A, GasModel::BlockUnit)));
        let mut pair = Pair::new(&mut interp, &mut jit, &program);
        pair.each(|b| b.set_gas(100));
        pair.run(Policy::default()).unwrap_or_else(|e| panic!("{keep} flags: {e}"));
    }
}

const BRANCHES_IMM: [Op; 10] = [
    Op::BranchEqImm,
    Op::BranchNeImm,
    Op::BranchLtUImm,
    Op::BranchLeUImm,
    Op::BranchGeUImm,
    Op::BranchGtUImm,
    Op::BranchLtSImm,
    Op::BranchLeSImm,
    Op::BranchGeSImm,
    Op::BranchGtSImm,
];
const BRANCHES_REG: [Op; 6] = [Op::BranchEq, Op::BranchNe, Op::BranchLtU, Op::BranchLtS, Op::BranchGeU, Op::BranchGeS];

/// Where a branch points.
#[derive(Clone, Copy, Debug)]
enum Target {
    Valid,
    /// Inside an instruction.
    Middle,
    /// An instruction that follows a non-terminator.
    NotBlockStart,
    /// Past the end.
    End,
}

fn branch_program(profile: Profile, op: Op, ra: u8, rb: u8, x: i64, target: Target, last: bool) -> Arc<Program> {
    let mut asm = Asm::new(profile);
    let taken = asm.label();
    let taken_plus = asm.label();
    let end = asm.label();
    asm.load_imm_64(5, 0x55);
    asm.no_args(Op::Fallthrough);
    let label = match target {
        Target::Valid => &taken,
        Target::NotBlockStart => &taken_plus,
        Target::Middle | Target::End => &end,
    };
    if op.format() == Format::TwoRegOffset {
        asm.branch(op, ra, rb, label);
    } else {
        asm.reg_imm_branch(op, ra, x, label);
    }
    if last {
        // The branch is the final instruction: its fall-through is the end of the code, and
        // every target is the end too.
        asm.bind(&end);
        asm.bind(&taken);
        asm.bind(&taken_plus);
        return asm.program(GasModel::BlockUnit);
    }
    asm.reg_imm(Op::LoadImm, 6, 1);
    asm.no_args(Op::Trap);
    asm.bind(&taken);
    asm.reg_imm(Op::LoadImm, 6, 2);
    asm.bind(&taken_plus);
    asm.reg_imm(Op::LoadImm, 7, 3);
    asm.no_args(Op::Trap);
    let middle_pc = asm.pc() + 1;
    asm.load_imm_64(8, 0x1111);
    asm.no_args(Op::Trap);
    match target {
        Target::Middle => {
            // Re-point the offset into load_imm_64's argument bytes.
            asm.bind(&end);
            let mut blob = asm.blob();
            let at = 11 + 1 + if op.format() == Format::TwoRegOffset { 1 } else { 1 + imm_bytes(x).len() };
            let off = middle_pc.wrapping_sub(11);
            blob.code[at..at + 4].copy_from_slice(&off.to_le_bytes());
            Arc::new(Program::new(blob, Config::new(profile, GasModel::BlockUnit)))
        }
        _ => {
            asm.bind(&end);
            asm.program(GasModel::BlockUnit)
        }
    }
}

#[test]
fn branches_match_for_every_condition_and_target_kind() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let mut rng = Rng::new(3);
    let sets = register_sets(&mut rng, 44);
    let mut cases = 0;
    for profile in Profile::ALL {
        for target in [Target::Valid, Target::Middle, Target::NotBlockStart, Target::End] {
            for last in [false, true] {
                for op in BRANCHES_IMM.iter().chain(&BRANCHES_REG).copied() {
                    for &(ra, rb, x) in &[(1u8, 2u8, 0i64), (11, 12, -1), (12, 12, 0x7FFF_FFFF), (3, 11, -0x8000_0000)]
                    {
                        let program = branch_program(profile, op, ra, rb, x, target, last);
                        for regs in &sets {
                            let mut pair = Pair::new(&mut interp, &mut jit, &program);
                            pair.each(|b| {
                                b.set_regs(*regs);
                                b.set_gas(1000);
                            });
                            if let Err(e) = pair.run(Policy::default()) {
                                panic!("{profile} {op} {target:?} last={last} ra={ra} rb={rb} x={x}: {e}");
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 10_000);
}

#[test]
fn jumps_and_load_imm_jump_to_valid_and_invalid_targets() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in Profile::ALL {
        for target_pc in [0u32, 1, 5, 6, 11, 12, 13, 17, 18, 19, 20, 100, u32::MAX] {
            for load in [false, true] {
                let mut asm = Asm::new(profile);
                asm.reg_imm(Op::LoadImm, 3, 9); // 0..3
                asm.no_args(Op::Fallthrough); // 3
                let pc = asm.pc(); // 4
                if load {
                    let mut args = vec![2 | 1 << 4, 0x80];
                    args.extend(target_pc.wrapping_sub(pc).to_le_bytes());
                    asm.op(Op::LoadImmJump, &args);
                } else {
                    asm.jump_to_pc(target_pc);
                }
                asm.reg_imm(Op::LoadImm, 4, 1);
                asm.no_args(Op::Trap);
                asm.reg_imm(Op::AddImm64, 5, 2);
                asm.ecalli(7);
                let program = asm.program(GasModel::BlockUnit);
                let mut pair = Pair::new(&mut interp, &mut jit, &program);
                pair.each(|b| b.set_gas(40));
                let policy = Policy { refuel: 10, ..Policy::default() };
                if let Err(e) = pair.run(policy) {
                    panic!("{profile} target {target_pc} load={load}: {e}");
                }
            }
        }
    }
}

/// A program with a jump table of valid and invalid entries; `jump_ind`s through `r1` and
/// `load_imm_jump_ind`s through `r2`.
fn dynamic_jump_program(profile: Profile, entry_size_zero: bool, gas: GasModel) -> Arc<Program> {
    let mut asm = Asm::new(profile);
    let a = asm.label();
    let b = asm.label();
    asm.no_args(Op::Fallthrough);
    // r1: jump_ind; r2/r3: load_imm_jump_ind with rA = rB and with different registers.
    asm.reg_imm(Op::JumpInd, 1, 0);
    asm.bind(&a);
    asm.reg_imm(Op::LoadImm, 4, 1);
    asm.two_reg_two_imm(Op::LoadImmJumpInd, 2, 2, 0x77, 0);
    asm.bind(&b);
    asm.reg_imm(Op::LoadImm, 5, 2);
    asm.two_reg_two_imm(Op::LoadImmJumpInd, 3, 6, -5, 4);
    asm.reg_imm(Op::LoadImm, 7, 3); // not a block start
    asm.no_args(Op::Trap);
    asm.table_entry(&a);
    asm.table_entry(&b);
    asm.table_entry_pc(1); // inside jump_ind's arguments
    asm.table_entry_pc(0); // valid: offset 0
    let after = asm.pc() - 4;
    asm.table_entry_pc(after); // follows load_imm (not a terminator)
    asm.table_entry_pc(10_000); // past the end
    let mut blob = asm.blob();
    if entry_size_zero {
        blob.entry_size = 0;
        blob.jump_table_len = blob.jump_table.len() as u32;
        blob.jump_table.clear();
    }
    Arc::new(Program::new(blob, Config::new(profile, gas)))
}

#[test]
fn dynamic_jumps_match() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let addresses: Vec<u64> = vec![
        0,
        1,
        2,
        3,
        4,
        6,
        8,
        10,
        12,
        14,
        0xFFFF_0000,
        0xFFFF_FFFE,
        0x1_0000_0002,
        0xFFFF_FFFF_FFFF_0000,
        0x8000_0000,
        0xFFFF_0002,
    ];
    for profile in Profile::ALL {
        for zero in [false, true] {
            for gas in [GasModel::BlockUnit, GasModel::Instruction, GasModel::table([(0, 3), (2, 5), (9, 1)])] {
                let program = dynamic_jump_program(profile, zero, gas);
                for &x in &addresses {
                    for &y in &addresses {
                        let mut pair = Pair::new(&mut interp, &mut jit, &program);
                        pair.each(|b| {
                            b.set_reg(1, x);
                            b.set_reg(2, y);
                            b.set_reg(6, x.wrapping_sub(4));
                            b.set_gas(100);
                        });
                        if let Err(e) = pair.run(Policy::default()) {
                            panic!("{profile} zero={zero} x={x:#x} y={y:#x}: {e}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn jump_table_with_zero_entries_and_huge_length() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for len in [0u32, 1, 3, 0x7FFF_FFFF, 0x8000_0000, u32::MAX] {
        let mut asm = Asm::new(Profile::A);
        asm.reg_imm(Op::JumpInd, 1, 0);
        asm.no_args(Op::Trap);
        let mut blob = asm.blob();
        blob.entry_size = 0;
        blob.jump_table_len = len;
        let program = Arc::new(Program::new(blob, Config::new(Profile::A, GasModel::BlockUnit)));
        for a in [0u64, 2, 4, 6, 0xFFFF_FFFE, 0xFFFF_FFFC, 0xFFFF_0000, 7] {
            let mut pair = Pair::new(&mut interp, &mut jit, &program);
            pair.each(|b| {
                b.set_reg(1, a);
                b.set_gas(1_000);
            });
            let policy = Policy { max_runs: 4, refuel: 100, ..Policy::default() };
            if let Err(e) = pair.run(policy) {
                panic!("len {len} a {a:#x}: {e}");
            }
        }
    }
}

const LOADS: [Op; 7] = [Op::LoadU8, Op::LoadI8, Op::LoadU16, Op::LoadI16, Op::LoadU32, Op::LoadI32, Op::LoadU64];
const LOADS_IND: [Op; 7] =
    [Op::LoadIndU8, Op::LoadIndI8, Op::LoadIndU16, Op::LoadIndI16, Op::LoadIndU32, Op::LoadIndI32, Op::LoadIndU64];
const STORES: [Op; 4] = [Op::StoreU8, Op::StoreU16, Op::StoreU32, Op::StoreU64];
const STORES_IND: [Op; 4] = [Op::StoreIndU8, Op::StoreIndU16, Op::StoreIndU32, Op::StoreIndU64];
const STORES_IMM: [Op; 4] = [Op::StoreImmU8, Op::StoreImmU16, Op::StoreImmU32, Op::StoreImmU64];
const STORES_IMM_IND: [Op; 4] = [Op::StoreImmIndU8, Op::StoreImmIndU16, Op::StoreImmIndU32, Op::StoreImmIndU64];

/// Addresses around every interesting boundary of the memory layout of `memory_layout`.
fn memory_addresses() -> Vec<u64> {
    let mut out = Vec::new();
    for base in
        [0x0u64, 0x1_0000, 0x1_1000, 0x1_2000, 0x2_0000, 0x2_1000, 0x3_0000, 0x3_1000, 0xFFFF_F000, 0x1_0000_0000]
    {
        for delta in [-9i64, -8, -7, -4, -3, -2, -1, 0, 1, 7, 100] {
            out.push(base.wrapping_add(delta as u64) & 0xFFFF_FFFF);
        }
    }
    out.push(0xFFFF);
    out.push(0x1000_1234_0000_0010);
    out
}

/// RW 0x10000-0x11FFF, RW 0x20000, RO 0x30000, RW 0xFFFFF000 and optionally page 0.
fn memory_layout(pair: &mut Pair<'_>, page_zero: Option<bool>) {
    pair.map(0x1_0000, 0x2000, true);
    pair.map(0x2_0000, 0x1000, true);
    pair.map(0x3_0000, 0x1000, false);
    pair.map(0xFFFF_F000, 0x1000, true);
    if let Some(writable) = page_zero {
        pair.map(0, 0x1000, writable);
    }
    let pattern: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(0x81)).collect();
    for at in [0x1_0000u32, 0x1_1FF0, 0x1_0FF0, 0x2_0FF0, 0x3_0000, 0x3_0FF0, 0xFFFF_FFE0, 0xFFFF_F000] {
        pair.write(at, &pattern[..16]);
    }
    if page_zero.is_some() {
        pair.write(0, &pattern[16..]);
    }
}

#[test]
fn loads_and_stores_match_at_every_boundary() {
    loads_and_stores(&mut jit());
}

#[test]
fn loads_and_stores_match_at_every_boundary_without_fsgsbase() {
    let mut jit = Jit::with_features(Features { fsgsbase: false, ..Features::detect() }).expect("jit");
    loads_and_stores(&mut jit);
}

fn loads_and_stores(jit: &mut Jit) {
    let mut interp = Interpreter::new();
    let addresses = memory_addresses();
    let mut cases = 0;
    for profile in [Profile::A, Profile::B] {
        for page_zero in [None, Some(false), Some(true)] {
            for &address in &addresses {
                let mut programs = Vec::new();
                for op in LOADS.iter().chain(&STORES).copied() {
                    let mut asm = Asm::new(profile);
                    asm.reg_imm(op, 11, (address as u32) as i32 as i64);
                    asm.no_args(Op::Trap);
                    programs.push((op, asm.program(GasModel::BlockUnit), 0u64));
                }
                for op in LOADS_IND.iter().chain(&STORES_IND).copied() {
                    for (ra, rb, x) in [(1u8, 2u8, 0i64), (12, 11, -3), (2, 2, 5), (11, 1, 0x10)] {
                        let mut asm = Asm::new(profile);
                        asm.two_reg_imm(op, ra, rb, x);
                        asm.no_args(Op::Trap);
                        programs.push((op, asm.program(GasModel::BlockUnit), address.wrapping_sub(x as u64)));
                    }
                }
                for op in STORES_IMM {
                    let mut asm = Asm::new(profile);
                    asm.two_imm(op, (address as u32) as i32 as i64, -0x1234_5679);
                    asm.no_args(Op::Trap);
                    programs.push((op, asm.program(GasModel::BlockUnit), 0));
                }
                for op in STORES_IMM_IND {
                    let mut asm = Asm::new(profile);
                    asm.reg_two_imm(op, 12, -1, 0x7BCD_EF01);
                    asm.no_args(Op::Trap);
                    programs.push((op, asm.program(GasModel::BlockUnit), address.wrapping_add(1)));
                }
                for (op, program, base) in &programs {
                    let mut pair = Pair::new(&mut interp, jit, program);
                    memory_layout(&mut pair, page_zero);
                    let base = *base;
                    pair.each(|b| {
                        for r in 0..NUM_REGS {
                            b.set_reg(r, 0x0102_0304_0506_0708u64.wrapping_mul(r as u64 + 3));
                        }
                        b.set_reg(2, base);
                        b.set_reg(11, base);
                        b.set_reg(12, base);
                        b.set_reg(1, base);
                        b.set_gas(50);
                    });
                    let policy = Policy { map_on_fault: true, ..Policy::default() };
                    if let Err(e) = pair.run(policy) {
                        panic!("{profile} {op} at {address:#x} (page zero {page_zero:?}): {e}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 10_000);
}

#[test]
fn page_fault_cases_report_the_spec_addresses() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    // (address, width op, expected exit) with RW 0x20000 only, RO 0x30000.
    let cases: [(u32, Op, Exit); 9] = [
        (0x2_0FF9, Op::StoreImmU64, Exit::PageFault(0x2_1000)),
        (0x2_1000, Op::StoreImmU8, Exit::PageFault(0x2_1000)),
        (0x3_0000, Op::StoreImmU8, Exit::PageFault(0x3_0000)),
        (0x1_FFFE, Op::StoreImmU32, Exit::PageFault(0x1_F000)),
        (0xFFFF, Op::StoreImmU8, Exit::Panic),
        (0xFFFE, Op::StoreImmU32, Exit::Panic),
        (0xFFFF_FFFF, Op::StoreImmU64, Exit::PageFault(0xFFFF_F000)),
        (0x2_0000, Op::StoreImmU64, Exit::Trap),
        (0x3_0FFC, Op::StoreImmU64, Exit::PageFault(0x3_0000)),
    ];
    for (address, op, expected) in cases {
        let mut asm = Asm::new(Profile::A);
        asm.two_imm(op, address as i32 as i64, -1);
        asm.no_args(Op::Trap);
        let program = asm.program(GasModel::BlockUnit);
        let mut pair = Pair::new(&mut interp, &mut jit, &program);
        pair.map(0x2_0000, 0x1000, true);
        pair.map(0x3_0000, 0x1000, false);
        pair.each(|b| b.set_gas(10));
        let exits = pair.run(Policy::default()).unwrap_or_else(|e| panic!("{address:#x}: {e}"));
        assert_eq!(exits[0], expected, "{address:#x} {op}");
        // The whole block was charged.
        assert_eq!(pair.jit.gas(), 8);
    }
}

#[test]
fn wrap_around_store_with_and_without_page_zero() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let mut asm = Asm::new(Profile::A);
    asm.two_reg_imm(Op::StoreIndU64, 1, 2, 0);
    asm.two_reg_imm(Op::LoadIndU64, 3, 2, 0);
    asm.two_reg_imm(Op::LoadIndU16, 4, 2, 0);
    asm.no_args(Op::Trap);
    let program = asm.program(GasModel::BlockUnit);
    for page_zero in [false, true] {
        let mut pair = Pair::new(&mut interp, &mut jit, &program);
        pair.map(0xFFFF_F000, 0x1000, true);
        if page_zero {
            pair.map(0, 0x1000, true);
        }
        pair.each(|b| {
            b.set_reg(1, 0x1122_3344_5566_7788);
            b.set_reg(2, 0xFFFF_FFFF);
            b.set_gas(10);
        });
        let exits = pair.run(Policy::default()).unwrap();
        assert_eq!(exits[0], if page_zero { Exit::Trap } else { Exit::Panic });
        if page_zero {
            assert_eq!(pair.jit.regs()[3], 0x1122_3344_5566_7788);
            assert_eq!(pair.jit.read_memory(0, 7).unwrap(), vec![0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        }
    }
}

/// A loop with several blocks, memory traffic and a host call, for gas and resume tests.
fn loop_program(profile: Profile, gas: GasModel) -> Arc<Program> {
    let mut asm = Asm::new(profile);
    let top = asm.label();
    let skip = asm.label();
    let done = asm.label();
    asm.reg_imm(Op::LoadImm, 1, 5);
    asm.reg_imm(Op::LoadImm, 2, 0x2_0000);
    asm.no_args(Op::Fallthrough);
    asm.bind(&top);
    asm.two_reg_imm(Op::AddImm64, 3, 3, 7);
    asm.two_reg_imm(Op::StoreIndU32, 3, 2, 0);
    asm.two_reg_imm(Op::AddImm64, 2, 2, 4);
    asm.reg_imm_branch(Op::BranchEqImm, 1, 3, &skip);
    asm.ecalli(9);
    asm.two_reg_imm(Op::LoadIndU32, 4, 2, -4);
    asm.no_args(Op::Fallthrough);
    asm.bind(&skip);
    asm.two_reg_imm(Op::AddImm64, 1, 1, -1);
    asm.reg_imm_branch(Op::BranchNeImm, 1, 0, &top);
    asm.bind(&done);
    asm.reg_imm(Op::LoadImm, 5, 0xFFFF_0000u32 as i32 as i64);
    asm.reg_imm(Op::JumpInd, 5, 0);
    asm.program(gas)
}

fn gas_models(code_len: u32) -> Vec<GasModel> {
    let mut table = vec![(0u32, 4u64)];
    for pc in (3..code_len).step_by(5) {
        table.push((pc, 1 + (pc as u64 * 7) % 11));
    }
    vec![GasModel::BlockUnit, GasModel::Instruction, GasModel::table(table)]
}

#[test]
fn out_of_gas_at_every_block_in_every_gas_model() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in Profile::ALL {
        let len = loop_program(profile, GasModel::BlockUnit).code_len();
        for gas_model in gas_models(len) {
            let program = loop_program(profile, gas_model.clone());
            // Enough gas to finish, found with the interpreter.
            let mut needed = 0;
            for gas in 0..400i64 {
                let mut pair = Pair::new(&mut interp, &mut jit, &program);
                pair.map(0x2_0000, 0x1000, true);
                pair.each(|b| b.set_gas(gas));
                let exits = pair
                    .run(Policy { max_runs: 40, ..Policy::default() })
                    .unwrap_or_else(|e| panic!("{profile} {gas_model} gas {gas}: {e}"));
                if exits.last() == Some(&Exit::Halt) {
                    needed = gas;
                    break;
                }
            }
            assert!(needed > 10, "{profile} {gas_model}: program never finished");
            // Resuming after out-of-gas with small refuels reaches the same end (in the
            // per-instruction model out-of-gas leaves -1, so a refuel of 1 makes no progress).
            for refuel in [2, 3, 7] {
                let mut pair = Pair::new(&mut interp, &mut jit, &program);
                pair.map(0x2_0000, 0x1000, true);
                pair.each(|b| b.set_gas(0));
                let policy = Policy { max_runs: 100_000, refuel, ..Policy::default() };
                let exits = pair.run(policy).unwrap_or_else(|e| panic!("{profile} {gas_model} refuel {refuel}: {e}"));
                assert_eq!(exits.last(), Some(&Exit::Halt));
            }
        }
    }
}

/// Blocks whose first instructions compile to no code at all (a fall-through, a move of a
/// register to itself, a jump to the next instruction), next to blocks that do: running out
/// of gas on entering each must name that block, its pc and the gas before its charge.
#[test]
fn out_of_gas_names_blocks_that_begin_or_end_with_empty_code() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let build = |profile: Profile, gas: GasModel| {
        let mut asm = Asm::new(profile);
        let top = asm.label();
        let next = asm.label();
        asm.reg_imm(Op::LoadImm, 1, 4);
        asm.no_args(Op::Fallthrough);
        asm.bind(&top);
        asm.no_args(Op::Fallthrough);
        asm.two_reg(Op::MoveReg, 2, 2);
        asm.jump(&next);
        asm.bind(&next);
        asm.two_reg(Op::MoveReg, 3, 3);
        asm.two_reg_imm(Op::AddImm64, 1, 1, -1);
        asm.reg_imm_branch(Op::BranchNeImm, 1, 0, &top);
        asm.no_args(Op::Trap);
        asm.program(gas)
    };
    for profile in Profile::ALL {
        let len = build(profile, GasModel::BlockUnit).code_len();
        for gas_model in gas_models(len) {
            let program = build(profile, gas_model.clone());
            let mut finished = false;
            for gas in 0..120i64 {
                let mut pair = Pair::new(&mut interp, &mut jit, &program);
                pair.each(|b| b.set_gas(gas));
                let exits = pair
                    .run(Policy { max_runs: 1, ..Policy::default() })
                    .unwrap_or_else(|e| panic!("{profile} {gas_model} gas {gas}: {e}"));
                finished |= exits == [Exit::Trap];
            }
            assert!(finished, "{profile} {gas_model}: never ran to its end");
        }
    }
}

#[test]
fn negative_and_extreme_gas_values() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in Profile::ALL {
        let len = loop_program(profile, GasModel::BlockUnit).code_len();
        let mut models = gas_models(len);
        models.push(GasModel::table([(0, u64::MAX), (5, i64::MAX as u64), (9, i32::MAX as u64 + 1), (14, 0)]));
        for gas_model in models {
            let program = loop_program(profile, gas_model.clone());
            for gas in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX, i64::MAX - 1, i32::MAX as i64 + 5] {
                let mut pair = Pair::new(&mut interp, &mut jit, &program);
                pair.map(0x2_0000, 0x1000, true);
                pair.each(|b| b.set_gas(gas));
                pair.run(Policy { max_runs: 40, ..Policy::default() })
                    .unwrap_or_else(|e| panic!("{profile} {gas_model} gas {gas}: {e}"));
            }
        }
    }
}

#[test]
fn host_calls_resume_with_and_without_recharge() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in Profile::ALL {
        let len = loop_program(profile, GasModel::BlockUnit).code_len();
        for gas_model in gas_models(len) {
            let program = loop_program(profile, gas_model.clone());
            let mut pair = Pair::new(&mut interp, &mut jit, &program);
            pair.map(0x2_0000, 0x1000, true);
            pair.each(|b| b.set_gas(10_000));
            let exits = pair.run(Policy { max_runs: 100, ..Policy::default() }).unwrap();
            assert_eq!(exits.iter().filter(|e| **e == Exit::HostCall(9)).count(), 4, "{profile} {gas_model}");
            assert_eq!(exits.last(), Some(&Exit::Halt));
        }
    }
    // ecall (profile J) and ecalli ids, including sign-extended ones.
    for gas_model in gas_models(20) {
        let mut asm = Asm::new(Profile::J);
        asm.no_args(Op::Ecall);
        asm.reg_imm(Op::LoadImm, 1, 1);
        asm.ecalli(-1);
        asm.ecalli(0x7FFF_FFFF);
        asm.op(Op::Ecalli, &[0xFF, 0x00]);
        asm.no_args(Op::Ecall);
        let program = asm.program(gas_model);
        let mut pair = Pair::new(&mut interp, &mut jit, &program);
        pair.each(|b| b.set_gas(100));
        let exits = pair.run(Policy { max_runs: 100, ..Policy::default() }).unwrap();
        assert_eq!(
            exits,
            vec![
                Exit::Ecall,
                Exit::HostCall(u32::MAX),
                Exit::HostCall(0x7FFF_FFFF),
                Exit::HostCall(255),
                Exit::Ecall,
                Exit::Trap
            ]
        );
    }
}

#[test]
fn page_fault_resume_reruns_the_instruction_without_recharge() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in Profile::ALL {
        let len = loop_program(profile, GasModel::BlockUnit).code_len();
        for gas_model in gas_models(len) {
            let program = loop_program(profile, gas_model.clone());
            let mut pair = Pair::new(&mut interp, &mut jit, &program);
            pair.each(|b| b.set_gas(10_000));
            let exits = pair.run(Policy { max_runs: 100, map_on_fault: true, ..Policy::default() }).unwrap();
            assert_eq!(exits[0], Exit::PageFault(0x2_0000), "{profile} {gas_model}");
            assert_eq!(exits.last(), Some(&Exit::Halt));
        }
    }
}

#[test]
fn starting_at_every_pc_matches() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in Profile::ALL {
        let len = loop_program(profile, GasModel::BlockUnit).code_len();
        for gas_model in gas_models(len) {
            let program = loop_program(profile, gas_model.clone());
            for pc in (0..len + 3).chain([u32::MAX, 1 << 31]) {
                for gas in [0, 3, 500] {
                    let mut pair = Pair::new(&mut interp, &mut jit, &program);
                    pair.map(0x2_0000, 0x1000, true);
                    pair.each(|b| {
                        b.set_gas(gas);
                        b.set_pc(pc);
                        b.set_reg(2, 0x2_0010);
                        b.set_reg(1, 3);
                    });
                    let policy = Policy { max_runs: 60, refuel: 5, ..Policy::default() };
                    pair.run(policy).unwrap_or_else(|e| panic!("{profile} {gas_model} pc {pc} gas {gas}: {e}"));
                }
            }
        }
    }
}

#[test]
fn set_pc_after_host_call_and_terminal_exits() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let program = loop_program(Profile::A, GasModel::BlockUnit);
    let mut pair = Pair::new(&mut interp, &mut jit, &program);
    pair.map(0x2_0000, 0x1000, true);
    pair.each(|b| b.set_gas(1000));
    let (a, b) = (pair.interp.run(), pair.jit.run());
    pair.compare(Some(a), Some(b)).unwrap();
    assert_eq!(a, Exit::HostCall(9));
    // Redirect to the loop head instead of resuming.
    pair.each(|b| b.set_pc(3));
    pair.run(Policy { max_runs: 100, ..Policy::default() }).unwrap();
    // After halting, set_pc does not revive the program.
    pair.each(|b| b.set_pc(0));
    let (a, b) = (pair.interp.run(), pair.jit.run());
    pair.compare(Some(a), Some(b)).unwrap();
    assert_eq!(a, Exit::Halt);
}

#[test]
fn stepping_matches_running() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for profile in Profile::ALL {
        let len = loop_program(profile, GasModel::BlockUnit).code_len();
        for gas_model in gas_models(len) {
            for program in
                [loop_program(profile, gas_model.clone()), dynamic_jump_program(profile, false, gas_model.clone())]
            {
                let mut pair = Pair::new(&mut interp, &mut jit, &program);
                pair.map(0x2_0000, 0x1000, true);
                pair.each(|b| {
                    b.set_gas(300);
                    b.set_reg(1, 4);
                    b.set_reg(2, 2);
                });
                let policy = Policy { max_runs: 400, refuel: 3, map_on_fault: true, mix_steps: true };
                pair.run(policy).unwrap_or_else(|e| panic!("{profile} {gas_model}: {e}"));
                // Pure single-stepping to the end.
                let mut pair = Pair::new(&mut interp, &mut jit, &program);
                pair.map(0x2_0000, 0x1000, true);
                pair.each(|b| b.set_gas(300));
                for _ in 0..400 {
                    let (a, b) = (pair.interp.step(), pair.jit.step());
                    pair.compare(a, b).unwrap_or_else(|e| panic!("{profile} {gas_model} step: {e}"));
                    match a {
                        Some(Exit::HostCall(_)) | None => {}
                        Some(_) => break,
                    }
                }
            }
        }
    }
}

#[test]
fn invalid_blob_and_unloaded_backend_panic() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    assert_eq!(jit.run(), Exit::Panic);
    assert_eq!(interp.run(), Exit::Panic);
    let program = loop_program(Profile::A, GasModel::BlockUnit);
    jit.load(program.clone());
    jit.load_invalid();
    interp.load_invalid();
    jit.set_gas(5);
    interp.set_gas(5);
    assert_eq!(jit.run(), interp.run());
    assert_eq!(jit.run(), Exit::Panic);
    assert_eq!((jit.gas(), jit.pc()), (interp.gas(), interp.pc()));
}

#[test]
fn host_memory_api_matches_page_memory() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let program = loop_program(Profile::A, GasModel::BlockUnit);
    let mut pair = Pair::new(&mut interp, &mut jit, &program);
    let maps: [(u32, u64, bool); 7] = [
        (0x1_0000, 1, true),
        (0x1_0FFF, 2, false),
        (0xFFFF_F000, 0x1000, true),
        (0xFFFF_FFFF, 2, true),
        (0x5_0000, 0, true),
        (0x6_0000, 0x3000, false),
        (0x1_0000, 0x10, false),
    ];
    for (address, length, writable) in maps {
        pair.map(address, length, writable);
    }
    let writes: [(u32, usize); 9] = [
        (0x1_0FFE, 4),
        (0x1_1FFE, 4),
        (0x6_2FFF, 1),
        (0x6_2FFF, 2),
        (0xFFFF_FFFF, 1),
        (0xFFFF_FFFF, 2),
        (0x7_0000, 0),
        (0x1_0000, 0x2000),
        (0x0, 1),
    ];
    for (address, len) in writes {
        let bytes: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5A).collect();
        pair.write(address, &bytes);
    }
    for (address, len) in
        [(0x1_0000u32, 0x2000u64), (0xFFFF_FFF0, 0x10), (0xFFFF_FFF0, 0x11), (0x6_0000, 0x3001), (0, 0)]
    {
        assert_eq!(pair.interp.read_memory(address, len), pair.jit.read_memory(address, len));
    }
    pair.compare(None, None).unwrap();
    // Remapping zeroes; a reload unmaps everything.
    pair.map(0x1_0000, 0x2000, true);
    pair.compare(None, None).unwrap();
    pair.jit.load(program.clone());
    pair.interp.load(program);
    pair.compare(None, None).unwrap();
    assert!(pair.jit.memory_pages().is_empty());
}

/// One instance running many programs: permissions and contents never leak from one program
/// to the next, host writes into read-only pages leave them read-only for the guest, and large
/// mappings work.
#[test]
fn memory_is_reset_between_programs() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let mut asm = Asm::new(Profile::A);
    asm.two_reg_imm(Op::LoadIndU64, 3, 1, 0);
    asm.two_reg_imm(Op::StoreIndU64, 4, 1, 8);
    asm.two_reg_imm(Op::LoadIndU64, 5, 2, 0);
    asm.two_reg_imm(Op::StoreIndU64, 4, 2, 0);
    asm.no_args(Op::Trap);
    let program = asm.program(GasModel::BlockUnit);
    let big = 0x100_0000u32;
    let big_len = 40u64 << 20;
    // (region 1 permission, region 2 mapping) per round; None = unmapped.
    type Region = Option<(u32, u64, bool)>;
    let rounds: [(Region, Region); 10] = [
        (Some((0x2_0000, 0x1000, true)), Some((0x3_0000, 0x2000, true))),
        (Some((0x2_0000, 0x1000, false)), None),
        (Some((0x2_0000, 0x1000, true)), Some((0x3_0000, 0x1000, false))),
        (None, Some((0x3_0000, 0x2000, true))),
        (Some((big, big_len, true)), Some((big + 0x100_0000, 0x1000, true))),
        (Some((big, big_len, false)), Some((big + 0x200_0000, 0x1000, true))),
        (Some((big, big_len, true)), None),
        (None, None),
        (Some((0x2_0000, 0x1000, true)), Some((0x3_0000, 0x2000, false))),
        (Some((0x2_0000, 0x1000, true)), Some((0x3_0000, 0x2000, true))),
    ];
    for (round, (first, second)) in rounds.into_iter().enumerate() {
        for remap in [false, true] {
            let mut pair = Pair::new(&mut interp, &mut jit, &program);
            let mut addresses = [0x2_0000u32, 0x3_0000];
            for (k, region) in [first, second].into_iter().enumerate() {
                if let Some((address, length, writable)) = region {
                    pair.map(address, length, writable);
                    let at = address + length as u32 - 16;
                    pair.write(at, &[0xA5; 16]);
                    if remap {
                        // Mapping again clears the data and may change the permission.
                        pair.map(address, length, !writable);
                        pair.write(at, &[0x5A; 8]);
                    }
                    addresses[k] = at;
                }
            }
            pair.each(|b| {
                b.set_reg(1, addresses[0] as u64);
                b.set_reg(2, addresses[1] as u64);
                b.set_reg(4, 0x0123_4567_89AB_CDEF);
                b.set_gas(100);
            });
            pair.run(Policy { max_runs: 6, map_on_fault: true, ..Policy::default() })
                .unwrap_or_else(|e| panic!("round {round} remap {remap}: {e}"));
        }
    }
}

fn random_differential(jit: &mut Jit, seed: u64, programs: usize) {
    let mut rng = Rng::new(seed);
    let mut interp = Interpreter::new();
    for n in 0..programs {
        let profile = *rng.pick(&Profile::ALL);
        let program = random_program(&mut rng, profile);
        let mut pair = Pair::new(&mut interp, jit, &program);
        random_setup(&mut rng, &mut pair);
        if rng.chance(20) {
            let pc = rng.below(program.code_len() as u64 + 3) as u32;
            pair.each(|b| b.set_pc(pc));
        }
        let policy = Policy {
            max_runs: 30,
            refuel: if rng.chance(50) { 1 + rng.below(50) as i64 } else { 0 },
            map_on_fault: rng.chance(50),
            mix_steps: rng.chance(15),
        };
        if let Err(e) = pair.run(policy) {
            panic!("seed {seed} program {n} ({profile}, {}): {e}\nblob {:?}", program.config.gas, program.blob);
        }
    }
}

/// `JIT_RANDOM_PROGRAMS` scales the randomized tests (default 3000 programs) for longer runs.
fn random_program_count(default: usize) -> usize {
    std::env::var("JIT_RANDOM_PROGRAMS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn random_programs_show_no_differences() {
    let mut jit = jit();
    let count = random_program_count(3000);
    random_differential(&mut jit, 0xC0FFEE, count);
}

#[test]
fn random_programs_with_baseline_features_show_no_differences() {
    let mut jit = Jit::with_features(Features::baseline()).expect("jit");
    let count = random_program_count(3000) / 3;
    random_differential(&mut jit, 0xBA5E, count);
}

#[test]
fn jits_run_concurrently_on_many_threads() {
    let threads: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                let mut jit = jit();
                random_differential(&mut jit, 1000 + t, 400);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

#[test]
fn jit_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Jit>();
    // A Jit moved to another thread keeps working.
    let mut jit = jit();
    let program = loop_program(Profile::A, GasModel::BlockUnit);
    jit.load(program.clone());
    jit.map(0x2_0000, 0x1000, true).unwrap();
    jit.set_gas(1000);
    assert_eq!(jit.run(), Exit::HostCall(9));
    let handle = std::thread::spawn(move || {
        let mut exits = Vec::new();
        for _ in 0..10 {
            let e = jit.run();
            exits.push(e);
            if e == Exit::Halt {
                break;
            }
        }
        exits
    });
    assert_eq!(handle.join().unwrap().last(), Some(&Exit::Halt));
}

/// Random bytes as code: jumps everywhere, huge immediates, wild addresses, loops that only
/// out-of-gas ends. Nothing may crash, and the JIT must still agree with the interpreter.
#[test]
fn hostile_programs_never_crash() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let mut rng = Rng::new(0x5EED);
    for n in 0..random_program_count(3000) / 2 {
        let profile = *rng.pick(&Profile::ALL);
        let len = 1 + rng.below(120) as usize;
        let code: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let starts: Vec<bool> = (0..len).map(|_| rng.chance(40)).collect();
        let table: Vec<u32> = (0..rng.below(8)).map(|_| rng.below(len as u64 + 3) as u32).collect();
        let gas = random_gas_model(&mut rng, len as u32);
        let program = Arc::new(Program::new(Blob::new(table, code, starts), Config::new(profile, gas)));
        let mut pair = Pair::new(&mut interp, &mut jit, &program);
        random_setup(&mut rng, &mut pair);
        pair.each(|b| b.set_gas(5_000));
        let policy = Policy { max_runs: 20, refuel: 100, map_on_fault: true, mix_steps: false };
        if let Err(e) = pair.run(policy) {
            panic!("hostile program {n}: {e}\nblob {:?}", program.blob);
        }
    }
}

#[test]
fn infinite_loops_end_with_out_of_gas() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    for gas_model in gas_models(10) {
        let mut asm = Asm::new(Profile::A);
        let top = asm.label();
        asm.bind(&top);
        asm.two_reg_imm(Op::AddImm64, 1, 1, 1);
        asm.jump(&top);
        let program = asm.program(gas_model.clone());
        let mut pair = Pair::new(&mut interp, &mut jit, &program);
        pair.each(|b| b.set_gas(1_000_000));
        let exits = pair.run(Policy { max_runs: 3, refuel: 1000, ..Policy::default() }).unwrap();
        assert!(exits.iter().all(|e| *e == Exit::OutOfGas), "{gas_model}: {exits:?}");
    }
}

#[test]
fn compiled_code_is_cached_and_programs_can_be_reloaded() {
    let mut jit = jit();
    let mut interp = Interpreter::new();
    let programs: Vec<_> = (0..100)
        .map(|k| {
            let mut asm = Asm::new(Profile::A);
            asm.reg_imm(Op::LoadImm, 1, k);
            asm.two_reg_imm(Op::MulImm64, 2, 1, 3);
            asm.no_args(Op::Trap);
            asm.program(GasModel::BlockUnit)
        })
        .collect();
    for round in 0..3 {
        for (k, program) in programs.iter().enumerate() {
            let mut pair = Pair::new(&mut interp, &mut jit, program);
            pair.each(|b| b.set_gas(10));
            pair.run(Policy::default()).unwrap();
            assert_eq!(pair.jit.regs()[2], 3 * k as u64, "round {round}");
        }
    }
    assert_eq!(jit.cached_programs(), 64, "programs their owners hold stay cached up to the limit");
    drop((programs, interp));
    // Programs dropped by their owners while cached.
    for k in 0..200 {
        let mut asm = Asm::new(Profile::B);
        asm.reg_imm(Op::LoadImm, 1, k);
        asm.no_args(Op::Trap);
        let program = asm.program(GasModel::Instruction);
        jit.load(program);
        jit.set_gas(5);
        assert_eq!(jit.run(), Exit::Trap);
        assert_eq!(jit.regs()[1], k as u64);
        // Only the loaded program keeps its code: the run state lets go of the one before
        // before the next is selected, so its code space is reused at once.
        assert_eq!(jit.cached_programs(), 1, "programs cached after loading program {k}");
    }
}
