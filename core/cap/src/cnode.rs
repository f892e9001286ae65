//! CNode semantics: slot access and bounds, minting, and pinned slots (KSPEC-1 §5).
//!
//! The pin-aware slot operations ([`CNodeCap::copy_slot`] and friends) check every operand first
//! and change the cnode only when all checks pass, so a failure leaves it exactly as it was
//! (KSPEC-1 §5.3, §9.2, §9.4).

use std::fmt;

use crate::cap::{CNodeCap, CapHashOrRef, CapRef, ImageCap, SlotIdx};
use crate::MAX_CNODE_SIZE_LOG;

/// A failed cnode operation (KSPEC-1 §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CNodeError {
    /// `size_log` is above [`MAX_CNODE_SIZE_LOG`] (§5.2).
    SizeLogTooLarge {
        /// The rejected value.
        size_log: u8,
    },
    /// A write or take named a slot `≥ 2^size_log` (§5.1).
    SlotOutOfRange {
        /// The slot named.
        slot: u32,
        /// The cnode's size_log.
        size_log: u8,
    },
    /// The slot is in the running frame's pinned set (§5.3).
    SlotPinned {
        /// The slot named.
        slot: u32,
    },
    /// The operation needs a populated source slot (§9.4).
    SlotEmpty {
        /// The slot named.
        slot: u32,
    },
}

impl fmt::Display for CNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CNodeError::SizeLogTooLarge { size_log } => {
                write!(f, "cnode size_log {size_log} exceeds the maximum {MAX_CNODE_SIZE_LOG}")
            }
            CNodeError::SlotOutOfRange { slot, size_log } => {
                write!(f, "slot {slot} is out of range for a cnode of size_log {size_log}")
            }
            CNodeError::SlotPinned { slot } => write!(f, "slot {slot} is pinned"),
            CNodeError::SlotEmpty { slot } => write!(f, "slot {slot} is empty"),
        }
    }
}

impl std::error::Error for CNodeError {}

impl CNodeCap {
    /// `empty_cnode(size_log)`: a cnode with `2^size_log` empty slots. `size_log > 16` is an
    /// error (KSPEC-1 §5.2).
    pub fn empty(size_log: u8) -> Result<Self, CNodeError> {
        if size_log > MAX_CNODE_SIZE_LOG {
            return Err(CNodeError::SizeLogTooLarge { size_log });
        }
        Ok(CNodeCap { size_log, slots: Default::default() })
    }

    /// The number of slots, `2^size_log`; saturates at `u64::MAX` for a size_log of 64 or more,
    /// which no valid cnode has (KSPEC-1 §2.4).
    pub fn capacity(&self) -> u64 {
        1u64.checked_shl(u32::from(self.size_log)).unwrap_or(u64::MAX)
    }

    /// Whether `idx < 2^size_log` (KSPEC-1 §1, §5.1).
    pub fn in_range(&self, idx: SlotIdx) -> bool {
        idx.0.checked_shr(u32::from(self.size_log)).unwrap_or(0) == 0
    }

    fn check_range(&self, idx: SlotIdx) -> Result<(), CNodeError> {
        if self.in_range(idx) {
            Ok(())
        } else {
            Err(CNodeError::SlotOutOfRange { slot: idx.0, size_log: self.size_log })
        }
    }

    /// The target in slot `idx`; an out-of-range slot reads as empty (KSPEC-1 §5.1).
    pub fn get(&self, idx: SlotIdx) -> Option<&CapHashOrRef> {
        if self.in_range(idx) {
            self.slots.get(&idx.0)
        } else {
            None
        }
    }

    /// Stores `value` in slot `idx` (clearing it for `None`), overwriting silently, and returns the
    /// previous value. Out of range: `SlotOutOfRange` and no change (KSPEC-1 §5.1).
    pub fn set(&mut self, idx: SlotIdx, value: Option<CapHashOrRef>) -> Result<Option<CapHashOrRef>, CNodeError> {
        self.check_range(idx)?;
        Ok(match value {
            Some(v) => self.slots.insert(idx.0, v),
            None => self.slots.remove(&idx.0),
        })
    }

    /// Clears slot `idx` and returns what it held. Out of range: `SlotOutOfRange` and no change
    /// (KSPEC-1 §5.1).
    pub fn take(&mut self, idx: SlotIdx) -> Result<Option<CapHashOrRef>, CNodeError> {
        self.set(idx, None)
    }

    /// The populated slots in ascending order (KSPEC-1 §2.4).
    pub fn iter(&self) -> impl Iterator<Item = (SlotIdx, &CapHashOrRef)> + '_ {
        self.slots.iter().map(|(s, t)| (SlotIdx(*s), t))
    }

    /// The number of populated slots (KSPEC-1 §2.4).
    pub fn populated(&self) -> usize {
        self.slots.len()
    }

    /// The reference-form targets in ascending slot order, repeats included (KSPEC-1 §4.5).
    pub fn refs(&self) -> impl Iterator<Item = CapRef> + '_ {
        self.slots.values().filter_map(CapHashOrRef::as_cap_ref)
    }

    /// Whether any slot holds a reference form, which makes the cnode unencodable (KSPEC-1 §3.3).
    pub fn has_refs(&self) -> bool {
        self.refs().next().is_some()
    }

    /// Writes `value` to `dst` unless `dst` is pinned or out of range; returns the previous value.
    /// This is the dst check of MGMT_CNODE_MINT, HOST_TYPE_OF, HOST_MINT_DATA_CAP, HOST_OPEN and
    /// DERIVE_SPAWN (KSPEC-1 §5.3).
    pub fn set_unpinned(
        &mut self,
        pins: &PinnedSlots,
        dst: SlotIdx,
        value: Option<CapHashOrRef>,
    ) -> Result<Option<CapHashOrRef>, CNodeError> {
        pins.check(dst)?;
        self.set(dst, value)
    }

    /// Checks that `dst` could take a write: in range and not pinned (KSPEC-1 §5.3).
    pub fn check_writable(&self, pins: &PinnedSlots, dst: SlotIdx) -> Result<(), CNodeError> {
        pins.check(dst)?;
        self.check_range(dst)
    }

    fn source(&self, src: SlotIdx) -> Result<CapHashOrRef, CNodeError> {
        self.check_range(src)?;
        self.slots.get(&src.0).copied().ok_or(CNodeError::SlotEmpty { slot: src.0 })
    }

    /// MGMT_COPY: `dst := src`. Fails if dst is pinned, src is empty or out of range, or dst is out
    /// of range. The source may be pinned. `src == dst` succeeds with no change (KSPEC-1 §5.3,
    /// §9.4).
    pub fn copy_slot(&mut self, pins: &PinnedSlots, src: SlotIdx, dst: SlotIdx) -> Result<(), CNodeError> {
        pins.check(dst)?;
        let value = self.source(src)?;
        self.check_range(dst)?;
        self.slots.insert(dst.0, value);
        Ok(())
    }

    /// MGMT_MOVE: `dst := src; src := ∅`. Fails if src or dst is pinned, src is out of range or
    /// empty, or dst is out of range. `src == dst` on a populated slot succeeds with no change
    /// (KSPEC-1 §5.3, §9.4).
    pub fn move_slot(&mut self, pins: &PinnedSlots, src: SlotIdx, dst: SlotIdx) -> Result<(), CNodeError> {
        pins.check(src)?;
        pins.check(dst)?;
        let value = self.source(src)?;
        self.check_range(dst)?;
        if src != dst {
            self.slots.remove(&src.0);
            self.slots.insert(dst.0, value);
        }
        Ok(())
    }

    /// MGMT_DROP: `slot := ∅`. Fails if the slot is pinned or out of range; dropping an empty
    /// slot succeeds (KSPEC-1 §5.3, §9.4).
    pub fn drop_slot(&mut self, pins: &PinnedSlots, slot: SlotIdx) -> Result<(), CNodeError> {
        pins.check(slot)?;
        self.take(slot).map(|_| ())
    }

    /// MGMT_CNODE_SWAP: exchanges `a` and `b`, empty included. Fails if either is pinned or out of
    /// range (KSPEC-1 §5.3, §9.4).
    pub fn swap_slots(&mut self, pins: &PinnedSlots, a: SlotIdx, b: SlotIdx) -> Result<(), CNodeError> {
        pins.check(a)?;
        pins.check(b)?;
        self.check_range(a)?;
        self.check_range(b)?;
        let va = self.slots.remove(&a.0);
        let vb = self.slots.remove(&b.0);
        if let Some(v) = va {
            self.slots.insert(b.0, v);
        }
        if let Some(v) = vb {
            self.slots.insert(a.0, v);
        }
        Ok(())
    }
}

/// A frame's pinned set: the ascending slots of the Image it is currently executing. Pinning is a
/// property of that Image, not of the cnode (KSPEC-1 §5.3).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct PinnedSlots(Vec<SlotIdx>);

impl PinnedSlots {
    /// No pinned slots (KSPEC-1 §5.3).
    pub fn none() -> Self {
        PinnedSlots(Vec::new())
    }

    /// The set of the given slots, sorted and without repeats (KSPEC-1 §5.3).
    pub fn new(slots: impl IntoIterator<Item = SlotIdx>) -> Self {
        let mut v: Vec<SlotIdx> = slots.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        PinnedSlots(v)
    }

    /// The pinned slots of `image` (KSPEC-1 §5.3).
    pub fn of_image(image: &ImageCap) -> Self {
        PinnedSlots::new(image.pinned.iter().map(|e| e.slot))
    }

    /// Whether `slot` is pinned (KSPEC-1 §5.3).
    pub fn contains(&self, slot: SlotIdx) -> bool {
        self.0.binary_search(&slot).is_ok()
    }

    /// `SlotPinned` if `slot` is pinned (KSPEC-1 §5.3).
    pub fn check(&self, slot: SlotIdx) -> Result<(), CNodeError> {
        if self.contains(slot) {
            Err(CNodeError::SlotPinned { slot: slot.0 })
        } else {
            Ok(())
        }
    }

    /// The pinned slots, ascending (KSPEC-1 §5.3, §12.2).
    pub fn as_slice(&self) -> &[SlotIdx] {
        &self.0
    }

    /// The number of pinned slots.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::ImageSlotEntry;

    const AA: CapHashOrRef = CapHashOrRef::Hash([0xAA; 32]);
    const BB: CapHashOrRef = CapHashOrRef::Hash([0xBB; 32]);

    fn fixture() -> CNodeCap {
        let mut c = CNodeCap::empty(4).unwrap();
        c.set(SlotIdx(2), Some(AA)).unwrap();
        c
    }

    fn pins(slots: &[u32]) -> PinnedSlots {
        PinnedSlots::new(slots.iter().map(|&s| SlotIdx(s)))
    }

    #[test]
    fn minting_accepts_0_to_16() {
        for size_log in 0..=16u8 {
            let c = CNodeCap::empty(size_log).unwrap();
            assert_eq!(c.size_log, size_log);
            assert_eq!(c.populated(), 0);
            assert_eq!(c.capacity(), 1u64 << size_log);
        }
    }

    #[test]
    fn minting_rejects_above_16() {
        for size_log in [17u8, 32, 64, 255] {
            assert_eq!(CNodeCap::empty(size_log), Err(CNodeError::SizeLogTooLarge { size_log }));
        }
    }

    #[test]
    fn bounds_follow_size_log() {
        let c0 = CNodeCap::empty(0).unwrap();
        assert!(c0.in_range(SlotIdx(0)));
        assert!(!c0.in_range(SlotIdx(1)));
        let c4 = CNodeCap::empty(4).unwrap();
        assert!(c4.in_range(SlotIdx(15)));
        assert!(!c4.in_range(SlotIdx(16)));
        let c8 = CNodeCap::empty(8).unwrap();
        assert!(c8.in_range(SlotIdx(255)));
        assert!(!c8.in_range(SlotIdx(256)));
        let c16 = CNodeCap::empty(16).unwrap();
        assert!(c16.in_range(SlotIdx(65535)));
        assert!(!c16.in_range(SlotIdx(65536)));
        assert!(!c16.in_range(SlotIdx(u32::MAX)));
    }

    #[test]
    fn invalid_size_logs_never_panic() {
        for size_log in [17u8, 31, 32, 63, 64, 255] {
            let c = CNodeCap { size_log, slots: Default::default() };
            let _ = c.capacity();
            let _ = c.in_range(SlotIdx(u32::MAX));
        }
        assert!(CNodeCap { size_log: 32, slots: Default::default() }.in_range(SlotIdx(u32::MAX)));
        assert_eq!(CNodeCap { size_log: 64, slots: Default::default() }.capacity(), u64::MAX);
    }

    #[test]
    fn get_out_of_range_reads_as_empty() {
        let c = fixture();
        assert_eq!(c.get(SlotIdx(2)), Some(&AA));
        assert_eq!(c.get(SlotIdx(3)), None);
        assert_eq!(c.get(SlotIdx(16)), None);
        assert_eq!(c.get(SlotIdx(u32::MAX)), None);
    }

    #[test]
    fn get_ignores_stray_out_of_range_entries() {
        let mut c = fixture();
        c.slots.insert(100, BB);
        assert_eq!(c.get(SlotIdx(100)), None);
    }

    #[test]
    fn set_overwrites_and_returns_previous() {
        let mut c = fixture();
        assert_eq!(c.set(SlotIdx(2), Some(BB)), Ok(Some(AA)));
        assert_eq!(c.get(SlotIdx(2)), Some(&BB));
        assert_eq!(c.set(SlotIdx(5), Some(AA)), Ok(None));
        assert_eq!(c.set(SlotIdx(5), None), Ok(Some(AA)));
        assert_eq!(c.get(SlotIdx(5)), None);
    }

    #[test]
    fn set_and_take_out_of_range_fail_without_change() {
        let mut c = fixture();
        let before = c.clone();
        let err = CNodeError::SlotOutOfRange { slot: 16, size_log: 4 };
        assert_eq!(c.set(SlotIdx(16), Some(BB)), Err(err));
        assert_eq!(c.set(SlotIdx(16), None), Err(err));
        assert_eq!(c.take(SlotIdx(16)), Err(err));
        assert_eq!(c, before);
    }

    #[test]
    fn take_returns_previous_even_when_empty() {
        let mut c = fixture();
        assert_eq!(c.take(SlotIdx(2)), Ok(Some(AA)));
        assert_eq!(c.take(SlotIdx(2)), Ok(None));
        assert_eq!(c.populated(), 0);
    }

    #[test]
    fn size_log_0_has_only_slot_0() {
        let mut c = CNodeCap::empty(0).unwrap();
        assert_eq!(c.set(SlotIdx(0), Some(AA)), Ok(None));
        assert!(c.set(SlotIdx(1), Some(AA)).is_err());
    }

    #[test]
    fn maximum_cnode_holds_its_last_slot() {
        let mut c = CNodeCap::empty(16).unwrap();
        assert_eq!(c.set(SlotIdx(65535), Some(AA)), Ok(None));
        assert_eq!(c.get(SlotIdx(65535)), Some(&AA));
        assert!(c.set(SlotIdx(65536), Some(AA)).is_err());
    }

    #[test]
    fn iter_and_refs_are_in_ascending_slot_order() {
        let mut c = CNodeCap::empty(8).unwrap();
        c.set(SlotIdx(9), Some(CapHashOrRef::Ref(CapRef(3)))).unwrap();
        c.set(SlotIdx(1), Some(CapHashOrRef::Ref(CapRef(7)))).unwrap();
        c.set(SlotIdx(4), Some(AA)).unwrap();
        c.set(SlotIdx(5), Some(CapHashOrRef::Ref(CapRef(7)))).unwrap();
        let slots: Vec<u32> = c.iter().map(|(s, _)| s.0).collect();
        assert_eq!(slots, [1, 4, 5, 9]);
        let refs: Vec<u64> = c.refs().map(|r| r.0).collect();
        assert_eq!(refs, [7, 7, 3]);
        assert!(c.has_refs());
        assert!(!fixture().has_refs());
    }

    #[test]
    fn pinned_set_is_sorted_and_deduplicated() {
        let p = pins(&[9, 3, 9, 1]);
        assert_eq!(p.as_slice(), &[SlotIdx(1), SlotIdx(3), SlotIdx(9)]);
        assert!(p.contains(SlotIdx(3)));
        assert!(!p.contains(SlotIdx(2)));
        assert_eq!(p.check(SlotIdx(9)), Err(CNodeError::SlotPinned { slot: 9 }));
        assert_eq!(p.check(SlotIdx(0)), Ok(()));
        assert_eq!(p.len(), 3);
        assert!(PinnedSlots::none().is_empty());
    }

    #[test]
    fn pinned_set_comes_from_the_image() {
        let mut img = ImageCap::empty();
        img.pinned = vec![
            ImageSlotEntry { slot: SlotIdx(3), cap_hash: [1; 32] },
            ImageSlotEntry { slot: SlotIdx(7), cap_hash: [2; 32] },
        ];
        img.initial = vec![ImageSlotEntry { slot: SlotIdx(5), cap_hash: [3; 32] }];
        assert_eq!(PinnedSlots::of_image(&img), pins(&[3, 7]));
    }

    #[test]
    fn copy_from_pinned_source_is_allowed() {
        let mut c = fixture();
        c.copy_slot(&pins(&[2]), SlotIdx(2), SlotIdx(7)).unwrap();
        assert_eq!(c.get(SlotIdx(2)), Some(&AA));
        assert_eq!(c.get(SlotIdx(7)), Some(&AA));
    }

    #[test]
    fn copy_rules() {
        let p = pins(&[7]);
        let before = fixture();
        let mut c = before.clone();
        assert_eq!(c.copy_slot(&p, SlotIdx(2), SlotIdx(7)), Err(CNodeError::SlotPinned { slot: 7 }));
        assert_eq!(c.copy_slot(&p, SlotIdx(3), SlotIdx(4)), Err(CNodeError::SlotEmpty { slot: 3 }));
        assert_eq!(c.copy_slot(&p, SlotIdx(16), SlotIdx(4)), Err(CNodeError::SlotOutOfRange { slot: 16, size_log: 4 }));
        assert_eq!(c.copy_slot(&p, SlotIdx(2), SlotIdx(16)), Err(CNodeError::SlotOutOfRange { slot: 16, size_log: 4 }));
        assert_eq!(c, before);
        c.copy_slot(&p, SlotIdx(2), SlotIdx(2)).unwrap();
        assert_eq!(c, before);
        c.set(SlotIdx(3), Some(BB)).unwrap();
        c.copy_slot(&p, SlotIdx(2), SlotIdx(3)).unwrap();
        assert_eq!(c.get(SlotIdx(3)), Some(&AA));
    }

    #[test]
    fn move_rules() {
        let before = fixture();
        let mut c = before.clone();
        for (p, src, dst, err) in [
            (pins(&[2]), 2, 9, CNodeError::SlotPinned { slot: 2 }),
            (pins(&[9]), 2, 9, CNodeError::SlotPinned { slot: 9 }),
            (pins(&[]), 16, 9, CNodeError::SlotOutOfRange { slot: 16, size_log: 4 }),
            (pins(&[]), 3, 9, CNodeError::SlotEmpty { slot: 3 }),
            (pins(&[]), 2, 16, CNodeError::SlotOutOfRange { slot: 16, size_log: 4 }),
        ] {
            assert_eq!(c.move_slot(&p, SlotIdx(src), SlotIdx(dst)), Err(err));
            assert_eq!(c, before, "a failed move loses nothing");
        }
        c.move_slot(&PinnedSlots::none(), SlotIdx(2), SlotIdx(2)).unwrap();
        assert_eq!(c, before);
        c.move_slot(&PinnedSlots::none(), SlotIdx(2), SlotIdx(9)).unwrap();
        assert_eq!(c.get(SlotIdx(2)), None);
        assert_eq!(c.get(SlotIdx(9)), Some(&AA));
    }

    #[test]
    fn drop_rules() {
        let mut c = fixture();
        assert_eq!(c.drop_slot(&pins(&[2]), SlotIdx(2)), Err(CNodeError::SlotPinned { slot: 2 }));
        assert_eq!(
            c.drop_slot(&PinnedSlots::none(), SlotIdx(16)),
            Err(CNodeError::SlotOutOfRange { slot: 16, size_log: 4 })
        );
        assert_eq!(c, fixture());
        c.drop_slot(&PinnedSlots::none(), SlotIdx(3)).unwrap();
        assert_eq!(c, fixture(), "dropping an empty slot changes nothing");
        c.drop_slot(&PinnedSlots::none(), SlotIdx(2)).unwrap();
        assert_eq!(c.get(SlotIdx(2)), None);
    }

    #[test]
    fn swap_rules() {
        let mut c = fixture();
        c.set(SlotIdx(3), Some(BB)).unwrap();
        let before = c.clone();
        assert_eq!(c.swap_slots(&pins(&[2]), SlotIdx(2), SlotIdx(3)), Err(CNodeError::SlotPinned { slot: 2 }));
        assert_eq!(c.swap_slots(&pins(&[3]), SlotIdx(2), SlotIdx(3)), Err(CNodeError::SlotPinned { slot: 3 }));
        assert_eq!(
            c.swap_slots(&PinnedSlots::none(), SlotIdx(2), SlotIdx(16)),
            Err(CNodeError::SlotOutOfRange { slot: 16, size_log: 4 })
        );
        assert_eq!(c, before, "a failed swap loses nothing");
        let none = PinnedSlots::none();
        c.swap_slots(&none, SlotIdx(2), SlotIdx(3)).unwrap();
        assert_eq!(c.get(SlotIdx(2)), Some(&BB));
        assert_eq!(c.get(SlotIdx(3)), Some(&AA));
        c.swap_slots(&none, SlotIdx(2), SlotIdx(3)).unwrap();
        assert_eq!(c, before, "swapping twice changes nothing");
        c.swap_slots(&none, SlotIdx(2), SlotIdx(2)).unwrap();
        assert_eq!(c, before);
        c.swap_slots(&none, SlotIdx(2), SlotIdx(9)).unwrap();
        assert_eq!(c.get(SlotIdx(2)), None);
        assert_eq!(c.get(SlotIdx(9)), Some(&AA));
        c.swap_slots(&none, SlotIdx(10), SlotIdx(11)).unwrap();
        assert_eq!(c.populated(), 2, "empty swaps with empty");
    }

    #[test]
    fn guarded_write_checks_pin_then_range() {
        let mut c = fixture();
        assert_eq!(c.set_unpinned(&pins(&[5]), SlotIdx(5), Some(BB)), Err(CNodeError::SlotPinned { slot: 5 }));
        assert_eq!(c.check_writable(&pins(&[5]), SlotIdx(5)), Err(CNodeError::SlotPinned { slot: 5 }));
        assert!(c.check_writable(&pins(&[5]), SlotIdx(16)).is_err());
        assert_eq!(c.check_writable(&pins(&[5]), SlotIdx(6)), Ok(()));
        assert_eq!(c, fixture());
        assert_eq!(c.set_unpinned(&pins(&[5]), SlotIdx(2), Some(BB)), Ok(Some(AA)));
    }

    #[test]
    fn errors_display() {
        let msgs = [
            CNodeError::SizeLogTooLarge { size_log: 17 }.to_string(),
            CNodeError::SlotOutOfRange { slot: 16, size_log: 4 }.to_string(),
            CNodeError::SlotPinned { slot: 1 }.to_string(),
            CNodeError::SlotEmpty { slot: 1 }.to_string(),
        ];
        assert!(msgs.iter().all(|m| !m.is_empty()));
        assert!(msgs[0].contains("17"));
    }
}
