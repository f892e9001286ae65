//! The JIT's guest memory: one reservation per [`super::Jit`] holding a context page followed
//! by the 4 GiB guest address space and a guard region. Page permissions are mirrored into
//! the host page tables (`PROT_NONE` / `PROT_READ` / `PROT_READ | PROT_WRITE`), so compiled
//! code accesses guest memory as `base + (address as u32)` and a forbidden access faults.
//!
//! A software copy of the permissions (`perm`) answers the host API and the slow path, which
//! applies the exact rules of PVMSPEC-1 §7 (see [`GuestView::check`]).

use std::io;
use std::ptr;

use super::ctx::Ctx;
use crate::memory::{fault_at, host_range, Access, Fault, MemoryError, PAGE_SHIFT, PAGE_SIZE};

/// Bytes before the guest base: the context page ([`super::ctx::Ctx`] lives at its start).
pub(crate) const CTX_REGION: usize = PAGE_SIZE as usize;
/// Size of the guest address space.
pub(crate) const GUEST_SIZE: usize = 1 << 32;
/// Inaccessible bytes after the guest space: an 8-byte access at 0xFFFFFFFF ends inside it.
pub(crate) const GUARD_SIZE: usize = 1 << 16;
const TOTAL_SIZE: usize = CTX_REGION + GUEST_SIZE + GUARD_SIZE;
const PAGE_COUNT: usize = 1 << 20;
/// Pages kept resident for reuse across programs (and cleared on remapping) before they are
/// returned to the kernel.
const KEEP_RESIDENT_PAGES: usize = 4096;

const NONE: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;

/// Per-page host state: the current host protection (`NONE`/`READ`/`WRITE`) plus flags.
const HOST_MASK: u8 = 3;
/// The page is in `pending` (its host protection may be wider than the guest permission).
const QUEUED: u8 = 4;
/// The page was mapped since it was last returned to the kernel: it may hold data.
const DIRTY: u8 = 8;

/// The raw mapping. Owns `TOTAL_SIZE` bytes of address space from `start`.
struct Mapping {
    start: *mut u8,
}

// SAFETY: the mapping is plain memory owned exclusively by its `JitMemory`; nothing about it is
// tied to the thread that created it.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `start` came from a successful mmap of exactly TOTAL_SIZE bytes and no
        // reference into the mapping outlives its owner.
        unsafe {
            libc::munmap(self.start.cast(), TOTAL_SIZE);
        }
    }
}

/// A per-page permission table plus the host mapping that mirrors it.
///
/// Invariant: the host protection of every page is at least its guest permission, so host
/// reads and writes of mapped pages never fault. Protections are widened at once and narrowed
/// lazily: pages whose host protection may be too wide are queued in `pending` and fixed by
/// [`JitMemory::sync`], which runs before compiled code does. Reloading a program with the same
/// memory layout thus needs no system call at all.
pub(crate) struct JitMemory {
    mapping: Mapping,
    /// Per guest page: `NONE`, `READ` or `WRITE` (read-write).
    perm: Box<[u8]>,
    /// Per guest page: host protection and flags.
    host: Box<[u8]>,
    /// Mapped pages, in the order they were first mapped.
    mapped: Vec<u32>,
    /// Pages whose host protection may exceed their permission.
    pending: Vec<u32>,
    /// Pages flagged `DIRTY`.
    dirty: Vec<u32>,
}

fn os_error(what: &str) -> ! {
    panic!("jit memory: {what} failed: {}", io::Error::last_os_error())
}

impl JitMemory {
    /// Reserves the address space (no memory is committed) and makes the context page usable.
    pub(crate) fn new() -> io::Result<JitMemory> {
        // SAFETY: an anonymous, private, inaccessible reservation: it aliases nothing.
        let start = unsafe {
            libc::mmap(
                ptr::null_mut(),
                TOTAL_SIZE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mapping = Mapping { start: start.cast() };
        // SAFETY: the first CTX_REGION bytes belong to the reservation made above.
        if unsafe { libc::mprotect(start, CTX_REGION, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(JitMemory {
            mapping,
            perm: vec![NONE; PAGE_COUNT].into_boxed_slice(),
            host: vec![NONE; PAGE_COUNT].into_boxed_slice(),
            mapped: Vec::new(),
            pending: Vec::new(),
            dirty: Vec::new(),
        })
    }

    /// The context block at the start of the context page.
    pub(crate) fn ctx(&mut self) -> &mut Ctx {
        // SAFETY: the context page is mapped read-write for the lifetime of the mapping, is
        // page-aligned and large enough for `Ctx` (checked at compile time), and zero bytes are a
        // valid `Ctx` (integers and a raw pointer). `&mut self` makes the reference exclusive on
        // the Rust side; compiled code only touches the block while no such reference is live.
        unsafe { &mut *(self.mapping.start as *mut Ctx) }
    }

    /// Host address of guest address 0.
    pub(crate) fn base(&self) -> *mut u8 {
        self.mapping.start.wrapping_add(CTX_REGION)
    }

    /// The host range guest accesses can touch (guest space plus guard).
    pub(crate) fn guest_range(&self) -> (usize, usize) {
        let lo = self.base() as usize;
        (lo, lo + GUEST_SIZE + GUARD_SIZE)
    }

    /// The view compiled code's slow path uses. Call [`JitMemory::sync`] before running code.
    pub(crate) fn view(&self) -> GuestView {
        GuestView { base: self.base(), perm: self.perm.as_ptr() }
    }

    fn page_span(&self, first: u32, count: u32) -> (*mut u8, usize) {
        debug_assert!(first as usize + count as usize <= PAGE_COUNT);
        (self.base().wrapping_add((first as usize) << PAGE_SHIFT), (count as usize) << PAGE_SHIFT)
    }

    fn prot_of(perm: u8) -> libc::c_int {
        match perm {
            NONE => libc::PROT_NONE,
            READ => libc::PROT_READ,
            _ => libc::PROT_READ | libc::PROT_WRITE,
        }
    }

    /// Sets the host protection of pages `first..first + count`.
    fn protect(&mut self, first: u32, count: u32, prot: u8) {
        let (addr, len) = self.page_span(first, count);
        // SAFETY: the span lies inside the guest part of our own reservation.
        if unsafe { libc::mprotect(addr.cast(), len, Self::prot_of(prot)) } != 0 {
            os_error("mprotect");
        }
        for page in first..first + count {
            let h = &mut self.host[page as usize];
            *h = (*h & !HOST_MASK) | prot;
        }
    }

    fn queue(&mut self, page: u32) {
        let h = &mut self.host[page as usize];
        if *h & QUEUED == 0 {
            *h |= QUEUED;
            self.pending.push(page);
        }
    }

    /// Gives every page in `first..=last` at least host protection `prot` (one call per run of
    /// pages that lack it); pages widened beyond their permission are queued for `sync`.
    fn widen(&mut self, first: u32, last: u32, prot: u8) {
        let mut page = first;
        while page <= last {
            if self.host[page as usize] & HOST_MASK >= prot {
                page += 1;
                continue;
            }
            let run_start = page;
            while page <= last && self.host[page as usize] & HOST_MASK < prot {
                page += 1;
            }
            self.protect(run_start, page - run_start, prot);
            for p in run_start..page {
                if self.perm[p as usize] < prot {
                    self.queue(p);
                }
            }
        }
    }

    /// Narrows the host protection of every queued page to its permission. Must run before
    /// compiled code, which relies on host faults for every forbidden access.
    pub(crate) fn sync(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pages = std::mem::take(&mut self.pending);
        pages.sort_unstable();
        let mut i = 0;
        while i < pages.len() {
            let page = pages[i];
            self.host[page as usize] &= !QUEUED;
            let want = self.perm[page as usize];
            if self.host[page as usize] & HOST_MASK == want {
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < pages.len()
                && pages[end] == page + (end - i) as u32
                && self.perm[pages[end] as usize] == want
                && self.host[pages[end] as usize] & HOST_MASK != want
            {
                self.host[pages[end] as usize] &= !QUEUED;
                end += 1;
            }
            self.protect(page, (end - i) as u32, want);
            i = end;
        }
        pages.clear();
        self.pending = pages;
    }

    /// Returns the dirty pages to the kernel (they read back as zero).
    fn discard_dirty(&mut self) {
        let mut pages = std::mem::take(&mut self.dirty);
        pages.sort_unstable();
        let mut i = 0;
        while i < pages.len() {
            let mut end = i + 1;
            while end < pages.len() && pages[end] == pages[i] + (end - i) as u32 {
                end += 1;
            }
            let (addr, len) = self.page_span(pages[i], (end - i) as u32);
            // SAFETY: the span lies inside the guest part of our own reservation; no Rust
            // reference points into guest memory.
            if unsafe { libc::madvise(addr.cast(), len, libc::MADV_DONTNEED) } != 0 {
                os_error("madvise");
            }
            i = end;
        }
        for &page in &pages {
            self.host[page as usize] &= !DIRTY;
        }
        pages.clear();
        self.dirty = pages;
    }

    /// Unmaps every page. Contents are cleared when a page is mapped again; a large footprint
    /// is returned to the kernel at once.
    pub(crate) fn reset(&mut self) {
        for i in 0..self.mapped.len() {
            let page = self.mapped[i];
            self.perm[page as usize] = NONE;
            self.queue(page);
        }
        self.mapped.clear();
        if self.dirty.len() > KEEP_RESIDENT_PAGES {
            self.discard_dirty();
        }
    }

    /// Same contract as [`crate::memory::PageMemory::map`].
    pub(crate) fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError> {
        let (start, end) = host_range(address, length)?;
        if length == 0 {
            return Ok(());
        }
        let first = (start >> PAGE_SHIFT) as u32;
        let last = ((end - 1) >> PAGE_SHIFT) as u32;
        let new = if writable { WRITE } else { READ };
        let dirty = (first..=last).filter(|&p| self.host[p as usize] & DIRTY != 0).count();
        if dirty > KEEP_RESIDENT_PAGES {
            // Large: hand the range back to the kernel instead of clearing it.
            let (addr, len) = self.page_span(first, last - first + 1);
            // SAFETY: the span lies inside the guest part of our own reservation; no Rust
            // reference points into guest memory.
            if unsafe { libc::madvise(addr.cast(), len, libc::MADV_DONTNEED) } != 0 {
                os_error("madvise");
            }
            for page in first..=last {
                self.host[page as usize] &= !DIRTY;
            }
            let host = &self.host;
            self.dirty.retain(|&p| host[p as usize] & DIRTY != 0);
        } else if dirty > 0 {
            self.widen(first, last, WRITE);
            for page in first..=last {
                if self.host[page as usize] & DIRTY != 0 {
                    let (addr, len) = self.page_span(page, 1);
                    // SAFETY: the page lies in our reservation and was just made host-writable;
                    // no Rust reference points into guest memory.
                    unsafe { ptr::write_bytes(addr, 0, len) };
                }
            }
        }
        for page in first..=last {
            let p = page as usize;
            if self.perm[p] == NONE {
                self.mapped.push(page);
            }
            self.perm[p] = new;
            if self.host[p] & HOST_MASK != new {
                self.queue(page);
            }
            if self.host[p] & DIRTY == 0 {
                self.host[p] |= DIRTY;
                self.dirty.push(page);
            }
        }
        self.widen(first, last, new);
        Ok(())
    }

    fn check_host(&self, address: u32, length: u64, access: Access) -> Result<(), MemoryError> {
        let (start, end) = host_range(address, length)?;
        let mut page_start = start & !(PAGE_SIZE as u64 - 1);
        while page_start < end {
            let a = page_start.max(start) as u32;
            let p = self.perm[(a >> PAGE_SHIFT) as usize];
            if p == NONE {
                return Err(MemoryError::Unmapped { address: a });
            }
            if access == Access::Write && p != WRITE {
                return Err(MemoryError::ReadOnly { address: a });
            }
            page_start += PAGE_SIZE as u64;
        }
        Ok(())
    }

    /// Host write ignoring write protection; all-or-nothing like `PageMemory::write_bypass`.
    pub(crate) fn write_bypass(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
        self.check_host(address, bytes.len() as u64, Access::Read)?;
        if bytes.is_empty() {
            return Ok(());
        }
        let first = address >> PAGE_SHIFT;
        let last = ((address as u64 + bytes.len() as u64 - 1) >> PAGE_SHIFT) as u32;
        self.widen(first, last, WRITE);
        // SAFETY: the range was checked to be mapped and is now host-writable in our
        // reservation; `bytes` is a host slice, which cannot overlap guest memory because nothing
        // hands out references into it.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.base().add(address as usize), bytes.len()) };
        Ok(())
    }

    /// Host read; same contract as `PageMemory::read`.
    pub(crate) fn read(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
        self.check_host(address, length, Access::Read)?;
        let mut out = vec![0u8; length as usize];
        // SAFETY: every byte of the range was checked to be mapped, hence host-readable (the
        // host protection is never narrower than the permission).
        unsafe { ptr::copy_nonoverlapping(self.base().add(address as usize), out.as_mut_ptr(), out.len()) };
        Ok(out)
    }

    /// Like [`JitMemory::pages`], with empty contents for pages that read as all zero: no
    /// allocation for them, however large the mapping.
    pub(crate) fn sparse_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        const ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];
        let mut pages = self.mapped.clone();
        pages.sort_unstable();
        let mut buffer = [0u8; PAGE_SIZE as usize];
        pages
            .into_iter()
            .map(|page| {
                let address = page << PAGE_SHIFT;
                // SAFETY: the page is mapped, hence host-readable (the host protection is never
                // narrower than the permission), and lies inside our reservation; the copy
                // goes to a local buffer, so no Rust reference points into guest memory.
                unsafe {
                    ptr::copy_nonoverlapping(self.base().add(address as usize), buffer.as_mut_ptr(), buffer.len())
                };
                let contents = if buffer == ZERO_PAGE { Vec::new() } else { buffer.to_vec() };
                (address, self.perm[page as usize] == WRITE, contents)
            })
            .collect()
    }

    /// Every mapped page as `(address, writable, contents)`, in address order.
    pub(crate) fn pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        let mut pages = self.mapped.clone();
        pages.sort_unstable();
        pages
            .into_iter()
            .map(|page| {
                let address = page << PAGE_SHIFT;
                let contents = self.read(address, PAGE_SIZE as u64).unwrap_or_default();
                (address, self.perm[page as usize] == WRITE, contents)
            })
            .collect()
    }
}

/// What the slow path needs to run a guest access exactly: the guest base and the permission
/// table. Only valid while its `JitMemory` is alive and unchanged.
#[derive(Clone, Copy)]
pub(crate) struct GuestView {
    base: *mut u8,
    perm: *const u8,
}

impl GuestView {
    fn perm(&self, address: u32) -> u8 {
        // SAFETY: the table has 2^20 entries and the index is below 2^20.
        unsafe { *self.perm.add((address >> PAGE_SHIFT) as usize) }
    }

    fn allows(&self, address: u32, access: Access) -> bool {
        match access {
            Access::Read => self.perm(address) != NONE,
            Access::Write => self.perm(address) == WRITE,
        }
    }

    /// The rule of `PageMemory::check`.
    pub(crate) fn check(&self, address: u32, len: u32, access: Access) -> Result<(), Fault> {
        if self.allows(address, access) {
            let last = address.wrapping_add(len - 1);
            if last >> PAGE_SHIFT == address >> PAGE_SHIFT || self.allows(last, access) {
                return Ok(());
            }
            return Err(fault_at(last & !(PAGE_SIZE - 1)));
        }
        Err(fault_at(address))
    }

    /// Checked guest load of `len` bytes (little-endian, zero-extended), wrapping past 2^32.
    pub(crate) fn load(&self, address: u32, len: u32) -> Result<u64, Fault> {
        self.check(address, len, Access::Read)?;
        let mut value = 0u64;
        for i in (0..len).rev() {
            let a = address.wrapping_add(i);
            // SAFETY: the check above proved every byte's page readable, so its host page is
            // mapped with at least PROT_READ inside the reservation.
            let byte = unsafe { self.base.add(a as usize).read_volatile() };
            value = value << 8 | byte as u64;
        }
        Ok(value)
    }

    /// Checked guest store of the low `len` bytes of `value`; writes nothing on failure.
    pub(crate) fn store(&self, address: u32, len: u32, value: u64) -> Result<(), Fault> {
        self.check(address, len, Access::Write)?;
        for i in 0..len {
            let a = address.wrapping_add(i);
            // SAFETY: the check above proved every byte's page writable, so its host page is
            // mapped read-write inside the reservation.
            unsafe { self.base.add(a as usize).write_volatile((value >> (8 * i)) as u8) };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_write_read_reset() {
        let mut m = JitMemory::new().unwrap();
        m.map(0x20000, 8192, true).unwrap();
        m.map(0x30000, 10, false).unwrap();
        m.write_bypass(0x30000, &[1, 2, 3]).unwrap();
        m.write_bypass(0x21FFE, &[9, 9]).unwrap();
        assert_eq!(m.read(0x30000, 4).unwrap(), vec![1, 2, 3, 0]);
        assert_eq!(m.read(0x21FFF, 2), Err(MemoryError::Unmapped { address: 0x22000 }));
        assert_eq!(m.pages().len(), 3);
        m.sync();
        let v = m.view();
        assert_eq!(v.load(0x30000, 2), Ok(0x0201));
        assert_eq!(v.store(0x30000, 1, 5), Err(Fault::PageFault(0x30000)));
        assert_eq!(v.store(0x21FFF, 2, 5), Err(Fault::PageFault(0x22000)));
        m.reset();
        assert!(m.pages().is_empty());
        m.map(0x20000, 1, true).unwrap();
        assert_eq!(m.read(0x21FFE, 2), Err(MemoryError::Unmapped { address: 0x21FFE }));
        assert_eq!(m.read(0x20000, 4096).unwrap(), vec![0; 4096]);
    }

    #[test]
    fn wrap_around_accesses() {
        let mut m = JitMemory::new().unwrap();
        m.map(0xFFFF_F000, 4096, true).unwrap();
        m.sync();
        let v = m.view();
        assert_eq!(v.store(0xFFFF_FFFF, 8, 1), Err(Fault::Panic));
        m.map(0, 4096, true).unwrap();
        m.sync();
        let v = m.view();
        assert_eq!(v.store(0xFFFF_FFFF, 8, 0x0807_0605_0403_0201), Ok(()));
        assert_eq!(v.load(0xFFFF_FFFF, 8), Ok(0x0807_0605_0403_0201));
        assert_eq!(m.read(0, 2).unwrap(), vec![2, 3]);
    }
}
