//! Assembler for the PVM text form (the inverse of [`crate::disasm`]).
//!
//! One instruction per line, operands separated by commas, in the order given by
//! [`operands`] for the instruction's [`Format`]:
//!
//! ```text
//! .jump_table done, 12        ; jump-table entries: labels or pcs (repeatable, appends)
//! start:
//!     load_imm r7, -100       ; rA, X
//!     add_32 r9, r7, r8       ; rD, rA, rB (destination first)
//!     branch_eq r7, r8, start ; targets: a label or an absolute pc
//! done: trap
//!     .byte 0x01, 2           # raw bytes that are not instruction starts
//!     .inst 0x05              # raw bytes whose first byte is an instruction start
//! ```
//!
//! Registers are `r0`..`r12`. Immediates are decimal (optionally negative) or `0x` hex, taken
//! as 64-bit two's-complement values; every immediate except `load_imm_64`'s must be a
//! sign-extended immediate of at most 4 bytes. Comments start with `;` or `#`. A label
//! (`name:`, possibly followed by an instruction on the same line) names the pc of whatever
//! comes next. Every immediate and offset is encoded in its shortest form (PVMSPEC-1 §4); a
//! forward label reference starts out with a 4-byte offset and is shrunk until the layout
//! reaches a fixed point.

use std::collections::HashMap;
use std::fmt;

use crate::blob::Blob;
use crate::decode::{sext, Decoded};
use crate::disasm::format_imm;
use crate::isa::{Format, Op, Profile};

/// An assembly error, with the 1-based source line it was found on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for AsmError {}

/// One operand slot of the text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Ra,
    Rb,
    Rd,
    X,
    Y,
    /// An absolute static jump target (encoded as an offset from the instruction's pc).
    Target,
}

impl Operand {
    /// Name used in messages (`rA`, `X`, `target`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Operand::Ra => "rA",
            Operand::Rb => "rB",
            Operand::Rd => "rD",
            Operand::X => "X",
            Operand::Y => "Y",
            Operand::Target => "target",
        }
    }
}

/// The operands of a format, in text order.
pub fn operands(format: Format) -> &'static [Operand] {
    use Operand::*;
    match format {
        Format::NoArgs => &[],
        Format::OneImm => &[X],
        Format::RegExtImm => &[Ra, X],
        Format::TwoImm => &[X, Y],
        Format::OneOffset => &[Target],
        Format::RegImm => &[Ra, X],
        Format::RegTwoImm => &[Ra, X, Y],
        Format::RegImmOffset => &[Ra, X, Target],
        Format::TwoReg => &[Rd, Ra],
        Format::TwoRegImm => &[Ra, Rb, X],
        Format::TwoRegOffset => &[Ra, Rb, Target],
        Format::TwoRegTwoImm => &[Ra, Rb, X, Y],
        Format::ThreeReg => &[Rd, Ra, Rb],
    }
}

/// The shortest encoded length (0..=4) of an immediate, if it has one: the smallest `l`
/// with `sext(l, v) == v`.
pub fn imm_len(v: u64) -> Option<u32> {
    (0..=4).find(|&l| sext(l, v) == v)
}

/// The offset from `pc` to `target` as a sign-extended 64-bit value.
fn offset_value(target: u32, pc: u32) -> u64 {
    target.wrapping_sub(pc) as i32 as i64 as u64
}

/// Shortest encoded length of the offset from `pc` to `target` (always at most 4).
fn offset_len(target: u32, pc: u32) -> u32 {
    imm_len(offset_value(target, pc)).unwrap_or(4)
}

/// Encodes one instruction at `pc` in its shortest form. Only the fields of `d` that the
/// instruction's format uses are read; `d.target` is an absolute pc.
pub fn encode_instruction(d: &Decoded, pc: u32, profile: Profile) -> Result<Vec<u8>, String> {
    encode_with(d, pc, profile, None)
}

/// Like [`encode_instruction`], but with the offset (if any) encoded in `offset_len` bytes
/// instead of the shortest form.
fn encode_with(d: &Decoded, pc: u32, profile: Profile, offset_len: Option<u32>) -> Result<Vec<u8>, String> {
    let op = d.op;
    let opcode = op.number(profile).ok_or_else(|| not_in_profile(op, profile))?;
    for slot in operands(op.format()) {
        let r = match slot {
            Operand::Ra => d.ra,
            Operand::Rb => d.rb,
            Operand::Rd => d.rd,
            _ => continue,
        };
        if r > 12 {
            return Err(format!("bad register r{r} (expected r0..r12)"));
        }
    }
    let imm = |v: u64| imm_len(v).ok_or_else(|| imm_error(op, v));
    let offset = offset_value(d.target, pc);
    let off_len = match offset_len {
        _ if !op.format().has_offset() => 0,
        None => imm_len(offset).unwrap_or(4),
        Some(l) if l <= 4 && sext(l, offset) == offset => l,
        Some(l) => return Err(format!("offset {} does not fit {l} bytes", offset as i64)),
    };
    let put = |out: &mut Vec<u8>, v: u64, len: u32| out.extend_from_slice(&v.to_le_bytes()[..len as usize]);
    let mut out = vec![opcode];
    match op.format() {
        Format::NoArgs => {}
        Format::OneImm => put(&mut out, d.x, imm(d.x)?),
        Format::RegExtImm => {
            out.push(d.ra);
            put(&mut out, d.x, 8);
        }
        Format::TwoImm => {
            let (lx, ly) = (imm(d.x)?, imm(d.y)?);
            out.push(lx as u8);
            put(&mut out, d.x, lx);
            put(&mut out, d.y, ly);
        }
        Format::OneOffset => put(&mut out, offset, off_len),
        Format::RegImm => {
            out.push(d.ra);
            put(&mut out, d.x, imm(d.x)?);
        }
        Format::RegTwoImm => {
            let (lx, ly) = (imm(d.x)?, imm(d.y)?);
            out.push(d.ra | (lx as u8) << 4);
            put(&mut out, d.x, lx);
            put(&mut out, d.y, ly);
        }
        Format::RegImmOffset => {
            let lx = imm(d.x)?;
            out.push(d.ra | (lx as u8) << 4);
            put(&mut out, d.x, lx);
            put(&mut out, offset, off_len);
        }
        Format::TwoReg => out.push(d.rd | d.ra << 4),
        Format::TwoRegImm => {
            out.push(d.ra | d.rb << 4);
            put(&mut out, d.x, imm(d.x)?);
        }
        Format::TwoRegOffset => {
            out.push(d.ra | d.rb << 4);
            put(&mut out, offset, off_len);
        }
        Format::TwoRegTwoImm => {
            let (lx, ly) = (imm(d.x)?, imm(d.y)?);
            out.push(d.ra | d.rb << 4);
            out.push(lx as u8);
            put(&mut out, d.x, lx);
            put(&mut out, d.y, ly);
        }
        Format::ThreeReg => {
            out.push(d.ra | d.rb << 4);
            out.push(d.rd);
        }
    }
    Ok(out)
}

fn not_in_profile(op: Op, profile: Profile) -> String {
    let have: Vec<String> = Profile::ALL.iter().filter(|p| op.number(**p).is_some()).map(|p| p.to_string()).collect();
    format!("`{op}` is not defined in profile {profile} (defined in profile {})", have.join(", "))
}

fn imm_error(op: Op, v: u64) -> String {
    let mut message =
        format!("immediate {} is not representable as a sign-extended immediate of at most 4 bytes", format_imm(v));
    if v >> 32 == 0 {
        message.push_str(&format!(" (its 4-byte encoding means {:#x})", sext(4, v)));
    }
    if op == Op::LoadImm {
        message.push_str("; use load_imm_64 for a full 64-bit constant");
    }
    message
}

/// Assembles `source` for `profile`.
pub fn assemble(source: &str, profile: Profile) -> Result<Blob, AsmError> {
    let mut parser = Parser::new(profile);
    for (i, text) in source.lines().enumerate() {
        let line = i + 1;
        parser.line(text, line).map_err(|message| AsmError { line, message })?;
    }
    parser.finish()
}

/// A jump target as written.
#[derive(Clone, Debug)]
enum Target {
    Pc(u32),
    Label(String),
}

/// A jump target after label lookup: a pc, or the position (index of the next item) of a label.
#[derive(Clone, Copy, Debug)]
enum Resolved {
    Pc(u32),
    Pos(usize),
}

#[derive(Debug)]
enum Item {
    Inst { line: usize, d: Decoded, target: Option<Target>, base_len: u32 },
    Raw { line: usize, bytes: Vec<u8>, start: bool },
}

impl Item {
    fn line(&self) -> usize {
        match self {
            Item::Inst { line, .. } | Item::Raw { line, .. } => *line,
        }
    }
}

struct Parser {
    profile: Profile,
    items: Vec<Item>,
    /// Label name to (position, defining line).
    labels: HashMap<String, (usize, usize)>,
    jump_table: Vec<(usize, Target)>,
}

/// One candidate layout: the pc of every item (plus the end of code), the offset length each
/// instruction was laid out with, and the shortest offset length each one needs there.
struct Layout {
    pcs: Vec<u64>,
    lens: Vec<u32>,
    required: Vec<u32>,
}

impl Layout {
    fn is_valid(&self) -> bool {
        self.required.iter().zip(&self.lens).all(|(r, l)| r <= l)
    }
}

/// Upper bound on layout relaxation rounds.
const MAX_RELAX: usize = 64;

impl Parser {
    fn new(profile: Profile) -> Self {
        Parser { profile, items: Vec::new(), labels: HashMap::new(), jump_table: Vec::new() }
    }

    fn line(&mut self, text: &str, line: usize) -> Result<(), String> {
        let text = text.split([';', '#']).next().unwrap_or("");
        let mut rest = text.trim();
        while let Some((head, tail)) = rest.split_once(':') {
            let name = head.trim();
            if !is_label_name(name) {
                break;
            }
            if let Some((_, first)) = self.labels.get(name) {
                return Err(format!("duplicate label '{name}' (first defined on line {first})"));
            }
            self.labels.insert(name.to_string(), (self.items.len(), line));
            rest = tail.trim();
        }
        if rest.is_empty() {
            return Ok(());
        }
        let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let word = word.to_ascii_lowercase();
        let args = split_operands(args)?;
        match word.as_str() {
            ".jump_table" => {
                for arg in args {
                    self.jump_table.push((line, parse_target(arg)?));
                }
            }
            ".byte" | ".inst" => {
                if args.is_empty() {
                    return Err(format!("`{word}` needs at least one byte"));
                }
                let bytes = args.into_iter().map(parse_byte).collect::<Result<Vec<u8>, String>>()?;
                self.items.push(Item::Raw { line, bytes, start: word == ".inst" });
            }
            _ if word.starts_with('.') => return Err(format!("unknown directive '{word}'")),
            _ => self.instruction(&word, &args, line)?,
        }
        Ok(())
    }

    fn instruction(&mut self, mnemonic: &str, args: &[&str], line: usize) -> Result<(), String> {
        let op = Op::from_mnemonic(mnemonic).ok_or_else(|| format!("unknown mnemonic '{mnemonic}'"))?;
        if op.number(self.profile).is_none() {
            return Err(not_in_profile(op, self.profile));
        }
        let slots = operands(op.format());
        if args.len() != slots.len() {
            let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
            let expected = match slots.len() {
                0 => "no operands".to_string(),
                1 => format!("1 operand ({})", names[0]),
                n => format!("{n} operands ({})", names.join(", ")),
            };
            return Err(format!("`{op}` takes {expected}, got {}", args.len()));
        }
        let mut d = Decoded { op, defined: true, ra: 0, rb: 0, rd: 0, x: 0, y: 0, target: 0, skip: 0 };
        let mut target = None;
        for (slot, arg) in slots.iter().zip(args) {
            match slot {
                Operand::Ra => d.ra = parse_reg(arg)?,
                Operand::Rb => d.rb = parse_reg(arg)?,
                Operand::Rd => d.rd = parse_reg(arg)?,
                Operand::X => d.x = parse_number(arg)?,
                Operand::Y => d.y = parse_number(arg)?,
                Operand::Target => target = Some(parse_target(arg)?),
            }
        }
        let base_len = encode_with(&d, 0, self.profile, Some(0))?.len() as u32;
        self.items.push(Item::Inst { line, d, target, base_len });
        Ok(())
    }

    fn resolve(&self, target: &Target, line: usize) -> Result<Resolved, AsmError> {
        match target {
            Target::Pc(pc) => Ok(Resolved::Pc(*pc)),
            Target::Label(name) => match self.labels.get(name) {
                Some(&(pos, _)) => Ok(Resolved::Pos(pos)),
                None => Err(AsmError { line, message: format!("unknown label '{name}'") }),
            },
        }
    }

    fn layout(&self, targets: &[Option<Resolved>], guess: &[u32]) -> Layout {
        let n = self.items.len();
        let mut pcs = Vec::with_capacity(n + 1);
        let mut lens = vec![0; n];
        let mut pc = 0u64;
        for (i, item) in self.items.iter().enumerate() {
            pcs.push(pc);
            let size = match item {
                Item::Raw { bytes, .. } => bytes.len() as u64,
                Item::Inst { base_len, .. } => {
                    lens[i] = match targets[i] {
                        None => 0,
                        Some(Resolved::Pc(t)) => offset_len(t, pc as u32),
                        Some(Resolved::Pos(p)) if p <= i => offset_len(pcs[p] as u32, pc as u32),
                        Some(Resolved::Pos(_)) => guess[i],
                    };
                    (base_len + lens[i]) as u64
                }
            };
            pc += size;
        }
        pcs.push(pc);
        let required = (0..n)
            .map(|i| match targets[i] {
                Some(Resolved::Pos(p)) if p > i => offset_len(pcs[p] as u32, pcs[i] as u32),
                _ => lens[i],
            })
            .collect();
        Layout { pcs, lens, required }
    }

    fn finish(self) -> Result<Blob, AsmError> {
        let mut errors = Vec::new();
        let mut resolve = |target: &Target, line: usize| match self.resolve(target, line) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let targets: Vec<Option<Resolved>> = self
            .items
            .iter()
            .map(|item| match item {
                Item::Inst { line, target: Some(t), .. } => resolve(t, *line),
                _ => None,
            })
            .collect();
        let jump_table: Vec<Option<Resolved>> = self.jump_table.iter().map(|(line, t)| resolve(t, *line)).collect();
        if let Some(e) = errors.into_iter().min_by_key(|e| e.line) {
            return Err(e);
        }

        let mut current = self.layout(&targets, &vec![4; self.items.len()]);
        for _ in 0..MAX_RELAX {
            if current.required == current.lens {
                break;
            }
            let next = self.layout(&targets, &current.required);
            if !next.is_valid() {
                break;
            }
            current = next;
        }
        let Layout { pcs, lens, .. } = current;
        if let Some(i) = (0..self.items.len()).find(|&i| pcs[i + 1] > u32::MAX as u64) {
            let message = "code exceeds the 32-bit address space".to_string();
            return Err(AsmError { line: self.items[i].line(), message });
        }
        let pc_of = |r: Resolved| match r {
            Resolved::Pc(pc) => pc,
            Resolved::Pos(p) => pcs[p] as u32,
        };

        let mut code = Vec::with_capacity(pcs[self.items.len()] as usize);
        let mut starts = Vec::with_capacity(code.capacity());
        for (i, item) in self.items.iter().enumerate() {
            let (bytes, start) = match item {
                Item::Raw { bytes, start, .. } => (bytes.clone(), *start),
                Item::Inst { line, d, .. } => {
                    let mut d = *d;
                    d.target = targets[i].map(pc_of).unwrap_or(0);
                    let bytes = encode_with(&d, pcs[i] as u32, self.profile, Some(lens[i]))
                        .map_err(|message| AsmError { line: *line, message })?;
                    (bytes, true)
                }
            };
            starts.extend((0..bytes.len()).map(|k| k == 0 && start));
            code.extend_from_slice(&bytes);
        }
        let jump_table = jump_table.into_iter().map(|r| r.map(pc_of).unwrap_or(0)).collect();
        Ok(Blob::new(jump_table, code, starts))
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
}

fn split_operands(args: &str) -> Result<Vec<&str>, String> {
    if args.trim().is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = args.split(',').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty operand".to_string());
    }
    Ok(parts)
}

fn parse_reg(text: &str) -> Result<u8, String> {
    let bad = || format!("bad register '{text}' (expected r0..r12)");
    let digits = text.strip_prefix(['r', 'R']).ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match digits.parse::<u8>() {
        Ok(r) if r <= 12 => Ok(r),
        _ => Err(bad()),
    }
}

/// Parses a decimal or `0x` hex number, optionally negative, as a 64-bit two's-complement value.
fn parse_number(text: &str) -> Result<u64, String> {
    let bad = || format!("bad number '{text}' (expected decimal or 0x hex within 64 bits)");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).map_err(|_| bad())?
        }
        None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse::<u64>().map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    match negative {
        false => Ok(magnitude),
        true if magnitude <= 1 << 63 => Ok(magnitude.wrapping_neg()),
        true => Err(bad()),
    }
}

fn parse_byte(text: &str) -> Result<u8, String> {
    let v = parse_number(text)?;
    if v <= 0xFF || (-128..0).contains(&(v as i64)) {
        Ok(v as u8)
    } else {
        Err(format!("byte value '{text}' is outside -128..=255"))
    }
}

fn parse_target(text: &str) -> Result<Target, String> {
    if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        let v = parse_number(text)?;
        if v <= u32::MAX as u64 || (i32::MIN as i64..0).contains(&(v as i64)) {
            Ok(Target::Pc(v as u32))
        } else {
            Err(format!("target '{text}' is outside the 32-bit address space"))
        }
    } else if is_label_name(text) {
        Ok(Target::Label(text.to_string()))
    } else {
        Err(format!("bad target '{text}' (expected a label or a pc)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Code;
    use crate::disasm::format_instruction;

    fn asm(source: &str, profile: Profile) -> Blob {
        assemble(source, profile).unwrap_or_else(|e| panic!("{e}\n{source}"))
    }

    fn decode(blob: &Blob, pc: u32, profile: Profile) -> Decoded {
        Code::new(&blob.code, &blob.starts).decode(pc, profile)
    }

    fn start_pcs(blob: &Blob) -> Vec<usize> {
        (0..blob.starts.len()).filter(|&i| blob.starts[i]).collect()
    }

    fn err(source: &str, profile: Profile) -> AsmError {
        match assemble(source, profile) {
            Ok(blob) => panic!("assembled {source:?} to {:02x?}", blob.code),
            Err(e) => e,
        }
    }

    const IMMS: [u64; 16] = [
        0,
        1,
        u64::MAX,
        127,
        128,
        (-128i64) as u64,
        (-129i64) as u64,
        255,
        0x7fff,
        0x8000,
        (-0x8000i64) as u64,
        0x12345,
        0x7f_ffff,
        0x80_0000,
        0x7fff_ffff,
        0xffff_ffff_8000_0000,
    ];

    const WIDE: [u64; 4] = [0xdead_beef, u64::MAX, 0x8000_0000_0000_0000, 0x1234_5678_9abc_def0];

    /// Text for `op` with operands picked by `k`, and the target the `fwd` label should get
    /// (or a numeric target).
    fn operands_for(op: Op, k: usize) -> (Vec<String>, Option<&'static str>) {
        let mut target = None;
        let args = operands(op.format())
            .iter()
            .map(|slot| match slot {
                Operand::Ra => format!("r{}", k % 13),
                Operand::Rb => format!("r{}", (k + 5) % 13),
                Operand::Rd => format!("r{}", (k + 9) % 13),
                Operand::X if op == Op::LoadImm64 => format_imm(if k < WIDE.len() { WIDE[k] } else { IMMS[k] }),
                Operand::X => format_imm(IMMS[k]),
                Operand::Y => format_imm(IMMS[(k * 7 + 3) % IMMS.len()]),
                Operand::Target => {
                    let t = ["back", "here", "fwd", "0", "100000", "4294967200"][k % 6];
                    target = Some(t);
                    t.to_string()
                }
            })
            .collect();
        (args, target)
    }

    #[test]
    fn every_op_round_trips_in_every_profile() {
        let mut checked = 0;
        for op in Op::all() {
            for profile in Profile::ALL {
                let Some(number) = op.number(profile) else { continue };
                for k in 0..IMMS.len() {
                    let (args, target) = operands_for(op, k);
                    let text = if args.is_empty() {
                        op.mnemonic().to_string()
                    } else {
                        format!("{} {}", op.mnemonic(), args.join(", "))
                    };
                    let source = format!("back: fallthrough\nhere: {text}\nfallthrough\nfwd: trap\n");
                    let blob = asm(&source, profile);
                    assert_eq!(blob.code[1], number);
                    let d = decode(&blob, 1, profile);
                    assert!(d.defined);
                    assert_eq!(d.op, op);
                    let len = 1 + d.skip as usize;
                    assert_eq!(start_pcs(&blob), vec![0, 1, 1 + len, 2 + len], "{source}");
                    assert_eq!(blob.code.len(), 3 + len);
                    let fwd = 2 + len as u32;
                    if let Some(t) = target {
                        let expected = match t {
                            "back" => 0,
                            "here" => 1,
                            "fwd" => fwd,
                            n => n.parse().unwrap(),
                        };
                        assert_eq!(d.target, expected, "{source}");
                    }
                    let numeric = text.replace("fwd", &fwd.to_string()).replace("back", "0").replace("here", "1");
                    assert_eq!(format_instruction(&d), numeric, "profile {profile}");
                    let minimal = encode_instruction(&d, 1, profile).unwrap();
                    assert_eq!(&blob.code[1..1 + len], &minimal[..], "{source}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 400 * IMMS.len() / 4);
    }

    #[test]
    fn registers_in_every_slot() {
        for op in [Op::MoveReg, Op::Add64, Op::StoreIndU64, Op::BranchLtS, Op::LoadImmJumpInd, Op::StoreImmIndU8] {
            for r in 0..13u8 {
                let args: Vec<String> = operands(op.format())
                    .iter()
                    .enumerate()
                    .map(|(i, slot)| match slot {
                        Operand::Target => "0".to_string(),
                        Operand::X | Operand::Y => "3".to_string(),
                        _ => format!("r{}", (r as usize + 4 * i) % 13),
                    })
                    .collect();
                let blob = asm(&format!("{} {}", op.mnemonic(), args.join(", ")), Profile::A);
                let d = decode(&blob, 0, Profile::A);
                let regs: Vec<String> = operands(op.format())
                    .iter()
                    .filter_map(|slot| match slot {
                        Operand::Ra => Some(format!("r{}", d.ra)),
                        Operand::Rb => Some(format!("r{}", d.rb)),
                        Operand::Rd => Some(format!("r{}", d.rd)),
                        _ => None,
                    })
                    .collect();
                let expected: Vec<String> = args.iter().filter(|a| a.starts_with('r')).cloned().collect();
                assert_eq!(regs, expected, "{op}");
            }
        }
    }

    #[test]
    fn spec_examples_assemble_to_the_spec_bytes() {
        let cases: [(&str, &[u8]); 10] = [
            ("add_32 r9, r7, r8", &[0xbe, 0x87, 0x09]),
            ("store_ind_u16 r8, r7, 0x1001", &[0x79, 0x78, 0x01, 0x10]),
            ("add_imm_64 r7, r7, -100", &[0x95, 0x77, 0x9c]),
            ("store_imm_ind_u64 r7, 1, 0x778899aa", &[0x49, 0x17, 0x01, 0xaa, 0x99, 0x88, 0x77]),
            ("store_imm_u8 0x20000, 0x12", &[0x1e, 0x03, 0x00, 0x00, 0x02, 0x12]),
            ("load_imm_jump_ind r7, r7, 1234, 1", &[0xb4, 0x77, 0x02, 0xd2, 0x04, 0x01]),
            ("ecalli 3", &[0x0a, 0x03]),
            ("move_reg r0, r0", &[0x64, 0x00]),
            ("load_imm_64 r8, 0xdeadbeef", &[0x14, 0x08, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0]),
            ("load_imm r7, 2", &[0x33, 0x07, 0x02]),
        ];
        for (text, bytes) in cases {
            for profile in Profile::ALL {
                let blob = asm(text, profile);
                assert_eq!(blob.code, bytes, "{text}");
                assert_eq!(start_pcs(&blob), vec![0]);
                let text = format_instruction(&decode(&blob, 0, profile));
                assert_eq!(asm(&text, profile).code, bytes, "{text}");
            }
        }
        // `aa 87 04` at pc 8: branch_eq r7, r8 -> 12; `28 ce` at pc 50: jump -> 0.
        let blob = asm(".byte 0, 0, 0, 0, 0, 0, 0, 0\nbranch_eq r7, r8, 12", Profile::A);
        assert_eq!(blob.code[8..], [0xaa, 0x87, 0x04]);
        let blob = asm(&format!(".byte {}\njump 0", vec!["0"; 50].join(", ")), Profile::A);
        assert_eq!(blob.code[50..], [0x28, 0xce]);
    }

    #[test]
    fn worked_example_blob() {
        let source = "
            .jump_table target       ; address 2 -> entry 0
            load_imm r7, 2
            add_imm_64 r7, r7, -100
            jump_ind r7, 100
            trap
            target:
            load_imm_64 r8, 0xdeadbeef
        ";
        let blob = asm(source, Profile::A);
        let expected = [
            0x01, 0x01, 0x14, 0x0a, 0x33, 0x07, 0x02, 0x95, 0x77, 0x9c, 0x32, 0x07, 0x64, 0x00, 0x14, 0x08, 0xef, 0xbe,
            0xad, 0xde, 0x00, 0x00, 0x00, 0x00, 0x49, 0x06, 0x00,
        ];
        assert_eq!(blob.encode(), expected);
        assert_eq!(Blob::parse(&expected).unwrap(), blob);
    }

    #[test]
    fn immediates_use_the_shortest_form() {
        let len = |v: &str| asm(&format!("ecalli {v}"), Profile::A).code.len() - 1;
        assert_eq!(len("0"), 0);
        assert_eq!(len("-1"), 1);
        assert_eq!(len("0xffffffffffffffff"), 1);
        assert_eq!(len("127"), 1);
        assert_eq!(len("128"), 2);
        assert_eq!(len("-128"), 1);
        assert_eq!(len("-129"), 2);
        assert_eq!(len("0x7fffff"), 3);
        assert_eq!(len("0x800000"), 4);
        assert_eq!(len("-2147483648"), 4);
        assert_eq!(asm("ecalli 255", Profile::A).code, [0x0a, 0xff, 0x00]);
        assert_eq!(asm("ecalli -1", Profile::A).code, [0x0a, 0xff]);
        assert_eq!(asm("ecalli 0", Profile::A).code, [0x0a]);
        assert_eq!(asm("add_imm_64 r1, r2, 0", Profile::A).code, [0x95, 0x21]);
        assert_eq!(asm("jump 0", Profile::A).code, [0x28]);
        assert_eq!(asm("store_imm_u64 0, 0", Profile::A).code, [0x21, 0x00]);
        assert_eq!(asm("store_imm_ind_u32 r3, 0, -1", Profile::A).code, [0x48, 0x03, 0xff]);
        assert_eq!(asm("load_imm_jump_ind r1, r2, 0, 0", Profile::A).code, [0xb4, 0x21, 0x00]);
        assert_eq!(asm("LOAD_IMM R1, 0X10", Profile::A).code, [0x33, 0x01, 0x10]);
    }

    #[test]
    fn labels_backward_forward_and_at_the_end() {
        let source = "
            top:                      ; pc 0
                load_imm r1, 10
            loop: add_imm_64 r1, r1, -1
                branch_ne_imm r1, 0, loop
                branch_eq r1, r2, out
                jump top
            out: fallthrough
                jump end
            end:
        ";
        let blob = asm(source, Profile::B);
        let p = Profile::B;
        let starts = start_pcs(&blob);
        let at = |i: usize| decode(&blob, starts[i] as u32, p);
        assert_eq!(at(2).op, Op::BranchNeImm);
        assert_eq!(at(2).target, starts[1] as u32);
        assert_eq!(at(3).target, starts[5] as u32);
        assert_eq!(at(4).target, 0);
        assert_eq!(at(6).target, blob.code.len() as u32);
        // Forward references shrink to the shortest offsets: one byte each here.
        assert_eq!(at(3).skip, 2);
        assert_eq!(at(6).skip, 1);
        assert_eq!(format_instruction(&at(2)), format!("branch_ne_imm r1, 0, {}", starts[1]));
    }

    #[test]
    fn long_forward_branches_get_longer_offsets() {
        for (gap, offset_len) in [(100usize, 1u32), (200, 2), (40_000, 3)] {
            let fill = "fallthrough\n".repeat(gap);
            let source = format!("jump far\n{fill}far: trap\nbranch_eq r0, r1, start\nstart: trap");
            let blob = asm(&source, Profile::A);
            let d = decode(&blob, 0, Profile::A);
            assert_eq!(d.skip, offset_len, "gap {gap}");
            let far = 1 + offset_len + gap as u32;
            assert_eq!(d.target, far);
            assert_eq!(blob.code[far as usize - 1..far as usize + 1], [1, 0]);
        }
    }

    #[test]
    fn relaxation_handles_chains_of_forward_branches() {
        // Each branch jumps over the next ones; shrinking one shrinks the distances of others.
        let mut source = String::new();
        for i in 0..64 {
            source.push_str(&format!("branch_eq r1, r2, l{i}\n"));
        }
        source.push_str(&"trap\n".repeat(60));
        for i in 0..64 {
            source.push_str(&format!("l{i}: fallthrough\n"));
        }
        let blob = asm(&source, Profile::A);
        let starts = start_pcs(&blob);
        let labels = &starts[64 + 60..];
        for (i, &pc) in starts[..64].iter().enumerate() {
            let d = decode(&blob, pc as u32, Profile::A);
            assert_eq!(d.target, labels[i] as u32);
            let minimal = encode_instruction(&d, pc as u32, Profile::A).unwrap();
            assert_eq!(minimal.len(), 1 + d.skip as usize, "branch {i} is not minimal");
        }
    }

    #[test]
    fn raw_bytes_and_instruction_starts() {
        let blob = asm(".inst 0x05, 0x01\n.byte 0x33, -1\nfallthrough\n.inst 255", Profile::A);
        assert_eq!(blob.code, [0x05, 0x01, 0x33, 0xff, 0x01, 0xff]);
        assert_eq!(blob.starts, [true, false, false, false, true, true]);
        assert!(!decode(&blob, 0, Profile::A).defined);
        let blob = asm(".byte 1\nstart: trap\njump start", Profile::A);
        assert_eq!(blob.code, [0x01, 0x00, 0x28, 0xff]);
        assert_eq!(decode(&blob, 2, Profile::A).target, 1);
    }

    #[test]
    fn jump_tables() {
        let source = ".jump_table b, a, 7\n.jump_table 0x10\na: trap\nb: fallthrough\n";
        let blob = asm(source, Profile::A);
        assert_eq!(blob.jump_table, [1, 0, 7, 16]);
        assert_eq!(blob.entry_size, 1);
        let blob = asm(".jump_table 70000\ntrap", Profile::A);
        assert_eq!(blob.entry_size, 3);
        let blob = asm("trap", Profile::A);
        assert!(blob.jump_table.is_empty());
        assert_eq!((blob.entry_size, blob.jump_table_len), (0, 0));
    }

    #[test]
    fn comments_blank_lines_and_empty_source() {
        let blob = asm("# header\n\n   ; only a comment\ntrap ; trailing\nfallthrough # also\n", Profile::A);
        assert_eq!(blob.code, [0, 1]);
        let blob = asm("", Profile::A);
        assert!(blob.code.is_empty());
    }

    #[test]
    fn negative_and_wrapping_targets() {
        let blob = asm(".byte 0, 0\njump -2", Profile::A);
        assert_eq!(decode(&blob, 2, Profile::A).target, (-2i32) as u32);
        let blob = asm(".byte 0, 0\njump 4294967294", Profile::A);
        assert_eq!(decode(&blob, 2, Profile::A).target, u32::MAX - 1);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let p = Profile::A;
        let cases: &[(&str, Profile, usize, &str)] = &[
            ("trap\nfoo r1", p, 2, "unknown mnemonic 'foo'"),
            ("ecall", p, 1, "`ecall` is not defined in profile A (defined in profile J)"),
            ("unlikely", p, 1, "`unlikely` is not defined in profile A"),
            ("sbrk r1, r2", Profile::B, 1, "`sbrk` is not defined in profile B (defined in profile A, J)"),
            ("add_32 r1, r2", p, 1, "`add_32` takes 3 operands (rD, rA, rB), got 2"),
            ("trap r1", p, 1, "`trap` takes no operands, got 1"),
            ("jump", p, 1, "`jump` takes 1 operand (target), got 0"),
            ("add_32 r1, r2, r13", p, 1, "bad register 'r13' (expected r0..r12)"),
            ("move_reg x1, r2", p, 1, "bad register 'x1'"),
            ("move_reg r1,, r2", p, 1, "empty operand"),
            ("trap\n\njump nowhere", p, 3, "unknown label 'nowhere'"),
            (".jump_table missing\ntrap", p, 1, "unknown label 'missing'"),
            ("a: trap\nb: trap\na: trap", p, 3, "duplicate label 'a' (first defined on line 1)"),
            ("load_imm r1, 0xdeadbeef", p, 1, "use load_imm_64"),
            ("load_imm r1, 0xdeadbeef", p, 1, "its 4-byte encoding means 0xffffffffdeadbeef"),
            ("add_imm_64 r1, r1, 0x100000000", p, 1, "immediate 0x100000000 is not representable"),
            ("store_imm_u8 0, 0x80000000", p, 1, "not representable as a sign-extended immediate of at most 4 bytes"),
            ("load_imm r1, 12x", p, 1, "bad number '12x'"),
            ("load_imm r1, 0x", p, 1, "bad number '0x'"),
            ("load_imm_64 r1, 0x10000000000000000", p, 1, "bad number"),
            ("load_imm_64 r1, -9223372036854775809", p, 1, "bad number"),
            ("jump 4294967296", p, 1, "outside the 32-bit address space"),
            ("jump -2147483649", p, 1, "outside the 32-bit address space"),
            ("jump 1abc", p, 1, "bad number"),
            ("jump a-b", p, 1, "bad target 'a-b'"),
            (".byte 256", p, 1, "byte value '256' is outside -128..=255"),
            (".byte", p, 1, "`.byte` needs at least one byte"),
            (".inst", p, 1, "`.inst` needs at least one byte"),
            (".org 5", p, 1, "unknown directive '.org'"),
        ];
        for &(source, profile, line, message) in cases {
            let e = err(source, profile);
            assert_eq!(e.line, line, "{source}: {e}");
            assert!(e.message.contains(message), "{source}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
        assert_eq!(err("ecall", p).to_string(), "line 1: `ecall` is not defined in profile A (defined in profile J)");
        let boxed: Box<dyn std::error::Error> = Box::new(err("foo", p));
        assert_eq!(boxed.to_string(), "line 1: unknown mnemonic 'foo'");
    }

    #[test]
    fn accepted_immediate_spellings() {
        for text in ["-100", "0xffffffffffffff9c", "18446744073709551516", "-0x64"] {
            let blob = asm(&format!("load_imm r1, {text}"), Profile::A);
            assert_eq!(decode(&blob, 0, Profile::A).x as i64, -100, "{text}");
        }
        let blob = asm("load_imm_64 r1, -9223372036854775808", Profile::A);
        assert_eq!(decode(&blob, 0, Profile::A).x, 1 << 63);
        let blob = asm("load_imm r1, 0xffffffff80000000", Profile::A);
        assert_eq!(decode(&blob, 0, Profile::A).x, 0xffff_ffff_8000_0000);
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_text_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let len = rng.below(96);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            for profile in Profile::ALL {
                let _ = assemble(&text, profile);
            }
        }
    }

    #[test]
    fn random_token_soup_never_panics_and_round_trips() {
        let mnemonics: Vec<&str> = Op::all().map(Op::mnemonic).collect();
        let tokens: Vec<&str> = "r0|r7|r12|r13|R3|0|-1|0x7f|0x80000000|-0x80000000|4294967295|99999999999|\
            0xffffffffffffffff|a|b|a:|b:|:|,|, | |\n|\n|\n|;|#|.byte|.inst|.jump_table|-|0x|\u{e9}|\t|r|_x:|._:|$"
            .split('|')
            .collect();
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let mut assembled = 0;
        for _ in 0..4000 {
            let mut text = String::new();
            for _ in 0..rng.below(24) {
                if rng.below(4) == 0 {
                    text.push_str(mnemonics[rng.below(mnemonics.len())]);
                } else {
                    text.push_str(tokens[rng.below(tokens.len())]);
                }
                if rng.below(3) == 0 {
                    text.push(' ');
                }
            }
            for profile in Profile::ALL {
                if let Ok(blob) = assemble(&text, profile) {
                    assembled += 1;
                    let source = crate::disasm::to_source(&blob, profile);
                    let again = assemble(&source, profile).unwrap_or_else(|e| panic!("{e}\n{source}"));
                    assert_eq!((&again.code, &again.starts), (&blob.code, &blob.starts), "{text:?}");
                    assert_eq!(again.jump_table, blob.jump_table);
                }
            }
        }
        assert!(assembled > 100, "only {assembled} random sources assembled");
    }
}
