//! Fuzz target bodies for the capability kernel (KSPEC-1 §13): `ecall_dispatch`, `mgmt_ops`
//! and `derive_spawn`.
//!
//! Each decodes its input with [`Unstructured`] into a kernel state and ops, runs the kernel's
//! ecall handler and checks the result against the invariants of KSPEC-1 §13 and against
//! computations written here from the spec alone: a cnode model for the MGMT ops (§9.4), the
//! DERIVE_SPAWN construction (§9.5.3) and the JCAP-1 encoding (§3.3). A violated property
//! panics with the op, the slot and what was expected against what the kernel did.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use arbitrary::{Result, Unstructured};
use javm_cap::hash::to_hex;
use javm_cap::{
    blake2b256, CNodeCap, CacheDirectory, Cap, CapHashOrRef, CapKind, CapRef, DataCap, EndpointDef, Hash, ImageCap,
    ImageSlotEntry, InstanceCap, MemoryMapping, PinnedSlots, RwOverlay, SlotIdx, TypeCap, OOG_MARKER,
};
use javm_engine::{Backend, Interpreter, Profile, Program, NUM_REGS};
use javm_kernel::differential::{differential, Leg, Scenario};
use javm_kernel::ecall::op;
use javm_kernel::frame::decode_image;
use javm_kernel::memory::{mem1_digest, FrameMemory, MemoryPlan, NoMemory, Regions};
use javm_kernel::observe::{LiveState, ObsEntry, ObsInstance, ObsOutcome, Point};
use javm_kernel::{
    build_entry, default_config, EcallKind, EcallOutcome, EntryStatus, FrameState, InMemoryAssist, InstanceEntry,
    KernelAssist, KernelError, Kobs, Programs, Vm,
};

use crate::backends::BackendSpec;
use crate::generator::{GenConfig, GenProgram, RO_BASE, RW_BASE};
use crate::run::GasChoice;

const PAGE: u64 = 4096;
const ADDRESS_END: u64 = 1 << 32;

mod dispatch;
mod jcap;
mod mgmt;
mod spawn;
mod state;

pub use dispatch::ecall_dispatch;
use jcap::*;
pub use mgmt::mgmt_ops;
pub use spawn::derive_spawn;
use spawn::*;
use state::*;

// ---------------------------------------------------------------------------------------------
// Shared helpers.

fn short(h: &Hash) -> String {
    format!("#{}", &to_hex(h)[..16])
}

fn show(t: Option<&CapHashOrRef>) -> String {
    match t {
        None => "empty".into(),
        Some(CapHashOrRef::Hash(h)) => short(h),
        Some(CapHashOrRef::Ref(r)) => format!("ref#{}", r.0),
    }
}

/// Slot-by-slot differences between two cnode contents: each differing slot with
/// `expected X, got Y`.
fn slot_diffs(expected: &BTreeMap<u32, CapHashOrRef>, got: &BTreeMap<u32, CapHashOrRef>) -> Vec<(u32, String)> {
    let slots: BTreeSet<u32> = expected.keys().chain(got.keys()).copied().collect();
    slots
        .into_iter()
        .filter(|s| expected.get(s) != got.get(s))
        .map(|s| (s, format!("expected {}, got {}", show(expected.get(&s)), show(got.get(&s)))))
        .collect()
}

fn render_slot_diffs(d: &[(u32, String)]) -> String {
    d.iter().map(|(s, m)| format!("slot {s}: {m}")).collect::<Vec<_>>().join("; ")
}

/// A slot number aimed at the low slots every cnode size covers and at size boundaries.
fn slot_number(u: &mut Unstructured) -> Result<u32> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=5 => u.int_in_range(0..=7u32)?,
        6..=7 => u.int_in_range(8..=20u32)?,
        8 => *u.choose(&[15, 16, 31, 32, 63, 64, 127, 128, 255])?,
        _ => u32::from(u.arbitrary::<u8>()?),
    })
}

/// A slot number mostly below 8, where small cnodes, image entries and mapping sources meet.
fn low_slot(u: &mut Unstructured) -> Result<u32> {
    Ok(match u.int_in_range(0..=19u8)? {
        0..=14 => u.int_in_range(0..=7u32)?,
        15..=17 => u.int_in_range(8..=15u32)?,
        _ => slot_number(u)?,
    })
}

/// A register naming `slot`, sometimes with high bits set: only the low byte counts (§9.2).
fn slot_reg(u: &mut Unstructured, slot: u32) -> Result<u64> {
    let high = if u.ratio(1, 4)? { u.arbitrary::<u64>()? & !0xFF } else { 0 };
    Ok(high | u64::from(slot & 0xFF))
}

fn size_log(u: &mut Unstructured) -> Result<u8> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4..=6 => 4,
        7 => 8,
        _ => u.int_in_range(0..=16u8)?,
    })
}

fn opaque_hash(u: &mut Unstructured) -> Result<Hash> {
    Ok(if u.ratio(3, 4)? { [u.arbitrary::<u8>()? | 1; 32] } else { u.arbitrary()? })
}

/// Data content: 0, 1 or 2 pages (rarely 3) starting with a few arbitrary bytes.
fn data_cap(u: &mut Unstructured) -> Result<DataCap> {
    let pages = match u.int_in_range(0..=15u8)? {
        0 => 0,
        1..=11 => 1,
        12..=14 => 2,
        _ => 3,
    };
    let mut content = vec![0u8; pages * PAGE as usize];
    let n = u.int_in_range(0..=12usize)?.min(content.len());
    u.fill_buffer(&mut content[..n])?;
    Ok(DataCap { content })
}

/// Pinned or initial entries: ascending, distinct slots below 2^16, targets from `blobs`.
fn slot_entries(
    u: &mut Unstructured,
    slot: fn(&mut Unstructured) -> Result<u32>,
    blobs: &[Hash],
    allow_zero: bool,
) -> Result<Vec<ImageSlotEntry>> {
    let mut m = BTreeMap::new();
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    for _ in 0..u.int_in_range(0..=3u8)? {
        let s = if u.ratio(1, 10)? { u.int_in_range(256..=0xFFFFu32)? } else { slot(u)? };
        if s == 0 && !allow_zero {
            continue;
        }
        m.insert(s, *u.choose(blobs)?);
    }
    Ok(m.into_iter().map(|(s, h)| ImageSlotEntry { slot: SlotIdx(s), cap_hash: h }).collect())
}

/// A mapping that passes Image put validation: page-aligned start and size, end below 2^32,
/// at most 8 path steps. Starts are mostly low so that a spawned child's base region stays small.
fn mapping(u: &mut Unstructured, slot: fn(&mut Unstructured) -> Result<u32>) -> Result<MemoryMapping> {
    let start: u64 = match u.int_in_range(0..=19u8)? {
        0..=3 => 0,
        4..=6 => 0x1000,
        7..=9 => u64::from(RW_BASE),
        10 => u64::from(RW_BASE) + 0x1000,
        11..=12 => u64::from(RO_BASE),
        13..=16 => u.int_in_range(0..=0x40u64)? * PAGE,
        17 => 0xFFFF_E000,
        18 => 0xFFFF_F000,
        _ => u.int_in_range(0..=0xF_FFFEu64)? * PAGE,
    };
    let mut size = u.int_in_range(0..=3u64)? * PAGE;
    while start + size >= ADDRESS_END {
        size -= PAGE;
    }
    let steps = match u.int_in_range(0..=9u8)? {
        0 => 0,
        1..=7 => 1,
        8 => 2,
        _ => u.int_in_range(0..=8usize)?,
    };
    let source_path = (0..steps).map(|_| slot(u).map(SlotIdx)).collect::<Result<_>>()?;
    Ok(MemoryMapping { start, size, source_path })
}

fn halt_program() -> Arc<Program> {
    static HALT: OnceLock<Arc<Program>> = OnceLock::new();
    HALT.get_or_init(|| {
        Arc::new(decode_image(&ImageCap::with_code(vec![0x0A, 0x00], vec![0x01]), &default_config()).expect("decodes"))
    })
    .clone()
}

fn kinds() -> (BackendSpec, BackendSpec) {
    static KINDS: OnceLock<(BackendSpec, BackendSpec)> = OnceLock::new();
    KINDS.get_or_init(super::pair_kinds).clone()
}

/// Global invariants after an ecall (KSPEC-1 §13.1 items 1–4): the stack shape, cnode shapes, no
/// cache key lost, and every new key the JCAP-1 hash of its content, with put validation and
/// closure still holding.
fn check_global(what: &str, vm: &Vm, cache: &CacheDirectory, pre_keys: &[Hash]) {
    if let Err(e) = vm.stack.check_invariants() {
        panic!("{what}: call stack invariant broken (KSPEC-1 §8.3): {e}");
    }
    for (i, e) in vm.stack.entries().iter().enumerate() {
        if let Some(e) = e.as_instance() {
            let cn = &e.root_cnode;
            if cn.size_log > 16 {
                panic!("{what}: stack entry {i} has a cnode of size_log {}", cn.size_log);
            }
            if let Some(s) = cn.slots.keys().find(|&&s| u64::from(s) >> cn.size_log != 0) {
                panic!("{what}: stack entry {i} holds slot {s}, out of range for size_log {}", cn.size_log);
            }
        }
    }
    let keys = cache.blob_keys();
    if let Some(k) = pre_keys.iter().find(|k| keys.binary_search(k).is_err()) {
        panic!("{what}: cache key {} disappeared (KSPEC-1 §13.1 item 3)", short(k));
    }
    if keys.len() != pre_keys.len() {
        for k in keys.iter().filter(|k| pre_keys.binary_search(k).is_err()) {
            let cap = cache.get_blob(k).expect("listed key");
            let h = jcap_hash(cap);
            if h != Some(*k) {
                panic!(
                    "{what}: published key {} holds a {} whose JCAP-1 hash is {}",
                    short(k),
                    cap.kind(),
                    h.map_or("unencodable".into(), |h| short(&h))
                );
            }
        }
        if let Err(e) = cache.check_integrity() {
            panic!("{what}: cache integrity (KSPEC-1 §4.4, §13.1 item 2): {e}");
        }
    }
}

fn obs_instance(k: &Kobs, i: usize) -> Option<&ObsInstance> {
    match k.stack.get(i) {
        Some(ObsEntry::Instance(e)) => Some(e),
        _ => None,
    }
}

fn obs_slot(e: &ObsInstance, s: u32) -> Option<CapHashOrRef> {
    e.slots.iter().find(|(x, _)| *x == s).map(|(_, t)| *t)
}

fn render_diff(a: &Kobs, b: &Kobs) -> String {
    let d = javm_kernel::diff(a, b);
    d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// `max(ceil(len / 4096), 1) * 4096`, the MINT_DATA_CAP debit (KSPEC-1 §9.5.8).
fn padded_len(len: u64) -> u128 {
    u128::from(len.div_ceil(PAGE).max(1)) * u128::from(PAGE)
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// Seed inputs for the kernel targets: for `ecall_dispatch`, every op byte from 0 to 27 (and the
/// arbitrary-op selector) in front of a few fixed pseudo-random tails; fixed pseudo-random inputs
/// of varied lengths for the other two. `None` for a target that is not one of these.
pub fn seeds(target: &str) -> Option<Vec<Vec<u8>>> {
    let tail = |i: u64, n: usize| crate::diff::seed_bytes(0x6b65_726e, i)[..n].to_vec();
    Some(match target {
        "ecall_dispatch" => (0..=27u8)
            .chain([64])
            .flat_map(|b| {
                (0..6u64).map(move |k| {
                    let mut v = vec![b];
                    v.extend(tail(u64::from(b) * 16 + k, 200 + 150 * k as usize));
                    v
                })
            })
            .collect(),
        "mgmt_ops" => (0..128u64).map(|i| tail(1000 + i, 32 + (i as usize * 37) % 1200)).collect(),
        "derive_spawn" => (0..128u64).map(|i| tail(2000 + i, 600 + (i as usize * 53) % 1400)).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::mgmt::*;
    use super::*;

    fn hx(s: &str) -> Hash {
        let mut h = [0u8; 32];
        for (i, b) in h.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        h
    }

    fn img_halt() -> ImageCap {
        ImageCap::with_code(vec![0x0A, 0x00], vec![0x01])
    }

    #[test]
    fn jcap_matches_the_spec_vectors() {
        let t = |cap: Cap, h: &str| assert_eq!(jcap_hash(&cap), Some(hx(h)), "{cap:?}");
        t(
            Cap::Type(TypeCap { image_hash_chain: [0x42; 32] }),
            "f7dd2ba573d949725da0a93e2c74c3f9541ba72ef4c0a1c7605abffda9aa112f",
        );
        let mut cn = CNodeCap::empty(4).unwrap();
        cn.slots.insert(2, CapHashOrRef::Hash([0xAA; 32]));
        t(Cap::CNode(cn), "2c9cb94ab1858d7ec448e66b3a4de3a8c6395230bed08dd70bc44f81dc96dc9d");
        assert_eq!(empty_cnode_key(3), hx("45365cad6e982d8969c81c3c92dc35503b56c6420dae5bfb6326965811646f74"));
        t(Cap::Data(DataCap::padded(b"hello")), "e8f22b0a84bb5de02aab24228ad22abc641d324498739b6cf019334ef1b63831");
        t(Cap::Image(ImageCap::empty()), "9a0f2263bee13d6ceb4d11330d74fc6061c51c33fa9663b51e10300ed592510f");
        t(Cap::Image(img_halt()), "553f07a70032b34ed8d822740be375f9cc4ae91e0a1669ded046a176d13a846a");
        let inst = InstanceCap::new(
            [0x42; 32],
            hx("9a0f2263bee13d6ceb4d11330d74fc6061c51c33fa9663b51e10300ed592510f"),
            CapHashOrRef::Hash(empty_cnode_key(0)),
        );
        t(Cap::Instance(inst), "eba627a7789034c7eecaefe2b9654bfde98badfff81d1ea9b963052192eeeb9f");
    }

    /// The IMG_MAP rows of KSPEC-1 §3.5: a parent with chain C1*32 spawns IMG_MAP from an empty
    /// size_log-4 prepared cnode.
    #[test]
    fn spawn_expectation_matches_the_img_map_vectors() {
        let mut cache = CacheDirectory::new();
        let init = cache.put(Cap::Data(DataCap::padded(b"init"))).unwrap();
        let mut image = img_halt();
        image.mappings = vec![MemoryMapping { start: 0x1000, size: 0x1000, source_path: vec![SlotIdx(5)] }];
        image.initial = vec![ImageSlotEntry { slot: SlotIdx(5), cap_hash: init }];
        let ih = cache.put(Cap::Image(image)).unwrap();
        assert_eq!(ih, hx("d5b6c99ad40fe91fd209047e501cd51999e1d9040cc28199df42090bed39ab89"));
        let ch = cache.put(Cap::CNode(CNodeCap::empty(4).unwrap())).unwrap();
        let mut cnode = CNodeCap::empty(4).unwrap();
        cnode.slots.insert(3, CapHashOrRef::Hash(ih));
        cnode.slots.insert(4, CapHashOrRef::Hash(ch));
        let parent = FrameSpec {
            chain: [0xC1; 32],
            image_hash: [3; 32],
            instance_ref: CapHashOrRef::Hash([4; 32]),
            cnode,
            pinned: vec![],
            yield_slot: None,
            regs: [0; NUM_REGS],
            pc: 0,
        };
        let mut regs = [0; NUM_REGS];
        (regs[7], regs[8], regs[9]) = (3, 4, 7);
        let case = SpawnCase { cache, parent, regs, endpoint: 0, args: [0; 4], gas: 100 };
        let exp = case.expect().unwrap();
        assert_eq!(exp.cnode_key, hx("e1ecc8e7c52dccd343565ace58dfc0e49cc43858075b60618da83b78ca4f83b4"));
        assert_eq!(exp.instance_key, hx("0b54d0f9bf9c53e199d14359eee5383f3ca917a3bb1c7e35585e7d263e45dd81"));
        assert_eq!(exp.parent_slots.get(&4), None);
        case.run();
    }

    #[test]
    fn the_cnode_model_follows_the_seed_rows() {
        let mut m =
            CNodeModel { size_log: 4, cells: vec![None; 256], unreachable: BTreeMap::new(), pinned: BTreeSet::new() };
        m.cells[2] = Some(CapHashOrRef::Hash([0xAA; 32]));
        assert_eq!(m.apply(op::COPY, 2, 7), ModelOutcome::Continue);
        assert_eq!(m.cells[7], m.cells[2]);
        assert_eq!(m.apply(op::MOVE, 2, 9), ModelOutcome::Continue);
        assert_eq!((m.cells[2], m.cells[9]), (None, Some(CapHashOrRef::Hash([0xAA; 32]))));
        assert_eq!(m.apply(op::CNODE_MINT, 5, 3), ModelOutcome::Continue);
        assert_eq!(m.cells[5], Some(CapHashOrRef::Hash(empty_cnode_key(3))));
        m.pinned.insert(7);
        assert_eq!(m.apply(op::DROP, 7, 0), ModelOutcome::Trap);
        assert_eq!(m.apply(op::COPY, 7, 8), ModelOutcome::Continue, "copying out of a pinned slot is allowed");
        assert_eq!(m.apply(op::CNODE_SWAP, 16, 1), ModelOutcome::Trap, "slot 16 is out of range");
        assert_eq!(m.apply(op::CNODE_MINT, 1, 17), ModelOutcome::Trap);
    }

    #[test]
    fn seeds_reach_the_interesting_outcomes() {
        let mut spawned = 0;
        for s in seeds("derive_spawn").unwrap() {
            if let Ok(case) = SpawnCase::arbitrary(&mut Unstructured::new(&s)) {
                spawned += usize::from(case.expect().is_ok());
            }
        }
        assert!(spawned >= 32, "only {spawned} of the derive_spawn seeds spawn a child");
    }
}
