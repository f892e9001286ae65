//! JCAP-1: the canonical encoding of caps and the cap hash (KSPEC-1 §3.2, §3.3).
//!
//! `cap_hash(cap) = Blake2b-256("JCAP" ‖ 0x01 ‖ tag ‖ body)`. The encoder writes into any
//! [`Sink`], so hashing streams the body without building it in memory first.

use std::fmt;

use crate::cap::{CNodeCap, Cap, CapHashOrRef, CapKind, DataCap, ImageCap, ImageSlotEntry, InstanceCap, TypeCap};
use crate::hash::{Blake2b256, Hash};
use crate::MAX_ENDPOINTS;

/// The four magic bytes that start every JCAP-1 encoding (KSPEC-1 §3.3).
pub const JCAP_MAGIC: [u8; 4] = *b"JCAP";

/// The JCAP version byte; any change to the format bumps it (KSPEC-1 §3, §3.3).
pub const JCAP_VERSION: u8 = 0x01;

/// Why a cap has no JCAP-1 encoding (KSPEC-1 §3.2, §3.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EncodeError {
    /// A cnode slot holds a reference form; settle it first (§3.3, §4.5).
    RefInCNode {
        /// The slot holding the reference.
        slot: u32,
    },
    /// An Instance's `root_cnode` is a reference form; settle it first (§2.6, §3.3).
    RefRootCNode,
    /// The format writes exactly 64 endpoint records (§3.3).
    EndpointCount {
        /// How many the Image has.
        found: usize,
    },
    /// A mapping's source path is longer than its u8 length field can say (§3.3).
    SourcePathTooLong {
        /// Position of the mapping in the Image.
        mapping: usize,
        /// Its number of steps.
        len: usize,
    },
    /// A length or count does not fit its u32 prefix (§3.2).
    LengthOverflow {
        /// Which field.
        field: &'static str,
        /// The length that does not fit.
        len: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::RefInCNode { slot } => {
                write!(f, "cnode slot {slot} holds a reference form; settle it before hashing")
            }
            EncodeError::RefRootCNode => {
                f.write_str("instance root cnode is a reference form; settle it before hashing")
            }
            EncodeError::EndpointCount { found } => {
                write!(f, "image has {found} endpoint records, JCAP-1 encodes exactly {MAX_ENDPOINTS}")
            }
            EncodeError::SourcePathTooLong { mapping, len } => {
                write!(f, "mapping {mapping} has a source path of {len} steps, more than a u8 length can encode")
            }
            EncodeError::LengthOverflow { field, len } => {
                write!(f, "{field} has length {len}, which does not fit a u32 prefix")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// Where the encoder writes bytes: a buffer or a running hash (KSPEC-1 §3.3).
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Blake2b256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// The full JCAP-1 encoding: `"JCAP" ‖ 0x01 ‖ tag ‖ body` (KSPEC-1 §3.3).
pub fn encode_jcap1(cap: &Cap) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    write_jcap1(cap, &mut out)?;
    Ok(out)
}

/// The JCAP-1 cap hash: Blake2b-256 of [`encode_jcap1`] (KSPEC-1 §3.3).
pub fn cap_hash(cap: &Cap) -> Result<Hash, EncodeError> {
    let mut hasher = Blake2b256::new();
    write_jcap1(cap, &mut hasher)?;
    Ok(hasher.finalize())
}

/// Writes the full JCAP-1 encoding of `cap` into `out`. On error, `out` may hold a partial
/// encoding and should be discarded (KSPEC-1 §3.3).
pub fn write_jcap1<S: Sink>(cap: &Cap, out: &mut S) -> Result<(), EncodeError> {
    check_encodable(cap)?;
    out.put(&JCAP_MAGIC);
    out.put(&[JCAP_VERSION, cap.kind().tag()]);
    match cap {
        Cap::Data(d) => write_data(d, out),
        Cap::CNode(c) => write_cnode(c, out),
        Cap::Image(i) => write_image(i, out),
        Cap::Instance(i) => write_instance(i, out),
        Cap::Type(t) => write_type(t, out),
    }
    Ok(())
}

/// Every reason encoding could fail, checked before the first byte is written.
fn check_encodable(cap: &Cap) -> Result<(), EncodeError> {
    match cap {
        Cap::Data(_) | Cap::Type(_) => Ok(()),
        Cap::CNode(c) => {
            if let Some((slot, _)) = c.slots.iter().find(|(_, t)| matches!(t, CapHashOrRef::Ref(_))) {
                return Err(EncodeError::RefInCNode { slot: *slot });
            }
            len_u32("cnode slot count", c.slots.len())?;
            Ok(())
        }
        Cap::Image(i) => {
            if i.endpoints.len() != MAX_ENDPOINTS {
                return Err(EncodeError::EndpointCount { found: i.endpoints.len() });
            }
            len_u32("image code", i.code.len())?;
            len_u32("image bitmask", i.bitmask.len())?;
            len_u32("image jump table", i.jump_table.len())?;
            len_u32("image mapping count", i.mappings.len())?;
            len_u32("image pinned count", i.pinned.len())?;
            len_u32("image initial count", i.initial.len())?;
            for (mapping, m) in i.mappings.iter().enumerate() {
                if u8::try_from(m.source_path.len()).is_err() {
                    return Err(EncodeError::SourcePathTooLong { mapping, len: m.source_path.len() });
                }
            }
            Ok(())
        }
        Cap::Instance(i) => {
            if matches!(i.root_cnode, CapHashOrRef::Ref(_)) {
                return Err(EncodeError::RefRootCNode);
            }
            len_u32("instance overlay count", i.rw_overlays.len())?;
            for o in &i.rw_overlays {
                len_u32("instance overlay bytes", o.bytes.len())?;
            }
            Ok(())
        }
    }
}

fn len_u32(field: &'static str, len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::LengthOverflow { field, len })
}

// The writers below run only after `check_encodable`, so every length fits its prefix.
fn put_u32<S: Sink>(out: &mut S, v: u32) {
    out.put(&v.to_le_bytes());
}

fn put_u64<S: Sink>(out: &mut S, v: u64) {
    out.put(&v.to_le_bytes());
}

fn put_count<S: Sink>(out: &mut S, n: usize) {
    put_u32(out, n as u32);
}

fn put_bytes<S: Sink>(out: &mut S, bytes: &[u8]) {
    put_count(out, bytes.len());
    out.put(bytes);
}

fn write_data<S: Sink>(d: &DataCap, out: &mut S) {
    put_u64(out, d.content.len() as u64);
    out.put(&d.content);
}

fn write_cnode<S: Sink>(c: &CNodeCap, out: &mut S) {
    out.put(&[c.size_log]);
    put_count(out, c.slots.len());
    for (slot, target) in &c.slots {
        put_u32(out, *slot);
        if let CapHashOrRef::Hash(h) = target {
            out.put(h);
        }
    }
}

fn write_slot_entries<S: Sink>(entries: &[ImageSlotEntry], out: &mut S) {
    put_count(out, entries.len());
    for e in entries {
        put_u32(out, e.slot.0);
        out.put(&e.cap_hash);
    }
}

fn write_image<S: Sink>(i: &ImageCap, out: &mut S) {
    put_bytes(out, &i.code);
    put_bytes(out, &i.bitmask);
    put_count(out, i.jump_table.len());
    for t in &i.jump_table {
        put_u32(out, *t);
    }
    put_count(out, i.endpoints.len());
    for e in &i.endpoints {
        put_u64(out, e.entry_pc);
        put_u64(out, e.stack_top);
        put_u32(out, e.arg_cnode_slot);
        out.put(&[e.arg_cnode_size]);
        for r in &e.initial_regs {
            put_u64(out, *r);
        }
    }
    put_count(out, i.mappings.len());
    for m in &i.mappings {
        put_u64(out, m.start);
        put_u64(out, m.size);
        out.put(&[m.source_path.len() as u8]);
        for step in &m.source_path {
            put_u32(out, step.0);
        }
    }
    write_slot_entries(&i.pinned, out);
    write_slot_entries(&i.initial, out);
    match i.yield_marker_slot {
        None => out.put(&[0x00]),
        Some(s) => {
            out.put(&[0x01]);
            put_u32(out, s.0);
        }
    }
}

fn write_instance<S: Sink>(i: &InstanceCap, out: &mut S) {
    out.put(&i.image_hash_chain);
    out.put(&i.image_hash);
    if let CapHashOrRef::Hash(h) = &i.root_cnode {
        out.put(h);
    }
    put_count(out, i.rw_overlays.len());
    for o in &i.rw_overlays {
        put_u32(out, o.start);
        put_bytes(out, &o.bytes);
    }
    put_u32(out, i.mem_size);
    for r in &i.regs {
        put_u64(out, *r);
    }
    put_u64(out, i.pc);
    put_u64(out, i.gas_remaining);
}

fn write_type<S: Sink>(t: &TypeCap, out: &mut S) {
    out.put(&t.image_hash_chain);
}

/// The kind a JCAP-1 tag byte stands for, if any (KSPEC-1 §3.3).
pub fn kind_of_tag(tag: u8) -> Option<CapKind> {
    [CapKind::Instance, CapKind::Image, CapKind::Data, CapKind::CNode, CapKind::Type]
        .into_iter()
        .find(|k| k.tag() == tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::{CapRef, EndpointDef, MemoryMapping, RwOverlay, SlotIdx};
    use crate::hash::blake2b256;
    use std::collections::BTreeMap;

    fn header(tag: u8) -> Vec<u8> {
        let mut v = b"JCAP".to_vec();
        v.push(0x01);
        v.push(tag);
        v
    }

    fn cnode(size_log: u8, slots: &[(u32, CapHashOrRef)]) -> Cap {
        Cap::CNode(CNodeCap { size_log, slots: slots.iter().copied().collect::<BTreeMap<_, _>>() })
    }

    #[test]
    fn hash_is_blake2b256_of_encoding_for_every_kind() {
        let caps: Vec<Cap> = vec![
            DataCap::padded(b"x").into(),
            cnode(4, &[(2, CapHashOrRef::Hash([0xAA; 32]))]),
            ImageCap::empty().into(),
            InstanceCap::new([1; 32], [2; 32], CapHashOrRef::Hash([3; 32])).into(),
            TypeCap { image_hash_chain: [4; 32] }.into(),
        ];
        for cap in &caps {
            let bytes = encode_jcap1(cap).unwrap();
            assert_eq!(&bytes[..6], &header(cap.kind().tag())[..]);
            assert_eq!(cap_hash(cap).unwrap(), blake2b256(&bytes));
        }
    }

    #[test]
    fn tags_round_trip() {
        for k in [CapKind::Instance, CapKind::Image, CapKind::Data, CapKind::CNode, CapKind::Type] {
            assert_eq!(kind_of_tag(k.tag()), Some(k));
        }
        assert_eq!(kind_of_tag(0x00), None);
        assert_eq!(kind_of_tag(0x60), None);
    }

    #[test]
    fn type_body_is_the_chain() {
        let mut want = header(0x50);
        want.extend_from_slice(&[0x42; 32]);
        assert_eq!(encode_jcap1(&TypeCap { image_hash_chain: [0x42; 32] }.into()).unwrap(), want);
    }

    #[test]
    fn zero_length_data_encodes_a_zero_u64_length() {
        let mut want = header(0x30);
        want.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(encode_jcap1(&DataCap::default().into()).unwrap(), want);
    }

    #[test]
    fn data_length_is_u64_with_no_second_prefix() {
        let d = DataCap::padded(b"hi");
        let bytes = encode_jcap1(&d.clone().into()).unwrap();
        assert_eq!(bytes.len(), 6 + 8 + 4096);
        assert_eq!(&bytes[6..14], &4096u64.to_le_bytes());
        assert_eq!(&bytes[14..], &d.content[..]);
    }

    #[test]
    fn trailing_zeros_are_significant() {
        let one_page = DataCap::padded(b"hi");
        let mut two_pages = one_page.clone();
        two_pages.content.resize(8192, 0);
        assert_ne!(cap_hash(&one_page.into()).unwrap(), cap_hash(&two_pages.into()).unwrap());
    }

    #[test]
    fn cnode_layout_lists_populated_slots_ascending() {
        let c = cnode(4, &[(9, CapHashOrRef::Hash([0xBB; 32])), (2, CapHashOrRef::Hash([0xAA; 32]))]);
        let mut want = header(0x40);
        want.push(4);
        want.extend_from_slice(&2u32.to_le_bytes());
        want.extend_from_slice(&2u32.to_le_bytes());
        want.extend_from_slice(&[0xAA; 32]);
        want.extend_from_slice(&9u32.to_le_bytes());
        want.extend_from_slice(&[0xBB; 32]);
        assert_eq!(encode_jcap1(&c).unwrap(), want);
    }

    #[test]
    fn cnode_hash_does_not_depend_on_insertion_order() {
        let mut a = CNodeCap { size_log: 8, slots: BTreeMap::new() };
        a.slots.insert(200, CapHashOrRef::Hash([1; 32]));
        a.slots.insert(3, CapHashOrRef::Hash([2; 32]));
        let mut b = CNodeCap { size_log: 8, slots: BTreeMap::new() };
        b.slots.insert(3, CapHashOrRef::Hash([2; 32]));
        b.slots.insert(200, CapHashOrRef::Hash([1; 32]));
        assert_eq!(cap_hash(&a.into()).unwrap(), cap_hash(&b.into()).unwrap());
    }

    #[test]
    fn cnode_size_log_is_part_of_the_hash() {
        assert_ne!(cap_hash(&cnode(3, &[])).unwrap(), cap_hash(&cnode(4, &[])).unwrap());
    }

    #[test]
    fn maximum_cnode_size_encodes_its_last_slot() {
        let c = cnode(16, &[(0, CapHashOrRef::Hash([1; 32])), (65535, CapHashOrRef::Hash([2; 32]))]);
        let bytes = encode_jcap1(&c).unwrap();
        assert_eq!(bytes[6], 16);
        assert_eq!(bytes.len(), 6 + 1 + 4 + 2 * 36);
        assert_eq!(&bytes[bytes.len() - 36..bytes.len() - 32], &65535u32.to_le_bytes());
    }

    #[test]
    fn full_cnode_of_65536_slots_encodes() {
        let slots: BTreeMap<u32, CapHashOrRef> = (0..1u32 << 16).map(|i| (i, CapHashOrRef::Hash([7; 32]))).collect();
        let c = Cap::CNode(CNodeCap { size_log: 16, slots });
        assert_eq!(encode_jcap1(&c).unwrap().len(), 6 + 1 + 4 + 65536 * 36);
    }

    #[test]
    fn cnode_with_ref_target_cannot_be_encoded() {
        let c = cnode(4, &[(1, CapHashOrRef::Hash([0; 32])), (3, CapHashOrRef::Ref(CapRef(1)))]);
        assert_eq!(encode_jcap1(&c), Err(EncodeError::RefInCNode { slot: 3 }));
        assert_eq!(cap_hash(&c), Err(EncodeError::RefInCNode { slot: 3 }));
    }

    #[test]
    fn instance_with_ref_root_cannot_be_encoded() {
        let i = InstanceCap::new([0; 32], [0; 32], CapHashOrRef::Ref(CapRef(5)));
        assert_eq!(cap_hash(&i.into()), Err(EncodeError::RefRootCNode));
    }

    #[test]
    fn image_always_encodes_64_endpoint_records() {
        let img = ImageCap::empty();
        let bytes = encode_jcap1(&img.into()).unwrap();
        // code, bitmask, jump table: three empty u32 prefixes; then the endpoint count.
        assert_eq!(&bytes[6..18], &[0u8; 12]);
        assert_eq!(&bytes[18..22], &64u32.to_le_bytes());
        let endpoint_len = 8 + 8 + 4 + 1 + 13 * 8;
        // endpoints, then mapping, pinned and initial counts (0), then the None tag.
        assert_eq!(bytes.len(), 22 + 64 * endpoint_len + 4 + 4 + 4 + 1);
        assert_eq!(*bytes.last().unwrap(), 0x00);
    }

    #[test]
    fn image_with_other_than_64_endpoints_cannot_be_encoded() {
        for n in [0usize, 1, 63, 65] {
            let mut img = ImageCap::empty();
            img.endpoints.resize(n, EndpointDef::default());
            assert_eq!(cap_hash(&img.into()), Err(EncodeError::EndpointCount { found: n }));
        }
    }

    #[test]
    fn each_endpoint_field_is_hashed() {
        let base = cap_hash(&ImageCap::empty().into()).unwrap();
        let edits: [fn(&mut EndpointDef); 5] = [
            |e| e.entry_pc = 1,
            |e| e.stack_top = 1,
            |e| e.arg_cnode_slot = 1,
            |e| e.arg_cnode_size = 1,
            |e| e.initial_regs[12] = 1,
        ];
        let mut seen = vec![base];
        for edit in edits {
            let mut img = ImageCap::empty();
            edit(&mut img.endpoints[63]);
            let h = cap_hash(&img.into()).unwrap();
            assert!(!seen.contains(&h));
            seen.push(h);
        }
    }

    #[test]
    fn endpoint_record_layout() {
        let mut img = ImageCap::empty();
        img.endpoints[0] = EndpointDef {
            entry_pc: 0x0102,
            stack_top: 0x0304,
            arg_cnode_slot: 0x05,
            arg_cnode_size: 0x06,
            initial_regs: [0x07; 13],
        };
        let bytes = encode_jcap1(&img.into()).unwrap();
        let rec = &bytes[22..22 + 125];
        assert_eq!(&rec[0..8], &0x0102u64.to_le_bytes());
        assert_eq!(&rec[8..16], &0x0304u64.to_le_bytes());
        assert_eq!(&rec[16..20], &5u32.to_le_bytes());
        assert_eq!(rec[20], 6);
        assert_eq!(&rec[21..29], &7u64.to_le_bytes());
    }

    #[test]
    fn image_tail_layout_mappings_entries_and_yield_slot() {
        let mut img = ImageCap::empty();
        img.mappings.push(MemoryMapping { start: 0x1000, size: 0x2000, source_path: vec![SlotIdx(5), SlotIdx(6)] });
        img.pinned.push(ImageSlotEntry { slot: SlotIdx(1), cap_hash: [0x11; 32] });
        img.initial.push(ImageSlotEntry { slot: SlotIdx(7), cap_hash: [0x77; 32] });
        img.yield_marker_slot = Some(SlotIdx(9));
        let bytes = encode_jcap1(&img.into()).unwrap();
        let tail_start = 22 + 64 * 125;
        let mut want = Vec::new();
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&0x1000u64.to_le_bytes());
        want.extend_from_slice(&0x2000u64.to_le_bytes());
        want.push(2); // live steps only, no padding to 8
        want.extend_from_slice(&5u32.to_le_bytes());
        want.extend_from_slice(&6u32.to_le_bytes());
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&[0x11; 32]);
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&7u32.to_le_bytes());
        want.extend_from_slice(&[0x77; 32]);
        want.push(0x01);
        want.extend_from_slice(&9u32.to_le_bytes());
        assert_eq!(&bytes[tail_start..], &want[..]);
    }

    #[test]
    fn yield_slot_zero_differs_from_none() {
        let mut some0 = ImageCap::empty();
        some0.yield_marker_slot = Some(SlotIdx(0));
        assert_ne!(cap_hash(&some0.into()).unwrap(), cap_hash(&ImageCap::empty().into()).unwrap());
    }

    #[test]
    fn source_path_longer_than_255_cannot_be_encoded() {
        let mut img = ImageCap::empty();
        img.mappings.push(MemoryMapping { start: 0, size: 0, source_path: vec![SlotIdx(0); 255] });
        assert!(cap_hash(&img.clone().into()).is_ok());
        img.mappings.push(MemoryMapping { start: 0, size: 0, source_path: vec![SlotIdx(0); 256] });
        assert_eq!(cap_hash(&img.into()), Err(EncodeError::SourcePathTooLong { mapping: 1, len: 256 }));
    }

    #[test]
    fn instance_layout() {
        let mut inst = InstanceCap::new([0xC1; 32], [0xC2; 32], CapHashOrRef::Hash([0xC3; 32]));
        inst.rw_overlays.push(RwOverlay { start: 0x2000, bytes: vec![9, 8] });
        inst.mem_size = 0x3000;
        inst.regs[0] = 1;
        inst.regs[12] = 13;
        inst.pc = 0x55;
        inst.gas_remaining = 0x66;
        let bytes = encode_jcap1(&inst.into()).unwrap();
        let mut want = header(0x10);
        want.extend_from_slice(&[0xC1; 32]);
        want.extend_from_slice(&[0xC2; 32]);
        want.extend_from_slice(&[0xC3; 32]);
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&0x2000u32.to_le_bytes());
        want.extend_from_slice(&2u32.to_le_bytes());
        want.extend_from_slice(&[9, 8]);
        want.extend_from_slice(&0x3000u32.to_le_bytes());
        for r in [1u64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13] {
            want.extend_from_slice(&r.to_le_bytes());
        }
        want.extend_from_slice(&0x55u64.to_le_bytes());
        want.extend_from_slice(&0x66u64.to_le_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn overlay_order_is_kept_not_sorted() {
        let a = RwOverlay { start: 0x1000, bytes: vec![1] };
        let b = RwOverlay { start: 0x2000, bytes: vec![2] };
        let mut i1 = InstanceCap::new([0; 32], [0; 32], CapHashOrRef::Hash([0; 32]));
        i1.rw_overlays = vec![a.clone(), b.clone()];
        let mut i2 = i1.clone();
        i2.rw_overlays = vec![b, a];
        assert_ne!(cap_hash(&i1.into()).unwrap(), cap_hash(&i2.into()).unwrap());
    }

    #[test]
    fn kinds_with_equal_bodies_hash_differently() {
        // A Type body and an Instance prefix can share bytes; the tag separates them.
        let t = cap_hash(&TypeCap { image_hash_chain: [0; 32] }.into()).unwrap();
        let d = cap_hash(&Cap::Data(DataCap { content: Vec::new() })).unwrap();
        assert_ne!(t, d);
    }
}
