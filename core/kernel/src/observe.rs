//! Observation for differential testing (KSPEC-1 §12): the KOBS-1 record taken after every ecall
//! (P1) and at the end of every leg (P2), its canonical encoding and digest, a field-by-field
//! diff of two records, and a readable rendering.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use javm_cap::{blake2b256, hash::to_hex, CacheDirectory, CapHashOrRef, Hash};
use javm_engine::NUM_REGS;

use crate::assist::AssistSnapshot;
use crate::ecall::{op, EcallOutcome};
use crate::error::KernelError;
use crate::stack::{CallStack, Entry, EntryStatus};
use crate::vm::{CallResult, FaultReason};

/// When a record was taken (KSPEC-1 §12.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// After an ecall handler returned, before the driver acted.
    P1,
    /// At the end of a leg that returned `Ok`.
    P2,
}

/// The `outcome` part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObsOutcome {
    /// P1: what the handler returned.
    Ecall(EcallOutcome),
    /// P2: the leg's result.
    Leg(CallResult),
}

/// The live state of the executing (P1) or terminating/pausing (P2) frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveState {
    /// φ[0..=12].
    pub regs: [u64; NUM_REGS],
    /// pc per KSPEC-1 §6.6.
    pub pc: u64,
    /// Gas remaining.
    pub gas: u64,
    /// MEM-1 digest (32 zero bytes when not sampled).
    pub mem: Hash,
}

/// The stored execution state of a frame that is not executing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredState {
    /// φ[0..=12].
    pub regs: [u64; NUM_REGS],
    /// Where it continues.
    pub pc: u64,
    /// MEM-1 digest (32 zero bytes when not sampled).
    pub mem: Hash,
}

/// One observed Instance entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObsInstance {
    /// Running or Waiting.
    pub status: EntryStatus,
    /// The instance entered.
    pub instance_ref: CapHashOrRef,
    /// The lineage chain.
    pub chain: Hash,
    /// The bound image.
    pub image_hash: Hash,
    /// Pinned slots, ascending.
    pub pinned: Vec<u32>,
    /// The yield-catcher slot.
    pub yield_slot: Option<u32>,
    /// The working cnode's size_log.
    pub size_log: u8,
    /// Populated slots, ascending.
    pub slots: Vec<(u32, CapHashOrRef)>,
    /// Absent only for the executing frame at P1.
    pub state: Option<StoredState>,
}

/// One observed stack entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObsEntry {
    /// An Instance entry.
    Instance(Box<ObsInstance>),
    /// A Reference entry.
    Reference {
        /// Its status.
        status: EntryStatus,
        /// The catcher's position.
        target: u32,
    },
}

/// A KOBS-1 record (KSPEC-1 §12.2, §12.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kobs {
    /// P1 or P2.
    pub point: Point,
    /// The handler's outcome or the leg's result.
    pub outcome: ObsOutcome,
    /// The live state.
    pub live: LiveState,
    /// Every entry, bottom to top.
    pub stack: Vec<ObsEntry>,
    /// Blob keys, ascending.
    pub blob_keys: Vec<Hash>,
    /// Working-tier refs, ascending.
    pub working_refs: Vec<u64>,
    /// The kernel-assist state.
    pub assist: AssistSnapshot,
}

/// What a P1 record is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcallInfo {
    /// The ecall's position among all ecalls this VM has handled (0-based).
    pub index: u64,
    /// The op number.
    pub op: u32,
    /// The ecall instruction's pc.
    pub pc: u32,
    /// Why it trapped, if it did.
    pub error: Option<KernelError>,
}

/// One collected record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// Which leg (0-based, counting every invoke and resume of the VM).
    pub leg: usize,
    /// Set for P1 records.
    pub ecall: Option<EcallInfo>,
    /// The record.
    pub kobs: Kobs,
}

/// Records collected by a VM with tracing on (KSPEC-1 §12.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// Memory digests are taken at every `mem_every`-th P1 (0 or 1: every one), and always at
    /// P2 and at P1 records whose outcome is not Continue.
    pub mem_every: u32,
    /// The records in order.
    pub records: Vec<TraceRecord>,
}

impl Trace {
    /// An empty trace with the given memory-sampling period.
    pub fn new(mem_every: u32) -> Self {
        Trace { mem_every, records: Vec::new() }
    }

    /// Whether P1 number `index` with `outcome` gets memory digests.
    pub fn samples(&self, index: u64, outcome: EcallOutcome) -> bool {
        self.mem_every <= 1 || outcome != EcallOutcome::Continue || index.is_multiple_of(u64::from(self.mem_every))
    }
}

impl Kobs {
    /// Takes a record of `stack`, `cache` and `assist`. `executing` is the frame that ran the
    /// ecall at P1 (its state is the live part); `sampled` says whether memory digests are taken.
    #[allow(clippy::too_many_arguments)]
    pub fn capture(
        stack: &CallStack,
        cache: &CacheDirectory,
        assist: AssistSnapshot,
        point: Point,
        outcome: ObsOutcome,
        live: LiveState,
        executing: Option<usize>,
        sampled: bool,
    ) -> Kobs {
        let entries = stack
            .entries()
            .iter()
            .enumerate()
            .map(|(i, e)| match e {
                Entry::Instance(e) => ObsEntry::Instance(Box::new(ObsInstance {
                    status: e.status,
                    instance_ref: e.instance_ref,
                    chain: e.image_hash_chain,
                    image_hash: e.image_hash,
                    pinned: e.pinned.as_slice().iter().map(|s| s.0).collect(),
                    yield_slot: e.yield_marker_slot.map(|s| s.0),
                    size_log: e.root_cnode.size_log,
                    slots: e.root_cnode.slots.iter().map(|(k, v)| (*k, *v)).collect(),
                    state: (executing != Some(i)).then(|| StoredState {
                        regs: e.stored_regs(),
                        pc: u64::from(e.stored_pc()),
                        mem: if sampled { e.mem_digest() } else { [0; 32] },
                    }),
                })),
                Entry::Reference { target, status } => ObsEntry::Reference { status: *status, target: *target as u32 },
            })
            .collect();
        Kobs {
            point,
            outcome,
            live,
            stack: entries,
            blob_keys: cache.blob_keys(),
            working_refs: cache.working_refs().into_iter().map(|r| r.0).collect(),
            assist,
        }
    }

    /// The canonical KOBS-1 bytes (KSPEC-1 §12.3).
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(512);
        o.extend_from_slice(b"KOBS");
        o.push(1);
        o.push(match self.point {
            Point::P1 => 1,
            Point::P2 => 2,
        });
        match self.outcome {
            ObsOutcome::Ecall(e) => {
                let (kind, op) = match e {
                    EcallOutcome::Continue => (0, 0),
                    EcallOutcome::Halt => (1, 0),
                    EcallOutcome::Trap => (2, 0),
                    EcallOutcome::HostCall(op) => (3, op),
                };
                o.push(kind);
                o.extend_from_slice(&u32::to_le_bytes(op));
            }
            ObsOutcome::Leg(CallResult::Halt { return_value, post_instance_hash, reflected_slot0, gas_used }) => {
                o.push(0);
                o.extend_from_slice(&return_value.to_le_bytes());
                o.extend_from_slice(&post_instance_hash);
                put_opt_ref(&mut o, reflected_slot0);
                o.extend_from_slice(&gas_used.to_le_bytes());
            }
            ObsOutcome::Leg(CallResult::Faulted { reason, reflected_slot0, gas_used }) => {
                o.push(1);
                let (code, addr) = match reason {
                    FaultReason::Trap => (0, 0),
                    FaultReason::Panic => (1, 0),
                    FaultReason::OutOfGas => (2, 0),
                    FaultReason::PageFault(a) => (3, a),
                };
                o.push(code);
                o.extend_from_slice(&addr.to_le_bytes());
                put_opt_ref(&mut o, reflected_slot0);
                o.extend_from_slice(&gas_used.to_le_bytes());
            }
            ObsOutcome::Leg(CallResult::Paused { marker_payload, gas_used }) => {
                o.push(2);
                put_opt_ref(&mut o, marker_payload);
                o.extend_from_slice(&gas_used.to_le_bytes());
            }
        }
        for r in self.live.regs {
            o.extend_from_slice(&r.to_le_bytes());
        }
        o.extend_from_slice(&self.live.pc.to_le_bytes());
        o.extend_from_slice(&self.live.gas.to_le_bytes());
        o.extend_from_slice(&self.live.mem);
        o.extend_from_slice(&(self.stack.len() as u32).to_le_bytes());
        for e in &self.stack {
            match e {
                ObsEntry::Instance(i) => {
                    o.push(1);
                    o.push(status_byte(i.status));
                    put_ref(&mut o, i.instance_ref);
                    o.extend_from_slice(&i.chain);
                    o.extend_from_slice(&i.image_hash);
                    o.extend_from_slice(&(i.pinned.len() as u32).to_le_bytes());
                    for p in &i.pinned {
                        o.extend_from_slice(&p.to_le_bytes());
                    }
                    match i.yield_slot {
                        None => o.push(0),
                        Some(s) => {
                            o.push(1);
                            o.extend_from_slice(&s.to_le_bytes());
                        }
                    }
                    o.push(i.size_log);
                    o.extend_from_slice(&(i.slots.len() as u32).to_le_bytes());
                    for (s, t) in &i.slots {
                        o.extend_from_slice(&s.to_le_bytes());
                        put_ref(&mut o, *t);
                    }
                    match &i.state {
                        None => o.push(0),
                        Some(st) => {
                            o.push(1);
                            for r in st.regs {
                                o.extend_from_slice(&r.to_le_bytes());
                            }
                            o.extend_from_slice(&st.pc.to_le_bytes());
                            o.extend_from_slice(&st.mem);
                        }
                    }
                }
                ObsEntry::Reference { status, target } => {
                    o.push(2);
                    o.push(status_byte(*status));
                    o.extend_from_slice(&target.to_le_bytes());
                }
            }
        }
        o.extend_from_slice(&(self.blob_keys.len() as u32).to_le_bytes());
        for k in &self.blob_keys {
            o.extend_from_slice(k);
        }
        o.extend_from_slice(&(self.working_refs.len() as u32).to_le_bytes());
        for r in &self.working_refs {
            o.extend_from_slice(&r.to_le_bytes());
        }
        let a = &self.assist;
        o.extend_from_slice(&(a.quotas.len() as u32).to_le_bytes());
        for (id, v) in &a.quotas {
            o.extend_from_slice(&id.to_le_bytes());
            o.extend_from_slice(&v.to_le_bytes());
        }
        o.extend_from_slice(&(a.files.len() as u32).to_le_bytes());
        for (id, t) in &a.files {
            o.extend_from_slice(&id.to_le_bytes());
            put_ref(&mut o, *t);
        }
        o.extend_from_slice(&a.next_file_id.to_le_bytes());
        o.extend_from_slice(&(a.catchers.len() as u32).to_le_bytes());
        for (c, markers) in &a.catchers {
            o.extend_from_slice(c);
            o.extend_from_slice(&(markers.len() as u32).to_le_bytes());
            for m in markers {
                o.extend_from_slice(m);
            }
        }
        o
    }

    /// `Blake2b-256` of the KOBS-1 bytes.
    pub fn digest(&self) -> Hash {
        blake2b256(&self.encode())
    }

    /// A readable multi-line rendering; `name` may give a short name for a hash.
    pub fn render(&self, name: &dyn Fn(&Hash) -> Option<String>) -> String {
        let h = |x: &Hash| name(x).unwrap_or_else(|| to_hex(x));
        let r = |t: &CapHashOrRef| show_ref(t, name);
        let mut s = String::new();
        let _ = writeln!(s, "outcome: {}", show_outcome(&self.outcome, name));
        let _ = writeln!(
            s,
            "live: pc {} gas {} mem {}\n  regs {}",
            self.live.pc,
            self.live.gas,
            short(&self.live.mem),
            show_regs(&self.live.regs)
        );
        let _ = writeln!(s, "stack ({}):", self.stack.len());
        for (i, e) in self.stack.iter().enumerate() {
            match e {
                ObsEntry::Instance(e) => {
                    let _ = writeln!(s, "  [{i}] instance {:?} ref {}", e.status, r(&e.instance_ref));
                    let _ = writeln!(s, "      chain {}", h(&e.chain));
                    let _ = writeln!(s, "      image {}", h(&e.image_hash));
                    let _ = writeln!(
                        s,
                        "      pinned {:?} yield_slot {:?} size_log {}",
                        e.pinned, e.yield_slot, e.size_log
                    );
                    for (slot, t) in &e.slots {
                        let _ = writeln!(s, "      slot {slot}: {}", r(t));
                    }
                    match &e.state {
                        None => {
                            let _ = writeln!(s, "      state: live");
                        }
                        Some(st) => {
                            let _ = writeln!(
                                s,
                                "      state: pc {} mem {}\n        regs {}",
                                st.pc,
                                short(&st.mem),
                                show_regs(&st.regs)
                            );
                        }
                    }
                }
                ObsEntry::Reference { status, target } => {
                    let _ = writeln!(s, "  [{i}] reference {status:?} -> {target}");
                }
            }
        }
        let _ = writeln!(s, "cache ({} blobs, working {:?}):", self.blob_keys.len(), self.working_refs);
        for k in &self.blob_keys {
            let _ = writeln!(s, "  {}", h(k));
        }
        let a = &self.assist;
        let _ = writeln!(s, "assist: next_file_id {}", a.next_file_id);
        for (id, v) in &a.quotas {
            let _ = writeln!(s, "  quota {id} = {v}");
        }
        for (id, t) in &a.files {
            let _ = writeln!(s, "  file {id} = {}", r(t));
        }
        for (c, ms) in &a.catchers {
            let ms: Vec<String> = ms.iter().map(h).collect();
            let _ = writeln!(s, "  catcher {} = [{}]", h(c), ms.join(", "));
        }
        s
    }
}

fn short(h: &Hash) -> String {
    to_hex(h)[..16].to_string()
}

fn show_regs(regs: &[u64; NUM_REGS]) -> String {
    let v: Vec<String> = regs.iter().map(|r| format!("{r:#x}")).collect();
    v.join(" ")
}

fn show_ref(t: &CapHashOrRef, name: &dyn Fn(&Hash) -> Option<String>) -> String {
    match t {
        CapHashOrRef::Hash(h) => name(h).unwrap_or_else(|| to_hex(h)),
        CapHashOrRef::Ref(r) => format!("ref#{}", r.0),
    }
}

fn show_opt_ref(t: &Option<CapHashOrRef>, name: &dyn Fn(&Hash) -> Option<String>) -> String {
    t.as_ref().map_or_else(|| "none".to_string(), |t| show_ref(t, name))
}

/// A readable form of an outcome.
pub fn show_outcome(o: &ObsOutcome, name: &dyn Fn(&Hash) -> Option<String>) -> String {
    match o {
        ObsOutcome::Ecall(EcallOutcome::HostCall(id)) => format!("HostCall({id} {})", op::name(*id)),
        ObsOutcome::Ecall(e) => format!("{e:?}"),
        ObsOutcome::Leg(CallResult::Halt { return_value, post_instance_hash, reflected_slot0, gas_used }) => format!(
            "Halt return {return_value:#x} post {} reflected {} gas_used {gas_used}",
            name(post_instance_hash).unwrap_or_else(|| to_hex(post_instance_hash)),
            show_opt_ref(reflected_slot0, name)
        ),
        ObsOutcome::Leg(CallResult::Faulted { reason, reflected_slot0, gas_used }) => {
            format!("Faulted {reason:?} reflected {} gas_used {gas_used}", show_opt_ref(reflected_slot0, name))
        }
        ObsOutcome::Leg(CallResult::Paused { marker_payload, gas_used }) => {
            format!("Paused payload {} gas_used {gas_used}", show_opt_ref(marker_payload, name))
        }
    }
}

fn status_byte(s: EntryStatus) -> u8 {
    match s {
        EntryStatus::Running => 0,
        EntryStatus::Waiting => 1,
    }
}

fn put_ref(o: &mut Vec<u8>, t: CapHashOrRef) {
    match t {
        CapHashOrRef::Hash(h) => {
            o.push(0);
            o.extend_from_slice(&h);
        }
        CapHashOrRef::Ref(r) => {
            o.push(1);
            o.extend_from_slice(&r.0.to_le_bytes());
        }
    }
}

fn put_opt_ref(o: &mut Vec<u8>, t: Option<CapHashOrRef>) {
    match t {
        None => o.push(0),
        Some(t) => {
            o.push(1);
            put_ref(o, t);
        }
    }
}

/// One differing field of two records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDiff {
    /// A path such as `live.regs[7]`, `stack[1].slot[5]` or `cache.blob[<hash>]`.
    pub field: String,
    /// The value in the first record.
    pub a: String,
    /// The value in the second record.
    pub b: String,
}

impl std::fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} vs {}", self.field, self.a, self.b)
    }
}

struct Differ(Vec<FieldDiff>);

impl Differ {
    fn cmp<T: PartialEq + std::fmt::Debug>(&mut self, field: impl FnOnce() -> String, a: &T, b: &T) {
        if a != b {
            self.0.push(FieldDiff { field: field(), a: format!("{a:?}"), b: format!("{b:?}") });
        }
    }

    fn cmp_str(&mut self, field: impl FnOnce() -> String, a: String, b: String) {
        if a != b {
            self.0.push(FieldDiff { field: field(), a, b });
        }
    }

    fn regs(&mut self, prefix: &str, a: &[u64; NUM_REGS], b: &[u64; NUM_REGS]) {
        for i in 0..NUM_REGS {
            if a[i] != b[i] {
                self.0.push(FieldDiff {
                    field: format!("{prefix}.regs[{i}]"),
                    a: format!("{:#x}", a[i]),
                    b: format!("{:#x}", b[i]),
                });
            }
        }
    }

    fn hash(&mut self, field: impl FnOnce() -> String, a: &Hash, b: &Hash) {
        if a != b {
            self.0.push(FieldDiff { field: field(), a: to_hex(a), b: to_hex(b) });
        }
    }
}

fn no_names(_: &Hash) -> Option<String> {
    None
}

/// Every field in which two records differ, in record order (KSPEC-1 §12.4).
pub fn diff(a: &Kobs, b: &Kobs) -> Vec<FieldDiff> {
    let mut d = Differ(Vec::new());
    d.cmp(|| "point".into(), &a.point, &b.point);
    d.cmp_str(|| "outcome".into(), show_outcome(&a.outcome, &no_names), show_outcome(&b.outcome, &no_names));
    d.regs("live", &a.live.regs, &b.live.regs);
    d.cmp(|| "live.pc".into(), &a.live.pc, &b.live.pc);
    d.cmp(|| "live.gas".into(), &a.live.gas, &b.live.gas);
    d.hash(|| "live.mem".into(), &a.live.mem, &b.live.mem);
    d.cmp(|| "stack.len".into(), &a.stack.len(), &b.stack.len());
    for (i, (ea, eb)) in a.stack.iter().zip(&b.stack).enumerate() {
        match (ea, eb) {
            (ObsEntry::Instance(x), ObsEntry::Instance(y)) => {
                let p = format!("stack[{i}]");
                d.cmp(|| format!("{p}.status"), &x.status, &y.status);
                d.cmp_str(|| format!("{p}.instance_ref"), x.instance_ref.to_string(), y.instance_ref.to_string());
                d.hash(|| format!("{p}.chain"), &x.chain, &y.chain);
                d.hash(|| format!("{p}.image_hash"), &x.image_hash, &y.image_hash);
                d.cmp(|| format!("{p}.pinned"), &x.pinned, &y.pinned);
                d.cmp(|| format!("{p}.yield_slot"), &x.yield_slot, &y.yield_slot);
                d.cmp(|| format!("{p}.size_log"), &x.size_log, &y.size_log);
                let slots: BTreeSet<u32> = x.slots.iter().chain(&y.slots).map(|(s, _)| *s).collect();
                let get = |v: &[(u32, CapHashOrRef)], s: u32| {
                    v.iter().find(|(k, _)| *k == s).map_or_else(|| "empty".to_string(), |(_, t)| t.to_string())
                };
                for s in slots {
                    d.cmp_str(|| format!("{p}.slot[{s}]"), get(&x.slots, s), get(&y.slots, s));
                }
                match (&x.state, &y.state) {
                    (Some(sx), Some(sy)) => {
                        d.regs(&format!("{p}.state"), &sx.regs, &sy.regs);
                        d.cmp(|| format!("{p}.state.pc"), &sx.pc, &sy.pc);
                        d.hash(|| format!("{p}.state.mem"), &sx.mem, &sy.mem);
                    }
                    (sx, sy) => d.cmp(|| format!("{p}.has_state"), &sx.is_some(), &sy.is_some()),
                }
            }
            (ObsEntry::Reference { status: sa, target: ta }, ObsEntry::Reference { status: sb, target: tb }) => {
                d.cmp(|| format!("stack[{i}].status"), sa, sb);
                d.cmp(|| format!("stack[{i}].target"), ta, tb);
            }
            _ => d.cmp_str(|| format!("stack[{i}].kind"), kind_name(ea).into(), kind_name(eb).into()),
        }
    }
    let ka: BTreeSet<&Hash> = a.blob_keys.iter().collect();
    let kb: BTreeSet<&Hash> = b.blob_keys.iter().collect();
    for k in ka.symmetric_difference(&kb) {
        let (x, y) = if ka.contains(k) { ("present", "absent") } else { ("absent", "present") };
        d.cmp_str(|| format!("cache.blob[{}]", to_hex(k)), x.into(), y.into());
    }
    d.cmp(|| "cache.working_refs".into(), &a.working_refs, &b.working_refs);
    let (qa, qb) = (&a.assist.quotas, &b.assist.quotas);
    let ids: BTreeSet<u64> = qa.iter().chain(qb).map(|(k, _)| *k).collect();
    for id in ids {
        let get = |v: &[(u64, u64)]| v.iter().find(|(k, _)| *k == id).map(|(_, v)| *v);
        d.cmp(|| format!("assist.quota[{id}]"), &get(qa), &get(qb));
    }
    let (fa, fb) = (&a.assist.files, &b.assist.files);
    let ids: BTreeSet<u64> = fa.iter().chain(fb).map(|(k, _)| *k).collect();
    for id in ids {
        let get = |v: &[(u64, CapHashOrRef)]| v.iter().find(|(k, _)| *k == id).map(|(_, t)| t.to_string());
        d.cmp(|| format!("assist.file[{id}]"), &get(fa), &get(fb));
    }
    d.cmp(|| "assist.next_file_id".into(), &a.assist.next_file_id, &b.assist.next_file_id);
    let (ca, cb) = (&a.assist.catchers, &b.assist.catchers);
    let ids: BTreeSet<Hash> = ca.iter().chain(cb).map(|(k, _)| *k).collect();
    for c in ids {
        let get = |v: &[(Hash, Vec<Hash>)]| {
            v.iter().find(|(k, _)| *k == c).map(|(_, ms)| ms.iter().map(to_hex).collect::<Vec<_>>())
        };
        d.cmp(|| format!("assist.catcher[{}]", to_hex(&c)), &get(ca), &get(cb));
    }
    d.0
}

fn kind_name(e: &ObsEntry) -> &'static str {
    match e {
        ObsEntry::Instance(_) => "instance",
        ObsEntry::Reference { .. } => "reference",
    }
}
