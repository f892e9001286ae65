//! The seed's unit tests as ours: every row of the KSPEC-1 §14 checklist, checking the same
//! observable result (with the JCAP-1 hashes the checklist gives).

mod common;

use common::*;
use javm_cap::{hash_pair, CNodeCap, CacheDirectory, Cap, CapHashOrRef, ImageCap, InstanceCap, SlotIdx, TypeCap};
use javm_kernel::ecall::op;
use javm_kernel::memory::NoMemory;
use javm_kernel::{EcallKind, EcallOutcome, Entry, EntryStatus, InMemoryAssist, KernelAssist, Vm};

#[test]
fn row01_copy_via_ecalli() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(7, 2), (8, 7)]);
    assert_eq!(call(&mut vm, None, op::COPY, &mut regs), EcallOutcome::Continue);
    assert_eq!(slot(&vm, 2), Some(hash(AA)));
    assert_eq!(slot(&vm, 7), Some(hash(AA)));
}

#[test]
fn row02_move_via_ecalli() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(7, 2), (8, 9)]);
    assert_eq!(call(&mut vm, None, op::MOVE, &mut regs), EcallOutcome::Continue);
    assert_eq!(slot(&vm, 2), None);
    assert_eq!(slot(&vm, 9), Some(hash(AA)));
}

#[test]
fn row03_drop_via_ecalli() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(7, 2)]);
    assert_eq!(call(&mut vm, None, op::DROP, &mut regs), EcallOutcome::Continue);
    assert_eq!(slot(&vm, 2), None);
}

#[test]
fn row04_cnode_mint_without_cache_places_the_key() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(7, 5), (8, 3)]);
    assert_eq!(call(&mut vm, None, op::CNODE_MINT, &mut regs), EcallOutcome::Continue);
    assert_eq!(slot(&vm, 5), Some(hash(hx("45365cad6e982d8969c81c3c92dc35503b56c6420dae5bfb6326965811646f74"))));
}

#[test]
fn row05_cnode_mint_with_cache_publishes_an_empty_cnode() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let mut regs = regs_with(&[(7, 5), (8, 3)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::CNODE_MINT, &mut regs), EcallOutcome::Continue);
    let key = hx("45365cad6e982d8969c81c3c92dc35503b56c6420dae5bfb6326965811646f74");
    assert_eq!(slot(&vm, 5), Some(hash(key)));
    assert_eq!(cache.get_blob(&key), Some(&Cap::CNode(CNodeCap::empty(3).unwrap())));
}

#[test]
fn row06_cnode_swap_swaps_slots() {
    let mut vm = fixture();
    set_slot(&mut vm, 3, [0xBB; 32]);
    let mut regs = regs_with(&[(7, 2), (8, 3)]);
    assert_eq!(call(&mut vm, None, op::CNODE_SWAP, &mut regs), EcallOutcome::Continue);
    assert_eq!(slot(&vm, 2), Some(hash([0xBB; 32])));
    assert_eq!(slot(&vm, 3), Some(hash(AA)));
}

#[test]
fn row07_mgmt_on_an_empty_stack_traps() {
    let mut vm = Vm::new(InMemoryAssist::new());
    let mut regs = [0; 13];
    assert_eq!(call(&mut vm, None, op::DROP, &mut regs), EcallOutcome::Trap);
    assert_eq!(vm.last_error, Some(javm_kernel::KernelError::CallStackEmpty));
}

#[test]
fn row08_reply_zero_halts() {
    let mut vm = fixture();
    let mut regs = [0; 13];
    assert_eq!(call(&mut vm, None, op::REPLY, &mut regs), EcallOutcome::Halt);
}

#[test]
fn row09_plain_ecall_reads_the_op_from_phi11() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(11, 3), (7, 2)]);
    assert_eq!(vm.handle(EcallKind::Ecall, &mut regs, &mut NoMemory, None), EcallOutcome::Continue);
    assert_eq!(slot(&vm, 2), None);
}

#[test]
fn row10_unknown_op_continues_with_no_change() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(7, 2), (8, 3)]);
    let before = regs;
    assert_eq!(call(&mut vm, None, 999, &mut regs), EcallOutcome::Continue);
    assert_eq!(regs, before);
    assert_eq!(slot(&vm, 2), Some(hash(AA)));
    assert_eq!(running(&vm).root_cnode.populated(), 1);
}

#[test]
fn row11_set_image_without_cache_extends_the_chain() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(7, 2)]);
    assert_eq!(call(&mut vm, None, op::SET_IMAGE, &mut regs), EcallOutcome::Continue);
    let chain = hx("988ec4dbbff2f435a7de86ec8977c8205e1d682787f3b8b73f615cae7a364672");
    assert_eq!(chain, hash_pair(&[1; 32], &AA));
    assert_eq!(running(&vm).image_hash_chain, chain);
    assert_ne!(running(&vm).image_hash_chain, [1; 32]);
}

#[test]
fn row12_set_image_with_cache_reloads_the_program() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let ih = cache.put(img_halt().into()).unwrap();
    assert_eq!(ih, hx("553f07a70032b34ed8d822740be375f9cc4ae91e0a1669ded046a176d13a846a"));
    set_slot(&mut vm, 3, ih);
    let mut regs = regs_with(&[(7, 3)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::SET_IMAGE, &mut regs), EcallOutcome::HostCall(op::SET_IMAGE));
    let e = running(&vm);
    assert_eq!(e.image_hash, ih);
    assert_eq!(e.program.blob.code, vec![0x0A, 0x00]);
    assert_eq!(e.image_hash_chain, hx("bc5a5b3269b6e4505c5539b22e6db01a535b0ad03c921d883c3e1be3bfa5771f"));
}

#[test]
fn row13_derive_spawn_without_cache_writes_the_child_chain() {
    let mut vm = fixture();
    let mut regs = regs_with(&[(7, 2), (8, 5)]);
    assert_eq!(call(&mut vm, None, op::DERIVE_SPAWN, &mut regs), EcallOutcome::Continue);
    let chain = hx("988ec4dbbff2f435a7de86ec8977c8205e1d682787f3b8b73f615cae7a364672");
    assert_eq!(slot(&vm, 5), Some(hash(chain)));
    assert_ne!(chain, running(&vm).image_hash_chain);
}

#[test]
fn row14_same_type_compares_slot_hashes() {
    let mut vm = fixture();
    set_slot(&mut vm, 3, AA);
    set_slot(&mut vm, 4, [0x99; 32]);
    let mut regs = regs_with(&[(7, 2), (8, 3)]);
    assert_eq!(call(&mut vm, None, op::SAME_TYPE, &mut regs), EcallOutcome::Continue);
    assert_eq!(regs[7], 1);
    regs[7] = 2;
    regs[8] = 4;
    assert_eq!(call(&mut vm, None, op::SAME_TYPE, &mut regs), EcallOutcome::Continue);
    assert_eq!(regs[7], 0);
}

#[test]
fn row15_type_of_publishes_a_type_cap() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let ih = cache.put(ImageCap::empty().into()).unwrap();
    let ch = cache.put(CNodeCap::empty(0).unwrap().into()).unwrap();
    let ik = cache.put(InstanceCap::new([0x42; 32], ih, hash(ch)).into()).unwrap();
    assert_eq!(ik, hx("eba627a7789034c7eecaefe2b9654bfde98badfff81d1ea9b963052192eeeb9f"));
    set_slot(&mut vm, 3, ik);
    let mut regs = regs_with(&[(7, 3), (8, 6)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::TYPE_OF, &mut regs), EcallOutcome::Continue);
    let key = hx("f7dd2ba573d949725da0a93e2c74c3f9541ba72ef4c0a1c7605abffda9aa112f");
    assert_eq!(slot(&vm, 6), Some(hash(key)));
    assert_eq!(cache.get_blob(&key), Some(&Cap::Type(TypeCap { image_hash_chain: [0x42; 32] })));
}

#[test]
fn row16_read_data_cap_copies_a_prefix_with_padding() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let d = cache.put(data(b"hello")).unwrap();
    assert_eq!(d, hx("e8f22b0a84bb5de02aab24228ad22abc641d324498739b6cf019334ef1b63831"));
    set_slot(&mut vm, 3, d);
    let mut mem = PageZero::new();
    let mut regs = regs_with(&[(7, 3), (8, 16), (9, 8)]);
    assert_eq!(mem.call(&mut vm, Some(&mut cache), op::READ_DATA_CAP, &mut regs), EcallOutcome::Continue);
    assert_eq!(regs[7], 8);
    assert_eq!(mem.backend.read_memory(16, 8).unwrap(), b"hello\0\0\0");
}

#[test]
fn row17_mint_data_cap_pads_and_debits_one_page() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    vm.assist.storage_quota_set(0, 8192);
    let mut mem = PageZero::new();
    mem.backend.write_memory(32, b"abc\0\0").unwrap();
    let mut regs = regs_with(&[(7, 32), (8, 5), (9, 0), (10, 6)]);
    assert_eq!(mem.call(&mut vm, Some(&mut cache), op::MINT_DATA_CAP, &mut regs), EcallOutcome::Continue);
    assert_eq!(vm.assist.storage_quota_get(0), 4096);
    let key = hx("d08ece57e4cba4bfbb2ee8539fff5a77ca8731ce2a91bb16f0bbf0d6d1ddf25b");
    assert_eq!(slot(&vm, 6), Some(hash(key)));
    let d = cache.get_blob(&key).and_then(Cap::as_data).unwrap();
    assert_eq!(d.len(), 4096);
    assert_eq!(&d.content[..5], b"abc\0\0");
}

#[test]
fn row18_open_places_the_registered_file() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let d = cache.put(data(b"file")).unwrap();
    assert_eq!(d, hx("e89e80fcf8199aeb62f3ea2d610fe5f64e280af4ea32834b9bf7fe6df9647531"));
    vm.assist.register_file(9, hash(d));
    let mut regs = regs_with(&[(7, 9), (8, 6)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::OPEN, &mut regs), EcallOutcome::Continue);
    assert_eq!(slot(&vm, 6), Some(hash(d)));
    assert!(cache.get_blob(&d).and_then(Cap::as_data).is_some());
}

#[test]
fn row19_save_debits_the_content_length_and_returns_the_file_id() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let d = cache.put(data(b"stored")).unwrap();
    assert_eq!(d, hx("a19cf4837f21707e1fc42203aeac64305f0aacce1fcb72714d90bd3209b093a5"));
    vm.assist.storage_quota_set(0, 8192);
    set_slot(&mut vm, 3, d);
    let mut regs = regs_with(&[(7, 3), (8, 0)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::SAVE, &mut regs), EcallOutcome::Continue);
    assert_eq!(regs[7], 1);
    assert_eq!(vm.assist.storage_quota_get(0), 4096);
    assert_eq!(vm.assist.host_open(1), Some(hash(d)));
}

#[test]
fn row20_make_image_traps() {
    let mut vm = fixture();
    let mut regs = [0; 13];
    assert_eq!(call(&mut vm, None, op::MAKE_IMAGE, &mut regs), EcallOutcome::Trap);
    let mut cache = CacheDirectory::new();
    assert_eq!(call(&mut vm, Some(&mut cache), op::MAKE_IMAGE, &mut regs), EcallOutcome::Trap);
}

#[test]
fn row21_cache_dependent_ops_without_a_cache_trap() {
    for o in [op::TYPE_OF, op::READ_DATA_CAP, op::MINT_DATA_CAP, op::OPEN, op::SAVE, op::CALL] {
        let mut vm = fixture();
        let mut regs = [0; 13];
        assert_eq!(call(&mut vm, None, o, &mut regs), EcallOutcome::Trap, "op {o}");
    }
}

#[test]
fn row22_derive_spawn_with_cache_publishes_the_child_instance() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let ih = cache.put(img_halt().into()).unwrap();
    let prepared = cache.put(CNodeCap::empty(4).unwrap().into()).unwrap();
    vm.stack.running_instance_mut().unwrap().image_hash_chain = [0xC1; 32];
    set_slot(&mut vm, 3, ih);
    set_slot(&mut vm, 4, prepared);
    let keys_before = cache.blob_keys();
    let mut regs = regs_with(&[(7, 3), (8, 4), (9, 7)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::DERIVE_SPAWN, &mut regs), EcallOutcome::Continue);
    let key = hx("476b9e69dc3346370777dd8c614f41bc299ce22325709d868af326a544f1437a");
    assert_eq!(slot(&vm, 7), Some(hash(key)));
    let inst = cache.get_blob(&key).and_then(Cap::as_instance).unwrap();
    assert_eq!(inst.image_hash_chain, hx("94df18e75042dc5a15d76aa89d855ad720101246b6668ed8c027ee9cb9b24598"));
    assert_eq!(inst.image_hash_chain, hash_pair(&[0xC1; 32], &ih));
    assert_eq!(inst.image_hash, ih);
    assert_eq!(inst.root_cnode, hash(hx("bd57a89a32aa7e540fa42c579cb5a42f405a1467a005c3ee616a8925128ae0ed")));
    assert_eq!(slot(&vm, 4), None, "the prepared cnode is consumed");
    assert_eq!(javm_cap::cap_hash(&Cap::Instance(inst.clone())).unwrap(), key);
    let mut expected = keys_before;
    expected.push(key);
    expected.sort();
    assert_eq!(cache.blob_keys(), expected, "exactly one new key");
}

#[test]
fn row23_host_call_pushes_the_child_and_moves_slot0() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let ik = publish_instance(&mut cache, img_halt(), 4, &[], [0xCC; 32], 0);
    assert_eq!(ik, hx("9accfaccf66760a5db64bac6e18f75631d8ec2940607dab08b78d3a6ccaee175"));
    set_slot(&mut vm, 9, ik);
    set_slot(&mut vm, 0, [0xAB; 32]);
    let mut regs = regs_with(&[(7, 9), (8, 0)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::CALL, &mut regs), EcallOutcome::HostCall(op::CALL));
    assert_eq!(vm.stack.len(), 2);
    let statuses: Vec<EntryStatus> = vm.stack.entries().iter().map(Entry::status).collect();
    assert_eq!(statuses, [EntryStatus::Waiting, EntryStatus::Running]);
    let child = running(&vm);
    assert_eq!(child.image_hash, hx("553f07a70032b34ed8d822740be375f9cc4ae91e0a1669ded046a176d13a846a"));
    assert_eq!(child.root_cnode.get(SlotIdx(0)), Some(&hash([0xAB; 32])));
    let parent = vm.stack.instance(0).unwrap();
    assert_eq!(parent.root_cnode.get(SlotIdx(0)), None);
    assert_eq!(parent.root_cnode.get(SlotIdx(9)), Some(&CapHashOrRef::Hash(ik)), "the instance slot stays");
}

#[test]
fn img_map_spawn_builds_the_overlay_vectors() {
    let mut vm = fixture();
    let mut cache = CacheDirectory::new();
    let init = cache.put(data(b"init")).unwrap();
    let mut img = img_halt();
    img.mappings = vec![javm_cap::MemoryMapping { start: 0x1000, size: 0x1000, source_path: vec![SlotIdx(5)] }];
    img.initial = vec![javm_cap::ImageSlotEntry { slot: SlotIdx(5), cap_hash: init }];
    let ih = cache.put(img.into()).unwrap();
    assert_eq!(ih, hx("d5b6c99ad40fe91fd209047e501cd51999e1d9040cc28199df42090bed39ab89"));
    let prepared = cache.put(CNodeCap::empty(4).unwrap().into()).unwrap();
    vm.stack.running_instance_mut().unwrap().image_hash_chain = [0xC1; 32];
    set_slot(&mut vm, 3, ih);
    set_slot(&mut vm, 4, prepared);
    let mut regs = regs_with(&[(7, 3), (8, 4), (9, 7)]);
    assert_eq!(call(&mut vm, Some(&mut cache), op::DERIVE_SPAWN, &mut regs), EcallOutcome::Continue);
    let key = hx("0b54d0f9bf9c53e199d14359eee5383f3ca917a3bb1c7e35585e7d263e45dd81");
    assert_eq!(slot(&vm, 7), Some(hash(key)));
    let inst = cache.get_blob(&key).and_then(Cap::as_instance).unwrap();
    assert_eq!(inst.root_cnode, hash(hx("e1ecc8e7c52dccd343565ace58dfc0e49cc43858075b60618da83b78ca4f83b4")));
    assert_eq!(inst.mem_size, 0x2000);
}
