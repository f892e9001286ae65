//! Put validation: what the cache MUST reject before storing a cap (KSPEC-1 §4.3).
//!
//! Validation needs to know which kinds the blob tier holds (for Image targets and an
//! Instance's image and root cnode), so it takes a lookup from hash to kind. The cache passes its
//! own blob tier plus whatever it is about to insert in the same step.

use std::fmt;

use crate::cap::{CNodeCap, Cap, CapHashOrRef, CapKind, DataCap, ImageCap, ImageSlotEntry, InstanceCap};
use crate::hash::{to_hex, Hash};
use crate::{ADDRESS_SPACE, IMAGE_SLOT_LIMIT, MAX_CNODE_SIZE_LOG, MAX_ENDPOINTS, MAX_SOURCE_DEPTH, PAGE_SIZE};

/// Which slot-entry list of an Image a problem is in (KSPEC-1 §2.5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SlotList {
    /// `pinned`.
    Pinned,
    /// `initial`.
    Initial,
}

impl fmt::Display for SlotList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotList::Pinned => "pinned",
            SlotList::Initial => "initial",
        })
    }
}

/// A put-validation failure (KSPEC-1 §4.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValidationError {
    /// Data content length is not a multiple of 4096.
    DataNotPageMultiple {
        /// The content length.
        len: u64,
    },
    /// CNode `size_log > 16`.
    CNodeSizeLog {
        /// The rejected value.
        size_log: u8,
    },
    /// A populated CNode slot `≥ 2^size_log`.
    CNodeSlotOutOfRange {
        /// The slot.
        slot: u32,
        /// The cnode's size_log.
        size_log: u8,
    },
    /// A CNode slot target in reference form.
    CNodeRefTarget {
        /// The slot.
        slot: u32,
    },
    /// An Image without exactly 64 endpoints.
    EndpointCount {
        /// How many it has.
        found: usize,
    },
    /// An Image mapping whose start is not page-aligned.
    MappingStartUnaligned {
        /// Position of the mapping.
        index: usize,
        /// Its start.
        start: u64,
    },
    /// An Image mapping whose size is not a multiple of 4096.
    MappingSizeUnaligned {
        /// Position of the mapping.
        index: usize,
        /// Its size.
        size: u64,
    },
    /// An Image mapping with `start + size ≥ 2^32`.
    MappingEndTooHigh {
        /// Position of the mapping.
        index: usize,
        /// Its start.
        start: u64,
        /// Its size.
        size: u64,
    },
    /// An Image mapping with more than 8 source-path steps.
    MappingPathTooLong {
        /// Position of the mapping.
        index: usize,
        /// Its number of steps.
        len: usize,
    },
    /// A pinned or initial list not strictly ascending by slot.
    SlotEntriesNotAscending {
        /// Which list.
        list: SlotList,
        /// The first slot that is not above its predecessor.
        slot: u32,
    },
    /// A pinned or initial slot `≥ 2^16`.
    SlotEntryOutOfRange {
        /// Which list.
        list: SlotList,
        /// The slot.
        slot: u32,
    },
    /// A pinned entry for slot 0.
    PinnedSlotZero,
    /// A pinned or initial target missing from the blob tier.
    SlotEntryTargetMissing {
        /// Which list.
        list: SlotList,
        /// The slot.
        slot: u32,
        /// The missing hash.
        target: Hash,
    },
    /// An Image `yield_marker_slot ≥ 2^16`.
    YieldSlotOutOfRange {
        /// The slot.
        slot: u32,
    },
    /// An Instance whose `root_cnode` is in reference form.
    InstanceRootIsRef,
    /// An Instance whose `image_hash` is not a blob of kind Image.
    InstanceImageNotFound {
        /// The image hash.
        hash: Hash,
        /// The kind found under it, if any.
        found: Option<CapKind>,
    },
    /// An Instance whose `root_cnode` is not a blob of kind CNode.
    InstanceRootNotFound {
        /// The root cnode hash.
        hash: Hash,
        /// The kind found under it, if any.
        found: Option<CapKind>,
    },
    /// An Instance overlay whose start is not page-aligned.
    OverlayStartUnaligned {
        /// Position of the overlay.
        index: usize,
        /// Its start.
        start: u32,
    },
    /// An Instance overlay with `start + len > 2^32`.
    OverlayEndTooHigh {
        /// Position of the overlay.
        index: usize,
        /// Its start.
        start: u32,
        /// Its length.
        len: u64,
    },
}

fn found_text(found: &Option<CapKind>) -> String {
    match found {
        Some(k) => format!("a {k}"),
        None => "nothing".to_string(),
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ValidationError as E;
        match self {
            E::DataNotPageMultiple { len } => write!(f, "data length {len} is not a multiple of {PAGE_SIZE}"),
            E::CNodeSizeLog { size_log } => {
                write!(f, "cnode size_log {size_log} exceeds the maximum {MAX_CNODE_SIZE_LOG}")
            }
            E::CNodeSlotOutOfRange { slot, size_log } => {
                write!(f, "cnode slot {slot} is out of range for size_log {size_log}")
            }
            E::CNodeRefTarget { slot } => write!(f, "cnode slot {slot} holds a reference form"),
            E::EndpointCount { found } => write!(f, "image has {found} endpoints, not {MAX_ENDPOINTS}"),
            E::MappingStartUnaligned { index, start } => {
                write!(f, "mapping {index} starts at {start:#x}, which is not page-aligned")
            }
            E::MappingSizeUnaligned { index, size } => {
                write!(f, "mapping {index} has size {size:#x}, which is not a multiple of {PAGE_SIZE}")
            }
            E::MappingEndTooHigh { index, start, size } => {
                write!(f, "mapping {index} ({start:#x} + {size:#x}) does not end below 2^32")
            }
            E::MappingPathTooLong { index, len } => {
                write!(f, "mapping {index} has {len} source-path steps, more than {MAX_SOURCE_DEPTH}")
            }
            E::SlotEntriesNotAscending { list, slot } => {
                write!(f, "image {list} entries are not strictly ascending at slot {slot}")
            }
            E::SlotEntryOutOfRange { list, slot } => {
                write!(f, "image {list} slot {slot} is not below {IMAGE_SLOT_LIMIT}")
            }
            E::PinnedSlotZero => f.write_str("an image may not pin slot 0"),
            E::SlotEntryTargetMissing { list, slot, target } => {
                write!(f, "image {list} slot {slot} names {}, which is not in the cache", to_hex(target))
            }
            E::YieldSlotOutOfRange { slot } => {
                write!(f, "image yield_marker_slot {slot} is not below {IMAGE_SLOT_LIMIT}")
            }
            E::InstanceRootIsRef => f.write_str("instance root cnode is a reference form"),
            E::InstanceImageNotFound { hash, found } => {
                write!(f, "instance image {} is {} in the cache, not an Image", to_hex(hash), found_text(found))
            }
            E::InstanceRootNotFound { hash, found } => {
                write!(f, "instance root cnode {} is {} in the cache, not a CNode", to_hex(hash), found_text(found))
            }
            E::OverlayStartUnaligned { index, start } => {
                write!(f, "overlay {index} starts at {start:#x}, which is not page-aligned")
            }
            E::OverlayEndTooHigh { index, start, len } => {
                write!(f, "overlay {index} ({start:#x} + {len:#x} bytes) ends past 2^32")
            }
        }
    }
}

impl std::error::Error for ValidationError {}

/// Checks `cap` against the put rules of KSPEC-1 §4.3. `blob_kind(h)` is the kind stored under
/// `h` in the blob tier, or `None` when `h` is absent.
pub fn validate(cap: &Cap, blob_kind: &dyn Fn(&Hash) -> Option<CapKind>) -> Result<(), ValidationError> {
    match cap {
        Cap::Data(d) => validate_data(d),
        Cap::CNode(c) => validate_cnode(c),
        Cap::Image(i) => validate_image(i, blob_kind),
        Cap::Instance(i) => validate_instance(i, blob_kind),
        Cap::Type(_) => Ok(()),
    }
}

fn validate_data(d: &DataCap) -> Result<(), ValidationError> {
    if !d.len().is_multiple_of(PAGE_SIZE) {
        return Err(ValidationError::DataNotPageMultiple { len: d.len() });
    }
    Ok(())
}

fn validate_cnode(c: &CNodeCap) -> Result<(), ValidationError> {
    if c.size_log > MAX_CNODE_SIZE_LOG {
        return Err(ValidationError::CNodeSizeLog { size_log: c.size_log });
    }
    for (&slot, target) in &c.slots {
        if !c.in_range(crate::SlotIdx(slot)) {
            return Err(ValidationError::CNodeSlotOutOfRange { slot, size_log: c.size_log });
        }
        if matches!(target, CapHashOrRef::Ref(_)) {
            return Err(ValidationError::CNodeRefTarget { slot });
        }
    }
    Ok(())
}

fn validate_slot_entries(
    list: SlotList,
    entries: &[ImageSlotEntry],
    blob_kind: &dyn Fn(&Hash) -> Option<CapKind>,
) -> Result<(), ValidationError> {
    let mut previous: Option<u32> = None;
    for e in entries {
        let slot = e.slot.0;
        if previous.is_some_and(|p| slot <= p) {
            return Err(ValidationError::SlotEntriesNotAscending { list, slot });
        }
        previous = Some(slot);
        if slot >= IMAGE_SLOT_LIMIT {
            return Err(ValidationError::SlotEntryOutOfRange { list, slot });
        }
        if list == SlotList::Pinned && slot == 0 {
            return Err(ValidationError::PinnedSlotZero);
        }
    }
    for e in entries {
        if blob_kind(&e.cap_hash).is_none() {
            return Err(ValidationError::SlotEntryTargetMissing { list, slot: e.slot.0, target: e.cap_hash });
        }
    }
    Ok(())
}

fn validate_image(i: &ImageCap, blob_kind: &dyn Fn(&Hash) -> Option<CapKind>) -> Result<(), ValidationError> {
    if i.endpoints.len() != MAX_ENDPOINTS {
        return Err(ValidationError::EndpointCount { found: i.endpoints.len() });
    }
    for (index, m) in i.mappings.iter().enumerate() {
        if !m.start.is_multiple_of(PAGE_SIZE) {
            return Err(ValidationError::MappingStartUnaligned { index, start: m.start });
        }
        if !m.size.is_multiple_of(PAGE_SIZE) {
            return Err(ValidationError::MappingSizeUnaligned { index, size: m.size });
        }
        if m.start.checked_add(m.size).is_none_or(|end| end >= ADDRESS_SPACE) {
            return Err(ValidationError::MappingEndTooHigh { index, start: m.start, size: m.size });
        }
        if m.source_path.len() > MAX_SOURCE_DEPTH {
            return Err(ValidationError::MappingPathTooLong { index, len: m.source_path.len() });
        }
    }
    validate_slot_entries(SlotList::Pinned, &i.pinned, blob_kind)?;
    validate_slot_entries(SlotList::Initial, &i.initial, blob_kind)?;
    if let Some(s) = i.yield_marker_slot {
        if s.0 >= IMAGE_SLOT_LIMIT {
            return Err(ValidationError::YieldSlotOutOfRange { slot: s.0 });
        }
    }
    Ok(())
}

fn validate_instance(i: &InstanceCap, blob_kind: &dyn Fn(&Hash) -> Option<CapKind>) -> Result<(), ValidationError> {
    let root = match &i.root_cnode {
        CapHashOrRef::Hash(h) => h,
        CapHashOrRef::Ref(_) => return Err(ValidationError::InstanceRootIsRef),
    };
    let image_kind = blob_kind(&i.image_hash);
    if image_kind != Some(CapKind::Image) {
        return Err(ValidationError::InstanceImageNotFound { hash: i.image_hash, found: image_kind });
    }
    let root_kind = blob_kind(root);
    if root_kind != Some(CapKind::CNode) {
        return Err(ValidationError::InstanceRootNotFound { hash: *root, found: root_kind });
    }
    for (index, o) in i.rw_overlays.iter().enumerate() {
        if !u64::from(o.start).is_multiple_of(PAGE_SIZE) {
            return Err(ValidationError::OverlayStartUnaligned { index, start: o.start });
        }
        let len = o.bytes.len() as u64;
        if u64::from(o.start).checked_add(len).is_none_or(|end| end > ADDRESS_SPACE) {
            return Err(ValidationError::OverlayEndTooHigh { index, start: o.start, len });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::{CapRef, EndpointDef, MemoryMapping, RwOverlay, SlotIdx, TypeCap};
    use std::collections::BTreeMap;

    const PRESENT: Hash = [0xD0; 32];
    const IMAGE: Hash = [0x1A; 32];
    const CNODE: Hash = [0xC0; 32];

    fn kinds(h: &Hash) -> Option<CapKind> {
        match *h {
            PRESENT => Some(CapKind::Data),
            IMAGE => Some(CapKind::Image),
            CNODE => Some(CapKind::CNode),
            _ => None,
        }
    }

    fn check(cap: impl Into<Cap>) -> Result<(), ValidationError> {
        validate(&cap.into(), &kinds)
    }

    fn entry(slot: u32, cap_hash: Hash) -> ImageSlotEntry {
        ImageSlotEntry { slot: SlotIdx(slot), cap_hash }
    }

    fn mapping(start: u64, size: u64, path: usize) -> MemoryMapping {
        MemoryMapping { start, size, source_path: vec![SlotIdx(1); path] }
    }

    #[test]
    fn data_lengths() {
        assert_eq!(check(DataCap { content: vec![] }), Ok(()));
        assert_eq!(check(DataCap { content: vec![0; 4096] }), Ok(()));
        assert_eq!(check(DataCap { content: vec![0; 8192] }), Ok(()));
        assert_eq!(check(DataCap { content: vec![0; 5] }), Err(ValidationError::DataNotPageMultiple { len: 5 }));
        assert_eq!(check(DataCap { content: vec![0; 4097] }), Err(ValidationError::DataNotPageMultiple { len: 4097 }));
    }

    #[test]
    fn cnode_rules() {
        let ok = CNodeCap { size_log: 16, slots: BTreeMap::from([(65535, CapHashOrRef::Hash([9; 32]))]) };
        assert_eq!(check(ok), Ok(()), "targets need not exist (opaque hashes)");
        assert_eq!(
            check(CNodeCap { size_log: 17, slots: BTreeMap::new() }),
            Err(ValidationError::CNodeSizeLog { size_log: 17 })
        );
        let out = CNodeCap { size_log: 4, slots: BTreeMap::from([(16, CapHashOrRef::Hash([0; 32]))]) };
        assert_eq!(check(out), Err(ValidationError::CNodeSlotOutOfRange { slot: 16, size_log: 4 }));
        let r = CNodeCap { size_log: 4, slots: BTreeMap::from([(3, CapHashOrRef::Ref(CapRef(1)))]) };
        assert_eq!(check(r), Err(ValidationError::CNodeRefTarget { slot: 3 }));
    }

    #[test]
    fn image_endpoint_count() {
        let mut img = ImageCap::empty();
        img.endpoints.push(EndpointDef::default());
        assert_eq!(check(img), Err(ValidationError::EndpointCount { found: 65 }));
        assert_eq!(check(ImageCap::empty()), Ok(()));
    }

    #[test]
    fn image_mapping_rules() {
        let with = |m: MemoryMapping| {
            let mut img = ImageCap::empty();
            img.mappings = vec![mapping(0, 0, 0), m];
            check(img)
        };
        assert_eq!(with(mapping(0x1000, 0x1000, 1)), Ok(()));
        assert_eq!(with(mapping(0, 0, 8)), Ok(()));
        assert_eq!(with(mapping(0xFFFF_E000, 0x1000, 1)), Ok(()), "ends at 2^32 - 4096");
        assert_eq!(
            with(mapping(0x10, 0x1000, 1)),
            Err(ValidationError::MappingStartUnaligned { index: 1, start: 0x10 })
        );
        assert_eq!(with(mapping(0x1000, 0x10, 1)), Err(ValidationError::MappingSizeUnaligned { index: 1, size: 0x10 }));
        assert_eq!(
            with(mapping(0xFFFF_F000, 0x1000, 1)),
            Err(ValidationError::MappingEndTooHigh { index: 1, start: 0xFFFF_F000, size: 0x1000 }),
            "an end of exactly 2^32 is rejected"
        );
        assert_eq!(
            with(mapping(0x1_0000_0000, 0, 0)),
            Err(ValidationError::MappingEndTooHigh { index: 1, start: 0x1_0000_0000, size: 0 })
        );
        let huge = u64::MAX - 4095;
        assert_eq!(
            with(mapping(huge, huge, 0)),
            Err(ValidationError::MappingEndTooHigh { index: 1, start: huge, size: huge }),
            "an overflowing end is rejected, not wrapped"
        );
        assert_eq!(with(mapping(0, 0, 9)), Err(ValidationError::MappingPathTooLong { index: 1, len: 9 }));
    }

    #[test]
    fn image_slot_entry_order() {
        let mut img = ImageCap::empty();
        img.initial = vec![entry(3, PRESENT), entry(3, PRESENT)];
        assert_eq!(
            check(img.clone()),
            Err(ValidationError::SlotEntriesNotAscending { list: SlotList::Initial, slot: 3 })
        );
        img.initial = vec![entry(4, PRESENT), entry(3, PRESENT)];
        assert_eq!(
            check(img.clone()),
            Err(ValidationError::SlotEntriesNotAscending { list: SlotList::Initial, slot: 3 })
        );
        img.initial = vec![];
        img.pinned = vec![entry(5, PRESENT), entry(2, PRESENT)];
        assert_eq!(check(img), Err(ValidationError::SlotEntriesNotAscending { list: SlotList::Pinned, slot: 2 }));
    }

    #[test]
    fn image_slot_entry_range() {
        let mut img = ImageCap::empty();
        img.pinned = vec![entry(65535, PRESENT)];
        img.initial = vec![entry(0, PRESENT), entry(65535, PRESENT)];
        assert_eq!(check(img.clone()), Ok(()));
        img.initial.push(entry(65536, PRESENT));
        assert_eq!(
            check(img.clone()),
            Err(ValidationError::SlotEntryOutOfRange { list: SlotList::Initial, slot: 65536 })
        );
        img.initial.pop();
        img.pinned = vec![entry(65536, PRESENT)];
        assert_eq!(check(img), Err(ValidationError::SlotEntryOutOfRange { list: SlotList::Pinned, slot: 65536 }));
    }

    #[test]
    fn image_may_not_pin_slot_0_but_may_initialise_it() {
        let mut img = ImageCap::empty();
        img.pinned = vec![entry(0, PRESENT)];
        assert_eq!(check(img.clone()), Err(ValidationError::PinnedSlotZero));
        img.pinned = vec![];
        img.initial = vec![entry(0, PRESENT)];
        assert_eq!(check(img), Ok(()));
    }

    #[test]
    fn image_targets_must_be_in_the_blob_tier() {
        let mut img = ImageCap::empty();
        img.pinned = vec![entry(1, PRESENT), entry(2, [0xEE; 32])];
        assert_eq!(
            check(img.clone()),
            Err(ValidationError::SlotEntryTargetMissing { list: SlotList::Pinned, slot: 2, target: [0xEE; 32] })
        );
        img.pinned = vec![entry(1, IMAGE)];
        img.initial = vec![entry(7, [0xEE; 32])];
        assert_eq!(
            check(img),
            Err(ValidationError::SlotEntryTargetMissing { list: SlotList::Initial, slot: 7, target: [0xEE; 32] })
        );
    }

    #[test]
    fn image_yield_slot_range() {
        let mut img = ImageCap::empty();
        img.yield_marker_slot = Some(SlotIdx(65535));
        assert_eq!(check(img.clone()), Ok(()));
        img.yield_marker_slot = Some(SlotIdx(65536));
        assert_eq!(check(img), Err(ValidationError::YieldSlotOutOfRange { slot: 65536 }));
    }

    #[test]
    fn instance_rules() {
        let good = InstanceCap::new([0; 32], IMAGE, CapHashOrRef::Hash(CNODE));
        assert_eq!(check(good.clone()), Ok(()));

        let mut i = good.clone();
        i.root_cnode = CapHashOrRef::Ref(CapRef(1));
        assert_eq!(check(i), Err(ValidationError::InstanceRootIsRef));

        let mut i = good.clone();
        i.image_hash = [0xEE; 32];
        assert_eq!(check(i), Err(ValidationError::InstanceImageNotFound { hash: [0xEE; 32], found: None }));
        let mut i = good.clone();
        i.image_hash = CNODE;
        assert_eq!(check(i), Err(ValidationError::InstanceImageNotFound { hash: CNODE, found: Some(CapKind::CNode) }));

        let mut i = good.clone();
        i.root_cnode = CapHashOrRef::Hash([0xEE; 32]);
        assert_eq!(check(i), Err(ValidationError::InstanceRootNotFound { hash: [0xEE; 32], found: None }));
        let mut i = good.clone();
        i.root_cnode = CapHashOrRef::Hash(PRESENT);
        assert_eq!(check(i), Err(ValidationError::InstanceRootNotFound { hash: PRESENT, found: Some(CapKind::Data) }));
    }

    #[test]
    fn instance_overlay_bounds() {
        let base = InstanceCap::new([0; 32], IMAGE, CapHashOrRef::Hash(CNODE));
        let with = |o: RwOverlay| {
            let mut i = base.clone();
            i.rw_overlays = vec![RwOverlay { start: 0, bytes: vec![] }, o];
            check(i)
        };
        assert_eq!(with(RwOverlay { start: 0xFFFF_F000, bytes: vec![0; 4096] }), Ok(()), "may end exactly at 2^32");
        assert_eq!(with(RwOverlay { start: 0x1000, bytes: vec![1] }), Ok(()), "length need not be page-sized");
        assert_eq!(
            with(RwOverlay { start: 0x1001, bytes: vec![] }),
            Err(ValidationError::OverlayStartUnaligned { index: 1, start: 0x1001 })
        );
        assert_eq!(
            with(RwOverlay { start: 0xFFFF_F000, bytes: vec![0; 4097] }),
            Err(ValidationError::OverlayEndTooHigh { index: 1, start: 0xFFFF_F000, len: 4097 })
        );
    }

    #[test]
    fn type_is_never_rejected() {
        assert_eq!(check(TypeCap { image_hash_chain: [0xFF; 32] }), Ok(()));
    }

    #[test]
    fn every_error_displays() {
        let all = [
            ValidationError::DataNotPageMultiple { len: 1 },
            ValidationError::CNodeSizeLog { size_log: 17 },
            ValidationError::CNodeSlotOutOfRange { slot: 1, size_log: 0 },
            ValidationError::CNodeRefTarget { slot: 1 },
            ValidationError::EndpointCount { found: 0 },
            ValidationError::MappingStartUnaligned { index: 0, start: 1 },
            ValidationError::MappingSizeUnaligned { index: 0, size: 1 },
            ValidationError::MappingEndTooHigh { index: 0, start: 0, size: 0 },
            ValidationError::MappingPathTooLong { index: 0, len: 9 },
            ValidationError::SlotEntriesNotAscending { list: SlotList::Pinned, slot: 0 },
            ValidationError::SlotEntryOutOfRange { list: SlotList::Initial, slot: 0 },
            ValidationError::PinnedSlotZero,
            ValidationError::SlotEntryTargetMissing { list: SlotList::Pinned, slot: 0, target: [0; 32] },
            ValidationError::YieldSlotOutOfRange { slot: 0 },
            ValidationError::InstanceRootIsRef,
            ValidationError::InstanceImageNotFound { hash: [0; 32], found: None },
            ValidationError::InstanceRootNotFound { hash: [0; 32], found: Some(CapKind::Data) },
            ValidationError::OverlayStartUnaligned { index: 0, start: 1 },
            ValidationError::OverlayEndTooHigh { index: 0, start: 0, len: 0 },
        ];
        for e in all {
            assert!(!e.to_string().is_empty());
        }
    }
}
