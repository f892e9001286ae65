//! Disassembler: renders code in the text form that [`crate::asm`] reads.
//!
//! Every code byte appears in the listing. An instruction whose bytes start with the
//! assembler's shortest encoding of its decoded operands is printed as text; the bytes of
//! its skip that follow are printed as `.byte` lines. Anything else (an undefined opcode, an
//! encoding the assembler would not produce, bytes before the first instruction start or in
//! a gap longer than 24 bytes) is printed as `.inst` / `.byte` raw bytes, with the decoded
//! text as a comment where there is one. So [`to_source`] assembles back to the same code,
//! bitmask and jump table.

use crate::asm::{encode_instruction, operands, Operand};
use crate::blob::Blob;
use crate::decode::{Code, Decoded};
use crate::isa::Profile;

/// Raw bytes per `.byte` line and entries per `.jump_table` line.
const PER_LINE: usize = 16;

/// Formats an immediate: signed decimal when the value as i64 is in -65536..=65536, else
/// `0x` hex of the 64-bit value.
pub fn format_imm(v: u64) -> String {
    if (-65536..=65536).contains(&(v as i64)) {
        (v as i64).to_string()
    } else {
        format!("{v:#x}")
    }
}

/// Formats a decoded instruction, e.g. `add_32 r9, r7, r8`. Targets are absolute pcs. An
/// instruction that is not defined (`d.defined == false`) prints as `trap`, which is how it
/// executes; use [`format_at`] to see the raw byte.
pub fn format_instruction(d: &Decoded) -> String {
    if !d.defined {
        return "trap".to_string();
    }
    let args: Vec<String> = operands(d.op.format())
        .iter()
        .map(|slot| match slot {
            Operand::Ra => format!("r{}", d.ra),
            Operand::Rb => format!("r{}", d.rb),
            Operand::Rd => format!("r{}", d.rd),
            Operand::X => format_imm(d.x),
            Operand::Y => format_imm(d.y),
            Operand::Target => d.target.to_string(),
        })
        .collect();
    if args.is_empty() {
        d.op.mnemonic().to_string()
    } else {
        format!("{} {}", d.op.mnemonic(), args.join(", "))
    }
}

fn raw(directive: &str, bytes: &[u8]) -> String {
    let list: Vec<String> = bytes.iter().map(|b| format!("{b:#04x}")).collect();
    format!("{directive} {}", list.join(", "))
}

/// Formats whatever is at `pc`: an instruction, `.inst 0xNN` for an undefined opcode at an
/// instruction start, `.byte 0xNN` for a byte that is not an instruction start, and `trap`
/// past the end of the code.
pub fn format_at(code: &Code, pc: u32, profile: Profile) -> String {
    let p = pc as usize;
    if p < code.len() {
        if !code.is_start(p) {
            return raw(".byte", &code.bytes[p..=p]);
        }
        if code.defined_op(p, profile).is_none() {
            return raw(".inst", &code.bytes[p..=p]);
        }
    }
    format_instruction(&code.decode(pc, profile))
}

/// One listing line: the pc of its first byte and its text.
struct Line {
    pc: usize,
    text: String,
}

fn listing(blob: &Blob, profile: Profile) -> Vec<Line> {
    let code = Code::new(&blob.code, &blob.starts);
    let n = code.len();
    let mut lines = Vec::new();
    let mut pc = 0;
    while pc < n {
        if !code.is_start(pc) {
            let end = (pc + 1..n).find(|&i| code.is_start(i)).unwrap_or(n);
            for (k, chunk) in blob.code[pc..end].chunks(PER_LINE).enumerate() {
                lines.push(Line { pc: pc + k * PER_LINE, text: raw(".byte", chunk) });
            }
            pc = end;
            continue;
        }
        let d = code.decode(pc as u32, profile);
        let full = &blob.code[pc..pc + 1 + d.skip as usize];
        let (text, len) = if !d.defined {
            (raw(".inst", &full[..1]), 1)
        } else {
            match encode_instruction(&d, pc as u32, profile) {
                Ok(enc) if full.starts_with(&enc) => (format_instruction(&d), enc.len()),
                _ => (format!("{} ; {}", raw(".inst", full), format_instruction(&d)), full.len()),
            }
        };
        lines.push(Line { pc, text });
        pc += len;
    }
    lines
}

fn header(blob: &Blob) -> Vec<String> {
    if blob.jump_table.is_empty() {
        if blob.jump_table_len > 0 {
            return vec![format!("; jump table: {} entries of entry size 0", blob.jump_table_len)];
        }
        return Vec::new();
    }
    blob.jump_table
        .chunks(PER_LINE)
        .map(|chunk| {
            let entries: Vec<String> = chunk.iter().map(u32::to_string).collect();
            format!(".jump_table {}", entries.join(", "))
        })
        .collect()
}

fn join_lines(lines: impl IntoIterator<Item = String>) -> String {
    lines.into_iter().fold(String::new(), |mut out, line| {
        out.push_str(&line);
        out.push('\n');
        out
    })
}

/// A listing of the whole blob: the jump table (if any), then one `{pc:>6}: {text}` line
/// per instruction or run of raw bytes.
pub fn disassemble(blob: &Blob, profile: Profile) -> String {
    let lines = listing(blob, profile).into_iter().map(|l| format!("{:>6}: {}", l.pc, l.text));
    join_lines(header(blob).into_iter().chain(lines))
}

/// The listing of [`disassemble`] without the pc column: assembler source that
/// [`crate::asm::assemble`] turns back into the same code, bitmask and jump table.
pub fn to_source(blob: &Blob, profile: Profile) -> String {
    join_lines(header(blob).into_iter().chain(listing(blob, profile).into_iter().map(|l| l.text)))
}

/// The listing lines around `pc`: up to `before` lines before the one containing `pc`,
/// that line marked with `>`, and up to `after` lines after it. A `pc` at or past the end of
/// the code is shown as a marked `(end of code)` line after the last `before` lines.
pub fn disassemble_around(blob: &Blob, profile: Profile, pc: u32, before: usize, after: usize) -> String {
    let lines = listing(blob, profile);
    let pc = pc as usize;
    let show = |l: &Line, marked: bool| format!("{} {:>6}: {}", if marked { '>' } else { ' ' }, l.pc, l.text);
    let mut out = Vec::new();
    if pc < blob.code.len() && !lines.is_empty() {
        let at = lines.partition_point(|l| l.pc <= pc).saturating_sub(1);
        let first = at.saturating_sub(before);
        let last = at.saturating_add(after);
        for (i, line) in lines.iter().enumerate().take(last.saturating_add(1)).skip(first) {
            out.push(show(line, i == at));
        }
    } else {
        for line in &lines[lines.len().saturating_sub(before)..] {
            out.push(show(line, false));
        }
        out.push(format!("> {pc:>6}: (end of code)"));
    }
    join_lines(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::assemble;
    use crate::isa::Op;

    fn blob(code: &[u8], starts: &[usize], jump_table: Vec<u32>) -> Blob {
        let flags: Vec<bool> = (0..code.len()).map(|i| starts.contains(&i)).collect();
        Blob::new(jump_table, code.to_vec(), flags)
    }

    fn worked_example() -> Blob {
        let code = [
            0x33, 0x07, 0x02, 0x95, 0x77, 0x9c, 0x32, 0x07, 0x64, 0x00, 0x14, 0x08, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0,
        ];
        blob(&code, &[0, 3, 6, 9, 10], vec![10])
    }

    fn strip_pcs(listing: &str) -> String {
        listing.lines().map(|l| l.split_once(": ").map_or(l, |(_, text)| text).to_string() + "\n").collect()
    }

    #[test]
    fn immediates_format_as_decimal_or_hex() {
        assert_eq!(format_imm(0), "0");
        assert_eq!(format_imm((-100i64) as u64), "-100");
        assert_eq!(format_imm(65536), "65536");
        assert_eq!(format_imm(65537), "0x10001");
        assert_eq!(format_imm((-65536i64) as u64), "-65536");
        assert_eq!(format_imm((-65537i64) as u64), "0xfffffffffffeffff");
        assert_eq!(format_imm(0xdead_beef), "0xdeadbeef");
    }

    #[test]
    fn disassembles_the_worked_example() {
        let expected = "\
.jump_table 10
     0: load_imm r7, 2
     3: add_imm_64 r7, r7, -100
     6: jump_ind r7, 100
     9: trap
    10: load_imm_64 r8, 0xdeadbeef
";
        assert_eq!(disassemble(&worked_example(), Profile::A), expected);
        assert_eq!(to_source(&worked_example(), Profile::A), strip_pcs(expected));
    }

    #[test]
    fn formats_spec_examples() {
        let cases: [(&[u8], &str); 9] = [
            (&[0xbe, 0x87, 0x09], "add_32 r9, r7, r8"),
            (&[0x79, 0x78, 0x01, 0x10], "store_ind_u16 r8, r7, 4097"),
            (&[0x95, 0x77, 0x9c], "add_imm_64 r7, r7, -100"),
            (&[0x49, 0x17, 0x01, 0xaa, 0x99, 0x88, 0x77], "store_imm_ind_u64 r7, 1, 0x778899aa"),
            (&[0x1e, 0x03, 0x00, 0x00, 0x02, 0x12], "store_imm_u8 0x20000, 18"),
            (&[0xb4, 0x77, 0x02, 0xd2, 0x04, 0x01], "load_imm_jump_ind r7, r7, 1234, 1"),
            (&[0x0a, 0x03], "ecalli 3"),
            (&[0x64, 0x00], "move_reg r0, r0"),
            (&[0x28, 0xce], "jump 4294967246"),
        ];
        for (bytes, text) in cases {
            let b = blob(bytes, &[0], vec![]);
            let code = Code::new(&b.code, &b.starts);
            assert_eq!(format_instruction(&code.decode(0, Profile::A)), text);
            assert_eq!(format_at(&code, 0, Profile::A), text);
        }
    }

    #[test]
    fn undefined_opcodes_raw_bytes_and_format_at() {
        // 0x02 is undefined in profile A, `unlikely` in B; byte 1 is not a start.
        let b = blob(&[0x02, 0x07, 0x00], &[0, 2], vec![]);
        let code = Code::new(&b.code, &b.starts);
        assert_eq!(format_at(&code, 0, Profile::A), ".inst 0x02");
        assert_eq!(format_at(&code, 0, Profile::B), "unlikely");
        assert_eq!(format_at(&code, 1, Profile::A), ".byte 0x07");
        assert_eq!(format_at(&code, 9, Profile::A), "trap");
        assert_eq!(format_instruction(&code.decode(0, Profile::A)), "trap");
        assert_eq!(to_source(&b, Profile::A), ".inst 0x02\n.byte 0x07\ntrap\n");
        assert_eq!(to_source(&b, Profile::B), "unlikely\n.byte 0x07\ntrap\n");
    }

    #[test]
    fn non_canonical_encodings_keep_their_bytes() {
        let cases: [(&[u8], &[usize], &str); 7] = [
            // Sign-extension padding of the last immediate: text plus the extra bytes.
            (&[0x33, 0x07, 0x02, 0x00], &[0], "load_imm r7, 2\n.byte 0x00\n"),
            (&[0x0a, 0xff, 0xff, 0xff], &[0], "ecalli -1\n.byte 0xff, 0xff\n"),
            // A non-minimal length nibble, a register nibble above 12, a truncated 8-byte
            // immediate, a garbage high nibble: raw bytes with the decoded text.
            (&[0x1e, 0x02, 0x05, 0x00, 0x07], &[0], ".inst 0x1e, 0x02, 0x05, 0x00, 0x07 ; store_imm_u8 5, 7\n"),
            (&[0x64, 0xf1], &[0], ".inst 0x64, 0xf1 ; move_reg r1, r12\n"),
            (&[0x14, 0x07, 0x01], &[0], ".inst 0x14, 0x07, 0x01 ; load_imm_64 r7, 1\n"),
            (&[0x33, 0x57, 0x02], &[0], ".inst 0x33, 0x57, 0x02 ; load_imm r7, 2\n"),
            // Bytes before the first instruction start.
            (&[0x11, 0x22, 0x00], &[2], ".byte 0x11, 0x22\ntrap\n"),
        ];
        for (code, starts, expected) in cases {
            let b = blob(code, starts, vec![]);
            let source = to_source(&b, Profile::A);
            assert_eq!(source, expected);
            let again = assemble(&source, Profile::A).unwrap();
            assert_eq!((again.code, again.starts), (b.code, b.starts));
        }
    }

    #[test]
    fn long_gaps_are_listed_in_chunks() {
        let mut code = vec![0x01];
        code.extend(1..=40u8);
        code.push(0);
        let b = blob(&code, &[0, 41], vec![]);
        let listing = disassemble(&b, Profile::A);
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "     0: fallthrough");
        assert!(lines[1].starts_with("     1: .byte 0x01, 0x02,"));
        assert!(lines[2].starts_with("    17: .byte 0x11,"));
        assert_eq!(lines[3], "    33: .byte 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28");
        assert_eq!(lines[4], "    41: trap");
        let again = assemble(&strip_pcs(&listing), Profile::A).unwrap();
        assert_eq!((again.code, again.starts), (b.code, b.starts));
    }

    #[test]
    fn disassembly_is_stable_through_the_assembler() {
        let source = "
            .jump_table loop, out
                load_imm r1, 10
                load_imm_64 r2, 0x123456789abcdef
            loop: add_imm_64 r1, r1, -1
                store_imm_ind_u32 r2, 8, 0xffffffffdeadbeef
                branch_ne_imm r1, 0, loop
                branch_lt_u r1, r2, out
                load_imm_jump r3, 77, loop
                ecalli 255
            out: trap
        ";
        for profile in Profile::ALL {
            let first = assemble(source, profile).unwrap();
            let text = disassemble(&first, profile);
            let second = assemble(&strip_pcs(&text), profile).unwrap();
            assert_eq!(second, first);
            assert_eq!(disassemble(&second, profile), text);
            assert!(text.contains("    23: branch_ne_imm r1, 0, 13\n"), "{text}");
            assert!(text.contains("store_imm_ind_u32 r2, 8, 0xffffffffdeadbeef\n"), "{text}");
        }
    }

    #[test]
    fn around_marks_the_line_containing_pc() {
        let b = worked_example();
        let around = disassemble_around(&b, Profile::A, 6, 1, 1);
        assert_eq!(around, "       3: add_imm_64 r7, r7, -100\n>      6: jump_ind r7, 100\n       9: trap\n");
        // A pc inside an instruction marks that instruction.
        let around = disassemble_around(&b, Profile::A, 12, 0, 0);
        assert_eq!(around, ">     10: load_imm_64 r8, 0xdeadbeef\n");
        let around = disassemble_around(&b, Profile::A, 0, 5, usize::MAX);
        assert_eq!(around.lines().count(), 5);
        assert!(around.starts_with(">      0: load_imm r7, 2\n"));
        let around = disassemble_around(&b, Profile::A, 20, 2, 3);
        assert_eq!(around, "       9: trap\n      10: load_imm_64 r8, 0xdeadbeef\n>     20: (end of code)\n");
        let empty = Blob::new(vec![], vec![], vec![]);
        assert_eq!(disassemble_around(&empty, Profile::A, 0, 3, 3), ">      0: (end of code)\n");
        assert_eq!(disassemble(&empty, Profile::A), "");
    }

    #[test]
    fn zero_entry_size_tables_are_noted() {
        let b = Blob::parse(&[0x03, 0, 1, 0, 1]).unwrap();
        assert_eq!(disassemble(&b, Profile::A), "; jump table: 3 entries of entry size 0\n     0: trap\n");
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
    fn random_blobs_disassemble_and_reassemble_exactly() {
        let numbers: Vec<u8> = Op::all().filter_map(|op| op.number(Profile::A)).collect();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for round in 0..3000 {
            let len = 1 + rng.below(if round % 10 == 0 { 200 } else { 40 });
            let density = 1 + rng.below(6);
            let mut code = Vec::with_capacity(len);
            let mut starts = Vec::with_capacity(len);
            for _ in 0..len {
                let start = rng.below(density) == 0;
                let byte = if start && rng.below(4) != 0 {
                    numbers[rng.below(numbers.len())]
                } else if rng.below(3) == 0 {
                    [0x00, 0xff, 0x0c, 0xf0, 0x80, 0x7f][rng.below(6)]
                } else {
                    rng.next() as u8
                };
                code.push(byte);
                starts.push(start);
            }
            let jump_table: Vec<u32> = (0..rng.below(4)).map(|_| rng.below(len + 2) as u32).collect();
            let b = Blob::new(jump_table, code, starts);
            for profile in Profile::ALL {
                let listing = disassemble(&b, profile);
                let source = to_source(&b, profile);
                assert_eq!(strip_pcs(&listing), source);
                let again = assemble(&source, profile).unwrap_or_else(|e| panic!("{e}\n{source}"));
                assert_eq!((&again.code, &again.starts), (&b.code, &b.starts), "{source}");
                assert_eq!(again.jump_table, b.jump_table);
                assert_eq!(disassemble(&again, profile), listing);
                let pc = rng.below(len + 3) as u32;
                let around = disassemble_around(&b, profile, pc, 2, 2);
                assert_eq!(around.lines().filter(|l| l.starts_with('>')).count(), 1);
                let code = Code::new(&b.code, &b.starts);
                let _ = format_at(&code, pc, profile);
            }
        }
    }
}
