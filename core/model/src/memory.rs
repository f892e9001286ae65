//! The model's page memory (PVMSPEC-1 §7): 2^20 pages of 4096 bytes, each inaccessible,
//! read-only or read-write; an untouched page costs no storage.

use std::collections::BTreeMap;

pub const PAGE: u64 = 4096;
/// `Z_Z`: failing accesses whose first bad byte is below this panic.
pub const LOW_LIMIT: u64 = 1 << 16;

/// Why a host operation (map, write, read) fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The range runs past 2^32.
    OutOfRange { address: u64, length: u64 },
    /// This byte of the range is not mapped.
    Unmapped { address: u32 },
}

/// How a guest access fails (§7's failure rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    Panic,
    PageFault(u32),
}

#[derive(Clone, Debug)]
struct Page {
    writable: bool,
    /// `None` while every byte is 0.
    bytes: Option<Box<[u8; PAGE as usize]>>,
}

/// Page number → page, for mapped pages only.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    pages: BTreeMap<u32, Page>,
    /// PolkaVM's reading of a store that runs from a read-only page into an unmapped one: it
    /// reports the unmapped page, §7 the read-only one. Off in the reference model.
    pub report_missing_page_first: bool,
}

impl Memory {
    pub fn clear(&mut self) {
        self.pages.clear();
    }

    /// Whether the page holding `address` is mapped (readable).
    pub fn is_mapped(&self, address: u32) -> bool {
        self.readable(address)
    }

    fn readable(&self, address: u32) -> bool {
        self.pages.contains_key(&(address / PAGE as u32))
    }

    fn writable(&self, address: u32) -> bool {
        self.pages.get(&(address / PAGE as u32)).is_some_and(|p| p.writable)
    }

    fn byte(&self, address: u32) -> u8 {
        let page = &self.pages[&(address / PAGE as u32)];
        page.bytes.as_ref().map_or(0, |b| b[(address as u64 % PAGE) as usize])
    }

    fn set_byte(&mut self, address: u32, value: u8) {
        let page = self.pages.get_mut(&(address / PAGE as u32)).expect("checked before");
        let bytes = page.bytes.get_or_insert_with(|| Box::new([0; PAGE as usize]));
        bytes[(address as u64 % PAGE) as usize] = value;
    }

    /// The byte addresses of an access: `addr, addr+1, …`, each mod 2^32.
    fn span(address: u32, len: u32) -> impl Iterator<Item = u32> {
        (0..len).map(move |i| address.wrapping_add(i))
    }

    /// §7: find the lowest byte of the access that lacks the permission, x; below 64 KiB
    /// panic, else page fault at floor(x / 4096) · 4096.
    fn check(&self, address: u32, len: u32, write: bool) -> Result<(), AccessError> {
        let fault = |x: u32| {
            if (x as u64) < LOW_LIMIT {
                AccessError::Panic
            } else {
                AccessError::PageFault((x as u64 / PAGE * PAGE) as u32)
            }
        };
        for x in Self::span(address, len) {
            let ok = if write { self.writable(x) } else { self.readable(x) };
            if !ok {
                if self.report_missing_page_first && self.readable(x) {
                    if let Some(missing) = Self::span(address, len).find(|&y| !self.readable(y)) {
                        return Err(fault(missing));
                    }
                }
                return Err(fault(x));
            }
        }
        Ok(())
    }

    /// A guest load of `len` bytes, little-endian.
    pub fn load(&self, address: u32, len: u32) -> Result<u64, AccessError> {
        self.check(address, len, false)?;
        let mut value = 0u64;
        for (i, x) in Self::span(address, len).enumerate() {
            value |= (self.byte(x) as u64) << (8 * i);
        }
        Ok(value)
    }

    /// A guest store: checked as a whole, then written.
    pub fn store(&mut self, address: u32, len: u32, value: u64) -> Result<(), AccessError> {
        self.check(address, len, true)?;
        for (i, x) in Self::span(address, len).enumerate() {
            self.set_byte(x, (value >> (8 * i)) as u8);
        }
        Ok(())
    }

    fn host_range(address: u32, length: u64) -> Result<(), HostError> {
        if address as u64 + length > 1 << 32 {
            return Err(HostError::OutOfRange { address: address as u64, length });
        }
        Ok(())
    }

    /// Maps the pages covering the range with the permission and zeroes them.
    pub fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), HostError> {
        Self::host_range(address, length)?;
        if length == 0 {
            return Ok(());
        }
        let first = address as u64 / PAGE;
        let last = (address as u64 + length - 1) / PAGE;
        for page in first..=last {
            self.pages.insert(page as u32, Page { writable, bytes: None });
        }
        Ok(())
    }

    /// The first byte of the range that is not mapped.
    fn unmapped(&self, address: u32, length: u64) -> Result<(), HostError> {
        Self::host_range(address, length)?;
        let mut page = address as u64 / PAGE;
        while page * PAGE < address as u64 + length {
            if !self.pages.contains_key(&(page as u32)) {
                let at = (page * PAGE).max(address as u64) as u32;
                return Err(HostError::Unmapped { address: at });
            }
            page += 1;
        }
        Ok(())
    }

    /// Host write, ignoring write protection; all or nothing.
    pub fn write(&mut self, address: u32, bytes: &[u8]) -> Result<(), HostError> {
        self.unmapped(address, bytes.len() as u64)?;
        for (i, &b) in bytes.iter().enumerate() {
            self.set_byte(address + i as u32, b);
        }
        Ok(())
    }

    /// Host read.
    pub fn read(&self, address: u32, length: u64) -> Result<Vec<u8>, HostError> {
        self.unmapped(address, length)?;
        Ok((0..length).map(|i| self.byte(address + i as u32)).collect())
    }

    /// Every mapped page in address order, with empty contents for a page never written.
    pub fn sparse_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.pages
            .iter()
            .map(|(&n, p)| {
                ((n as u64 * PAGE) as u32, p.writable, p.bytes.as_ref().map_or_else(Vec::new, |b| b.to_vec()))
            })
            .collect()
    }

    /// Every mapped page in address order.
    pub fn pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.pages
            .iter()
            .map(|(&n, p)| {
                let bytes = p.bytes.as_ref().map_or_else(|| vec![0; PAGE as usize], |b| b.to_vec());
                ((n as u64 * PAGE) as u32, p.writable, bytes)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rule_examples_of_the_spec() {
        let mut m = Memory::default();
        m.map(0x20000, 0x1000, true).unwrap();
        // An 8-byte store at 0x20FF9 with only 0x20000..0x20FFF mapped faults at 0x21000 and
        // writes nothing.
        assert_eq!(m.store(0x20FF9, 8, u64::MAX), Err(AccessError::PageFault(0x21000)));
        assert_eq!(m.load(0x20FF8, 8), Ok(0));
        assert_eq!(m.load(0xFFFF, 1), Err(AccessError::Panic));
        assert_eq!(m.load(0x10000, 1), Err(AccessError::PageFault(0x10000)));
        // Wrap-around: page 0xFFFFF000 accessible → the first bad byte is 0 → panic.
        m.map(0xFFFF_F000, 0x1000, false).unwrap();
        assert_eq!(m.load(0xFFFF_FFFF, 8), Err(AccessError::Panic));
        assert_eq!(m.store(0xFFFF_F000, 1, 1), Err(AccessError::PageFault(0xFFFF_F000)));
        let mut n = Memory::default();
        assert_eq!(n.load(0xFFFF_FFFF, 8), Err(AccessError::PageFault(0xFFFF_F000)));
        assert_eq!(
            n.map(0xFFFF_F000, 0x1001, true),
            Err(HostError::OutOfRange { address: 0xFFFF_F000, length: 0x1001 })
        );
    }
}
