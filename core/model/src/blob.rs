//! The blob layout of PVMSPEC-1 §1, parsed by the model itself.

/// A decoded blob: the jump table, the code `c` and its bitmask `k`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelBlob {
    /// `J`, the number of jump-table entries.
    pub table_len: u64,
    /// `z`, the bytes per entry.
    pub entry_size: usize,
    /// The entries, each a `z`-byte little-endian offset; empty when `z = 0`, where every
    /// entry is the 0-byte number 0.
    stored: Vec<u64>,
    pub code: Vec<u8>,
    /// `k[i]`: byte `i` starts an instruction.
    pub k: Vec<bool>,
}

/// §1.1: `l` = leading one bits of the first byte; `l = 8` → the next 8 bytes; otherwise
/// `(first & (0x7F >> l)) · 2^(8l)` plus the next `l` bytes little-endian.
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let first = *bytes.get(*at)?;
    let l = first.leading_ones() as usize;
    let mut tail: u64 = 0;
    for i in 0..l {
        tail |= (*bytes.get(*at + 1 + i)? as u64) << (8 * i);
    }
    *at += 1 + l;
    if l == 8 {
        Some(tail)
    } else {
        Some((((first & (0x7F >> l)) as u64) << (8 * l)) + tail)
    }
}

/// §1.2, with the project's decision of §3.4: a blob fails only when it is malformed or its
/// code is empty. Lengths must fit 32 bits (as PolkaVM's reader requires).
pub fn parse(bytes: &[u8]) -> Option<ModelBlob> {
    let mut at = 0usize;
    let entries = varint(bytes, &mut at)?;
    let z = *bytes.get(at)? as usize;
    at += 1;
    if z > 4 {
        return None;
    }
    let n = varint(bytes, &mut at)?;
    if entries >= 1 << 32 || n >= 1 << 32 || n == 0 {
        return None;
    }
    let (entries, n) = (entries as usize, n as usize);
    // Never allocate more than the input holds.
    if entries.checked_mul(z)? > bytes.len() || n > bytes.len() {
        return None;
    }
    let mut stored = Vec::new();
    for _ in 0..if z == 0 { 0 } else { entries } {
        let mut v = 0u64;
        for b in 0..z {
            v |= (*bytes.get(at + b)? as u64) << (8 * b);
        }
        at += z;
        stored.push(v);
    }
    let code = bytes.get(at..at.checked_add(n)?)?.to_vec();
    at += n;
    let mask = bytes.get(at..at + n.div_ceil(8))?;
    at += mask.len();
    if at != bytes.len() {
        return None;
    }
    let bit = |i: usize| mask[i / 8] >> (i % 8) & 1 == 1;
    // Padding bits past the code must be 0.
    if (n..mask.len() * 8).any(bit) {
        return None;
    }
    let k = (0..n).map(bit).collect();
    Some(ModelBlob { table_len: entries as u64, entry_size: z, stored, code, k })
}

impl ModelBlob {
    /// Jump-table entry `i` (`i < J`).
    pub fn entry(&self, i: u64) -> u64 {
        self.stored.get(i as usize).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_examples_of_the_spec() {
        for (bytes, value) in [(&[0x14][..], 20), (&[0x80, 0xC8], 200), (&[0xC1, 0x00, 0x00], 65536)] {
            let mut at = 0;
            assert_eq!(varint(bytes, &mut at), Some(value));
            assert_eq!(at, bytes.len());
        }
    }

    #[test]
    fn worked_example() {
        let blob = [
            0x01, 0x01, 0x14, 0x0a, 0x33, 0x07, 0x02, 0x95, 0x77, 0x9c, 0x32, 0x07, 0x64, 0x00, 0x14, 0x08, 0xef, 0xbe,
            0xad, 0xde, 0x00, 0x00, 0x00, 0x00, 0x49, 0x06, 0x00,
        ];
        let b = parse(&blob).unwrap();
        assert_eq!((b.table_len, b.entry(0)), (1, 10));
        assert_eq!(b.code.len(), 20);
        let starts: Vec<usize> = (0..20).filter(|&i| b.k[i]).collect();
        assert_eq!(starts, vec![0, 3, 6, 9, 10]);
    }

    #[test]
    fn malformed_blobs_are_refused() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0, 0, 0]), None, "empty code");
        assert_eq!(parse(&[0, 5, 1, 0, 1]), None, "entry size 5");
        assert_eq!(parse(&[0, 0, 1, 0, 0x03]), None, "padding bit set");
        assert_eq!(parse(&[0, 0, 1, 0, 1, 9]), None, "trailing byte");
        assert_eq!(parse(&[0, 0, 2, 0]), None, "truncated");
        assert!(parse(&[0, 0, 1, 0, 1]).is_some());
        let b = parse(&[3, 0, 1, 0, 1]).unwrap();
        assert_eq!((b.table_len, b.entry(2)), (3, 0), "z = 0 entries are 0");
        let huge = parse(&[0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 0, 1]).unwrap();
        assert_eq!(huge.table_len, u32::MAX as u64, "a huge table of 0-byte entries costs nothing");
    }
}
