//! Shared fixtures for the kernel tests.
#![allow(dead_code)]

use std::sync::Arc;

use javm_cap::{
    CNodeCap, CacheDirectory, Cap, CapHashOrRef, DataCap, Hash, ImageCap, InstanceCap, PinnedSlots, SlotIdx,
};
use javm_engine::asm::assemble;
use javm_engine::{Backend, Interpreter, Profile};
use javm_kernel::frame::decode_image;
use javm_kernel::memory::{FrameMemory, MemoryPlan, NoMemory};
use javm_kernel::{
    default_config, EcallKind, EcallOutcome, EntryStatus, FrameState, InMemoryAssist, InstanceEntry, Vm,
};

pub const AA: Hash = [0xAA; 32];

pub fn hx(s: &str) -> Hash {
    assert_eq!(s.len(), 64, "{s}");
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    h
}

pub fn hash(h: Hash) -> CapHashOrRef {
    CapHashOrRef::Hash(h)
}

pub fn interp() -> Box<dyn Backend> {
    Box::new(Interpreter::new())
}

/// Fixture F of KSPEC-1 §14: one frame pushed at position 0 (Running), instance_ref
/// `Hash(01*32)`, chain `01*32`, image `02*32`, a trivial program, a size_log-4 cnode holding
/// `{2: AA*32}`, no pins and no yield slot.
pub fn fixture() -> Vm {
    let mut vm = Vm::new(InMemoryAssist::new());
    let mut cnode = CNodeCap::empty(4).unwrap();
    cnode.set(SlotIdx(2), Some(hash(AA))).unwrap();
    let program = Arc::new(decode_image(&ImageCap::with_code(vec![0], vec![1]), &default_config()).unwrap());
    vm.stack
        .push_instance(InstanceEntry {
            instance_ref: hash([1; 32]),
            image_hash_chain: [1; 32],
            image_hash: [2; 32],
            program,
            root_cnode: cnode,
            pinned: PinnedSlots::none(),
            yield_marker_slot: None,
            status: EntryStatus::Waiting,
            regions: Default::default(),
            state: FrameState::Initial { regs: [0; 13], pc: 0, memory: MemoryPlan::default() },
        })
        .unwrap();
    vm
}

pub fn running(vm: &Vm) -> &InstanceEntry {
    vm.stack.running_instance().unwrap()
}

pub fn slot(vm: &Vm, s: u32) -> Option<CapHashOrRef> {
    running(vm).root_cnode.get(SlotIdx(s)).copied()
}

pub fn set_slot(vm: &mut Vm, s: u32, h: Hash) {
    vm.stack.running_instance_mut().unwrap().root_cnode.set(SlotIdx(s), Some(hash(h))).unwrap();
}

pub fn regs_with(pairs: &[(usize, u64)]) -> [u64; 13] {
    let mut r = [0; 13];
    for &(i, v) in pairs {
        r[i] = v;
    }
    r
}

/// One handler call with no memory mapped.
pub fn call(vm: &mut Vm, cache: Option<&mut CacheDirectory>, op: u32, regs: &mut [u64; 13]) -> EcallOutcome {
    vm.handle(EcallKind::Ecalli(op), regs, &mut NoMemory, cache)
}

/// A backend with page 0 mapped read/write, as the memory of a handler call.
pub struct PageZero {
    pub backend: Box<dyn Backend>,
    pub regions: javm_kernel::memory::Regions,
}

impl PageZero {
    pub fn new() -> Self {
        let plan = MemoryPlan::for_instance(4096, []).unwrap();
        let mut backend = interp();
        plan.apply(&mut *backend).unwrap();
        PageZero { backend, regions: plan.regions }
    }

    pub fn call(
        &mut self,
        vm: &mut Vm,
        cache: Option<&mut CacheDirectory>,
        op: u32,
        regs: &mut [u64; 13],
    ) -> EcallOutcome {
        let mut mem = FrameMemory { backend: &mut *self.backend, regions: &self.regions };
        vm.handle(EcallKind::Ecalli(op), regs, &mut mem, cache)
    }
}

/// `ImageCap` with code `[0x0A, 0x00]` (`ecalli 0`) and bitmask `[0x01]` ("IMG_HALT").
pub fn img_halt() -> ImageCap {
    ImageCap::with_code(vec![0x0A, 0x00], vec![0x01])
}

/// An image whose code is `text` assembled for profile J.
pub fn image_asm(text: &str) -> ImageCap {
    let blob = assemble(text, Profile::J).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let bitmask = blob.starts.packed(blob.code.len());
    ImageCap { jump_table: blob.jump_table.clone(), ..ImageCap::with_code(blob.code.clone(), bitmask) }
}

pub fn data(bytes: &[u8]) -> Cap {
    Cap::Data(DataCap::padded(bytes))
}

/// Publishes `image`, an empty cnode of `size_log` with `slots`, and an Instance of them with
/// `chain` and `mem_size`; returns the instance key.
pub fn publish_instance(
    cache: &mut CacheDirectory,
    image: ImageCap,
    size_log: u8,
    slots: &[(u32, Hash)],
    chain: Hash,
    mem_size: u32,
) -> Hash {
    let ih = cache.put(image.into()).unwrap();
    let mut cn = CNodeCap::empty(size_log).unwrap();
    for &(s, h) in slots {
        cn.set(SlotIdx(s), Some(hash(h))).unwrap();
    }
    let ch = cache.put(cn.into()).unwrap();
    let mut inst = InstanceCap::new(chain, ih, hash(ch));
    inst.mem_size = mem_size;
    cache.put(inst.into()).unwrap()
}
