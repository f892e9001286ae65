//! Per-op properties of KSPEC-1 §13.2: every failing op traps and changes nothing, pins are
//! respected, and the edge cases of §13.4.

mod common;

use common::*;
use javm_cap::{
    CNodeCap, CacheDirectory, Cap, CapHashOrRef, CapRef, ImageCap, ImageSlotEntry, MemoryMapping, PinnedSlots, SlotIdx,
};
use javm_kernel::ecall::op;
use javm_kernel::{EcallKind, EcallOutcome, InMemoryAssist, KernelAssist, KernelError, Vm};

/// Everything an ecall could change, as text.
fn state(vm: &Vm, cache: &CacheDirectory, regs: &[u64; 13], mem: &PageZero) -> String {
    let frames: Vec<String> = vm
        .stack
        .entries()
        .iter()
        .map(|e| match e.as_instance() {
            Some(i) => format!(
                "{:?} {:?} {:?} {:?} {:?} {:?}",
                i.status, i.image_hash_chain, i.image_hash, i.root_cnode, i.pinned, i.yield_marker_slot
            ),
            None => format!("{e:?}"),
        })
        .collect();
    format!(
        "{frames:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        cache.blob_keys(),
        vm.assist.snapshot(),
        regs,
        mem.backend.memory_pages()
    )
}

/// Runs `o` and asserts it traps with `err` and changes nothing.
fn traps(vm: &mut Vm, cache: &mut CacheDirectory, o: u32, regs: &[(usize, u64)], err: KernelError) {
    let mut mem = PageZero::new();
    let mut r = regs_with(regs);
    let before = state(vm, cache, &r, &mem);
    assert_eq!(mem.call(vm, Some(cache), o, &mut r), EcallOutcome::Trap, "op {o} {regs:?}");
    assert_eq!(vm.last_error, Some(err), "op {o} {regs:?}");
    assert_eq!(state(vm, cache, &r, &mem), before, "a failed op {o} changed something");
}

fn ok(vm: &mut Vm, cache: &mut CacheDirectory, o: u32, regs: &[(usize, u64)]) -> [u64; 13] {
    let mut mem = PageZero::new();
    let mut r = regs_with(regs);
    assert_eq!(mem.call(vm, Some(cache), o, &mut r), EcallOutcome::Continue, "op {o}: {:?}", vm.last_error);
    r
}

fn pin(vm: &mut Vm, slots: &[u32]) {
    vm.stack.running_instance_mut().unwrap().pinned = PinnedSlots::new(slots.iter().map(|&s| SlotIdx(s)));
}

#[test]
fn mgmt_pins_and_ranges() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    pin(&mut vm, &[2, 7]);
    traps(&mut vm, &mut cache, op::MOVE, &[(7, 2), (8, 9)], KernelError::SlotPinned(2));
    traps(&mut vm, &mut cache, op::DROP, &[(7, 2)], KernelError::SlotPinned(2));
    traps(&mut vm, &mut cache, op::CNODE_SWAP, &[(7, 3), (8, 7)], KernelError::SlotPinned(7));
    traps(&mut vm, &mut cache, op::COPY, &[(7, 2), (8, 7)], KernelError::SlotPinned(7));
    traps(&mut vm, &mut cache, op::CNODE_MINT, &[(7, 7), (8, 0)], KernelError::SlotPinned(7));
    ok(&mut vm, &mut cache, op::COPY, &[(7, 2), (8, 8)]);
    assert_eq!(slot(&vm, 8), Some(hash(AA)), "copying out of a pinned slot is allowed");
    traps(&mut vm, &mut cache, op::COPY, &[(7, 3), (8, 9)], KernelError::SlotEmpty(3));
    traps(&mut vm, &mut cache, op::MOVE, &[(7, 3), (8, 9)], KernelError::SlotEmpty(3));
    traps(&mut vm, &mut cache, op::COPY, &[(7, 8), (8, 16)], KernelError::SlotOutOfRange(16));
    traps(&mut vm, &mut cache, op::MOVE, &[(7, 8), (8, 255)], KernelError::SlotOutOfRange(255));
    traps(&mut vm, &mut cache, op::DROP, &[(7, 16)], KernelError::SlotOutOfRange(16));
    traps(&mut vm, &mut cache, op::CNODE_SWAP, &[(7, 8), (8, 16)], KernelError::SlotOutOfRange(16));
    traps(&mut vm, &mut cache, op::CNODE_MINT, &[(7, 16), (8, 0)], KernelError::SlotOutOfRange(16));
    for n in [6, 9, 15] {
        traps(&mut vm, &mut cache, n, &[], KernelError::UnknownMgmtOp(n));
    }
}

#[test]
fn mgmt_edge_cases() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    ok(&mut vm, &mut cache, op::COPY, &[(7, 2), (8, 2)]);
    ok(&mut vm, &mut cache, op::MOVE, &[(7, 2), (8, 2)]);
    ok(&mut vm, &mut cache, op::CNODE_SWAP, &[(7, 2), (8, 2)]);
    ok(&mut vm, &mut cache, op::CNODE_SWAP, &[(7, 10), (8, 11)]);
    ok(&mut vm, &mut cache, op::DROP, &[(7, 12)]);
    assert_eq!(running(&vm).root_cnode.populated(), 1);
    assert_eq!(slot(&vm, 2), Some(hash(AA)));
    ok(&mut vm, &mut cache, op::COPY, &[(7, 0xFFFF_FFFF_FFFF_FF02), (8, 0x105)]);
    assert_eq!(slot(&vm, 5), Some(hash(AA)), "only the low byte names the slot");
    for (size_log, good) in [(0u64, true), (16, true), (17, false), (255, false), (0x100, true)] {
        let mut r = regs_with(&[(7, 1), (8, size_log)]);
        let mut mem = PageZero::new();
        let out = mem.call(&mut vm, Some(&mut cache), op::CNODE_MINT, &mut r);
        assert_eq!(out == EcallOutcome::Continue, good, "size_log {size_log}");
        if good {
            let want = javm_cap::cap_hash(&Cap::CNode(CNodeCap::empty((size_log & 0xFF) as u8).unwrap())).unwrap();
            assert_eq!(slot(&vm, 1), Some(hash(want)));
            assert!(cache.contains(&want));
        }
    }
}

#[test]
fn plain_ecall_uses_the_low_32_bits_of_phi11() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(11, 0x1_0000_0002), (7, 2), (8, 9)]);
    let out = vm.handle(EcallKind::Ecall, &mut regs, &mut javm_kernel::memory::NoMemory, None);
    assert_eq!(out, EcallOutcome::Continue);
    assert_eq!(slot(&vm, 9), Some(hash(AA)), "op 2 (MOVE)");
    let mut regs = regs_with(&[(11, 0)]);
    let out = vm.handle(EcallKind::Ecall, &mut regs, &mut javm_kernel::memory::NoMemory, None);
    assert_eq!(out, EcallOutcome::Halt);
    for o in [27u32, 63, 64, 0xFFFF_FFFF] {
        let mut regs = regs_with(&[(7, 2)]);
        assert_eq!(call(&mut vm, None, o, &mut regs), EcallOutcome::Continue);
    }
}

#[test]
fn frame_needing_ops_trap_on_an_empty_stack() {
    let mut vm = Vm::new(InMemoryAssist::new());
    let mut cache = CacheDirectory::new();
    for o in [1, 2, 3, 4, 5, 16, 17, 18, 20, 21, 22, 23, 25, 26] {
        let mut regs = [0; 13];
        assert_eq!(call(&mut vm, Some(&mut cache), o, &mut regs), EcallOutcome::Trap, "op {o}");
    }
    let mut regs = [0; 13];
    assert_eq!(call(&mut vm, None, 0, &mut regs), EcallOutcome::Halt);
    assert_eq!(call(&mut vm, None, 19, &mut regs), EcallOutcome::Trap);
    assert_eq!(call(&mut vm, None, 30, &mut regs), EcallOutcome::Continue);
}

#[test]
fn same_type_and_set_image_need_hash_forms() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    vm.stack.running_instance_mut().unwrap().root_cnode.set(SlotIdx(4), Some(CapHashOrRef::Ref(CapRef(1)))).unwrap();
    traps(&mut vm, &mut cache, op::SAME_TYPE, &[(7, 2), (8, 4)], KernelError::SlotKindMismatch(4));
    traps(&mut vm, &mut cache, op::SAME_TYPE, &[(7, 2), (8, 5)], KernelError::SlotEmpty(5));
    traps(&mut vm, &mut cache, op::SET_IMAGE, &[(7, 4)], KernelError::SlotKindMismatch(4));
    traps(&mut vm, &mut cache, op::SET_IMAGE, &[(7, 5)], KernelError::SlotEmpty(5));
    traps(&mut vm, &mut cache, op::SET_IMAGE, &[(7, 2)], KernelError::ImageNotFound);
    let empty = cache.put(ImageCap::empty().into()).unwrap();
    set_slot(&mut vm, 6, empty);
    traps(&mut vm, &mut cache, op::SET_IMAGE, &[(7, 6)], KernelError::DecodeFailed);
    let d = cache.put(data(b"x")).unwrap();
    set_slot(&mut vm, 6, d);
    traps(&mut vm, &mut cache, op::SET_IMAGE, &[(7, 6)], KernelError::ImageNotFound);
}

#[test]
fn set_image_swaps_pins_and_yield_slot_but_not_the_cnode() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    pin(&mut vm, &[2]);
    let d = cache.put(data(b"p")).unwrap();
    let mut img = img_halt();
    img.pinned = vec![ImageSlotEntry { slot: SlotIdx(5), cap_hash: d }];
    img.yield_marker_slot = Some(SlotIdx(4));
    let ih = cache.put(img.into()).unwrap();
    set_slot(&mut vm, 3, ih);
    let cnode_before = running(&vm).root_cnode.clone();
    let mut mem = PageZero::new();
    let mut r = regs_with(&[(7, 3)]);
    assert_eq!(mem.call(&mut vm, Some(&mut cache), op::SET_IMAGE, &mut r), EcallOutcome::HostCall(17));
    assert_eq!(running(&vm).root_cnode, cnode_before, "pinned slots are not installed");
    assert_eq!(running(&vm).yield_marker_slot, Some(SlotIdx(4)));
    ok(&mut vm, &mut cache, op::MOVE, &[(7, 2), (8, 9)]);
    traps(&mut vm, &mut cache, op::COPY, &[(7, 9), (8, 5)], KernelError::SlotPinned(5));
}

#[test]
fn type_of_read_mint_open_save_error_paths() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    let d = cache.put(data(b"hello")).unwrap();
    set_slot(&mut vm, 3, d);
    pin(&mut vm, &[6]);
    // TYPE_OF
    traps(&mut vm, &mut cache, op::TYPE_OF, &[(7, 5), (8, 7)], KernelError::SlotEmpty(5));
    traps(&mut vm, &mut cache, op::TYPE_OF, &[(7, 3), (8, 7)], KernelError::InstanceNotFound);
    let ik = publish_instance(&mut cache, img_halt(), 0, &[], [9; 32], 0);
    set_slot(&mut vm, 4, ik);
    traps(&mut vm, &mut cache, op::TYPE_OF, &[(7, 4), (8, 6)], KernelError::SlotPinned(6));
    traps(&mut vm, &mut cache, op::TYPE_OF, &[(7, 4), (8, 16)], KernelError::SlotOutOfRange(16));
    // READ_DATA_CAP
    traps(&mut vm, &mut cache, op::READ_DATA_CAP, &[(7, 4), (8, 0), (9, 1)], KernelError::WrongKind);
    traps(&mut vm, &mut cache, op::READ_DATA_CAP, &[(7, 3), (8, 0x1000), (9, 1)], KernelError::MemoryFault);
    traps(&mut vm, &mut cache, op::READ_DATA_CAP, &[(7, 3), (8, 0xFFE), (9, 3)], KernelError::MemoryFault);
    let r = ok(&mut vm, &mut cache, op::READ_DATA_CAP, &[(7, 3), (8, 0x5000), (9, 0)]);
    assert_eq!(r[7], 0, "len 0 always succeeds");
    let r = ok(&mut vm, &mut cache, op::READ_DATA_CAP, &[(7, 3), (8, 0), (9, u64::MAX)]);
    assert_eq!(r[7], 4096, "clamped to the content length");
    // MINT_DATA_CAP
    vm.assist.storage_quota_set(1, 4095);
    traps(&mut vm, &mut cache, op::MINT_DATA_CAP, &[(7, 0), (8, 1), (9, 1), (10, 6)], KernelError::SlotPinned(6));
    traps(&mut vm, &mut cache, op::MINT_DATA_CAP, &[(7, 0), (8, 1), (9, 1), (10, 7)], KernelError::QuotaExhausted);
    traps(&mut vm, &mut cache, op::MINT_DATA_CAP, &[(7, 0), (8, 1 << 40), (9, 1), (10, 7)], KernelError::MemoryFault);
    traps(
        &mut vm,
        &mut cache,
        op::MINT_DATA_CAP,
        &[(7, 0xFFFF_FFFF), (8, 2), (9, 1), (10, 7)],
        KernelError::MemoryFault,
    );
    traps(&mut vm, &mut cache, op::MINT_DATA_CAP, &[(7, 0xFFF), (8, 2), (9, 1), (10, 7)], KernelError::MemoryFault);
    traps(&mut vm, &mut cache, op::MINT_DATA_CAP, &[(7, 0x2000), (8, 1), (9, 1), (10, 7)], KernelError::MemoryFault);
    vm.assist.storage_quota_set(1, 4096);
    ok(&mut vm, &mut cache, op::MINT_DATA_CAP, &[(7, 0), (8, 0), (9, 1), (10, 7)]);
    assert_eq!(vm.assist.storage_quota_get(1), 0, "an exact quota leaves 0");
    assert_eq!(slot(&vm, 7), Some(hash(javm_cap::cap_hash(&data(b"")).unwrap())), "len 0 mints one zero page");
    vm.assist.storage_quota_set(1, 8192);
    ok(&mut vm, &mut cache, op::MINT_DATA_CAP, &[(7, 0), (8, 4096), (9, 1), (10, 8)]);
    assert_eq!(vm.assist.storage_quota_get(1), 4096);
    // OPEN
    traps(&mut vm, &mut cache, op::OPEN, &[(7, 5), (8, 7)], KernelError::UnknownFile);
    vm.assist.register_file(5, hash(ik));
    traps(&mut vm, &mut cache, op::OPEN, &[(7, 5), (8, 7)], KernelError::WrongKind);
    vm.assist.register_file(6, hash([0x12; 32]));
    traps(&mut vm, &mut cache, op::OPEN, &[(7, 6), (8, 7)], KernelError::WrongKind);
    vm.assist.register_file(7, hash(d));
    traps(&mut vm, &mut cache, op::OPEN, &[(7, 7), (8, 6)], KernelError::SlotPinned(6));
    // SAVE
    traps(&mut vm, &mut cache, op::SAVE, &[(7, 5), (8, 1)], KernelError::SlotEmpty(5));
    traps(&mut vm, &mut cache, op::SAVE, &[(7, 4), (8, 1)], KernelError::WrongKind);
    vm.assist.storage_quota_set(1, 4095);
    traps(&mut vm, &mut cache, op::SAVE, &[(7, 3), (8, 1)], KernelError::SaveRejected);
    vm.assist.storage_quota_set(1, 4096);
    let next = vm.assist.next_file_id();
    let r = ok(&mut vm, &mut cache, op::SAVE, &[(7, 3), (8, 1)]);
    assert_eq!(r[7], next);
    assert_eq!(vm.assist.host_open(next), Some(hash(d)));
}

#[test]
fn open_settles_a_ref_once() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    let r = cache.put_working(data(b"working")).unwrap();
    vm.assist.register_file(3, CapHashOrRef::Ref(r));
    ok(&mut vm, &mut cache, op::OPEN, &[(7, 3), (8, 9)]);
    let h = javm_cap::cap_hash(&data(b"working")).unwrap();
    assert_eq!(slot(&vm, 9), Some(hash(h)));
    assert!(cache.contains(&h) && cache.working_refs().is_empty());
    traps(&mut vm, &mut cache, op::OPEN, &[(7, 3), (8, 10)], KernelError::WrongKind);
}

fn spawn_setup(image: ImageCap, prepared: CNodeCap) -> (Vm, CacheDirectory) {
    spawn_setup_in(CacheDirectory::new(), image, prepared)
}

fn spawn_setup_in(mut cache: CacheDirectory, image: ImageCap, prepared: CNodeCap) -> (Vm, CacheDirectory) {
    let mut vm = fixture();
    let ih = cache.put(image.into()).unwrap();
    let ch = cache.put(prepared.into()).unwrap();
    set_slot(&mut vm, 3, ih);
    set_slot(&mut vm, 4, ch);
    (vm, cache)
}

#[test]
fn derive_spawn_edges() {
    let (mut vm, mut cache) = spawn_setup(img_halt(), CNodeCap::empty(4).unwrap());
    pin(&mut vm, &[4, 8]);
    traps(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 7)], KernelError::SlotPinned(4));
    pin(&mut vm, &[8]);
    traps(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 8)], KernelError::SlotPinned(8));
    traps(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 16)], KernelError::SlotOutOfRange(16));
    traps(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 5), (8, 4), (9, 7)], KernelError::SlotEmpty(5));
    traps(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 4), (8, 4), (9, 7)], KernelError::ImageNotFound);
    assert!(matches!(
        {
            let mut mem = PageZero::new();
            let mut r = regs_with(&[(7, 3), (8, 3), (9, 7)]);
            mem.call(&mut vm, Some(&mut cache), op::DERIVE_SPAWN, &mut r);
            vm.last_error.clone()
        },
        Some(KernelError::Invariant(_))
    ));
    ok(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 4)]);
    let Some(CapHashOrRef::Hash(ik)) = slot(&vm, 4) else { panic!() };
    assert!(cache.get_blob(&ik).and_then(Cap::as_instance).is_some(), "dst == cnode slot holds the instance");

    let (mut vm, mut cache) = spawn_setup(img_halt(), CNodeCap::empty(4).unwrap());
    ok(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 3)]);
    assert_eq!(slot(&vm, 4), None);
    assert!(matches!(slot(&vm, 3), Some(CapHashOrRef::Hash(_))), "dst == image slot is overwritten");
}

#[test]
fn derive_spawn_image_pins_initial_and_mappings() {
    let mut cache = CacheDirectory::new();
    let d_pin = cache.put(data(b"pin")).unwrap();
    let d_init = cache.put(data(&[1u8; 5000])).unwrap();
    // A pinned slot outside the prepared cnode's range traps.
    let mut img = img_halt();
    img.pinned = vec![ImageSlotEntry { slot: SlotIdx(20), cap_hash: d_pin }];
    let (mut vm, mut c) = spawn_setup_in(cache.clone(), img, CNodeCap::empty(4).unwrap());
    traps(&mut vm, &mut c, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 7)], KernelError::SlotOutOfRange(20));

    let mut img = img_halt();
    img.pinned = vec![ImageSlotEntry { slot: SlotIdx(1), cap_hash: d_pin }];
    img.initial = vec![
        ImageSlotEntry { slot: SlotIdx(1), cap_hash: d_init },
        ImageSlotEntry { slot: SlotIdx(2), cap_hash: d_init },
        ImageSlotEntry { slot: SlotIdx(3), cap_hash: d_init },
    ];
    img.mappings = vec![
        MemoryMapping { start: 0x4000, size: 0x1000, source_path: vec![SlotIdx(2), SlotIdx(9)] },
        MemoryMapping { start: 0x8000, size: 0x1000, source_path: vec![] },
        MemoryMapping { start: 0x10000, size: 0, source_path: vec![SlotIdx(1)] },
        MemoryMapping { start: 0x20000, size: 0x1000, source_path: vec![SlotIdx(5)] },
        MemoryMapping { start: 0x30000, size: 0x1000, source_path: vec![SlotIdx(6)] },
    ];
    let mut prepared = CNodeCap::empty(4).unwrap();
    prepared.set(SlotIdx(3), Some(hash(AA))).unwrap();
    prepared.set(SlotIdx(6), Some(hash([0x99; 32]))).unwrap();
    let (mut vm, mut c) = spawn_setup_in(cache, img, prepared);
    ok(&mut vm, &mut c, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 7)]);
    let Some(CapHashOrRef::Hash(ik)) = slot(&vm, 7) else { panic!() };
    let inst = c.get_blob(&ik).and_then(Cap::as_instance).unwrap();
    let cn = c.get(&inst.root_cnode).and_then(Cap::as_cnode).unwrap();
    assert_eq!(cn.get(SlotIdx(1)), Some(&hash(d_pin)), "pinned wins over initial");
    assert_eq!(cn.get(SlotIdx(2)), Some(&hash(d_init)));
    assert_eq!(cn.get(SlotIdx(3)), Some(&hash(AA)), "initial never overwrites");
    assert_eq!(inst.mem_size, 0x31000);
    assert_eq!(inst.rw_overlays.len(), 2, "mapping 1 (data at path[0]) and mapping 3 (size 0 but data)");
    assert_eq!(inst.rw_overlays[0].start, 0x4000);
    assert_eq!(inst.rw_overlays[0].bytes.len(), 8192, "the whole content, longer than the mapping");
    assert_eq!(inst.rw_overlays[1].start, 0x10000);
}

#[test]
fn derive_spawn_overlay_past_the_address_space_traps() {
    let mut cache = CacheDirectory::new();
    let fits = cache.put(data(&[1u8; 8192])).unwrap();
    let big = cache.put(data(&[1u8; 12288])).unwrap();
    let mut img = img_halt();
    img.initial = vec![ImageSlotEntry { slot: SlotIdx(2), cap_hash: fits }];
    img.mappings = vec![MemoryMapping { start: 0xFFFF_E000, size: 0x1000, source_path: vec![SlotIdx(2)] }];
    let mut vm = fixture();
    let ih = cache.put(img.clone().into()).unwrap();
    let ch = cache.put(CNodeCap::empty(4).unwrap().into()).unwrap();
    set_slot(&mut vm, 3, ih);
    set_slot(&mut vm, 4, ch);
    ok(&mut vm, &mut cache, op::DERIVE_SPAWN, &[(7, 3), (8, 4), (9, 7)]);
    img.initial[0].cap_hash = big;
    let ih = cache.put(img.into()).unwrap();
    set_slot(&mut vm, 3, ih);
    set_slot(&mut vm, 4, ch);
    let mut mem = PageZero::new();
    let mut r = regs_with(&[(7, 3), (8, 4), (9, 8)]);
    assert_eq!(mem.call(&mut vm, Some(&mut cache), op::DERIVE_SPAWN, &mut r), EcallOutcome::Trap);
    assert!(matches!(vm.last_error, Some(KernelError::CacheRejected(_))), "{:?}", vm.last_error);
    assert_eq!(slot(&vm, 4), Some(hash(ch)), "the prepared cnode stays on failure");
}

#[test]
fn host_call_failures_keep_the_callers_slot0() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    set_slot(&mut vm, 0, [0xAB; 32]);
    traps(&mut vm, &mut cache, op::CALL, &[(7, 5), (8, 0)], KernelError::SlotEmpty(5));
    traps(&mut vm, &mut cache, op::CALL, &[(7, 2), (8, 0)], KernelError::InstanceNotFound);
    let ik = publish_instance(&mut cache, img_halt(), 4, &[], [1; 32], 0);
    set_slot(&mut vm, 6, ik);
    traps(&mut vm, &mut cache, op::CALL, &[(7, 6), (8, 64)], KernelError::EndpointOutOfRange(64));
    traps(&mut vm, &mut cache, op::CALL, &[(7, 6), (8, 255)], KernelError::EndpointOutOfRange(255));
    let bad = publish_instance(&mut cache, ImageCap::empty(), 4, &[], [1; 32], 0);
    set_slot(&mut vm, 7, bad);
    traps(&mut vm, &mut cache, op::CALL, &[(7, 7), (8, 0)], KernelError::DecodeFailed);
    let mut full = Vm::with_config(InMemoryAssist::new(), javm_kernel::default_config(), 1);
    std::mem::swap(&mut full.stack, &mut vm.stack);
    let mut tmp = javm_kernel::CallStack::new(1);
    std::mem::swap(&mut tmp, &mut full.stack);
    let frame = match tmp.pop() {
        Some(javm_kernel::Entry::Instance(e)) => *e,
        _ => panic!(),
    };
    full.stack.push_instance(frame).unwrap();
    traps(&mut full, &mut cache, op::CALL, &[(7, 6), (8, 63)], KernelError::StackFull);
}

#[test]
fn host_call_with_slot0_moves_the_callees_own_cap() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    let ik = publish_instance(&mut cache, img_halt(), 4, &[(0, [0x31; 32])], [1; 32], 0);
    set_slot(&mut vm, 0, ik);
    let mut mem = PageZero::new();
    let mut r = regs_with(&[(7, 0), (8, 63)]);
    assert_eq!(mem.call(&mut vm, Some(&mut cache), op::CALL, &mut r), EcallOutcome::HostCall(26));
    assert_eq!(slot(&vm, 0), Some(hash(ik)), "the callee's slot 0 holds its own instance");
    assert_eq!(vm.stack.instance(0).unwrap().root_cnode.get(SlotIdx(0)), None);

    let mut vm = fixture();
    set_slot(&mut vm, 6, ik);
    let mut r = regs_with(&[(7, 6), (8, 0)]);
    assert_eq!(mem.call(&mut vm, Some(&mut cache), op::CALL, &mut r), EcallOutcome::HostCall(26));
    assert_eq!(slot(&vm, 0), Some(hash([0x31; 32])), "an empty caller slot 0 keeps the callee's own");
    assert_eq!(running(&vm).stored_regs()[7..=10], [0, 0, 0, 0]);
}

#[test]
fn yield_error_paths() {
    let mut cache = CacheDirectory::new();
    let mut vm = fixture();
    traps(&mut vm, &mut cache, op::YIELD, &[(7, 5)], KernelError::SlotEmpty(5));
    traps(&mut vm, &mut cache, op::YIELD, &[(7, 2)], KernelError::UnhandledMarker);
    vm.stack.running_instance_mut().unwrap().root_cnode.set(SlotIdx(4), Some(CapHashOrRef::Ref(CapRef(2)))).unwrap();
    traps(&mut vm, &mut cache, op::YIELD, &[(7, 4)], KernelError::SlotKindMismatch(4));
}
