//! The VM and its driver loop (KSPEC-1 §10): invoke an instance's endpoint, run nested
//! `HOST_CALL`s, return to the caller on REPLY/HALT with slot 0 moved back, share one gas
//! counter, pause on a yield or a routed out-of-gas and resume, and end with Halt or Faulted.
//!
//! The VM runs on any [`Backend`]: every frame gets its own backend from the factory passed to
//! [`Vm::invoke`] / [`Vm::call_resume`], so the same invocation can run on the interpreter or the
//! JIT.

use std::sync::Arc;

use javm_cap::{CNodeCap, CacheDirectory, Cap, CapHashOrRef, Hash, InstanceCap, RwOverlay, SlotIdx, OOG_MARKER};
use javm_engine::{Backend, Config, Exit, Program, NUM_REGS};

use crate::assist::{InMemoryAssist, KernelAssist};
use crate::ecall::{op, EcallKind, EcallOutcome};
use crate::error::{KernelError, VmError};
use crate::frame::{build_entry, default_config, FrameState, InstanceEntry, Programs};
use crate::memory::{mem1_digest, FrameMemory, ADDRESS_END};
use crate::observe::{EcallInfo, Kobs, LiveState, ObsOutcome, Point, Trace, TraceRecord};
use crate::stack::{CallStack, Entry, DEFAULT_MAX_DEPTH};

/// Creates a fresh backend for a frame.
pub type BackendFactory<'a> = &'a dyn Fn() -> Box<dyn Backend>;

/// Why an invocation faulted (KSPEC-1 §10.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultReason {
    /// The instruction decoded as `trap`, or an ecall failed.
    Trap,
    /// Any other panic.
    Panic,
    /// Out of gas, and no frame catches `OOG_MARKER`.
    OutOfGas,
    /// A page fault at this page address.
    PageFault(u32),
}

/// The result of a leg (KSPEC-1 §10, Appendix A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// The invoked frame halted.
    Halt {
        /// φ[7] at the halt.
        return_value: u64,
        /// The key of the published post-HALT Instance.
        post_instance_hash: Hash,
        /// What slot 0 held.
        reflected_slot0: Option<CapHashOrRef>,
        /// Gas spent in this leg.
        gas_used: u64,
    },
    /// A frame at any depth faulted; the whole invocation unwound.
    Faulted {
        /// Why.
        reason: FaultReason,
        /// What the faulting frame's slot 0 held.
        reflected_slot0: Option<CapHashOrRef>,
        /// Gas spent in this leg.
        gas_used: u64,
    },
    /// A yield or a routed out-of-gas paused the invocation.
    Paused {
        /// The marker that was caught.
        marker_payload: Option<CapHashOrRef>,
        /// Gas spent in this leg.
        gas_used: u64,
    },
}

/// How a leg ended, for vector checks: the final live registers, pc and gas of the frame that
/// terminated or paused, and the invoked frame's cnode at that point (after the reflected slot 0
/// was taken out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegEnd {
    /// φ[0..=12].
    pub regs: [u64; NUM_REGS],
    /// pc per KSPEC-1 §6.6.
    pub pc: u32,
    /// Gas left.
    pub gas: i64,
    /// The invoked (base) frame's working cnode.
    pub cnode: CNodeCap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Paused {
    base: usize,
}

/// Which pc a live state reports (KSPEC-1 §6.6): after Continue or HostCall the next
/// instruction, after Halt, Trap and engine exits the instruction that stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PcRule {
    Resume,
    AtExit,
}

/// The kernel: call stack, kernel-assist and decoded-program memo. The cache is lent per call.
#[derive(Debug)]
pub struct Vm<K: KernelAssist = InMemoryAssist> {
    /// The call stack.
    pub stack: CallStack,
    /// The kernel-assist services.
    pub assist: K,
    /// Decoded programs.
    pub programs: Programs,
    /// Why the last ecall trapped, if it did.
    pub last_error: Option<KernelError>,
    /// When set, KOBS-1 records are collected here (KSPEC-1 §12).
    pub trace: Option<Trace>,
    /// How the last leg ended.
    pub last_leg: Option<LegEnd>,
    /// When set, the invariants of KSPEC-1 §13.1 and the atomic-failure property (§13.2 P1)
    /// are checked at every ecall and at the end of every leg.
    pub check_invariants: bool,
    /// What those checks found.
    pub violations: Vec<String>,
    pub(crate) yielded_marker: Option<Hash>,
    pending_live: Option<LiveState>,
    paused: Option<Paused>,
    leg: usize,
    ecalls: u64,
}

impl<K: KernelAssist> Vm<K> {
    /// A VM with the default engine configuration (profile J, unit cost per block) and stack
    /// depth 256.
    pub fn new(assist: K) -> Self {
        Self::with_config(assist, default_config(), DEFAULT_MAX_DEPTH)
    }

    /// A VM with the given engine configuration and stack capacity.
    pub fn with_config(assist: K, config: Config, max_depth: usize) -> Self {
        Vm {
            stack: CallStack::new(max_depth),
            assist,
            programs: Programs::new(config),
            last_error: None,
            trace: None,
            last_leg: None,
            check_invariants: false,
            violations: Vec::new(),
            yielded_marker: None,
            pending_live: None,
            paused: None,
            leg: 0,
            ecalls: 0,
        }
    }

    /// Starts collecting KOBS-1 records; memory digests are taken at every `mem_every`-th P1
    /// (and always at P2 and at every P1 whose outcome is not Continue).
    pub fn enable_trace(&mut self, mem_every: u32) {
        self.trace = Some(Trace::new(mem_every));
    }

    /// Whether an invocation is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.is_some()
    }

    /// `invoke(cache, instance_hash, endpoint_idx, args, gas_budget)` (KSPEC-1 §10.1).
    pub fn invoke(
        &mut self,
        cache: &mut CacheDirectory,
        backends: BackendFactory<'_>,
        instance_hash: Hash,
        endpoint_idx: u8,
        args: [u64; 4],
        gas_budget: u64,
    ) -> Result<CallResult, VmError> {
        let r = self.start(cache, backends, instance_hash, endpoint_idx, args, gas_budget);
        self.leg += 1;
        r
    }

    fn start(
        &mut self,
        cache: &mut CacheDirectory,
        backends: BackendFactory<'_>,
        instance_hash: Hash,
        endpoint_idx: u8,
        args: [u64; 4],
        gas_budget: u64,
    ) -> Result<CallResult, VmError> {
        if self.paused.is_some() {
            return Err(VmError::Busy);
        }
        let gas = i64::try_from(gas_budget).map_err(|_| VmError::GasTooLarge)?;
        let entry =
            build_entry(cache, &mut self.programs, CapHashOrRef::Hash(instance_hash), u64::from(endpoint_idx), args)
                .map_err(VmError::Build)?;
        let base = self.stack.len();
        self.stack.push_instance(entry).map_err(VmError::Build)?;
        self.enter(base, backends, gas);
        self.drive(cache, backends, base, base, gas)
    }

    /// `call_resume(cache, scratchpad, extra_gas)` (KSPEC-1 §10.4): continues a paused
    /// invocation at the yielder's next pc with its gas plus `extra_gas`.
    pub fn call_resume(
        &mut self,
        cache: &mut CacheDirectory,
        backends: BackendFactory<'_>,
        scratchpad: Option<CapHashOrRef>,
        extra_gas: u64,
    ) -> Result<CallResult, VmError> {
        let r = self.resume(cache, backends, scratchpad, extra_gas);
        self.leg += 1;
        r
    }

    fn resume(
        &mut self,
        cache: &mut CacheDirectory,
        backends: BackendFactory<'_>,
        scratchpad: Option<CapHashOrRef>,
        extra_gas: u64,
    ) -> Result<CallResult, VmError> {
        let paused = self.paused.ok_or(VmError::NotPaused)?;
        let len = self.stack.len();
        if len < 2 || !matches!(self.stack.get(len - 1), Some(Entry::Reference { .. })) {
            return Err(VmError::NotPaused);
        }
        let yielder = len - 2;
        let saved = self.stack.instance(yielder).and_then(InstanceEntry::backend).map(|b| b.gas()).unwrap_or(0);
        let gas = i64::try_from(i128::from(saved) + i128::from(extra_gas)).map_err(|_| VmError::GasTooLarge)?;
        self.stack.pop();
        let e = self.stack.instance_mut(yielder).expect("the yielder is an instance entry");
        if let Some(s) = scratchpad {
            e.root_cnode.set(SlotIdx(0), Some(s)).expect("slot 0 is in every cnode");
        }
        if let Some(b) = e.backend_mut() {
            b.set_gas(gas);
        }
        self.paused = None;
        self.drive(cache, backends, paused.base, yielder, gas)
    }

    /// Drops a paused invocation: pops down to its base (optional embedder API, §10.4).
    pub fn abort_paused(&mut self) {
        if let Some(p) = self.paused.take() {
            self.stack.truncate(p.base);
        }
    }

    /// Makes frame `pos` live in a backend (building it from its initial state if needed) with
    /// `gas` on the shared counter.
    fn enter(&mut self, pos: usize, backends: BackendFactory<'_>, gas: i64) {
        let e = self.stack.instance_mut(pos).expect("frame to enter is an instance entry");
        if let FrameState::Initial { regs, pc, memory } = &e.state {
            let mut b = backends();
            b.load(e.program.clone());
            memory.apply(&mut *b).expect("memory plans stay inside the address space");
            b.set_regs(*regs);
            b.set_pc(*pc);
            e.state = FrameState::Live(b);
        }
        if let Some(b) = e.backend_mut() {
            b.set_gas(gas);
        }
    }

    fn live_backend(&mut self, pos: usize) -> &mut dyn Backend {
        self.stack.instance_mut(pos).and_then(InstanceEntry::backend_mut).expect("the executing frame is live")
    }

    fn gas_of(&self, pos: usize) -> i64 {
        self.stack.instance(pos).and_then(InstanceEntry::backend).map_or(0, |b| b.gas())
    }

    /// The loop of KSPEC-1 §10.2, from frame `cur` with the invocation's `base`.
    fn drive(
        &mut self,
        cache: &mut CacheDirectory,
        backends: BackendFactory<'_>,
        base: usize,
        mut cur: usize,
        leg_gas: i64,
    ) -> Result<CallResult, VmError> {
        let used = |gas: i64| leg_gas.wrapping_sub(gas) as u64;
        let result = loop {
            let exit = self.live_backend(cur).run();
            let outcome = match exit {
                Exit::HostCall(id) => self.on_ecall(cache, EcallKind::Ecalli(id), cur),
                Exit::Ecall => self.on_ecall(cache, EcallKind::Ecall, cur),
                Exit::Halt => EcallOutcome::Halt,
                Exit::Trap => break self.fault(base, cur, FaultReason::Trap, used),
                Exit::Panic => break self.fault(base, cur, FaultReason::Panic, used),
                Exit::PageFault(a) => break self.fault(base, cur, FaultReason::PageFault(a), used),
                Exit::OutOfGas => {
                    if self.find_catcher(cur, &OOG_MARKER).is_some_and(|p| self.stack.push_reference(p).is_ok()) {
                        break self.pause(base, cur, OOG_MARKER, PcRule::AtExit, used);
                    }
                    break self.fault(base, cur, FaultReason::OutOfGas, used);
                }
            };
            match outcome {
                EcallOutcome::Continue => {}
                EcallOutcome::Trap => break self.fault(base, cur, FaultReason::Trap, used),
                EcallOutcome::HostCall(op::SET_IMAGE) => self.reload(cur),
                EcallOutcome::HostCall(op::CALL) => {
                    let gas = self.gas_of(cur);
                    cur += 1;
                    self.enter(cur, backends, gas);
                }
                EcallOutcome::HostCall(_) => {
                    let marker = self.yielded_marker.take().unwrap_or_default();
                    break self.pause(base, cur, marker, PcRule::Resume, used);
                }
                EcallOutcome::Halt if cur > base => {
                    let gas = self.gas_of(cur);
                    let s0 = self.stack.instance_mut(cur).and_then(|e| e.root_cnode.take(SlotIdx(0)).ok().flatten());
                    self.stack.pop();
                    cur -= 1;
                    let parent = self.stack.instance_mut(cur).expect("the caller is an instance entry");
                    if let Some(s0) = s0 {
                        parent.root_cnode.set(SlotIdx(0), Some(s0)).expect("slot 0 is in every cnode");
                    }
                    if let Some(b) = parent.backend_mut() {
                        b.set_gas(gas);
                    }
                }
                EcallOutcome::Halt => break self.finish_halt(cache, base, used),
            }
        };
        if self.check_invariants && result.is_ok() {
            self.check_global(cache, "end of leg");
        }
        if let (Ok(r), Some(live)) = (&result, self.pending_live.take()) {
            self.record(cache, Point::P2, ObsOutcome::Leg(*r), live, None, None, true);
        }
        self.pending_live = None;
        result
    }

    /// Runs the handler for the ecall frame `cur` stopped at, then records P1 (KSPEC-1 §12.1).
    fn on_ecall(&mut self, cache: &mut CacheDirectory, kind: EcallKind, cur: usize) -> EcallOutcome {
        let pre = self.check_invariants.then(|| self.check_snapshot(cache, cur));
        let e = self.stack.instance_mut(cur).expect("the executing frame is an instance entry");
        let FrameState::Live(mut backend) = std::mem::replace(&mut e.state, FrameState::Detached) else {
            unreachable!("the executing frame is live")
        };
        let regions = std::mem::take(&mut e.regions);
        let mut regs = backend.regs();
        let before = regs;
        let ecall_pc = backend.pc();
        let outcome = {
            let mut mem = FrameMemory { backend: &mut *backend, regions: &regions };
            self.handle(kind, &mut regs, &mut mem, Some(cache))
        };
        if regs != before {
            backend.set_regs(regs);
        }
        let e = self.stack.instance_mut(cur).expect("the executing frame is still an instance entry");
        e.state = FrameState::Live(backend);
        e.regions = regions;
        let index = self.ecalls;
        self.ecalls += 1;
        if let Some(pre) = pre {
            self.check_after_ecall(cache, cur, pre, outcome, index, kind.op(&before));
        }
        if let Some(trace) = &self.trace {
            let sampled = trace.samples(index, outcome);
            let rule = match outcome {
                EcallOutcome::Halt | EcallOutcome::Trap => PcRule::AtExit,
                _ => PcRule::Resume,
            };
            let live = self.capture_live(cur, rule, sampled);
            let info = EcallInfo { index, op: kind.op(&before), pc: ecall_pc, error: self.last_error.clone() };
            self.record(cache, Point::P1, ObsOutcome::Ecall(outcome), live, Some(info), Some(cur), sampled);
        }
        outcome
    }

    /// A record of the state as it is before the handler runs, in the form a trapping ecall's
    /// P1 record must have.
    fn check_snapshot(&self, cache: &CacheDirectory, cur: usize) -> Kobs {
        let live = self.capture_live(cur, PcRule::AtExit, true);
        let assist = self.assist.snapshot();
        let outcome = ObsOutcome::Ecall(EcallOutcome::Trap);
        Kobs::capture(&self.stack, cache, assist, Point::P1, outcome, live, Some(cur), true)
    }

    fn check_after_ecall(
        &mut self,
        cache: &CacheDirectory,
        cur: usize,
        pre: Kobs,
        outcome: EcallOutcome,
        index: u64,
        o: u32,
    ) {
        let what = format!("ecall #{index} ({})", op::name(o));
        if outcome == EcallOutcome::Trap {
            let post = self.check_snapshot(cache, cur);
            let d = crate::observe::diff(&pre, &post);
            if !d.is_empty() {
                let fields: Vec<String> = d.iter().map(ToString::to_string).collect();
                self.violations.push(format!("{what} trapped but changed state: {}", fields.join("; ")));
            }
        }
        if let (Some(crate::observe::ObsEntry::Instance(before)), Some(after)) =
            (pre.stack.get(cur), self.stack.instance(cur))
        {
            for p in &before.pinned {
                let old = before.slots.iter().find(|(s, _)| s == p).map(|(_, t)| *t);
                let new = after.root_cnode.get(SlotIdx(*p)).copied();
                if old != new {
                    self.violations.push(format!("{what} changed pinned slot {p}"));
                }
            }
        }
        let keys = cache.blob_keys();
        if pre.blob_keys.iter().any(|k| keys.binary_search(k).is_err()) {
            self.violations.push(format!("{what} removed a cache key"));
        }
        if keys.len() != pre.blob_keys.len() {
            self.check_global(cache, &what);
        } else if let Err(e) = self.stack.check_invariants() {
            self.violations.push(format!("{what}: stack: {e}"));
        }
    }

    /// Stack invariants, cnode bounds and cache integrity (KSPEC-1 §13.1).
    fn check_global(&mut self, cache: &CacheDirectory, what: &str) {
        if let Err(e) = self.stack.check_invariants() {
            self.violations.push(format!("{what}: stack: {e}"));
        }
        for (i, e) in self.stack.entries().iter().enumerate() {
            if let Entry::Instance(e) = e {
                let cn = &e.root_cnode;
                if cn.size_log > javm_cap::MAX_CNODE_SIZE_LOG || cn.slots.keys().any(|s| !cn.in_range(SlotIdx(*s))) {
                    self.violations.push(format!("{what}: the cnode of stack entry {i} is out of shape"));
                }
            }
        }
        if let Err(e) = cache.check_integrity() {
            self.violations.push(format!("{what}: cache: {e}"));
        }
    }

    /// The live state of frame `pos`.
    pub(crate) fn capture_live(&self, pos: usize, rule: PcRule, sampled: bool) -> LiveState {
        let b = self.stack.instance(pos).and_then(InstanceEntry::backend).expect("the frame is live");
        LiveState {
            regs: b.regs(),
            pc: u64::from(match rule {
                PcRule::Resume => b.resume_pc(),
                PcRule::AtExit => b.pc(),
            }),
            gas: b.gas() as u64,
            mem: if sampled { mem1_digest(b) } else { [0; 32] },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        cache: &CacheDirectory,
        point: Point,
        outcome: ObsOutcome,
        live: LiveState,
        ecall: Option<EcallInfo>,
        executing: Option<usize>,
        sampled: bool,
    ) {
        let assist = self.assist.snapshot();
        let kobs = Kobs::capture(&self.stack, cache, assist, point, outcome, live, executing, sampled);
        let leg = self.leg;
        if let Some(trace) = &mut self.trace {
            trace.records.push(TraceRecord { leg, ecall, kobs });
        }
    }

    /// Keeps what the end of a leg needs: the P2 live state (when tracing) and [`LegEnd`].
    fn end_leg(&mut self, base: usize, pos: usize, rule: PcRule) {
        if self.trace.is_some() {
            self.pending_live = Some(self.capture_live(pos, rule, true));
        }
        let b = self.stack.instance(pos).and_then(InstanceEntry::backend).expect("the frame is live");
        let pc = match rule {
            PcRule::Resume => b.resume_pc(),
            PcRule::AtExit => b.pc(),
        };
        let (regs, gas) = (b.regs(), b.gas());
        let cnode = self.stack.instance(base).map(|e| e.root_cnode.clone()).unwrap_or_default();
        self.last_leg = Some(LegEnd { regs, pc, gas, cnode });
    }

    /// After `SET_IMAGE`: the frame continues at its next pc in the new program with the same
    /// registers, memory and gas (KSPEC-1 §9.5.2, §15.4 item 11).
    fn reload(&mut self, pos: usize) {
        let e = self.stack.instance_mut(pos).expect("the executing frame is an instance entry");
        let program: Arc<Program> = e.program.clone();
        let b = e.backend_mut().expect("the executing frame is live");
        let (regs, gas, resume) = (b.regs(), b.gas(), b.resume_pc());
        let pages = b.memory_pages();
        b.load(program);
        for (address, writable, content) in pages {
            b.map(address, 4096, writable).expect("the page was mapped before");
            if content.iter().any(|&x| x != 0) {
                b.write_memory(address, &content).expect("the page is mapped");
            }
        }
        b.set_regs(regs);
        b.set_gas(gas);
        b.set_pc(resume);
    }

    /// Faulted (KSPEC-1 §10.6): slot 0 of the faulting frame is reflected and the whole
    /// invocation unwinds to `base`.
    fn fault(
        &mut self,
        base: usize,
        cur: usize,
        reason: FaultReason,
        used: impl Fn(i64) -> u64,
    ) -> Result<CallResult, VmError> {
        let gas = self.gas_of(cur);
        let s0 = self.stack.instance_mut(cur).and_then(|e| e.root_cnode.take(SlotIdx(0)).ok().flatten());
        self.end_leg(base, cur, PcRule::AtExit);
        self.stack.truncate(base);
        Ok(CallResult::Faulted { reason, reflected_slot0: s0, gas_used: used(gas) })
    }

    /// Paused (KSPEC-1 §10.4, §10.5): the Reference is already pushed.
    fn pause(
        &mut self,
        base: usize,
        cur: usize,
        marker: Hash,
        rule: PcRule,
        used: impl Fn(i64) -> u64,
    ) -> Result<CallResult, VmError> {
        let gas = self.gas_of(cur);
        self.paused = Some(Paused { base });
        self.end_leg(base, cur, rule);
        Ok(CallResult::Paused { marker_payload: Some(CapHashOrRef::Hash(marker)), gas_used: used(gas) })
    }

    /// Halt at base (KSPEC-1 §10.6): reflect slot 0, publish the post-HALT instance, pop.
    fn finish_halt(
        &mut self,
        cache: &mut CacheDirectory,
        base: usize,
        used: impl Fn(i64) -> u64,
    ) -> Result<CallResult, VmError> {
        let gas = self.gas_of(base);
        let s0 = self.stack.instance_mut(base).and_then(|e| e.root_cnode.take(SlotIdx(0)).ok().flatten());
        self.end_leg(base, base, PcRule::AtExit);
        let published = self.publish(cache, base);
        self.stack.truncate(base);
        let post = published.map_err(VmError::Publish)?;
        let return_value = self.last_leg.as_ref().map_or(0, |l| l.regs[7]);
        Ok(CallResult::Halt { return_value, post_instance_hash: post, reflected_slot0: s0, gas_used: used(gas) })
    }

    /// Publishes the post-HALT snapshot of frame `base` (slot 0 already taken out).
    fn publish(&self, cache: &mut CacheDirectory, base: usize) -> Result<Hash, KernelError> {
        let e = self.stack.instance(base).ok_or(KernelError::Invariant("no frame at base"))?;
        let b = e.backend().ok_or(KernelError::Invariant("the halting frame is not live"))?;
        let mut cn = e.root_cnode.clone();
        let mut settled = std::collections::BTreeMap::new();
        for t in cn.slots.values_mut() {
            if let CapHashOrRef::Ref(r) = *t {
                let h = match settled.get(&r) {
                    Some(h) => *h,
                    None => {
                        let h = cache.settle(&CapHashOrRef::Ref(r))?;
                        settled.insert(r, h);
                        h
                    }
                };
                *t = CapHashOrRef::Hash(h);
            }
        }
        let image = cache
            .get_blob(&e.image_hash)
            .and_then(Cap::as_image)
            .ok_or(KernelError::Invariant("the halting frame's image is not in the cache"))?;
        let mut overlays = Vec::new();
        let mut mem_size: u64 = 0;
        for m in &image.mappings {
            mem_size = mem_size.max(m.start.saturating_add(m.size));
            if m.size == 0 || m.start >= ADDRESS_END {
                continue;
            }
            if let Some(bytes) = crate::memory::kernel_read(b, &e.regions, m.start as u32, m.size) {
                overlays.push(RwOverlay { start: m.start as u32, bytes });
            }
        }
        let mem_size = u32::try_from(mem_size).map_err(|_| KernelError::Invariant("mapping end above 2^32"))?;
        let cn = Cap::CNode(cn);
        let ck = javm_cap::cap_hash(&cn).map_err(|e| KernelError::CacheRejected(e.into()))?;
        let inst = InstanceCap {
            image_hash_chain: e.image_hash_chain,
            image_hash: e.image_hash,
            root_cnode: CapHashOrRef::Hash(ck),
            rw_overlays: overlays,
            mem_size,
            regs: b.regs(),
            pc: u64::from(b.pc()),
            gas_remaining: b.gas().max(0) as u64,
        };
        let keys = cache.put_all(vec![cn, Cap::Instance(inst)])?;
        Ok(keys[1])
    }
}
