//! Fixed encodings of the x86-64 instructions the compiler emits most. Each is built in a
//! 128-bit integer and appended with one copy ([`super::emit::Emitter::put`]), where dynasm's
//! runtime encoder pushes byte by byte and works out the register-dependent parts each time.
//!
//! Every function produces exactly the bytes dynasm produces for the same instruction written
//! with dynamic registers (a REX prefix even when none is needed, a SIB byte in every
//! `[base + disp]` operand), so moving an instruction from one to the other changes no
//! compiled code. The tests compare the two for every register.

/// One encoded instruction: its bytes in little-endian order in `bits` (built in a register,
/// written with one copy), `len` of them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Enc {
    pub bits: u128,
    pub len: usize,
}

impl Enc {
    #[inline(always)]
    fn new() -> Enc {
        Enc { bits: 0, len: 0 }
    }

    /// Appends the low `n` bytes of `v`.
    #[inline(always)]
    fn bytes(self, v: u64, n: usize) -> Enc {
        // No encoding here is longer than 15 bytes (x86's limit; the longest here, a GS store
        // of an immediate with a 32-bit displacement, has 14); the mask keeps the shift in
        // range without a check in release builds.
        debug_assert!(self.len + n <= 15, "x86 instructions are at most 15 bytes");
        Enc { bits: self.bits | (v as u128) << (8 * (self.len & 15)), len: self.len + n }
    }

    #[inline(always)]
    fn u8(self, b: u8) -> Enc {
        self.bytes(u64::from(b), 1)
    }

    #[inline(always)]
    fn i16(self, v: i16) -> Enc {
        self.bytes(u64::from(v as u16), 2)
    }

    #[inline(always)]
    fn i32(self, v: i32) -> Enc {
        self.bytes(u64::from(v as u32), 4)
    }

    #[inline(always)]
    fn i64(self, v: i64) -> Enc {
        self.bytes(v as u64, 8)
    }

    /// REX with W and the high bits of the registers in R, X and B; always emitted.
    #[inline(always)]
    fn rex(self, w: bool, r: u8, x: u8, b: u8) -> Enc {
        self.u8(0x40 | (w as u8) << 3 | (r >> 3 & 1) << 2 | (x >> 3 & 1) << 1 | (b >> 3 & 1))
    }

    #[inline(always)]
    fn modrm(self, md: u8, reg: u8, rm: u8) -> Enc {
        self.u8(md << 6 | (reg & 7) << 3 | (rm & 7))
    }

    /// The encoded bytes.
    #[cfg(test)]
    pub fn as_slice(&self) -> Vec<u8> {
        self.bits.to_le_bytes()[..self.len].to_vec()
    }
}

/// A guest memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mem {
    /// `[r15 + rcx]`: the guest base plus the 32-bit address in `ecx`.
    Base,
    /// `gs:[reg32 + disp]`, with an 8-bit displacement when it fits, else a 32-bit one: the
    /// size is worked out by arithmetic instead of a branch (whether a guest access's offset
    /// fits in a byte changes from access to access, and a branch on it was mispredicted).
    Gs(u8, i32),
}

/// Legacy prefixes, REX (`reg` in its R field), `opcode`, then ModRM, SIB and displacement
/// of the memory operand.
#[inline(always)]
fn mem_op(mem: Mem, size16: bool, w: bool, opcode: &[u8], reg: u8) -> Enc {
    // Each operand form is encoded whole, so that every byte's position is a constant.
    let op = |e: Enc, base: u8| {
        let mut e = if size16 { e.u8(0x66) } else { e }.rex(w, reg, 0, base);
        for &b in opcode {
            e = e.u8(b);
        }
        e
    };
    match mem {
        // mod 00, SIB: scale 1, index rcx, base r15.
        Mem::Base => op(Enc::new(), 15).modrm(0, reg, 4).u8(0x0F),
        // GS and address-size prefixes; SIB without an index.
        Mem::Gs(base, d) => {
            // ModRM mod 1 with one displacement byte, or mod 2 with four.
            let wide = u8::from(i32::from(d as i8) != d);
            let n = 1 + 3 * usize::from(wide);
            let disp = u64::from(d as u32) & (u64::MAX >> (64 - 8 * n));
            op(Enc::new().u8(0x65).u8(0x67), base).modrm(1 + wide, reg, 4).u8(0x20 | (base & 7)).bytes(disp, n)
        }
    }
}

/// Load of `bytes` (1, 2, 4 or 8) into `dst`, zero- or sign-extended to 64 bits.
#[inline(always)]
pub(crate) fn load(dst: u8, mem: Mem, bytes: u32, signed: bool) -> Enc {
    match (bytes, signed) {
        (1, false) => mem_op(mem, false, false, &[0x0F, 0xB6], dst),
        (1, true) => mem_op(mem, false, true, &[0x0F, 0xBE], dst),
        (2, false) => mem_op(mem, false, false, &[0x0F, 0xB7], dst),
        (2, true) => mem_op(mem, false, true, &[0x0F, 0xBF], dst),
        (4, false) => mem_op(mem, false, false, &[0x8B], dst),
        (4, true) => mem_op(mem, false, true, &[0x63], dst),
        _ => mem_op(mem, false, true, &[0x8B], dst),
    }
}

/// Store of the low `bytes` (1, 2, 4 or 8) of `src`.
#[inline(always)]
pub(crate) fn store(src: u8, mem: Mem, bytes: u32) -> Enc {
    match bytes {
        1 => mem_op(mem, false, false, &[0x88], src),
        2 => mem_op(mem, true, false, &[0x89], src),
        4 => mem_op(mem, false, false, &[0x89], src),
        _ => mem_op(mem, false, true, &[0x89], src),
    }
}

/// Store of an immediate: the low `bytes` (1, 2 or 4) of `value`, or for 8 bytes `value`
/// sign-extended from 32 bits.
#[inline(always)]
pub(crate) fn store_imm(mem: Mem, bytes: u32, value: i32) -> Enc {
    match bytes {
        1 => mem_op(mem, false, false, &[0xC6], 0).u8(value as u8),
        2 => mem_op(mem, true, false, &[0xC7], 0).i16(value as i16),
        4 => mem_op(mem, false, false, &[0xC7], 0).i32(value),
        _ => mem_op(mem, false, true, &[0xC7], 0).i32(value),
    }
}

/// Register-to-register ALU operations in their `r/m, reg` form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alu {
    Add = 0x01,
    Or = 0x09,
    And = 0x21,
    Sub = 0x29,
    Xor = 0x31,
    Test = 0x85,
    Mov = 0x89,
}

/// `op dst, src`, 64-bit (`w`) or 32-bit.
#[inline(always)]
pub(crate) fn alu_rr(op: Alu, w: bool, dst: u8, src: u8) -> Enc {
    Enc::new().rex(w, src, 0, dst).u8(op as u8).modrm(3, src, dst)
}

/// `cmp a, b` (64-bit).
#[inline(always)]
pub(crate) fn cmp_rr(a: u8, b: u8) -> Enc {
    Enc::new().rex(true, a, 0, b).u8(0x3B).modrm(3, a, b)
}

/// `imul dst, src` (64-bit).
#[inline(always)]
pub(crate) fn imul_rr(dst: u8, src: u8) -> Enc {
    Enc::new().rex(true, dst, 0, src).u8(0x0F).u8(0xAF).modrm(3, dst, src)
}

/// `movsxd dst, src32`.
#[inline(always)]
pub(crate) fn movsxd(dst: u8, src: u8) -> Enc {
    Enc::new().rex(true, dst, 0, src).u8(0x63).modrm(3, dst, src)
}

/// The `/digit` of the immediate ALU group (`0x81`/`0x83`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AluImm {
    Add = 0,
    Or = 1,
    And = 4,
    Xor = 6,
    Cmp = 7,
}

/// `op dst, imm8` (64-bit, sign-extended).
#[inline(always)]
pub(crate) fn alu_ri8(op: AluImm, dst: u8, imm: i8) -> Enc {
    Enc::new().rex(true, 0, 0, dst).u8(0x83).modrm(3, op as u8, dst).u8(imm as u8)
}

/// `op dst, imm32` (64-bit, sign-extended).
#[inline(always)]
pub(crate) fn alu_ri32(op: AluImm, dst: u8, imm: i32) -> Enc {
    Enc::new().rex(true, 0, 0, dst).u8(0x81).modrm(3, op as u8, dst).i32(imm)
}

/// The `/digit` of the shift group (`0xC1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shift {
    Ror = 1,
    Shl = 4,
    Shr = 5,
    Sar = 7,
}

/// `op dst, imm8` (64-bit).
#[inline(always)]
pub(crate) fn shift_ri(op: Shift, dst: u8, amount: i8) -> Enc {
    Enc::new().rex(true, 0, 0, dst).u8(0xC1).modrm(3, op as u8, dst).u8(amount as u8)
}

/// `rorx dst, src, imm8`, 64-bit (`w`) or 32-bit (BMI2).
#[inline(always)]
pub(crate) fn rorx(w: bool, dst: u8, src: u8, amount: i8) -> Enc {
    // Three-byte VEX: inverted R and B (no index: X set), map 0F3A; W, no vvvv, L0, F2.
    let vex1 = (!dst >> 3 & 1) << 7 | 1 << 6 | (!src >> 3 & 1) << 5 | 0x03;
    Enc::new().u8(0xC4).u8(vex1).u8((w as u8) << 7 | 0x7B).u8(0xF0).modrm(3, dst, src).u8(amount as u8)
}

/// `mov dst32, imm32` (zero-extends).
#[inline(always)]
pub(crate) fn mov_r32_imm(dst: u8, imm: i32) -> Enc {
    Enc::new().rex(false, 0, 0, dst).u8(0xB8 | (dst & 7)).i32(imm)
}

/// `mov dst, imm32` (64-bit, sign-extended).
#[inline(always)]
pub(crate) fn mov_r64_simm32(dst: u8, imm: i32) -> Enc {
    Enc::new().rex(true, 0, 0, dst).u8(0xC7).modrm(3, 0, dst).i32(imm)
}

/// `mov dst, imm64`.
#[inline(always)]
pub(crate) fn mov_r64_imm64(dst: u8, imm: i64) -> Enc {
    Enc::new().rex(true, 0, 0, dst).u8(0xB8 | (dst & 7)).i64(imm)
}

/// `mov ecx, imm32` (static register: no REX).
#[inline(always)]
pub(crate) fn mov_ecx_imm(imm: i32) -> Enc {
    Enc::new().u8(0xB9).i32(imm)
}

/// `lea dst, [base + disp]`, 64-bit (`w`) or 32-bit destination; a one-byte displacement
/// when `disp` fits.
#[inline(always)]
pub(crate) fn lea_disp(w: bool, dst: u8, base: u8, disp: i32) -> Enc {
    let e = Enc::new().rex(w, dst, 0, base).u8(0x8D);
    match i8::try_from(disp) {
        Ok(d8) => e.modrm(1, dst, 4).u8(0x20 | (base & 7)).u8(d8 as u8),
        Err(_) => e.modrm(2, dst, 4).u8(0x20 | (base & 7)).i32(disp),
    }
}

/// `lea dst, [base + index]`, 64-bit (`w`) or 32-bit destination.
#[inline(always)]
pub(crate) fn lea_rr(w: bool, dst: u8, base: u8, index: u8) -> Enc {
    Enc::new().rex(w, dst, index, base).u8(0x8D).modrm(1, dst, 4).u8((index & 7) << 3 | (base & 7)).u8(0)
}

/// x86 condition codes, numbered as `j<cc>` encodes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    B = 0x2,
    Ae = 0x3,
    E = 0x4,
    Ne = 0x5,
    Be = 0x6,
    A = 0x7,
    S = 0x8,
    L = 0xC,
    Ge = 0xD,
    Le = 0xE,
    G = 0xF,
}

/// `sub QWORD [rsp], imm32` (the gas charge).
#[inline(always)]
pub(crate) fn sub_rsp_mem(imm: i32) -> Enc {
    Enc::new().u8(0x48).u8(0x81).u8(0x2C).u8(0x24).i32(imm)
}

/// The length of [`charge`].
pub(crate) const CHARGE_LEN: usize = 10;

/// What comes before a block's [`charge`]: `jmp +5` (for code that falls into the block),
/// then the charge's out-of-gas exit, a call of the runtime's routine (displacement `call`,
/// from the end of the call, which is where the charge begins). The call's return address is
/// the charge, so it names the block.
#[inline(always)]
pub(crate) fn charge_prefix(call: i32) -> Enc {
    Enc::new().u8(0xEB).u8(CALL_LEN as u8).u8(0xE8).i32(call)
}

/// The length of [`charge_prefix`].
pub(crate) const CHARGE_PREFIX_LEN: usize = 7;

/// `sub QWORD [rsp], imm32; jl` back to the call right before (see [`charge_prefix`]): a
/// block's gas charge, entered by every jump to the block. Gas left, nothing is taken.
#[inline(always)]
pub(crate) fn charge(imm: i32) -> Enc {
    sub_rsp_mem(imm).u8(0x7C).u8((-((CHARGE_LEN + CALL_LEN) as i8)) as u8)
}

/// The charge of a [`charge`] with the call before it (`CALL_LEN + CHARGE_LEN` bytes, from
/// the call), `None` for other bytes.
pub(crate) fn charged(bytes: &[u8]) -> Option<i32> {
    let imm = |at: usize| bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(i32::from_le_bytes);
    let (call, charge) = (imm(1)?, imm(CALL_LEN + 4)?);
    (bytes == charge_bytes(call, charge)).then_some(charge)
}

/// The bytes of a [`charge`] with the call before it.
fn charge_bytes(call: i32, imm: i32) -> [u8; CALL_LEN + CHARGE_LEN] {
    let prefix = charge_prefix(call).bits.to_le_bytes();
    let charge = charge(imm).bits.to_le_bytes();
    std::array::from_fn(|k| if k < CALL_LEN { prefix[2 + k] } else { charge[k - CALL_LEN] })
}

/// The length of `call rel32`, the out-of-gas exit before a [`charge`].
pub(crate) const CALL_LEN: usize = 5;

#[cfg(test)]
mod tests {
    // dynasm's dynamic-register operands (`Rq(n)`) convert the register number with `.into()`.
    #![allow(clippy::useless_conversion)]

    use dynasmrt::{dynasm, x64::X64Relocation, DynasmApi, DynasmLabelApi, VecAssembler};

    use super::*;

    fn asm(f: impl FnOnce(&mut VecAssembler<X64Relocation>)) -> Vec<u8> {
        let mut a = VecAssembler::<X64Relocation>::new(0);
        f(&mut a);
        a.finalize().unwrap()
    }

    const IMM32: [i32; 6] = [0, 1, -1, 127, -129, 0x1234_5678];
    /// Displacements of both sizes and at both ends of each.
    const DISP: [i32; 11] = [0, 1, -1, 127, -128, 128, -129, 1000, -0x7000_0000, i32::MAX, i32::MIN];

    /// Every register except rsp, which the compiler never names dynamically.
    fn regs() -> impl Iterator<Item = u8> {
        (0u8..16).filter(|&r| r != 4)
    }

    fn mems() -> Vec<Mem> {
        let mut out = vec![Mem::Base];
        for r in regs() {
            out.extend(DISP.map(|d| Mem::Gs(r, d)));
        }
        out
    }

    /// Whether `d` is encoded in one byte.
    fn narrow(d: i32) -> bool {
        i8::try_from(d).is_ok()
    }

    #[test]
    fn loads_match_dynasm() {
        for mem in mems() {
            for r in regs() {
                for (bytes, signed) in [(1, false), (1, true), (2, false), (2, true), (4, false), (4, true), (8, false)]
                {
                    let expected = asm(|a| match (mem, bytes, signed) {
                        (Mem::Base, 1, false) => dynasm!(a ; .arch x64 ; movzx Rd(r), BYTE [r15 + rcx]),
                        (Mem::Base, 1, true) => dynasm!(a ; .arch x64 ; movsx Rq(r), BYTE [r15 + rcx]),
                        (Mem::Base, 2, false) => dynasm!(a ; .arch x64 ; movzx Rd(r), WORD [r15 + rcx]),
                        (Mem::Base, 2, true) => dynasm!(a ; .arch x64 ; movsx Rq(r), WORD [r15 + rcx]),
                        (Mem::Base, 4, false) => dynasm!(a ; .arch x64 ; mov Rd(r), DWORD [r15 + rcx]),
                        (Mem::Base, 4, true) => dynasm!(a ; .arch x64 ; movsxd Rq(r), DWORD [r15 + rcx]),
                        (Mem::Base, _, _) => dynasm!(a ; .arch x64 ; mov Rq(r), QWORD [r15 + rcx]),
                        (Mem::Gs(b, d), 1, false) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs movzx Rd(r), BYTE [BYTE Rd(b) + d as i8])
                        }
                        (Mem::Gs(b, d), 1, true) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs movsx Rq(r), BYTE [BYTE Rd(b) + d as i8])
                        }
                        (Mem::Gs(b, d), 2, false) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs movzx Rd(r), WORD [BYTE Rd(b) + d as i8])
                        }
                        (Mem::Gs(b, d), 2, true) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs movsx Rq(r), WORD [BYTE Rd(b) + d as i8])
                        }
                        (Mem::Gs(b, d), 4, false) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov Rd(r), DWORD [BYTE Rd(b) + d as i8])
                        }
                        (Mem::Gs(b, d), 4, true) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs movsxd Rq(r), DWORD [BYTE Rd(b) + d as i8])
                        }
                        (Mem::Gs(b, d), _, _) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov Rq(r), QWORD [BYTE Rd(b) + d as i8])
                        }
                        (Mem::Gs(b, d), 1, false) => dynasm!(a ; .arch x64 ; gs movzx Rd(r), BYTE [Rd(b) + d]),
                        (Mem::Gs(b, d), 1, true) => dynasm!(a ; .arch x64 ; gs movsx Rq(r), BYTE [Rd(b) + d]),
                        (Mem::Gs(b, d), 2, false) => dynasm!(a ; .arch x64 ; gs movzx Rd(r), WORD [Rd(b) + d]),
                        (Mem::Gs(b, d), 2, true) => dynasm!(a ; .arch x64 ; gs movsx Rq(r), WORD [Rd(b) + d]),
                        (Mem::Gs(b, d), 4, false) => dynasm!(a ; .arch x64 ; gs mov Rd(r), DWORD [Rd(b) + d]),
                        (Mem::Gs(b, d), 4, true) => dynasm!(a ; .arch x64 ; gs movsxd Rq(r), DWORD [Rd(b) + d]),
                        (Mem::Gs(b, d), _, _) => dynasm!(a ; .arch x64 ; gs mov Rq(r), QWORD [Rd(b) + d]),
                    });
                    assert_eq!(load(r, mem, bytes, signed).as_slice(), expected, "load {bytes} {signed} r{r} {mem:?}");
                }
            }
        }
    }

    #[test]
    fn stores_match_dynasm() {
        for mem in mems() {
            for r in regs() {
                for bytes in [1, 2, 4, 8] {
                    let expected = asm(|a| match (mem, bytes) {
                        (Mem::Base, 1) => dynasm!(a ; .arch x64 ; mov BYTE [r15 + rcx], Rb(r)),
                        (Mem::Base, 2) => dynasm!(a ; .arch x64 ; mov WORD [r15 + rcx], Rw(r)),
                        (Mem::Base, 4) => dynasm!(a ; .arch x64 ; mov DWORD [r15 + rcx], Rd(r)),
                        (Mem::Base, _) => dynasm!(a ; .arch x64 ; mov QWORD [r15 + rcx], Rq(r)),
                        (Mem::Gs(b, d), 1) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov BYTE [BYTE Rd(b) + d as i8], Rb(r))
                        }
                        (Mem::Gs(b, d), 2) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov WORD [BYTE Rd(b) + d as i8], Rw(r))
                        }
                        (Mem::Gs(b, d), 4) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov DWORD [BYTE Rd(b) + d as i8], Rd(r))
                        }
                        (Mem::Gs(b, d), _) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov QWORD [BYTE Rd(b) + d as i8], Rq(r))
                        }
                        (Mem::Gs(b, d), 1) => dynasm!(a ; .arch x64 ; gs mov BYTE [Rd(b) + d], Rb(r)),
                        (Mem::Gs(b, d), 2) => dynasm!(a ; .arch x64 ; gs mov WORD [Rd(b) + d], Rw(r)),
                        (Mem::Gs(b, d), 4) => dynasm!(a ; .arch x64 ; gs mov DWORD [Rd(b) + d], Rd(r)),
                        (Mem::Gs(b, d), _) => dynasm!(a ; .arch x64 ; gs mov QWORD [Rd(b) + d], Rq(r)),
                    });
                    assert_eq!(store(r, mem, bytes).as_slice(), expected, "store {bytes} r{r} {mem:?}");
                }
            }
            for v in IMM32 {
                for bytes in [1, 2, 4, 8] {
                    let expected = asm(|a| match (mem, bytes) {
                        (Mem::Base, 1) => dynasm!(a ; .arch x64 ; mov BYTE [r15 + rcx], v as i8),
                        (Mem::Base, 2) => dynasm!(a ; .arch x64 ; mov WORD [r15 + rcx], v as i16),
                        (Mem::Base, 4) => dynasm!(a ; .arch x64 ; mov DWORD [r15 + rcx], v),
                        (Mem::Base, _) => dynasm!(a ; .arch x64 ; mov QWORD [r15 + rcx], v),
                        (Mem::Gs(b, d), 1) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov BYTE [BYTE Rd(b) + d as i8], v as i8)
                        }
                        (Mem::Gs(b, d), 2) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov WORD [BYTE Rd(b) + d as i8], v as i16)
                        }
                        (Mem::Gs(b, d), 4) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov DWORD [BYTE Rd(b) + d as i8], v)
                        }
                        (Mem::Gs(b, d), _) if narrow(d) => {
                            dynasm!(a ; .arch x64 ; gs mov QWORD [BYTE Rd(b) + d as i8], v)
                        }
                        (Mem::Gs(b, d), 1) => dynasm!(a ; .arch x64 ; gs mov BYTE [Rd(b) + d], v as i8),
                        (Mem::Gs(b, d), 2) => dynasm!(a ; .arch x64 ; gs mov WORD [Rd(b) + d], v as i16),
                        (Mem::Gs(b, d), 4) => dynasm!(a ; .arch x64 ; gs mov DWORD [Rd(b) + d], v),
                        (Mem::Gs(b, d), _) => dynasm!(a ; .arch x64 ; gs mov QWORD [Rd(b) + d], v),
                    });
                    assert_eq!(store_imm(mem, bytes, v).as_slice(), expected, "store_imm {bytes} {v} {mem:?}");
                }
            }
        }
    }

    #[test]
    fn register_forms_match_dynasm() {
        for d in regs() {
            for s in regs() {
                let check = |enc: Enc, expected: Vec<u8>, what: &str| {
                    assert_eq!(enc.as_slice(), expected, "{what} r{d} r{s}");
                };
                check(alu_rr(Alu::Mov, true, d, s), asm(|a| dynasm!(a ; .arch x64 ; mov Rq(d), Rq(s))), "mov64");
                check(alu_rr(Alu::Mov, false, d, s), asm(|a| dynasm!(a ; .arch x64 ; mov Rd(d), Rd(s))), "mov32");
                check(alu_rr(Alu::Add, true, d, s), asm(|a| dynasm!(a ; .arch x64 ; add Rq(d), Rq(s))), "add");
                check(alu_rr(Alu::Sub, true, d, s), asm(|a| dynasm!(a ; .arch x64 ; sub Rq(d), Rq(s))), "sub");
                check(alu_rr(Alu::Sub, false, d, s), asm(|a| dynasm!(a ; .arch x64 ; sub Rd(d), Rd(s))), "sub32");
                check(alu_rr(Alu::And, true, d, s), asm(|a| dynasm!(a ; .arch x64 ; and Rq(d), Rq(s))), "and");
                check(alu_rr(Alu::Or, true, d, s), asm(|a| dynasm!(a ; .arch x64 ; or Rq(d), Rq(s))), "or");
                check(alu_rr(Alu::Xor, true, d, s), asm(|a| dynasm!(a ; .arch x64 ; xor Rq(d), Rq(s))), "xor");
                check(alu_rr(Alu::Xor, false, d, s), asm(|a| dynasm!(a ; .arch x64 ; xor Rd(d), Rd(s))), "xor32");
                check(alu_rr(Alu::Test, true, d, s), asm(|a| dynasm!(a ; .arch x64 ; test Rq(d), Rq(s))), "test");
                check(cmp_rr(d, s), asm(|a| dynasm!(a ; .arch x64 ; cmp Rq(d), Rq(s))), "cmp");
                check(imul_rr(d, s), asm(|a| dynasm!(a ; .arch x64 ; imul Rq(d), Rq(s))), "imul");
                check(movsxd(d, s), asm(|a| dynasm!(a ; .arch x64 ; movsxd Rq(d), Rd(s))), "movsxd");
                for i in regs() {
                    check(lea_rr(true, d, s, i), asm(|a| dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(s) + Rq(i)])), "lea64");
                    check(
                        lea_rr(false, d, s, i),
                        asm(|a| dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(s) + Rq(i)])),
                        "lea32",
                    );
                }
                for v in IMM32 {
                    let expected = match i8::try_from(v) {
                        Ok(v8) => asm(|a| dynasm!(a ; .arch x64 ; lea Rq(d), [BYTE Rq(s) + v8])),
                        Err(_) => asm(|a| dynasm!(a ; .arch x64 ; lea Rq(d), [Rq(s) + v])),
                    };
                    check(lea_disp(true, d, s, v), expected, "lea64 disp");
                    let expected = match i8::try_from(v) {
                        Ok(v8) => asm(|a| dynasm!(a ; .arch x64 ; lea Rd(d), [BYTE Rq(s) + v8])),
                        Err(_) => asm(|a| dynasm!(a ; .arch x64 ; lea Rd(d), [Rq(s) + v])),
                    };
                    check(lea_disp(false, d, s, v), expected, "lea32 disp");
                }
            }
        }
    }

    #[test]
    fn immediate_forms_match_dynasm() {
        for d in regs() {
            for v in IMM32 {
                let check = |enc: Enc, expected: Vec<u8>, what: &str| {
                    assert_eq!(enc.as_slice(), expected, "{what} r{d} {v}");
                };
                let v8 = v as i8;
                check(alu_ri8(AluImm::Add, d, v8), asm(|a| dynasm!(a ; .arch x64 ; add Rq(d), BYTE v8)), "add8");
                check(alu_ri8(AluImm::Or, d, v8), asm(|a| dynasm!(a ; .arch x64 ; or Rq(d), BYTE v8)), "or8");
                check(alu_ri8(AluImm::And, d, v8), asm(|a| dynasm!(a ; .arch x64 ; and Rq(d), BYTE v8)), "and8");
                check(alu_ri8(AluImm::Xor, d, v8), asm(|a| dynasm!(a ; .arch x64 ; xor Rq(d), BYTE v8)), "xor8");
                check(alu_ri32(AluImm::Add, d, v), asm(|a| dynasm!(a ; .arch x64 ; add Rq(d), DWORD v)), "add32");
                check(alu_ri32(AluImm::Or, d, v), asm(|a| dynasm!(a ; .arch x64 ; or Rq(d), DWORD v)), "or32");
                check(alu_ri32(AluImm::And, d, v), asm(|a| dynasm!(a ; .arch x64 ; and Rq(d), DWORD v)), "and32");
                check(alu_ri32(AluImm::Xor, d, v), asm(|a| dynasm!(a ; .arch x64 ; xor Rq(d), DWORD v)), "xor32");
                check(alu_ri32(AluImm::Cmp, d, v), asm(|a| dynasm!(a ; .arch x64 ; cmp Rq(d), DWORD v)), "cmp32");
                let s = (v & 63) as i8;
                check(shift_ri(Shift::Shl, d, s), asm(|a| dynasm!(a ; .arch x64 ; shl Rq(d), s)), "shl");
                check(shift_ri(Shift::Shr, d, s), asm(|a| dynasm!(a ; .arch x64 ; shr Rq(d), s)), "shr");
                check(shift_ri(Shift::Sar, d, s), asm(|a| dynasm!(a ; .arch x64 ; sar Rq(d), s)), "sar");
                check(shift_ri(Shift::Ror, d, s), asm(|a| dynasm!(a ; .arch x64 ; ror Rq(d), s)), "ror");
                for src in regs() {
                    check(rorx(true, d, src, s), asm(|a| dynasm!(a ; .arch x64 ; rorx Rq(d), Rq(src), s)), "rorx64");
                    let s32 = s & 31;
                    check(
                        rorx(false, d, src, s32),
                        asm(|a| dynasm!(a ; .arch x64 ; rorx Rd(d), Rd(src), s32)),
                        "rorx32",
                    );
                }
                check(mov_r32_imm(d, v), asm(|a| dynasm!(a ; .arch x64 ; mov Rd(d), v)), "mov32 imm");
                check(mov_r64_simm32(d, v), asm(|a| dynasm!(a ; .arch x64 ; mov Rq(d), v)), "mov64 imm32");
                let wide = (v as i64) << 20 | 0x5a5;
                check(mov_r64_imm64(d, wide), asm(|a| dynasm!(a ; .arch x64 ; mov Rq(d), QWORD wide)), "mov64 imm64");
            }
        }
        for v in IMM32 {
            assert_eq!(mov_ecx_imm(v).as_slice(), asm(|a| dynasm!(a ; .arch x64 ; mov ecx, v)));
            assert_eq!(sub_rsp_mem(v).as_slice(), asm(|a| dynasm!(a ; .arch x64 ; sub QWORD [rsp], v)));
            let theirs = asm(|a| {
                let routine = a.new_dynamic_label();
                dynasm!(a
                    ; .arch x64
                    ; jmp BYTE >entry
                    ; exit:
                    ; call =>routine
                    ; entry:
                    ; sub QWORD [rsp], v
                    ; jl BYTE <exit
                    ; =>routine
                );
            });
            // dynasm's call goes to the end of the charge.
            let mut ours = charge_prefix(CHARGE_LEN as i32).as_slice().to_vec();
            ours.extend_from_slice(&charge(v).as_slice());
            assert_eq!(ours, theirs);
            assert_eq!((charge_prefix(0).len, charge(v).len), (CHARGE_PREFIX_LEN, CHARGE_LEN));
            assert_eq!(charge_prefix(v).as_slice()[3..], v.to_le_bytes());
            // Read back from its bytes (from the call on), and from no others.
            let mut bytes = charge_prefix(-v).as_slice()[2..].to_vec();
            bytes.extend_from_slice(&charge(v).as_slice());
            assert_eq!(charged(&bytes), Some(v));
            assert_eq!(charged(&bytes[..bytes.len() - 1]), None);
            for k in [0, 5, 6, 7, 8, 13, 14] {
                let mut other = bytes.clone();
                other[k] ^= 1;
                assert_eq!(charged(&other), None, "byte {k} changed");
            }
        }
    }
}
