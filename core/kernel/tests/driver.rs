//! The driver loop (KSPEC-1 §10) and its properties D1–D5 (§13.3).

mod common;

use common::*;
use javm_cap::{CNodeCap, CacheDirectory, Cap, CapHashOrRef, Hash, ImageCap, InstanceCap, SlotIdx, OOG_MARKER};
use javm_kernel::{CallResult, FaultReason, InMemoryAssist, Vm, VmError};

/// Publishes an instance whose image is `text`, with `slots` in a size_log-4 root cnode.
fn inst(cache: &mut CacheDirectory, text: &str, slots: &[(u32, Hash)], mem_size: u32) -> Hash {
    publish_instance(cache, image_asm(text), 4, slots, [0x11; 32], mem_size)
}

fn run(vm: &mut Vm, cache: &mut CacheDirectory, ik: Hash, gas: u64) -> CallResult {
    vm.invoke(cache, &interp, ik, 0, [0; 4], gas).unwrap()
}

#[test]
fn halt_publishes_the_post_instance() {
    let mut cache = CacheDirectory::new();
    let ik = inst(&mut cache, "load_imm r7, 42\nload_imm r3, 5\necalli 0", &[(0, [9; 32]), (2, AA)], 4096);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = run(&mut vm, &mut cache, ik, 1000);
    let CallResult::Halt { return_value, post_instance_hash, reflected_slot0, gas_used } = r else { panic!("{r:?}") };
    assert_eq!(return_value, 42);
    assert_eq!(reflected_slot0, Some(hash([9; 32])));
    assert!(gas_used > 0);
    let post = cache.get_blob(&post_instance_hash).and_then(Cap::as_instance).unwrap().clone();
    assert_eq!(post.regs[3], 5);
    assert_eq!(post.pc, 6, "pc stays on the REPLY ecall");
    assert_eq!(post.gas_remaining, 1000 - gas_used);
    assert_eq!(post.image_hash_chain, [0x11; 32]);
    let cn = cache.get(&post.root_cnode).and_then(Cap::as_cnode).unwrap();
    assert_eq!(cn.get(SlotIdx(0)), None, "slot 0 is reflected, not published");
    assert_eq!(cn.get(SlotIdx(2)), Some(&hash(AA)));
    assert!(vm.stack.is_empty());
    cache.check_integrity().unwrap();
}

#[test]
fn halt_address_jump_also_halts() {
    let mut cache = CacheDirectory::new();
    let ik = inst(&mut cache, "load_imm r7, 7\nload_imm r0, -65536\njump_ind r0, 0", &[], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    assert!(matches!(run(&mut vm, &mut cache, ik, 100), CallResult::Halt { return_value: 7, .. }));
}

#[test]
fn engine_exits_fault_with_their_reason() {
    let mut vm = Vm::new(InMemoryAssist::new());
    let mut cache = CacheDirectory::new();
    let cases: [(&str, FaultReason); 4] = [
        ("trap", FaultReason::Trap),
        ("load_imm r0, 4\njump_ind r0, 0", FaultReason::Panic),
        ("load_imm r1, 0x20000\nload_u64 r2, 0x20000", FaultReason::PageFault(0x20000)),
        ("ecalli 6", FaultReason::Trap),
    ];
    for (text, reason) in cases {
        let ik = inst(&mut cache, text, &[(0, AA)], 0);
        let r = run(&mut vm, &mut cache, ik, 100);
        assert!(
            matches!(r, CallResult::Faulted { reason: got, reflected_slot0: Some(_), .. } if got == reason),
            "{text}: {r:?}"
        );
        assert!(vm.stack.is_empty());
    }
}

#[test]
fn out_of_gas_without_a_catcher_faults() {
    let mut cache = CacheDirectory::new();
    let ik = inst(&mut cache, "l: jump l", &[], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = run(&mut vm, &mut cache, ik, 10);
    assert_eq!(r, CallResult::Faulted { reason: FaultReason::OutOfGas, reflected_slot0: None, gas_used: 10 });
}

#[test]
fn invoke_errors_change_nothing() {
    let mut cache = CacheDirectory::new();
    let ik = inst(&mut cache, "ecalli 0", &[], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    assert_eq!(vm.invoke(&mut cache, &interp, ik, 0, [0; 4], 1 << 63), Err(VmError::GasTooLarge));
    assert!(matches!(vm.invoke(&mut cache, &interp, [5; 32], 0, [0; 4], 10), Err(VmError::Build(_))));
    assert!(matches!(vm.invoke(&mut cache, &interp, ik, 64, [0; 4], 10), Err(VmError::Build(_))));
    assert_eq!(vm.call_resume(&mut cache, &interp, None, 0), Err(VmError::NotPaused));
    assert!(vm.stack.is_empty());
    assert!(matches!(vm.invoke(&mut cache, &interp, ik, 0, [0; 4], (1 << 63) - 1), Ok(CallResult::Halt { .. })));
}

#[test]
fn args_land_in_phi7_to_phi10() {
    let mut cache = CacheDirectory::new();
    let ik = inst(&mut cache, "add_64 r7, r7, r10\necalli 0", &[], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = vm.invoke(&mut cache, &interp, ik, 0, [40, 0, 0, 2], 100).unwrap();
    assert!(matches!(r, CallResult::Halt { return_value: 42, .. }), "{r:?}");
}

/// A parent that sets r3, calls the instance in slot 9 at endpoint 0, then halts.
const PARENT: &str = "load_imm r3, 33\nload_imm r7, 9\nload_imm r8, 0\necalli 26\necalli 0";

#[test]
fn nested_call_returns_slot0_and_restores_the_caller() {
    let mut cache = CacheDirectory::new();
    // The child copies its slot 0 to slot 1, mints a cnode into slot 0, and halts with r3 = 99.
    let child = inst(
        &mut cache,
        "load_imm r3, 99\nload_imm r7, 0\nload_imm r8, 1\necalli 1\nload_imm r7, 0\nload_imm r8, 2\necalli 5\necalli 0",
        &[],
        0,
    );
    let parent = inst(&mut cache, PARENT, &[(0, AA), (9, child)], 4096);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = run(&mut vm, &mut cache, parent, 1000);
    let CallResult::Halt { reflected_slot0, post_instance_hash, .. } = r else { panic!("{r:?}") };
    let minted = javm_cap::cap_hash(&Cap::CNode(CNodeCap::empty(2).unwrap())).unwrap();
    assert_eq!(reflected_slot0, Some(hash(minted)), "the child's slot 0 came back");
    let post = cache.get_blob(&post_instance_hash).and_then(Cap::as_instance).unwrap();
    assert_eq!(post.regs[3], 33, "the caller's registers are restored unchanged");
    assert_eq!(post.regs[7], 9);
    let cn = cache.get(&post.root_cnode).and_then(Cap::as_cnode).unwrap();
    assert_eq!(cn.get(SlotIdx(9)), Some(&hash(child)), "the caller's slot still names the pre-call instance");
}

#[test]
fn nested_halt_with_an_empty_slot0_leaves_the_callers_slot0_empty() {
    let mut cache = CacheDirectory::new();
    let child = inst(&mut cache, "load_imm r7, 0\necalli 3\necalli 0", &[], 0);
    let parent = inst(&mut cache, PARENT, &[(0, AA), (9, child)], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    assert!(matches!(run(&mut vm, &mut cache, parent, 1000), CallResult::Halt { reflected_slot0: None, .. }));
}

#[test]
fn gas_is_shared_across_frames() {
    let mut cache = CacheDirectory::new();
    let child = inst(&mut cache, "l: jump l", &[], 0);
    let parent = inst(&mut cache, PARENT, &[(9, child)], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = run(&mut vm, &mut cache, parent, 50);
    assert_eq!(r, CallResult::Faulted { reason: FaultReason::OutOfGas, reflected_slot0: None, gas_used: 50 });
    assert!(vm.stack.is_empty(), "a nested fault unwinds the whole invocation");
}

#[test]
fn a_fault_at_depth_three_unwinds_everything() {
    let mut cache = CacheDirectory::new();
    let c3 = inst(&mut cache, "load_imm r7, 5\nload_imm r8, 3\necalli 1\ntrap", &[(5, AA)], 0);
    let c2 = inst(&mut cache, PARENT, &[(9, c3)], 0);
    let c1 = inst(&mut cache, PARENT, &[(9, c2)], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = run(&mut vm, &mut cache, c1, 1000);
    assert!(matches!(r, CallResult::Faulted { reason: FaultReason::Trap, .. }), "{r:?}");
    assert!(vm.stack.is_empty());
}

/// An image whose yield-catcher slot is 4.
fn catcher_image(text: &str) -> ImageCap {
    ImageCap { yield_marker_slot: Some(SlotIdx(4)), ..image_asm(text) }
}

#[test]
fn yield_pauses_and_resume_continues_at_the_next_pc() {
    let mut cache = CacheDirectory::new();
    let mut vm = Vm::new(InMemoryAssist::new());
    let catcher = vm.assist.yield_catcher_new();
    let marker = [0x77; 32];
    vm.assist.yield_catcher_add(catcher, marker);
    // The child yields on the marker in slot 5, then halts with r7 = r7 + 1 and its slot 0 moved.
    let child = inst(&mut cache, "load_imm r7, 5\necalli 16\nadd_imm_64 r7, r7, 1\necalli 0", &[(5, marker)], 0);
    let parent_img = catcher_image(PARENT);
    let ih = cache.put(parent_img.into()).unwrap();
    let mut cn = CNodeCap::empty(4).unwrap();
    cn.set(SlotIdx(4), Some(hash(catcher))).unwrap();
    cn.set(SlotIdx(9), Some(hash(child))).unwrap();
    let ch = cache.put(cn.into()).unwrap();
    let parent = cache.put(InstanceCap::new([0x22; 32], ih, hash(ch)).into()).unwrap();

    let r = run(&mut vm, &mut cache, parent, 1000);
    let CallResult::Paused { marker_payload, gas_used } = r else { panic!("{r:?}") };
    assert_eq!(marker_payload, Some(hash(marker)));
    assert!(vm.is_paused());
    assert_eq!(vm.stack.len(), 3);
    assert!(matches!(vm.stack.get(2), Some(javm_kernel::Entry::Reference { target: 0, .. })));
    assert_eq!(vm.invoke(&mut cache, &interp, parent, 0, [0; 4], 10), Err(VmError::Busy));

    let leg2 = vm.call_resume(&mut cache, &interp, Some(hash([0x55; 32])), 0).unwrap();
    let CallResult::Halt { reflected_slot0, gas_used: used2, post_instance_hash, .. } = leg2 else {
        panic!("{leg2:?}")
    };
    assert_eq!(reflected_slot0, Some(hash([0x55; 32])), "the scratchpad went to the yielder's slot 0 and back");
    assert!(used2 > 0 && gas_used > 0);
    let post = cache.get_blob(&post_instance_hash).and_then(Cap::as_instance).unwrap();
    assert_eq!(post.gas_remaining, 1000 - gas_used - used2);
    assert!(vm.stack.is_empty() && !vm.is_paused());
}

#[test]
fn yield_from_the_bottom_frame_is_never_caught() {
    let mut cache = CacheDirectory::new();
    let mut vm = Vm::new(InMemoryAssist::new());
    let catcher = vm.assist.yield_catcher_new();
    vm.assist.yield_catcher_add(catcher, AA);
    let img = catcher_image("load_imm r7, 2\necalli 16\necalli 0");
    let ih = cache.put(img.into()).unwrap();
    let mut cn = CNodeCap::empty(4).unwrap();
    cn.set(SlotIdx(4), Some(hash(catcher))).unwrap();
    cn.set(SlotIdx(2), Some(hash(AA))).unwrap();
    let ch = cache.put(cn.into()).unwrap();
    let ik = cache.put(InstanceCap::new([0x22; 32], ih, hash(ch)).into()).unwrap();
    let r = run(&mut vm, &mut cache, ik, 100);
    assert!(matches!(r, CallResult::Faulted { reason: FaultReason::Trap, .. }), "{r:?}");
    assert_eq!(vm.last_error, Some(javm_kernel::KernelError::UnhandledMarker));
}

#[test]
fn out_of_gas_routes_to_an_oog_catcher_and_resumes_with_extra_gas() {
    let mut cache = CacheDirectory::new();
    let mut vm = Vm::new(InMemoryAssist::new());
    let catcher = vm.assist.yield_catcher_new();
    vm.assist.yield_catcher_add(catcher, OOG_MARKER);
    let child = inst(&mut cache, "load_imm r7, 1\nload_imm r8, 2\nload_imm r9, 3\necalli 0", &[], 0);
    let ih = cache.put(catcher_image(PARENT).into()).unwrap();
    let mut cn = CNodeCap::empty(4).unwrap();
    cn.set(SlotIdx(4), Some(hash(catcher))).unwrap();
    cn.set(SlotIdx(9), Some(hash(child))).unwrap();
    let ch = cache.put(cn.into()).unwrap();
    let parent = cache.put(InstanceCap::new([0x22; 32], ih, hash(ch)).into()).unwrap();
    let r = run(&mut vm, &mut cache, parent, 6);
    assert!(
        matches!(r, CallResult::Paused { marker_payload: Some(CapHashOrRef::Hash(m)), .. } if m == OOG_MARKER),
        "{r:?}"
    );
    assert_eq!(vm.call_resume(&mut cache, &interp, None, u64::MAX), Err(VmError::GasTooLarge));
    assert!(vm.is_paused(), "a refused resume changes nothing");
    let r = vm.call_resume(&mut cache, &interp, None, 100).unwrap();
    assert!(matches!(r, CallResult::Halt { .. }), "{r:?}");
}

#[test]
fn set_image_runs_the_new_code_from_the_next_pc() {
    let mut cache = CacheDirectory::new();
    // Both programs put `ecalli 17` at pc 0..=1 so pc 2 starts a block in each.
    let new_img = image_asm("ecalli 17\nload_imm r7, 2\necalli 0");
    let nh = cache.put(new_img.into()).unwrap();
    let ik = inst(&mut cache, "ecalli 17\nload_imm r7, 1\necalli 0", &[(0, nh)], 0);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = vm.invoke(&mut cache, &interp, ik, 0, [0; 4], 100).unwrap();
    let CallResult::Halt { return_value, post_instance_hash, .. } = r else { panic!("{r:?}") };
    assert_eq!(return_value, 2, "the new code ran");
    let post = cache.get_blob(&post_instance_hash).and_then(Cap::as_instance).unwrap();
    assert_eq!(post.image_hash, nh);
    assert_eq!(post.image_hash_chain, javm_cap::hash_pair(&[0x11; 32], &nh));
}

#[test]
fn post_halt_snapshot_reads_the_current_images_mappings() {
    let mut cache = CacheDirectory::new();
    let mut img = image_asm("load_imm r1, 0x1234\nstore_u64 r1, 0x1008\necalli 0");
    img.mappings = vec![
        javm_cap::MemoryMapping { start: 0x1000, size: 0x1000, source_path: vec![] },
        javm_cap::MemoryMapping { start: 0x8000, size: 0x1000, source_path: vec![] },
        javm_cap::MemoryMapping { start: 0x3000, size: 0, source_path: vec![] },
    ];
    let ik = publish_instance(&mut cache, img, 4, &[], [3; 32], 0x2000);
    let mut vm = Vm::new(InMemoryAssist::new());
    let r = run(&mut vm, &mut cache, ik, 100);
    let CallResult::Halt { post_instance_hash, .. } = r else { panic!("{r:?}") };
    let post = cache.get_blob(&post_instance_hash).and_then(Cap::as_instance).unwrap();
    assert_eq!(post.mem_size, 0x9000, "the maximum mapping end");
    assert_eq!(post.rw_overlays.len(), 1, "the unmapped mapping is skipped");
    assert_eq!(post.rw_overlays[0].start, 0x1000);
    assert_eq!(&post.rw_overlays[0].bytes[8..10], &[0x34, 0x12]);
}

#[test]
fn host_call_at_max_depth_traps() {
    let mut cache = CacheDirectory::new();
    let child = inst(&mut cache, "ecalli 0", &[], 0);
    let parent = inst(&mut cache, PARENT, &[(9, child)], 0);
    let mut vm = Vm::with_config(InMemoryAssist::new(), javm_kernel::default_config(), 1);
    let r = run(&mut vm, &mut cache, parent, 100);
    assert!(matches!(r, CallResult::Faulted { reason: FaultReason::Trap, .. }), "{r:?}");
    assert_eq!(vm.last_error, Some(javm_kernel::KernelError::StackFull));
}

#[test]
fn abort_paused_pops_to_the_base() {
    let mut cache = CacheDirectory::new();
    let mut vm = Vm::new(InMemoryAssist::new());
    let catcher = vm.assist.yield_catcher_new();
    vm.assist.yield_catcher_add(catcher, AA);
    let child = inst(&mut cache, "load_imm r7, 5\necalli 16\necalli 0", &[(5, AA)], 0);
    let ih = cache.put(catcher_image(PARENT).into()).unwrap();
    let mut cn = CNodeCap::empty(4).unwrap();
    cn.set(SlotIdx(4), Some(hash(catcher))).unwrap();
    cn.set(SlotIdx(9), Some(hash(child))).unwrap();
    let ch = cache.put(cn.into()).unwrap();
    let parent = cache.put(InstanceCap::new([0x22; 32], ih, hash(ch)).into()).unwrap();
    assert!(matches!(run(&mut vm, &mut cache, parent, 100), CallResult::Paused { .. }));
    vm.abort_paused();
    assert!(vm.stack.is_empty() && !vm.is_paused());
}
