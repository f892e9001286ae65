//! Program blobs (PVMSPEC-1 §1): `varint(J) ‖ z ‖ varint(N) ‖ jump table ‖ code ‖ bitmask`.

use std::fmt;

use crate::starts::Starts;

/// Why a blob could not be parsed. Every variant names the byte offset where the problem
/// was found, so a report can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobError {
    /// The blob ended while reading `what`.
    Truncated { what: &'static str, offset: usize },
    /// A length field does not fit the address space.
    LengthTooLarge { what: &'static str, value: u64 },
    /// Jump-table entry size outside 0..=4.
    BadEntrySize { size: u8 },
    /// The code section is empty.
    EmptyCode,
    /// Bitmask padding bits past the end of the code are set.
    BitmaskPadding { byte: u8 },
    /// Bytes remain after the bitmask.
    TrailingBytes { count: usize },
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobError::Truncated { what, offset } => {
                write!(f, "blob truncated while reading {what} at byte {offset}")
            }
            BlobError::LengthTooLarge { what, value } => {
                write!(f, "{what} of {value} does not fit a 32-bit program")
            }
            BlobError::BadEntrySize { size } => {
                write!(f, "jump-table entry size {size} is outside 0..=4")
            }
            BlobError::EmptyCode => f.write_str("code section is empty"),
            BlobError::BitmaskPadding { byte } => {
                write!(f, "bitmask padding bits are not zero (last byte {byte:#04x})")
            }
            BlobError::TrailingBytes { count } => {
                write!(f, "{count} unexpected trailing bytes after the bitmask")
            }
        }
    }
}

impl std::error::Error for BlobError {}

/// A parsed program blob.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Blob {
    /// Jump-table entries (code offsets). Empty when `entry_size` is 0.
    pub jump_table: Vec<u32>,
    /// Number of jump-table entries. With an entry size of 0 every entry is the 0-byte
    /// number 0 (Gray Paper reading), so a table can have entries but no stored bytes.
    pub jump_table_len: u32,
    /// Jump-table entry size in bytes, as stored (0..=4).
    pub entry_size: u8,
    /// Code bytes.
    pub code: Vec<u8>,
    /// One flag per code byte: set where an instruction starts.
    pub starts: Starts,
}

/// Encodes `x` as a GP variable-length natural number (shortest form).
pub fn write_varint(out: &mut Vec<u8>, x: u64) {
    if x < 0x80 {
        out.push(x as u8);
        return;
    }
    for l in 1..8u32 {
        if x < 1u64 << (7 * (l + 1)) {
            let first = (256 - (1u32 << (8 - l))) as u64 + (x >> (8 * l));
            out.push(first as u8);
            out.extend_from_slice(&x.to_le_bytes()[..l as usize]);
            return;
        }
    }
    out.push(0xFF);
    out.extend_from_slice(&x.to_le_bytes());
}

/// Decodes a GP variable-length natural number at `*pos`, advancing it.
pub fn read_varint(bytes: &[u8], pos: &mut usize, what: &'static str) -> Result<u64, BlobError> {
    let start = *pos;
    let truncated = BlobError::Truncated { what, offset: start };
    let first = *bytes.get(start).ok_or(truncated.clone())?;
    let l = first.leading_ones() as usize;
    let tail = bytes.get(start + 1..start + 1 + l).ok_or(truncated)?;
    let mut low = [0u8; 8];
    low[..l].copy_from_slice(tail);
    let low = u64::from_le_bytes(low);
    let value = if l == 8 { low } else { (((first & (0x7F >> l)) as u64) << (8 * l)) | low };
    *pos = start + 1 + l;
    Ok(value)
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, len: usize, what: &'static str) -> Result<&'a [u8], BlobError> {
    let end = pos.checked_add(len).filter(|&e| e <= bytes.len());
    let end = end.ok_or(BlobError::Truncated { what, offset: *pos })?;
    let slice = &bytes[*pos..end];
    *pos = end;
    Ok(slice)
}

impl Blob {
    /// Parses a blob. Never panics and never allocates more than the input's size.
    pub fn parse(bytes: &[u8]) -> Result<Blob, BlobError> {
        let mut pos = 0;
        let entries = read_varint(bytes, &mut pos, "jump-table length")?;
        let entry_size = *take(bytes, &mut pos, 1, "jump-table entry size")?.first().unwrap_or(&0);
        if entry_size > 4 {
            return Err(BlobError::BadEntrySize { size: entry_size });
        }
        let code_len = read_varint(bytes, &mut pos, "code length")?;
        if code_len > u32::MAX as u64 {
            return Err(BlobError::LengthTooLarge { what: "code length", value: code_len });
        }
        if entries > u32::MAX as u64 {
            return Err(BlobError::LengthTooLarge { what: "jump-table length", value: entries });
        }
        let table_bytes = (entries as usize).checked_mul(entry_size as usize);
        let table_bytes = table_bytes.ok_or(BlobError::Truncated { what: "jump table", offset: pos })?;
        let table = take(bytes, &mut pos, table_bytes, "jump table")?;
        // One loop per entry size, each reading its entries' bytes at fixed places.
        let jump_table = match entry_size {
            0 => Vec::new(),
            1 => table.iter().map(|&b| u32::from(b)).collect(),
            2 => table.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
            3 => table.chunks_exact(3).map(|c| u32::from_le_bytes([c[0], c[1], c[2], 0])).collect(),
            _ => table.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        };
        let code_len = code_len as usize;
        let code = take(bytes, &mut pos, code_len, "code")?.to_vec();
        let mask = take(bytes, &mut pos, code_len.div_ceil(8), "bitmask")?;
        if pos != bytes.len() {
            return Err(BlobError::TrailingBytes { count: bytes.len() - pos });
        }
        if code.is_empty() {
            return Err(BlobError::EmptyCode);
        }
        if !code_len.is_multiple_of(8) {
            let last = mask[mask.len() - 1];
            if last >> (code_len % 8) != 0 {
                return Err(BlobError::BitmaskPadding { byte: last });
            }
        }
        let starts = Starts::from_mask(mask, code_len);
        Ok(Blob { jump_table, jump_table_len: entries as u32, entry_size, code, starts })
    }

    /// Jump-table entry `i` (0-based), if the table has one.
    pub fn jump_entry(&self, i: u32) -> Option<u32> {
        if i >= self.jump_table_len {
            None
        } else if self.entry_size == 0 {
            Some(0)
        } else {
            self.jump_table.get(i as usize).copied()
        }
    }

    /// Builds a blob from its parts with the smallest entry size that fits the table.
    pub fn new(jump_table: Vec<u32>, code: Vec<u8>, starts: impl Into<Starts>) -> Blob {
        let entry_size = Self::minimal_entry_size(&jump_table);
        Blob { jump_table_len: jump_table.len() as u32, jump_table, entry_size, code, starts: starts.into() }
    }

    /// The smallest jump-table entry size able to hold every entry (0 for an empty table).
    pub fn minimal_entry_size(jump_table: &[u32]) -> u8 {
        let max = jump_table.iter().copied().max();
        match max {
            None => 0,
            Some(m) if m < 1 << 8 => 1,
            Some(m) if m < 1 << 16 => 2,
            Some(m) if m < 1 << 24 => 3,
            Some(_) => 4,
        }
    }

    /// Encodes the blob. For a blob produced by [`Blob::parse`] from a canonical byte string
    /// (shortest varints) this gives back the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        let entry_size = if self.jump_table.is_empty() {
            self.entry_size
        } else {
            self.entry_size.max(Self::minimal_entry_size(&self.jump_table))
        };
        let table_len = if entry_size == 0 { self.jump_table_len as usize } else { self.jump_table.len() };
        let mut out = Vec::with_capacity(16 + self.code.len() * 9 / 8 + self.jump_table.len() * 4);
        write_varint(&mut out, table_len as u64);
        out.push(entry_size);
        write_varint(&mut out, self.code.len() as u64);
        for &entry in &self.jump_table {
            out.extend_from_slice(&entry.to_le_bytes()[..entry_size as usize]);
        }
        out.extend_from_slice(&self.code);
        out.extend_from_slice(&self.starts.packed(self.code.len()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(bytes: &[u8]) -> Result<u64, BlobError> {
        let mut pos = 0;
        let v = read_varint(bytes, &mut pos, "test")?;
        assert_eq!(pos, bytes.len(), "varint consumed the wrong number of bytes");
        Ok(v)
    }

    #[test]
    fn varint_examples_from_the_spec() {
        assert_eq!(varint(&[0x14]), Ok(20));
        assert_eq!(varint(&[0x80, 0xC8]), Ok(200));
        assert_eq!(varint(&[0xC1, 0x00, 0x00]), Ok(65536));
        assert_eq!(varint(&[0xFF, 1, 2, 3, 4, 5, 6, 7, 8]), Ok(0x0807060504030201));
    }

    #[test]
    fn varint_roundtrip_is_shortest() {
        for x in [0u64, 1, 127, 128, 200, 16383, 16384, 65536, 1 << 21, (1 << 28) - 1, 1 << 35, 1 << 56, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, x);
            assert_eq!(varint(&out), Ok(x), "{x}");
            let expected_len = (1..=9).find(|&len| len == 9 || x < 1u64 << (7 * len)).unwrap();
            assert_eq!(out.len(), expected_len, "{x}");
        }
    }

    #[test]
    fn varint_truncated() {
        assert!(matches!(varint(&[]), Err(BlobError::Truncated { .. })));
        assert!(matches!(varint(&[0x80]), Err(BlobError::Truncated { .. })));
        assert!(matches!(varint(&[0xFF, 0, 0]), Err(BlobError::Truncated { .. })));
    }

    #[test]
    fn parses_the_worked_example() {
        let bytes = [
            0x01, 0x01, 0x14, 0x0a, 0x33, 0x07, 0x02, 0x95, 0x77, 0x9c, 0x32, 0x07, 0x64, 0x00, 0x14, 0x08, 0xef, 0xbe,
            0xad, 0xde, 0x00, 0x00, 0x00, 0x00, 0x49, 0x06, 0x00,
        ];
        let blob = Blob::parse(&bytes).unwrap();
        assert_eq!(blob.jump_table, vec![10]);
        assert_eq!(blob.code.len(), 20);
        let starts: Vec<usize> = (0..20).filter(|&i| blob.starts[i]).collect();
        assert_eq!(starts, vec![0, 3, 6, 9, 10]);
        assert_eq!(blob.encode(), bytes);
    }

    #[test]
    fn every_bitmask_bit_becomes_its_start_flag() {
        // Code lengths around whole bytes of the mask; flags from a pattern with runs and
        // gaps, the last flag always set so the padding stays zero.
        for len in [1usize, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] {
            let flags: Vec<bool> = (0..len).map(|i| i % 3 == 0 || i % 7 == 5 || i + 1 == len).collect();
            let blob = Blob::new(vec![], vec![0; len], flags.clone());
            let parsed = Blob::parse(&blob.encode()).unwrap();
            assert_eq!(parsed.starts, flags, "code length {len}");
        }
    }

    #[test]
    fn rejects_bad_entry_size() {
        assert_eq!(Blob::parse(&[0, 5, 1, 0, 1]), Err(BlobError::BadEntrySize { size: 5 }));
    }

    #[test]
    fn zero_entry_size_with_entries_means_zero_offsets() {
        let blob = Blob::parse(&[0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 0, 1]).unwrap();
        assert_eq!(blob.jump_table_len, u32::MAX);
        assert_eq!(blob.jump_entry(7), Some(0));
        assert_eq!(blob.jump_entry(u32::MAX), None);
        assert_eq!(blob.encode(), [0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 0, 1]);
    }

    #[test]
    fn rejects_empty_code() {
        assert_eq!(Blob::parse(&[0, 0, 0]), Err(BlobError::EmptyCode));
    }

    #[test]
    fn rejects_truncation_at_every_length() {
        let full = [0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
        assert!(Blob::parse(&full).is_ok());
        for len in 0..full.len() {
            assert!(matches!(Blob::parse(&full[..len]), Err(BlobError::Truncated { .. })), "prefix of {len} bytes");
        }
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert_eq!(Blob::parse(&[0, 0, 1, 0, 1, 9]), Err(BlobError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn rejects_bitmask_padding() {
        assert_eq!(Blob::parse(&[0, 0, 1, 0, 0b11]), Err(BlobError::BitmaskPadding { byte: 0b11 }));
    }

    #[test]
    fn rejects_huge_lengths_without_allocating() {
        // Code length 2^32 + 1 and a jump table of 2^32 - 1 entries of 4 bytes.
        assert!(matches!(Blob::parse(&[0, 0, 0xF1, 1, 0, 0, 0]), Err(BlobError::LengthTooLarge { .. })));
        assert!(matches!(
            Blob::parse(&[0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 4, 1, 0, 1]),
            Err(BlobError::Truncated { what: "jump table", .. })
        ));
    }

    #[test]
    fn zero_entry_size_with_empty_table_is_fine() {
        let blob = Blob::parse(&[0, 0, 1, 0, 1]).unwrap();
        assert!(blob.jump_table.is_empty());
        assert_eq!(blob.starts, vec![true]);
    }
}
