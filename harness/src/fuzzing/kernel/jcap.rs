//! A second JCAP-1 encoder (KSPEC-1 §3.2, §3.3), written out from the spec, so the kernel's
//! cap hashes are checked against an encoding that shares none of its code.

use super::*;

// ---------------------------------------------------------------------------------------------
// JCAP-1, written out from KSPEC-1 §3.2 and §3.3.

#[derive(Default)]
pub(super) struct Jcap(pub(super) Vec<u8>);

impl Jcap {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.raw(b);
    }
    pub(super) fn count(&mut self, n: usize) {
        self.u32(n as u32);
    }
    pub(super) fn target(&mut self, t: &CapHashOrRef) -> Option<()> {
        match t {
            CapHashOrRef::Hash(h) => {
                self.raw(h);
                Some(())
            }
            CapHashOrRef::Ref(_) => None,
        }
    }
}

/// The JCAP-1 cap hash of `cap`; `None` when it holds a reference form (KSPEC-1 §3.3).
pub(super) fn jcap_hash(cap: &Cap) -> Option<Hash> {
    let mut w = Jcap::default();
    w.raw(b"JCAP");
    w.u8(0x01);
    match cap {
        Cap::Instance(i) => {
            w.u8(0x10);
            w.raw(&i.image_hash_chain);
            w.raw(&i.image_hash);
            w.target(&i.root_cnode)?;
            w.count(i.rw_overlays.len());
            for o in &i.rw_overlays {
                w.u32(o.start);
                w.bytes(&o.bytes);
            }
            w.u32(i.mem_size);
            for r in i.regs {
                w.u64(r);
            }
            w.u64(i.pc);
            w.u64(i.gas_remaining);
        }
        Cap::Image(i) => {
            w.u8(0x20);
            w.bytes(&i.code);
            w.bytes(&i.bitmask);
            w.count(i.jump_table.len());
            for &j in &i.jump_table {
                w.u32(j);
            }
            w.count(i.endpoints.len());
            for e in &i.endpoints {
                w.u64(e.entry_pc);
                w.u64(e.stack_top);
                w.u32(e.arg_cnode_slot);
                w.u8(e.arg_cnode_size);
                for r in e.initial_regs {
                    w.u64(r);
                }
            }
            w.count(i.mappings.len());
            for m in &i.mappings {
                w.u64(m.start);
                w.u64(m.size);
                w.u8(m.source_path.len() as u8);
                for s in &m.source_path {
                    w.u32(s.0);
                }
            }
            for list in [&i.pinned, &i.initial] {
                w.count(list.len());
                for e in list {
                    w.u32(e.slot.0);
                    w.raw(&e.cap_hash);
                }
            }
            match i.yield_marker_slot {
                None => w.u8(0),
                Some(s) => {
                    w.u8(1);
                    w.u32(s.0);
                }
            }
        }
        Cap::Data(d) => {
            w.u8(0x30);
            w.u64(d.content.len() as u64);
            w.raw(&d.content);
        }
        Cap::CNode(c) => {
            w.u8(0x40);
            w.u8(c.size_log);
            w.count(c.slots.len());
            for (s, t) in &c.slots {
                w.u32(*s);
                w.target(t)?;
            }
        }
        Cap::Type(t) => {
            w.u8(0x50);
            w.raw(&t.image_hash_chain);
        }
    }
    Some(blake2b256(&w.0))
}

/// `cap_hash(empty CNode(size_log))`: `"JCAP" ‖ 01 ‖ 40 ‖ size_log ‖ u32 0`.
pub(super) fn empty_cnode_key(size_log: u8) -> Hash {
    let mut b = b"JCAP\x01\x40".to_vec();
    b.push(size_log);
    b.extend_from_slice(&0u32.to_le_bytes());
    blake2b256(&b)
}

/// `hash_pair(a, b) = Blake2b-256(a ‖ b)` (KSPEC-1 §3.4).
pub(super) fn pair(a: &Hash, b: &Hash) -> Hash {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    blake2b256(&v)
}
