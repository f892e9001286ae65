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

// ---------------------------------------------------------------------------------------------
// JCAP-1, written out from KSPEC-1 §3.2 and §3.3.

#[derive(Default)]
struct Jcap(Vec<u8>);

impl Jcap {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.raw(b);
    }
    fn count(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn target(&mut self, t: &CapHashOrRef) -> Option<()> {
        match t {
            CapHashOrRef::Hash(h) => {
                self.raw(h);
                Some(())
            }
            CapHashOrRef::Ref(_) => None,
        }
    }
}

/// The JCAP-1 cap hash of `cap`; `None` when it holds a reference form (KSPEC-1 §3.3).
fn jcap_hash(cap: &Cap) -> Option<Hash> {
    let mut w = Jcap::default();
    w.raw(b"JCAP");
    w.u8(0x01);
    match cap {
        Cap::Instance(i) => {
            w.u8(0x10);
            w.raw(&i.image_hash_chain);
            w.raw(&i.image_hash);
            w.target(&i.root_cnode)?;
            w.count(i.rw_overlays.len());
            for o in &i.rw_overlays {
                w.u32(o.start);
                w.bytes(&o.bytes);
            }
            w.u32(i.mem_size);
            for r in i.regs {
                w.u64(r);
            }
            w.u64(i.pc);
            w.u64(i.gas_remaining);
        }
        Cap::Image(i) => {
            w.u8(0x20);
            w.bytes(&i.code);
            w.bytes(&i.bitmask);
            w.count(i.jump_table.len());
            for &j in &i.jump_table {
                w.u32(j);
            }
            w.count(i.endpoints.len());
            for e in &i.endpoints {
                w.u64(e.entry_pc);
                w.u64(e.stack_top);
                w.u32(e.arg_cnode_slot);
                w.u8(e.arg_cnode_size);
                for r in e.initial_regs {
                    w.u64(r);
                }
            }
            w.count(i.mappings.len());
            for m in &i.mappings {
                w.u64(m.start);
                w.u64(m.size);
                w.u8(m.source_path.len() as u8);
                for s in &m.source_path {
                    w.u32(s.0);
                }
            }
            for list in [&i.pinned, &i.initial] {
                w.count(list.len());
                for e in list {
                    w.u32(e.slot.0);
                    w.raw(&e.cap_hash);
                }
            }
            match i.yield_marker_slot {
                None => w.u8(0),
                Some(s) => {
                    w.u8(1);
                    w.u32(s.0);
                }
            }
        }
        Cap::Data(d) => {
            w.u8(0x30);
            w.u64(d.content.len() as u64);
            w.raw(&d.content);
        }
        Cap::CNode(c) => {
            w.u8(0x40);
            w.u8(c.size_log);
            w.count(c.slots.len());
            for (s, t) in &c.slots {
                w.u32(*s);
                w.target(t)?;
            }
        }
        Cap::Type(t) => {
            w.u8(0x50);
            w.raw(&t.image_hash_chain);
        }
    }
    Some(blake2b256(&w.0))
}

/// `cap_hash(empty CNode(size_log))`: `"JCAP" ‖ 01 ‖ 40 ‖ size_log ‖ u32 0`.
fn empty_cnode_key(size_log: u8) -> Hash {
    let mut b = b"JCAP\x01\x40".to_vec();
    b.push(size_log);
    b.extend_from_slice(&0u32.to_le_bytes());
    blake2b256(&b)
}

/// `hash_pair(a, b) = Blake2b-256(a ‖ b)` (KSPEC-1 §3.4).
fn pair(a: &Hash, b: &Hash) -> Hash {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    blake2b256(&v)
}

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
// An arbitrary kernel state: cache, kernel-assist, call stack and the running frame's memory.

/// A cap cache and kernel-assist state, with everything a slot may hold.
struct World {
    cache: CacheDirectory,
    assist: InMemoryAssist,
    targets: Vec<CapHashOrRef>,
}

impl World {
    fn kind(&self, t: &CapHashOrRef) -> Option<CapKind> {
        self.cache.get(t).map(Cap::kind)
    }

    fn keys_of(&self, kind: CapKind) -> Vec<Hash> {
        self.cache.blobs().filter(|(_, c)| c.kind() == kind).map(|(k, _)| *k).collect()
    }

    fn arbitrary(u: &mut Unstructured) -> Result<World> {
        let mut w = World { cache: CacheDirectory::new(), assist: InMemoryAssist::new(), targets: Vec::new() };
        for _ in 0..u.int_in_range(1..=3u8)? {
            let cap = Cap::Data(data_cap(u)?);
            w.put(cap);
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            let mut cn = CNodeCap::empty(size_log(u)?).expect("size_log ≤ 16");
            for _ in 0..u.int_in_range(0..=3u8)? {
                let s = slot_number(u)?;
                let hashes: Vec<Hash> = w.targets.iter().filter_map(|t| t.as_hash().copied()).collect();
                if cn.in_range(SlotIdx(s)) && !hashes.is_empty() {
                    cn.slots.insert(s, CapHashOrRef::Hash(*u.choose(&hashes)?));
                }
            }
            w.put(Cap::CNode(cn));
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            let image = w.image(u)?;
            w.put(Cap::Image(image));
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            let (images, cnodes) = (w.keys_of(CapKind::Image), w.keys_of(CapKind::CNode));
            if images.is_empty() || cnodes.is_empty() {
                break;
            }
            let mut inst =
                InstanceCap::new(opaque_hash(u)?, *u.choose(&images)?, CapHashOrRef::Hash(*u.choose(&cnodes)?));
            inst.mem_size = *u.choose(&[0, 1, 0x1000, 0x2000])?;
            if u.ratio(1, 3)? {
                let start = *u.choose(&[0u32, 0x1000, 0x1_0000])?;
                let mut bytes = vec![0u8; u.int_in_range(1..=8usize)?];
                u.fill_buffer(&mut bytes)?;
                inst.rw_overlays.push(RwOverlay { start, bytes });
            }
            if u.ratio(1, 3)? {
                inst.regs[u.int_in_range(0..=12usize)?] = u.arbitrary()?;
            }
            w.put(Cap::Instance(inst));
        }
        if u.ratio(1, 3)? {
            let t = TypeCap { image_hash_chain: opaque_hash(u)? };
            w.put(Cap::Type(t));
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            w.targets.push(CapHashOrRef::Hash(opaque_hash(u)?));
        }
        if u.ratio(1, 6)? {
            let r = w.cache.put_working(Cap::Data(data_cap(u)?)).expect("refs left");
            w.targets.push(CapHashOrRef::Ref(r));
            if u.ratio(1, 2)? {
                w.targets.push(CapHashOrRef::Ref(CapRef(r.0 + 1)));
            }
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            let c = w.assist.yield_catcher_new();
            for _ in 0..u.int_in_range(0..=2u8)? {
                let m = match u.choose(&w.targets)? {
                    _ if u.ratio(1, 6)? => OOG_MARKER,
                    CapHashOrRef::Hash(h) => *h,
                    CapHashOrRef::Ref(_) => continue,
                };
                w.assist.yield_catcher_add(c, m);
            }
            w.targets.push(CapHashOrRef::Hash(c));
        }
        for _ in 0..u.int_in_range(0..=3u8)? {
            let id = if u.ratio(3, 4)? { u.int_in_range(0..=3u64)? } else { u.arbitrary()? };
            let v = *u.choose(&[0, 1, 4095, 4096, 4097, 8192, 1 << 20, u64::MAX, 12_288])?;
            w.assist.storage_quota_set(id, v);
        }
        for _ in 0..u.int_in_range(0..=2u8)? {
            let id = if u.ratio(3, 4)? { u.int_in_range(0..=4u64)? } else { u.arbitrary()? };
            let t = *u.choose(&w.targets)?;
            w.assist.register_file(id, t);
        }
        Ok(w)
    }

    fn put(&mut self, cap: Cap) {
        if let Ok(h) = self.cache.put(cap) {
            self.targets.push(CapHashOrRef::Hash(h));
        }
    }

    fn image(&self, u: &mut Unstructured) -> Result<ImageCap> {
        let blobs = self.cache.blob_keys();
        let (code, bitmask) = match u.int_in_range(0..=7u8)? {
            0..=4 => (vec![0x0A, 0x00], vec![0x01]),
            5 => (vec![0x00], vec![0x01]),
            6 => (Vec::new(), Vec::new()),
            _ => {
                let mut code = vec![0u8; u.int_in_range(1..=6usize)?];
                u.fill_buffer(&mut code)?;
                (code, vec![u.arbitrary()?])
            }
        };
        let mut image = ImageCap::with_code(code, bitmask);
        image.pinned = slot_entries(u, slot_number, &blobs, false)?;
        image.initial = slot_entries(u, slot_number, &blobs, true)?;
        for _ in 0..u.int_in_range(0..=2u8)? {
            image.mappings.push(mapping(u, slot_number)?);
        }
        if u.ratio(1, 3)? {
            image.yield_marker_slot = Some(SlotIdx(slot_number(u)?));
        }
        if u.ratio(1, 4)? {
            let e = u.int_in_range(0..=63usize)?;
            image.endpoints[e].entry_pc = u.int_in_range(0..=3u64)?;
        }
        Ok(image)
    }
}

/// One Instance entry of the call stack, built directly (as the kernel's own fixture does).
#[derive(Clone, Debug)]
struct FrameSpec {
    chain: Hash,
    image_hash: Hash,
    instance_ref: CapHashOrRef,
    cnode: CNodeCap,
    pinned: Vec<SlotIdx>,
    yield_slot: Option<SlotIdx>,
    regs: [u64; NUM_REGS],
    pc: u32,
}

impl FrameSpec {
    fn arbitrary(u: &mut Unstructured, world: &World) -> Result<FrameSpec> {
        let mut cnode = CNodeCap::empty(size_log(u)?).expect("size_log ≤ 16");
        for _ in 0..u.int_in_range(0..=10u8)? {
            let s = slot_number(u)?;
            let t = *u.choose(&world.targets)?;
            if cnode.in_range(SlotIdx(s)) {
                cnode.slots.insert(s, t);
            }
        }
        if cnode.size_log > 8 && u.ratio(1, 4)? {
            let s = u.int_in_range(256..=(1u32 << cnode.size_log) - 1)?;
            cnode.slots.insert(s, *u.choose(&world.targets)?);
        }
        // Images never pin slot 0 (KSPEC-1 §4.3), so no frame has it pinned.
        let mut pinned = Vec::new();
        for _ in 0..u.int_in_range(0..=3u8)? {
            let s = slot_number(u)?;
            if s != 0 {
                pinned.push(SlotIdx(s));
            }
        }
        let yield_slot = if u.ratio(1, 3)? { Some(SlotIdx(slot_number(u)?)) } else { None };
        let image_hash = match u.choose(&world.targets)? {
            CapHashOrRef::Hash(h) => *h,
            CapHashOrRef::Ref(_) => [2; 32],
        };
        let mut regs = [0; NUM_REGS];
        regs[u.int_in_range(0..=12usize)?] = u.arbitrary()?;
        Ok(FrameSpec {
            chain: opaque_hash(u)?,
            image_hash,
            instance_ref: CapHashOrRef::Hash(opaque_hash(u)?),
            cnode,
            pinned,
            yield_slot,
            regs,
            pc: u.int_in_range(0..=4u32)?,
        })
    }

    fn entry(&self, live: bool) -> InstanceEntry {
        InstanceEntry {
            instance_ref: self.instance_ref,
            image_hash_chain: self.chain,
            image_hash: self.image_hash,
            program: halt_program(),
            root_cnode: self.cnode.clone(),
            pinned: PinnedSlots::new(self.pinned.iter().copied()),
            yield_marker_slot: self.yield_slot,
            status: EntryStatus::Waiting,
            regions: Regions::new(),
            state: if live {
                FrameState::Detached
            } else {
                FrameState::Initial { regs: self.regs, pc: self.pc, memory: MemoryPlan::default() }
            },
        }
    }

    fn is_pinned(&self, slot: u32) -> bool {
        self.pinned.contains(&SlotIdx(slot))
    }
}

/// A whole kernel state, rebuilt identically as often as needed.
struct KernelState {
    world: World,
    frames: Vec<FrameSpec>,
    /// A Reference entry on top, to the frame at this position.
    reference: Option<usize>,
    max_depth: usize,
    memory: MemoryPlan,
    /// The pages `memory` maps, worked out from §6.3.
    pages: BTreeSet<u64>,
}

struct Built {
    vm: Vm,
    cache: CacheDirectory,
    backend: Box<dyn Backend>,
    regions: Regions,
}

impl KernelState {
    fn arbitrary(u: &mut Unstructured) -> Result<KernelState> {
        let world = World::arbitrary(u)?;
        let n = match u.int_in_range(0..=15u8)? {
            0 => 0,
            1..=9 => 1,
            10..=13 => 2,
            _ => 3,
        };
        let frames = (0..n).map(|_| FrameSpec::arbitrary(u, &world)).collect::<Result<Vec<_>>>()?;
        let reference = if n >= 2 && u.ratio(1, 4)? { Some(u.int_in_range(0..=n - 2)?) } else { None };
        let used = n + usize::from(reference.is_some());
        let max_depth = used.max(1) + u.int_in_range(0..=2usize)?;
        let mem_size = *u.choose(&[0u32, 1, 0x1000, 0x1800, 0x2000, 0x3000])?;
        let mut overlays = Vec::new();
        for _ in 0..u.int_in_range(0..=2u8)? {
            let start = *u.choose(&[0x1000u32, 0x1_0000, RW_BASE, 0xFFFF_F000])?;
            let mut bytes = vec![0u8; u.int_in_range(1..=0x1000usize)?];
            let n = bytes.len().min(16);
            u.fill_buffer(&mut bytes[..n])?;
            overlays.push((start, bytes));
        }
        let plan = MemoryPlan::for_instance(mem_size, overlays.iter().map(|(s, b)| (*s, &b[..])));
        let mut pages = BTreeSet::new();
        if plan.is_some() {
            let round = |n: u64| n.div_ceil(PAGE) * PAGE;
            pages.extend((0..round(mem_size.into())).step_by(PAGE as usize));
            for (start, bytes) in &overlays {
                pages.extend((u64::from(*start)..u64::from(*start) + round(bytes.len() as u64)).step_by(PAGE as usize));
            }
        }
        let memory = plan.unwrap_or_default();
        Ok(KernelState { world, frames, reference, max_depth, memory, pages })
    }

    /// The position of the running instance (§8.2).
    fn running(&self) -> Option<usize> {
        self.reference.or(self.frames.len().checked_sub(1))
    }

    fn build(&self) -> Built {
        let mut vm = Vm::with_config(self.world.assist.clone(), default_config(), self.max_depth);
        let running = self.running();
        for (i, f) in self.frames.iter().enumerate() {
            vm.stack.push_instance(f.entry(Some(i) == running)).expect("max_depth covers the frames");
        }
        if let Some(t) = self.reference {
            vm.stack.push_reference(t).expect("the reference targets an earlier instance");
        }
        let mut backend: Box<dyn Backend> = Box::new(Interpreter::new());
        backend.load(halt_program());
        self.memory.apply(&mut *backend).expect("the plan lies inside the address space");
        Built { vm, cache: self.world.cache.clone(), backend, regions: self.memory.regions.clone() }
    }

    /// Whether a kernel read of `[addr, addr + len)` must succeed: every byte mapped, nothing
    /// past 2^32 (KSPEC-1 §6.6).
    fn readable(&self, addr: u32, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        let start = u64::from(addr);
        let Some(end) = start.checked_add(len).filter(|&e| e <= ADDRESS_END) else { return false };
        let (first, last) = (start / PAGE, (end - 1) / PAGE);
        last - first < self.pages.len() as u64 && (first..=last).all(|p| self.pages.contains(&(p * PAGE)))
    }

    /// Addresses at the edges of the running frame's memory.
    fn edges(&self) -> Vec<u64> {
        let mut e = vec![0, 0xFFFF_FFFF];
        for &(a, b) in self.memory.regions.ranges() {
            e.extend([a, b, b.saturating_sub(1)]);
        }
        e
    }
}

const LENGTHS: [u64; 11] = [0, 1, 5, 4095, 4096, 4097, 8192, 12_288, 1 << 40, u64::MAX, 1 << 32];

/// A register value: a slot of the running frame (often one holding a given kind of cap), any
/// slot, an address at a memory edge, a length, a small id, or anything.
fn reg_value(u: &mut Unstructured, state: &KernelState) -> Result<u64> {
    let slots: Vec<(u32, CapHashOrRef)> = state
        .running()
        .map(|p| state.frames[p].cnode.slots.iter().filter(|(s, _)| **s < 256).map(|(s, t)| (*s, *t)).collect())
        .unwrap_or_default();
    Ok(match u.int_in_range(0..=15u8)? {
        0..=1 if !slots.is_empty() => {
            let s = u.choose(&slots)?.0;
            slot_reg(u, s)?
        }
        2..=4 if !slots.is_empty() => {
            let want = *u.choose(&[
                Some(CapKind::Data),
                Some(CapKind::CNode),
                Some(CapKind::Image),
                Some(CapKind::Instance),
                Some(CapKind::Type),
                None,
            ])?;
            let matching: Vec<u32> =
                slots.iter().filter(|(_, t)| state.world.kind(t) == want).map(|(s, _)| *s).collect();
            let s = if matching.is_empty() { slot_number(u)? } else { *u.choose(&matching)? };
            slot_reg(u, s)?
        }
        5..=6 => {
            let s = slot_number(u)?;
            slot_reg(u, s)?
        }
        7..=8 => {
            let e = *u.choose(&state.edges())?;
            e.wrapping_add(u.int_in_range(0..=16u64)?).wrapping_sub(8)
        }
        9..=10 => *u.choose(&LENGTHS)?,
        11 => u.int_in_range(0..=4u64)?,
        12 => *u.choose(&[0, 1, 16, 17, 63, 64, 255, 256, 0xFFFF_FFFF, u64::MAX])?,
        _ => u.arbitrary()?,
    })
}

/// The KOBS-1 view of a state at P1 (KSPEC-1 §12.2): `running` is the executing frame.
fn observe(built: &Built, regs: &[u64; NUM_REGS], running: Option<usize>, outcome: EcallOutcome) -> Kobs {
    let live = LiveState { regs: *regs, pc: 0, gas: 0, mem: mem1_digest(&*built.backend) };
    let assist = built.vm.assist.snapshot();
    Kobs::capture(&built.vm.stack, &built.cache, assist, Point::P1, ObsOutcome::Ecall(outcome), live, running, true)
}

// ---------------------------------------------------------------------------------------------
// ecall_dispatch

/// An op, its registers and a kernel state.
struct DispatchCase {
    op: u32,
    /// The high half of φ[11] (ignored by both forms, §9.1).
    op_high: u32,
    cached: bool,
    regs: [u64; NUM_REGS],
    state: KernelState,
}

/// What one dispatch did.
struct Dispatched {
    outcome: EcallOutcome,
    error: Option<KernelError>,
    regs: [u64; NUM_REGS],
    pre: Kobs,
    post: Kobs,
    /// Guest memory after the op at `φ8 as u32`, up to 16 KiB (what READ_DATA_CAP wrote).
    written: Option<Vec<u8>>,
}

impl DispatchCase {
    fn arbitrary(u: &mut Unstructured) -> Result<DispatchCase> {
        let op = match u.arbitrary::<u8>()? {
            b @ 0..=63 => u32::from(b),
            64..=79 => u.arbitrary()?,
            b => u32::from(b % 27),
        };
        let op_high = if u.ratio(1, 2)? { u.arbitrary()? } else { 0 };
        let cached = u.ratio(15, 16)?;
        let state = KernelState::arbitrary(u)?;
        let mut regs = [0u64; NUM_REGS];
        for r in regs.iter_mut() {
            *r = reg_value(u, &state)?;
        }
        regs[11] = u64::from(op_high) << 32 | u64::from(op);
        Ok(DispatchCase { op, op_high, cached, regs, state })
    }

    fn what(&self) -> String {
        format!(
            "ecall_dispatch: op {} ({}), {}, φ7..φ10 = [{:#x}, {:#x}, {:#x}, {:#x}], φ11 high half {:#x}",
            self.op,
            op::name(self.op),
            if self.cached { "cache lent" } else { "no cache" },
            self.regs[7],
            self.regs[8],
            self.regs[9],
            self.regs[10],
            self.op_high
        )
    }

    /// Whether HOST_MINT_DATA_CAP must succeed (KSPEC-1 §9.5.8).
    fn mint_rule(&self) -> std::result::Result<(), &'static str> {
        let f = self.state.running().map(|p| &self.state.frames[p]).ok_or("no frame")?;
        let dst = (self.regs[10] & 0xFF) as u32;
        if u64::from(dst) >= 1u64 << f.cnode.size_log {
            return Err("dst is out of range");
        }
        if f.is_pinned(dst) {
            return Err("dst is pinned");
        }
        if !self.state.readable(self.regs[7] as u32, self.regs[8]) {
            return Err("the source range is not all mapped");
        }
        if u128::from(self.state.world.assist.storage_quota_get(self.regs[9])) < padded_len(self.regs[8]) {
            return Err("the quota is below the padded length");
        }
        Ok(())
    }

    /// Whether HOST_SAVE must succeed (KSPEC-1 §9.5.10, §7.2).
    fn save_rule(&self) -> std::result::Result<(), &'static str> {
        let f = self.state.running().map(|p| &self.state.frames[p]).ok_or("no frame")?;
        let src = (self.regs[7] & 0xFF) as u32;
        let t = f.cnode.slots.get(&src).filter(|_| u64::from(src) < 1u64 << f.cnode.size_log).ok_or("src is empty")?;
        let Some(Cap::Data(data)) = self.state.world.cache.get(t) else { return Err("src holds no Data") };
        if self.state.world.assist.storage_quota_get(self.regs[8]) < data.content.len() as u64 {
            return Err("the quota is below the content length");
        }
        if self.state.world.assist.next_file_id() == u64::MAX {
            return Err("file ids ran out");
        }
        Ok(())
    }

    fn dispatch(&self, kind: EcallKind) -> Dispatched {
        let mut built = self.state.build();
        let running = self.state.running();
        let pre = observe(&built, &self.regs, running, EcallOutcome::Trap);
        let pre_keys = built.cache.blob_keys();
        let mut regs = self.regs;
        let outcome = {
            let Built { vm, cache, backend, regions } = &mut built;
            let mut mem = FrameMemory { backend: &mut **backend, regions };
            vm.handle(kind, &mut regs, &mut mem, if self.cached { Some(cache) } else { None })
        };
        let post = observe(&built, &regs, running, outcome);
        check_global(&format!("{} as {kind:?}", self.what()), &built.vm, &built.cache, &pre_keys);
        let written = built.backend.read_memory(self.regs[8] as u32, self.regs[9].min(16384)).ok();
        Dispatched { outcome, error: built.vm.last_error.clone(), regs, pre, post, written }
    }

    fn run(&self) {
        let a = self.dispatch(EcallKind::Ecalli(self.op));
        self.check(&a);
        let b = self.dispatch(EcallKind::Ecall);
        let what = self.what();
        if (a.outcome, &a.error) != (b.outcome, &b.error) {
            panic!(
                "{what}: `ecalli {}` gives {:?} ({:?}) but `ecall` with φ11 = {:#x} gives {:?} ({:?}) (KSPEC-1 §13.2 P6)",
                self.op, a.outcome, a.error, self.regs[11], b.outcome, b.error
            );
        }
        if a.post.digest() != b.post.digest() || a.regs != b.regs {
            panic!(
                "{what}: `ecalli` and `ecall` leave different states (KSPEC-1 §13.2 P6): {}",
                render_diff(&a.post, &b.post)
            );
        }
    }

    /// The effect of each host op (KSPEC-1 §9.5), computed from the spec without the kernel's
    /// code: whether the op traps, the register it returns, the slot it writes and the JCAP-1
    /// key of what it publishes (SAME_TYPE, TYPE_OF, READ_DATA_CAP, MINT_DATA_CAP, OPEN, SAVE,
    /// DERIVE_SPAWN exactly; SET_IMAGE's chain, image and cnode; what YIELD and CALL need in
    /// their slot).
    fn check_host_effects(&self, d: &Dispatched) {
        use EcallOutcome::{Continue, Trap};
        if !self.cached {
            return;
        }
        let what = self.what();
        let fail = |msg: String| -> ! { panic!("{what}: {msg} [kernel error: {:?}]", d.error) };
        let Some(pos) = self.state.running() else { return };
        let f = &self.state.frames[pos];
        let regs = &self.regs;
        let slot = |r: u64| (r & 0xFF) as u32;
        let in_range = |s: u32| u64::from(s) < 1u64 << f.cnode.size_log;
        let get = |s: u32| f.cnode.slots.get(&s).filter(|_| in_range(s));
        let cache = &self.state.world.cache;
        let writable_dst = |s: u32| in_range(s) && !f.is_pinned(s);
        let post_slot = |s: u32| obs_instance(&d.post, pos).and_then(|e| obs_slot(e, s));
        let expect_trap = |why: &str| {
            if d.outcome != Trap {
                fail(format!("must trap ({why}) but returned {:?} (KSPEC-1 §9.5)", d.outcome));
            }
        };
        let expect_key = |dst: u32, key: Hash, name: &str| {
            if d.outcome != Continue {
                fail(format!("must succeed but returned {:?} (KSPEC-1 §9.5)", d.outcome));
            }
            let got = post_slot(dst);
            if got != Some(CapHashOrRef::Hash(key)) {
                fail(format!(
                    "dst slot {dst} holds {}, expected the {name} key {} (KSPEC-1 §9.5)",
                    show(got.as_ref()),
                    short(&key)
                ));
            }
            if d.post.blob_keys.binary_search(&key).is_err() {
                fail(format!("the published {name} {} is not in the cache (KSPEC-1 §9.5)", short(&key)));
            }
        };
        match self.op {
            // §9.5.5: both slots in hash form; φ7 = whether the hashes are equal.
            op::SAME_TYPE => match (get(slot(regs[7])), get(slot(regs[8]))) {
                (Some(CapHashOrRef::Hash(a)), Some(CapHashOrRef::Hash(b))) => {
                    if d.outcome != Continue || d.regs[7] != u64::from(a == b) {
                        fail(format!(
                            "SAME_TYPE must return φ7 = {}, got {:?} with φ7 = {:#x} (KSPEC-1 §9.5.5)",
                            u64::from(a == b),
                            d.outcome,
                            d.regs[7]
                        ));
                    }
                }
                _ => expect_trap("a slot is empty, out of range or a Ref"),
            },
            // §9.5.6: publish Type{chain} of the Instance and write its key.
            op::TYPE_OF => match get(slot(regs[7])).and_then(|t| cache.get(t)) {
                Some(Cap::Instance(i)) if writable_dst(slot(regs[8])) => {
                    let ty = Cap::Type(TypeCap { image_hash_chain: i.image_hash_chain });
                    let key = jcap_hash(&ty).expect("a Type cap encodes");
                    expect_key(slot(regs[8]), key, "Type");
                }
                _ => expect_trap("src holds no Instance, or dst is out of range or pinned"),
            },
            // §9.5.7: copy min(len, content) bytes to φ8 and return how many.
            op::READ_DATA_CAP => match get(slot(regs[7])).and_then(|t| cache.get(t)) {
                Some(Cap::Data(data)) => {
                    let n = regs[9].min(data.content.len() as u64);
                    if d.outcome == Continue {
                        if d.regs[7] != n {
                            fail(format!(
                                "READ_DATA_CAP returned φ7 = {}, expected min(len, {}) = {n} (KSPEC-1 §9.5.7)",
                                d.regs[7],
                                data.content.len()
                            ));
                        }
                        if let Some(w) = &d.written {
                            let k = (n as usize).min(w.len());
                            if w[..k] != data.content[..k] {
                                fail(
                                    "READ_DATA_CAP wrote bytes that are not the Data's prefix (KSPEC-1 §9.5.7)".into(),
                                );
                            }
                        }
                    } else if d.outcome != Trap {
                        fail(format!("READ_DATA_CAP returned {:?} (KSPEC-1 §9.5.7)", d.outcome));
                    }
                }
                _ => expect_trap("src holds no Data"),
            },
            // §9.5.8: on success dst holds the key of Data{bytes ‖ zeros to the padded length}.
            op::MINT_DATA_CAP if self.mint_rule().is_ok() => {
                let built = self.state.build();
                let bytes = built.backend.read_memory(regs[7] as u32, regs[8]).unwrap_or_default();
                let mut content = bytes;
                content.resize(padded_len(regs[8]) as usize, 0);
                let key = jcap_hash(&Cap::Data(DataCap { content })).expect("a Data cap encodes");
                expect_key(slot(regs[10]), key, "Data");
            }
            // §9.5.9: a registered Data file in hash form is written to dst as that hash.
            op::OPEN => {
                let registered = self.state.world.assist.host_open(regs[7]);
                match registered.as_ref().map(|t| (t, cache.get(t))) {
                    None | Some((_, None)) => expect_trap("no such file, or its cap is not in the cache"),
                    Some((_, Some(c))) if !matches!(c, Cap::Data(_)) => expect_trap("the file is not a Data cap"),
                    Some(_) if !writable_dst(slot(regs[8])) => expect_trap("dst is out of range or pinned"),
                    Some((CapHashOrRef::Hash(h), _)) => expect_key(slot(regs[8]), *h, "opened Data"),
                    Some(_) => {}
                }
            }
            // §9.5.3: the same expectation the derive_spawn target computes, on this state.
            op::DERIVE_SPAWN => {
                let spawn = SpawnCase {
                    cache: cache.clone(),
                    parent: f.clone(),
                    regs: *regs,
                    endpoint: 0,
                    args: [0; 4],
                    gas: 0,
                };
                match spawn.expect() {
                    Err(why) => expect_trap(why),
                    Ok(exp) => {
                        let (dst, cn_slot) = (slot(regs[9]), slot(regs[8]));
                        expect_key(dst, exp.instance_key, "Instance");
                        if d.post.blob_keys.binary_search(&exp.cnode_key).is_err() {
                            fail(format!(
                                "the child cnode {} is not in the cache (KSPEC-1 §9.5.3)",
                                short(&exp.cnode_key)
                            ));
                        }
                        if cn_slot != dst && post_slot(cn_slot).is_some() {
                            fail(format!(
                                "the prepared cnode's slot {cn_slot} was not consumed (KSPEC-1 §9.5.3 step 11)"
                            ));
                        }
                    }
                }
            }
            // §9.5.2: the slot must name an Image by hash; on success the frame's chain and
            // image change and its cnode does not.
            op::SET_IMAGE => match get(slot(regs[7])) {
                Some(CapHashOrRef::Hash(ih)) if matches!(cache.get_blob(ih), Some(Cap::Image(_))) => {
                    if d.outcome == EcallOutcome::HostCall(op::SET_IMAGE) {
                        let (Some(before), Some(after)) = (obs_instance(&d.pre, pos), obs_instance(&d.post, pos))
                        else {
                            fail("the running frame is no longer an instance entry".into())
                        };
                        if after.chain != pair(&before.chain, ih) || after.image_hash != *ih {
                            fail(
                                "SET_IMAGE must set chain := hash_pair(chain, ih) and image := ih (KSPEC-1 §9.5.2)"
                                    .into(),
                            );
                        }
                        if after.slots != before.slots {
                            fail("SET_IMAGE changed the root cnode (KSPEC-1 §9.5.2)".into());
                        }
                    } else if d.outcome != Trap {
                        fail(format!("SET_IMAGE returned {:?} (KSPEC-1 §9.5.2)", d.outcome));
                    } else if matches!(cache.get_blob(ih), Some(Cap::Image(i)) if !i.code.is_empty()) {
                        // An Image with code always decodes (PVMSPEC-1 §3.4's decision).
                        fail("SET_IMAGE to an Image with code must succeed but trapped (KSPEC-1 §9.5.2)".into());
                    }
                }
                _ => expect_trap("the slot names no Image by hash"),
            },
            // §9.5.1: the nearest entry below the top whose catcher lists the marker catches
            // it; a Reference to it is pushed.
            op::YIELD => {
                let Some(CapHashOrRef::Hash(marker)) = get(slot(regs[7])) else {
                    return expect_trap("the marker slot holds no hash");
                };
                let stack = &d.pre.stack;
                let catcher = (0..stack.len().saturating_sub(1)).rev().find(|&p| {
                    let ObsEntry::Instance(e) = &stack[p] else { return false };
                    let Some(ys) = e.yield_slot else { return false };
                    let Some(CapHashOrRef::Hash(c)) = obs_slot(e, ys) else { return false };
                    self.state.world.assist.yield_catcher_markers(&c).contains(marker)
                });
                match catcher {
                    None => expect_trap("no entry catches the marker"),
                    Some(_) if stack.len() >= self.state.max_depth => expect_trap("the stack is full"),
                    Some(p) => {
                        if d.outcome != EcallOutcome::HostCall(op::YIELD) {
                            fail(format!(
                                "must yield to the catcher at {p} but returned {:?} (KSPEC-1 §9.5.1)",
                                d.outcome
                            ));
                        }
                        match d.post.stack.last() {
                            Some(ObsEntry::Reference { target, .. }) if *target as usize == p => {}
                            other => {
                                fail(format!("the new top is {other:?}, expected a Reference to {p} (KSPEC-1 §9.5.1)"))
                            }
                        }
                    }
                }
            }
            // §9.5.11 steps 1–2: what the slot must hold.
            // §9.5.11: the pushed child enters the named Instance, with its chain and image.
            op::CALL => {
                let t = get(slot(regs[7]));
                let Some(Cap::Instance(inst)) = t.and_then(|t| cache.get(t)) else {
                    return expect_trap("the slot names no Instance");
                };
                if d.pre.stack.len() >= self.state.max_depth {
                    return expect_trap("the stack is full");
                }
                if d.outcome == EcallOutcome::HostCall(op::CALL) {
                    let Some(ObsEntry::Instance(child)) = d.post.stack.last() else {
                        fail("HOST_CALL pushed no instance entry (KSPEC-1 §9.5.11)".into())
                    };
                    if Some(&child.instance_ref) != t
                        || child.chain != inst.image_hash_chain
                        || child.image_hash != inst.image_hash
                    {
                        fail("the child entry does not enter the named Instance with its chain and image (KSPEC-1 §9.5.11, §6.2)".into());
                    }
                    // §6.2 steps 7–8 and §6.4: the endpoint's pc and registers, the instance's
                    // non-zero registers over them, φ7..φ10 = 0; the image's pins.
                    let endpoint = (regs[8] & 0xFF) as usize;
                    if let Some(Cap::Image(image)) = cache.get_blob(&inst.image_hash) {
                        if endpoint >= 64 {
                            fail(format!("HOST_CALL entered endpoint {endpoint} (KSPEC-1 §6.2 step 5)"));
                        }
                        if let Some(e) = image.endpoints.get(endpoint) {
                            let mut seeded = e.initial_regs;
                            for (r, &v) in seeded.iter_mut().zip(&inst.regs) {
                                if v != 0 {
                                    *r = v;
                                }
                            }
                            seeded[7..=10].fill(0);
                            let pc = if e.entry_pc >= 1 << 32 { u64::from(u32::MAX) } else { e.entry_pc };
                            match &child.state {
                                Some(st) if st.regs == seeded && st.pc == pc => {}
                                other => fail(format!(
                                    "the child starts with {other:?}, expected pc {pc} and registers {seeded:x?} (KSPEC-1 §6.4)"
                                )),
                            }
                        }
                        let pins: Vec<u32> = image.pinned.iter().map(|p| p.slot.0).collect();
                        if child.pinned != pins || child.yield_slot != image.yield_marker_slot.map(|s| s.0) {
                            fail("the child's pins or yield slot are not the image's (KSPEC-1 §6.2 step 8)".into());
                        }
                    }
                } else if d.outcome != Trap {
                    fail(format!("HOST_CALL returned {:?} (KSPEC-1 §9.5.11)", d.outcome));
                } else {
                    // §6.2: the build succeeds when the image, the root cnode and the endpoint
                    // exist, the code is not empty and every overlay fits the address space.
                    let endpoint = (regs[8] & 0xFF) as usize;
                    let buildable = match (cache.get_blob(&inst.image_hash), cache.get(&inst.root_cnode)) {
                        (Some(Cap::Image(image)), Some(Cap::CNode(_))) => {
                            !image.code.is_empty()
                                && endpoint < 64.min(image.endpoints.len())
                                && inst.rw_overlays.iter().all(|o| {
                                    o.bytes.is_empty()
                                        || (o.start % 4096 == 0
                                            && u64::from(o.start) + (o.bytes.len() as u64).div_ceil(4096) * 4096
                                                <= ADDRESS_END)
                                })
                        }
                        _ => false,
                    };
                    if buildable {
                        fail("HOST_CALL could build the child and the stack has room, but it trapped (KSPEC-1 §9.5.11, §6.2)".into());
                    }
                }
            }
            // §9.5.10: the source slot is left alone and φ7 is the new file id.
            op::SAVE if d.outcome == Continue && post_slot(slot(regs[7])) != get(slot(regs[7])).cloned() => {
                fail("SAVE changed its source slot (KSPEC-1 §9.5.10)".into());
            }
            _ => {}
        }
    }

    /// The per-op properties of KSPEC-1 §13.1 and §13.2 on one dispatch.
    fn check(&self, d: &Dispatched) {
        use EcallOutcome::{Continue, Halt, HostCall, Trap};
        let what = self.what();
        let o = self.op;
        let regs = &self.regs;
        let fail = |msg: String| -> ! { panic!("{what}: {msg} [kernel error: {:?}]", d.error) };
        let running = self.state.running();
        let frame = running.map(|p| &self.state.frames[p]);
        let slot = |r: u64| (r & 0xFF) as u32;

        // Op classes (§9.1): REPLY halts, unassigned MGMT ops and MAKE_IMAGE trap, 27 and up continue.
        let class = match o {
            op::REPLY => Some(Halt),
            6..=15 | op::MAKE_IMAGE => Some(Trap),
            27.. => Some(Continue),
            _ => None,
        };
        if let Some(c) = class {
            if d.outcome != c {
                fail(format!("outcome {:?}, expected {c:?} (KSPEC-1 §9.1)", d.outcome));
            }
        }

        // P2: an op naming a pinned slot where pins are checked must trap.
        if let Some(f) = frame {
            let pinned = |r: u64| f.is_pinned(slot(r));
            let named = match o {
                op::COPY => pinned(regs[8]).then_some("dst"),
                op::MOVE | op::CNODE_SWAP => (pinned(regs[7]) || pinned(regs[8])).then_some("operand"),
                op::DROP | op::CNODE_MINT => pinned(regs[7]).then_some("operand"),
                op::TYPE_OF | op::OPEN => pinned(regs[8]).then_some("dst"),
                op::MINT_DATA_CAP => pinned(regs[10]).then_some("dst"),
                op::DERIVE_SPAWN if self.cached => {
                    (pinned(regs[8]) || pinned(regs[9])).then_some("prepared-cnode or dst")
                }
                op::DERIVE_SPAWN => pinned(regs[8]).then_some("dst"),
                _ => None,
            };
            if let Some(which) = named {
                if d.outcome != Trap {
                    fail(format!("its {which} slot is pinned ({:?}) but it did not trap (KSPEC-1 §13.2 P2)", f.pinned));
                }
            }
        }

        // P1 and P6: a trap, REPLY and the no-op ops change nothing.
        if d.outcome == Trap || o == op::REPLY || o >= 27 {
            let mut post = d.post.clone();
            post.outcome = d.pre.outcome;
            if post != d.pre {
                let why = if d.outcome == Trap { "trapped" } else { "should have no effect" };
                fail(format!("{why} but changed state (KSPEC-1 §13.2 P1/P6): {}", render_diff(&d.pre, &post)));
            }
        }

        // §13.1 item 7: pinned slots never change while pinned.
        for i in 0..d.pre.stack.len() {
            let (Some(before), Some(after)) = (obs_instance(&d.pre, i), obs_instance(&d.post, i)) else { continue };
            for &p in &before.pinned {
                let (b, a) = (obs_slot(before, p), obs_slot(after, p));
                if a != b {
                    fail(format!(
                        "pinned slot {p} of stack entry {i} changed from {} to {} (KSPEC-1 §13.1 item 7)",
                        show(b.as_ref()),
                        show(a.as_ref())
                    ));
                }
            }
        }

        // §13.1 item 5: quotas only decrease, and only by the debit of a successful MINT_DATA_CAP
        // (the padded length) or SAVE (the content length).
        let quotas = |k: &Kobs| k.assist.quotas.iter().copied().collect::<BTreeMap<u64, u64>>();
        let (qb, qa) = (quotas(&d.pre), quotas(&d.post));
        let mut debits = BTreeMap::new();
        for id in qb.keys().chain(qa.keys()) {
            let (b, a) = (qb.get(id).copied().unwrap_or(0), qa.get(id).copied().unwrap_or(0));
            if a > b {
                fail(format!("quota {id} went from {b} to {a}: quotas never grow or wrap (KSPEC-1 §13.1 item 5)"));
            }
            if a != b {
                debits.insert(*id, u128::from(b - a));
            }
        }
        let expected_debit = match (d.outcome, o) {
            (Continue, op::MINT_DATA_CAP) if self.cached => Some((regs[9], padded_len(regs[8]))),
            (Continue, op::SAVE) if self.cached => {
                let len = frame
                    .and_then(|f| f.cnode.get(SlotIdx(slot(regs[7]))))
                    .and_then(|t| self.state.world.cache.get(t))
                    .and_then(Cap::as_data)
                    .map_or(0, |data| data.content.len() as u128);
                Some((regs[8], len))
            }
            _ => None,
        };
        let want: BTreeMap<u64, u128> = expected_debit.into_iter().filter(|(_, n)| *n > 0).collect();
        if debits != want {
            fail(format!("quota debits {debits:?}, expected {want:?} (KSPEC-1 §9.5.8, §9.5.10, §13.2 P7/P9)"));
        }

        // P7 and P9: MINT_DATA_CAP and SAVE succeed exactly when their operands allow it, the
        // quota covering the debit included.
        let rule = match o {
            op::MINT_DATA_CAP if self.cached => Some(self.mint_rule()),
            op::SAVE if self.cached => Some(self.save_rule()),
            _ => None,
        };
        match (rule, d.outcome) {
            (Some(Ok(())), Trap) => fail(
                "must succeed (every operand valid, the quota covers the debit) but trapped (KSPEC-1 §13.2 P7/P9)"
                    .into(),
            ),
            (Some(Err(why)), o) if o != Trap => {
                fail(format!("must trap ({why}) but returned {o:?} (KSPEC-1 §13.2 P7/P9)"))
            }
            _ => {}
        }

        // §7.2 and P9: the file registry changes only by a successful SAVE, which registers
        // its source slot's target under the old next_file_id and advances it by one.
        let (fb, fa) = (&d.pre.assist, &d.post.assist);
        let saved = d.outcome == Continue && o == op::SAVE && self.cached;
        if saved {
            let target = frame.and_then(|f| f.cnode.get(SlotIdx(slot(regs[7])))).cloned();
            let mut want = fb.files.clone();
            if let Some(t) = target {
                want.push((fb.next_file_id, t));
                want.sort_by_key(|(id, _)| *id);
            }
            if fa.files != want || fa.next_file_id != fb.next_file_id + 1 {
                fail(format!(
                    "after SAVE the files are {:?} with next id {}, expected {:?} with next id {} (KSPEC-1 §7.2, §13.2 P9)",
                    fa.files,
                    fa.next_file_id,
                    want,
                    fb.next_file_id + 1
                ));
            }
        } else if fa.files != fb.files || fa.next_file_id != fb.next_file_id {
            fail("the file registry changed, but only a successful SAVE registers a file (KSPEC-1 §7.2)".into());
        }

        // §11: a trap that has exactly one possible cause names it (with no frame to act on,
        // CallStackEmpty is a second possible cause).
        if d.outcome == Trap {
            let expected = match o {
                _ if running.is_none() => None,
                6..=15 => Some(KernelError::UnknownMgmtOp(o)),
                op::MAKE_IMAGE => Some(KernelError::NotImplemented),
                _ => None,
            };
            if let Some(e) = expected {
                if d.error.as_ref() != Some(&e) {
                    fail(format!("trapped with error kind {:?}, expected {e:?} (KSPEC-1 §11)", d.error));
                }
            }
            if d.error.is_none() {
                fail("trapped without an error kind (KSPEC-1 §11)".into());
            }
        }

        self.check_host_effects(d);

        if d.outcome == Trap {
            return;
        }

        // P5: register writes only where §9.3 says.
        for (i, (before, after)) in regs.iter().zip(&d.regs).enumerate() {
            if before != after && !(i == 7 && matches!(o, op::SAME_TYPE | op::READ_DATA_CAP | op::SAVE)) {
                fail(format!("wrote φ{i} ({before:#x} → {after:#x}), which this op never writes (KSPEC-1 §13.2 P5)"));
            }
        }
        match o {
            op::SAME_TYPE if d.regs[7] > 1 => fail(format!("SAME_TYPE set φ7 = {:#x}, not 0 or 1", d.regs[7])),
            op::READ_DATA_CAP if d.regs[7] > regs[9] => {
                fail(format!("READ_DATA_CAP reports {} bytes for len {} (KSPEC-1 §13.2 P8)", d.regs[7], regs[9]))
            }
            op::SAVE if d.regs[7] != d.pre.assist.next_file_id => fail(format!(
                "SAVE returned file id {} but next_file_id was {} (KSPEC-1 §13.2 P9)",
                d.regs[7], d.pre.assist.next_file_id
            )),
            _ => {}
        }

        // The stack grows only by HOST_CALL's child and HOST_YIELD's Reference.
        let grows = usize::from(matches!(d.outcome, HostCall(op::CALL) | HostCall(op::YIELD)));
        if d.post.stack.len() != d.pre.stack.len() + grows {
            fail(format!("stack length {} → {} after {:?}", d.pre.stack.len(), d.post.stack.len(), d.outcome));
        }

        // At most as many new cache keys as the op publishes.
        let new_keys = d.post.blob_keys.len() - d.pre.blob_keys.len();
        let publishes = match o {
            op::DERIVE_SPAWN => 2,
            op::CNODE_MINT | op::TYPE_OF | op::MINT_DATA_CAP | op::OPEN => 1,
            _ => 0,
        };
        if new_keys > publishes {
            fail(format!("added {new_keys} cache keys; this op publishes at most {publishes}"));
        }

        let Some(pos) = running else { return };
        let (Some(pre_f), Some(post_f)) = (obs_instance(&d.pre, pos), obs_instance(&d.post, pos)) else {
            fail("the running frame is no longer an instance entry".into())
        };

        // P4: CNODE_MINT writes the key of the empty cnode it publishes.
        if o == op::CNODE_MINT {
            let k = empty_cnode_key((regs[8] & 0xFF) as u8);
            let got = obs_slot(post_f, slot(regs[7]));
            if got != Some(CapHashOrRef::Hash(k)) {
                fail(format!(
                    "dst slot {} holds {}, expected the empty cnode key {} (KSPEC-1 §13.2 P4)",
                    slot(regs[7]),
                    show(got.as_ref()),
                    short(&k)
                ));
            }
            if self.cached && d.post.blob_keys.binary_search(&k).is_err() {
                fail(format!("the minted cnode {} is not in the cache (KSPEC-1 §13.2 P4)", short(&k)));
            }
        }

        // P13: HOST_CALL moves the caller's slot 0 into the child.
        if d.outcome == HostCall(op::CALL) {
            let child = obs_instance(&d.post, d.post.stack.len() - 1);
            let Some(child) = child else { fail("HOST_CALL pushed no instance entry".into()) };
            if let Some(t) = obs_slot(post_f, 0) {
                fail(format!("the caller's slot 0 still holds {} after HOST_CALL (KSPEC-1 §13.2 P13)", show(Some(&t))));
            }
            if let Some(s0) = obs_slot(pre_f, 0) {
                if obs_slot(child, 0) != Some(s0) {
                    fail(format!(
                        "the child's slot 0 holds {}, expected the caller's {} (KSPEC-1 §13.2 P13)",
                        show(obs_slot(child, 0).as_ref()),
                        show(Some(&s0))
                    ));
                }
            }
        }
    }
}

/// `ecall_dispatch`: an arbitrary kernel state (cache, cnodes, pins, quotas, files, catchers,
/// call stack, memory) and an arbitrary op with arbitrary registers, dispatched as `ecalli op`
/// and as `ecall` with the op in φ11. Checks the invariants of KSPEC-1 §13.1, the per-op
/// properties of §13.2 that need no model, and that both forms give the same observation.
pub fn ecall_dispatch(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(case) = DispatchCase::arbitrary(&mut u) {
        case.run();
    }
}

// ---------------------------------------------------------------------------------------------
// mgmt_ops

/// The MGMT ops of KSPEC-1 §9.4 on one cnode, stated plainly: every slot an ecall can name is a
/// cell; a cell beyond `2^size_log` does not exist; a pinned cell cannot be written or emptied.
struct CNodeModel {
    size_log: u8,
    /// Slots 0..=255, the only ones an ecall operand can name (§5.1).
    cells: Vec<Option<CapHashOrRef>>,
    /// Populated slots of 256 and above, which no ecall can reach.
    unreachable: BTreeMap<u32, CapHashOrRef>,
    pinned: BTreeSet<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModelOutcome {
    Continue,
    Trap,
    Halt,
}

impl CNodeModel {
    fn exists(&self, s: usize) -> bool {
        (s as u64) < (1u64 << self.size_log)
    }

    fn writable(&self, s: usize) -> bool {
        self.exists(s) && !self.pinned.contains(&(s as u32))
    }

    fn full(&self, s: usize) -> bool {
        self.exists(s) && self.cells[s].is_some()
    }

    /// Runs op `o` with φ7 = `r7`, φ8 = `r8` and says what the handler must return.
    fn apply(&mut self, o: u32, r7: u64, r8: u64) -> ModelOutcome {
        let a = (r7 & 0xFF) as usize;
        let b = (r8 & 0xFF) as usize;
        let allowed = match o {
            op::REPLY => return ModelOutcome::Halt,
            // COPY src=a dst=b: the source may be pinned.
            op::COPY => self.full(a) && self.writable(b),
            // MOVE src=a dst=b: both sides change, so neither may be pinned.
            op::MOVE => self.full(a) && self.writable(a) && self.writable(b),
            op::DROP => self.writable(a),
            op::CNODE_SWAP => self.writable(a) && self.writable(b),
            op::CNODE_MINT => (r8 & 0xFF) <= 16 && self.writable(a),
            _ => false,
        };
        if !allowed {
            return ModelOutcome::Trap;
        }
        match o {
            op::COPY => self.cells[b] = self.cells[a],
            op::MOVE => {
                let v = self.cells[a].take();
                self.cells[b] = v;
            }
            op::DROP => self.cells[a] = None,
            op::CNODE_SWAP => self.cells.swap(a, b),
            _ => self.cells[a] = Some(CapHashOrRef::Hash(empty_cnode_key((r8 & 0xFF) as u8))),
        }
        ModelOutcome::Continue
    }

    fn slots(&self) -> BTreeMap<u32, CapHashOrRef> {
        let mut m = self.unreachable.clone();
        m.extend(self.cells.iter().enumerate().filter_map(|(s, c)| c.map(|t| (s as u32, t))));
        m
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// No frame: every MGMT op traps.
    Empty,
    /// One frame.
    Single,
    /// Another frame below the running one.
    OnTop,
    /// `[running, other, Reference(0)]`: the running instance is the Reference's target.
    UnderReference,
}

fn mgmt_target(u: &mut Unstructured) -> Result<CapHashOrRef> {
    Ok(match u.int_in_range(0..=7u8)? {
        6 => CapHashOrRef::Ref(CapRef(1)),
        7 => CapHashOrRef::Ref(CapRef(2)),
        k => CapHashOrRef::Hash([0x11 * (k + 1); 32]),
    })
}

fn mgmt_frame(cnode: CNodeCap, pinned: &BTreeSet<u32>, chain: u8) -> InstanceEntry {
    FrameSpec {
        chain: [chain; 32],
        image_hash: [2; 32],
        instance_ref: CapHashOrRef::Hash([chain; 32]),
        cnode,
        pinned: pinned.iter().map(|&s| SlotIdx(s)).collect(),
        yield_slot: None,
        regs: [0; NUM_REGS],
        pc: 0,
    }
    .entry(false)
}

fn pin_set(u: &mut Unstructured) -> Result<BTreeSet<u32>> {
    (0..u.int_in_range(0..=4u8)?).map(|_| slot_number(u)).collect()
}

fn mgmt_ops_run(u: &mut Unstructured) -> Result<()> {
    let layout = match u.int_in_range(0..=31u8)? {
        0 => Layout::Empty,
        1..=4 => Layout::OnTop,
        5..=8 => Layout::UnderReference,
        _ => Layout::Single,
    };
    let cached = u.ratio(7, 8)?;
    let size_log = size_log(u)?;
    let mut model = CNodeModel { size_log, cells: vec![None; 256], unreachable: BTreeMap::new(), pinned: pin_set(u)? };
    let capacity = 1u64 << size_log;
    for _ in 0..u.int_in_range(0..=12u8)? {
        let s = if capacity > 256 && u.ratio(1, 8)? {
            u.int_in_range(256..=(capacity - 1) as u32)?
        } else {
            slot_number(u)?
        };
        let t = mgmt_target(u)?;
        if u64::from(s) >= capacity {
            continue;
        }
        if s < 256 {
            model.cells[s as usize] = Some(t);
        } else {
            model.unreachable.insert(s, t);
        }
    }
    let running_cnode = CNodeCap { size_log, slots: model.slots() };
    let mut other = CNodeCap::empty(4).expect("size_log 4");
    other.slots.insert(1, CapHashOrRef::Hash([0x99; 32]));
    other.slots.insert(3, CapHashOrRef::Ref(CapRef(1)));
    let other_pins = BTreeSet::from([3]);

    let mut vm = Vm::new(InMemoryAssist::new());
    let running_pos = match layout {
        Layout::Empty => None,
        Layout::Single => {
            vm.stack.push_instance(mgmt_frame(running_cnode, &model.pinned, 1)).expect("room");
            Some(0)
        }
        Layout::OnTop => {
            vm.stack.push_instance(mgmt_frame(other.clone(), &other_pins, 9)).expect("room");
            vm.stack.push_instance(mgmt_frame(running_cnode, &model.pinned, 1)).expect("room");
            Some(1)
        }
        Layout::UnderReference => {
            vm.stack.push_instance(mgmt_frame(running_cnode, &model.pinned, 1)).expect("room");
            vm.stack.push_instance(mgmt_frame(other.clone(), &other_pins, 9)).expect("room");
            vm.stack.push_reference(0).expect("an earlier instance");
            Some(0)
        }
    };
    let other_pos = match layout {
        Layout::OnTop => Some(0),
        Layout::UnderReference => Some(1),
        _ => None,
    };
    let stack_len = vm.stack.len();
    let mut cache = CacheDirectory::new();

    for step in 0..256 {
        if u.is_empty() {
            break;
        }
        let sel = u.int_in_range(0..=15u8)?;
        if sel == 12 {
            let pins = pin_set(u)?;
            if let Some(p) = running_pos {
                vm.stack.instance_mut(p).expect("running frame").pinned =
                    PinnedSlots::new(pins.iter().map(|&s| SlotIdx(s)));
                model.pinned = pins;
            }
            continue;
        }
        let o = match sel {
            0..=11 | 15 => 1 + u32::from(sel % 5),
            13 => u.int_in_range(6..=15u32)?,
            _ => op::REPLY,
        };
        let plain = u.ratio(1, 3)?;
        let r7 = {
            let s = slot_number(u)?;
            slot_reg(u, s)?
        };
        let r8 = if o == op::CNODE_MINT {
            let k = *u.choose(&[0u32, 1, 3, 4, 8, 16, 16, 17, 255])?;
            slot_reg(u, k)?
        } else {
            let s = slot_number(u)?;
            slot_reg(u, s)?
        };
        let mut regs = [0u64; NUM_REGS];
        regs[7] = r7;
        regs[8] = r8;
        regs[11] = if plain { u64::from(u.arbitrary::<u32>()?) << 32 | u64::from(o) } else { u.arbitrary()? };
        let before_regs = regs;
        let keys_before = cache.blob_keys();
        let kind = if plain { EcallKind::Ecall } else { EcallKind::Ecalli(o) };
        let outcome = vm.handle(kind, &mut regs, &mut NoMemory, if cached { Some(&mut cache) } else { None });

        let form = if plain { "ecall" } else { "ecalli" };
        let what = format!(
            "mgmt_ops: op #{step} {} ({form}) φ7 = {r7:#x} (slot {}), φ8 = {r8:#x} (slot {}), size_log {}, pinned {:?}",
            op::name(o),
            r7 & 0xFF,
            r8 & 0xFF,
            model.size_log,
            model.pinned
        );
        let expected = if running_pos.is_some() {
            model.apply(o, r7, r8)
        } else if o == op::REPLY {
            ModelOutcome::Halt
        } else {
            ModelOutcome::Trap
        };
        let got = match outcome {
            EcallOutcome::Continue => ModelOutcome::Continue,
            EcallOutcome::Halt => ModelOutcome::Halt,
            EcallOutcome::Trap => ModelOutcome::Trap,
            EcallOutcome::HostCall(n) => panic!("{what}: the handler returned HostCall({n})"),
        };
        if got != expected {
            panic!("{what}: the model says {expected:?}, the kernel says {got:?} (kernel error: {:?})", vm.last_error);
        }
        if regs != before_regs {
            panic!("{what}: registers changed: {before_regs:#x?} → {regs:#x?} (KSPEC-1 §13.2 P5)");
        }
        if vm.stack.len() != stack_len {
            panic!("{what}: the stack length changed from {stack_len} to {}", vm.stack.len());
        }
        if let Some(p) = running_pos {
            let cn = &vm.stack.instance(p).expect("running frame").root_cnode;
            if cn.size_log != model.size_log {
                panic!("{what}: the cnode's size_log changed to {}", cn.size_log);
            }
            let want = model.slots();
            if cn.slots != want {
                let d = slot_diffs(&want, &cn.slots);
                panic!("{what}: the kernel's cnode differs from the model's: {}", render_slot_diffs(&d));
            }
            let pins: BTreeSet<u32> =
                vm.stack.instance(p).expect("running frame").pinned.as_slice().iter().map(|s| s.0).collect();
            if pins != model.pinned {
                panic!("{what}: the pinned set changed to {pins:?}");
            }
        }
        if let Some(p) = other_pos {
            let cn = &vm.stack.instance(p).expect("other frame").root_cnode;
            if *cn != other {
                let d = slot_diffs(&other.slots, &cn.slots);
                panic!(
                    "{what}: the frame at stack position {p}, which is not running, changed: {}",
                    render_slot_diffs(&d)
                );
            }
        }
        let keys = cache.blob_keys();
        let minted = cached && o == op::CNODE_MINT && got == ModelOutcome::Continue;
        if minted {
            let k = empty_cnode_key((r8 & 0xFF) as u8);
            match cache.get_blob(&k) {
                Some(Cap::CNode(c)) if c.size_log == (r8 & 0xFF) as u8 && c.slots.is_empty() => {}
                other => panic!("{what}: the minted key {} holds {other:?}, not an empty cnode", short(&k)),
            }
            if keys.len() > keys_before.len() + 1 {
                panic!("{what}: CNODE_MINT added {} cache keys", keys.len() - keys_before.len());
            }
        } else if keys != keys_before {
            panic!("{what}: the cache changed ({} → {} keys)", keys_before.len(), keys.len());
        }
    }
    Ok(())
}

/// `mgmt_ops`: sequences of MGMT ops (copy, move, drop, cnode swap, cnode mint, the unassigned
/// MGMT ops and REPLY), in both dispatch forms, with the running frame's pins changed between
/// them, against [`CNodeModel`]. After every op the kernel's outcome and slots must equal the
/// model's, and nothing else may change.
pub fn mgmt_ops(data: &[u8]) {
    let _ = mgmt_ops_run(&mut Unstructured::new(data));
}

// ---------------------------------------------------------------------------------------------
// derive_spawn

/// A parent frame about to run DERIVE_SPAWN, the image and prepared cnode it names, and how the
/// spawned child is then invoked.
struct SpawnCase {
    cache: CacheDirectory,
    parent: FrameSpec,
    regs: [u64; NUM_REGS],
    endpoint: u8,
    args: [u64; 4],
    gas: u64,
}

/// What DERIVE_SPAWN must produce, computed from KSPEC-1 §9.5.3.
#[derive(Debug)]
struct SpawnExpect {
    child: CNodeCap,
    /// Why each child slot holds what it holds: "prepared", "pinned" or "initial".
    sources: BTreeMap<u32, &'static str>,
    instance: InstanceCap,
    cnode_key: Hash,
    instance_key: Hash,
    parent_slots: BTreeMap<u32, CapHashOrRef>,
}

impl SpawnCase {
    fn arbitrary(u: &mut Unstructured) -> Result<SpawnCase> {
        let mut cache = CacheDirectory::new();
        let mut datas = Vec::new();
        for _ in 0..u.int_in_range(1..=4u8)? {
            let d = data_cap(u)?;
            datas.push(cache.put(Cap::Data(d)).expect("data caps are valid"));
        }
        let mut blobs = datas.clone();
        if u.ratio(1, 2)? {
            let t = TypeCap { image_hash_chain: opaque_hash(u)? };
            blobs.push(cache.put(Cap::Type(t)).expect("valid"));
        }
        if u.ratio(1, 2)? {
            let c = CNodeCap::empty(size_log(u)?).expect("size_log ≤ 16");
            blobs.push(cache.put(Cap::CNode(c)).expect("valid"));
        }
        let opaque = opaque_hash(u)?;

        let mut image = ImageCap::empty();
        image.pinned = slot_entries(u, low_slot, &blobs, false)?;
        image.initial = slot_entries(u, low_slot, &blobs, true)?;
        for _ in 0..u.int_in_range(0..=4u8)? {
            image.mappings.push(mapping(u, low_slot)?);
        }
        if u.ratio(1, 4)? {
            image.yield_marker_slot = Some(SlotIdx(slot_number(u)?));
        }

        let prep_log = match u.int_in_range(0..=11u8)? {
            0 => 0,
            1 => 2,
            2..=3 => 3,
            4..=7 => 4,
            8..=9 => 8,
            _ => u.int_in_range(0..=16u8)?,
        };
        let mut prepared = CNodeCap::empty(prep_log).expect("size_log ≤ 16");
        for _ in 0..u.int_in_range(0..=6u8)? {
            let s = low_slot(u)?;
            let t = if u.ratio(5, 6)? { *u.choose(&blobs)? } else { opaque };
            if prepared.in_range(SlotIdx(s)) {
                prepared.slots.insert(s, CapHashOrRef::Hash(t));
            }
        }

        let parent_log = *u.choose(&[1u8, 3, 4, 4, 4, 5, 8, 8])?;
        let mut pinned = Vec::new();
        for _ in 0..u.int_in_range(0..=3u8)? {
            let s = slot_number(u)?;
            if s != 0 {
                pinned.push(SlotIdx(s));
            }
        }
        let (img_slot, cn_slot, dst) = (low_slot(u)?, low_slot(u)?, low_slot(u)?);
        let (place_img, place_cn) = (u.ratio(15, 16)?, u.ratio(15, 16)?);
        let mut others = Vec::new();
        for _ in 0..u.int_in_range(0..=4u8)? {
            let s = slot_number(u)?;
            let t = if u.ratio(1, 8)? { CapHashOrRef::Ref(CapRef(1)) } else { CapHashOrRef::Hash(*u.choose(&blobs)?) };
            others.push((s, t));
        }
        let mut regs = [0u64; NUM_REGS];
        regs[7] = slot_reg(u, img_slot)?;
        regs[8] = slot_reg(u, cn_slot)?;
        regs[9] = slot_reg(u, dst)?;
        let chain = opaque_hash(u)?;
        let endpoint = if u.ratio(15, 16)? { u.int_in_range(0..=63u8)? } else { u.arbitrary()? };

        // The child's program, endpoint registers, arguments and gas.
        let raw = u.ratio(1, 8)?;
        let program = GenProgram::generate(u, GenConfig { profile: Profile::J, gas: GasChoice::Auto, raw })?;
        let blob = program.blob();
        let mut bitmask = vec![0u8; blob.code.len().div_ceil(8)];
        for (i, _) in blob.starts.iter().enumerate().filter(|(_, s)| **s) {
            bitmask[i / 8] |= 1 << (i % 8);
        }
        image.code = blob.code.clone();
        image.bitmask = bitmask;
        image.jump_table = blob.jump_table.clone();
        if let Some(e) = image.endpoints.get_mut(usize::from(endpoint)) {
            *e = EndpointDef {
                entry_pc: u64::from(program.initial_pc),
                initial_regs: program.regs,
                ..Default::default()
            };
        }
        let args = [program.regs[7], program.regs[8], program.regs[9], program.regs[10]];
        let gas = program.gas.max(0) as u64;

        let ih = cache.put(Cap::Image(image)).ok();
        let ch = cache.put(Cap::CNode(prepared)).expect("prepared cnodes are valid");
        let mut cnode = CNodeCap::empty(parent_log).expect("size_log ≤ 16");
        for (s, t) in others {
            if cnode.in_range(SlotIdx(s)) {
                cnode.slots.insert(s, t);
            }
        }
        if let (true, Some(ih)) = (place_img && cnode.in_range(SlotIdx(img_slot)), ih) {
            cnode.slots.insert(img_slot, CapHashOrRef::Hash(ih));
        }
        if place_cn && cnode.in_range(SlotIdx(cn_slot)) {
            cnode.slots.insert(cn_slot, CapHashOrRef::Hash(ch));
        }
        let parent = FrameSpec {
            chain,
            image_hash: [3; 32],
            instance_ref: CapHashOrRef::Hash([4; 32]),
            cnode,
            pinned,
            yield_slot: None,
            regs: [0; NUM_REGS],
            pc: 0,
        };
        Ok(SpawnCase { cache, parent, regs, endpoint, args, gas })
    }

    fn slots(&self) -> (u32, u32, u32) {
        ((self.regs[7] & 0xFF) as u32, (self.regs[8] & 0xFF) as u32, (self.regs[9] & 0xFF) as u32)
    }

    /// DERIVE_SPAWN per KSPEC-1 §9.5.3, or why it must trap.
    fn expect(&self) -> std::result::Result<SpawnExpect, &'static str> {
        let (img_slot, cn_slot, dst) = self.slots();
        let p = &self.parent;
        let capacity = 1u64 << p.cnode.size_log;
        let read = |s: u32| if u64::from(s) < capacity { p.cnode.slots.get(&s).copied() } else { None };
        let Some(CapHashOrRef::Hash(ih)) = read(img_slot) else { return Err("the image slot holds no hash") };
        let Some(CapHashOrRef::Hash(ch)) = read(cn_slot) else { return Err("the prepared-cnode slot holds no hash") };
        let Some(Cap::Image(image)) = self.cache.get_blob(&ih) else { return Err("the image slot names no Image") };
        let Some(Cap::CNode(prepared)) = self.cache.get_blob(&ch) else { return Err("the cnode slot names no CNode") };
        if u64::from(dst) >= capacity {
            return Err("dst is out of range");
        }
        if p.is_pinned(dst) {
            return Err("dst is pinned");
        }
        if p.is_pinned(cn_slot) {
            return Err("the prepared-cnode slot is pinned");
        }

        // Pinned entries over the prepared cnode, then initial entries where it is still empty.
        let child_capacity = 1u64 << prepared.size_log;
        let mut slots: BTreeMap<u32, (Hash, &'static str)> = BTreeMap::new();
        for (s, t) in &prepared.slots {
            let CapHashOrRef::Hash(h) = t else { return Err("the prepared cnode holds a reference") };
            slots.insert(*s, (*h, "prepared"));
        }
        for e in &image.pinned {
            if u64::from(e.slot.0) >= child_capacity {
                return Err("a pinned entry lies outside the prepared cnode");
            }
            slots.insert(e.slot.0, (e.cap_hash, "pinned"));
        }
        for e in &image.initial {
            if u64::from(e.slot.0) >= child_capacity {
                return Err("an initial entry lies outside the prepared cnode");
            }
            slots.entry(e.slot.0).or_insert((e.cap_hash, "initial"));
        }
        let child = CNodeCap {
            size_log: prepared.size_log,
            slots: slots.iter().map(|(s, (h, _))| (*s, CapHashOrRef::Hash(*h))).collect(),
        };
        let sources = slots.iter().map(|(s, (_, why))| (*s, *why)).collect();
        let cnode_key = jcap_hash(&Cap::CNode(child.clone())).expect("hash forms only");

        // Every mapping counts towards mem_size; a mapping whose first source slot in the child
        // holds non-empty Data overlays all of that Data at its start.
        let mut mem_size = 0u64;
        let mut overlays = Vec::new();
        for m in &image.mappings {
            mem_size = mem_size.max(m.start + m.size);
            let Some(first) = m.source_path.first() else { continue };
            let Some((h, _)) = slots.get(&first.0) else { continue };
            if let Some(Cap::Data(d)) = self.cache.get_blob(h) {
                if !d.content.is_empty() {
                    overlays.push(RwOverlay { start: m.start as u32, bytes: d.content.clone() });
                }
            }
        }
        if overlays.iter().any(|o| u64::from(o.start) + o.bytes.len() as u64 > ADDRESS_END) {
            return Err("an overlay ends past 2^32");
        }
        let instance = InstanceCap {
            image_hash_chain: pair(&p.chain, &ih),
            image_hash: ih,
            root_cnode: CapHashOrRef::Hash(cnode_key),
            rw_overlays: overlays,
            mem_size: mem_size as u32,
            regs: [0; NUM_REGS],
            pc: 0,
            gas_remaining: 0,
        };
        let instance_key = jcap_hash(&Cap::Instance(instance.clone())).expect("hash forms only");
        let mut parent_slots = p.cnode.slots.clone();
        parent_slots.remove(&cn_slot);
        parent_slots.insert(dst, CapHashOrRef::Hash(instance_key));
        Ok(SpawnExpect { child, sources, instance, cnode_key, instance_key, parent_slots })
    }

    fn what(&self) -> String {
        let (i, c, d) = self.slots();
        format!(
            "derive_spawn: DERIVE_SPAWN image slot {i}, prepared-cnode slot {c}, dst {d}; parent size_log {}, pinned {:?}",
            self.parent.cnode.size_log,
            self.parent.pinned.iter().map(|s| s.0).collect::<Vec<_>>()
        )
    }

    fn run(&self) {
        let what = self.what();
        let mut vm = Vm::new(InMemoryAssist::new());
        vm.stack.push_instance(self.parent.entry(true)).expect("room");
        let mut cache = self.cache.clone();
        let snapshot = |vm: &Vm, cache: &CacheDirectory, regs: &[u64; NUM_REGS], outcome| {
            let live = LiveState { regs: *regs, pc: 0, gas: 0, mem: [0; 32] };
            let assist = vm.assist.snapshot();
            Kobs::capture(&vm.stack, cache, assist, Point::P1, ObsOutcome::Ecall(outcome), live, Some(0), true)
        };
        let pre = snapshot(&vm, &cache, &self.regs, EcallOutcome::Trap);
        let pre_keys = cache.blob_keys();
        let mut regs = self.regs;
        let outcome = vm.handle(EcallKind::Ecalli(op::DERIVE_SPAWN), &mut regs, &mut NoMemory, Some(&mut cache));
        check_global(&what, &vm, &cache, &pre_keys);
        let post = snapshot(&vm, &cache, &regs, EcallOutcome::Trap);
        let error = vm.last_error.clone();

        let expected = self.expect();
        let exp = match (&expected, outcome) {
            (Err(_), EcallOutcome::Trap) => {
                if post != pre {
                    panic!(
                        "{what}: trapped ({error:?}) but changed state (KSPEC-1 §13.2 P12): {}",
                        render_diff(&pre, &post)
                    );
                }
                return;
            }
            (Err(why), o) => panic!("{what}: must trap ({why}) but the kernel returned {o:?}"),
            (Ok(_), EcallOutcome::Continue) => expected.as_ref().expect("matched Ok"),
            (Ok(_), o) => panic!("{what}: must succeed but the kernel returned {o:?} ({error:?})"),
        };
        if regs != self.regs {
            panic!("{what}: registers changed (KSPEC-1 §13.2 P5)");
        }
        let (_, cn_slot, dst) = self.slots();
        let got_slots = &vm.stack.instance(0).expect("parent").root_cnode.slots;
        if let Some(CapHashOrRef::Hash(k)) = got_slots.get(&dst) {
            if *k != exp.instance_key {
                panic!(
                    "{what}: dst {dst} holds Instance {}, expected {}: {}",
                    short(k),
                    short(&exp.instance_key),
                    explain_instance(&cache, k, exp)
                );
            }
        }
        if *got_slots != exp.parent_slots {
            let d = render_slot_diffs(&slot_diffs(&exp.parent_slots, got_slots));
            panic!(
                "{what}: the parent's cnode differs (prepared slot {cn_slot} is consumed unless it is dst, dst {dst} gets \
                 the instance {}): {}",
                short(&exp.instance_key),
                d
            );
        }
        let mut want_new: Vec<Hash> =
            [exp.cnode_key, exp.instance_key].into_iter().filter(|k| pre_keys.binary_search(k).is_err()).collect();
        want_new.sort_unstable();
        want_new.dedup();
        let got_new: Vec<Hash> = cache.blob_keys().into_iter().filter(|k| pre_keys.binary_search(k).is_err()).collect();
        if got_new != want_new {
            panic!(
                "{what}: new cache keys {:?}, expected {:?} (the child cnode and the Instance)",
                got_new.iter().map(short).collect::<Vec<_>>(),
                want_new.iter().map(short).collect::<Vec<_>>()
            );
        }
        self.check_child_memory(&what, &cache, exp);
        self.run_child(&what, &cache, exp);
    }

    /// The child's memory on entry (KSPEC-1 §6.3): the base region, then each overlay in order,
    /// later ones winning.
    fn check_child_memory(&self, what: &str, cache: &CacheDirectory, exp: &SpawnExpect) {
        if exp.instance.mem_size > 0x10_0000 {
            return;
        }
        let mut programs = Programs::new(default_config());
        let Ok(entry) = build_entry(
            cache,
            &mut programs,
            CapHashOrRef::Hash(exp.instance_key),
            u64::from(self.endpoint),
            self.args,
        ) else {
            return;
        };
        let FrameState::Initial { memory, .. } = &entry.state else { unreachable!("a fresh entry") };
        let mut b = Interpreter::new();
        b.load(entry.program.clone());
        memory.apply(&mut b).expect("the plan lies inside the address space");
        let mut want: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let zero = vec![0u8; PAGE as usize];
        for page in (0..u64::from(exp.instance.mem_size)).step_by(PAGE as usize) {
            want.insert(page as u32, zero.clone());
        }
        for o in &exp.instance.rw_overlays {
            for (i, chunk) in o.bytes.chunks(PAGE as usize).enumerate() {
                let mut content = zero.clone();
                content[..chunk.len()].copy_from_slice(chunk);
                want.insert(o.start + (i as u32) * PAGE as u32, content);
            }
        }
        let got: BTreeMap<u32, Vec<u8>> = b.memory_pages().into_iter().map(|(a, _, c)| (a, c)).collect();
        if got != want {
            let pages: BTreeSet<u32> = got.keys().chain(want.keys()).copied().collect();
            let bad: Vec<String> = pages
                .into_iter()
                .filter(|p| got.get(p) != want.get(p))
                .take(4)
                .map(|p| match (want.get(&p), got.get(&p)) {
                    (Some(_), None) => format!("page {p:#x} should be mapped"),
                    (None, Some(_)) => format!("page {p:#x} should not be mapped"),
                    (Some(w), Some(g)) => {
                        let at = w.iter().zip(g).position(|(a, b)| a != b).unwrap_or(0);
                        format!("page {p:#x} byte {at}: expected {:#04x}, got {:#04x}", w[at], g[at])
                    }
                    (None, None) => unreachable!("listed"),
                })
                .collect();
            panic!("{what}: the spawned child's memory on entry is wrong: {}", bad.join("; "));
        }
    }

    /// Invokes the spawned child on both backends and compares every KOBS-1 record.
    fn run_child(&self, what: &str, cache: &CacheDirectory, exp: &SpawnExpect) {
        if exp.instance.mem_size > 0x10_0000 {
            return;
        }
        let mut assist = InMemoryAssist::new();
        assist.storage_quota_set(0, 1 << 20);
        let scenario = Scenario {
            cache: cache.clone(),
            assist,
            config: default_config(),
            max_depth: 8,
            legs: vec![Leg::Invoke {
                instance: exp.instance_key,
                endpoint: self.endpoint,
                args: self.args,
                gas: self.gas,
            }],
        };
        let (ka, kb) = kinds();
        let fa = || -> Box<dyn Backend> { ka.create().expect("interpreter") };
        let fb = || -> Box<dyn Backend> { kb.create().expect("checked by pair_kinds") };
        let (ra, rb, d) = differential(&scenario, &fa, &fb, 1);
        for (name, run) in [(ka.name(), &ra), (kb.name(), &rb)] {
            if let Some(v) = run.violations.first() {
                panic!("{what}: running the spawned child on {name} broke an invariant: {v}");
            }
        }
        if let Some(d) = d {
            panic!("{what}: the spawned child runs differently on {} and {}: {d}", ka.name(), kb.name());
        }
    }
}

/// On a wrong spawn result: which fields of the published Instance and child cnode differ.
fn explain_instance(cache: &CacheDirectory, got: &Hash, exp: &SpawnExpect) -> String {
    let Some(Cap::Instance(i)) = cache.get_blob(got) else { return format!("{} is not an Instance", short(got)) };
    let mut out = Vec::new();
    if i.image_hash_chain != exp.instance.image_hash_chain {
        out.push(format!(
            "chain: expected hash_pair(parent chain, image) = {}, got {}",
            short(&exp.instance.image_hash_chain),
            short(&i.image_hash_chain)
        ));
    }
    if i.mem_size != exp.instance.mem_size {
        out.push(format!("mem_size: expected {:#x}, got {:#x}", exp.instance.mem_size, i.mem_size));
    }
    if i.rw_overlays != exp.instance.rw_overlays {
        let show =
            |v: &[RwOverlay]| v.iter().map(|o| format!("{:#x}+{:#x}", o.start, o.bytes.len())).collect::<Vec<_>>();
        out.push(format!("overlays: expected {:?}, got {:?}", show(&exp.instance.rw_overlays), show(&i.rw_overlays)));
    }
    if i.root_cnode != CapHashOrRef::Hash(exp.cnode_key) {
        match i.root_cnode.as_hash().and_then(|h| cache.get_blob(h)) {
            Some(Cap::CNode(c)) => {
                for (s, m) in slot_diffs(&exp.child.slots, &c.slots) {
                    let why = exp.sources.get(&s).copied().unwrap_or("no prepared, pinned or initial entry");
                    out.push(format!("child slot {s}: {m} (from {why})"));
                }
            }
            _ => out.push(format!("the root cnode {} is not a cnode", show(Some(&i.root_cnode)))),
        }
    }
    if out.is_empty() {
        out.push("the Instance's other fields differ".into());
    }
    out.join("; ")
}

/// `derive_spawn`: arbitrary images (pinned and initial slots, mappings with source slots), a
/// prepared cnode and a parent frame with pins, then DERIVE_SPAWN. The result is checked against
/// [`SpawnCase::expect`] (pinned over prepared over initial, the overlays the mappings name, the
/// lineage chain, the prepared slot consumed only on success, nothing changed on a trap), the
/// child's memory on entry against §6.3, and the child is run on both backends of
/// [`super::pair_kinds`], which must observe the same thing at every ecall.
pub fn derive_spawn(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(case) = SpawnCase::arbitrary(&mut u) {
        case.run();
    }
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
