//! Frame memory as the kernel sees it: the regions it mapped (KSPEC-1 §6.3), the plan a new
//! frame's memory is built from, the all-or-nothing kernel accesses of §6.6, and the MEM-1
//! digest (§12.3).

use std::collections::BTreeMap;

use javm_cap::{Blake2b256, Hash};
use javm_engine::Backend;

/// The page size of the guest address space.
pub const PAGE: u64 = 4096;
/// `2^32`, the end of the guest address space.
pub const ADDRESS_END: u64 = 1 << 32;

/// Rounds `n` up to a whole number of pages (saturating).
pub fn round_up_page(n: u64) -> u64 {
    n.div_ceil(PAGE).saturating_mul(PAGE)
}

/// The page-aligned byte ranges the kernel mapped for a frame, merged and ascending. In V1
/// every region is read/write (KSPEC-1 §6.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Regions(Vec<(u64, u64)>);

impl Regions {
    /// No memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `[start, end)`, merging with what touches it.
    pub fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b < s || a > e {
                kept.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        kept.push((s, e));
        kept.sort_unstable();
        self.0 = kept;
    }

    /// Whether every byte of `[addr, addr + len)` is mapped; an empty range always is.
    pub fn covers(&self, addr: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        let Some(end) = addr.checked_add(len) else { return false };
        self.0.iter().any(|&(a, b)| a <= addr && end <= b)
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// The number of mapped pages.
    pub fn page_count(&self) -> u64 {
        self.0.iter().map(|(a, b)| (b - a) / PAGE).sum()
    }
}

/// One step of building a frame's memory: map (and zero) a range, or write bytes into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemOp {
    /// Map `[start, start + len)` read/write, zero-filled.
    Map { start: u64, len: u64 },
    /// Write `bytes` at `start`.
    Write { start: u64, bytes: Vec<u8> },
}

/// How a frame's memory is built (KSPEC-1 §6.3): the base region, then each overlay in stored
/// order, a later one replacing what it overlaps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The regions the plan maps.
    pub regions: Regions,
    /// The steps, in order.
    pub ops: Vec<MemOp>,
}

impl MemoryPlan {
    /// Builds the plan for an instance's `mem_size` and overlays; `None` when an overlay is not
    /// page-aligned or ends past `2^32` (`MapFailed`).
    pub fn for_instance<'a>(mem_size: u32, overlays: impl IntoIterator<Item = (u32, &'a [u8])>) -> Option<Self> {
        let mut plan = MemoryPlan::default();
        if mem_size > 0 {
            let len = round_up_page(u64::from(mem_size));
            plan.regions.add(0, len);
            plan.ops.push(MemOp::Map { start: 0, len });
        }
        for (start, bytes) in overlays {
            if bytes.is_empty() {
                continue;
            }
            let start = u64::from(start);
            let len = round_up_page(bytes.len() as u64);
            if start % PAGE != 0 || start + len > ADDRESS_END {
                return None;
            }
            plan.regions.add(start, start + len);
            plan.ops.push(MemOp::Map { start, len });
            plan.ops.push(MemOp::Write { start, bytes: bytes.to_vec() });
        }
        Some(plan)
    }

    /// Applies the plan to a freshly loaded backend.
    pub fn apply(&self, backend: &mut dyn Backend) -> Result<(), String> {
        for op in &self.ops {
            match op {
                MemOp::Map { start, len } => {
                    backend.map(*start as u32, *len, true).map_err(|e| e.to_string())?;
                }
                MemOp::Write { start, bytes } => {
                    backend.write_memory(*start as u32, bytes).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// The content of every page the plan writes to, later writes winning; pages not listed are
    /// zero.
    fn written_pages(&self) -> BTreeMap<u64, Vec<u8>> {
        let mut pages: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for op in &self.ops {
            match op {
                MemOp::Map { start, len } => {
                    let keys: Vec<u64> = pages.range(*start..start + len).map(|(k, _)| *k).collect();
                    for k in keys {
                        pages.remove(&k);
                    }
                }
                MemOp::Write { start, bytes } => {
                    for (i, chunk) in bytes.chunks(PAGE as usize).enumerate() {
                        let page = start + i as u64 * PAGE;
                        let content = pages.entry(page).or_insert_with(|| vec![0; PAGE as usize]);
                        content[..chunk.len()].copy_from_slice(chunk);
                    }
                }
            }
        }
        pages
    }

    /// The MEM-1 digest of the memory this plan builds (KSPEC-1 §12.3).
    pub fn mem1_digest(&self) -> Hash {
        let written = self.written_pages();
        let zero = [0u8; PAGE as usize];
        let mut h = Blake2b256::new();
        h.update(b"MEM1");
        for &(a, b) in self.regions.ranges() {
            let mut page = a;
            while page < b {
                h.update(&(page as u32).to_le_bytes());
                h.update(&[2]);
                h.update(written.get(&page).map_or(&zero[..], |c| &c[..]));
                page += PAGE;
            }
        }
        h.finalize()
    }
}

/// The MEM-1 digest of a backend's memory: every mapped page ascending, with its access (1 =
/// read-only, 2 = read/write) and content (KSPEC-1 §12.3).
pub fn mem1_digest(backend: &dyn Backend) -> Hash {
    let mut h = Blake2b256::new();
    h.update(b"MEM1");
    for (address, writable, content) in backend.memory_pages() {
        h.update(&address.to_le_bytes());
        h.update(&[if writable { 2 } else { 1 }]);
        h.update(&content);
    }
    h.finalize()
}

/// Kernel memory accesses (KSPEC-1 §6.6): all-or-nothing, never wrapping past `2^32`, no 64 KiB
/// rule; a zero-length access always succeeds. The whole range is checked before anything is
/// allocated.
pub trait KernelMemory {
    /// Reads `len` bytes at `addr`; `None` if any byte is not readable.
    fn read(&self, addr: u32, len: u64) -> Option<Vec<u8>>;
    /// Writes `bytes` at `addr`; `false`, with nothing written, if any byte is not writable.
    fn write(&mut self, addr: u32, bytes: &[u8]) -> bool;
}

/// A frame's memory: its backend, limited to the regions the kernel mapped.
pub struct FrameMemory<'a> {
    /// The backend holding the frame's pages.
    pub backend: &'a mut dyn Backend,
    /// The regions the kernel mapped for the frame (all read/write).
    pub regions: &'a Regions,
}

/// Whether the kernel may access `[addr, addr + len)`: it ends at or below `2^32` and lies in
/// the mapped regions.
fn accessible(regions: &Regions, addr: u32, len: u64) -> bool {
    let addr = u64::from(addr);
    addr.checked_add(len).is_some_and(|end| end <= ADDRESS_END) && regions.covers(addr, len)
}

/// A kernel read of a frame's memory (KSPEC-1 §6.6).
pub fn kernel_read(backend: &dyn Backend, regions: &Regions, addr: u32, len: u64) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    if !accessible(regions, addr, len) {
        return None;
    }
    backend.read_memory(addr, len).ok()
}

impl KernelMemory for FrameMemory<'_> {
    fn read(&self, addr: u32, len: u64) -> Option<Vec<u8>> {
        kernel_read(&*self.backend, self.regions, addr, len)
    }

    fn write(&mut self, addr: u32, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        if !accessible(self.regions, addr, bytes.len() as u64) {
            return false;
        }
        self.backend.write_memory(addr, bytes).is_ok()
    }
}

/// Memory with nothing mapped: only zero-length accesses succeed.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMemory;

impl KernelMemory for NoMemory {
    fn read(&self, _addr: u32, len: u64) -> Option<Vec<u8>> {
        (len == 0).then(Vec::new)
    }

    fn write(&mut self, _addr: u32, bytes: &[u8]) -> bool {
        bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use javm_engine::Interpreter;

    #[test]
    fn regions_merge_and_cover() {
        let mut r = Regions::new();
        r.add(0x3000, 0x4000);
        r.add(0, 0x1000);
        r.add(0x1000, 0x2000);
        assert_eq!(r.ranges(), &[(0, 0x2000), (0x3000, 0x4000)]);
        assert!(r.covers(0x1FF0, 0x10));
        assert!(!r.covers(0x1FF0, 0x11), "a range crossing the end of a region fails");
        assert!(r.covers(0x5000, 0), "an empty range is always covered");
        assert!(!r.covers(u64::MAX, 2));
        r.add(0x2000, 0x3000);
        assert_eq!(r.ranges(), &[(0, 0x4000)]);
        assert_eq!(r.page_count(), 4);
    }

    #[test]
    fn plan_rejects_unaligned_or_too_high_overlays() {
        assert!(MemoryPlan::for_instance(0, [(0x1001, &b"x"[..])]).is_none());
        assert!(MemoryPlan::for_instance(0, [(0xFFFF_F000, &b"x"[..])]).is_some());
        let two_pages = vec![1u8; 4097];
        assert!(MemoryPlan::for_instance(0, [(0xFFFF_F000, &two_pages[..])]).is_none());
        let p = MemoryPlan::for_instance(5, [(0x1000, &b""[..])]).unwrap();
        assert_eq!(p.regions.ranges(), &[(0, 0x1000)], "empty overlays are skipped");
    }

    #[test]
    fn plan_digest_matches_the_backend_it_builds() {
        let big = vec![7u8; 5000];
        let plan =
            MemoryPlan::for_instance(0x2000, [(0x1000, &big[..]), (0x2000, &b"hi"[..]), (0x8000, &b"z"[..])]).unwrap();
        let mut b = Interpreter::new();
        plan.apply(&mut b).unwrap();
        assert_eq!(plan.mem1_digest(), mem1_digest(&b));
        let bytes = b.read_memory(0x1FFE, 6).unwrap();
        assert_eq!(bytes, [7, 7, b'h', b'i', 0, 0], "the later overlay replaces the earlier one's page");
        assert_eq!(MemoryPlan::default().mem1_digest(), javm_cap::blake2b256(b"MEM1"));
    }

    #[test]
    fn kernel_accesses_are_all_or_nothing() {
        let plan = MemoryPlan::for_instance(0x1000, []).unwrap();
        let mut b = Interpreter::new();
        plan.apply(&mut b).unwrap();
        let regions = plan.regions.clone();
        let mut m = FrameMemory { backend: &mut b, regions: &regions };
        assert!(m.write(0xFFC, b"abcd"));
        assert!(!m.write(0xFFD, b"abcd"));
        assert_eq!(m.read(0xFFC, 4).unwrap(), b"abcd");
        assert!(m.read(0xFFC, 5).is_none());
        assert!(m.read(u32::MAX, 1 << 40).is_none());
        assert_eq!(m.read(0x9000, 0), Some(vec![]));
        assert!(m.write(0x9000, b""));
        assert!(NoMemory.read(0, 0).is_some() && NoMemory.read(0, 1).is_none());
    }
}
