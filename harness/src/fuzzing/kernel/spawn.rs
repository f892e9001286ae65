//! `derive_spawn`: DERIVE_SPAWN against its construction computed from KSPEC-1 §9.5.3, and the
//! child run on the interpreter and the JIT.

use super::*;

// ---------------------------------------------------------------------------------------------
// derive_spawn

/// A parent frame about to run DERIVE_SPAWN, the image and prepared cnode it names, and how the
/// spawned child is then invoked.
pub(super) struct SpawnCase {
    pub(super) cache: CacheDirectory,
    pub(super) parent: FrameSpec,
    pub(super) regs: [u64; NUM_REGS],
    pub(super) endpoint: u8,
    pub(super) args: [u64; 4],
    pub(super) gas: u64,
}

/// What DERIVE_SPAWN must produce, computed from KSPEC-1 §9.5.3.
#[derive(Debug)]
pub(super) struct SpawnExpect {
    pub(super) child: CNodeCap,
    /// Why each child slot holds what it holds: "prepared", "pinned" or "initial".
    pub(super) sources: BTreeMap<u32, &'static str>,
    pub(super) instance: InstanceCap,
    pub(super) cnode_key: Hash,
    pub(super) instance_key: Hash,
    pub(super) parent_slots: BTreeMap<u32, CapHashOrRef>,
}

impl SpawnCase {
    pub(super) fn arbitrary(u: &mut Unstructured) -> Result<SpawnCase> {
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
        image.code = blob.code.clone();
        image.bitmask = blob.starts.packed(blob.code.len());
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

    pub(super) fn slots(&self) -> (u32, u32, u32) {
        ((self.regs[7] & 0xFF) as u32, (self.regs[8] & 0xFF) as u32, (self.regs[9] & 0xFF) as u32)
    }

    /// DERIVE_SPAWN per KSPEC-1 §9.5.3, or why it must trap.
    pub(super) fn expect(&self) -> std::result::Result<SpawnExpect, &'static str> {
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

    pub(super) fn what(&self) -> String {
        let (i, c, d) = self.slots();
        format!(
            "derive_spawn: DERIVE_SPAWN image slot {i}, prepared-cnode slot {c}, dst {d}; parent size_log {}, pinned {:?}",
            self.parent.cnode.size_log,
            self.parent.pinned.iter().map(|s| s.0).collect::<Vec<_>>()
        )
    }

    pub(super) fn run(&self) {
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
    pub(super) fn check_child_memory(&self, what: &str, cache: &CacheDirectory, exp: &SpawnExpect) {
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
    pub(super) fn run_child(&self, what: &str, cache: &CacheDirectory, exp: &SpawnExpect) {
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
pub(super) fn explain_instance(cache: &CacheDirectory, got: &Hash, exp: &SpawnExpect) -> String {
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
