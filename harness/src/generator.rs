//! The program generator. It draws everything from an [`arbitrary::Unstructured`], so the same
//! generator serves cargo-fuzz (fuzz input bytes) and seeded command-line runs (bytes from a
//! seeded PRNG).
//!
//! Two modes:
//! - **structured**: programs valid by construction, built as basic blocks of instructions
//!   drawn from the instruction table, ending in terminators that branch between blocks, a
//!   jump table, loads and stores aimed at mapped, read-only, unmapped and low memory, host
//!   calls, dynamic jumps (valid, invalid, halt) and loops that run until out of gas. The
//!   program stays structured ([`GenProgram`]) so a divergence can be minimised block by
//!   block and instruction by instruction;
//! - **raw**: arbitrary code bytes, bitmask and jump table, which also yields invalid
//!   encodings (register nibbles 13–15, odd skips, undefined opcodes, truncated code).

use arbitrary::{Result, Unstructured};
use javm_engine::{Blob, Format, GasModel, Op, Profile, NUM_REGS};
use std::fmt;

use crate::run::{GasChoice, RunOptions};
use crate::vectors::{Case, Chunk, Region, Step, VectorFormat};

/// Read-write region every structured program gets (two pages).
pub const RW_BASE: u32 = 0x2_0000;
/// Read-only region every structured program gets (one page, random contents).
pub const RO_BASE: u32 = 0x3_0000;
/// A region that is never mapped (page faults).
pub const UNMAPPED: u32 = 0x4_0000;
/// The halt address of dynamic jumps.
pub const HALT: u64 = 0xFFFF_0000;

/// The gas model generated programs run with under a choice: `auto` is unit cost per
/// block, since only `block-table` programs carry a cost table.
pub fn effective_gas(choice: GasChoice) -> GasChoice {
    match choice {
        GasChoice::Auto => GasChoice::BlockUnit,
        g => g,
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenConfig {
    pub profile: Profile,
    pub gas: GasChoice,
    pub raw: bool,
}

/// Most bytes an instruction's operands or padding take here (padding runs past the skip
/// cap of 24).
const INLINE_BYTES: usize = 40;

/// A few bytes kept inline: a generated instruction's operands or padding (no heap block per
/// instruction; programs are drawn by the tens of thousands per second). Reads as a slice and
/// prints as one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineBytes {
    len: u8,
    buf: [u8; INLINE_BYTES],
}

impl InlineBytes {
    pub const fn new() -> InlineBytes {
        InlineBytes { len: 0, buf: [0; INLINE_BYTES] }
    }

    /// Appends a byte; the generator never writes more than [`INLINE_BYTES`].
    pub fn push(&mut self, byte: u8) {
        self.buf[self.len as usize] = byte;
        self.len += 1;
    }

    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len as u8);
    }
}

impl Default for InlineBytes {
    fn default() -> Self {
        InlineBytes::new()
    }
}

impl std::ops::Deref for InlineBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::ops::DerefMut for InlineBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len as usize]
    }
}

impl Extend<u8> for InlineBytes {
    fn extend<T: IntoIterator<Item = u8>>(&mut self, bytes: T) {
        for b in bytes {
            self.push(b);
        }
    }
}

impl FromIterator<u8> for InlineBytes {
    fn from_iter<T: IntoIterator<Item = u8>>(bytes: T) -> Self {
        let mut out = InlineBytes::new();
        out.extend(bytes);
        out
    }
}

impl From<&[u8]> for InlineBytes {
    fn from(bytes: &[u8]) -> Self {
        bytes.iter().copied().collect()
    }
}

impl fmt::Debug for InlineBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// One generated instruction: the opcode and its operand bytes. For formats with an offset
/// the last 4 operand bytes are the offset, patched at layout time to reach `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenInst {
    pub op: Op,
    pub operands: InlineBytes,
    /// Block index a static offset points at.
    pub target: Option<usize>,
    /// Bytes after the operands that belong to no instruction: ignored inside the skip, and
    /// past the skip cap of 24 the fall-through lands inside them (a trap there).
    pub pad: InlineBytes,
    /// An opcode byte written instead of `op`'s number: an opcode undefined in the profile,
    /// so the pc holds no instruction although an instruction starts there.
    pub byte: Option<u8>,
}

impl GenInst {
    pub fn new(op: Op, operands: impl Into<InlineBytes>, target: Option<usize>) -> GenInst {
        GenInst { op, operands: operands.into(), target, pad: InlineBytes::new(), byte: None }
    }

    /// Encoded length.
    pub fn len(&self) -> usize {
        1 + self.operands.len() + self.pad.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// How the blob of a program is written (PVMSPEC-1 §1): canonically, in another valid form,
/// or damaged so that it must not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobForm {
    Canonical,
    /// Jump-table entries written with this many bytes (at least the minimal size, at most 4).
    WideEntries(u8),
    /// The code length written as a longer varint than needed (still decodes).
    LongLength,
    /// Entry size 0 with the same number of entries: every entry is the 0-byte number 0.
    ZeroEntries,
    /// This many extra bytes after the bitmask.
    Trailing(u8),
    /// A padding bit of the last bitmask byte set (needs a code length not a multiple of 8).
    PaddingBit,
    /// Jump-table entry size 5..=255.
    BadEntrySize(u8),
    /// The last this-many bytes cut off.
    Truncated(u8),
}

/// Opcode bytes that are undefined in a profile (PVMSPEC-1 §5.15).
pub fn undefined_opcodes(profile: Profile) -> Vec<u8> {
    (0..=255u8).filter(|&b| profile.op(b).is_none()).collect()
}

/// [`undefined_opcodes`] of each profile, computed once.
fn undefined_opcodes_of(profile: Profile) -> &'static [u8] {
    static LISTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let lists = LISTS.get_or_init(|| Profile::ALL.iter().map(|&p| undefined_opcodes(p)).collect());
    &lists[Profile::ALL.iter().position(|&p| p == profile).expect("every profile is listed")]
}

/// A jump-table entry: a block start, or any code offset (usually invalid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableEntry {
    Block(usize),
    Raw(u32),
}

/// A memory region: address, length, writable, initial bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenRegion {
    pub address: u32,
    pub length: u32,
    pub writable: bool,
    pub contents: Vec<u8>,
}

/// The code of a generated program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenCode {
    /// Basic blocks; each block's last instruction is normally a terminator.
    Blocks { blocks: Vec<Vec<GenInst>>, jump_table: Vec<TableEntry> },
    /// Arbitrary bytes with an arbitrary bitmask.
    Raw { code: Vec<u8>, starts: Vec<bool>, jump_table: Vec<u32> },
}

/// A generated program with its initial state and host behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenProgram {
    pub profile: Profile,
    pub code: GenCode,
    pub regions: Vec<GenRegion>,
    /// Host writes after mapping (inside mapped regions), at region edges.
    pub writes: Vec<(u32, Vec<u8>)>,
    pub regs: [u64; NUM_REGS],
    pub initial_pc: u32,
    pub gas: i64,
    /// Per-block costs (table gas model), by block index / pc.
    pub block_costs: Option<Vec<(u32, u64)>>,
    /// Force this gas model (unit-per-block when `None` and no table).
    pub gas_model: GasChoice,
    /// Register writes the host makes before each resumption (one entry per extra run).
    pub responses: Vec<Vec<(usize, u64)>>,
    /// A page the host maps (and so zeroes) before each resumption, with its permission:
    /// the page fault's page made accessible, or a mapped page mapped again.
    pub remaps: Vec<Option<(u32, bool)>>,
    /// How the blob is written.
    pub form: BlobForm,
}

const INTERESTING: [u64; 24] = [
    0,
    1,
    2,
    7,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x1_0000_0000,
    0x7FFF_FFFF_FFFF_FFFF,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
    0xFFFF_FFFF_8000_0000,
    31,
    32,
    63,
    64,
];

fn value(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=4 => INTERESTING[u.choose_index(INTERESTING.len())?],
        5 => u.int_in_range(0..=64u64)?,
        6 => (u.int_in_range(0..=64u64)?).wrapping_neg(),
        7 => address(u)? as u64,
        _ => u.arbitrary()?,
    })
}

/// An address aimed at an interesting place.
fn address(u: &mut Unstructured) -> Result<u32> {
    let off = |u: &mut Unstructured, max: u32| u.int_in_range(0..=max);
    Ok(match u.int_in_range(0..=11u8)? {
        0..=3 => RW_BASE + off(u, 0x2000 - 1)?,
        4 => RW_BASE + 0x2000 - off(u, 8)?,  // straddles the end of the RW region
        5 => RO_BASE + off(u, 0x1000 - 1)?,  // read-only
        6 => RO_BASE - off(u, 8)?,           // straddles into the RO region
        7 => UNMAPPED + off(u, 0x1000 - 1)?, // unmapped
        8 => off(u, 0xFFFF)?,                // below 64 KiB
        9 => 0xFFFF_FFFF - off(u, 8)?,       // wraps around
        10 => 0x1_0000 - off(u, 8)?,         // straddles the 64 KiB line
        _ => u.arbitrary()?,
    })
}

fn reg(u: &mut Unstructured) -> Result<u8> {
    // Nibbles 13..=15 are valid encodings of r12.
    Ok(if u.ratio(1, 32)? { u.int_in_range(13..=15)? } else { u.int_in_range(0..=12)? })
}

/// The little-endian bytes of `v` in `len` bytes (without allocating).
fn le(v: u64, len: usize) -> std::iter::Take<std::array::IntoIter<u8, 8>> {
    v.to_le_bytes().into_iter().take(len)
}

/// Encoded length for an immediate: usually the shortest that represents it, sometimes
/// longer (same value), sometimes shorter (truncated value).
fn imm_len(u: &mut Unstructured, v: u64) -> Result<usize> {
    let shortest = javm_engine::asm::imm_len(v).unwrap_or(4) as usize;
    Ok(match u.int_in_range(0..=7u8)? {
        0 => u.int_in_range(0..=4)?,
        1 => (shortest + 1).min(4),
        _ => shortest,
    })
}

fn imm(u: &mut Unstructured, v: u64) -> Result<(usize, std::iter::Take<std::array::IntoIter<u8, 8>>)> {
    let len = imm_len(u, v)?;
    Ok((len, le(v, len)))
}

/// The value of a memory operand: an interesting address (absolute forms).
fn addr_imm(u: &mut Unstructured) -> Result<u64> {
    let a = address(u)?;
    Ok(a as i32 as i64 as u64)
}

/// Whether an instruction loads or stores (by its kind in the table).
fn is_memory(op: Op) -> bool {
    op.kind().accesses_memory()
}

/// The length field of an immediate: usually `len` itself; for length 4 sometimes 5..=7
/// (which also mean 4), and sometimes with the ignored upper bits set.
fn length_field(u: &mut Unstructured, len: usize, ignored_bits: u8) -> Result<u8> {
    let mut field = if len == 4 && u.ratio(1, 4)? { u.int_in_range(5..=7u8)? } else { len as u8 };
    if u.ratio(1, 8)? {
        field |= u.int_in_range(1..=255u8)? << 3 & ignored_bits;
    }
    Ok(field)
}

/// The target of a static jump: usually a block (patched at layout time); sometimes a raw
/// offset written into the last 4 operand bytes, landing mid-instruction or outside the code.
fn static_target(u: &mut Unstructured, out: &mut [u8], blocks: usize) -> Result<Option<usize>> {
    if u.ratio(1, 16)? {
        let offset: i32 = match u.int_in_range(0..=3u8)? {
            0 | 1 => u.int_in_range(-8..=8)?,
            // A far offset whose low three bytes point near the instruction: only a decoder
            // that reads all four offset bytes sends it outside the code.
            2 => u.int_in_range(-8..=8i32)?.wrapping_add(i32::from(u.int_in_range(1..=127u8)?) << 24),
            _ => u.arbitrary()?,
        };
        let n = out.len();
        out[n - 4..].copy_from_slice(&offset.to_le_bytes());
        return Ok(None);
    }
    Ok(Some(u.choose_index(blocks)?))
}

/// Operand bytes for `op`; offsets are 4 zero bytes to patch.
fn operands(u: &mut Unstructured, op: Op, blocks: usize) -> Result<(InlineBytes, Option<usize>)> {
    let mut out = InlineBytes::new();
    let mut target = None;
    let memory = is_memory(op);
    let x_value = |u: &mut Unstructured| if memory { addr_imm(u) } else { value(u) };
    match op.format() {
        Format::NoArgs => {}
        Format::OneImm => {
            let v = if u.ratio(1, 2)? { u.int_in_range(0..=300u64)? } else { value(u)? };
            out.extend(imm(u, v)?.1);
        }
        Format::RegExtImm => {
            out.push(reg(u)?);
            out.extend(le(value(u)?, 8));
        }
        Format::TwoImm => {
            let v = addr_imm(u)?;
            let (lx, x) = imm(u, v)?;
            out.push(length_field(u, lx, 0xF8)?);
            out.extend(x);
            let v = value(u)?;
            out.extend(imm(u, v)?.1);
        }
        Format::OneOffset => {
            out.extend([0; 4]);
            target = static_target(u, &mut out, blocks)?;
        }
        Format::RegImm => {
            out.push(reg(u)?);
            let v = if op == Op::JumpInd { u.int_in_range(0..=8u64)? } else { x_value(u)? };
            out.extend(imm(u, v)?.1);
        }
        Format::RegTwoImm => {
            let r = reg(u)?;
            let x = if u.ratio(1, 2)? { u.int_in_range(0..=16u64)? } else { value(u)? };
            let (lx, xb) = imm(u, x)?;
            out.push(r | length_field(u, lx, 0x08)? << 4);
            out.extend(xb);
            let v = value(u)?;
            out.extend(imm(u, v)?.1);
        }
        Format::RegImmOffset => {
            let r = reg(u)?;
            let v = value(u)?;
            let (lx, xb) = imm(u, v)?;
            out.push(r | length_field(u, lx, 0x08)? << 4);
            out.extend(xb);
            out.extend([0; 4]);
            target = static_target(u, &mut out, blocks)?;
        }
        Format::TwoReg => out.push(reg(u)? | reg(u)? << 4),
        Format::TwoRegImm => {
            out.push(reg(u)? | reg(u)? << 4);
            let v = if memory { u.int_in_range(0..=16u64)?.wrapping_sub(8) } else { value(u)? };
            out.extend(imm(u, v)?.1);
        }
        Format::TwoRegOffset => {
            out.push(reg(u)? | reg(u)? << 4);
            out.extend([0; 4]);
            target = static_target(u, &mut out, blocks)?;
        }
        Format::TwoRegTwoImm => {
            out.push(reg(u)? | reg(u)? << 4);
            let v = value(u)?;
            let (lx, xb) = imm(u, v)?;
            out.push(length_field(u, lx, 0xF8)?);
            out.extend(xb);
            let v = u.int_in_range(0..=8u64)?;
            out.extend(imm(u, v)?.1);
        }
        Format::ThreeReg => {
            out.push(reg(u)? | reg(u)? << 4);
            out.push(if u.ratio(1, 64)? { u.int_in_range(13..=255)? } else { reg(u)? });
        }
    }
    Ok((out, target))
}

/// Sometimes drops trailing operand bytes (an instruction shorter than its operands want:
/// lengths shrink with the skip, and at the end of code reads run past it). Offsets are left
/// whole so they can be patched.
fn maybe_truncate(u: &mut Unstructured, inst: &mut GenInst) -> Result<()> {
    if !inst.op.format().has_offset() && !inst.operands.is_empty() && u.ratio(1, 32)? {
        let cut = u.int_in_range(1..=inst.operands.len().min(4))?;
        inst.operands.truncate(inst.operands.len() - cut);
    }
    Ok(())
}

/// Bytes after an instruction: a few (inside the skip) or enough to pass the skip cap.
fn pad(u: &mut Unstructured) -> Result<InlineBytes> {
    let n = if u.ratio(1, 2)? { u.int_in_range(1..=6usize)? } else { u.int_in_range(18..=40usize)? };
    (0..n).map(|_| u.arbitrary()).collect()
}

/// `load_imm rX, v` aimed at a memory region, to give indirect accesses a base.
fn base_setup(u: &mut Unstructured) -> Result<GenInst> {
    let r = u.int_in_range(0..=12u8)?;
    let v = address(u)? as i32 as i64 as u64;
    let (_, bytes) = imm(u, v)?;
    let mut operands = InlineBytes::new();
    operands.push(r);
    operands.extend(bytes);
    Ok(GenInst::new(Op::LoadImm, operands, None))
}

/// `load_imm rX, a` where `a` is a dynamic-jump address: valid table entries, halt, or junk.
fn jump_setup(u: &mut Unstructured, reg: u8, table_len: usize) -> Result<GenInst> {
    let v: u64 = match u.int_in_range(0..=5u8)? {
        0..=2 if table_len > 0 => 2 * (1 + u.choose_index(table_len)? as u64),
        3 => HALT,
        4 => u.int_in_range(0..=2 * table_len as u64 + 3)?,
        _ => value(u)?,
    };
    let len = javm_engine::asm::imm_len(v).unwrap_or(4) as usize;
    let mut operands = InlineBytes::new();
    operands.push(reg);
    operands.extend(le(v, len));
    Ok(GenInst::new(Op::LoadImm, operands, None))
}

fn pick_op(u: &mut Unstructured, profile: Profile, terminator: bool) -> Result<Op> {
    // The instructions of each profile that do (index 1) or do not (0) end a block, in
    // table order, listed once.
    static OPS: std::sync::OnceLock<Vec<[Vec<Op>; 2]>> = std::sync::OnceLock::new();
    let lists = OPS.get_or_init(|| {
        Profile::ALL
            .iter()
            .map(|&p| {
                let list =
                    |t: bool| Op::all().filter(|&op| op.number(p).is_some() && p.is_terminator(op) == t).collect();
                [list(false), list(true)]
            })
            .collect()
    });
    let column = Profile::ALL.iter().position(|&p| p == profile).expect("every profile is listed");
    let ops = &lists[column][terminator as usize];
    Ok(ops[u.choose_index(ops.len())?])
}

impl GenProgram {
    /// Draws a program.
    pub fn generate(u: &mut Unstructured, config: GenConfig) -> Result<GenProgram> {
        let code = if config.raw { raw_code(u)? } else { block_code(u, config.profile)? };
        GenProgram::with_code(u, config, code)
    }

    /// Draws the initial state, memory and host behaviour around given code.
    pub fn with_code(u: &mut Unstructured, config: GenConfig, code: GenCode) -> Result<GenProgram> {
        let profile = config.profile;
        let mut regions = vec![
            GenRegion { address: RW_BASE, length: 0x2000, writable: true, contents: Vec::new() },
            GenRegion { address: RO_BASE, length: 0x1000, writable: false, contents: Vec::new() },
        ];
        for r in &mut regions {
            let n = u.int_in_range(0..=16usize)?;
            r.contents = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
        }
        let top = u.ratio(1, 8)?;
        if top {
            regions.push(GenRegion {
                address: 0xFFFF_F000,
                length: 0x1000,
                writable: u.arbitrary()?,
                contents: vec![],
            });
        }
        // Page 0 too, mostly together with the top page, so accesses that wrap past 2^32 can
        // succeed.
        if if top { u.ratio(3, 4)? } else { u.ratio(1, 16)? } {
            regions.push(GenRegion { address: 0, length: 0x1000, writable: u.arbitrary()?, contents: vec![] });
        }
        // Non-zero bytes at region edges, where accesses straddle pages or wrap around, so that
        // values loaded there (sign extension included) depend on every byte.
        let mut writes = Vec::new();
        for r in &regions {
            let end = r.address as u64 + r.length as u64;
            for at_end in [false, true] {
                if u.ratio(1, 2)? {
                    let n = u.int_in_range(1..=16u64)?;
                    let start = if at_end { end - n } else { r.address as u64 };
                    let bytes = (0..n).map(|_| Ok(u.arbitrary::<u8>()? | 0x80)).collect::<Result<Vec<u8>>>()?;
                    writes.push((start as u32, bytes));
                }
            }
        }
        let mut regs = [0u64; NUM_REGS];
        for r in regs.iter_mut() {
            *r = value(u)?;
        }
        if u.ratio(3, 4)? {
            regs[0] = HALT;
        }
        let initial_pc = match u.int_in_range(0..=15u8)? {
            0 => u.int_in_range(0..=64u32)?,
            _ => 0,
        };
        let gas = match u.int_in_range(0..=7u8)? {
            0 => u.int_in_range(0..=20i64)?,
            _ => u.int_in_range(0..=2000i64)?,
        };
        let gas_model = config.gas;
        let block_costs = if gas_model == GasChoice::BlockTable {
            let mut table = Vec::new();
            for pc in GenProgram::block_starts_of(&code, profile) {
                if u.ratio(7, 8)? {
                    table.push((pc, u.int_in_range(1..=30u64)?));
                }
            }
            Some(table)
        } else {
            None
        };
        let runs = u.int_in_range(0..=3usize)?;
        let mut responses = Vec::with_capacity(runs);
        for _ in 0..runs {
            let n = u.int_in_range(0..=2usize)?;
            let mut writes = Vec::with_capacity(n);
            for _ in 0..n {
                writes.push((u.int_in_range(0..=12usize)?, value(u)?));
            }
            responses.push(writes);
        }
        let mut remaps = Vec::with_capacity(runs);
        for _ in 0..runs {
            remaps.push(if u.ratio(1, 3)? {
                let page = match u.int_in_range(0..=3u8)? {
                    0 | 1 => UNMAPPED,
                    2 => RW_BASE + 0x1000 * u.int_in_range(0..=1u32)?,
                    _ => RO_BASE,
                };
                Some((page, u.arbitrary()?))
            } else {
                None
            });
        }
        let form = match u.int_in_range(0..=63u8)? {
            0 => BlobForm::WideEntries(u.int_in_range(1..=4u8)?),
            1 => BlobForm::LongLength,
            2 => BlobForm::Trailing(u.int_in_range(1..=3u8)?),
            3 => BlobForm::PaddingBit,
            4 => BlobForm::BadEntrySize(u.int_in_range(5..=255u8)?),
            5 => BlobForm::Truncated(u.int_in_range(1..=4u8)?),
            6 => BlobForm::ZeroEntries,
            _ => BlobForm::Canonical,
        };
        Ok(GenProgram {
            profile,
            code,
            regions,
            writes,
            regs,
            initial_pc,
            gas,
            block_costs,
            gas_model,
            responses,
            remaps,
            form,
        })
    }

    fn block_starts_of(code: &GenCode, profile: Profile) -> Vec<u32> {
        match code {
            GenCode::Blocks { .. } => {
                let (_, starts) = layout(code, profile);
                starts
            }
            GenCode::Raw { code, .. } => (0..code.len() as u32).step_by(3).collect(),
        }
    }

    /// The blob this program encodes to.
    pub fn blob(&self) -> Blob {
        match &self.code {
            GenCode::Raw { code, starts, jump_table } => Blob::new(jump_table.clone(), code.clone(), starts.clone()),
            GenCode::Blocks { .. } => layout(&self.code, self.profile).0,
        }
    }

    /// The blob bytes as the backends receive them: [`GenProgram::blob`] written in
    /// [`GenProgram::form`].
    pub fn bytes(&self) -> Vec<u8> {
        let blob = self.blob();
        let mut out = blob.encode();
        match self.form {
            BlobForm::Canonical => {}
            BlobForm::WideEntries(z) => out = encode_blob(&blob, z.max(blob.entry_size), false),
            BlobForm::LongLength => out = encode_blob(&blob, blob.entry_size, true),
            BlobForm::ZeroEntries => out = encode_blob(&blob, 0, false),
            BlobForm::Trailing(n) => out.extend(std::iter::repeat_n(0xA5, n as usize)),
            BlobForm::PaddingBit => {
                if blob.code.len() & 7 != 0 {
                    *out.last_mut().expect("a bitmask byte") |= 0x80;
                }
            }
            BlobForm::BadEntrySize(z) => {
                // The entry-size byte follows varint(J), one byte for the small tables
                // generated here.
                if blob.jump_table.len() < 0x80 {
                    out[1] = z;
                }
            }
            BlobForm::Truncated(n) => out.truncate(out.len().saturating_sub(n as usize).max(1)),
        }
        out
    }

    /// The run options this program needs.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            profile: Some(self.profile),
            gas: self.gas_model,
            details: false,
            known: crate::backends::known_difference,
        }
    }

    /// The program as a harness case (steps without assertions).
    pub fn case(&self, name: &str) -> Case {
        let runs: usize = self.responses.iter().map(|writes| writes.len() + 2).sum();
        let mut steps = Vec::with_capacity(2 * self.regions.len() + self.writes.len() + NUM_REGS + 1 + runs);
        for r in &self.regions {
            steps.push(Step::Map(Region { address: r.address, length: r.length, is_writable: r.writable }));
            if !r.contents.is_empty() {
                steps.push(Step::Write(Chunk { address: r.address, contents: r.contents.clone() }));
            }
        }
        for (address, bytes) in &self.writes {
            steps.push(Step::Write(Chunk { address: *address, contents: bytes.clone() }));
        }
        for (reg, &value) in self.regs.iter().enumerate() {
            steps.push(Step::SetReg { reg, value });
        }
        steps.push(Step::Run);
        for (i, writes) in self.responses.iter().enumerate() {
            for &(reg, value) in writes {
                steps.push(Step::SetReg { reg, value });
            }
            if let Some(&Some((address, writable))) = self.remaps.get(i) {
                steps.push(Step::Map(Region { address, length: 0x1000, is_writable: writable }));
            }
            steps.push(Step::Run);
        }
        Case {
            name: name.to_string(),
            path: name.into(),
            format: VectorFormat::Spectool,
            program: self.bytes(),
            initial_pc: self.initial_pc,
            initial_gas: self.gas,
            block_costs: self.block_costs.clone(),
            steps,
            profile_hint: Some(self.profile),
            gas_hint: Some(self.gas_model),
            unknown_fields: Vec::new(),
            asserts_nothing: true,
        }
    }

    /// The gas model this program runs under.
    pub fn gas_model(&self) -> GasModel {
        match (&self.block_costs, self.gas_model) {
            (Some(t), _) => GasModel::table(t.iter().copied()),
            (None, GasChoice::Instruction) => GasModel::Instruction,
            _ => GasModel::BlockUnit,
        }
    }
}

fn block_code(u: &mut Unstructured, profile: Profile) -> Result<GenCode> {
    let nblocks = u.int_in_range(1..=8usize)?;
    let table_len = u.int_in_range(0..=4usize)?;
    let mut blocks = Vec::with_capacity(nblocks);
    let undefined = undefined_opcodes_of(profile);
    for _ in 0..nblocks {
        let mut block = Vec::with_capacity(14);
        if u.ratio(1, 16)? {
            // A block that starts with an undefined opcode: its pc follows a terminator but is
            // not a valid jump target, and it traps when reached.
            let mut hole = GenInst::new(Op::Trap, InlineBytes::new(), None);
            hole.byte = Some(undefined[u.choose_index(undefined.len())?]);
            hole.operands = (0..u.int_in_range(0..=3usize)?).map(|_| u.arbitrary()).collect::<Result<_>>()?;
            block.push(hole);
        }
        let len = u.int_in_range(0..=10usize)?;
        for _ in 0..len {
            if u.ratio(1, 6)? {
                block.push(base_setup(u)?);
                continue;
            }
            let op = pick_op(u, profile, false)?;
            let (operands, target) = operands(u, op, nblocks)?;
            let mut inst = GenInst::new(op, operands, target);
            maybe_truncate(u, &mut inst)?;
            if u.ratio(1, 24)? {
                inst.pad = pad(u)?;
            }
            block.push(inst);
        }
        let term = pick_op(u, profile, true)?;
        if matches!(term, Op::JumpInd | Op::LoadImmJumpInd) && u.ratio(3, 4)? {
            // Aim the dynamic jump: set its base register and use offset 0.
            let r = u.int_in_range(0..=12u8)?;
            block.push(jump_setup(u, r, table_len)?);
            let operands: InlineBytes = if term == Op::JumpInd {
                [r].into_iter().collect()
            } else {
                [r << 4 | u.int_in_range(0..=12u8)?, 0].into_iter().collect()
            };
            block.push(GenInst::new(term, operands, None));
        } else {
            let (operands, target) = operands(u, term, nblocks)?;
            let mut inst = GenInst::new(term, operands, target);
            maybe_truncate(u, &mut inst)?;
            if u.ratio(1, 16)? {
                inst.pad = pad(u)?;
            }
            block.push(inst);
        }
        blocks.push(block);
    }
    // Often cut the last instruction short, so that its operands run past the end of the
    // code (ζ reads 0 there).
    if let Some(last) = blocks.last_mut().and_then(|b: &mut Vec<GenInst>| b.last_mut()) {
        if !last.op.format().has_offset() && !last.operands.is_empty() && last.pad.is_empty() && u.ratio(1, 8)? {
            let cut = u.int_in_range(1..=last.operands.len().min(4))?;
            last.operands.truncate(last.operands.len() - cut);
        }
    }
    let mut jump_table = Vec::with_capacity(table_len);
    for _ in 0..table_len {
        jump_table.push(if u.ratio(7, 8)? {
            TableEntry::Block(u.choose_index(nblocks)?)
        } else {
            TableEntry::Raw(if u.ratio(1, 4)? { u.arbitrary()? } else { u.int_in_range(0..=200u32)? })
        });
    }
    Ok(GenCode::Blocks { blocks, jump_table })
}

fn raw_code(u: &mut Unstructured) -> Result<GenCode> {
    let len = u.int_in_range(1..=96usize)?;
    let mut code = Vec::with_capacity(len);
    let mut starts = Vec::with_capacity(len);
    // Sometimes one long run of argument bytes, past the skip cap.
    let gap = if len > 30 && u.ratio(1, 4)? {
        let start = u.int_in_range(1..=len - 26)?;
        start..start + u.int_in_range(25..=(len - start).min(40))?
    } else {
        0..0
    };
    for i in 0..len {
        code.push(u.arbitrary()?);
        starts.push(i == 0 || (!gap.contains(&i) && u.ratio(1, 3)?));
    }
    let table_len = u.int_in_range(0..=4usize)?;
    let jump_table = (0..table_len).map(|_| u.int_in_range(0..=len as u32 + 2)).collect::<Result<_>>()?;
    Ok(GenCode::Raw { code, starts, jump_table })
}

/// A blob with jump-table entries of `z` bytes, its code length optionally written as a
/// varint one byte longer than needed (both still valid encodings).
fn encode_blob(blob: &Blob, z: u8, long_length: bool) -> Vec<u8> {
    use javm_engine::blob::write_varint;
    let mut out = Vec::new();
    write_varint(&mut out, blob.jump_table.len() as u64);
    out.push(z);
    let n = blob.code.len() as u64;
    if long_length {
        let mut short = Vec::new();
        write_varint(&mut short, n);
        let l = short.len(); // extra bytes of the shortest form, plus one
        if l >= 8 {
            out.push(0xFF);
            out.extend(n.to_le_bytes());
        } else {
            out.push((256 - (1u32 << (8 - l))) as u8 + (n >> (8 * l)) as u8);
            out.extend(&n.to_le_bytes()[..l]);
        }
    } else {
        write_varint(&mut out, n);
    }
    for e in &blob.jump_table {
        out.extend(&e.to_le_bytes()[..z as usize]);
    }
    out.extend(&blob.code);
    out.extend(blob.starts.packed(blob.code.len()));
    out
}

/// Lays out structured code: the blob and every block's start pc.
fn layout(code: &GenCode, profile: Profile) -> (Blob, Vec<u32>) {
    let GenCode::Blocks { blocks, jump_table } = code else { unreachable!("layout of raw code") };
    let mut starts_pc = Vec::with_capacity(blocks.len());
    let mut pc = 0u32;
    for block in blocks {
        starts_pc.push(pc);
        for inst in block {
            pc += inst.len() as u32;
        }
    }
    let mut bytes = Vec::with_capacity(pc as usize);
    let mut starts = Vec::with_capacity(pc as usize);
    for block in blocks {
        for inst in block {
            let at = bytes.len() as u32;
            bytes.push(inst.byte.or(inst.op.number(profile)).unwrap_or(0));
            starts.push(true);
            let operands = bytes.len();
            bytes.extend_from_slice(&inst.operands);
            if let Some(t) = inst.target {
                let target = starts_pc.get(t).copied().unwrap_or(0);
                let offset = target.wrapping_sub(at).to_le_bytes();
                let end = bytes.len();
                if end - operands >= 4 {
                    bytes[end - 4..].copy_from_slice(&offset);
                }
            }
            bytes.extend_from_slice(&inst.pad);
            starts.extend(std::iter::repeat_n(false, inst.operands.len() + inst.pad.len()));
        }
    }
    if bytes.is_empty() {
        bytes.push(0);
        starts.push(true);
    }
    let table = jump_table
        .iter()
        .map(|e| match e {
            TableEntry::Block(b) => starts_pc.get(*b).copied().unwrap_or(0),
            TableEntry::Raw(pc) => *pc,
        })
        .collect();
    (Blob::new(table, bytes, starts), starts_pc)
}

/// Bytes of generator input per program.
pub const INPUT_BYTES: usize = 2048;

/// The generator input of program `index` of a seeded run (splitmix64 over `(seed, index)`).
/// An array rather than a vector: a 2 KiB heap block per program made the allocator
/// consolidate its free lists every time.
pub fn seed_bytes(seed: u64, index: u64) -> [u8; INPUT_BYTES] {
    let mut state = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = [0; INPUT_BYTES];
    for word in out.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// Program `index` of a seeded run.
pub fn generate(seed: u64, index: u64, config: GenConfig) -> GenProgram {
    let bytes = seed_bytes(seed, index);
    GenProgram::generate(&mut Unstructured::new(&bytes), config)
        .expect("the generator only fails on exhausted input, and it never needs this much")
}

#[cfg(test)]
mod tests {
    use super::*;
    use javm_engine::{Config, Program};

    #[test]
    fn inline_bytes_read_and_print_like_the_vector_they_replace() {
        let mut bytes = InlineBytes::from(&[1u8, 2][..]);
        let mut vec = vec![1u8, 2];
        bytes.extend([3, 4, 5]);
        vec.extend([3, 4, 5]);
        bytes.push(6);
        vec.push(6);
        assert_eq!(&*bytes, &vec[..]);
        assert_eq!(format!("{bytes:?}"), format!("{vec:?}"));
        bytes.truncate(10);
        assert_eq!(bytes.len(), 6, "truncating past the end keeps every byte");
        bytes.truncate(2);
        assert_eq!(&*bytes, &[1, 2]);
        let full: InlineBytes = (0..INLINE_BYTES as u8).collect();
        assert_eq!(full.len(), INLINE_BYTES);
        assert_eq!(InlineBytes::default().len(), 0);
    }

    fn programs(config: GenConfig, n: u64) -> Vec<GenProgram> {
        (0..n)
            .map(|seed| {
                let bytes = seed_bytes(seed, 0);
                GenProgram::generate(&mut Unstructured::new(&bytes), config).unwrap()
            })
            .collect()
    }

    #[test]
    fn structured_programs_reach_every_opcode_and_format() {
        for profile in Profile::ALL {
            let config = GenConfig { profile, gas: GasChoice::Auto, raw: false };
            let mut seen = std::collections::HashSet::new();
            for p in programs(config, 3000) {
                let blob = p.blob();
                let program = Program::new(blob, Config::new(profile, GasModel::BlockUnit));
                for inst in program.insts() {
                    seen.insert(inst.op);
                }
            }
            for op in Op::all().filter(|op| op.number(profile).is_some()) {
                assert!(seen.contains(&op), "profile {profile}: {op} never generated");
            }
        }
    }

    #[test]
    fn structured_programs_decode_as_generated() {
        let config = GenConfig { profile: Profile::A, gas: GasChoice::Auto, raw: false };
        for p in programs(config, 500) {
            let GenCode::Blocks { blocks, .. } = &p.code else { unreachable!() };
            let count: usize = blocks.iter().map(|b| b.len()).sum();
            let blob = p.blob();
            let parsed = Blob::parse(&blob.encode()).unwrap();
            assert_eq!(parsed, blob);
            let starts = blob.starts.positions().count();
            assert_eq!(starts, count.max(1));
        }
    }
}
