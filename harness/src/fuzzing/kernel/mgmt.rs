//! `mgmt_ops`: sequences of MGMT ops against a cnode model written from KSPEC-1 §9.4.

use super::*;

// ---------------------------------------------------------------------------------------------
// mgmt_ops

/// The MGMT ops of KSPEC-1 §9.4 on one cnode, stated plainly: every slot an ecall can name is a
/// cell; a cell beyond `2^size_log` does not exist; a pinned cell cannot be written or emptied.
pub(super) struct CNodeModel {
    pub(super) size_log: u8,
    /// Slots 0..=255, the only ones an ecall operand can name (§5.1).
    pub(super) cells: Vec<Option<CapHashOrRef>>,
    /// Populated slots of 256 and above, which no ecall can reach.
    pub(super) unreachable: BTreeMap<u32, CapHashOrRef>,
    pub(super) pinned: BTreeSet<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ModelOutcome {
    Continue,
    Trap,
    Halt,
}

impl CNodeModel {
    pub(super) fn exists(&self, s: usize) -> bool {
        (s as u64) < (1u64 << self.size_log)
    }

    pub(super) fn writable(&self, s: usize) -> bool {
        self.exists(s) && !self.pinned.contains(&(s as u32))
    }

    pub(super) fn full(&self, s: usize) -> bool {
        self.exists(s) && self.cells[s].is_some()
    }

    /// Runs op `o` with φ7 = `r7`, φ8 = `r8` and says what the handler must return.
    pub(super) fn apply(&mut self, o: u32, r7: u64, r8: u64) -> ModelOutcome {
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

    pub(super) fn slots(&self) -> BTreeMap<u32, CapHashOrRef> {
        let mut m = self.unreachable.clone();
        m.extend(self.cells.iter().enumerate().filter_map(|(s, c)| c.map(|t| (s as u32, t))));
        m
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// No frame: every MGMT op traps.
    Empty,
    /// One frame.
    Single,
    /// Another frame below the running one.
    OnTop,
    /// `[running, other, Reference(0)]`: the running instance is the Reference's target.
    UnderReference,
}

pub(super) fn mgmt_target(u: &mut Unstructured) -> Result<CapHashOrRef> {
    Ok(match u.int_in_range(0..=7u8)? {
        6 => CapHashOrRef::Ref(CapRef(1)),
        7 => CapHashOrRef::Ref(CapRef(2)),
        k => CapHashOrRef::Hash([0x11 * (k + 1); 32]),
    })
}

pub(super) fn mgmt_frame(cnode: CNodeCap, pinned: &BTreeSet<u32>, chain: u8) -> InstanceEntry {
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

pub(super) fn pin_set(u: &mut Unstructured) -> Result<BTreeSet<u32>> {
    (0..u.int_in_range(0..=4u8)?).map(|_| slot_number(u)).collect()
}

pub(super) fn mgmt_ops_run(u: &mut Unstructured) -> Result<()> {
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
