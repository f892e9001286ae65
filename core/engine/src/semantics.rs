//! The value semantics of every register-computing instruction (PVMSPEC-1 §5), as pure
//! functions. The interpreter executes through these; other backends use them as the
//! reference for their own code and for constant folding.

use crate::isa::Op;

/// `X32(v)`: truncate to 32 bits, then sign-extend to 64.
#[inline(always)]
pub fn x32(v: u64) -> u64 {
    v as u32 as i32 as i64 as u64
}

#[inline(always)]
fn s64(v: u64) -> i64 {
    v as i64
}

#[inline(always)]
fn s32(v: u64) -> i32 {
    v as u32 as i32
}

#[inline(always)]
fn from_i32(v: i32) -> u64 {
    v as i64 as u64
}

/// Two-register instructions: result written to `rD` from source `a`.
#[inline(always)]
pub fn two_reg(op: Op, a: u64) -> u64 {
    match op {
        Op::MoveReg => a,
        Op::CountSetBits64 => a.count_ones() as u64,
        Op::CountSetBits32 => (a as u32).count_ones() as u64,
        Op::LeadingZeroBits64 => a.leading_zeros() as u64,
        Op::LeadingZeroBits32 => (a as u32).leading_zeros() as u64,
        Op::TrailingZeroBits64 => a.trailing_zeros() as u64,
        Op::TrailingZeroBits32 => (a as u32).trailing_zeros() as u64,
        Op::SignExtend8 => a as u8 as i8 as i64 as u64,
        Op::SignExtend16 => a as u16 as i16 as i64 as u64,
        Op::ZeroExtend16 => a as u16 as u64,
        Op::ReverseBytes => a.swap_bytes(),
        _ => unreachable!("{op} is not a two-register instruction"),
    }
}

/// Two-register-plus-immediate ALU instructions: `φ[rA] ← f(B, X)`; `old` is φ[rA] before
/// (for the conditional moves).
#[inline(always)]
pub fn reg_imm(op: Op, b: u64, x: u64, old: u64) -> u64 {
    match op {
        Op::AddImm32 => x32(b.wrapping_add(x)),
        Op::AndImm => b & x,
        Op::XorImm => b ^ x,
        Op::OrImm => b | x,
        Op::MulImm32 => x32(b.wrapping_mul(x)),
        Op::SetLtUImm => (b < x) as u64,
        Op::SetLtSImm => (s64(b) < s64(x)) as u64,
        Op::ShloLImm32 => x32(((b as u32) << (x & 31)) as u64),
        Op::ShloRImm32 => x32(((b as u32) >> (x & 31)) as u64),
        Op::SharRImm32 => from_i32(s32(b) >> (x & 31)),
        Op::NegAddImm32 => x32(x.wrapping_sub(b)),
        Op::SetGtUImm => (b > x) as u64,
        Op::SetGtSImm => (s64(b) > s64(x)) as u64,
        Op::ShloLImmAlt32 => x32(((x as u32) << (b & 31)) as u64),
        Op::ShloRImmAlt32 => x32(((x as u32) >> (b & 31)) as u64),
        Op::SharRImmAlt32 => from_i32(s32(x) >> (b & 31)),
        Op::CmovIzImm => {
            if b == 0 {
                x
            } else {
                old
            }
        }
        Op::CmovNzImm => {
            if b != 0 {
                x
            } else {
                old
            }
        }
        Op::AddImm64 => b.wrapping_add(x),
        Op::MulImm64 => b.wrapping_mul(x),
        Op::ShloLImm64 => b << (x & 63),
        Op::ShloRImm64 => b >> (x & 63),
        Op::SharRImm64 => (s64(b) >> (x & 63)) as u64,
        Op::NegAddImm64 => x.wrapping_sub(b),
        Op::ShloLImmAlt64 => x << (b & 63),
        Op::ShloRImmAlt64 => x >> (b & 63),
        Op::SharRImmAlt64 => (s64(x) >> (b & 63)) as u64,
        Op::RotR64Imm => b.rotate_right((x & 63) as u32),
        Op::RotR64ImmAlt => x.rotate_right((b & 63) as u32),
        Op::RotR32Imm => x32((b as u32).rotate_right((x & 31) as u32) as u64),
        Op::RotR32ImmAlt => x32((x as u32).rotate_right((b & 31) as u32) as u64),
        _ => unreachable!("{op} is not a register-immediate ALU instruction"),
    }
}

/// Three-register instructions: `φ[rD] ← f(A, B)`; `old` is φ[rD] before (cmov).
#[inline(always)]
pub fn three_reg(op: Op, a: u64, b: u64, old: u64) -> u64 {
    match op {
        Op::Add32 => x32(a.wrapping_add(b)),
        Op::Sub32 => x32(a.wrapping_sub(b)),
        Op::Mul32 => x32(a.wrapping_mul(b)),
        Op::DivU32 => match b as u32 {
            0 => u64::MAX,
            d => x32(((a as u32) / d) as u64),
        },
        Op::DivS32 => match s32(b) {
            0 => u64::MAX,
            d => from_i32(s32(a).wrapping_div(d)),
        },
        Op::RemU32 => match b as u32 {
            0 => x32(a),
            d => x32(((a as u32) % d) as u64),
        },
        Op::RemS32 => match s32(b) {
            0 => from_i32(s32(a)),
            d => from_i32(s32(a).wrapping_rem(d)),
        },
        Op::ShloL32 => x32(((a as u32) << (b & 31)) as u64),
        Op::ShloR32 => x32(((a as u32) >> (b & 31)) as u64),
        Op::SharR32 => from_i32(s32(a) >> (b & 31)),
        Op::Add64 => a.wrapping_add(b),
        Op::Sub64 => a.wrapping_sub(b),
        Op::Mul64 => a.wrapping_mul(b),
        Op::DivU64 => a.checked_div(b).unwrap_or(u64::MAX),
        Op::DivS64 => match s64(b) {
            0 => u64::MAX,
            d => s64(a).wrapping_div(d) as u64,
        },
        Op::RemU64 => a.checked_rem(b).unwrap_or(a),
        Op::RemS64 => match s64(b) {
            0 => a,
            d => s64(a).wrapping_rem(d) as u64,
        },
        Op::ShloL64 => a << (b & 63),
        Op::ShloR64 => a >> (b & 63),
        Op::SharR64 => (s64(a) >> (b & 63)) as u64,
        Op::And => a & b,
        Op::Xor => a ^ b,
        Op::Or => a | b,
        Op::MulUpperSS => ((s64(a) as i128 * s64(b) as i128) >> 64) as u64,
        Op::MulUpperUU => ((a as u128 * b as u128) >> 64) as u64,
        Op::MulUpperSU => ((s64(a) as i128 * b as i128) >> 64) as u64,
        Op::SetLtU => (a < b) as u64,
        Op::SetLtS => (s64(a) < s64(b)) as u64,
        Op::CmovIz => {
            if b == 0 {
                a
            } else {
                old
            }
        }
        Op::CmovNz => {
            if b != 0 {
                a
            } else {
                old
            }
        }
        Op::RotL64 => a.rotate_left((b & 63) as u32),
        Op::RotL32 => x32((a as u32).rotate_left((b & 31) as u32) as u64),
        Op::RotR64 => a.rotate_right((b & 63) as u32),
        Op::RotR32 => x32((a as u32).rotate_right((b & 31) as u32) as u64),
        Op::AndInv => a & !b,
        Op::OrInv => a | !b,
        Op::Xnor => !(a ^ b),
        Op::Max => s64(a).max(s64(b)) as u64,
        Op::MaxU => a.max(b),
        Op::Min => s64(a).min(s64(b)) as u64,
        Op::MinU => a.min(b),
        _ => unreachable!("{op} is not a three-register instruction"),
    }
}

/// Conditional branches: whether the branch is taken, comparing `a` with `b` (a register or
/// the sign-extended immediate).
#[inline(always)]
pub fn branch_taken(op: Op, a: u64, b: u64) -> bool {
    match op {
        Op::BranchEq | Op::BranchEqImm => a == b,
        Op::BranchNe | Op::BranchNeImm => a != b,
        Op::BranchLtU | Op::BranchLtUImm => a < b,
        Op::BranchLeUImm => a <= b,
        Op::BranchGeU | Op::BranchGeUImm => a >= b,
        Op::BranchGtUImm => a > b,
        Op::BranchLtS | Op::BranchLtSImm => s64(a) < s64(b),
        Op::BranchLeSImm => s64(a) <= s64(b),
        Op::BranchGeS | Op::BranchGeSImm => s64(a) >= s64(b),
        Op::BranchGtSImm => s64(a) > s64(b),
        _ => unreachable!("{op} is not a conditional branch"),
    }
}

/// Width in bytes of a load or store, and whether a load sign-extends (the table's
/// memory column).
#[inline(always)]
pub fn access_width(op: Op) -> (u32, bool) {
    match op.memory() {
        Some(access) => access.width_signed(),
        None => unreachable!("{op} does not access memory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN64: u64 = 1 << 63;
    const MIN32: u64 = 0xFFFF_FFFF_8000_0000;
    const NEG1: u64 = u64::MAX;

    #[test]
    fn thirty_two_bit_results_are_sign_extended() {
        assert_eq!(three_reg(Op::Add32, 0x7FFF_FFFF, 1, 0), MIN32);
        assert_eq!(three_reg(Op::Sub32, 0, 1, 0), NEG1);
        assert_eq!(three_reg(Op::Mul32, 0x10000, 0x8000, 0), MIN32);
        assert_eq!(three_reg(Op::DivU32, 0xFFFF_FFFF, 1, 0), NEG1);
        assert_eq!(three_reg(Op::ShloR32, 0x8000_0000, 0, 0), MIN32);
        assert_eq!(three_reg(Op::RotR32, 1, 1, 0), MIN32);
        assert_eq!(three_reg(Op::RotL32, 0x4000_0000, 1, 0), MIN32);
        assert_eq!(reg_imm(Op::NegAddImm32, 1, 0, 0), NEG1);
        assert_eq!(reg_imm(Op::MulImm32, 0x8000_0000, 1, 0), MIN32);
        assert_eq!(reg_imm(Op::AddImm32, 0xFFFF_FFFF_0000_0001, 0, 0), 1);
    }

    #[test]
    fn shift_amounts_are_masked() {
        assert_eq!(three_reg(Op::ShloL64, 1, 64, 0), 1);
        assert_eq!(three_reg(Op::ShloL64, 1, 65, 0), 2);
        assert_eq!(three_reg(Op::ShloL32, 1, 32, 0), 1);
        assert_eq!(three_reg(Op::ShloR64, MIN64, 63, 0), 1);
        assert_eq!(three_reg(Op::SharR64, MIN64, 63, 0), NEG1);
        // shar_r_32 shifts the sign-extended low 32 bits, not the 64-bit value.
        assert_eq!(three_reg(Op::SharR32, 0x0000_0000_8000_0000, 4, 0), 0xFFFF_FFFF_F800_0000);
        assert_eq!(three_reg(Op::SharR32, 0xFFFF_FFFF_0000_0010, 4, 0), 1);
        assert_eq!(reg_imm(Op::ShloLImmAlt64, 3, 1, 0), 8);
        assert_eq!(reg_imm(Op::ShloRImmAlt32, 4, 0x8000_0000, 0), 0x0800_0000);
        assert_eq!(reg_imm(Op::SharRImmAlt32, 4, 0x8000_0000, 0), 0xFFFF_FFFF_F800_0000);
        assert_eq!(reg_imm(Op::SharRImmAlt64, 1, MIN64, 0), 0xC000_0000_0000_0000);
        assert_eq!(reg_imm(Op::RotR64ImmAlt, 4, 1, 0), 1 << 60);
        assert_eq!(reg_imm(Op::RotR32ImmAlt, 1, 1, 0), MIN32);
    }

    #[test]
    fn division_edge_cases() {
        assert_eq!(three_reg(Op::DivU64, 7, 0, 0), NEG1);
        assert_eq!(three_reg(Op::DivS64, 7, 0, 0), NEG1);
        assert_eq!(three_reg(Op::DivS64, MIN64, NEG1, 0), MIN64);
        assert_eq!(three_reg(Op::RemS64, MIN64, NEG1, 0), 0);
        assert_eq!(three_reg(Op::RemU64, 7, 0, 0), 7);
        assert_eq!(three_reg(Op::RemS64, 7, 0, 0), 7);
        assert_eq!(three_reg(Op::RemS64, -7i64 as u64, 2, 0), -1i64 as u64);
        assert_eq!(three_reg(Op::RemS64, 7, -2i64 as u64, 0), 1);
        assert_eq!(three_reg(Op::DivS64, -7i64 as u64, 2, 0), -3i64 as u64);
        assert_eq!(three_reg(Op::DivS32, 0x8000_0000, 0xFFFF_FFFF, 0), MIN32);
        assert_eq!(three_reg(Op::RemS32, 0x8000_0000, 0xFFFF_FFFF, 0), 0);
        assert_eq!(three_reg(Op::DivU32, 5, 0x1_0000_0000, 0), NEG1);
        assert_eq!(three_reg(Op::RemU32, 0x1_8000_0000, 0, 0), MIN32);
        assert_eq!(three_reg(Op::RemS32, 0x1_8000_0000, 0, 0), MIN32);
        assert_eq!(three_reg(Op::RemS32, -7i64 as u64, 2, 0), NEG1);
    }

    #[test]
    fn multiply_upper_halves() {
        assert_eq!(three_reg(Op::MulUpperUU, NEG1, NEG1, 0), NEG1 - 1);
        assert_eq!(three_reg(Op::MulUpperSS, NEG1, NEG1, 0), 0);
        assert_eq!(three_reg(Op::MulUpperSS, NEG1, 1, 0), NEG1);
        assert_eq!(three_reg(Op::MulUpperSU, NEG1, NEG1, 0), NEG1);
        assert_eq!(three_reg(Op::MulUpperSU, 1, NEG1, 0), 0);
    }

    #[test]
    fn bit_counts_and_extensions() {
        assert_eq!(two_reg(Op::CountSetBits32, 0xFFFF_FFFF_0000_0001), 1);
        assert_eq!(two_reg(Op::LeadingZeroBits32, 0xFFFF_FFFF_0000_0000), 32);
        assert_eq!(two_reg(Op::LeadingZeroBits64, 0), 64);
        assert_eq!(two_reg(Op::TrailingZeroBits32, 0xFFFF_FFFF_0000_0000), 32);
        assert_eq!(two_reg(Op::TrailingZeroBits64, 0), 64);
        assert_eq!(two_reg(Op::SignExtend8, 0x1234_5680), 0xFFFF_FFFF_FFFF_FF80);
        assert_eq!(two_reg(Op::SignExtend8, 0xFF7F), 0x7F);
        assert_eq!(two_reg(Op::SignExtend16, 0x8000), 0xFFFF_FFFF_FFFF_8000);
        assert_eq!(two_reg(Op::ZeroExtend16, NEG1), 0xFFFF);
        assert_eq!(two_reg(Op::ReverseBytes, 0x0102_0304_0506_0708), 0x0807_0605_0403_0201);
    }

    #[test]
    fn comparisons_and_moves() {
        assert_eq!(reg_imm(Op::SetLtUImm, 5, NEG1, 0), 1);
        assert_eq!(reg_imm(Op::SetLtSImm, 5, NEG1, 0), 0);
        assert_eq!(reg_imm(Op::SetGtUImm, 5, 5, 0), 0);
        assert_eq!(reg_imm(Op::SetGtSImm, 0, NEG1, 0), 1);
        assert_eq!(reg_imm(Op::CmovIzImm, 0, 9, 3), 9);
        assert_eq!(reg_imm(Op::CmovNzImm, 0, 9, 3), 3);
        assert_eq!(three_reg(Op::CmovIz, 9, 0, 3), 9);
        assert_eq!(three_reg(Op::CmovNz, 9, 0, 3), 3);
        assert_eq!(three_reg(Op::Max, NEG1, 1, 0), 1);
        assert_eq!(three_reg(Op::MaxU, NEG1, 1, 0), NEG1);
        assert_eq!(three_reg(Op::Min, NEG1, 1, 0), NEG1);
        assert_eq!(three_reg(Op::MinU, NEG1, 1, 0), 1);
        assert_eq!(three_reg(Op::AndInv, 0b1100, 0b1010, 0), 0b0100);
        assert_eq!(three_reg(Op::OrInv, 0, NEG1 - 1, 0), 1);
        assert_eq!(three_reg(Op::Xnor, 0, 0, 0), NEG1);
        assert!(branch_taken(Op::BranchLtS, NEG1, 0));
        assert!(!branch_taken(Op::BranchLtU, NEG1, 0));
        assert!(branch_taken(Op::BranchLeUImm, 3, 3));
        assert!(branch_taken(Op::BranchGtSImm, 0, NEG1));
    }
}
