//! The ecall ABI (KSPEC-1 §9): decoding the op number, the MGMT ops (1..=5) and the kernel host
//! ops (16..=26), with the cache lent (canonical) or without it (§9.6).
//!
//! Every op validates everything first and then commits (§11): an op that returns an error
//! has changed nothing (frames, memory, registers, cache, kernel-assist), and the caller reports
//! it as `Exit(Trap)`. The handler never reads or writes pc or gas (§6.6).

use javm_cap::{
    hash_pair, CNodeCap, CacheDirectory, Cap, CapHashOrRef, DataCap, Hash, InstanceCap, RwOverlay, SlotIdx, TypeCap,
    ADDRESS_SPACE,
};
use javm_engine::NUM_REGS;

use crate::assist::KernelAssist;
use crate::error::KernelError;
use crate::frame::{build_entry, InstanceEntry};
use crate::memory::KernelMemory;
use crate::stack::Entry;
use crate::vm::Vm;

/// Op numbers (KSPEC-1 §9.1, §9.3).
pub mod op {
    /// REPLY/HALT.
    pub const REPLY: u32 = 0;
    /// MGMT_COPY.
    pub const COPY: u32 = 1;
    /// MGMT_MOVE.
    pub const MOVE: u32 = 2;
    /// MGMT_DROP.
    pub const DROP: u32 = 3;
    /// MGMT_CNODE_SWAP.
    pub const CNODE_SWAP: u32 = 4;
    /// MGMT_CNODE_MINT.
    pub const CNODE_MINT: u32 = 5;
    /// The last op of the MGMT range; 6..=15 trap.
    pub const MGMT_MAX: u32 = 15;
    /// HOST_YIELD.
    pub const YIELD: u32 = 16;
    /// SET_IMAGE.
    pub const SET_IMAGE: u32 = 17;
    /// DERIVE_SPAWN.
    pub const DERIVE_SPAWN: u32 = 18;
    /// HOST_MAKE_IMAGE (a stub that traps).
    pub const MAKE_IMAGE: u32 = 19;
    /// HOST_SAME_TYPE.
    pub const SAME_TYPE: u32 = 20;
    /// HOST_TYPE_OF.
    pub const TYPE_OF: u32 = 21;
    /// HOST_READ_DATA_CAP.
    pub const READ_DATA_CAP: u32 = 22;
    /// HOST_MINT_DATA_CAP.
    pub const MINT_DATA_CAP: u32 = 23;
    /// HOST_OPEN.
    pub const OPEN: u32 = 24;
    /// HOST_SAVE.
    pub const SAVE: u32 = 25;
    /// HOST_CALL.
    pub const CALL: u32 = 26;
    /// The last kernel host op number; 27..=63 continue with no effect.
    pub const HOST_MAX: u32 = 63;

    /// The op's name, for reports.
    pub fn name(op: u32) -> &'static str {
        match op {
            REPLY => "REPLY",
            COPY => "MGMT_COPY",
            MOVE => "MGMT_MOVE",
            DROP => "MGMT_DROP",
            CNODE_SWAP => "MGMT_CNODE_SWAP",
            CNODE_MINT => "MGMT_CNODE_MINT",
            6..=15 => "MGMT (unassigned)",
            YIELD => "HOST_YIELD",
            SET_IMAGE => "SET_IMAGE",
            DERIVE_SPAWN => "DERIVE_SPAWN",
            MAKE_IMAGE => "HOST_MAKE_IMAGE",
            SAME_TYPE => "HOST_SAME_TYPE",
            TYPE_OF => "HOST_TYPE_OF",
            READ_DATA_CAP => "HOST_READ_DATA_CAP",
            MINT_DATA_CAP => "HOST_MINT_DATA_CAP",
            OPEN => "HOST_OPEN",
            SAVE => "HOST_SAVE",
            CALL => "HOST_CALL",
            27..=63 => "host (unassigned)",
            _ => "chain-user (reserved)",
        }
    }
}

/// Which instruction made the ecall (KSPEC-1 §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcallKind {
    /// `ecall` (opcode 3): the op is the low 32 bits of φ[11].
    Ecall,
    /// `ecalli imm` (opcode 10).
    Ecalli(u32),
}

impl EcallKind {
    /// The op number this ecall names (KSPEC-1 §9.1).
    pub fn op(self, regs: &[u64; NUM_REGS]) -> u32 {
        match self {
            EcallKind::Ecall => regs[11] as u32,
            EcallKind::Ecalli(imm) => imm,
        }
    }
}

/// What the handler tells the driver (KSPEC-1 §6.6, §9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcallOutcome {
    /// Continue at the next instruction.
    Continue,
    /// REPLY/HALT: the frame ends (pc stays on the ecall).
    Halt,
    /// The op failed; nothing changed (pc stays on the ecall).
    Trap,
    /// HOST_YIELD (16), SET_IMAGE (17) or HOST_CALL (26): the driver acts, then continues after
    /// the ecall.
    HostCall(u32),
}

fn slot_operand(v: u64) -> SlotIdx {
    SlotIdx::from_reg(v)
}

/// The hash in `slot`: a Ref is `SlotKindMismatch`, an empty or out-of-range slot `SlotEmpty`.
fn slot_hash(e: &InstanceEntry, slot: SlotIdx) -> Result<Hash, KernelError> {
    match e.root_cnode.get(slot) {
        Some(CapHashOrRef::Hash(h)) => Ok(*h),
        Some(CapHashOrRef::Ref(_)) => Err(KernelError::SlotKindMismatch(slot.0)),
        None => Err(KernelError::SlotEmpty(slot.0)),
    }
}

/// The target in `slot`, in either form; empty or out of range is `SlotEmpty`.
fn slot_target(e: &InstanceEntry, slot: SlotIdx) -> Result<CapHashOrRef, KernelError> {
    e.root_cnode.get(slot).copied().ok_or(KernelError::SlotEmpty(slot.0))
}

/// Whether `slot` could take a write: not pinned and in range.
fn check_dst(e: &InstanceEntry, slot: SlotIdx) -> Result<(), KernelError> {
    Ok(e.root_cnode.check_writable(&e.pinned, slot)?)
}

impl<K: KernelAssist> Vm<K> {
    /// The kernel's one handler (KSPEC-1 §6.6): runs the ecall and says what the driver does
    /// next. A failed op is `Trap`; its error kind is kept in [`Vm::last_error`].
    pub fn handle(
        &mut self,
        kind: EcallKind,
        regs: &mut [u64; NUM_REGS],
        mem: &mut dyn KernelMemory,
        cache: Option<&mut CacheDirectory>,
    ) -> EcallOutcome {
        match self.dispatch(kind, regs, mem, cache) {
            Ok(o) => {
                self.last_error = None;
                o
            }
            Err(e) => {
                self.last_error = Some(e);
                EcallOutcome::Trap
            }
        }
    }

    /// [`Vm::handle`] with the error kind of a failed op (KSPEC-1 §11).
    pub fn dispatch(
        &mut self,
        kind: EcallKind,
        regs: &mut [u64; NUM_REGS],
        mem: &mut dyn KernelMemory,
        cache: Option<&mut CacheDirectory>,
    ) -> Result<EcallOutcome, KernelError> {
        use EcallOutcome::{Continue, HostCall};
        let o = kind.op(regs);
        match o {
            op::REPLY => Ok(EcallOutcome::Halt),
            op::COPY..=op::MGMT_MAX => self.mgmt(o, regs, cache).map(|()| Continue),
            op::YIELD => self.host_yield(regs).map(|()| HostCall(op::YIELD)),
            op::SET_IMAGE => match cache {
                Some(c) => self.set_image(regs, c).map(|()| HostCall(op::SET_IMAGE)),
                None => self.set_image_uncached(regs).map(|()| Continue),
            },
            op::DERIVE_SPAWN => match cache {
                Some(c) => self.derive_spawn(regs, c).map(|()| Continue),
                None => self.derive_spawn_uncached(regs).map(|()| Continue),
            },
            op::MAKE_IMAGE => Err(KernelError::NotImplemented),
            op::SAME_TYPE => self.same_type(regs).map(|()| Continue),
            op::TYPE_OF..=op::CALL => {
                let cache = cache.ok_or(KernelError::NotImplemented)?;
                match o {
                    op::TYPE_OF => self.type_of(regs, cache).map(|()| Continue),
                    op::READ_DATA_CAP => self.read_data_cap(regs, mem, cache).map(|()| Continue),
                    op::MINT_DATA_CAP => self.mint_data_cap(regs, mem, cache).map(|()| Continue),
                    op::OPEN => self.open(regs, cache).map(|()| Continue),
                    op::SAVE => self.save(regs, cache).map(|()| Continue),
                    _ => self.call(regs, cache).map(|()| HostCall(op::CALL)),
                }
            }
            _ => Ok(Continue),
        }
    }

    fn running(&self) -> Result<&InstanceEntry, KernelError> {
        self.stack.running_instance().ok_or(KernelError::CallStackEmpty)
    }

    fn running_mut(&mut self) -> Result<&mut InstanceEntry, KernelError> {
        self.stack.running_instance_mut().ok_or(KernelError::CallStackEmpty)
    }

    /// MGMT ops 1..=15 (KSPEC-1 §9.4).
    fn mgmt(&mut self, o: u32, regs: &[u64; NUM_REGS], cache: Option<&mut CacheDirectory>) -> Result<(), KernelError> {
        let a = slot_operand(regs[7]);
        let b = slot_operand(regs[8]);
        let e = self.running_mut()?;
        let InstanceEntry { root_cnode, pinned, .. } = e;
        match o {
            op::COPY => Ok(root_cnode.copy_slot(pinned, a, b)?),
            op::MOVE => Ok(root_cnode.move_slot(pinned, a, b)?),
            op::DROP => Ok(root_cnode.drop_slot(pinned, a)?),
            op::CNODE_SWAP => Ok(root_cnode.swap_slots(pinned, a, b)?),
            op::CNODE_MINT => {
                let size_log = regs[8] & 0xFF;
                let cnode = CNodeCap::empty(size_log as u8).map_err(|_| KernelError::InvalidCNodeSize(size_log))?;
                root_cnode.check_writable(pinned, a)?;
                let cap = Cap::CNode(cnode);
                let h = match cache {
                    Some(c) => c.put(cap)?,
                    None => javm_cap::cap_hash(&cap).map_err(|e| KernelError::CacheRejected(e.into()))?,
                };
                root_cnode.set(a, Some(CapHashOrRef::Hash(h)))?;
                Ok(())
            }
            _ => Err(KernelError::UnknownMgmtOp(o)),
        }
    }

    /// HOST_YIELD (KSPEC-1 §9.5.1).
    fn host_yield(&mut self, regs: &[u64; NUM_REGS]) -> Result<(), KernelError> {
        let marker = slot_hash(self.running()?, slot_operand(regs[7]))?;
        let top = self.stack.len() - 1;
        let catcher = self.find_catcher(top, &marker).ok_or(KernelError::UnhandledMarker)?;
        self.stack.push_reference(catcher)?;
        self.yielded_marker = Some(marker);
        Ok(())
    }

    /// The nearest Instance entry below `above` whose catcher holds `marker` (KSPEC-1 §9.5.1,
    /// §10.5): Reference entries, frames without a yield slot and frames whose catcher slot is
    /// not a hash are skipped.
    pub(crate) fn find_catcher(&self, above: usize, marker: &Hash) -> Option<usize> {
        (0..above).rev().find(|&pos| {
            let Some(Entry::Instance(e)) = self.stack.get(pos) else { return false };
            let Some(slot) = e.yield_marker_slot else { return false };
            let Some(CapHashOrRef::Hash(c)) = e.root_cnode.get(slot) else { return false };
            self.assist.yield_catcher_markers(c).contains(marker)
        })
    }

    /// SET_IMAGE with the cache lent (KSPEC-1 §9.5.2).
    fn set_image(&mut self, regs: &[u64; NUM_REGS], cache: &CacheDirectory) -> Result<(), KernelError> {
        let ih = slot_hash(self.running()?, slot_operand(regs[7]))?;
        let image = cache.get_blob(&ih).and_then(Cap::as_image).ok_or(KernelError::ImageNotFound)?;
        let program = self.programs.get(&ih, image)?;
        let pinned = javm_cap::PinnedSlots::of_image(image);
        let yield_slot = image.yield_marker_slot;
        let e = self.running_mut()?;
        e.image_hash_chain = hash_pair(&e.image_hash_chain, &ih);
        e.image_hash = ih;
        e.program = program;
        e.pinned = pinned;
        e.yield_marker_slot = yield_slot;
        Ok(())
    }

    /// SET_IMAGE without a cache (KSPEC-1 §9.6): only the chain and the image hash change.
    fn set_image_uncached(&mut self, regs: &[u64; NUM_REGS]) -> Result<(), KernelError> {
        let ih = slot_hash(self.running()?, slot_operand(regs[7]))?;
        let e = self.running_mut()?;
        e.image_hash_chain = hash_pair(&e.image_hash_chain, &ih);
        e.image_hash = ih;
        Ok(())
    }

    /// DERIVE_SPAWN with the cache lent (KSPEC-1 §9.5.3).
    fn derive_spawn(&mut self, regs: &[u64; NUM_REGS], cache: &mut CacheDirectory) -> Result<(), KernelError> {
        let img_slot = slot_operand(regs[7]);
        let cn_slot = slot_operand(regs[8]);
        let dst = slot_operand(regs[9]);
        let running = self.running()?;
        let ih = slot_hash(running, img_slot)?;
        let ch = slot_hash(running, cn_slot)?;
        let image = cache.get_blob(&ih).and_then(Cap::as_image).ok_or(KernelError::ImageNotFound)?;
        let prepared = cache
            .get_blob(&ch)
            .and_then(Cap::as_cnode)
            .ok_or(KernelError::Invariant("the prepared cnode is not a cnode in the cache"))?;
        check_dst(running, dst)?;
        running.pinned.check(cn_slot)?;

        let mut child_cn = prepared.clone();
        for e in &image.pinned {
            child_cn.set(e.slot, Some(CapHashOrRef::Hash(e.cap_hash)))?;
        }
        for e in &image.initial {
            if child_cn.get(e.slot).is_none() {
                child_cn.set(e.slot, Some(CapHashOrRef::Hash(e.cap_hash)))?;
            }
        }
        let child_cn_cap = Cap::CNode(child_cn);
        let cn_hash = javm_cap::cap_hash(&child_cn_cap).map_err(|e| KernelError::CacheRejected(e.into()))?;
        let Cap::CNode(child_cn) = &child_cn_cap else { unreachable!("built as a cnode") };

        let mut mem_size: u64 = 0;
        let mut overlays = Vec::new();
        for m in &image.mappings {
            mem_size = mem_size.max(m.start.saturating_add(m.size));
            let Some(first) = m.source_path.first() else { continue };
            let Some(t) = child_cn.get(*first) else { continue };
            let Some(data) = cache.get(t).and_then(Cap::as_data) else { continue };
            if data.is_empty() {
                continue;
            }
            let start = u32::try_from(m.start).map_err(|_| KernelError::Invariant("mapping start above 2^32"))?;
            overlays.push(RwOverlay { start, bytes: data.content.clone() });
        }
        if mem_size >= ADDRESS_SPACE {
            return Err(KernelError::Invariant("mapping end at or above 2^32"));
        }
        let inst = InstanceCap {
            image_hash_chain: hash_pair(&running.image_hash_chain, &ih),
            image_hash: ih,
            root_cnode: CapHashOrRef::Hash(cn_hash),
            rw_overlays: overlays,
            mem_size: mem_size as u32,
            regs: [0; NUM_REGS],
            pc: 0,
            gas_remaining: 0,
        };

        let keys = cache.put_all(vec![child_cn_cap, Cap::Instance(inst)])?;
        let ik = keys[1];
        let e = self.running_mut()?;
        e.root_cnode.take(cn_slot)?;
        e.root_cnode.set(dst, Some(CapHashOrRef::Hash(ik)))?;
        Ok(())
    }

    /// DERIVE_SPAWN without a cache (KSPEC-1 §9.6): image = φ7, dst = φ8, and dst gets the bare
    /// chain hash.
    fn derive_spawn_uncached(&mut self, regs: &[u64; NUM_REGS]) -> Result<(), KernelError> {
        let dst = slot_operand(regs[8]);
        let running = self.running()?;
        let ih = slot_hash(running, slot_operand(regs[7]))?;
        check_dst(running, dst)?;
        let chain = hash_pair(&running.image_hash_chain, &ih);
        self.running_mut()?.root_cnode.set(dst, Some(CapHashOrRef::Hash(chain)))?;
        Ok(())
    }

    /// HOST_SAME_TYPE (KSPEC-1 §9.5.5).
    fn same_type(&mut self, regs: &mut [u64; NUM_REGS]) -> Result<(), KernelError> {
        let running = self.running()?;
        let a = slot_hash(running, slot_operand(regs[7]))?;
        let b = slot_hash(running, slot_operand(regs[8]))?;
        regs[7] = u64::from(a == b);
        Ok(())
    }

    /// HOST_TYPE_OF (KSPEC-1 §9.5.6).
    fn type_of(&mut self, regs: &[u64; NUM_REGS], cache: &mut CacheDirectory) -> Result<(), KernelError> {
        let dst = slot_operand(regs[8]);
        let running = self.running()?;
        let t = slot_target(running, slot_operand(regs[7]))?;
        let chain = cache.get(&t).and_then(Cap::as_instance).ok_or(KernelError::InstanceNotFound)?.image_hash_chain;
        check_dst(running, dst)?;
        let h = cache.put(Cap::Type(TypeCap { image_hash_chain: chain }))?;
        self.running_mut()?.root_cnode.set(dst, Some(CapHashOrRef::Hash(h)))?;
        Ok(())
    }

    /// HOST_READ_DATA_CAP (KSPEC-1 §9.5.7).
    fn read_data_cap(
        &mut self,
        regs: &mut [u64; NUM_REGS],
        mem: &mut dyn KernelMemory,
        cache: &CacheDirectory,
    ) -> Result<(), KernelError> {
        let addr = regs[8] as u32;
        let len = regs[9];
        let t = slot_target(self.running()?, slot_operand(regs[7]))?;
        let data = cache.get(&t).and_then(Cap::as_data).ok_or(KernelError::WrongKind)?;
        let n = len.min(data.len());
        if !mem.write(addr, &data.content[..n as usize]) {
            return Err(KernelError::MemoryFault);
        }
        regs[7] = n;
        Ok(())
    }

    /// HOST_MINT_DATA_CAP (KSPEC-1 §9.5.8).
    fn mint_data_cap(
        &mut self,
        regs: &[u64; NUM_REGS],
        mem: &mut dyn KernelMemory,
        cache: &mut CacheDirectory,
    ) -> Result<(), KernelError> {
        let addr = regs[7] as u32;
        let len = regs[8];
        let quota_id = regs[9];
        let dst = slot_operand(regs[10]);
        check_dst(self.running()?, dst)?;
        let mut content = mem.read(addr, len).ok_or(KernelError::MemoryFault)?;
        let padded = DataCap::padded_len(len).ok_or(KernelError::MemoryFault)?;
        let q = self.assist.storage_quota_get(quota_id);
        if q < padded {
            return Err(KernelError::QuotaExhausted);
        }
        content.resize(padded as usize, 0);
        let cap = Cap::Data(DataCap { content });
        let h = cache.check_put(&cap)?;
        self.assist.storage_quota_set(quota_id, q - padded);
        cache.put(cap)?;
        self.running_mut()?.root_cnode.set(dst, Some(CapHashOrRef::Hash(h)))?;
        Ok(())
    }

    /// HOST_OPEN (KSPEC-1 §9.5.9).
    fn open(&mut self, regs: &[u64; NUM_REGS], cache: &mut CacheDirectory) -> Result<(), KernelError> {
        let file_id = regs[7];
        let dst = slot_operand(regs[8]);
        let t = self.assist.host_open(file_id).ok_or(KernelError::UnknownFile)?;
        let data = cache.get(&t).and_then(Cap::as_data).ok_or(KernelError::WrongKind)?;
        check_dst(self.running()?, dst)?;
        if matches!(t, CapHashOrRef::Ref(_)) {
            cache.check_put(&Cap::Data(data.clone()))?;
        }
        let h = cache.settle(&t)?;
        self.running_mut()?.root_cnode.set(dst, Some(CapHashOrRef::Hash(h)))?;
        Ok(())
    }

    /// HOST_SAVE (KSPEC-1 §9.5.10).
    fn save(&mut self, regs: &mut [u64; NUM_REGS], cache: &CacheDirectory) -> Result<(), KernelError> {
        let quota_id = regs[8];
        let t = slot_target(self.running()?, slot_operand(regs[7]))?;
        let size = cache.get(&t).and_then(Cap::as_data).ok_or(KernelError::WrongKind)?.len();
        let fid = self.assist.host_save(t, quota_id, size).ok_or(KernelError::SaveRejected)?;
        regs[7] = fid;
        Ok(())
    }

    /// HOST_CALL (KSPEC-1 §9.5.11): builds the child and pushes it; the driver switches to it.
    fn call(&mut self, regs: &[u64; NUM_REGS], cache: &CacheDirectory) -> Result<(), KernelError> {
        let t = slot_target(self.running()?, slot_operand(regs[7]))?;
        let endpoint = regs[8] & 0xFF;
        if cache.get(&t).and_then(Cap::as_instance).is_none() {
            return Err(KernelError::InstanceNotFound);
        }
        let mut child = build_entry(cache, &mut self.programs, t, endpoint, [0; 4])?;
        if !self.stack.has_room() {
            return Err(KernelError::StackFull);
        }
        let s0 = self.running_mut()?.root_cnode.take(SlotIdx(0))?;
        if let Some(s0) = s0 {
            child.root_cnode.set(SlotIdx(0), Some(s0))?;
        }
        self.stack.push_instance(child)?;
        Ok(())
    }
}
