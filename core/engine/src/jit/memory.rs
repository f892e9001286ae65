//! The JIT's guest memory: one reservation per [`super::Jit`] holding a context page followed
//! by the 4 GiB guest address space and a guard region. Page permissions are mirrored into
//! the host page tables (`PROT_NONE` / `PROT_READ` / `PROT_READ | PROT_WRITE`), so compiled
//! code accesses guest memory as `base + (address as u32)` and a forbidden access faults.
//!
//! The guest space is a memfd mapped twice: the guest view inside the reservation, whose
//! protections follow the permissions, and a host view that is always read-write. The host
//! reads, writes and clears guest memory through the host view only, so writing a read-only
//! page (a program's read-only data) or clearing a reused one needs no protection change.
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

/// The raw mappings: `TOTAL_SIZE` bytes of address space from `start` (the guest view in it)
/// and `GUEST_SIZE` bytes from `host` (the host view of the same memory; null until mapped).
struct Mapping {
    start: *mut u8,
    host: *mut u8,
    /// The memfd behind both views (-1 until created): asked where data lies, so that host
    /// reads of large mappings skip holes instead of filling them in.
    fd: libc::c_int,
}

// SAFETY: the mapping is plain memory owned exclusively by its `JitMemory`; nothing about it is
// tied to the thread that created it.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `start` came from a successful mmap of exactly TOTAL_SIZE bytes, `host` (when
        // set) from one of GUEST_SIZE bytes, and no reference into either outlives its owner.
        unsafe {
            libc::munmap(self.start.cast(), TOTAL_SIZE);
            if !self.host.is_null() {
                libc::munmap(self.host.cast(), GUEST_SIZE);
            }
            if self.fd >= 0 {
                libc::close(self.fd);
            }
        }
    }
}

/// A per-page permission table plus the host mapping that mirrors it.
///
/// Protections change lazily: a page whose guest-view protection may differ from its permission
/// is queued in `pending` and fixed by [`JitMemory::sync`], which runs before compiled code does
/// (the host never goes through the guest view). Reloading a program with the same memory
/// layout thus needs no system call at all.
pub(crate) struct JitMemory {
    mapping: Mapping,
    /// Per guest page: `NONE`, `READ` or `WRITE` (read-write).
    perm: Box<[u8]>,
    /// Per guest page: host protection and flags.
    host: Box<[u8]>,
    /// Mapped pages, in the order they were first mapped.
    mapped: Vec<u32>,
    /// Pages whose guest-view protection may differ from their permission.
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
        let mut mapping = Mapping { start: start.cast(), host: ptr::null_mut(), fd: -1 };
        // SAFETY: the first CTX_REGION bytes belong to the reservation made above.
        if unsafe { libc::mprotect(start, CTX_REGION, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        (mapping.host, mapping.fd) = Self::map_views(mapping.start.wrapping_add(CTX_REGION))?;
        Ok(JitMemory {
            mapping,
            perm: vec![NONE; PAGE_COUNT].into_boxed_slice(),
            host: vec![NONE; PAGE_COUNT].into_boxed_slice(),
            mapped: Vec::new(),
            pending: Vec::new(),
            dirty: Vec::new(),
        })
    }

    /// Maps a fresh memfd of GUEST_SIZE bytes over the guest part of the reservation at `guest`
    /// (inaccessible) and once more elsewhere (read-write); returns the second view and the memfd.
    fn map_views(guest: *mut u8) -> io::Result<(*mut u8, libc::c_int)> {
        const NAME: &std::ffi::CStr = c"javm-guest";
        // SAFETY: plain system calls on a memfd we create and own; the fixed mapping replaces
        // only the guest part of our own reservation, which nothing references yet.
        unsafe {
            let fd = libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let result = (|| {
                if libc::ftruncate(fd, GUEST_SIZE as libc::off_t) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let flags = libc::MAP_SHARED | libc::MAP_NORESERVE;
                let view = libc::mmap(guest.cast(), GUEST_SIZE, libc::PROT_NONE, flags | libc::MAP_FIXED, fd, 0);
                if view == libc::MAP_FAILED {
                    return Err(io::Error::last_os_error());
                }
                let host = libc::mmap(ptr::null_mut(), GUEST_SIZE, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0);
                if host == libc::MAP_FAILED {
                    return Err(io::Error::last_os_error());
                }
                Ok((host.cast::<u8>(), fd))
            })();
            if result.is_err() {
                libc::close(fd);
            }
            result
        }
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
        GuestView { base: self.host_base(), perm: self.perm.as_ptr() }
    }

    /// Host address of guest address 0 in the host view (always read-write).
    fn host_base(&self) -> *mut u8 {
        self.mapping.host
    }

    /// Pages `first..first + count` in the guest view.
    fn page_span(&self, first: u32, count: u32) -> (*mut u8, usize) {
        debug_assert!(first as usize + count as usize <= PAGE_COUNT);
        (self.base().wrapping_add((first as usize) << PAGE_SHIFT), (count as usize) << PAGE_SHIFT)
    }

    /// Pages `first..first + count` in the host view.
    fn host_span(&self, first: u32, count: u32) -> (*mut u8, usize) {
        debug_assert!(first as usize + count as usize <= PAGE_COUNT);
        (self.host_base().wrapping_add((first as usize) << PAGE_SHIFT), (count as usize) << PAGE_SHIFT)
    }

    /// Copies guest bytes from `address` into `out` (zeroed by the caller) through the host
    /// view. A shared page that was never written has no memory behind it and reading it
    /// would allocate one, so ranges of more than a few pages copy only where the memfd holds
    /// data and leave the rest of `out` as it is.
    fn copy_out(&self, address: u32, out: &mut [u8]) {
        const SMALL: usize = 16 * PAGE_SIZE as usize;
        let start = address as usize;
        let end = start + out.len();
        let mut at = start;
        while at < end {
            let (data, hole) = if out.len() <= SMALL { (at, end) } else { self.data_extent(at) };
            if data >= end {
                break;
            }
            let (from, to) = (data.max(at), hole.min(end));
            // SAFETY: `from..to` lies in the guest space (callers pass ranges below 2^32), so in
            // the host view, which is always readable; `out` is a host buffer.
            unsafe {
                ptr::copy_nonoverlapping(self.host_base().add(from), out[from - start..].as_mut_ptr(), to - from)
            };
            at = to;
        }
    }

    /// The first extent of data at or after byte `at` of the memfd, as `(data, hole)`
    /// offsets; `(GUEST_SIZE, GUEST_SIZE)` when no data follows.
    fn data_extent(&self, at: usize) -> (usize, usize) {
        // SAFETY: lseek on our own memfd moves only its offset, which nothing else uses.
        let data = unsafe { libc::lseek(self.mapping.fd, at as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: nothing but holes from `at` on. (Any other error: read everything.)
            let none = io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
            return if none { (GUEST_SIZE, GUEST_SIZE) } else { (at, GUEST_SIZE) };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(self.mapping.fd, data, libc::SEEK_HOLE) };
        (data as usize, if hole < 0 { GUEST_SIZE } else { hole as usize })
    }

    /// Returns pages `first..first + count` to the kernel: they read as zero in both views.
    fn discard(&mut self, first: u32, count: u32) {
        let (addr, len) = self.host_span(first, count);
        // SAFETY: the span lies inside the host view, a shared read-write mapping of our own
        // memfd; no Rust reference points into guest memory.
        if unsafe { libc::madvise(addr.cast(), len, libc::MADV_REMOVE) } != 0 {
            os_error("madvise");
        }
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

    /// Sets the guest-view protection of every queued page to its permission. Must run before
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
            self.discard(pages[i], (end - i) as u32);
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
            self.discard(first, last - first + 1);
            for page in first..=last {
                self.host[page as usize] &= !DIRTY;
            }
            let host = &self.host;
            self.dirty.retain(|&p| host[p as usize] & DIRTY != 0);
        } else if dirty > 0 {
            for page in first..=last {
                if self.host[page as usize] & DIRTY != 0 {
                    let (addr, len) = self.host_span(page, 1);
                    // SAFETY: the page lies in the host view, which is always read-write; no
                    // Rust reference points into guest memory.
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
        // SAFETY: the range was checked to lie in the guest space, so it lies in the host view,
        // which is always read-write; `bytes` is a host slice, which cannot overlap guest memory
        // because nothing hands out references into it.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.host_base().add(address as usize), bytes.len()) };
        Ok(())
    }

    /// Host read; same contract as `PageMemory::read`.
    pub(crate) fn read(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
        self.check_host(address, length, Access::Read)?;
        let mut out = vec![0u8; length as usize];
        self.copy_out(address, &mut out);
        Ok(out)
    }

    /// Like [`JitMemory::pages`], with empty contents for pages that read as all zero: no
    /// allocation for them, however large the mapping.
    pub(crate) fn sparse_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        const ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];
        let mut pages = self.mapped.clone();
        pages.sort_unstable();
        // Few pages are read as they are; many are read only where the memfd holds data (see
        // `copy_out`), asking for the next extent of data once the last one is passed.
        let few = pages.len() <= 16;
        let mut extent = (0, 0);
        let mut buffer = [0u8; PAGE_SIZE as usize];
        pages
            .into_iter()
            .map(|page| {
                let address = page << PAGE_SHIFT;
                let at = address as usize;
                if !few && at >= extent.1 {
                    extent = self.data_extent(at);
                }
                let contents = if !few && at < extent.0 {
                    Vec::new()
                } else {
                    // SAFETY: the page lies in the host view, which is always readable; the copy
                    // goes to a local buffer, so no Rust reference points into guest memory.
                    unsafe { ptr::copy_nonoverlapping(self.host_base().add(at), buffer.as_mut_ptr(), buffer.len()) };
                    if buffer == ZERO_PAGE {
                        Vec::new()
                    } else {
                        buffer.to_vec()
                    }
                };
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

/// What the slow path needs to run a guest access exactly: the host view and the permission
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
            // SAFETY: `base` is the host view, readable over the whole guest space.
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
            // SAFETY: `base` is the host view, writable over the whole guest space.
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

    /// Host reads of a huge mapping find the few written pages without giving memory to the
    /// rest (a page of the memfd that is read gets memory behind it).
    #[test]
    fn reading_a_huge_mapping_skips_what_was_never_written() {
        let mut m = JitMemory::new().unwrap();
        let (start, len) = (0x10000u32, 0xFFFF_0000u64);
        m.map(start, len, true).unwrap();
        m.write_bypass(0x5000_0000, &[7; 5000]).unwrap();
        m.write_bypass(0xFFFF_FFF0, &[9; 16]).unwrap();
        m.sync();
        let pages = m.sparse_pages();
        assert_eq!(pages.len(), (len >> PAGE_SHIFT) as usize);
        let written: Vec<u32> = pages.iter().filter(|p| !p.2.is_empty()).map(|p| p.0).collect();
        assert_eq!(written, vec![0x5000_0000, 0x5000_1000, 0xFFFF_F000]);
        let second = &pages.iter().find(|p| p.0 == 0x5000_1000).unwrap().2;
        assert_eq!((second[903], second[904]), (7, 0));
        let bytes = m.read(0x4FFF_FFFE, 1 << 20).unwrap();
        assert_eq!(&bytes[..3], &[0, 0, 7]);
        assert_eq!(bytes.iter().filter(|&&b| b == 7).count(), 5000);
        // Nothing but the written pages (three, plus at most a few around them) has memory.
        // SAFETY: `stat` is plain integers (all-zero is a valid value) and fstat only fills it.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            assert_eq!(libc::fstat(m.mapping.fd, &mut st), 0);
            st
        };
        assert!(st.st_blocks * 512 <= 64 * 4096, "{} bytes allocated", st.st_blocks * 512);
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
