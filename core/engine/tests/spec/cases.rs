use std::sync::Arc;

use javm_engine::asm::assemble;
use javm_engine::{Backend, Config, Exit, GasModel, Profile, Program};

const GAS: i64 = 10_000;
const MAX: u64 = u64::MAX;
const HALT: u64 = 0xFFFF_0000;
/// Low 32 bits set to 0x8000_0000 and sign-extended: the typical 32-bit overflow result.
const NEG_2_31: u64 = 0xFFFF_FFFF_8000_0000;
/// The read-write page most memory tests map.
const RW: u32 = 0x20000;

fn program(src: &str, profile: Profile, gas: GasModel) -> Arc<Program> {
    let blob = assemble(src, profile).unwrap_or_else(|e| panic!("{e}\n{src}"));
    Arc::new(Program::new(blob, Config::new(profile, gas)))
}

/// A machine with `src` loaded and `GAS` gas: registers 0, pc 0, no memory.
fn machine(src: &str, profile: Profile, gas: GasModel) -> Vm {
    let mut vm = new_vm();
    let program = program(src, profile, gas);
    CODE_LEN.with(|c| c.set(program.code_len()));
    vm.load(program);
    vm.set_gas(GAS);
    vm
}

fn set_regs(vm: &mut Vm, regs: &[(usize, u64)]) {
    for &(r, v) in regs {
        vm.set_reg(r, v);
    }
}

/// Loads `src`, lets `setup` prepare the machine and runs it once.
fn exec(src: &str, profile: Profile, gas: GasModel, setup: impl FnOnce(&mut Vm)) -> (Exit, Vm) {
    let mut vm = machine(src, profile, gas);
    setup(&mut vm);
    let exit = vm.run();
    (exit, vm)
}

fn run_in(profile: Profile, src: &str, regs: &[(usize, u64)]) -> (Exit, Vm) {
    exec(src, profile, GasModel::BlockUnit, |vm| set_regs(vm, regs))
}

/// Profile A, block-unit gas.
fn run(src: &str, regs: &[(usize, u64)]) -> (Exit, Vm) {
    run_in(Profile::A, src, regs)
}

/// Profile A, block-unit gas, one read-write page at `RW` holding `bytes` at the given addresses.
fn run_mem(src: &str, regs: &[(usize, u64)], bytes: &[(u32, &[u8])]) -> (Exit, Vm) {
    exec(src, Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(RW, 4096, true).unwrap();
        for &(address, data) in bytes {
            vm.write_memory(address, data).unwrap();
        }
        set_regs(vm, regs);
    })
}

thread_local! {
    /// The code length of the program `machine` loaded last on this thread.
    static CODE_LEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn code_len(_vm: &Vm) -> u32 {
    CODE_LEN.with(|c| c.get())
}

fn mem(vm: &Vm, address: u32, length: u64) -> Vec<u8> {
    vm.read_memory(address, length).unwrap()
}

/// Asserts exit, reported pc and gas.
#[track_caller]
fn check(exit: Exit, vm: &Vm, expected: Exit, pc: u32, gas: i64) {
    assert_eq!((exit, vm.pc(), vm.gas()), (expected, pc, gas));
}

/// Runs a straight-line snippet that must fall off the end of the code (implicit trap with
/// pc = code length) and returns the registers.
#[track_caller]
fn alu_in(profile: Profile, src: &str, regs: &[(usize, u64)]) -> [u64; 13] {
    let (exit, vm) = run_in(profile, src, regs);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)), "{src}");
    vm.regs()
}

#[track_caller]
fn alu(src: &str, regs: &[(usize, u64)]) -> [u64; 13] {
    alu_in(Profile::A, src, regs)
}

/// Whether `branch` (a branch without its target operand) is taken with r1, r2 set.
#[track_caller]
fn taken(branch: &str, r1: u64, r2: u64) -> bool {
    let src = format!("{branch}, yes\nload_imm r3, 1\ntrap\nyes: load_imm r3, 2\ntrap");
    let (exit, vm) = run(&src, &[(1, r1), (2, r2)]);
    assert_eq!(exit, Exit::Trap, "{src}");
    match vm.regs()[3] {
        1 => false,
        2 => true,
        other => panic!("r3 = {other} after {branch}"),
    }
}

/// Runs to the next exit with `step`, returning the exit and the number of steps.
fn run_by_steps(vm: &mut Vm) -> (Exit, usize) {
    for n in 1..100_000 {
        if let Some(exit) = vm.step() {
            return (exit, n);
        }
    }
    panic!("no exit after 100000 steps");
}

// ---------------------------------------------------------------------------------------
// 32-bit ALU results are sign-extended (§5.10, §5.13, §11.1)
// ---------------------------------------------------------------------------------------

#[test]
fn add_32_truncates_and_sign_extends() {
    let r = alu(
        "add_32 r3, r1, r2\nadd_32 r4, r5, r6",
        &[(1, 0x7FFF_FFFF), (2, 1), (5, 0xAAAA_AAAA_0000_0001), (6, 0x5555_5555_0000_0002)],
    );
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], 3);
}

#[test]
fn sub_32_truncates_and_sign_extends() {
    let r = alu("sub_32 r3, r1, r2\nsub_32 r4, r5, r6", &[(1, 0), (2, 1), (5, 0x1_0000_0005), (6, 3)]);
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], 2);
}

#[test]
fn mul_32_and_mul_imm_32_sign_extend() {
    let r = alu(
        "mul_32 r3, r1, r2\nmul_32 r4, r5, r6\nmul_imm_32 r7, r1, 0x8000",
        &[(1, 0x10000), (2, 0x8000), (5, 0x1_0000_0003), (6, 0x2_0000_0005)],
    );
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], 15);
    assert_eq!(r[7], NEG_2_31);
}

#[test]
fn div_u_32_result_is_sign_extended() {
    let r = alu(
        "div_u_32 r3, r1, r2\ndiv_u_32 r4, r5, r6\ndiv_u_32 r7, r8, r9",
        &[(1, 0xFFFF_FFFF), (2, 1), (5, 0xFFFF_FFFF_0000_000A), (6, 0x1_0000_0003), (8, 0x1_FFFF_FFFE), (9, 2)],
    );
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], 3);
    assert_eq!(r[7], 0x7FFF_FFFF);
}

#[test]
fn rem_u_32_result_is_sign_extended() {
    let r = alu(
        "rem_u_32 r3, r1, r2\nrem_u_32 r4, r5, r6",
        &[(1, 0x8000_0003), (2, 0x8000_0004), (5, 7), (6, 0xFFFF_FFFF_0000_0004)],
    );
    assert_eq!(r[3], 0xFFFF_FFFF_8000_0003);
    assert_eq!(r[4], 3);
}

#[test]
fn shlo_r_32_by_zero_sign_extends_bit_31() {
    let r = alu(
        "shlo_r_32 r3, r1, r2\nshlo_r_32 r4, r5, r6\nshlo_r_32 r7, r1, r8\nshlo_r_imm_32 r9, r1, 0",
        &[(1, 0x1_8000_0000), (2, 0), (5, 0x8000_0001), (6, 32), (8, 1)],
    );
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], 0xFFFF_FFFF_8000_0001);
    assert_eq!(r[7], 0x4000_0000);
    assert_eq!(r[9], NEG_2_31);
}

#[test]
fn shlo_l_32_into_bit_31_sign_extends() {
    let r = alu("shlo_l_32 r3, r1, r2\nshlo_l_imm_32 r4, r1, 31", &[(1, 1), (2, 31)]);
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], NEG_2_31);
}

#[test]
fn add_imm_32_and_neg_add_imm_32_sign_extend() {
    let r = alu(
        "add_imm_32 r3, r1, 1\nneg_add_imm_32 r4, r1, 0\nneg_add_imm_32 r5, r2, 5",
        &[(1, 0x7FFF_FFFF), (2, 0x1_0000_0000)],
    );
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], 0xFFFF_FFFF_8000_0001);
    assert_eq!(r[5], 5);
}

#[test]
fn shar_r_32_shifts_the_sign_extended_low_half() {
    let r = alu(
        "shar_r_32 r3, r1, r2\nshar_r_32 r4, r5, r2\nshar_r_imm_32 r6, r1, 4",
        &[(1, 0x8000_0000), (2, 4), (5, 0xFFFF_FFFF_0000_0010)],
    );
    assert_eq!(r[3], 0xFFFF_FFFF_F800_0000);
    assert_eq!(r[4], 1);
    assert_eq!(r[6], 0xFFFF_FFFF_F800_0000);
}

#[test]
fn rotates_32_sign_extend() {
    let r = alu(
        "rot_r_32 r3, r1, r2\nrot_l_32 r4, r5, r2\nrot_r_32_imm r6, r1, 1\nrot_r_32_imm_alt r7, r2, 1",
        &[(1, 1), (2, 1), (5, 0x4000_0000)],
    );
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], NEG_2_31);
    assert_eq!(r[6], NEG_2_31);
    assert_eq!(r[7], NEG_2_31);
}

// ---------------------------------------------------------------------------------------
// Shift masking, alt shifts, rotates (§5.10, §5.13, §11.2-3)
// ---------------------------------------------------------------------------------------

#[test]
fn shift_64_amounts_are_taken_mod_64() {
    let r = alu(
        "shlo_l_64 r3, r1, r2\nshlo_r_64 r4, r1, r2\nshlo_l_64 r5, r1, r6\nshlo_r_64 r7, r1, r6",
        &[(1, 0x8000_0000_0000_0001), (2, 64), (6, 65)],
    );
    assert_eq!(r[3], 0x8000_0000_0000_0001);
    assert_eq!(r[4], 0x8000_0000_0000_0001);
    assert_eq!(r[5], 2);
    assert_eq!(r[7], 0x4000_0000_0000_0000);
}

#[test]
fn shar_r_64_is_arithmetic_and_masked() {
    let r = alu(
        "shar_r_64 r3, r1, r2\nshar_r_64 r4, r1, r6\nshar_r_64 r5, r1, r8\nshar_r_64 r7, r9, r2",
        &[(1, 1 << 63), (2, 63), (6, 127), (8, 64), (9, 0x4000_0000_0000_0000)],
    );
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], MAX);
    assert_eq!(r[5], 1 << 63);
    assert_eq!(r[7], 0);
}

#[test]
fn shift_32_amounts_are_taken_mod_32() {
    let r = alu(
        "shlo_l_32 r3, r1, r2\nshlo_l_32 r4, r1, r5\nshar_r_32 r6, r7, r5\nshlo_r_32 r8, r7, r2",
        &[(1, 1), (2, 33), (5, 32), (7, 0x8000_0000)],
    );
    assert_eq!(r[3], 2);
    assert_eq!(r[4], 1);
    assert_eq!(r[6], NEG_2_31);
    assert_eq!(r[8], 0x4000_0000);
}

#[test]
fn shift_immediates_are_masked_too() {
    let r = alu(
        "shlo_l_imm_64 r3, r1, 64\nshlo_r_imm_64 r4, r1, 65\nshar_r_imm_64 r5, r2, 68\nshlo_l_imm_32 r6, r1, 33",
        &[(1, 3), (2, 1 << 63)],
    );
    assert_eq!(r[3], 3);
    assert_eq!(r[4], 1);
    assert_eq!(r[5], 0xF800_0000_0000_0000);
    assert_eq!(r[6], 6);
}

#[test]
fn alt_shifts_64_shift_the_immediate_by_the_register() {
    let r = alu(
        "shlo_l_imm_alt_64 r3, r1, 1\nshlo_l_imm_alt_64 r4, r2, 1\nshlo_r_imm_alt_64 r5, r6, -1\n\
         shar_r_imm_alt_64 r7, r8, -16",
        &[(1, 4), (2, 68), (6, 60), (8, 2)],
    );
    assert_eq!(r[3], 16);
    assert_eq!(r[4], 16);
    assert_eq!(r[5], 0xF);
    assert_eq!(r[7], (-4i64) as u64);
}

#[test]
fn alt_shifts_32_shift_the_immediate_by_the_register() {
    let r = alu(
        "shlo_l_imm_alt_32 r3, r1, 1\nshlo_r_imm_alt_32 r4, r2, -1\nshlo_r_imm_alt_32 r5, r6, -1\n\
         shar_r_imm_alt_32 r7, r8, -2147483648",
        &[(1, 31), (2, 4), (6, 32), (8, 1)],
    );
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], 0x0FFF_FFFF);
    assert_eq!(r[5], MAX);
    assert_eq!(r[7], 0xFFFF_FFFF_C000_0000);
}

#[test]
fn rotates_64() {
    let r = alu(
        "rot_l_64 r3, r1, r2\nrot_r_64 r4, r1, r2\nrot_r_64 r5, r1, r6\nrot_r_64_imm r7, r8, 4\n\
         rot_r_64_imm_alt r9, r10, 0x12",
        &[(1, 0x8000_0000_0000_0001), (2, 1), (6, 65), (8, 0x12), (10, 4)],
    );
    assert_eq!(r[3], 3);
    assert_eq!(r[4], 0xC000_0000_0000_0000);
    assert_eq!(r[5], 0xC000_0000_0000_0000);
    assert_eq!(r[7], 0x2000_0000_0000_0001);
    assert_eq!(r[9], 0x2000_0000_0000_0001);
}

#[test]
fn rotates_32_mask_the_amount_and_ignore_upper_bits() {
    let r = alu(
        "rot_l_32 r3, r1, r2\nrot_r_32 r4, r5, r6\nrot_r_32 r7, r5, r8",
        &[(1, 0x8000_0000), (2, 33), (5, 0xFFFF_FFFF_0000_0002), (6, 1), (8, 2)],
    );
    assert_eq!(r[3], 1);
    assert_eq!(r[4], 1);
    assert_eq!(r[7], NEG_2_31);
}

// ---------------------------------------------------------------------------------------
// Division and remainder (§5.13, §11.4-6)
// ---------------------------------------------------------------------------------------

#[test]
fn division_64_by_zero() {
    let r = alu(
        "div_u_64 r3, r1, r0\nrem_u_64 r4, r1, r0\ndiv_s_64 r5, r1, r0\nrem_s_64 r6, r2, r0",
        &[(1, 42), (2, (-5i64) as u64)],
    );
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], 42);
    assert_eq!(r[5], MAX);
    assert_eq!(r[6], (-5i64) as u64);
}

#[test]
fn division_32_by_zero_looks_at_the_low_half_of_the_divisor() {
    let r = alu(
        "div_u_32 r3, r1, r2\nrem_u_32 r4, r1, r2\ndiv_s_32 r5, r1, r2\nrem_s_32 r6, r1, r2\nrem_u_32 r8, r7, r2",
        &[(1, 0x1_8000_0005), (2, 0x7_0000_0000), (7, 9)],
    );
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], 0xFFFF_FFFF_8000_0005);
    assert_eq!(r[5], MAX);
    assert_eq!(r[6], 0xFFFF_FFFF_8000_0005);
    assert_eq!(r[8], 9);
}

#[test]
fn signed_overflow_64() {
    let r = alu("div_s_64 r3, r1, r2\nrem_s_64 r4, r1, r2", &[(1, 1 << 63), (2, MAX)]);
    assert_eq!(r[3], 1 << 63);
    assert_eq!(r[4], 0);
}

#[test]
fn signed_overflow_32() {
    let r = alu("div_s_32 r3, r1, r2\nrem_s_32 r4, r1, r2", &[(1, 0x1234_5678_8000_0000), (2, 0xFFFF_FFFF)]);
    assert_eq!(r[3], NEG_2_31);
    assert_eq!(r[4], 0);
}

#[test]
fn signed_remainder_keeps_the_sign_of_the_dividend() {
    let m7 = (-7i64) as u64;
    let r = alu(
        "rem_s_64 r3, r1, r2\nrem_s_64 r4, r5, r6\nrem_s_64 r7, r1, r6\ndiv_s_64 r8, r1, r2",
        &[(1, m7), (2, 2), (5, 7), (6, (-2i64) as u64)],
    );
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], 1);
    assert_eq!(r[7], MAX);
    assert_eq!(r[8], (-3i64) as u64);
}

#[test]
fn signed_division_32_truncates_toward_zero() {
    let r = alu("rem_s_32 r3, r1, r2\ndiv_s_32 r4, r1, r2", &[(1, 0xFFFF_FFF9), (2, 2)]);
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], (-3i64) as u64);
}

#[test]
fn unsigned_division_64() {
    let r = alu("div_u_64 r3, r1, r2\nrem_u_64 r4, r1, r5", &[(1, MAX), (2, 2), (5, 10)]);
    assert_eq!(r[3], 0x7FFF_FFFF_FFFF_FFFF);
    assert_eq!(r[4], 5);
}

// ---------------------------------------------------------------------------------------
// Other ALU operations (§5.9, §5.10, §5.13)
// ---------------------------------------------------------------------------------------

#[test]
fn mul_64_keeps_the_low_half() {
    let r =
        alu("mul_64 r3, r1, r2\nmul_64 r4, r5, r5\nmul_imm_64 r7, r8, -3", &[(1, 1 << 63), (2, 2), (5, MAX), (8, 5)]);
    assert_eq!(r[3], 0);
    assert_eq!(r[4], 1);
    assert_eq!(r[7], (-15i64) as u64);
}

#[test]
fn mul_upper_signedness() {
    let src = "mul_upper_s_s r3, r1, r2\nmul_upper_u_u r4, r1, r2\nmul_upper_s_u r5, r1, r2";
    let r = alu(src, &[(1, MAX), (2, MAX)]);
    assert_eq!([r[3], r[4], r[5]], [0, 0xFFFF_FFFF_FFFF_FFFE, MAX]);
    let r = alu(src, &[(1, (-2i64) as u64), (2, 3)]);
    assert_eq!([r[3], r[4], r[5]], [MAX, 2, MAX]);
    let r = alu(src, &[(1, 2), (2, MAX)]);
    assert_eq!([r[3], r[4], r[5]], [MAX, 1, 1]);
}

#[test]
fn bitwise_three_register_ops() {
    let r = alu(
        "and r3, r1, r2\nxor r4, r1, r2\nor r5, r1, r2\nand_inv r6, r1, r2\nor_inv r7, r1, r2\nxnor r8, r1, r2",
        &[(1, 0xF0F0), (2, 0xFF00)],
    );
    assert_eq!(r[3], 0xF000);
    assert_eq!(r[4], 0x0FF0);
    assert_eq!(r[5], 0xFFF0);
    assert_eq!(r[6], 0x00F0);
    assert_eq!(r[7], 0xFFFF_FFFF_FFFF_F0FF);
    assert_eq!(r[8], 0xFFFF_FFFF_FFFF_F00F);
}

#[test]
fn min_max_signed_and_unsigned() {
    let r = alu("max r3, r1, r2\nmax_u r4, r1, r2\nmin r5, r1, r2\nmin_u r6, r1, r2", &[(1, MAX), (2, 1)]);
    assert_eq!([r[3], r[4], r[5], r[6]], [1, MAX, MAX, 1]);
}

#[test]
fn set_lt_three_register() {
    let r =
        alu("set_lt_u r3, r1, r2\nset_lt_s r4, r1, r2\nset_lt_u r5, r2, r1\nset_lt_s r6, r2, r1", &[(1, MAX), (2, 1)]);
    assert_eq!([r[3], r[4], r[5], r[6]], [0, 1, 1, 0]);
}

#[test]
fn set_compare_immediates_use_the_sign_extended_value() {
    let r = alu(
        "set_lt_u_imm r3, r1, -1\nset_lt_s_imm r4, r1, -1\nset_gt_u_imm r5, r1, 5\nset_gt_u_imm r6, r1, 4\n\
         set_gt_s_imm r7, r2, -1\nset_gt_s_imm r8, r9, -1\nset_lt_u_imm r10, r9, -1",
        &[(1, 5), (2, 0), (9, MAX)],
    );
    assert_eq!([r[3], r[4], r[5], r[6], r[7], r[8], r[10]], [1, 0, 0, 1, 1, 0, 0]);
}

#[test]
fn bitwise_immediates() {
    let r =
        alu("and_imm r3, r1, 0xFF\nand_imm r4, r1, -256\nxor_imm r5, r1, -1\nor_imm r6, r1, 0x10000", &[(1, 0x1234)]);
    assert_eq!(r[3], 0x34);
    assert_eq!(r[4], 0x1200);
    assert_eq!(r[5], !0x1234);
    assert_eq!(r[6], 0x11234);
}

#[test]
fn load_imm_add_imm_and_load_imm_64() {
    let r = alu("add_imm_64 r3, r1, -1\nload_imm r4, -2\nload_imm_64 r5, 0x1122334455667788", &[]);
    assert_eq!(r[3], MAX);
    assert_eq!(r[4], 0xFFFF_FFFF_FFFF_FFFE);
    assert_eq!(r[5], 0x1122_3344_5566_7788);
}

#[test]
fn bit_counts_in_every_profile() {
    let src = "count_set_bits_64 r3, r1\ncount_set_bits_32 r4, r2\nleading_zero_bits_64 r5, r6\n\
               leading_zero_bits_64 r7, r0\nleading_zero_bits_32 r8, r2\nleading_zero_bits_32 r9, r10\n\
               trailing_zero_bits_64 r11, r0\ntrailing_zero_bits_32 r12, r10";
    for profile in Profile::ALL {
        let r = alu_in(
            profile,
            src,
            &[(1, 0xF000_0000_0000_000F), (2, 0xFFFF_FFFF_0000_0007), (6, 1), (10, 0x1_0000_0000)],
        );
        assert_eq!([r[3], r[4], r[5], r[7], r[8], r[9], r[11], r[12]], [8, 3, 63, 64, 29, 32, 64, 32], "{profile}");
    }
    let r = alu("trailing_zero_bits_64 r3, r1\ntrailing_zero_bits_32 r4, r2", &[(1, 8), (2, 0xFFFF_FFFF_0000_0010)]);
    assert_eq!([r[3], r[4]], [3, 4]);
}

#[test]
fn extensions_and_byte_reverse_in_every_profile() {
    let src = "sign_extend_8 r3, r1\nsign_extend_8 r4, r2\nsign_extend_16 r5, r6\nzero_extend_16 r7, r8\n\
               reverse_bytes r9, r10\nmove_reg r11, r10";
    for profile in Profile::ALL {
        let r = alu_in(
            profile,
            src,
            &[(1, 0xFFFF_FF7F), (2, 0x80), (6, 0x1_8000), (8, 0xFFFF_FFFF_FFFF_8001), (10, 0x0102_0304_0506_0708)],
        );
        assert_eq!(r[3], 0x7F, "{profile}");
        assert_eq!(r[4], 0xFFFF_FFFF_FFFF_FF80);
        assert_eq!(r[5], 0xFFFF_FFFF_FFFF_8000);
        assert_eq!(r[7], 0x8001);
        assert_eq!(r[9], 0x0807_0605_0403_0201);
        assert_eq!(r[11], 0x0102_0304_0506_0708);
    }
}

// ---------------------------------------------------------------------------------------
// Immediate sign extension by encoded length (§4, §11.7)
// ---------------------------------------------------------------------------------------

#[test]
fn one_byte_ff_immediate_is_minus_one() {
    let r = alu(".inst 51, 0x01, 0xFF", &[]);
    assert_eq!(r[1], MAX);
}

#[test]
fn two_byte_ff_00_immediate_is_255() {
    let r = alu(".inst 51, 0x01, 0xFF, 0x00", &[]);
    assert_eq!(r[1], 255);
}

#[test]
fn three_byte_immediates_sign_extend_from_bit_23() {
    let r = alu(".inst 51, 0x01, 0x00, 0x00, 0x80\n.inst 51, 0x02, 0xFF, 0xFF, 0x7F", &[]);
    assert_eq!(r[1], 0xFFFF_FFFF_FF80_0000);
    assert_eq!(r[2], 0x7F_FFFF);
}

#[test]
fn four_byte_immediates_sign_extend_from_bit_31() {
    let r = alu(".inst 51, 0x01, 0x00, 0x00, 0x00, 0x80\n.inst 51, 0x02, 0xFF, 0xFF, 0xFF, 0x7F", &[]);
    assert_eq!(r[1], NEG_2_31);
    assert_eq!(r[2], 0x7FFF_FFFF);
}

#[test]
fn add_imm_with_ff_depends_on_its_length() {
    let r = alu(".inst 149, 0x21, 0xFF\n.inst 149, 0x34, 0xFF, 0x00", &[(2, 10), (3, 10)]);
    assert_eq!(r[1], 9);
    assert_eq!(r[4], 265);
}

#[test]
fn load_imm_64_reads_eight_bytes_whatever_the_skip() {
    // load_imm_64 r1 with skip 2, then trap (0x00) and fallthrough (0x01): the 8-byte
    // immediate runs over the following instructions and past the end of the code.
    let (exit, vm) = run(".inst 20, 0x01, 0xAA\n.inst 0\n.inst 1", &[]);
    check(exit, &vm, Exit::Trap, 3, GAS - 2);
    assert_eq!(vm.regs()[1], 0x01_00AA);
}

// ---------------------------------------------------------------------------------------
// Skip and operand decoding (§2, §4, §11.8-10)
// ---------------------------------------------------------------------------------------

#[test]
fn short_skip_leaves_an_empty_immediate() {
    let (exit, vm) = run(".inst 51, 0x01\nload_imm r2, 7", &[(1, 99)]);
    check(exit, &vm, Exit::Trap, 5, GAS - 3);
    assert_eq!(vm.regs()[1], 0);
    assert_eq!(vm.regs()[2], 7);
}

#[test]
fn short_skip_shrinks_the_immediate() {
    let r = alu(".inst 149, 0x21, 0x05\nload_imm r3, 7", &[(2, 100)]);
    assert_eq!(r[1], 105);
    assert_eq!(r[3], 7);
}

#[test]
fn short_skip_leaves_the_second_immediate_empty() {
    // store_imm_u8 with a 3-byte address and no room left for the value: Y = 0.
    let (exit, vm) = run_mem(".inst 30, 0x03, 0x00, 0x00, 0x02\nfallthrough", &[], &[(RW, &[0x55])]);
    check(exit, &vm, Exit::Trap, 6, GAS - 3);
    assert_eq!(mem(&vm, RW, 1), [0]);
}

#[test]
fn long_skip_ignores_extra_bytes() {
    let (exit, vm) = run(".inst 51, 0x01, 0x05, 0x00, 0x00, 0x00, 0x77, 0x88", &[]);
    check(exit, &vm, Exit::Trap, 8, GAS - 2);
    assert_eq!(vm.regs()[1], 5);
}

#[test]
fn reg_two_imm_length_nibble_is_capped_and_bit_7_ignored() {
    // 0x91: rA = r1, lX = 1 (bit 7 ignored). 0x71: rA = r1, lX = min(4, 7) = 4.
    let src = ".inst 70, 0x91, 0x10, 0x2A\n.inst 70, 0x71, 0x00, 0x01, 0x00, 0x00, 0x33";
    let (exit, vm) = run_mem(src, &[(1, RW as u64)], &[]);
    check(exit, &vm, Exit::Trap, 11, GAS - 3);
    assert_eq!(mem(&vm, RW + 0x10, 1), [0x2A]);
    assert_eq!(mem(&vm, RW + 0x100, 1), [0x33]);
}

#[test]
fn two_imm_length_byte_uses_only_its_low_three_bits() {
    let (exit, vm) = run_mem(".inst 30, 0xFB, 0x00, 0x00, 0x02, 0x7E", &[], &[]);
    check(exit, &vm, Exit::Trap, 6, GAS - 2);
    assert_eq!(mem(&vm, RW, 1), [0x7E]);
}

#[test]
fn operand_bytes_past_the_end_of_code_read_as_zero() {
    // add_64 with the destination byte missing: rD = ζ(2) = 0.
    let (exit, vm) = run(".inst 200, 0x21", &[(0, 99), (1, 3), (2, 4)]);
    check(exit, &vm, Exit::Trap, 2, GAS - 2);
    assert_eq!(vm.regs()[0], 7);
    let (exit, vm) = run(".inst 20, 0x03, 0x78, 0x56", &[]);
    check(exit, &vm, Exit::Trap, 4, GAS - 2);
    assert_eq!(vm.regs()[3], 0x5678);
}

#[test]
fn skip_is_capped_at_24() {
    let src = format!("fallthrough\n.byte {}\ntrap", vec!["1"; 30].join(", "));
    let (exit, vm) = run(&src, &[]);
    check(exit, &vm, Exit::Trap, 25, GAS - 2);
}

#[test]
fn register_nibbles_13_to_15_mean_r12() {
    let src = ".inst 100, 0xE1\n.inst 100, 0x2D\n.inst 200, 0xF3, 0x04";
    let r = alu(src, &[(12, 0xC12), (2, 0x22), (3, 0x30)]);
    assert_eq!(r[1], 0xC12);
    assert_eq!(r[12], 0x22);
    assert_eq!(r[4], 0x52);
    let r = alu(".inst 51, 0x0F, 0x07", &[]);
    assert_eq!(r[12], 7);
}

#[test]
fn three_reg_destination_byte_is_capped_as_a_whole() {
    let regs = [(0, 0xBB), (1, 1), (2, 2), (7, 0xAA)];
    let r = alu(".inst 200, 0x21, 0x17", &regs);
    assert_eq!((r[12], r[7], r[0]), (3, 0xAA, 0xBB));
    let r = alu(".inst 200, 0x21, 0x10", &regs);
    assert_eq!((r[12], r[7], r[0]), (3, 0xAA, 0xBB));
}

// ---------------------------------------------------------------------------------------
// Operand roles (§4, §11.11, §11.23)
// ---------------------------------------------------------------------------------------

#[test]
fn store_ind_stores_the_low_nibble_register_at_the_high_nibble_base() {
    let (exit, vm) = run_mem(".inst 122, 0x21, 0x04", &[(1, 0xDEAD_BEEF), (2, RW as u64)], &[]);
    check(exit, &vm, Exit::Trap, 3, GAS - 2);
    assert_eq!(mem(&vm, RW, 8), [0, 0, 0, 0, 0xEF, 0xBE, 0xAD, 0xDE]);
}

#[test]
fn load_ind_writes_the_low_nibble_register() {
    let (exit, vm) = run_mem(".inst 124, 0x21, 0x01", &[(1, 9), (2, RW as u64)], &[(RW + 1, &[0x5A])]);
    check(exit, &vm, Exit::Trap, 3, GAS - 2);
    assert_eq!(vm.regs()[1], 0x5A);
    assert_eq!(vm.regs()[2], RW as u64);
}

#[test]
fn two_reg_writes_the_low_nibble() {
    let r = alu(".inst 100, 0x21", &[(1, 9), (2, 7)]);
    assert_eq!((r[1], r[2]), (7, 7));
}

#[test]
fn three_reg_first_operand_is_the_low_nibble() {
    let r = alu(".inst 201, 0x21, 0x03\n.inst 207, 0x21, 0x04", &[(1, 10), (2, 3)]);
    assert_eq!(r[3], 7);
    assert_eq!(r[4], 80);
}

#[test]
fn neg_add_imm_is_immediate_minus_register() {
    let r = alu(".inst 154, 0x21, 0x0A\n.inst 154, 0x43, 0x0A", &[(2, 3), (4, 11)]);
    assert_eq!(r[1], 7);
    assert_eq!(r[3], MAX);
}

#[test]
fn cmov_iz_tests_b_and_copies_a() {
    let src = ".inst 218, 0x21, 0x03";
    assert_eq!(alu(src, &[(1, 5), (2, 0), (3, 9)])[3], 5);
    assert_eq!(alu(src, &[(1, 5), (2, 1), (3, 9)])[3], 9);
}

#[test]
fn cmov_nz_tests_b_and_copies_a() {
    let src = ".inst 219, 0x21, 0x03";
    assert_eq!(alu(src, &[(1, 5), (2, 1), (3, 9)])[3], 5);
    assert_eq!(alu(src, &[(1, 5), (2, 0), (3, 9)])[3], 9);
}

#[test]
fn cmov_imm_forms_test_b_and_write_a() {
    let iz = ".inst 147, 0x21, 0x05";
    let nz = ".inst 148, 0x21, 0x05";
    assert_eq!(alu(iz, &[(1, 9), (2, 0)])[1], 5);
    assert_eq!(alu(iz, &[(1, 9), (2, 1)])[1], 9);
    assert_eq!(alu(nz, &[(1, 9), (2, 1)])[1], 5);
    assert_eq!(alu(nz, &[(1, 9), (2, 0)])[1], 9);
}

#[test]
fn two_reg_branch_compares_low_nibble_first() {
    // branch_lt_u with rA = r1, rB = r2, target 4.
    let src = ".inst 172, 0x21, 0x04\ntrap\nload_imm r3, 1\ntrap";
    let (exit, vm) = run(src, &[(1, 1), (2, 2)]);
    check(exit, &vm, Exit::Trap, 7, GAS - 3);
    assert_eq!(vm.regs()[3], 1);
    let (exit, vm) = run(src, &[(1, 2), (2, 1)]);
    check(exit, &vm, Exit::Trap, 3, GAS - 2);
    assert_eq!(vm.regs()[3], 0);
}

// ---------------------------------------------------------------------------------------
// Branches (§3, §5.8, §5.11, §11.12-13)
// ---------------------------------------------------------------------------------------

#[test]
fn branch_eq_and_ne() {
    assert!(taken("branch_eq r1, r2", 5, 5));
    assert!(!taken("branch_eq r1, r2", 5, 6));
    assert!(taken("branch_ne r1, r2", 5, 6));
    assert!(!taken("branch_ne r1, r2", 5, 5));
}

#[test]
fn branch_lt_unsigned_vs_signed() {
    assert!(!taken("branch_lt_u r1, r2", MAX, 1));
    assert!(taken("branch_lt_s r1, r2", MAX, 1));
    assert!(taken("branch_lt_u r1, r2", 1, MAX));
    assert!(!taken("branch_lt_s r1, r2", 1, MAX));
    assert!(!taken("branch_lt_u r1, r2", 3, 3));
    assert!(!taken("branch_lt_s r1, r2", 3, 3));
}

#[test]
fn branch_ge_unsigned_vs_signed() {
    assert!(taken("branch_ge_u r1, r2", MAX, 1));
    assert!(!taken("branch_ge_s r1, r2", MAX, 1));
    assert!(!taken("branch_ge_u r1, r2", 1, MAX));
    assert!(taken("branch_ge_s r1, r2", 1, MAX));
    assert!(taken("branch_ge_u r1, r2", 3, 3));
    assert!(taken("branch_ge_s r1, r2", 3, 3));
}

#[test]
fn branch_eq_imm_and_ne_imm() {
    assert!(taken("branch_eq_imm r1, -1", MAX, 0));
    assert!(!taken("branch_eq_imm r1, -1", 0xFFFF_FFFF, 0));
    assert!(taken("branch_ne_imm r1, 7", 8, 0));
    assert!(!taken("branch_ne_imm r1, 7", 7, 0));
}

#[test]
fn branch_lt_u_imm_and_le_u_imm() {
    assert!(taken("branch_lt_u_imm r1, -1", 5, 0));
    assert!(!taken("branch_lt_u_imm r1, -1", MAX, 0));
    assert!(!taken("branch_lt_u_imm r1, 5", 5, 0));
    assert!(taken("branch_le_u_imm r1, 5", 5, 0));
    assert!(!taken("branch_le_u_imm r1, 5", 6, 0));
    assert!(taken("branch_le_u_imm r1, -1", MAX, 0));
}

#[test]
fn branch_ge_u_imm_and_gt_u_imm() {
    assert!(taken("branch_ge_u_imm r1, 5", 5, 0));
    assert!(!taken("branch_ge_u_imm r1, 5", 4, 0));
    assert!(!taken("branch_ge_u_imm r1, -1", 5, 0));
    assert!(!taken("branch_gt_u_imm r1, 5", 5, 0));
    assert!(taken("branch_gt_u_imm r1, 5", 6, 0));
    assert!(taken("branch_gt_u_imm r1, 5", MAX, 0));
}

#[test]
fn branch_lt_s_imm_and_le_s_imm() {
    assert!(!taken("branch_lt_s_imm r1, -1", 5, 0));
    assert!(taken("branch_lt_s_imm r1, -1", (-2i64) as u64, 0));
    assert!(!taken("branch_lt_s_imm r1, -1", MAX, 0));
    assert!(taken("branch_le_s_imm r1, -1", MAX, 0));
    assert!(!taken("branch_le_s_imm r1, -1", 0, 0));
    assert!(taken("branch_le_s_imm r1, 0", 1 << 63, 0));
}

#[test]
fn branch_ge_s_imm_and_gt_s_imm() {
    assert!(taken("branch_ge_s_imm r1, -1", 5, 0));
    assert!(taken("branch_ge_s_imm r1, -1", MAX, 0));
    assert!(!taken("branch_ge_s_imm r1, -1", (-2i64) as u64, 0));
    assert!(!taken("branch_gt_s_imm r1, -1", MAX, 0));
    assert!(taken("branch_gt_s_imm r1, -1", 0, 0));
    assert!(!taken("branch_gt_s_imm r1, 0", 1 << 63, 0));
}

#[test]
fn branch_offsets_are_relative_to_the_branch() {
    // branch_eq r1, r2 at pc 1 with offset 5: target 6 (relative to next it would be 9).
    let src = "fallthrough\n.inst 170, 0x21, 0x05\ntrap\ntrap\nload_imm r3, 1\ntrap";
    let (exit, vm) = run(src, &[]);
    check(exit, &vm, Exit::Trap, 9, GAS - 4);
    assert_eq!(vm.regs()[3], 1);
}

#[test]
fn jump_offset_is_relative_to_the_jump() {
    // jump at pc 1 with offset 3: target 4.
    let src = "fallthrough\n.inst 40, 0x03\ntrap\nload_imm r1, 9\ntrap";
    let (exit, vm) = run(src, &[]);
    check(exit, &vm, Exit::Trap, 7, GAS - 4);
    assert_eq!(vm.regs()[1], 9);
}

#[test]
fn backward_branch_loop() {
    // pc 0 load_imm r1, 3; pc 3 fallthrough; pc 4 add_imm_64 r1, r1, -1;
    // pc 7 branch_ne_imm r1, 0, offset -3 (-> 4); pc 10 trap.
    let src = "load_imm r1, 3\nfallthrough\nadd_imm_64 r1, r1, -1\n.inst 82, 0x01, 0xFD\ntrap";
    let (exit, vm) = run(src, &[]);
    check(exit, &vm, Exit::Trap, 10, GAS - 9);
    assert_eq!(vm.regs()[1], 0);
}

#[test]
fn jump_with_an_empty_offset_targets_itself() {
    let (exit, vm) = exec(".inst 40", Profile::A, GasModel::BlockUnit, |vm| vm.set_gas(5));
    check(exit, &vm, Exit::OutOfGas, 0, 0);
}

#[test]
fn jump_into_the_middle_of_an_instruction_panics() {
    let (exit, vm) = run("jump 3\nload_imm r1, 5\ntrap", &[]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    assert_eq!(vm.regs()[1], 0);
}

#[test]
fn jump_to_an_instruction_after_a_non_terminator_panics() {
    let src = |target: u32| format!("jump {target}\nload_imm r1, 5\nload_imm r2, 6\ntrap");
    let (exit, vm) = run(&src(5), &[]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    assert_eq!(vm.regs()[2], 0);
    let (exit, vm) = run(&src(2), &[]);
    check(exit, &vm, Exit::Trap, 8, GAS - 4);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (5, 6));
}

#[test]
fn jump_past_the_end_panics() {
    let (exit, vm) = run("jump 100\ntrap", &[]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    // Code length 4: pc 4 (the end) is not a valid target either.
    let (exit, vm) = run("jump 4\ntrap\ntrap", &[]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    let (exit, vm) = run("jump 3\ntrap\ntrap", &[]);
    check(exit, &vm, Exit::Trap, 3, GAS - 2);
}

/// branch_eq_imm r1, 1 at pc 0 (4 bytes) with target 5, inside the load_imm at pc 4.
const BAD_BRANCH: &str = "branch_eq_imm r1, 1, 5\nload_imm r2, 7\ntrap";

#[test]
fn taken_branch_to_an_invalid_target_panics_at_the_branch() {
    for profile in Profile::ALL {
        let (exit, vm) = run_in(profile, BAD_BRANCH, &[(1, 1)]);
        check(exit, &vm, Exit::Panic, 0, GAS - 1);
        assert_eq!(vm.regs()[2], 0);
    }
}

#[test]
fn untaken_branch_to_an_invalid_target_continues_in_profiles_a_and_j() {
    for profile in [Profile::A, Profile::J] {
        let (exit, vm) = run_in(profile, BAD_BRANCH, &[(1, 0)]);
        check(exit, &vm, Exit::Trap, 7, GAS - 3);
        assert_eq!(vm.regs()[2], 7);
    }
}

#[test]
fn untaken_branch_to_an_invalid_target_panics_in_profile_b() {
    let (exit, vm) = run_in(Profile::B, BAD_BRANCH, &[(1, 0)]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    assert_eq!(vm.regs()[2], 0);
}

#[test]
fn final_conditional_branch_always_panics_in_profile_b() {
    for r1 in [0, 1] {
        let (exit, vm) = run_in(Profile::B, "branch_eq_imm r1, 0, 0", &[(1, r1)]);
        check(exit, &vm, Exit::Panic, 0, GAS - 1);
    }
}

#[test]
fn final_conditional_branch_in_profile_a_only_matters_when_taken() {
    let (exit, vm) = run("branch_eq_imm r1, 0, 0", &[(1, 1)]);
    check(exit, &vm, Exit::Trap, 2, GAS - 2);
    let (exit, vm) = exec("branch_eq_imm r1, 0, 0", Profile::A, GasModel::BlockUnit, |vm| vm.set_gas(50));
    check(exit, &vm, Exit::OutOfGas, 0, 0);
}

// ---------------------------------------------------------------------------------------
// Dynamic jumps (§6, §5.12, §11.14)
// ---------------------------------------------------------------------------------------

/// pc 0 fallthrough; pc 1 jump_ind r1, 0; pc 3 trap; pc 4 target; pc 7 inner (not a block
/// start); pc 10 trap. Table: [4, 7, 5, 100].
const DJUMP: &str = ".jump_table target, inner, 5, 100
    fallthrough
    jump_ind r1, 0
    trap
    target: load_imm r2, 9
    inner: load_imm r3, 1
    trap";

#[test]
fn jump_ind_to_the_halt_address_halts_at_the_jump() {
    let (exit, vm) = run(DJUMP, &[(1, HALT)]);
    check(exit, &vm, Exit::Halt, 1, GAS - 2);
    assert_eq!(vm.regs()[2], 0);
}

#[test]
fn jump_ind_address_is_taken_mod_2_32() {
    // pc 0 jump_ind r1, 16 (3 bytes); pc 3 trap; pc 4 target; pc 7 trap.
    let src = ".jump_table target\njump_ind r1, 16\ntrap\ntarget: load_imm r2, 9\ntrap";
    let (exit, vm) = run(src, &[(1, 0x1_FFFE_FFF0)]);
    check(exit, &vm, Exit::Halt, 0, GAS - 1);
    for r1 in [(-14i64) as u64, 0x7_FFFF_FFF2] {
        let (exit, vm) = run(src, &[(1, r1)]);
        check(exit, &vm, Exit::Trap, 7, GAS - 3);
        assert_eq!(vm.regs()[2], 9);
    }
}

#[test]
fn jump_ind_through_the_jump_table() {
    let (exit, vm) = run(DJUMP, &[(1, 2)]);
    check(exit, &vm, Exit::Trap, 10, GAS - 5);
    assert_eq!((vm.regs()[2], vm.regs()[3]), (9, 1));
}

#[test]
fn jump_ind_to_zero_odd_or_beyond_the_table_panics() {
    for address in [0, 1, 3, 10, 12, 0xFFFF_0002, 0xFFFE_FFFF] {
        let (exit, vm) = run(DJUMP, &[(1, address)]);
        check(exit, &vm, Exit::Panic, 1, GAS - 2);
    }
}

#[test]
fn jump_table_entries_that_are_not_valid_targets_panic() {
    // Entries 1, 2, 3: after a non-terminator, mid-instruction, past the end.
    for address in [4, 6, 8] {
        let (exit, vm) = run(DJUMP, &[(1, address)]);
        check(exit, &vm, Exit::Panic, 1, GAS - 2);
        assert_eq!(vm.regs()[3], 0);
    }
}

/// pc 0 load_imm_jump_ind r1, r1, 77, 0 (4 bytes); pc 4 trap; pc 5 target: trap.
const LIJI: &str = ".jump_table target\nload_imm_jump_ind r1, r1, 77, 0\ntrap\ntarget: trap";

#[test]
fn load_imm_jump_ind_with_ra_equal_rb_jumps_through_the_old_value() {
    let (exit, vm) = run(LIJI, &[(1, 2)]);
    check(exit, &vm, Exit::Trap, 5, GAS - 2);
    assert_eq!(vm.regs()[1], 77);
}

#[test]
fn load_imm_jump_ind_keeps_its_write_on_halt_and_panic() {
    let (exit, vm) = run(LIJI, &[(1, HALT)]);
    check(exit, &vm, Exit::Halt, 0, GAS - 1);
    assert_eq!(vm.regs()[1], 77);
    let (exit, vm) = run(LIJI, &[(1, 0)]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    assert_eq!(vm.regs()[1], 77);
}

#[test]
fn load_imm_jump_ind_with_distinct_registers() {
    let src = ".jump_table target\nload_imm_jump_ind r1, r2, -1, 2\ntrap\ntarget: trap";
    // pc 0 load_imm_jump_ind (5 bytes); pc 5 trap; pc 6 target.
    let (exit, vm) = run(src, &[(2, 0)]);
    check(exit, &vm, Exit::Trap, 6, GAS - 2);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (MAX, 0));
}

#[test]
fn load_imm_jump_keeps_its_write_when_the_jump_panics() {
    let (exit, vm) = run("load_imm_jump r1, 42, 100\ntrap", &[]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    assert_eq!(vm.regs()[1], 42);
}

#[test]
fn load_imm_jump_writes_and_jumps() {
    // pc 0 load_imm_jump (4 bytes); pc 4 trap; pc 5 trap.
    let (exit, vm) = run("load_imm_jump r1, 42, t\ntrap\nt: trap", &[]);
    check(exit, &vm, Exit::Trap, 5, GAS - 2);
    assert_eq!(vm.regs()[1], 42);
}

// ---------------------------------------------------------------------------------------
// Memory (§5.4-5.7, §5.10, §7)
// ---------------------------------------------------------------------------------------

const BYTES: [u8; 12] = [0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x01, 0x72, 0x03, 0x74];
const WORD: u64 = 0x1122_3344_5566_7788;

#[test]
fn loads_of_every_width() {
    let src = "load_u8 r1, 0x20000\nload_i8 r2, 0x20000\nload_u16 r3, 0x20000\nload_i16 r4, 0x20000\n\
               load_u32 r5, 0x20000\nload_i32 r6, 0x20000\nload_u64 r7, 0x20000\n\
               load_i8 r8, 0x20008\nload_i16 r9, 0x20008\nload_i32 r10, 0x20008";
    let (exit, vm) = run_mem(src, &[], &[(RW, &BYTES)]);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    let r = vm.regs();
    assert_eq!(r[1], 0x88);
    assert_eq!(r[2], 0xFFFF_FFFF_FFFF_FF88);
    assert_eq!(r[3], 0x9988);
    assert_eq!(r[4], 0xFFFF_FFFF_FFFF_9988);
    assert_eq!(r[5], 0xBBAA_9988);
    assert_eq!(r[6], 0xFFFF_FFFF_BBAA_9988);
    assert_eq!(r[7], 0xFFEE_DDCC_BBAA_9988);
    assert_eq!(r[8], 0x01);
    assert_eq!(r[9], 0x7201);
    assert_eq!(r[10], 0x7403_7201);
}

#[test]
fn indirect_loads_of_every_width() {
    let src = "load_ind_u8 r1, r11, -16\nload_ind_i8 r2, r11, -16\nload_ind_u16 r3, r11, -16\n\
               load_ind_i16 r4, r11, -16\nload_ind_u32 r5, r11, -16\nload_ind_i32 r6, r11, -16\n\
               load_ind_u64 r7, r11, -16\nload_ind_i32 r8, r11, -8";
    let (exit, vm) = run_mem(src, &[(11, RW as u64 + 16)], &[(RW, &BYTES)]);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    let r = vm.regs();
    assert_eq!(r[1], 0x88);
    assert_eq!(r[2], 0xFFFF_FFFF_FFFF_FF88);
    assert_eq!(r[3], 0x9988);
    assert_eq!(r[4], 0xFFFF_FFFF_FFFF_9988);
    assert_eq!(r[5], 0xBBAA_9988);
    assert_eq!(r[6], 0xFFFF_FFFF_BBAA_9988);
    assert_eq!(r[7], 0xFFEE_DDCC_BBAA_9988);
    assert_eq!(r[8], 0x7403_7201);
}

#[test]
fn stores_of_every_width() {
    let src = "store_u8 r1, 0x20000\nstore_u16 r1, 0x20010\nstore_u32 r1, 0x20020\nstore_u64 r1, 0x20030";
    let (exit, vm) = run_mem(src, &[(1, WORD)], &[]);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    assert_eq!(mem(&vm, RW, 2), [0x88, 0]);
    assert_eq!(mem(&vm, RW + 0x10, 3), [0x88, 0x77, 0]);
    assert_eq!(mem(&vm, RW + 0x20, 5), [0x88, 0x77, 0x66, 0x55, 0]);
    assert_eq!(mem(&vm, RW + 0x30, 8), WORD.to_le_bytes());
}

#[test]
fn indirect_stores_of_every_width() {
    let src =
        "store_ind_u8 r1, r2, 0\nstore_ind_u16 r1, r2, 0x10\nstore_ind_u32 r1, r2, 0x20\nstore_ind_u64 r1, r2, 0x30";
    let (exit, vm) = run_mem(src, &[(1, WORD), (2, RW as u64)], &[]);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    assert_eq!(mem(&vm, RW, 2), [0x88, 0]);
    assert_eq!(mem(&vm, RW + 0x10, 3), [0x88, 0x77, 0]);
    assert_eq!(mem(&vm, RW + 0x20, 5), [0x88, 0x77, 0x66, 0x55, 0]);
    assert_eq!(mem(&vm, RW + 0x30, 8), WORD.to_le_bytes());
}

#[test]
fn immediate_stores_of_every_width() {
    let src = "store_imm_u8 0x20000, 0x1FF\nstore_imm_u16 0x20010, 0x12345\nstore_imm_u32 0x20020, -2\n\
               store_imm_u64 0x20030, -2";
    let (exit, vm) = run_mem(src, &[], &[]);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    assert_eq!(mem(&vm, RW, 2), [0xFF, 0]);
    assert_eq!(mem(&vm, RW + 0x10, 3), [0x45, 0x23, 0]);
    assert_eq!(mem(&vm, RW + 0x20, 5), [0xFE, 0xFF, 0xFF, 0xFF, 0]);
    assert_eq!(mem(&vm, RW + 0x30, 8), [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
}

#[test]
fn indirect_immediate_stores_of_every_width() {
    let src = "store_imm_ind_u8 r1, 0, 0xAB\nstore_imm_ind_u16 r1, 0x10, -1\nstore_imm_ind_u32 r1, 0x20, 0x12345678\n\
               store_imm_ind_u64 r1, 0x30, -2147483648";
    let (exit, vm) = run_mem(src, &[(1, RW as u64)], &[]);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    assert_eq!(mem(&vm, RW, 2), [0xAB, 0]);
    assert_eq!(mem(&vm, RW + 0x10, 3), [0xFF, 0xFF, 0]);
    assert_eq!(mem(&vm, RW + 0x20, 5), [0x78, 0x56, 0x34, 0x12, 0]);
    assert_eq!(mem(&vm, RW + 0x30, 8), [0, 0, 0, 0x80, 0xFF, 0xFF, 0xFF, 0xFF]);
}

#[test]
fn store_to_a_read_only_page_faults_at_the_page() {
    // pc 0 load_u8 (5 bytes); pc 5 store_u8.
    let (exit, vm) = exec("load_u8 r1, 0x30000\nstore_u8 r1, 0x30801", Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(0x30000, 4096, false).unwrap();
        vm.write_memory(0x30000, &[0x42]).unwrap();
    });
    check(exit, &vm, Exit::PageFault(0x30000), 5, GAS - 3);
    assert_eq!(vm.regs()[1], 0x42);
    assert_eq!(mem(&vm, 0x30801, 1), [0]);
}

#[test]
fn unmapped_high_memory_faults_at_the_page_address() {
    let (exit, vm) = run("load_u32 r1, 0x40123", &[(1, 7)]);
    check(exit, &vm, Exit::PageFault(0x40000), 0, GAS - 2);
    assert_eq!(vm.regs()[1], 7);
    let (exit, vm) = run("store_u8 r1, 0x10000", &[]);
    check(exit, &vm, Exit::PageFault(0x10000), 0, GAS - 2);
}

#[test]
fn failing_accesses_below_64k_panic() {
    let (exit, vm) = run("load_u8 r1, 0xFFFF", &[(1, 7)]);
    check(exit, &vm, Exit::Panic, 0, GAS - 2);
    assert_eq!(vm.regs()[1], 7);
    let (exit, vm) = run("store_imm_u8 0x1000, 1", &[]);
    check(exit, &vm, Exit::Panic, 0, GAS - 2);
}

#[test]
fn failing_byte_decides_between_panic_and_fault() {
    // Page 0xF000 mapped: a 2-byte load at 0xFFFF first fails at 0x10000, a page fault.
    let (exit, vm) = exec("load_u16 r1, 0xFFFF", Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(0xF000, 4096, true).unwrap();
    });
    check(exit, &vm, Exit::PageFault(0x10000), 0, GAS - 2);
}

#[test]
fn straddling_store_faults_on_the_second_page_and_writes_nothing() {
    let (exit, vm) = run_mem("store_u64 r1, 0x20FFC", &[(1, MAX)], &[]);
    check(exit, &vm, Exit::PageFault(0x21000), 0, GAS - 2);
    assert_eq!(mem(&vm, 0x20FF8, 8), [0; 8]);
}

#[test]
fn straddling_access_with_the_first_page_missing_faults_on_the_first() {
    let (exit, vm) = exec("load_u32 r1, 0x20FFE", Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(0x21000, 4096, true).unwrap();
    });
    check(exit, &vm, Exit::PageFault(0x20000), 0, GAS - 2);
}

#[test]
fn straddling_access_over_two_mapped_pages() {
    let (exit, vm) = exec("store_u32 r1, 0x20FFE\nload_u32 r2, 0x20FFE", Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(RW, 8192, true).unwrap();
        vm.set_reg(1, 0xA1B2_C3D4);
    });
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    assert_eq!(mem(&vm, 0x20FFE, 4), [0xD4, 0xC3, 0xB2, 0xA1]);
    assert_eq!(vm.regs()[2], 0xA1B2_C3D4);
}

const WRAP: &str = "store_ind_u64 r1, r2, 0\nload_ind_u64 r3, r2, 0";

#[test]
fn access_at_the_top_wraps_to_address_zero_and_panics() {
    let (exit, vm) = exec(WRAP, Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(0xFFFF_F000, 4096, true).unwrap();
        set_regs(vm, &[(1, WORD), (2, 0xFFFF_FFFF)]);
    });
    check(exit, &vm, Exit::Panic, 0, GAS - 3);
    assert_eq!(mem(&vm, 0xFFFF_FFFF, 1), [0]);
}

#[test]
fn access_at_the_top_wraps_into_mapped_page_zero() {
    let (exit, vm) = exec(WRAP, Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(0xFFFF_F000, 4096, true).unwrap();
        vm.map(0, 4096, true).unwrap();
        set_regs(vm, &[(1, WORD), (2, 0xFFFF_FFFF)]);
    });
    check(exit, &vm, Exit::Trap, 4, GAS - 3);
    assert_eq!(mem(&vm, 0xFFFF_FFFF, 1), [0x88]);
    assert_eq!(mem(&vm, 0, 8), [0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0]);
    assert_eq!(vm.regs()[3], WORD);
}

#[test]
fn access_at_the_top_without_the_top_page_faults_there() {
    let (exit, vm) = exec(WRAP, Profile::A, GasModel::BlockUnit, |vm| {
        vm.map(0, 4096, true).unwrap();
        set_regs(vm, &[(1, WORD), (2, 0xFFFF_FFFF)]);
    });
    check(exit, &vm, Exit::PageFault(0xFFFF_F000), 0, GAS - 3);
    assert_eq!(mem(&vm, 0, 8), [0; 8]);
}

#[test]
fn effective_address_uses_the_low_32_bits() {
    let src = "store_ind_u8 r1, r2, -16\nload_ind_u8 r3, r4, 0x10";
    let (exit, vm) = run_mem(src, &[(1, 0xAB), (2, 0xFFFF_FFFF_0002_0010), (4, 0x5_0001_FFF0)], &[]);
    assert_eq!((exit, vm.pc()), (Exit::Trap, code_len(&vm)));
    assert_eq!(mem(&vm, RW, 1), [0xAB]);
    assert_eq!(vm.regs()[3], 0xAB);
}

/// pc 0 load_u32 r1, 0x40000 (5 bytes); pc 5 add_imm_64 r1, r1, 1; pc 8 trap.
const FAULTING: &str = "load_u32 r1, 0x40000\nadd_imm_64 r1, r1, 1\ntrap";

#[test]
fn page_fault_is_resumable_without_recharge() {
    let mut vm = machine(FAULTING, Profile::A, GasModel::BlockUnit);
    let exit = vm.run();
    check(exit, &vm, Exit::PageFault(0x40000), 0, GAS - 3);
    assert_eq!(vm.regs()[1], 0);
    vm.map(0x40000, 4096, false).unwrap();
    vm.write_memory(0x40000, &[5, 0, 0, 0]).unwrap();
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 8, GAS - 3);
    assert_eq!(vm.regs()[1], 6);
}

#[test]
fn unresolved_page_fault_repeats_without_recharge() {
    let mut vm = machine(FAULTING, Profile::A, GasModel::BlockUnit);
    let exit = vm.run();
    check(exit, &vm, Exit::PageFault(0x40000), 0, GAS - 3);
    let exit = vm.run();
    check(exit, &vm, Exit::PageFault(0x40000), 0, GAS - 3);
}

// ---------------------------------------------------------------------------------------
// Traps (§2, §5.1, §5.15, §8)
// ---------------------------------------------------------------------------------------

#[test]
fn explicit_trap() {
    let (exit, vm) = run("load_imm r1, 1\ntrap\nload_imm r2, 2", &[]);
    check(exit, &vm, Exit::Trap, 3, GAS - 2);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (1, 0));
}

#[test]
fn undefined_opcodes_trap_at_their_pc() {
    let cases: [(Profile, &[u8]); 3] =
        [(Profile::A, &[2, 3, 4, 169, 255]), (Profile::B, &[3, 111, 4, 255]), (Profile::J, &[4, 169, 255])];
    for (profile, opcodes) in cases {
        for &op in opcodes {
            let src = format!("load_imm r1, 1\n.inst {op}, 0x21\nload_imm r2, 2");
            let (exit, vm) = run_in(profile, &src, &[]);
            check(exit, &vm, Exit::Trap, 3, GAS - 2);
            assert_eq!((vm.regs()[1], vm.regs()[2]), (1, 0), "opcode {op} in {profile}");
        }
    }
}

#[test]
fn opcode_111_is_reverse_bytes_in_profile_a() {
    let r = alu(".inst 111, 0x21", &[(2, 0x0102_0304_0506_0708)]);
    assert_eq!(r[1], 0x0807_0605_0403_0201);
}

#[test]
fn unlikely_is_a_no_op_in_profiles_b_and_j() {
    for profile in [Profile::B, Profile::J] {
        let r = alu_in(profile, "load_imm r1, 1\n.inst 2\nload_imm r2, 2", &[]);
        assert_eq!((r[1], r[2]), (1, 2));
    }
}

#[test]
fn running_off_the_end_traps_at_the_code_length() {
    let (exit, vm) = run("load_imm r1, 1\nload_imm r2, 2", &[]);
    check(exit, &vm, Exit::Trap, 6, GAS - 3);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (1, 2));
}

#[test]
fn start_inside_an_instruction_traps() {
    let (exit, vm) = exec("load_imm r1, 5\ntrap", Profile::A, GasModel::BlockUnit, |vm| vm.set_pc(1));
    check(exit, &vm, Exit::Trap, 1, GAS - 1);
    assert_eq!(vm.regs()[1], 0);
}

#[test]
fn start_past_the_end_traps() {
    let (exit, vm) = exec("load_imm r1, 5\ntrap", Profile::A, GasModel::BlockUnit, |vm| vm.set_pc(100));
    check(exit, &vm, Exit::Trap, 100, GAS - 1);
}

#[test]
fn start_at_a_later_instruction() {
    let (exit, vm) = exec("load_imm r1, 5\nload_imm r2, 6\ntrap", Profile::A, GasModel::BlockUnit, |vm| vm.set_pc(3));
    check(exit, &vm, Exit::Trap, 6, GAS - 2);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (0, 6));
}

// ---------------------------------------------------------------------------------------
// Gas (§9)
// ---------------------------------------------------------------------------------------

/// pc 0 load_imm; pc 3 load_imm; pc 6 trap.
const THREE: &str = "load_imm r1, 1\nload_imm r2, 2\ntrap";
/// pc 0 load_imm; pc 3 fallthrough; pc 4 load_imm; pc 7 trap.
const TWO_BLOCKS: &str = "load_imm r1, 1\nfallthrough\nload_imm r2, 2\ntrap";

#[test]
fn block_unit_charges_the_whole_block_on_entry() {
    let (exit, vm) = run("store_imm_u8 0x20000, 0x12", &[]);
    check(exit, &vm, Exit::PageFault(0x20000), 0, GAS - 2);
    let (exit, vm) = run(TWO_BLOCKS, &[]);
    check(exit, &vm, Exit::Trap, 7, GAS - 4);
}

#[test]
fn block_unit_exact_gas_reaches_the_end() {
    let (exit, vm) = exec("move_reg r0, r0", Profile::A, GasModel::BlockUnit, |vm| vm.set_gas(2));
    check(exit, &vm, Exit::Trap, 2, 0);
}

#[test]
fn block_unit_out_of_gas_keeps_state_and_is_resumable() {
    let mut vm = machine(THREE, Profile::A, GasModel::BlockUnit);
    vm.set_gas(2);
    let exit = vm.run();
    check(exit, &vm, Exit::OutOfGas, 0, 2);
    assert_eq!(vm.regs(), [0; 13]);
    vm.set_gas(3);
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 6, 0);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (1, 2));
}

#[test]
fn block_unit_out_of_gas_at_a_later_block() {
    let mut vm = machine(TWO_BLOCKS, Profile::A, GasModel::BlockUnit);
    vm.set_gas(3);
    let exit = vm.run();
    check(exit, &vm, Exit::OutOfGas, 4, 1);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (1, 0));
    vm.set_gas(2);
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 7, 0);
    assert_eq!(vm.regs()[2], 2);
}

#[test]
fn negative_gas_is_out_of_gas() {
    let (exit, vm) = exec(THREE, Profile::A, GasModel::BlockUnit, |vm| vm.set_gas(-1));
    check(exit, &vm, Exit::OutOfGas, 0, -1);
}

#[test]
fn block_table_takes_costs_from_the_table() {
    let (exit, vm) = exec(TWO_BLOCKS, Profile::B, GasModel::table([(0, 10), (4, 3)]), |_| {});
    check(exit, &vm, Exit::Trap, 7, GAS - 13);
}

#[test]
fn block_table_start_inside_a_block_charges_the_enclosing_block() {
    // pc 0, 3 load_imm; pc 6 fallthrough; pc 7 load_imm; pc 10 trap.
    let src = "load_imm r1, 1\nload_imm r2, 2\nfallthrough\nload_imm r3, 3\ntrap";
    let (exit, vm) = exec(src, Profile::B, GasModel::table([(0, 10), (7, 4)]), |vm| vm.set_pc(3));
    check(exit, &vm, Exit::Trap, 10, GAS - 14);
    assert_eq!((vm.regs()[1], vm.regs()[2], vm.regs()[3]), (0, 2, 3));
}

#[test]
fn block_table_out_of_gas_keeps_gas_at_the_block_start() {
    let mut vm = machine("jump 0", Profile::B, GasModel::table([(0, 22)]));
    vm.set_gas(100);
    let exit = vm.run();
    check(exit, &vm, Exit::OutOfGas, 0, 12);
    vm.set_gas(30);
    let exit = vm.run();
    check(exit, &vm, Exit::OutOfGas, 0, 8);
}

#[test]
fn block_table_page_fault_resume_does_not_recharge() {
    let mut vm = machine(FAULTING, Profile::B, GasModel::table([(0, 25)]));
    let exit = vm.run();
    check(exit, &vm, Exit::PageFault(0x40000), 0, GAS - 25);
    vm.map(0x40000, 4096, true).unwrap();
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 8, GAS - 25);
    assert_eq!(vm.regs()[1], 1);
}

/// pc 0 load_imm; pc 3 ecalli 3; pc 5 load_imm; pc 8 ecalli 4; pc 10 trap.
const ECALLIS: &str = "load_imm r1, 1\necalli 3\nload_imm r2, 2\necalli 4\ntrap";

#[test]
fn block_table_ecalli_resume_does_not_recharge_in_profiles_a_and_b() {
    for profile in [Profile::A, Profile::B] {
        let mut vm = machine(ECALLIS, profile, GasModel::table([(0, 103), (5, 7), (10, 11)]));
        let exit = vm.run();
        check(exit, &vm, Exit::HostCall(3), 3, GAS - 103);
        let exit = vm.run();
        check(exit, &vm, Exit::HostCall(4), 8, GAS - 103);
        let exit = vm.run();
        check(exit, &vm, Exit::Trap, 10, GAS - 103);
    }
}

#[test]
fn block_table_ecalli_resume_charges_the_next_block_in_profile_j() {
    let mut vm = machine(ECALLIS, Profile::J, GasModel::table([(0, 103), (5, 7), (10, 11)]));
    let exit = vm.run();
    check(exit, &vm, Exit::HostCall(3), 3, GAS - 103);
    let exit = vm.run();
    check(exit, &vm, Exit::HostCall(4), 8, GAS - 110);
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 10, GAS - 121);
}

#[test]
fn block_unit_ecalli_splits_blocks_only_in_profile_j() {
    let mut vm = machine(ECALLIS, Profile::A, GasModel::BlockUnit);
    assert_eq!(vm.run(), Exit::HostCall(3));
    assert_eq!(vm.gas(), GAS - 5);
    assert_eq!(vm.run(), Exit::HostCall(4));
    assert_eq!(vm.gas(), GAS - 5);
    assert_eq!(vm.run(), Exit::Trap);
    assert_eq!(vm.gas(), GAS - 5);

    let mut vm = machine(ECALLIS, Profile::J, GasModel::BlockUnit);
    assert_eq!(vm.run(), Exit::HostCall(3));
    assert_eq!(vm.gas(), GAS - 2);
    assert_eq!(vm.run(), Exit::HostCall(4));
    assert_eq!(vm.gas(), GAS - 4);
    assert_eq!(vm.run(), Exit::Trap);
    assert_eq!(vm.gas(), GAS - 5);
}

#[test]
fn instruction_model_charges_one_per_instruction() {
    let (exit, vm) = exec("store_imm_u8 0x20000, 0x12", Profile::A, GasModel::Instruction, |_| {});
    check(exit, &vm, Exit::PageFault(0x20000), 0, GAS - 1);
    let (exit, vm) = exec(TWO_BLOCKS, Profile::A, GasModel::Instruction, |_| {});
    check(exit, &vm, Exit::Trap, 7, GAS - 4);
}

#[test]
fn instruction_model_out_of_gas_leaves_the_pre_instruction_state_and_minus_one() {
    let mut vm = machine(THREE, Profile::A, GasModel::Instruction);
    vm.set_gas(1);
    let exit = vm.run();
    check(exit, &vm, Exit::OutOfGas, 3, -1);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (1, 0));
    vm.set_gas(2);
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 6, 0);
    assert_eq!(vm.regs()[2], 2);
}

// ---------------------------------------------------------------------------------------
// Host calls and profile J's extra terminators (§3.1, §5.2, §8, §9.2)
// ---------------------------------------------------------------------------------------

#[test]
fn ecalli_id_is_sign_extended_then_truncated() {
    // pc 0: 0xFF (1 byte); pc 2: 0xFF 0x00; pc 5: 3-byte 0x800000; pc 9: empty immediate.
    let src = ".inst 10, 0xFF\n.inst 10, 0xFF, 0x00\n.inst 10, 0x00, 0x00, 0x80\n.inst 10";
    let mut vm = machine(src, Profile::A, GasModel::BlockUnit);
    let expected = [(0xFFFF_FFFF, 0), (255, 2), (0xFF80_0000, 5), (0, 9)];
    for (id, pc) in expected {
        let exit = vm.run();
        check(exit, &vm, Exit::HostCall(id), pc, GAS - 5);
    }
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 10, GAS - 5);
}

#[test]
fn ecalli_minus_one_in_text_form() {
    let (exit, vm) = run("ecalli -1", &[]);
    check(exit, &vm, Exit::HostCall(0xFFFF_FFFF), 0, GAS - 2);
    let (exit, _) = run("ecalli -2147483648", &[]);
    assert_eq!(exit, Exit::HostCall(0x8000_0000));
}

#[test]
fn ecalli_reports_its_own_pc_and_resumes_after_it() {
    // pc 0 load_imm; pc 3 ecalli 7; pc 5 add_imm_64; pc 8 trap.
    let mut vm = machine("load_imm r1, 1\necalli 7\nadd_imm_64 r2, r3, 1\ntrap", Profile::A, GasModel::BlockUnit);
    let exit = vm.run();
    check(exit, &vm, Exit::HostCall(7), 3, GAS - 4);
    assert_eq!((vm.regs()[1], vm.regs()[2]), (1, 0));
    vm.set_reg(3, 99);
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 8, GAS - 4);
    assert_eq!(vm.regs()[2], 100);
}

#[test]
fn ecall_exits_in_profile_j_and_resumes_at_the_next_instruction() {
    // pc 0 load_imm; pc 3 ecall; pc 4 load_imm; implicit trap at 7.
    let mut vm = machine("load_imm r1, 1\necall\nload_imm r2, 2", Profile::J, GasModel::BlockUnit);
    assert_eq!(vm.run(), Exit::Ecall);
    assert_eq!((vm.regs()[1], vm.regs()[2], vm.gas()), (1, 0, GAS - 2));
    let exit = vm.run();
    check(exit, &vm, Exit::Trap, 7, GAS - 4);
    assert_eq!(vm.regs()[2], 2);
}

#[test]
fn opcode_3_is_ecall_only_in_profile_j() {
    let (exit, _) = run_in(Profile::J, ".inst 3", &[]);
    assert_eq!(exit, Exit::Ecall);
    for profile in [Profile::A, Profile::B] {
        let (exit, vm) = run_in(profile, ".inst 3", &[]);
        check(exit, &vm, Exit::Trap, 0, GAS - 1);
    }
}

#[test]
fn unlikely_makes_the_next_instruction_a_jump_target_only_in_profile_j() {
    // pc 0 jump 3; pc 2 unlikely; pc 3 load_imm; pc 6 trap.
    let src = "jump 3\nunlikely\nload_imm r1, 1\ntrap";
    let (exit, vm) = run_in(Profile::J, src, &[]);
    check(exit, &vm, Exit::Trap, 6, GAS - 3);
    assert_eq!(vm.regs()[1], 1);
    let (exit, vm) = run_in(Profile::B, src, &[]);
    check(exit, &vm, Exit::Panic, 0, GAS - 1);
    assert_eq!(vm.regs()[1], 0);
}

#[test]
fn unlikely_ends_a_gas_block_only_in_profile_j() {
    let src = "unlikely\nload_imm r1, 1\ntrap";
    let (exit, vm) = exec(src, Profile::B, GasModel::BlockUnit, |vm| vm.set_gas(1));
    check(exit, &vm, Exit::OutOfGas, 0, 1);
    let (exit, vm) = exec(src, Profile::J, GasModel::BlockUnit, |vm| vm.set_gas(1));
    check(exit, &vm, Exit::OutOfGas, 1, 0);
}

// ---------------------------------------------------------------------------------------
// sbrk and opcode 101 (§0, §5.14)
// ---------------------------------------------------------------------------------------

#[test]
fn sbrk_panics_in_profiles_a_and_j() {
    for profile in [Profile::A, Profile::J] {
        let (exit, vm) = run_in(profile, "sbrk r1, r2", &[(1, 5), (2, 4096)]);
        check(exit, &vm, Exit::Panic, 0, GAS - 2);
        assert_eq!(vm.regs()[1], 5);
    }
}

#[test]
fn opcodes_101_and_102_follow_the_profile_numbering() {
    let regs = [(2, 0xFFFF_FFFF_00FF_00FF)];
    let r = alu_in(Profile::B, ".inst 101, 0x21\n.inst 102, 0x23", &regs);
    assert_eq!((r[1], r[3]), (48, 16));
    let r = alu_in(Profile::A, ".inst 102, 0x21\n.inst 103, 0x23", &regs);
    assert_eq!((r[1], r[3]), (48, 16));
}

// ---------------------------------------------------------------------------------------
// Terminal exits and single-stepping (§8)
// ---------------------------------------------------------------------------------------

#[test]
fn terminal_exits_repeat_on_a_later_run() {
    let cases: [(&str, u64, Exit, u32); 3] = [
        ("trap", 0, Exit::Trap, 0),
        ("jump_ind r1, 0", HALT, Exit::Halt, 0),
        ("fallthrough\njump 100", 0, Exit::Panic, 1),
    ];
    for (src, r1, expected, pc) in cases {
        let mut vm = machine(src, Profile::A, GasModel::BlockUnit);
        vm.set_reg(1, r1);
        let exit = vm.run();
        let gas = vm.gas();
        check(exit, &vm, expected, pc, gas);
        let exit = vm.run();
        check(exit, &vm, expected, pc, gas);
        assert_eq!(vm.step(), Some(expected));
        assert_eq!((vm.pc(), vm.gas()), (pc, gas));
    }
}

#[test]
fn step_charges_the_block_on_entry_and_advances_the_pc() {
    let mut vm = machine(THREE, Profile::A, GasModel::BlockUnit);
    assert_eq!(vm.step(), None);
    assert_eq!((vm.pc(), vm.gas(), vm.regs()[1]), (3, GAS - 3, 1));
    assert_eq!(vm.step(), None);
    assert_eq!((vm.pc(), vm.gas(), vm.regs()[2]), (6, GAS - 3, 2));
    assert_eq!(vm.step(), Some(Exit::Trap));
    assert_eq!((vm.pc(), vm.gas()), (6, GAS - 3));
}

#[test]
fn stepping_reaches_the_same_state_as_running() {
    let loop_src = "load_imm r1, 3\nfallthrough\nadd_imm_64 r1, r1, -1\n.inst 82, 0x01, 0xFD\ntrap";
    let cases: [(&str, u64, usize); 3] = [(loop_src, 0, 9), (DJUMP, 2, 5), (LIJI, HALT, 1)];
    for (src, r1, steps) in cases {
        let mut by_run = machine(src, Profile::A, GasModel::BlockUnit);
        let mut by_step = machine(src, Profile::A, GasModel::BlockUnit);
        by_run.set_reg(1, r1);
        by_step.set_reg(1, r1);
        let exit = by_run.run();
        let (step_exit, n) = run_by_steps(&mut by_step);
        assert_eq!(step_exit, exit, "{src}");
        assert_eq!(n, steps, "{src}");
        assert_eq!((by_step.pc(), by_step.gas(), by_step.regs()), (by_run.pc(), by_run.gas(), by_run.regs()));
    }
}

#[test]
fn stepping_through_host_calls_and_page_faults_matches_running() {
    let mut by_run = machine(ECALLIS, Profile::B, GasModel::table([(0, 103)]));
    let mut by_step = machine(ECALLIS, Profile::B, GasModel::table([(0, 103)]));
    for _ in 0..3 {
        let exit = by_run.run();
        let (step_exit, _) = run_by_steps(&mut by_step);
        assert_eq!(step_exit, exit);
        assert_eq!((by_step.pc(), by_step.gas(), by_step.regs()), (by_run.pc(), by_run.gas(), by_run.regs()));
    }
    let mut vm = machine(FAULTING, Profile::A, GasModel::BlockUnit);
    assert_eq!(vm.step(), Some(Exit::PageFault(0x40000)));
    vm.map(0x40000, 4096, true).unwrap();
    assert_eq!(run_by_steps(&mut vm), (Exit::Trap, 3));
    assert_eq!((vm.pc(), vm.gas(), vm.regs()[1]), (8, GAS - 3, 1));
}
