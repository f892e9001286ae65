//! The value semantics of every ALU operation and branch condition (PVMSPEC-1 §5), each
//! defined once with its operation enum. The instruction table names, per instruction, the
//! operation and where its operands come from ([`Kind`]); the interpreter executes through
//! these, the JIT's slow path too, and tests hold the JIT's code to them.

use crate::backend::NUM_REGS;
use crate::isa::{Kind, Operands};

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

/// Picks something per operation with the operation as a compile-time constant, for code
/// monomorphised per operation (the interpreter's handlers): `op.select(s)` calls
/// `s.select::<N>()` with `N` the operation's index, and `from_index(N)` gives it back.
pub trait SelectOp {
    type Out;
    fn select<const OP: u8>(self) -> Self::Out;
}

macro_rules! operations {
    ($(#[$meta:meta])* $name:ident ($($arg:ident: $ty:ty),*) -> $out:ty {
        $( $(#[$doc:meta])* $op:ident => $body:expr, )*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $( $(#[$doc])* $op, )* }

        impl $name {
            /// Every operation, in index order.
            pub const ALL: &'static [$name] = &[$($name::$op,)*];

            /// The operation with index `n` (its `as u8`).
            #[inline(always)]
            pub const fn from_index(n: u8) -> $name {
                Self::ALL[n as usize]
            }

            /// What the operation computes.
            #[inline(always)]
            pub fn apply(self, $($arg: $ty),*) -> $out {
                match self { $($name::$op => $body,)* }
            }

            /// Calls `s.select::<N>()` with this operation's index as `N`.
            #[inline(always)]
            pub fn select<S: SelectOp>(self, s: S) -> S::Out {
                match self { $($name::$op => s.select::<{ $name::$op as u8 }>(),)* }
            }
        }
    };
}

operations! {
    /// A one-operand ALU operation (`rD ← op(rA)`).
    UnaryOp(a: u64) -> u64 {
        Move => a,
        CountSetBits64 => a.count_ones() as u64,
        CountSetBits32 => (a as u32).count_ones() as u64,
        LeadingZeroBits64 => a.leading_zeros() as u64,
        LeadingZeroBits32 => (a as u32).leading_zeros() as u64,
        TrailingZeroBits64 => a.trailing_zeros() as u64,
        TrailingZeroBits32 => (a as u32).trailing_zeros() as u64,
        SignExtend8 => a as u8 as i8 as i64 as u64,
        SignExtend16 => a as u16 as i16 as i64 as u64,
        ZeroExtend16 => a as u16 as u64,
        ReverseBytes => a.swap_bytes(),
    }
}

operations! {
    /// A two-operand ALU operation `op(a, b)`; `old` is the destination's value before, which
    /// the conditional moves keep.
    BinaryOp(a: u64, b: u64, old: u64) -> u64 {
        Add32 => x32(a.wrapping_add(b)),
        Sub32 => x32(a.wrapping_sub(b)),
        Mul32 => x32(a.wrapping_mul(b)),
        DivU32 => match b as u32 {
            0 => u64::MAX,
            d => x32(((a as u32) / d) as u64),
        },
        DivS32 => match s32(b) {
            0 => u64::MAX,
            d => from_i32(s32(a).wrapping_div(d)),
        },
        RemU32 => match b as u32 {
            0 => x32(a),
            d => x32(((a as u32) % d) as u64),
        },
        RemS32 => match s32(b) {
            0 => from_i32(s32(a)),
            d => from_i32(s32(a).wrapping_rem(d)),
        },
        ShloL32 => x32(((a as u32) << (b & 31)) as u64),
        ShloR32 => x32(((a as u32) >> (b & 31)) as u64),
        SharR32 => from_i32(s32(a) >> (b & 31)),
        Add64 => a.wrapping_add(b),
        Sub64 => a.wrapping_sub(b),
        Mul64 => a.wrapping_mul(b),
        DivU64 => a.checked_div(b).unwrap_or(u64::MAX),
        DivS64 => match s64(b) {
            0 => u64::MAX,
            d => s64(a).wrapping_div(d) as u64,
        },
        RemU64 => a.checked_rem(b).unwrap_or(a),
        RemS64 => match s64(b) {
            0 => a,
            d => s64(a).wrapping_rem(d) as u64,
        },
        ShloL64 => a << (b & 63),
        ShloR64 => a >> (b & 63),
        SharR64 => (s64(a) >> (b & 63)) as u64,
        And => a & b,
        Xor => a ^ b,
        Or => a | b,
        MulUpperSS => ((s64(a) as i128 * s64(b) as i128) >> 64) as u64,
        MulUpperUU => ((a as u128 * b as u128) >> 64) as u64,
        MulUpperSU => ((s64(a) as i128 * b as i128) >> 64) as u64,
        SetLtU => (a < b) as u64,
        SetLtS => (s64(a) < s64(b)) as u64,
        CmovIz => if b == 0 { a } else { old },
        CmovNz => if b != 0 { a } else { old },
        RotL64 => a.rotate_left((b & 63) as u32),
        RotL32 => x32((a as u32).rotate_left((b & 31) as u32) as u64),
        RotR64 => a.rotate_right((b & 63) as u32),
        RotR32 => x32((a as u32).rotate_right((b & 31) as u32) as u64),
        AndInv => a & !b,
        OrInv => a | !b,
        Xnor => !(a ^ b),
        Max => s64(a).max(s64(b)) as u64,
        MaxU => a.max(b),
        Min => s64(a).min(s64(b)) as u64,
        MinU => a.min(b),
    }
}

operations! {
    /// A branch condition `a cond b`.
    Cond(a: u64, b: u64) -> bool {
        Eq => a == b,
        Ne => a != b,
        LtU => a < b,
        LeU => a <= b,
        GeU => a >= b,
        GtU => a > b,
        LtS => s64(a) < s64(b),
        LeS => s64(a) <= s64(b),
        GeS => s64(a) >= s64(b),
        GtS => s64(a) > s64(b),
    }
}

/// The register an ALU instruction writes and the value it writes there, given the register
/// file: `None` for an instruction of any other kind.
#[inline(always)]
pub fn alu(kind: Kind, regs: &[u64; NUM_REGS], ra: u8, rb: u8, rd: u8, x: u64) -> Option<(u8, u64)> {
    let reg = |r: u8| regs[r as usize];
    Some(match kind {
        Kind::Unary(op) => (rd, op.apply(reg(ra))),
        Kind::Binary { op, operands: Operands::Regs } => (rd, op.apply(reg(ra), reg(rb), reg(rd))),
        Kind::Binary { op, operands: Operands::RegImm } => (ra, op.apply(reg(rb), x, reg(ra))),
        Kind::Binary { op, operands: Operands::ImmReg } => (ra, op.apply(x, reg(rb), reg(ra))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Op;

    // Each instruction through its table kind, with its operands in registers 1-3.
    fn three_reg(op: Op, a: u64, b: u64, old: u64) -> u64 {
        let regs = [0, a, b, old, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (dst, v) = alu(op.kind(), &regs, 1, 2, 3, 0).unwrap();
        assert_eq!(dst, 3);
        v
    }

    fn reg_imm(op: Op, b: u64, x: u64, old: u64) -> u64 {
        let regs = [0, old, b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (dst, v) = alu(op.kind(), &regs, 1, 2, 3, x).unwrap();
        assert_eq!(dst, 1);
        v
    }

    fn two_reg(op: Op, a: u64) -> u64 {
        let regs = [0, a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (dst, v) = alu(op.kind(), &regs, 1, 2, 3, 0).unwrap();
        assert_eq!(dst, 3);
        v
    }

    fn branch_taken(op: Op, a: u64, b: u64) -> bool {
        match op.kind() {
            Kind::Branch { cond, .. } => cond.apply(a, b),
            kind => panic!("{op} is {kind:?}"),
        }
    }

    #[test]
    fn from_index_inverts_the_index() {
        for (i, &op) in BinaryOp::ALL.iter().enumerate() {
            assert_eq!(op as usize, i);
            assert_eq!(BinaryOp::from_index(i as u8), op);
        }
        for (i, &op) in UnaryOp::ALL.iter().enumerate() {
            assert_eq!(UnaryOp::from_index(i as u8), op);
        }
        for (i, &cond) in Cond::ALL.iter().enumerate() {
            assert_eq!(Cond::from_index(i as u8), cond);
        }
    }

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
