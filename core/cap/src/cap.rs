//! The five cap kinds and the slot-target type (KSPEC-1 §1, §2).
//!
//! Every kind is a plain value; its identity is the JCAP-1 hash of its canonical encoding
//! ([`crate::jcap`]). Fields are public so that embedders and vectors can build any value,
//! including ones that put validation ([`validate`](mod@crate::validate)) rejects.

use std::collections::BTreeMap;
use std::fmt;

use crate::hash::{to_hex, Hash};
use crate::{NUM_REGS, PAGE_SIZE};

/// An index into a cnode (KSPEC-1 §1). It fits a cnode when `idx < 2^size_log`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct SlotIdx(pub u32);

impl SlotIdx {
    /// The slot an ecall operand register names: its low 8 bits, higher bits ignored
    /// (KSPEC-1 §1, §9.2).
    pub fn from_reg(value: u64) -> Self {
        SlotIdx((value & 0xFF) as u32)
    }

    /// The raw index (KSPEC-1 §1).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SlotIdx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u32> for SlotIdx {
    fn from(v: u32) -> Self {
        SlotIdx(v)
    }
}

/// A handle into the cache's working tier. Issued from 1 upwards, never 0, never reused
/// (KSPEC-1 §1, §4.2).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CapRef(pub u64);

impl fmt::Display for CapRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ref#{}", self.0)
    }
}

/// A slot target: an immutable blob named by its hash, or a mutable working entry named by a
/// cache-local reference that must be settled before it can be hashed (KSPEC-1 §2.2).
///
/// Equality is by form and then by value: a hash form never equals a reference form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum CapHashOrRef {
    /// Names a cap in the blob tier by its JCAP-1 cap hash.
    Hash(Hash),
    /// Names an entry in the working tier of one cache.
    Ref(CapRef),
}

impl CapHashOrRef {
    /// The hash, if this is the hash form (KSPEC-1 §2.2).
    pub fn as_hash(&self) -> Option<&Hash> {
        match self {
            CapHashOrRef::Hash(h) => Some(h),
            CapHashOrRef::Ref(_) => None,
        }
    }

    /// The reference, if this is the reference form (KSPEC-1 §2.2).
    pub fn as_cap_ref(&self) -> Option<CapRef> {
        match self {
            CapHashOrRef::Hash(_) => None,
            CapHashOrRef::Ref(r) => Some(*r),
        }
    }
}

impl fmt::Display for CapHashOrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapHashOrRef::Hash(h) => f.write_str(&to_hex(h)),
            CapHashOrRef::Ref(r) => write!(f, "{r}"),
        }
    }
}

impl From<Hash> for CapHashOrRef {
    fn from(h: Hash) -> Self {
        CapHashOrRef::Hash(h)
    }
}

impl From<CapRef> for CapHashOrRef {
    fn from(r: CapRef) -> Self {
        CapHashOrRef::Ref(r)
    }
}

/// The kind of a cap, with its JCAP-1 tag byte (KSPEC-1 §2.1, §3.3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum CapKind {
    /// Tag 0x10.
    Instance,
    /// Tag 0x20.
    Image,
    /// Tag 0x30.
    Data,
    /// Tag 0x40.
    CNode,
    /// Tag 0x50.
    Type,
}

impl CapKind {
    /// The JCAP-1 tag byte (KSPEC-1 §3.3).
    pub fn tag(self) -> u8 {
        match self {
            CapKind::Instance => 0x10,
            CapKind::Image => 0x20,
            CapKind::Data => 0x30,
            CapKind::CNode => 0x40,
            CapKind::Type => 0x50,
        }
    }
}

impl fmt::Display for CapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapKind::Instance => "Instance",
            CapKind::Image => "Image",
            CapKind::Data => "Data",
            CapKind::CNode => "CNode",
            CapKind::Type => "Type",
        })
    }
}

/// A byte string whose length (a multiple of 4096) is the cap's size; trailing zeros are part of
/// the value (KSPEC-1 §2.3).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct DataCap {
    /// The whole content, padding included.
    pub content: Vec<u8>,
}

impl DataCap {
    /// The minted content length for `n` input bytes: `max(ceil(n / 4096) * 4096, 4096)`, so zero
    /// bytes still give one page. `None` when that does not fit a u64 (KSPEC-1 §2.3, §9.5.8).
    pub fn padded_len(n: u64) -> Option<u64> {
        let pages = n.div_ceil(PAGE_SIZE).max(1);
        pages.checked_mul(PAGE_SIZE)
    }

    /// Mints a Data cap from `bytes`, zero-padded to [`DataCap::padded_len`] (KSPEC-1 §2.3).
    pub fn padded(bytes: &[u8]) -> Self {
        let page = PAGE_SIZE as usize;
        let len = bytes.len().div_ceil(page).max(1) * page;
        let mut content = Vec::with_capacity(len);
        content.extend_from_slice(bytes);
        content.resize(len, 0);
        DataCap { content }
    }

    /// The cap's size in bytes: its content length (KSPEC-1 §2.3).
    pub fn len(&self) -> u64 {
        self.content.len() as u64
    }

    /// Whether the content is empty (valid, though V1 never produces one) (KSPEC-1 §2.3).
    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
    }
}

/// A cnode: `2^size_log` slots of which only the populated ones are stored. Slot access,
/// bounds and pinning are in [`crate::cnode`] (KSPEC-1 §2.4, §5).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct CNodeCap {
    /// log2 of the capacity; valid values are 0..=16.
    pub size_log: u8,
    /// Populated slots only, keyed by slot index.
    pub slots: BTreeMap<u32, CapHashOrRef>,
}

/// One endpoint record of an Image. V1 reads only `entry_pc` and `initial_regs`; the rest is
/// hashed and otherwise unused (KSPEC-1 §2.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct EndpointDef {
    /// Where execution starts when the endpoint is entered.
    pub entry_pc: u64,
    /// Hashed only.
    pub stack_top: u64,
    /// Hashed only.
    pub arg_cnode_slot: u32,
    /// Hashed only.
    pub arg_cnode_size: u8,
    /// Default registers on entry.
    pub initial_regs: [u64; NUM_REGS],
}

/// A memory mapping of an Image: a page-aligned range and the slot path of its source; V1 only
/// resolves `source_path[0]` (KSPEC-1 §2.5).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct MemoryMapping {
    /// Start address; a multiple of 4096.
    pub start: u64,
    /// Size in bytes; a multiple of 4096 (0 allowed).
    pub size: u64,
    /// Up to [`crate::MAX_SOURCE_DEPTH`] slot steps.
    pub source_path: Vec<SlotIdx>,
}

/// A pinned or initial slot entry of an Image; the target is always in hash form
/// (KSPEC-1 §2.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ImageSlotEntry {
    /// The slot.
    pub slot: SlotIdx,
    /// The target's cap hash.
    pub cap_hash: Hash,
}

/// Code plus everything needed to enter and spawn it (KSPEC-1 §2.5).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ImageCap {
    /// PVM bytecode; put never decodes it.
    pub code: Vec<u8>,
    /// Packed instruction-start bitmask, LSB first.
    pub bitmask: Vec<u8>,
    /// Dynamic-jump targets.
    pub jump_table: Vec<u32>,
    /// Exactly [`crate::MAX_ENDPOINTS`] records, indexed by endpoint number.
    pub endpoints: Vec<EndpointDef>,
    /// Mappings used to build a spawned child's overlays.
    pub mappings: Vec<MemoryMapping>,
    /// Slots read-only while this image runs; strictly ascending by slot.
    pub pinned: Vec<ImageSlotEntry>,
    /// Default slot contents of a spawned child; strictly ascending by slot.
    pub initial: Vec<ImageSlotEntry>,
    /// The slot that holds the yield-catcher hash, if any.
    pub yield_marker_slot: Option<SlotIdx>,
}

impl ImageCap {
    /// The "empty image": no code, bitmask or jump table, 64 all-zero endpoints, no mappings, no
    /// pinned or initial entries, no yield slot (KSPEC-1 §3.5).
    pub fn empty() -> Self {
        ImageCap {
            code: Vec::new(),
            bitmask: Vec::new(),
            jump_table: Vec::new(),
            endpoints: vec![EndpointDef::default(); crate::MAX_ENDPOINTS],
            mappings: Vec::new(),
            pinned: Vec::new(),
            initial: Vec::new(),
            yield_marker_slot: None,
        }
    }

    /// The empty image with the given code and bitmask (KSPEC-1 §3.5).
    pub fn with_code(code: Vec<u8>, bitmask: Vec<u8>) -> Self {
        ImageCap { code, bitmask, ..ImageCap::empty() }
    }
}

/// Memory laid over an Instance's base region on entry (KSPEC-1 §2.6).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct RwOverlay {
    /// Page-aligned start address.
    pub start: u32,
    /// The overlay content.
    pub bytes: Vec<u8>,
}

/// A running or runnable instance of an Image (KSPEC-1 §2.6).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct InstanceCap {
    /// The lineage chain hash, i.e. the type identity (§3.4).
    pub image_hash_chain: Hash,
    /// Cap hash of the bound Image.
    pub image_hash: Hash,
    /// The root cnode; must be in hash form when encoded.
    pub root_cnode: CapHashOrRef,
    /// Overlays in the order they were produced (mapping order).
    pub rw_overlays: Vec<RwOverlay>,
    /// The base read/write region is `[0, round_up(mem_size, 4096))`.
    pub mem_size: u32,
    /// Persisted registers; a non-zero entry overrides the endpoint default.
    pub regs: [u64; NUM_REGS],
    /// Informational.
    pub pc: u64,
    /// Informational.
    pub gas_remaining: u64,
}

impl InstanceCap {
    /// An instance with the given chain, image and root cnode, no overlays, and zero memory size,
    /// registers, pc and gas (KSPEC-1 §2.6).
    pub fn new(image_hash_chain: Hash, image_hash: Hash, root_cnode: CapHashOrRef) -> Self {
        InstanceCap {
            image_hash_chain,
            image_hash,
            root_cnode,
            rw_overlays: Vec::new(),
            mem_size: 0,
            regs: [0; NUM_REGS],
            pc: 0,
            gas_remaining: 0,
        }
    }
}

/// A type identity: two instances of one lineage give equal Type caps (KSPEC-1 §2.7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TypeCap {
    /// The lineage chain this type stands for.
    pub image_hash_chain: Hash,
}

/// A cap of any kind (KSPEC-1 §2.1).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Cap {
    /// See [`DataCap`].
    Data(DataCap),
    /// See [`CNodeCap`].
    CNode(CNodeCap),
    /// See [`ImageCap`].
    Image(ImageCap),
    /// See [`InstanceCap`].
    Instance(InstanceCap),
    /// See [`TypeCap`].
    Type(TypeCap),
}

impl Cap {
    /// The kind of this cap (KSPEC-1 §2.1).
    pub fn kind(&self) -> CapKind {
        match self {
            Cap::Data(_) => CapKind::Data,
            Cap::CNode(_) => CapKind::CNode,
            Cap::Image(_) => CapKind::Image,
            Cap::Instance(_) => CapKind::Instance,
            Cap::Type(_) => CapKind::Type,
        }
    }

    /// The Data cap, if this is one.
    pub fn as_data(&self) -> Option<&DataCap> {
        match self {
            Cap::Data(d) => Some(d),
            _ => None,
        }
    }

    /// The CNode cap, if this is one.
    pub fn as_cnode(&self) -> Option<&CNodeCap> {
        match self {
            Cap::CNode(c) => Some(c),
            _ => None,
        }
    }

    /// The Image cap, if this is one.
    pub fn as_image(&self) -> Option<&ImageCap> {
        match self {
            Cap::Image(i) => Some(i),
            _ => None,
        }
    }

    /// The Instance cap, if this is one.
    pub fn as_instance(&self) -> Option<&InstanceCap> {
        match self {
            Cap::Instance(i) => Some(i),
            _ => None,
        }
    }

    /// The Type cap, if this is one.
    pub fn as_type(&self) -> Option<&TypeCap> {
        match self {
            Cap::Type(t) => Some(t),
            _ => None,
        }
    }
}

impl From<DataCap> for Cap {
    fn from(c: DataCap) -> Self {
        Cap::Data(c)
    }
}

impl From<CNodeCap> for Cap {
    fn from(c: CNodeCap) -> Self {
        Cap::CNode(c)
    }
}

impl From<ImageCap> for Cap {
    fn from(c: ImageCap) -> Self {
        Cap::Image(c)
    }
}

impl From<InstanceCap> for Cap {
    fn from(c: InstanceCap) -> Self {
        Cap::Instance(c)
    }
}

impl From<TypeCap> for Cap {
    fn from(c: TypeCap) -> Self {
        Cap::Type(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_operand_uses_low_byte_only() {
        assert_eq!(SlotIdx::from_reg(0xFFFF_FFFF_FFFF_FF02), SlotIdx(2));
        assert_eq!(SlotIdx::from_reg(255), SlotIdx(255));
        assert_eq!(SlotIdx::from_reg(256), SlotIdx(0));
    }

    #[test]
    fn hash_form_never_equals_ref_form() {
        let h = CapHashOrRef::Hash([0; 32]);
        let r = CapHashOrRef::Ref(CapRef(0));
        assert_ne!(h, r);
        assert_eq!(h, CapHashOrRef::Hash([0; 32]));
        assert_ne!(h, CapHashOrRef::Hash([1; 32]));
        assert_eq!(r, CapHashOrRef::Ref(CapRef(0)));
        assert_ne!(r, CapHashOrRef::Ref(CapRef(1)));
        assert_eq!(h.as_hash(), Some(&[0; 32]));
        assert_eq!(h.as_cap_ref(), None);
        assert_eq!(r.as_cap_ref(), Some(CapRef(0)));
        assert_eq!(r.as_hash(), None);
    }

    #[test]
    fn kind_tags_match_jcap1() {
        assert_eq!(CapKind::Instance.tag(), 0x10);
        assert_eq!(CapKind::Image.tag(), 0x20);
        assert_eq!(CapKind::Data.tag(), 0x30);
        assert_eq!(CapKind::CNode.tag(), 0x40);
        assert_eq!(CapKind::Type.tag(), 0x50);
    }

    #[test]
    fn data_padding_rounds_up_to_whole_pages_minimum_one() {
        assert_eq!(DataCap::padded_len(0), Some(4096));
        assert_eq!(DataCap::padded_len(1), Some(4096));
        assert_eq!(DataCap::padded_len(4095), Some(4096));
        assert_eq!(DataCap::padded_len(4096), Some(4096));
        assert_eq!(DataCap::padded_len(4097), Some(8192));
        assert_eq!(DataCap::padded_len(1 << 40), Some(1 << 40));
        assert_eq!(DataCap::padded_len(u64::MAX), None);
        assert_eq!(DataCap::padded_len(u64::MAX - 4095), Some(u64::MAX - 4095));
        assert_eq!(DataCap::padded_len(u64::MAX - 4094), None);
    }

    #[test]
    fn minting_pads_with_zeros() {
        assert_eq!(DataCap::padded(b"").content, vec![0; 4096]);
        let d = DataCap::padded(b"hi");
        assert_eq!(d.len(), 4096);
        assert_eq!(&d.content[..2], b"hi");
        assert!(d.content[2..].iter().all(|&b| b == 0));
        assert_eq!(DataCap::padded(&[7; 4097]).len(), 8192);
        assert!(DataCap::default().is_empty());
    }

    #[test]
    fn empty_image_has_64_zero_endpoints() {
        let img = ImageCap::empty();
        assert_eq!(img.endpoints.len(), 64);
        assert!(img.endpoints.iter().all(|e| *e == EndpointDef::default()));
        assert!(img.code.is_empty() && img.bitmask.is_empty() && img.jump_table.is_empty());
        assert!(img.pinned.is_empty() && img.initial.is_empty() && img.mappings.is_empty());
        assert_eq!(img.yield_marker_slot, None);
    }

    #[test]
    fn cap_accessors_match_kind() {
        let caps: Vec<Cap> = vec![
            DataCap::padded(b"x").into(),
            CNodeCap::default().into(),
            ImageCap::empty().into(),
            InstanceCap::new([0; 32], [0; 32], CapHashOrRef::Hash([0; 32])).into(),
            TypeCap { image_hash_chain: [0; 32] }.into(),
        ];
        let kinds: Vec<CapKind> = caps.iter().map(Cap::kind).collect();
        assert_eq!(kinds, [CapKind::Data, CapKind::CNode, CapKind::Image, CapKind::Instance, CapKind::Type]);
        assert!(caps[0].as_data().is_some() && caps[0].as_cnode().is_none());
        assert!(caps[1].as_cnode().is_some() && caps[1].as_image().is_none());
        assert!(caps[2].as_image().is_some() && caps[2].as_instance().is_none());
        assert!(caps[3].as_instance().is_some() && caps[3].as_type().is_none());
        assert!(caps[4].as_type().is_some() && caps[4].as_data().is_none());
    }
}
