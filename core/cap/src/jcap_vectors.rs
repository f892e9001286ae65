//! The 23 JCAP-1 test vectors of KSPEC-1 §3.5, one test each, with the exact digests.

use std::collections::BTreeMap;

use crate::cap::{CNodeCap, Cap, CapHashOrRef, DataCap, ImageCap, ImageSlotEntry, InstanceCap, MemoryMapping};
use crate::cap::{RwOverlay, SlotIdx, TypeCap};
use crate::hash::tests::hx;
use crate::hash::{blake2b256, hash_pair, Hash};
use crate::jcap::cap_hash;

fn h(cap: impl Into<Cap>) -> Hash {
    cap_hash(&cap.into()).expect("vector caps encode")
}

fn pad(s: &[u8]) -> DataCap {
    DataCap::padded(s)
}

fn cnode(size_log: u8, slots: &[(u32, Hash)]) -> CNodeCap {
    CNodeCap { size_log, slots: slots.iter().map(|&(s, t)| (s, CapHashOrRef::Hash(t))).collect::<BTreeMap<_, _>>() }
}

/// Code `[0x0A, 0x00]` (`ecalli 0`), bitmask `[0x01]`, otherwise the empty image.
fn img_halt() -> ImageCap {
    ImageCap::with_code(vec![0x0A, 0x00], vec![0x01])
}

/// IMG_HALT plus mapping {0x1000, 0x1000, [5]} and initial {5: Data pad("init")}.
fn img_map() -> ImageCap {
    let mut img = img_halt();
    img.mappings.push(MemoryMapping { start: 0x1000, size: 0x1000, source_path: vec![SlotIdx(5)] });
    img.initial.push(ImageSlotEntry { slot: SlotIdx(5), cap_hash: h(pad(b"init")) });
    img
}

fn instance(chain: Hash, image: Hash, root: Hash) -> InstanceCap {
    InstanceCap::new(chain, image, CapHashOrRef::Hash(root))
}

#[test]
fn v01_hash_pair_01_02() {
    assert_eq!(
        hash_pair(&[0x01; 32], &[0x02; 32]),
        hx("30b600fb1f0cc0b3f0fc28cdcb7389405a6659be81c7d5c5905725aa3a5119ce")
    );
}

#[test]
fn v02_hash_pair_01_aa() {
    assert_eq!(
        hash_pair(&[0x01; 32], &[0xAA; 32]),
        hx("988ec4dbbff2f435a7de86ec8977c8205e1d682787f3b8b73f615cae7a364672")
    );
}

#[test]
fn v03_type_42() {
    assert_eq!(
        h(TypeCap { image_hash_chain: [0x42; 32] }),
        hx("f7dd2ba573d949725da0a93e2c74c3f9541ba72ef4c0a1c7605abffda9aa112f")
    );
}

#[test]
fn v04_cnode_size_log_0_empty() {
    assert_eq!(h(cnode(0, &[])), hx("c553eb5473e0b1f0a430eb526c383c72f8ca8c01a6aaaf399769d81b884fac86"));
}

#[test]
fn v05_cnode_size_log_3_empty() {
    assert_eq!(h(cnode(3, &[])), hx("45365cad6e982d8969c81c3c92dc35503b56c6420dae5bfb6326965811646f74"));
}

#[test]
fn v06_cnode_size_log_4_empty() {
    assert_eq!(h(cnode(4, &[])), hx("bd57a89a32aa7e540fa42c579cb5a42f405a1467a005c3ee616a8925128ae0ed"));
}

#[test]
fn v07_cnode_size_log_4_slot_2_aa() {
    assert_eq!(h(cnode(4, &[(2, [0xAA; 32])])), hx("2c9cb94ab1858d7ec448e66b3a4de3a8c6395230bed08dd70bc44f81dc96dc9d"));
}

#[test]
fn v08_data_4096_zero_bytes() {
    let d = DataCap { content: vec![0; 4096] };
    assert_eq!(d, pad(b""), "minting zero bytes gives the same page");
    assert_eq!(h(d), hx("b554df6c66c3d922e44410d9d203bbfe8edb8a940b028c8d326aa22170085773"));
}

#[test]
fn v09_data_pad_hello() {
    assert_eq!(h(pad(b"hello")), hx("e8f22b0a84bb5de02aab24228ad22abc641d324498739b6cf019334ef1b63831"));
}

#[test]
fn v10_data_pad_abc_nul_nul() {
    assert_eq!(h(pad(b"abc\0\0")), hx("d08ece57e4cba4bfbb2ee8539fff5a77ca8731ce2a91bb16f0bbf0d6d1ddf25b"));
}

#[test]
fn v11_data_pad_file() {
    assert_eq!(h(pad(b"file")), hx("e89e80fcf8199aeb62f3ea2d610fe5f64e280af4ea32834b9bf7fe6df9647531"));
}

#[test]
fn v12_data_pad_stored() {
    assert_eq!(h(pad(b"stored")), hx("a19cf4837f21707e1fc42203aeac64305f0aacce1fcb72714d90bd3209b093a5"));
}

#[test]
fn v13_empty_image() {
    assert_eq!(h(ImageCap::empty()), hx("9a0f2263bee13d6ceb4d11330d74fc6061c51c33fa9663b51e10300ed592510f"));
}

#[test]
fn v14_img_halt() {
    assert_eq!(h(img_halt()), hx("553f07a70032b34ed8d822740be375f9cc4ae91e0a1669ded046a176d13a846a"));
}

#[test]
fn v15_instance_chain_42_empty_image_cnode_0() {
    let inst = instance([0x42; 32], h(ImageCap::empty()), h(cnode(0, &[])));
    assert_eq!(h(inst), hx("eba627a7789034c7eecaefe2b9654bfde98badfff81d1ea9b963052192eeeb9f"));
}

#[test]
fn v16_hash_pair_c1_img_halt() {
    assert_eq!(
        hash_pair(&[0xC1; 32], &h(img_halt())),
        hx("94df18e75042dc5a15d76aa89d855ad720101246b6668ed8c027ee9cb9b24598")
    );
}

#[test]
fn v17_instance_spawned_from_img_halt() {
    let halt = h(img_halt());
    let inst = instance(hash_pair(&[0xC1; 32], &halt), halt, h(cnode(4, &[])));
    assert_eq!(h(inst), hx("476b9e69dc3346370777dd8c614f41bc299ce22325709d868af326a544f1437a"));
}

#[test]
fn v18_hash_pair_01_img_halt() {
    assert_eq!(
        hash_pair(&[0x01; 32], &h(img_halt())),
        hx("bc5a5b3269b6e4505c5539b22e6db01a535b0ad03c921d883c3e1be3bfa5771f")
    );
}

#[test]
fn v19_instance_chain_cc_img_halt() {
    let inst = instance([0xCC; 32], h(img_halt()), h(cnode(4, &[])));
    assert_eq!(h(inst), hx("9accfaccf66760a5db64bac6e18f75631d8ec2940607dab08b78d3a6ccaee175"));
}

#[test]
fn v20_img_map() {
    assert_eq!(h(img_map()), hx("d5b6c99ad40fe91fd209047e501cd51999e1d9040cc28199df42090bed39ab89"));
}

#[test]
fn v21_cnode_size_log_4_slot_5_init() {
    assert_eq!(
        h(cnode(4, &[(5, h(pad(b"init")))])),
        hx("e1ecc8e7c52dccd343565ace58dfc0e49cc43858075b60618da83b78ca4f83b4")
    );
}

#[test]
fn v22_instance_spawned_from_img_map() {
    let map = h(img_map());
    let mut inst = instance(hash_pair(&[0xC1; 32], &map), map, h(cnode(4, &[(5, h(pad(b"init")))])));
    inst.rw_overlays.push(RwOverlay { start: 0x1000, bytes: pad(b"init").content });
    inst.mem_size = 0x2000;
    assert_eq!(h(inst), hx("0b54d0f9bf9c53e199d14359eee5383f3ca917a3bb1c7e35585e7d263e45dd81"));
}

#[test]
fn v23_yield_catcher_nonce_0() {
    assert_eq!(blake2b256(&0u64.to_le_bytes()), hx("81e47a19e6b29b0a65b9591762ce5143ed30d0261e5d24a3201752506b20f15c"));
}
