//! `ecall_dispatch`: one host op on a generated kernel state, judged by the invariants of
//! KSPEC-1 §13 and by each op's effect computed from §9 without the kernel's code.

use super::*;

// ---------------------------------------------------------------------------------------------
// ecall_dispatch

/// An op, its registers and a kernel state.
pub(super) struct DispatchCase {
    pub(super) op: u32,
    /// The high half of φ[11] (ignored by both forms, §9.1).
    pub(super) op_high: u32,
    pub(super) cached: bool,
    pub(super) regs: [u64; NUM_REGS],
    pub(super) state: KernelState,
}

/// What one dispatch did.
pub(super) struct Dispatched {
    pub(super) outcome: EcallOutcome,
    pub(super) error: Option<KernelError>,
    pub(super) regs: [u64; NUM_REGS],
    pub(super) pre: Kobs,
    pub(super) post: Kobs,
    /// Guest memory after the op at `φ8 as u32`, up to 16 KiB (what READ_DATA_CAP wrote).
    pub(super) written: Option<Vec<u8>>,
}

impl DispatchCase {
    pub(super) fn arbitrary(u: &mut Unstructured) -> Result<DispatchCase> {
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

    pub(super) fn what(&self) -> String {
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
    pub(super) fn mint_rule(&self) -> std::result::Result<(), &'static str> {
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
    pub(super) fn save_rule(&self) -> std::result::Result<(), &'static str> {
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

    pub(super) fn dispatch(&self, kind: EcallKind) -> Dispatched {
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

    pub(super) fn run(&self) {
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
    pub(super) fn check_host_effects(&self, d: &Dispatched) {
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
    pub(super) fn check(&self, d: &Dispatched) {
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
