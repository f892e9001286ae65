//! Guest memory (PVMSPEC-1 §7): a 32-bit address space of 4 KiB pages, each inaccessible,
//! read-only or read-write, with the fault rules of the spec.

use std::cell::Cell;
use std::fmt;

pub const PAGE_SIZE: u32 = 4096;
pub const PAGE_SHIFT: u32 = 12;
/// Failing accesses whose first bad byte is below this address panic instead of faulting.
pub const LOW_MEMORY_LIMIT: u32 = 1 << 16;
const PAGE_COUNT: usize = 1 << 20;
const WRITABLE: u32 = 1 << 31;
const MAPPED: u32 = 1 << 30;
/// The slot bits of a page-table entry; slot 0 is the shared zero page.
const SLOT: u32 = MAPPED - 1;
/// No page number: the recent-page caches are empty.
const NO_PAGE: u32 = u32::MAX;

/// Why a guest access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The first bad byte is below 64 KiB.
    Panic,
    /// Page fault at this page-aligned address.
    PageFault(u32),
}

/// Why a host (harness or kernel) memory operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// The range runs past 2^32.
    OutOfRange { address: u64, length: u64 },
    /// A byte of the range is not mapped.
    Unmapped { address: u32 },
    /// A byte of the range is not writable (guest-permission writes only).
    ReadOnly { address: u32 },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::OutOfRange { address, length } => {
                write!(f, "range {address:#x}+{length:#x} runs past the 32-bit address space")
            }
            MemoryError::Unmapped { address } => write!(f, "address {address:#x} is not mapped"),
            MemoryError::ReadOnly { address } => write!(f, "address {address:#x} is read-only"),
        }
    }
}

impl std::error::Error for MemoryError {}

/// Page access mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Checks a host range and returns `(start, end)` as u64.
pub fn host_range(address: u32, length: u64) -> Result<(u64, u64), MemoryError> {
    let end = address as u64 + length;
    if end > 1 << 32 {
        return Err(MemoryError::OutOfRange { address: address as u64, length });
    }
    Ok((address as u64, end))
}

/// A sparse paged memory. A mapped page gets storage only when it is first written (until
/// then it reads as the shared zero page), so a large mapping costs what the program touches.
/// Storage is kept for reuse after [`PageMemory::reset`], so one instance can run many
/// programs cheaply.
pub struct PageMemory {
    /// Per page: 0 when unmapped, else `MAPPED | WRITABLE? | slot` (slot 0: all zero).
    table: Box<[u32; PAGE_COUNT]>,
    /// Page storage, one slot after another; slot 0 is the zero page and is never written.
    data: Vec<[u8; PAGE_SIZE as usize]>,
    /// Pages recent loads went through. A load from them skips the table, so on the host the
    /// access's address does not wait for a table lookup; that latency dominated load-heavy
    /// programs.
    reads: Recent,
    /// The same for recent stores (writable pages with storage of their own).
    writes: Recent,
    /// Slots in use (slot 0 included).
    used: usize,
    /// Mapped page numbers, in the order they were first mapped.
    mapped: Vec<u32>,
}

/// How many pages a [`Recent`] holds.
const RECENT: usize = 16;

/// Recently used pages, each in the entry its page number's low bits pick (`NO_PAGE` when
/// empty), with its slot. One entry per page number, so a lookup is one comparison whichever
/// of the pages the access goes to (programs alternate between their stack and their data,
/// and a branch on which one it was is mispredicted). Cells, so a load (`&self`) can remember
/// its page.
struct Recent {
    entries: [Cell<(u32, u32)>; RECENT],
}

impl Recent {
    fn new() -> Self {
        Recent { entries: std::array::from_fn(|_| Cell::new((NO_PAGE, 0))) }
    }

    #[inline(always)]
    fn entry(&self, page: u32) -> &Cell<(u32, u32)> {
        &self.entries[page as usize % RECENT]
    }

    /// The slot of `page` if it is remembered.
    #[inline(always)]
    fn slot(&self, page: u32) -> Option<usize> {
        let (held, slot) = self.entry(page).get();
        (held == page).then_some(slot as usize)
    }

    /// Remembers `page` (in `slot`), in place of the page that shares its entry.
    fn remember(&self, page: u32, slot: usize) {
        self.entry(page).set((page, slot as u32));
    }

    fn forget(&self) {
        for entry in &self.entries {
            entry.set((NO_PAGE, 0));
        }
    }

    fn forget_page(&self, page: u32) {
        if self.entry(page).get().0 == page {
            self.entry(page).set((NO_PAGE, 0));
        }
    }
}

impl Default for PageMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PageMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageMemory")
            .field("mapped_pages", &self.mapped.len())
            .field("stored_pages", &(self.used - 1))
            .finish()
    }
}

impl PageMemory {
    pub fn new() -> Self {
        PageMemory {
            table: vec![0; PAGE_COUNT].into_boxed_slice().try_into().expect("PAGE_COUNT entries"),
            data: vec![[0; PAGE_SIZE as usize]],
            reads: Recent::new(),
            writes: Recent::new(),
            used: 1,
            mapped: Vec::new(),
        }
    }

    /// Unmaps everything, keeping allocated pages for reuse.
    pub fn reset(&mut self) {
        self.forget_recent();
        for &page in &self.mapped {
            self.table[page as usize] = 0;
        }
        self.mapped.clear();
        self.used = 1;
    }

    /// Maps the pages covering `[address, address + length)` with the given permission and
    /// zeroes them. Already-mapped pages get the new permission and are zeroed too. No page
    /// storage is allocated here.
    pub fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError> {
        let (start, end) = host_range(address, length)?;
        if length == 0 {
            return Ok(());
        }
        let first = (start >> PAGE_SHIFT) as u32;
        let last = ((end - 1) >> PAGE_SHIFT) as u32;
        let perm = MAPPED | if writable { WRITABLE } else { 0 };
        self.forget_recent();
        for page in first..=last {
            let entry = self.table[page as usize];
            if entry == 0 {
                self.mapped.push(page);
            } else if entry & SLOT != 0 {
                self.data[(entry & SLOT) as usize].fill(0);
            }
            self.table[page as usize] = perm | (entry & SLOT);
        }
        Ok(())
    }

    /// Gives the page holding `address` (mapped) storage of its own, zeroed.
    #[cold]
    fn store_page(&mut self, address: u32) -> u32 {
        let page = (address >> PAGE_SHIFT) as usize;
        // A recent load page read the zero page; pages recent for stores have storage.
        self.reads.forget_page(page as u32);
        let slot = self.used;
        if slot == self.data.len() {
            self.data.push([0; PAGE_SIZE as usize]);
        } else {
            self.data[slot].fill(0);
        }
        self.used += 1;
        self.table[page] |= slot as u32;
        slot as u32
    }

    /// Empties the recent-page caches (the table is about to change).
    #[inline]
    fn forget_recent(&mut self) {
        self.reads.forget();
        self.writes.forget();
    }

    /// How many mapped pages have storage (were written since they were mapped).
    pub fn stored_pages(&self) -> usize {
        self.used - 1
    }

    /// Whether the page holding `address` is mapped, and writable.
    #[inline]
    pub fn page_access(&self, address: u32) -> Option<bool> {
        let entry = self.table[(address >> PAGE_SHIFT) as usize];
        (entry != 0).then_some(entry & WRITABLE != 0)
    }

    #[inline]
    fn allows(&self, address: u32, access: Access) -> bool {
        let entry = self.table[(address >> PAGE_SHIFT) as usize];
        match access {
            Access::Read => entry != 0,
            Access::Write => entry & WRITABLE != 0,
        }
    }

    /// Checks a guest access of `len` bytes at `address` (wrapping past 2^32) and returns the
    /// fault the spec prescribes for the first byte lacking permission.
    #[inline]
    pub fn check(&self, address: u32, len: u32, access: Access) -> Result<(), Fault> {
        if self.allows(address, access) {
            let last = address.wrapping_add(len - 1);
            if last >> PAGE_SHIFT == address >> PAGE_SHIFT || self.allows(last, access) {
                return Ok(());
            }
            // The second page is the first bad one: the first bad byte is its first byte.
            return Err(fault_at(last & !(PAGE_SIZE - 1)));
        }
        Err(fault_at(address))
    }

    /// The contents of the mapped page holding `address`.
    #[inline]
    fn slot(&self, address: u32) -> &[u8; PAGE_SIZE as usize] {
        &self.data[(self.table[(address >> PAGE_SHIFT) as usize] & SLOT) as usize]
    }

    /// The storage of the mapped page holding `address`, given on first write.
    #[inline]
    fn slot_mut(&mut self, address: u32) -> &mut [u8; PAGE_SIZE as usize] {
        let mut slot = self.table[(address >> PAGE_SHIFT) as usize] & SLOT;
        if slot == 0 {
            slot = self.store_page(address);
        }
        &mut self.data[slot as usize]
    }

    /// Guest load of `N` (1, 2, 4 or 8) bytes, zero-extended, if it lies inside a page recent
    /// loads went through (the caller's fast path); else `None` and the caller takes
    /// [`PageMemory::load_le`].
    #[inline(always)]
    pub fn load_recent<const N: usize>(&self, address: u32) -> Option<u64> {
        let page = address >> PAGE_SHIFT;
        let offset = (address & (PAGE_SIZE - 1)) as usize;
        if offset > PAGE_SIZE as usize - N {
            return None;
        }
        let slot = self.reads.slot(page)?;
        let bytes = &self.data.get(slot)?[offset..offset + N];
        let mut wide = [0u8; 8];
        wide[..N].copy_from_slice(bytes);
        Some(u64::from_le_bytes(wide))
    }

    /// Guest load of `N` (1, 2, 4 or 8) bytes as a little-endian value, zero-extended, by
    /// [`PageMemory::load`]'s rules. An access inside one mapped page makes that page a
    /// recent one for [`PageMemory::load_recent`].
    pub fn load_le<const N: usize>(&self, address: u32) -> Result<u64, Fault> {
        if let Some(value) = self.load_recent::<N>(address) {
            return Ok(value);
        }
        let page = address >> PAGE_SHIFT;
        let offset = (address & (PAGE_SIZE - 1)) as usize;
        let entry = self.table[page as usize];
        if entry != 0 && offset <= PAGE_SIZE as usize - N {
            self.reads.remember(page, (entry & SLOT) as usize);
        }
        let bytes = self.load::<N>(address)?;
        let mut wide = [0u8; 8];
        wide[..N].copy_from_slice(&bytes);
        Ok(u64::from_le_bytes(wide))
    }

    /// Guest store of the low `N` (1, 2, 4 or 8) bytes of `value` if it lies inside a page
    /// recent stores went through (the caller's fast path); else `false`, nothing is written
    /// and the caller takes [`PageMemory::store_le`].
    #[inline(always)]
    pub fn store_recent<const N: usize>(&mut self, address: u32, value: u64) -> bool {
        let page = address >> PAGE_SHIFT;
        let offset = (address & (PAGE_SIZE - 1)) as usize;
        if offset > PAGE_SIZE as usize - N {
            return false;
        }
        let Some(slot) = self.writes.slot(page) else { return false };
        match self.data.get_mut(slot) {
            Some(page) => {
                page[offset..offset + N].copy_from_slice(&value.to_le_bytes()[..N]);
                true
            }
            None => false,
        }
    }

    /// Guest store of the low `N` (1, 2, 4 or 8) bytes of `value` by [`PageMemory::store`]'s
    /// rules. A store inside one writable page makes that page a recent one for
    /// [`PageMemory::store_recent`].
    pub fn store_le<const N: usize>(&mut self, address: u32, value: u64) -> Result<(), Fault> {
        if self.store_recent::<N>(address, value) {
            return Ok(());
        }
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(&value.to_le_bytes()[..N]);
        self.store::<N>(address, bytes)?;
        let page = address >> PAGE_SHIFT;
        let entry = self.table[page as usize];
        let offset = (address & (PAGE_SIZE - 1)) as usize;
        if entry & WRITABLE != 0 && entry & SLOT != 0 && offset <= PAGE_SIZE as usize - N {
            self.writes.remember(page, (entry & SLOT) as usize);
        }
        Ok(())
    }

    /// Guest load of `N` bytes (little-endian value assembled by the caller).
    #[inline]
    pub fn load<const N: usize>(&self, address: u32) -> Result<[u8; N], Fault> {
        self.check(address, N as u32, Access::Read)?;
        let offset = (address & (PAGE_SIZE - 1)) as usize;
        let mut out = [0u8; N];
        if offset + N <= PAGE_SIZE as usize {
            out.copy_from_slice(&self.slot(address)[offset..offset + N]);
        } else {
            for (i, byte) in out.iter_mut().enumerate() {
                let a = address.wrapping_add(i as u32);
                *byte = self.slot(a)[(a & (PAGE_SIZE - 1)) as usize];
            }
        }
        Ok(out)
    }

    /// Guest store: checked as a whole before any byte is written.
    #[inline]
    pub fn store<const N: usize>(&mut self, address: u32, bytes: [u8; N]) -> Result<(), Fault> {
        self.check(address, N as u32, Access::Write)?;
        let offset = (address & (PAGE_SIZE - 1)) as usize;
        if offset + N <= PAGE_SIZE as usize {
            self.slot_mut(address)[offset..offset + N].copy_from_slice(&bytes);
        } else {
            for (i, byte) in bytes.iter().enumerate() {
                let a = address.wrapping_add(i as u32);
                self.slot_mut(a)[(a & (PAGE_SIZE - 1)) as usize] = *byte;
            }
        }
        Ok(())
    }

    fn check_host(&self, address: u32, length: u64, access: Access) -> Result<(), MemoryError> {
        let (start, end) = host_range(address, length)?;
        let mut page_start = start & !(PAGE_SIZE as u64 - 1);
        while page_start < end {
            let a = page_start.max(start) as u32;
            if !self.allows(a, Access::Read) {
                return Err(MemoryError::Unmapped { address: a });
            }
            if access == Access::Write && !self.allows(a, Access::Write) {
                return Err(MemoryError::ReadOnly { address: a });
            }
            page_start += PAGE_SIZE as u64;
        }
        Ok(())
    }

    /// Host write that ignores write protection (the harness may write read-only pages).
    /// All-or-nothing: fails without writing if any byte is unmapped.
    pub fn write_bypass(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
        self.check_host(address, bytes.len() as u64, Access::Read)?;
        self.copy_in(address, bytes);
        Ok(())
    }

    /// Host write that respects guest permissions (the kernel's view). All-or-nothing.
    pub fn write(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
        self.check_host(address, bytes.len() as u64, Access::Write)?;
        self.copy_in(address, bytes);
        Ok(())
    }

    fn copy_in(&mut self, address: u32, bytes: &[u8]) {
        let mut done = 0usize;
        while done < bytes.len() {
            let a = address + done as u32;
            let offset = (a & (PAGE_SIZE - 1)) as usize;
            let n = (PAGE_SIZE as usize - offset).min(bytes.len() - done);
            self.slot_mut(a)[offset..offset + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
        }
    }

    /// Host read; fails without allocating if any byte is unmapped.
    pub fn read(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
        self.check_host(address, length, Access::Read)?;
        let mut out = Vec::with_capacity(length as usize);
        let mut a = address as u64;
        let end = address as u64 + length;
        while a < end {
            let offset = (a & (PAGE_SIZE as u64 - 1)) as usize;
            let n = ((PAGE_SIZE as usize - offset) as u64).min(end - a) as usize;
            out.extend_from_slice(&self.slot(a as u32)[offset..offset + n]);
            a += n as u64;
        }
        Ok(out)
    }

    /// Every mapped page as `(address, writable, contents)`, in address order, or `None` as
    /// the contents of a page that was not written since it was mapped (all zero).
    pub fn sparse_pages(&self) -> Vec<(u32, bool, Option<&[u8; PAGE_SIZE as usize]>)> {
        let mut pages: Vec<u32> = self.mapped.clone();
        pages.sort_unstable();
        pages
            .into_iter()
            .map(|page| {
                let entry = self.table[page as usize];
                let contents = (entry & SLOT != 0).then(|| &self.data[(entry & SLOT) as usize]);
                (page << PAGE_SHIFT, entry & WRITABLE != 0, contents)
            })
            .collect()
    }

    /// Every mapped page as `(address, writable, contents)`, in address order.
    pub fn pages(&self) -> Vec<(u32, bool, &[u8; PAGE_SIZE as usize])> {
        let mut pages: Vec<u32> = self.mapped.clone();
        pages.sort_unstable();
        pages
            .into_iter()
            .map(|page| {
                let address = page << PAGE_SHIFT;
                (address, self.table[page as usize] & WRITABLE != 0, self.slot(address))
            })
            .collect()
    }
}

/// The fault for a failing access whose first bad byte is `address`.
#[inline]
pub fn fault_at(address: u32) -> Fault {
    if address < LOW_MEMORY_LIMIT {
        Fault::Panic
    } else {
        Fault::PageFault(address & !(PAGE_SIZE - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_allocates_nothing_until_a_page_is_written() {
        let mut m = PageMemory::new();
        m.map(0x10000, (1 << 32) - 0x10000, true).unwrap();
        assert_eq!(m.stored_pages(), 0);
        assert_eq!(m.load::<8>(0xFFFF_FFF8), Ok([0; 8]));
        m.store(0x8000_0FFE, [1u8, 2, 3, 4]).unwrap();
        assert_eq!(m.stored_pages(), 2, "a store straddling two pages stores both");
        assert_eq!(m.load::<4>(0x8000_0FFE), Ok([1, 2, 3, 4]));
        m.map(0x8000_0000, 0x1000, false).unwrap();
        assert_eq!(m.load::<4>(0x8000_0FFE), Ok([0, 0, 3, 4]), "mapping again zeroes the page");
        assert_eq!(m.store(0x8000_0000, [9u8]), Err(Fault::PageFault(0x8000_0000)));
        m.reset();
        assert_eq!(m.stored_pages(), 0);
        m.map(0x20000, 0x1000, true).unwrap();
        assert_eq!(m.load::<4>(0x20000), Ok([0; 4]), "reused storage reads as zero");
        m.write_bypass(0x20000, &[7]).unwrap();
        assert_eq!(m.read(0x20000, 2).unwrap(), vec![7, 0]);
    }

    #[test]
    fn the_recent_page_caches_follow_every_table_change() {
        let mut m = PageMemory::new();
        m.map(0x20000, 0x3000, true).unwrap();
        // A load through the zero page makes it recent; the first store gives the page storage.
        assert_eq!(m.load_le::<8>(0x20008), Ok(0));
        assert_eq!(m.load_recent::<8>(0x20008), Some(0));
        m.store_le::<8>(0x20008, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(m.load_le::<8>(0x20008), Ok(0x1122_3344_5566_7788));
        assert_eq!(m.load_le::<2>(0x2000E), Ok(0x1122));
        // Each page number has its entry, for loads and for stores: pages whose numbers
        // differ by a multiple of RECENT share one, and the later evicts the earlier.
        m.store_le::<4>(0x21000, 7).unwrap();
        m.store_le::<4>(0x22000, 8).unwrap();
        assert!(m.store_recent::<4>(0x22004, 9));
        assert!(m.store_recent::<4>(0x21004, 9));
        assert!(m.store_recent::<4>(0x20000, 9), "three pages in three entries");
        assert_eq!(m.load_le::<4>(0x21000), Ok(7));
        assert_eq!(m.load_le::<4>(0x22000), Ok(8));
        assert_eq!(m.load_recent::<4>(0x21000), Some(7));
        assert_eq!(m.load_recent::<8>(0x20008), Some(0x1122_3344_5566_7788));
        // (Mapping forgets every recent page; the accesses after it make them recent again.)
        let sharing = 0x20000 + (RECENT as u32) * PAGE_SIZE;
        m.map(sharing, 0x1000, true).unwrap();
        assert_eq!(m.load_recent::<4>(0x21000), None);
        for page in [0x20000, 0x21000] {
            m.store_le::<4>(page + 12, 3).unwrap();
            assert_eq!(m.load_le::<4>(page + 12), Ok(3));
        }
        m.store_le::<4>(sharing, 1).unwrap();
        assert_eq!(m.load_le::<4>(sharing), Ok(1));
        assert!(!m.store_recent::<4>(0x20000, 9), "evicted by the page sharing its entry");
        assert_eq!(m.load_recent::<4>(0x20008), None, "evicted by the page sharing its entry");
        assert!(m.store_recent::<4>(0x21004, 9));
        assert_eq!(m.load_recent::<4>(0x21000), Some(7));
        // An access crossing the page end never takes the recent path.
        assert_eq!(m.load_recent::<8>(0x21FFC), None);
        assert!(!m.store_recent::<8>(0x21FFC, 0));
        // Remapping read-only: stores fault, loads see the zeroed page.
        m.map(0x21000, 0x1000, false).unwrap();
        assert_eq!(m.store_le::<4>(0x21000, 1), Err(Fault::PageFault(0x21000)));
        assert_eq!(m.load_le::<4>(0x21000), Ok(0));
        // After a reset nothing is recent and nothing is mapped.
        m.reset();
        assert_eq!(m.load_recent::<4>(0x22000), None);
        assert!(!m.store_recent::<4>(0x22000, 1));
        assert_eq!(m.load_le::<4>(0x22000), Err(Fault::PageFault(0x22000)));
        // Reused storage after a reset reads as zero through both paths.
        m.map(0x22000, 0x1000, true).unwrap();
        assert_eq!(m.load_le::<4>(0x22000), Ok(0));
        m.store_le::<1>(0x22001, 5).unwrap();
        assert_eq!(m.load_le::<4>(0x22000), Ok(0x500));
        assert_eq!(m.load_recent::<4>(0x22000), Some(0x500));
    }

    #[test]
    fn unmapped_low_memory_panics_and_high_memory_faults() {
        let m = PageMemory::new();
        assert_eq!(m.load::<1>(0), Err(Fault::Panic));
        assert_eq!(m.load::<1>(0xFFFF), Err(Fault::Panic));
        assert_eq!(m.load::<1>(0x10000), Err(Fault::PageFault(0x10000)));
        assert_eq!(m.load::<4>(0x21001), Err(Fault::PageFault(0x21000)));
    }

    #[test]
    fn straddling_store_faults_on_the_second_page_and_writes_nothing() {
        let mut m = PageMemory::new();
        m.map(0x20000, 4096, true).unwrap();
        assert_eq!(m.store(0x20FF9, [0xAA; 8]), Err(Fault::PageFault(0x21000)));
        assert!(m.read(0x20FF8, 16).is_err());
        assert_eq!(m.read(0x20FF8, 8).unwrap(), vec![0; 8]);
    }

    #[test]
    fn read_only_pages_refuse_stores_but_allow_loads() {
        let mut m = PageMemory::new();
        m.map(0x30000, 4096, false).unwrap();
        m.write_bypass(0x30000, &[7]).unwrap();
        assert_eq!(m.load::<1>(0x30000), Ok([7]));
        assert_eq!(m.store(0x30000, [1]), Err(Fault::PageFault(0x30000)));
        assert_eq!(m.write(0x30000, &[1]), Err(MemoryError::ReadOnly { address: 0x30000 }));
        assert_eq!(m.load::<1>(0x30000), Ok([7]));
    }

    #[test]
    fn accesses_wrap_around_the_address_space() {
        let mut m = PageMemory::new();
        m.map(0xFFFF_F000, 4096, true).unwrap();
        // The first bad byte is 2^32 ≡ 0: below 64 KiB, so a panic.
        assert_eq!(m.store(0xFFFF_FFFF, [1; 8]), Err(Fault::Panic));
        m.map(0, 4096, true).unwrap();
        assert_eq!(m.store(0xFFFF_FFFF, [1, 2, 3, 4, 5, 6, 7, 8]), Ok(()));
        assert_eq!(m.load::<8>(0xFFFF_FFFF), Ok([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(m.read(0, 2).unwrap(), vec![2, 3]);
        // Without the top page: the first bad byte is 0xFFFFFFFF.
        let m = PageMemory::new();
        assert_eq!(m.load::<8>(0xFFFF_FFFF), Err(Fault::PageFault(0xFFFF_F000)));
    }

    #[test]
    fn host_accesses_never_wrap_and_check_before_allocating() {
        let m = PageMemory::new();
        assert!(matches!(m.read(0xFFFF_FFFF, 2), Err(MemoryError::OutOfRange { .. })));
        assert!(matches!(m.read(0x10000, 0xF000_0000), Err(MemoryError::Unmapped { .. })));
        assert_eq!(m.read(0x10000, 0), Ok(vec![]));
    }

    #[test]
    fn remapping_zeroes_and_reset_unmaps() {
        let mut m = PageMemory::new();
        m.map(0x20000, 8192, true).unwrap();
        m.store(0x20010, [5]).unwrap();
        m.map(0x20000, 1, false).unwrap();
        assert_eq!(m.load::<1>(0x20010), Ok([0]));
        assert_eq!(m.page_access(0x20000), Some(false));
        assert_eq!(m.page_access(0x21000), Some(true));
        m.reset();
        assert_eq!(m.page_access(0x20000), None);
        m.map(0x50000, 4096, true).unwrap();
        assert_eq!(m.load::<8>(0x50000), Ok([0; 8]));
        assert_eq!(m.pages().len(), 1);
    }
}
