//! The kernel-state generator: caches, cnodes, pins, quotas, files, catchers, call stacks and
//! frame memory drawn from fuzzer input, built into a live `Vm`.

use super::*;

// ---------------------------------------------------------------------------------------------
// An arbitrary kernel state: cache, kernel-assist, call stack and the running frame's memory.

/// A cap cache and kernel-assist state, with everything a slot may hold.
pub(super) struct World {
    pub(super) cache: CacheDirectory,
    pub(super) assist: InMemoryAssist,
    pub(super) targets: Vec<CapHashOrRef>,
}

impl World {
    pub(super) fn kind(&self, t: &CapHashOrRef) -> Option<CapKind> {
        self.cache.get(t).map(Cap::kind)
    }

    pub(super) fn keys_of(&self, kind: CapKind) -> Vec<Hash> {
        self.cache.blobs().filter(|(_, c)| c.kind() == kind).map(|(k, _)| *k).collect()
    }

    pub(super) fn arbitrary(u: &mut Unstructured) -> Result<World> {
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

    pub(super) fn put(&mut self, cap: Cap) {
        if let Ok(h) = self.cache.put(cap) {
            self.targets.push(CapHashOrRef::Hash(h));
        }
    }

    pub(super) fn image(&self, u: &mut Unstructured) -> Result<ImageCap> {
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
pub(super) struct FrameSpec {
    pub(super) chain: Hash,
    pub(super) image_hash: Hash,
    pub(super) instance_ref: CapHashOrRef,
    pub(super) cnode: CNodeCap,
    pub(super) pinned: Vec<SlotIdx>,
    pub(super) yield_slot: Option<SlotIdx>,
    pub(super) regs: [u64; NUM_REGS],
    pub(super) pc: u32,
}

impl FrameSpec {
    pub(super) fn arbitrary(u: &mut Unstructured, world: &World) -> Result<FrameSpec> {
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

    pub(super) fn entry(&self, live: bool) -> InstanceEntry {
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

    pub(super) fn is_pinned(&self, slot: u32) -> bool {
        self.pinned.contains(&SlotIdx(slot))
    }
}

/// A whole kernel state, rebuilt identically as often as needed.
pub(super) struct KernelState {
    pub(super) world: World,
    pub(super) frames: Vec<FrameSpec>,
    /// A Reference entry on top, to the frame at this position.
    pub(super) reference: Option<usize>,
    pub(super) max_depth: usize,
    pub(super) memory: MemoryPlan,
    /// The pages `memory` maps, worked out from §6.3.
    pub(super) pages: BTreeSet<u64>,
}

pub(super) struct Built {
    pub(super) vm: Vm,
    pub(super) cache: CacheDirectory,
    pub(super) backend: Box<dyn Backend>,
    pub(super) regions: Regions,
}

impl KernelState {
    pub(super) fn arbitrary(u: &mut Unstructured) -> Result<KernelState> {
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
    pub(super) fn running(&self) -> Option<usize> {
        self.reference.or(self.frames.len().checked_sub(1))
    }

    pub(super) fn build(&self) -> Built {
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
    pub(super) fn readable(&self, addr: u32, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        let start = u64::from(addr);
        let Some(end) = start.checked_add(len).filter(|&e| e <= ADDRESS_END) else { return false };
        let (first, last) = (start / PAGE, (end - 1) / PAGE);
        last - first < self.pages.len() as u64 && (first..=last).all(|p| self.pages.contains(&(p * PAGE)))
    }

    /// Addresses at the edges of the running frame's memory.
    pub(super) fn edges(&self) -> Vec<u64> {
        let mut e = vec![0, 0xFFFF_FFFF];
        for &(a, b) in self.memory.regions.ranges() {
            e.extend([a, b, b.saturating_sub(1)]);
        }
        e
    }
}

pub(super) const LENGTHS: [u64; 11] = [0, 1, 5, 4095, 4096, 4097, 8192, 12_288, 1 << 40, u64::MAX, 1 << 32];

/// A register value: a slot of the running frame (often one holding a given kind of cap), any
/// slot, an address at a memory edge, a length, a small id, or anything.
pub(super) fn reg_value(u: &mut Unstructured, state: &KernelState) -> Result<u64> {
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
pub(super) fn observe(built: &Built, regs: &[u64; NUM_REGS], running: Option<usize>, outcome: EcallOutcome) -> Kobs {
    let live = LiveState { regs: *regs, pc: 0, gas: 0, mem: mem1_digest(&*built.backend) };
    let assist = built.vm.assist.snapshot();
    Kobs::capture(&built.vm.stack, &built.cache, assist, Point::P1, ObsOutcome::Ecall(outcome), live, running, true)
}
