//! Whole-machine snapshots and field-by-field comparison, shared by vector checks and
//! backend-against-backend comparison.

use std::collections::BTreeMap;
use std::fmt;

use javm_engine::{Backend, Exit, NUM_REGS};

use crate::vectors::{Chunk, Expect};

/// Everything observable about a machine after an exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub exit: Exit,
    pub pc: u32,
    pub gas: i64,
    pub regs: [u64; NUM_REGS],
    /// Mapped pages as `(address, writable, contents)` in address order; the contents of
    /// a page that reads as all zero are empty.
    pub pages: Vec<(u32, bool, Vec<u8>)>,
}

impl Snapshot {
    /// The backend's state; pages that read as all zero have empty contents (whatever the
    /// backend gave), so large mappings cost nothing and equal states compare equal.
    pub fn take(backend: &dyn Backend, exit: Exit) -> Snapshot {
        let mut pages = backend.memory_pages_sparse();
        for (_, _, contents) in &mut pages {
            if all_zero(contents) {
                *contents = Vec::new();
            }
        }
        Snapshot { exit, pc: backend.pc(), gas: backend.gas(), regs: backend.regs(), pages }
    }

    /// Every non-zero byte of mapped memory.
    pub fn nonzero_bytes(&self) -> BTreeMap<u32, u8> {
        nonzero_bytes(&self.pages)
    }
}

/// Whether every byte is zero, compared a page at a time (memcmp, not a byte loop: this runs
/// on every snapshot).
fn all_zero(bytes: &[u8]) -> bool {
    const ZERO: [u8; 4096] = [0; 4096];
    bytes.chunks(ZERO.len()).all(|c| c == &ZERO[..c.len()])
}

/// Every non-zero byte of the given pages.
pub fn nonzero_bytes(pages: &[(u32, bool, Vec<u8>)]) -> BTreeMap<u32, u8> {
    let mut out = BTreeMap::new();
    for (address, _, bytes) in pages {
        for (i, &b) in bytes.iter().enumerate() {
            if b != 0 {
                out.insert(address + i as u32, b);
            }
        }
    }
    out
}

/// Maximal runs of non-zero bytes, in address order (the vectors' memory form).
pub fn chunks(bytes: &BTreeMap<u32, u8>) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for (&address, &b) in bytes {
        match out.last_mut() {
            Some(c) if c.address as u64 + c.contents.len() as u64 == address as u64 => c.contents.push(b),
            _ => out.push(Chunk { address, contents: vec![b] }),
        }
    }
    out
}

/// One differing field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    pub field: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}, got {}", self.field, self.expected, self.got)
    }
}

fn diff(out: &mut Vec<Difference>, field: impl Into<String>, expected: impl fmt::Display, got: impl fmt::Display) {
    out.push(Difference { field: field.into(), expected: expected.to_string(), got: got.to_string() });
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn compare_memory(out: &mut Vec<Difference>, expected: &BTreeMap<u32, u8>, got: &BTreeMap<u32, u8>) {
    let mut differing = Vec::new();
    for (&a, &e) in expected {
        let g = got.get(&a).copied().unwrap_or(0);
        if g != e {
            differing.push((a, e, g));
        }
    }
    for (&a, &g) in got {
        if !expected.contains_key(&a) {
            differing.push((a, 0, g));
        }
    }
    if differing.is_empty() {
        return;
    }
    differing.sort_unstable();
    let shown: Vec<String> =
        differing.iter().take(4).map(|(a, e, g)| format!("[{a:#x}] {e:#04x} vs {g:#04x}")).collect();
    let more = if differing.len() > 4 { format!(", … {} more", differing.len() - 4) } else { String::new() };
    diff(
        out,
        "memory",
        format!("{} differing byte(s): {}{more}", differing.len(), shown.join(", ")),
        "(expected vs got per byte)",
    );
}

/// Checks a snapshot against a vector's expectations.
pub fn check_expect(expect: &Expect, s: &Snapshot) -> Vec<Difference> {
    let mut out = Vec::new();
    if let Some(status) = &expect.status {
        if status != s.exit.status() {
            diff(&mut out, "status", status, s.exit.status());
        }
    }
    if let Some(pc) = expect.pc {
        if pc != s.pc {
            diff(&mut out, "pc", pc, s.pc);
        }
    }
    if let Some(gas) = expect.gas {
        if gas != s.gas {
            diff(&mut out, "gas", gas, s.gas);
        }
    }
    if let Some(regs) = &expect.regs {
        for (i, (&e, &g)) in regs.iter().zip(&s.regs).enumerate() {
            if e != g {
                diff(&mut out, format!("r{i}"), hex(e), hex(g));
            }
        }
    }
    if let Some(address) = expect.page_fault_address {
        match s.exit {
            Exit::PageFault(a) if a == address => {}
            Exit::PageFault(a) => diff(&mut out, "page-fault-address", hex(address as u64), hex(a as u64)),
            _ => diff(&mut out, "page-fault-address", hex(address as u64), "none"),
        }
    }
    if let Some(id) = expect.hostcall {
        match s.exit {
            Exit::HostCall(got) if got == id => {}
            Exit::HostCall(got) => diff(&mut out, "hostcall", id, got),
            _ => diff(&mut out, "hostcall", id, "none"),
        }
    }
    if let Some(memory) = &expect.memory {
        let mut expected = BTreeMap::new();
        for chunk in memory {
            for (i, &b) in chunk.contents.iter().enumerate() {
                if b != 0 {
                    expected.insert(chunk.address.wrapping_add(i as u32), b);
                }
            }
        }
        compare_memory(&mut out, &expected, &s.nonzero_bytes());
    }
    out
}

/// Compares two backends' snapshots field by field (`a` is reported as "expected").
pub fn compare_snapshots(a: &Snapshot, b: &Snapshot) -> Vec<Difference> {
    let mut out = Vec::new();
    if a == b {
        return out;
    }
    if a.exit != b.exit {
        diff(&mut out, "exit", a.exit, b.exit);
    }
    if a.pc != b.pc {
        diff(&mut out, "pc", a.pc, b.pc);
    }
    if a.gas != b.gas {
        diff(&mut out, "gas", a.gas, b.gas);
    }
    for i in 0..NUM_REGS {
        if a.regs[i] != b.regs[i] {
            diff(&mut out, format!("r{i}"), hex(a.regs[i]), hex(b.regs[i]));
        }
    }
    let layout = |s: &Snapshot| s.pages.iter().map(|(addr, w, _)| (*addr, *w)).collect::<Vec<_>>();
    if layout(a) != layout(b) {
        diff(&mut out, "mapped pages", format!("{:?}", layout(a)), format!("{:?}", layout(b)));
    }
    compare_memory(&mut out, &a.nonzero_bytes(), &b.nonzero_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_maximal_runs() {
        let bytes: BTreeMap<u32, u8> = [(10, 1), (11, 2), (13, 3)].into_iter().collect();
        let c = chunks(&bytes);
        assert_eq!(c, vec![Chunk { address: 10, contents: vec![1, 2] }, Chunk { address: 13, contents: vec![3] }]);
    }

    #[test]
    fn expectations_report_every_differing_field() {
        let s = Snapshot {
            exit: Exit::PageFault(0x21000),
            pc: 3,
            gas: 5,
            regs: [0; NUM_REGS],
            pages: vec![(0x20000, true, vec![0; 4096])],
        };
        let mut regs = [0; NUM_REGS];
        regs[7] = 1;
        let e = Expect {
            status: Some("halt".into()),
            pc: Some(4),
            gas: Some(5),
            regs: Some(regs),
            memory: Some(vec![Chunk { address: 0x20000, contents: vec![9] }]),
            page_fault_address: Some(0x22000),
            hostcall: None,
        };
        let fields: Vec<String> = check_expect(&e, &s).into_iter().map(|d| d.field).collect();
        assert_eq!(fields, ["status", "pc", "r7", "page-fault-address", "memory"]);
        assert!(check_expect(&Expect::default(), &s).is_empty());
    }
}
