//! Instruction boundaries, skip and operand decoding (PVMSPEC-1 §2 and §4).

use crate::isa::{Format, Op, OpcodeRow, Profile};
use crate::starts::Starts;

/// Largest skip: an instruction has at most 24 argument bytes.
pub const MAX_SKIP: u32 = 24;

/// Code bytes with their instruction-start flags, read the way the spec reads them: bytes
/// past the end are 0 (ζ) and flags past the end are set.
#[derive(Clone, Copy)]
pub struct Code<'a> {
    pub bytes: &'a [u8],
    pub starts: &'a Starts,
}

/// One decoded instruction, before any program-level resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The instruction; `Op::Trap` for an undefined opcode, a byte that is not an instruction
    /// start, or a pc past the end of the code.
    pub op: Op,
    /// Whether the opcode byte is a defined opcode at an instruction start.
    pub defined: bool,
    pub ra: u8,
    pub rb: u8,
    pub rd: u8,
    /// First immediate (sign-extended, except `load_imm_64`'s full 8 bytes).
    pub x: u64,
    /// Second immediate.
    pub y: u64,
    /// Static jump target (`pc + offset`, wrapping), for formats with an offset.
    pub target: u32,
    /// Number of argument bytes (`skip(pc)`).
    pub skip: u32,
}

impl Decoded {
    /// The default next pc, `pc + 1 + skip`.
    pub fn next_pc(&self, pc: u32) -> u32 {
        pc.wrapping_add(1).wrapping_add(self.skip)
    }
}

/// `sext(l, x)`: sign-extends the low `8·l` bits of `x` (`l` in 0..=8).
#[inline]
pub fn sext(len: u32, x: u64) -> u64 {
    match len {
        0 => 0,
        8.. => x,
        _ => {
            let shift = 64 - 8 * len;
            (((x << shift) as i64) >> shift) as u64
        }
    }
}

/// [`sext`] for `len` in 0..=4 (every immediate and offset the decoder reads), without a
/// branch on the length: shifted up until its sign bit is bit 63 and back down
/// arithmetically, each in two steps so that length 0 (a shift by 64) gives 0.
#[inline(always)]
fn sext_short(len: u32, x: u64) -> u64 {
    debug_assert!(len <= 4);
    let s = 63 - 8 * (len & 7);
    ((((x << s) << 1) as i64 >> s) >> 1) as u64
}

#[inline]
fn reg(nibble: u8) -> u8 {
    nibble.min(12)
}

impl<'a> Code<'a> {
    pub fn new(bytes: &'a [u8], starts: &'a Starts) -> Self {
        Code { bytes, starts }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// ζ(i): the code byte at `i`, or 0 past the end.
    #[inline]
    pub fn byte(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// Whether an instruction starts at `i`; positions past the end count as starts.
    #[inline]
    pub fn is_start(&self, i: usize) -> bool {
        self.starts.get(i).unwrap_or(true)
    }

    /// `le(i, l)`: `l` bytes from `i` as a little-endian number.
    #[inline]
    pub fn le(&self, i: usize, len: u32) -> u64 {
        // One bounds test (`i` is near the code, far from overflowing).
        if let Some(word) = self.bytes.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            let value = u64::from_le_bytes(word);
            return if len >= 8 { value } else { value & ((1u64 << (8 * len)) - 1) };
        }
        self.le_near_end(i, len)
    }

    /// `sext(l, le(i, l))`: `l` (at most 4) bytes from `i`, little-endian, sign-extended. The
    /// bytes past the `l` read with them need no masking: the sign extension shifts them out.
    #[inline]
    pub fn le_sext(&self, i: usize, len: u32) -> u64 {
        if let Some(word) = self.bytes.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            return sext_short(len, u64::from_le_bytes(word));
        }
        sext_short(len, self.le_near_end(i, len))
    }

    /// [`Code::le`] within eight bytes of the end of code (rare: kept out of the decoders
    /// that inline `le`).
    #[cold]
    #[inline(never)]
    fn le_near_end(&self, i: usize, len: u32) -> u64 {
        let mut out = 0u64;
        for k in (0..len as usize).rev() {
            out = out << 8 | self.byte(i + k) as u64;
        }
        out
    }

    /// `skip(i)`: bytes until the next instruction start, capped at 24.
    #[inline]
    pub fn skip(&self, i: usize) -> u32 {
        // The next set flag (the first position past the flags when none is: those count as
        // starts).
        let next = self.starts.next_from(i + 1).max(i + 1);
        ((next - i - 1) as u32).min(MAX_SKIP)
    }

    /// The opcode defined at `pc` in `profile`, if `pc` is an instruction start holding one.
    pub fn defined_op(&self, pc: usize, profile: Profile) -> Option<Op> {
        if pc < self.len() && self.is_start(pc) {
            profile.op(self.bytes[pc])
        } else {
            None
        }
    }

    /// Decodes the instruction at `pc`. Never fails: whatever cannot be decoded is a trap.
    #[inline]
    pub fn decode(&self, pc: u32, profile: Profile) -> Decoded {
        let (p, skip) = (pc as usize, self.skip(pc as usize));
        if p < self.len() && self.is_start(p) {
            self.decode_start(pc, skip, profile.row(self.bytes[p]))
        } else {
            Decoded { op: Op::Trap, defined: false, ra: 0, rb: 0, rd: 0, x: 0, y: 0, target: 0, skip }
        }
    }

    /// [`Code::decode`] at an instruction start inside the code, for a caller that already
    /// knows `skip(pc)` and has looked up the opcode byte as `row`. Inlined into its callers
    /// so the decoded fields go straight where they are stored.
    #[inline(always)]
    pub fn decode_start(&self, pc: u32, skip: u32, row: &OpcodeRow) -> Decoded {
        self.decode_format(pc, skip, row.op, row.defined, row.format, true)
    }

    /// [`Code::decode_start`] for an instruction whose opcode's row is taken apart: for a
    /// caller that knows the format as a constant. Without `clamp`, a register number taken
    /// from a nibble is the nibble as it is (13 to 15 not yet read as 12), for a caller that
    /// maps every nibble itself; `rD` of the three-register format, a whole byte, is read as
    /// always.
    #[inline(always)]
    pub fn decode_format(&self, pc: u32, skip: u32, op: Op, defined: bool, format: Format, clamp: bool) -> Decoded {
        let nibble = |n: u8| if clamp { reg(n) } else { n };
        debug_assert_eq!(skip, self.skip(pc as usize));
        debug_assert!(self.is_start(pc as usize));
        let p = pc as usize;
        let mut d = Decoded { op, defined, ra: 0, rb: 0, rd: 0, x: 0, y: 0, target: 0, skip };
        let b1 = self.byte(p + 1);
        let offset = |at: usize, len: u32| pc.wrapping_add(self.le_sext(at, len) as u32);
        match format {
            Format::NoArgs => {}
            Format::OneImm => {
                let lx = skip.min(4);
                d.x = self.le_sext(p + 1, lx);
            }
            Format::RegExtImm => {
                d.ra = nibble(b1 & 15);
                d.x = self.le(p + 2, 8);
            }
            Format::TwoImm => {
                let lx = (b1 as u32 & 7).min(4);
                let ly = skip.saturating_sub(lx + 1).min(4);
                d.x = self.le_sext(p + 2, lx);
                d.y = self.le_sext(p + 2 + lx as usize, ly);
            }
            Format::OneOffset => {
                let lx = skip.min(4);
                d.target = offset(p + 1, lx);
            }
            Format::RegImm => {
                d.ra = nibble(b1 & 15);
                let lx = skip.saturating_sub(1).min(4);
                d.x = self.le_sext(p + 2, lx);
            }
            Format::RegTwoImm | Format::RegImmOffset => {
                d.ra = nibble(b1 & 15);
                let lx = (b1 as u32 >> 4 & 7).min(4);
                let ly = skip.saturating_sub(lx + 1).min(4);
                d.x = self.le_sext(p + 2, lx);
                if format == Format::RegTwoImm {
                    d.y = self.le_sext(p + 2 + lx as usize, ly);
                } else {
                    d.target = offset(p + 2 + lx as usize, ly);
                }
            }
            Format::TwoReg => {
                d.rd = nibble(b1 & 15);
                d.ra = nibble(b1 >> 4);
            }
            Format::TwoRegImm | Format::TwoRegOffset => {
                d.ra = nibble(b1 & 15);
                d.rb = nibble(b1 >> 4);
                let lx = skip.saturating_sub(1).min(4);
                if format == Format::TwoRegImm {
                    d.x = self.le_sext(p + 2, lx);
                } else {
                    d.target = offset(p + 2, lx);
                }
            }
            Format::TwoRegTwoImm => {
                d.ra = nibble(b1 & 15);
                d.rb = nibble(b1 >> 4);
                let lx = (self.byte(p + 2) as u32 & 7).min(4);
                let ly = skip.saturating_sub(lx + 2).min(4);
                d.x = self.le_sext(p + 3, lx);
                d.y = self.le_sext(p + 3 + lx as usize, ly);
            }
            Format::ThreeReg => {
                d.ra = nibble(b1 & 15);
                d.rb = nibble(b1 >> 4);
                d.rd = reg(self.byte(p + 2));
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts_at(len: usize, at: &[usize]) -> Starts {
        (0..len).map(|i| at.contains(&i)).collect()
    }

    #[test]
    fn the_short_sign_extension_agrees_with_sext() {
        for x in [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x80_0000, 0x7FFF_FFFF, 0x8000_0000, 0xDEAD_BEEF, u64::MAX] {
            for len in 0..=4 {
                assert_eq!(sext_short(len, x), sext(len, x), "length {len}, {x:#x}");
            }
        }
    }

    #[test]
    fn sext_lengths() {
        assert_eq!(sext(0, 0xFF), 0);
        assert_eq!(sext(1, 0xFF), u64::MAX);
        assert_eq!(sext(1, 0x7F), 0x7F);
        assert_eq!(sext(2, 0x8000), 0xFFFF_FFFF_FFFF_8000);
        assert_eq!(sext(3, 0x80_0000), 0xFFFF_FFFF_FF80_0000);
        assert_eq!(sext(3, 0x7F_FFFF), 0x7F_FFFF);
        assert_eq!(sext(4, 0xDEAD_BEEF), 0xFFFF_FFFF_DEAD_BEEF);
        assert_eq!(sext(8, 0x1234), 0x1234);
    }

    #[test]
    fn a_sign_extended_read_is_the_read_then_the_extension() {
        // Bytes with the top bit set and clear, read at every offset (the last eight near
        // the end of code) with every immediate length.
        let bytes: Vec<u8> = (0..40u32).map(|k| (k * 0x9D + 0x41) as u8).collect();
        let starts = Starts::from(vec![false; bytes.len()]);
        let code = Code::new(&bytes, &starts);
        for i in 0..=bytes.len() {
            for len in 0..=4 {
                assert_eq!(code.le_sext(i, len), sext(len, code.le(i, len)), "at {i}, {len} bytes");
            }
        }
    }

    #[test]
    fn skip_is_capped_at_24_and_runs_to_the_end() {
        let bytes = vec![0u8; 40];
        let starts = starts_at(40, &[0, 30]);
        let code = Code::new(&bytes, &starts);
        assert_eq!(code.skip(0), 24);
        assert_eq!(code.skip(30), 9);
        let starts = starts_at(40, &[0, 3]);
        assert_eq!(Code::new(&bytes, &starts).skip(0), 2);
    }

    #[test]
    fn undefined_opcodes_and_non_starts_decode_as_trap() {
        let bytes = [111u8, 3, 2, 100];
        let starts = Starts::from(vec![true, true, true, false]);
        let code = Code::new(&bytes, &starts);
        assert!(code.decode(0, Profile::A).defined); // reverse_bytes in A
        assert!(!code.decode(0, Profile::B).defined); // 111 undefined in B
        assert!(!code.decode(1, Profile::A).defined); // 3 undefined in A
        assert_eq!(code.decode(1, Profile::J).op, Op::Ecall);
        assert_eq!(code.decode(2, Profile::B).op, Op::Unlikely);
        assert_eq!(code.decode(3, Profile::A).op, Op::Trap); // not a start
        assert_eq!(code.decode(10, Profile::A).op, Op::Trap); // past the end
    }

    #[test]
    fn operand_examples_from_the_spec() {
        let check = |bytes: &[u8], op: Op, f: &dyn Fn(&Decoded)| {
            let starts = starts_at(bytes.len(), &[0]);
            let d = Code::new(bytes, &starts).decode(0, Profile::A);
            assert_eq!(d.op, op);
            f(&d);
        };
        check(&[0xbe, 0x87, 0x09], Op::Add32, &|d| assert_eq!((d.ra, d.rb, d.rd), (7, 8, 9)));
        check(&[0x79, 0x78, 0x01, 0x10], Op::StoreIndU16, &|d| assert_eq!((d.ra, d.rb, d.x), (8, 7, 0x1001)));
        check(&[0x95, 0x77, 0x9c], Op::AddImm64, &|d| assert_eq!((d.ra, d.rb, d.x as i64), (7, 7, -100)));
        check(&[0x49, 0x17, 0x01, 0xaa, 0x99, 0x88, 0x77], Op::StoreImmIndU64, &|d| {
            assert_eq!((d.ra, d.x, d.y), (7, 1, 0x778899aa))
        });
        check(&[0x1e, 0x03, 0x00, 0x00, 0x02, 0x12], Op::StoreImmU8, &|d| assert_eq!((d.x, d.y), (0x20000, 0x12)));
        check(&[0xb4, 0x77, 0x02, 0xd2, 0x04, 0x01], Op::LoadImmJumpInd, &|d| {
            assert_eq!((d.ra, d.rb, d.x, d.y), (7, 7, 1234, 1))
        });
        check(&[0x28, 0xce], Op::Jump, &|d| assert_eq!(d.target, (-50i32) as u32));
        check(&[0x0a, 0xff], Op::Ecalli, &|d| assert_eq!(d.x, u64::MAX));
        check(&[0x0a, 0xff, 0x00], Op::Ecalli, &|d| assert_eq!(d.x, 255));
        check(&[0x14, 0x08, 0xef, 0xbe, 0xad, 0xde], Op::LoadImm64, &|d| assert_eq!((d.ra, d.x), (8, 0xdeadbeef)));
    }

    #[test]
    fn register_nibbles_above_12_mean_r12() {
        let bytes = [0x64u8, 0xFD];
        let d = Code::new(&bytes, &Starts::from(vec![true, false])).decode(0, Profile::A);
        assert_eq!((d.op, d.rd, d.ra), (Op::MoveReg, 12, 12));
        let bytes = [200u8, 0xEF, 0x17];
        let d = Code::new(&bytes, &Starts::from(vec![true, false, false])).decode(0, Profile::A);
        assert_eq!((d.ra, d.rb, d.rd), (12, 12, 12));
    }

    #[test]
    fn short_skip_shrinks_immediates() {
        // store_imm_u32 with lX = 4 but only 2 argument bytes: lX comes from the nibble, so X
        // reads through ζ (0x80, then zeros past the end of code) and Y gets length 0.
        let bytes = [32u8, 0x04, 0x80];
        let d = Code::new(&bytes, &Starts::from(vec![true, false, false])).decode(0, Profile::A);
        assert_eq!(d.skip, 2);
        assert_eq!(d.x, 0x80);
        assert_eq!(d.y, 0);
        // add_imm_64 with no immediate byte: X = 0.
        let bytes = [149u8, 0x21];
        let d = Code::new(&bytes, &Starts::from(vec![true, false])).decode(0, Profile::A);
        assert_eq!(d.x, 0);
    }
}
