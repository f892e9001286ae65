//! Independent models of spec rules that both backends share code for, so that a mistake in
//! the shared code cannot hide behind agreement. Checked after every run.
//!
//! The fault rule (PVMSPEC-1 §7): when a load or store fails, the first byte of the access
//! (in access order, addresses wrapping mod 2^32) that lacks the needed permission decides
//! the exit: below 64 KiB a panic, otherwise a page fault at that byte's page. A faulting
//! instruction has no effect, so the registers after the exit are the ones it used.

use std::collections::HashMap;

use javm_engine::{Exit, Op, Program};

use crate::state::{Difference, Snapshot};

/// Below this address a failing access panics (the spec's Z_Z).
const LOW_LIMIT: u64 = 0x1_0000;
const PAGE: u32 = 4096;

/// `(width, is_store)` of a memory instruction, written out here rather than taken from the
/// engine.
fn access(op: Op) -> Option<(u32, bool)> {
    use Op::*;
    Some(match op {
        LoadU8 | LoadI8 | LoadIndU8 | LoadIndI8 => (1, false),
        LoadU16 | LoadI16 | LoadIndU16 | LoadIndI16 => (2, false),
        LoadU32 | LoadI32 | LoadIndU32 | LoadIndI32 => (4, false),
        LoadU64 | LoadIndU64 => (8, false),
        StoreU8 | StoreImmU8 | StoreImmIndU8 | StoreIndU8 => (1, true),
        StoreU16 | StoreImmU16 | StoreImmIndU16 | StoreIndU16 => (2, true),
        StoreU32 | StoreImmU32 | StoreImmIndU32 | StoreIndU32 => (4, true),
        StoreU64 | StoreImmU64 | StoreImmIndU64 | StoreIndU64 => (8, true),
        _ => return None,
    })
}

/// Checks a snapshot's exit against the fault rule when the instruction at its pc accesses
/// memory and the exit is a panic or a page fault.
pub fn check_fault(program: &Program, s: &Snapshot) -> Option<Difference> {
    if !matches!(s.exit, Exit::Panic | Exit::PageFault(_)) {
        return None;
    }
    let index = program.index_of(s.pc)?;
    let inst = &program.insts()[index as usize];
    let Some((width, store)) = access(inst.op) else {
        return match s.exit {
            Exit::PageFault(_) => Some(Difference {
                field: "model: fault rule".into(),
                expected: format!("no page fault at {} (pc {})", inst.op, s.pc),
                got: s.exit.to_string(),
            }),
            _ => None,
        };
    };
    use Op::*;
    let base = match inst.op {
        StoreImmIndU8 | StoreImmIndU16 | StoreImmIndU32 | StoreImmIndU64 => s.regs[inst.ra as usize],
        StoreIndU8 | StoreIndU16 | StoreIndU32 | StoreIndU64 | LoadIndU8 | LoadIndI8 | LoadIndU16 | LoadIndI16
        | LoadIndU32 | LoadIndI32 | LoadIndU64 => s.regs[inst.rb as usize],
        _ => 0,
    };
    let address = base.wrapping_add(inst.x) as u32;
    let pages: HashMap<u32, bool> = s.pages.iter().map(|(a, w, _)| (a / PAGE, *w)).collect();
    let first_bad = (0..width).map(|i| address.wrapping_add(i)).find(|a| match pages.get(&(a / PAGE)) {
        None => true,
        Some(&writable) => store && !writable,
    });
    let expected = match first_bad {
        None => None,
        Some(a) if (a as u64) < LOW_LIMIT => Some(Exit::Panic),
        Some(a) => Some(Exit::PageFault(a / PAGE * PAGE)),
    };
    if expected == Some(s.exit) {
        return None;
    }
    let show = |e: Option<Exit>| e.map_or("no fault".to_string(), |e| e.to_string());
    Some(Difference {
        field: format!("model: fault rule ({} of {width} bytes at {address:#x}, pc {})", inst.op, s.pc),
        expected: show(expected),
        got: s.exit.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use javm_engine::asm::assemble;
    use javm_engine::{Config, GasModel, Profile, NUM_REGS};

    fn snapshot(exit: Exit, regs: [u64; NUM_REGS], pages: Vec<(u32, bool)>) -> Snapshot {
        Snapshot { exit, pc: 0, gas: 0, regs, pages: pages.into_iter().map(|(a, w)| (a, w, vec![0; 4096])).collect() }
    }

    fn program(text: &str) -> Program {
        Program::new(assemble(text, Profile::A).unwrap(), Config::new(Profile::A, GasModel::BlockUnit))
    }

    #[test]
    fn the_first_bad_byte_decides_panic_or_page_fault() {
        let p = program("load_i32 r9, 0x10000");
        let regs = [0; NUM_REGS];
        assert!(check_fault(&p, &snapshot(Exit::PageFault(0x10000), regs, vec![])).is_none());
        assert!(check_fault(&p, &snapshot(Exit::Panic, regs, vec![])).is_some());
        // Mapped: no fault is expected at all.
        assert!(check_fault(&p, &snapshot(Exit::PageFault(0x10000), regs, vec![(0x10000, false)])).is_some());
        let p = program("load_u16 r9, 0xFFFF");
        assert!(check_fault(&p, &snapshot(Exit::Panic, regs, vec![])).is_none());
    }

    #[test]
    fn stores_need_writable_pages_and_accesses_wrap() {
        let mut regs = [0; NUM_REGS];
        regs[7] = 0xFFFF_FFFF;
        let p = program("store_ind_u64 r1, r7, 0");
        // Top page writable, page 0 missing: the first bad byte is 2^32 ≡ 0, below 64 KiB.
        assert!(check_fault(&p, &snapshot(Exit::Panic, regs, vec![(0xFFFF_F000, true)])).is_none());
        // Top page read-only: the store faults there.
        let s = snapshot(Exit::PageFault(0xFFFF_F000), regs, vec![(0xFFFF_F000, false), (0, true)]);
        assert!(check_fault(&p, &s).is_none());
        let s = snapshot(Exit::Panic, regs, vec![(0xFFFF_F000, false), (0, true)]);
        assert!(check_fault(&p, &s).is_some());
    }

    #[test]
    fn other_instructions_never_page_fault() {
        let p = program("trap");
        assert!(check_fault(&p, &snapshot(Exit::Panic, [0; NUM_REGS], vec![])).is_none());
        assert!(check_fault(&p, &snapshot(Exit::PageFault(0x20000), [0; NUM_REGS], vec![])).is_some());
    }
}
