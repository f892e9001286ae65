//! The cache directory: a content-addressed blob tier and a working tier of mutable entries
//! (KSPEC-1 §4).
//!
//! Every mutating operation validates first and commits last: when it returns an error, the
//! cache is exactly as it was (KSPEC-1 §4.2, §11). Nothing is ever evicted, so the blob key set
//! only grows (KSPEC-1 §4.1, §4.4).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::cap::{Cap, CapHashOrRef, CapKind, CapRef};
use crate::hash::{to_hex, Hash};
use crate::jcap::{cap_hash, EncodeError};
use crate::validate::{validate, ValidationError};

/// A failed cache operation (KSPEC-1 §4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CacheError {
    /// The cap has no JCAP-1 encoding, e.g. it still holds a reference form (§3.3).
    Encode(EncodeError),
    /// The cap fails put validation (§4.3).
    Invalid(ValidationError),
    /// `put_with_hash` was given a hash that is not the cap's hash (§4.2).
    HashMismatch {
        /// The hash the caller asserted.
        asserted: Hash,
        /// The cap's JCAP-1 hash.
        actual: Hash,
    },
    /// The reference names no working entry: never issued, or used up by a settle (§4.5).
    UnknownRef(CapRef),
    /// The entry contains itself, directly or through other references (§4.5).
    RefCycle(CapRef),
    /// Every CapRef has been issued (§1).
    RefsExhausted,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Encode(e) => write!(f, "cannot encode cap: {e}"),
            CacheError::Invalid(e) => write!(f, "cap rejected by put validation: {e}"),
            CacheError::HashMismatch { asserted, actual } => {
                write!(f, "asserted hash {} is not the cap's hash {}", to_hex(asserted), to_hex(actual))
            }
            CacheError::UnknownRef(r) => write!(f, "{r} names no working entry"),
            CacheError::RefCycle(r) => write!(f, "{r} contains itself and cannot be settled"),
            CacheError::RefsExhausted => f.write_str("no CapRef left to issue"),
        }
    }
}

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CacheError::Encode(e) => Some(e),
            CacheError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EncodeError> for CacheError {
    fn from(e: EncodeError) -> Self {
        CacheError::Encode(e)
    }
}

impl From<ValidationError> for CacheError {
    fn from(e: ValidationError) -> Self {
        CacheError::Invalid(e)
    }
}

/// A blob that breaks the cache invariants of KSPEC-1 §4.4 and §13.1: its key is not its hash,
/// it holds a reference form, or it names something the blob tier lacks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IntegrityError {
    /// The offending blob key.
    pub key: Hash,
    /// What is wrong with it.
    pub error: CacheError,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blob {}: {}", to_hex(&self.key), self.error)
    }
}

impl std::error::Error for IntegrityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The content-addressed cap store lent to the VM for an invocation (KSPEC-1 §4).
#[derive(Clone, Debug, Default)]
pub struct CacheDirectory {
    blobs: BTreeMap<Hash, Cap>,
    working: BTreeMap<CapRef, Cap>,
    last_ref: u64,
}

/// Blobs about to be inserted by one multi-step operation, visible to its own validation.
type Staged = BTreeMap<Hash, CapKind>;

impl CacheDirectory {
    /// An empty cache; the first CapRef it issues is 1 (KSPEC-1 §1, §4).
    pub fn new() -> Self {
        Self::default()
    }

    fn kind_lookup<'a>(&'a self, staged: &'a Staged) -> impl Fn(&Hash) -> Option<CapKind> + 'a {
        move |h| self.blobs.get(h).map(Cap::kind).or_else(|| staged.get(h).copied())
    }

    /// Whether `cap`, known to hash to `h`, is new; validates it if so.
    fn admit(&self, h: &Hash, cap: &Cap, staged: &Staged) -> Result<bool, CacheError> {
        if self.blobs.contains_key(h) || staged.contains_key(h) {
            return Ok(false);
        }
        validate(cap, &self.kind_lookup(staged))?;
        Ok(true)
    }

    /// `put(cap) → Hash`: stores `cap` in the blob tier under its cap hash. An already present key
    /// is a no-op that returns the same hash (the stored content is never replaced). Encoding or
    /// validation failure leaves the cache unchanged (KSPEC-1 §4.2, §4.3, §4.4).
    pub fn put(&mut self, cap: Cap) -> Result<Hash, CacheError> {
        let h = cap_hash(&cap)?;
        if self.admit(&h, &cap, &Staged::new())? {
            self.blobs.insert(h, cap);
        }
        Ok(h)
    }

    /// `put_with_hash(h, cap)`: `put` where the caller asserts `h == cap_hash(cap)`. Debug and
    /// fuzz builds verify the assertion and fail with `HashMismatch` (KSPEC-1 §4.2).
    pub fn put_with_hash(&mut self, h: Hash, cap: Cap) -> Result<Hash, CacheError> {
        if cfg!(any(debug_assertions, fuzzing)) {
            let actual = cap_hash(&cap)?;
            if actual != h {
                return Err(CacheError::HashMismatch { asserted: h, actual });
            }
        }
        if self.admit(&h, &cap, &Staged::new())? {
            self.blobs.insert(h, cap);
        }
        Ok(h)
    }

    /// Puts several caps as one step: each is validated as if the ones before it were already
    /// stored, and either all are stored or none. Returns their hashes in order. This is the
    /// "validate everything, then commit" shape `DERIVE_SPAWN` needs (KSPEC-1 §4.3, §9.5.3, §11).
    pub fn put_all(&mut self, caps: Vec<Cap>) -> Result<Vec<Hash>, CacheError> {
        let mut staged = Staged::new();
        let mut hashes = Vec::with_capacity(caps.len());
        let mut fresh = Vec::new();
        for cap in caps {
            let h = cap_hash(&cap)?;
            if self.admit(&h, &cap, &staged)? {
                staged.insert(h, cap.kind());
                fresh.push((h, cap));
            }
            hashes.push(h);
        }
        self.blobs.extend(fresh);
        Ok(hashes)
    }

    /// What `put(cap)` would return, without storing anything (KSPEC-1 §4.2, §4.3).
    pub fn check_put(&self, cap: &Cap) -> Result<Hash, CacheError> {
        let h = cap_hash(cap)?;
        self.admit(&h, cap, &Staged::new())?;
        Ok(h)
    }

    /// `get(key)`: a hash form looks up the blob tier, a reference form the working tier
    /// (KSPEC-1 §4.2).
    pub fn get(&self, key: &CapHashOrRef) -> Option<&Cap> {
        match key {
            CapHashOrRef::Hash(h) => self.blobs.get(h),
            CapHashOrRef::Ref(r) => self.working.get(r),
        }
    }

    /// The blob stored under `h` (KSPEC-1 §4.1).
    pub fn get_blob(&self, h: &Hash) -> Option<&Cap> {
        self.blobs.get(h)
    }

    /// The working entry `r` (KSPEC-1 §4.1).
    pub fn get_working(&self, r: CapRef) -> Option<&Cap> {
        self.working.get(&r)
    }

    /// The working entry `r`, for the embedder to change in place (KSPEC-1 §4.1).
    pub fn get_working_mut(&mut self, r: CapRef) -> Option<&mut Cap> {
        self.working.get_mut(&r)
    }

    /// `contains(h)`: whether the blob tier has key `h` (KSPEC-1 §4.2).
    pub fn contains(&self, h: &Hash) -> bool {
        self.blobs.contains_key(h)
    }

    /// `put_working(cap) → CapRef`: embedder-only; stores `cap` as a working entry under the next
    /// CapRef (1, 2, …). Working entries are not validated (KSPEC-1 §4.2).
    pub fn put_working(&mut self, cap: Cap) -> Result<CapRef, CacheError> {
        let next = self.last_ref.checked_add(1).ok_or(CacheError::RefsExhausted)?;
        self.last_ref = next;
        let r = CapRef(next);
        self.working.insert(r, cap);
        Ok(r)
    }

    /// The last CapRef issued, if any. Issuing only ever increases it (KSPEC-1 §1).
    pub fn last_issued_ref(&self) -> Option<CapRef> {
        (self.last_ref != 0).then_some(CapRef(self.last_ref))
    }

    /// All blob keys in ascending byte order (KSPEC-1 §4.2, §12.2).
    pub fn blob_keys(&self) -> Vec<Hash> {
        self.blobs.keys().copied().collect()
    }

    /// All working-tier references in ascending order (KSPEC-1 §12.2).
    pub fn working_refs(&self) -> Vec<CapRef> {
        self.working.keys().copied().collect()
    }

    /// The blobs in ascending key order (KSPEC-1 §4.1).
    pub fn blobs(&self) -> impl Iterator<Item = (&Hash, &Cap)> + '_ {
        self.blobs.iter()
    }

    /// The number of blobs (KSPEC-1 §4.1).
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// The number of working entries (KSPEC-1 §4.1).
    pub fn working_count(&self) -> usize {
        self.working.len()
    }

    /// Checks the blob-tier invariants: every key is its content's cap hash, no blob holds a
    /// reference form, and every blob passes put validation against the tier, which includes
    /// closure (KSPEC-1 §4.4, §12.4, §13.1).
    pub fn check_integrity(&self) -> Result<(), IntegrityError> {
        let lookup = |h: &Hash| self.blobs.get(h).map(Cap::kind);
        for (key, cap) in &self.blobs {
            let fail = |error| IntegrityError { key: *key, error };
            let actual = cap_hash(cap).map_err(|e| fail(e.into()))?;
            if actual != *key {
                return Err(fail(CacheError::HashMismatch { asserted: *key, actual }));
            }
            validate(cap, &lookup).map_err(|e| fail(e.into()))?;
        }
        Ok(())
    }

    /// `settle(key) → Hash` (KSPEC-1 §4.5).
    ///
    /// - `Hash(h)` returns `h` and does nothing else; presence is not checked.
    /// - `Ref(r)` settles every reference nested in entry `r` (cnode slot targets, an Instance's
    ///   root cnode) depth first in ascending slot order, rewrites them to hash form and hashes
    ///   the entry. Data, CNode, Image and Type entries move to the blob tier (an existing blob
    ///   under the same key stays) and their references cease to exist. An Instance stays in the
    ///   working tier, rewritten, and its hash is not inserted. Each distinct reference is settled
    ///   once per call; later occurrences get the same hash.
    ///
    /// Errors (nothing changes): an unknown reference, a reference that contains itself, an entry
    /// that cannot be encoded, or an entry bound for the blob tier that fails put validation.
    pub fn settle(&mut self, key: &CapHashOrRef) -> Result<Hash, CacheError> {
        match key {
            CapHashOrRef::Hash(h) => Ok(*h),
            CapHashOrRef::Ref(r) => self.settle_ref(*r),
        }
    }

    fn settle_ref(&mut self, root: CapRef) -> Result<Hash, CacheError> {
        struct Frame {
            r: CapRef,
            children: Vec<CapRef>,
            next: usize,
        }
        let open_frame = |r: CapRef, cap: &Cap| Frame { r, children: nested_refs(cap), next: 0 };

        let root_cap = self.working.get(&root).ok_or(CacheError::UnknownRef(root))?;
        let mut settled: BTreeMap<CapRef, Hash> = BTreeMap::new();
        let mut open: BTreeSet<CapRef> = BTreeSet::from([root]);
        let mut staged = Staged::new();
        // Completed entries in settle order, with their rewritten form when they had references.
        let mut done: Vec<(CapRef, Hash, Option<Cap>)> = Vec::new();
        let mut stack = vec![open_frame(root, root_cap)];

        while let Some(top) = stack.last_mut() {
            if let Some(&child) = top.children.get(top.next) {
                top.next += 1;
                if settled.contains_key(&child) {
                    continue;
                }
                if open.contains(&child) {
                    return Err(CacheError::RefCycle(child));
                }
                let cap = self.working.get(&child).ok_or(CacheError::UnknownRef(child))?;
                open.insert(child);
                stack.push(open_frame(child, cap));
                continue;
            }
            let Some(frame) = stack.pop() else { break };
            let Some(original) = self.working.get(&frame.r) else {
                return Err(CacheError::UnknownRef(frame.r));
            };
            let rewritten = rewrite_refs(original, &settled);
            let cap = rewritten.as_ref().unwrap_or(original);
            let h = cap_hash(cap)?;
            if cap.kind() != CapKind::Instance && self.admit(&h, cap, &staged)? {
                staged.insert(h, cap.kind());
            }
            open.remove(&frame.r);
            settled.insert(frame.r, h);
            done.push((frame.r, h, rewritten));
        }

        for (r, h, rewritten) in done {
            let Some(original) = self.working.remove(&r) else { continue };
            let cap = rewritten.unwrap_or(original);
            if cap.kind() == CapKind::Instance {
                self.working.insert(r, cap);
            } else {
                self.blobs.entry(h).or_insert(cap);
            }
        }
        settled.get(&root).copied().ok_or(CacheError::UnknownRef(root))
    }
}

/// The references nested directly in `cap`, in the order settle meets them (KSPEC-1 §4.5).
fn nested_refs(cap: &Cap) -> Vec<CapRef> {
    match cap {
        Cap::CNode(c) => c.refs().collect(),
        Cap::Instance(i) => i.root_cnode.as_cap_ref().into_iter().collect(),
        Cap::Data(_) | Cap::Image(_) | Cap::Type(_) => Vec::new(),
    }
}

/// `cap` with every nested reference replaced by its settled hash, or `None` if it has none.
fn rewrite_refs(cap: &Cap, settled: &BTreeMap<CapRef, Hash>) -> Option<Cap> {
    let swap = |t: &mut CapHashOrRef| {
        if let CapHashOrRef::Ref(r) = t {
            if let Some(h) = settled.get(r) {
                *t = CapHashOrRef::Hash(*h);
            }
        }
    };
    match cap {
        Cap::CNode(c) if c.has_refs() => {
            let mut c = c.clone();
            c.slots.values_mut().for_each(swap);
            Some(Cap::CNode(c))
        }
        Cap::Instance(i) if i.root_cnode.as_cap_ref().is_some() => {
            let mut i = i.clone();
            swap(&mut i.root_cnode);
            Some(Cap::Instance(i))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::TypeCap;
    use crate::cap::{CNodeCap, DataCap, ImageCap, ImageSlotEntry, InstanceCap, MemoryMapping, RwOverlay, SlotIdx};
    use crate::hash::hash_pair;
    use crate::hash::tests::hx;
    use crate::validate::SlotList;

    fn data(s: &[u8]) -> Cap {
        Cap::Data(DataCap::padded(s))
    }

    fn cnode(size_log: u8, slots: &[(u32, CapHashOrRef)]) -> Cap {
        Cap::CNode(CNodeCap { size_log, slots: slots.iter().copied().collect() })
    }

    fn hash_of(cap: &Cap) -> Hash {
        cap_hash(cap).unwrap()
    }

    /// A cache holding an empty image and an empty size_log-4 cnode; returns their keys.
    fn with_image_and_cnode() -> (CacheDirectory, Hash, Hash) {
        let mut c = CacheDirectory::new();
        let img = c.put(ImageCap::empty().into()).unwrap();
        let cn = c.put(cnode(4, &[])).unwrap();
        (c, img, cn)
    }

    fn snapshot(c: &CacheDirectory) -> (Vec<Hash>, Vec<(CapRef, Cap)>, u64) {
        (c.blob_keys(), c.working.iter().map(|(r, cap)| (*r, cap.clone())).collect(), c.last_ref)
    }

    #[test]
    fn put_stores_under_the_cap_hash() {
        let mut c = CacheDirectory::new();
        let cap = cnode(3, &[]);
        let h = c.put(cap.clone()).unwrap();
        assert_eq!(h, hx("45365cad6e982d8969c81c3c92dc35503b56c6420dae5bfb6326965811646f74"));
        assert!(c.contains(&h));
        assert_eq!(c.get_blob(&h), Some(&cap));
        assert_eq!(c.get(&CapHashOrRef::Hash(h)), Some(&cap));
        assert_eq!(c.blob_count(), 1);
    }

    #[test]
    fn put_twice_gives_the_same_key_and_changes_nothing() {
        let mut c = CacheDirectory::new();
        let h1 = c.put(data(b"hello")).unwrap();
        let before = snapshot(&c);
        let h2 = c.put(data(b"hello")).unwrap();
        assert_eq!(h1, h2);
        assert_eq!(snapshot(&c), before);
    }

    #[test]
    fn present_key_skips_validation() {
        let mut c = CacheDirectory::new();
        let d = c.put(data(b"x")).unwrap();
        let mut img = ImageCap::empty();
        img.pinned = vec![ImageSlotEntry { slot: SlotIdx(1), cap_hash: d }];
        let ih = c.put(img.clone().into()).unwrap();
        // Re-putting the same image is a no-op returning the same key.
        assert_eq!(c.put(img.into()), Ok(ih));
    }

    #[test]
    fn failed_put_leaves_the_cache_unchanged() {
        let (mut c, img, cn) = with_image_and_cnode();
        let before = snapshot(&c);
        let mut missing_pin = ImageCap::empty();
        missing_pin.pinned = vec![ImageSlotEntry { slot: SlotIdx(1), cap_hash: [0xEE; 32] }];
        let mut pin_zero = ImageCap::empty();
        pin_zero.pinned = vec![ImageSlotEntry { slot: SlotIdx(0), cap_hash: cn }];
        let cases: Vec<(Cap, CacheError)> = vec![
            (Cap::Data(DataCap { content: vec![1; 5] }), ValidationError::DataNotPageMultiple { len: 5 }.into()),
            (cnode(17, &[]), ValidationError::CNodeSizeLog { size_log: 17 }.into()),
            (
                cnode(2, &[(4, CapHashOrRef::Hash([0; 32]))]),
                ValidationError::CNodeSlotOutOfRange { slot: 4, size_log: 2 }.into(),
            ),
            (cnode(2, &[(1, CapHashOrRef::Ref(CapRef(1)))]), EncodeError::RefInCNode { slot: 1 }.into()),
            (
                missing_pin.into(),
                ValidationError::SlotEntryTargetMissing { list: SlotList::Pinned, slot: 1, target: [0xEE; 32] }.into(),
            ),
            (pin_zero.into(), ValidationError::PinnedSlotZero.into()),
            (
                InstanceCap::new([0; 32], cn, CapHashOrRef::Hash(cn)).into(),
                ValidationError::InstanceImageNotFound { hash: cn, found: Some(CapKind::CNode) }.into(),
            ),
            (
                InstanceCap::new([0; 32], img, CapHashOrRef::Hash(img)).into(),
                ValidationError::InstanceRootNotFound { hash: img, found: Some(CapKind::Image) }.into(),
            ),
            (
                InstanceCap::new([0; 32], img, CapHashOrRef::Hash([0xEE; 32])).into(),
                ValidationError::InstanceRootNotFound { hash: [0xEE; 32], found: None }.into(),
            ),
            (InstanceCap::new([0; 32], img, CapHashOrRef::Ref(CapRef(1))).into(), EncodeError::RefRootCNode.into()),
        ];
        for (cap, err) in cases {
            assert_eq!(c.check_put(&cap), Err(err));
            assert_eq!(c.put(cap), Err(err));
            assert_eq!(snapshot(&c), before);
        }
    }

    #[test]
    fn instance_put_needs_image_and_cnode_blobs() {
        let (mut c, img, cn) = with_image_and_cnode();
        let inst = InstanceCap::new([0x42; 32], img, CapHashOrRef::Hash(cn));
        let h = c.put(inst.clone().into()).unwrap();
        assert_eq!(c.get_blob(&h), Some(&Cap::Instance(inst)));
        c.check_integrity().unwrap();
    }

    #[test]
    fn put_with_hash_is_verified_in_debug_builds() {
        let mut c = CacheDirectory::new();
        let cap = data(b"hi");
        let h = hash_of(&cap);
        if cfg!(debug_assertions) {
            assert_eq!(
                c.put_with_hash([0; 32], cap.clone()),
                Err(CacheError::HashMismatch { asserted: [0; 32], actual: h })
            );
            assert_eq!(c.blob_count(), 0);
        }
        assert_eq!(c.put_with_hash(h, cap.clone()), Ok(h));
        assert_eq!(c.put_with_hash(h, cap), Ok(h));
        assert_eq!(c.blob_count(), 1);
        let odd = Cap::Data(DataCap { content: vec![0; 4097] });
        let want = if cfg!(debug_assertions) {
            CacheError::HashMismatch { asserted: [0x77; 32], actual: hash_of(&odd) }
        } else {
            ValidationError::DataNotPageMultiple { len: 4097 }.into()
        };
        assert_eq!(c.put_with_hash([0x77; 32], odd), Err(want));
        assert_eq!(c.blob_count(), 1);
    }

    #[test]
    fn put_all_validates_against_earlier_caps_and_commits_together() {
        let (mut c, img, _) = with_image_and_cnode();
        let child = cnode(4, &[(1, CapHashOrRef::Hash([0x77; 32]))]);
        let child_h = hash_of(&child);
        let inst: Cap = InstanceCap::new([0; 32], img, CapHashOrRef::Hash(child_h)).into();
        assert!(c.check_put(&inst).is_err(), "the child cnode is not stored yet");
        let before = snapshot(&c);

        let mut bad = InstanceCap::new([0; 32], img, CapHashOrRef::Hash(child_h));
        bad.rw_overlays.push(RwOverlay { start: 1, bytes: vec![] });
        assert_eq!(
            c.put_all(vec![child.clone(), bad.into()]),
            Err(ValidationError::OverlayStartUnaligned { index: 0, start: 1 }.into())
        );
        assert_eq!(snapshot(&c), before, "nothing of a failed batch is stored");

        let hashes = c.put_all(vec![child.clone(), inst.clone()]).unwrap();
        assert_eq!(hashes, vec![child_h, hash_of(&inst)]);
        assert_eq!(c.blob_count(), before.0.len() + 2);
        c.check_integrity().unwrap();
    }

    #[test]
    fn put_all_repeats_and_present_keys_are_no_ops() {
        let (mut c, _, cn) = with_image_and_cnode();
        let n = c.blob_count();
        let hashes = c.put_all(vec![cnode(4, &[]), data(b"a"), data(b"a")]).unwrap();
        assert_eq!(hashes[0], cn);
        assert_eq!(hashes[1], hashes[2]);
        assert_eq!(c.blob_count(), n + 1);
    }

    #[test]
    fn derive_spawn_shaped_puts_reproduce_the_img_halt_vector() {
        // Parent chain C1*32 spawns IMG_HALT from an empty size_log-4 prepared cnode: the child
        // cnode equals the prepared one, so the cache gains exactly one key.
        let mut c = CacheDirectory::new();
        let halt = c.put(ImageCap::with_code(vec![0x0A, 0x00], vec![0x01]).into()).unwrap();
        let prepared = c.put(cnode(4, &[])).unwrap();
        let n = c.blob_count();
        let inst = InstanceCap::new(hash_pair(&[0xC1; 32], &halt), halt, CapHashOrRef::Hash(prepared));
        let hashes = c.put_all(vec![cnode(4, &[]), inst.into()]).unwrap();
        assert_eq!(hashes[0], hx("bd57a89a32aa7e540fa42c579cb5a42f405a1467a005c3ee616a8925128ae0ed"));
        assert_eq!(hashes[1], hx("476b9e69dc3346370777dd8c614f41bc299ce22325709d868af326a544f1437a"));
        assert_eq!(c.blob_count(), n + 1);
    }

    #[test]
    fn derive_spawn_shaped_puts_reproduce_the_img_map_vector() {
        let mut c = CacheDirectory::new();
        let init = DataCap::padded(b"init");
        let init_h = c.put(init.clone().into()).unwrap();
        let mut img = ImageCap::with_code(vec![0x0A, 0x00], vec![0x01]);
        img.mappings.push(MemoryMapping { start: 0x1000, size: 0x1000, source_path: vec![SlotIdx(5)] });
        img.initial.push(ImageSlotEntry { slot: SlotIdx(5), cap_hash: init_h });
        let map = c.put(img.into()).unwrap();
        assert_eq!(map, hx("d5b6c99ad40fe91fd209047e501cd51999e1d9040cc28199df42090bed39ab89"));
        c.put(cnode(4, &[])).unwrap();
        let n = c.blob_count();
        let child = cnode(4, &[(5, CapHashOrRef::Hash(init_h))]);
        let mut inst = InstanceCap::new(hash_pair(&[0xC1; 32], &map), map, CapHashOrRef::Hash(hash_of(&child)));
        inst.rw_overlays.push(RwOverlay { start: 0x1000, bytes: init.content });
        inst.mem_size = 0x2000;
        let hashes = c.put_all(vec![child, inst.into()]).unwrap();
        assert_eq!(hashes[0], hx("e1ecc8e7c52dccd343565ace58dfc0e49cc43858075b60618da83b78ca4f83b4"));
        assert_eq!(hashes[1], hx("0b54d0f9bf9c53e199d14359eee5383f3ca917a3bb1c7e35585e7d263e45dd81"));
        assert_eq!(c.blob_count(), n + 2);
    }

    #[test]
    fn type_caps_of_one_lineage_share_a_key() {
        let mut c = CacheDirectory::new();
        let a = c.put(TypeCap { image_hash_chain: [0x42; 32] }.into()).unwrap();
        let b = c.put(TypeCap { image_hash_chain: [0x42; 32] }.into()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, hx("f7dd2ba573d949725da0a93e2c74c3f9541ba72ef4c0a1c7605abffda9aa112f"));
        assert_eq!(c.blob_count(), 1);
    }

    #[test]
    fn get_looks_up_the_tier_of_the_form() {
        let mut c = CacheDirectory::new();
        let h = c.put(data(b"blob")).unwrap();
        let r = c.put_working(data(b"work")).unwrap();
        assert_eq!(c.get(&CapHashOrRef::Hash(h)), Some(&data(b"blob")));
        assert_eq!(c.get(&CapHashOrRef::Ref(r)), Some(&data(b"work")));
        assert_eq!(c.get_working(r), Some(&data(b"work")));
        assert_eq!(c.get(&CapHashOrRef::Hash([0; 32])), None);
        assert_eq!(c.get(&CapHashOrRef::Ref(CapRef(0))), None);
        assert_eq!(c.get(&CapHashOrRef::Ref(CapRef(99))), None);
        assert!(!c.contains(&hash_of(&data(b"work"))), "working entries are not blobs");
    }

    #[test]
    fn caprefs_start_at_1_and_only_increase() {
        let mut c = CacheDirectory::new();
        assert_eq!(c.last_issued_ref(), None);
        let r1 = c.put_working(data(b"a")).unwrap();
        let r2 = c.put_working(data(b"a")).unwrap();
        assert_eq!((r1, r2), (CapRef(1), CapRef(2)), "equal content still gets a fresh ref");
        c.settle(&CapHashOrRef::Ref(r2)).unwrap();
        c.settle(&CapHashOrRef::Ref(r1)).unwrap();
        assert_eq!(c.working_count(), 0);
        let r3 = c.put_working(data(b"b")).unwrap();
        assert_eq!(r3, CapRef(3), "used-up refs are never reissued");
        assert_eq!(c.last_issued_ref(), Some(CapRef(3)));
        assert_eq!(c.working_refs(), vec![CapRef(3)]);
    }

    #[test]
    fn caprefs_never_wrap() {
        let mut c = CacheDirectory::new();
        c.last_ref = u64::MAX - 1;
        assert_eq!(c.put_working(data(b"a")), Ok(CapRef(u64::MAX)));
        let before = snapshot(&c);
        assert_eq!(c.put_working(data(b"b")), Err(CacheError::RefsExhausted));
        assert_eq!(snapshot(&c), before);
    }

    #[test]
    fn working_entries_are_mutable_and_unvalidated() {
        let mut c = CacheDirectory::new();
        let r = c.put_working(Cap::Data(DataCap { content: vec![1; 3] })).unwrap();
        if let Some(Cap::Data(d)) = c.get_working_mut(r) {
            d.content.resize(4096, 0);
        }
        let h = c.settle(&CapHashOrRef::Ref(r)).unwrap();
        let mut want = vec![0u8; 4096];
        want[..3].copy_from_slice(&[1, 1, 1]);
        assert_eq!(c.get_blob(&h), Some(&Cap::Data(DataCap { content: want })));
    }

    #[test]
    fn settle_hash_form_is_identity_without_presence_check() {
        let mut c = CacheDirectory::new();
        let before = snapshot(&c);
        assert_eq!(c.settle(&CapHashOrRef::Hash([0x5A; 32])), Ok([0x5A; 32]));
        assert_eq!(snapshot(&c), before);
    }

    #[test]
    fn settle_moves_a_leaf_into_the_blob_tier() {
        let mut c = CacheDirectory::new();
        let r = c.put_working(data(b"leaf")).unwrap();
        let h = c.settle(&CapHashOrRef::Ref(r)).unwrap();
        assert_eq!(h, hash_of(&data(b"leaf")));
        assert_eq!(c.get_blob(&h), Some(&data(b"leaf")));
        assert_eq!(c.get_working(r), None, "the ref no longer exists");
        assert_eq!(c.settle(&CapHashOrRef::Ref(r)), Err(CacheError::UnknownRef(r)));
    }

    #[test]
    fn settle_keeps_an_existing_blob() {
        let mut c = CacheDirectory::new();
        let h = c.put(data(b"same")).unwrap();
        let r = c.put_working(data(b"same")).unwrap();
        assert_eq!(c.settle(&CapHashOrRef::Ref(r)), Ok(h));
        assert_eq!(c.blob_count(), 1);
        assert_eq!(c.working_count(), 0);
    }

    #[test]
    fn settle_unknown_ref_fails() {
        let mut c = CacheDirectory::new();
        assert_eq!(c.settle(&CapHashOrRef::Ref(CapRef(0))), Err(CacheError::UnknownRef(CapRef(0))));
        assert_eq!(c.settle(&CapHashOrRef::Ref(CapRef(7))), Err(CacheError::UnknownRef(CapRef(7))));
    }

    #[test]
    fn settle_rewrites_nested_refs_once_each() {
        let mut c = CacheDirectory::new();
        let leaf = c.put_working(data(b"leaf")).unwrap();
        let inner = c.put_working(cnode(0, &[(0, CapHashOrRef::Ref(leaf))])).unwrap();
        let outer = c
            .put_working(cnode(
                4,
                &[
                    (1, CapHashOrRef::Ref(leaf)),
                    (2, CapHashOrRef::Hash([0xAB; 32])),
                    (3, CapHashOrRef::Ref(inner)),
                    (9, CapHashOrRef::Ref(leaf)),
                ],
            ))
            .unwrap();
        let h = c.settle(&CapHashOrRef::Ref(outer)).unwrap();

        let leaf_h = hash_of(&data(b"leaf"));
        let inner_h = hash_of(&cnode(0, &[(0, CapHashOrRef::Hash(leaf_h))]));
        let outer_settled = cnode(
            4,
            &[
                (1, CapHashOrRef::Hash(leaf_h)),
                (2, CapHashOrRef::Hash([0xAB; 32])),
                (3, CapHashOrRef::Hash(inner_h)),
                (9, CapHashOrRef::Hash(leaf_h)),
            ],
        );
        assert_eq!(h, hash_of(&outer_settled));
        assert_eq!(c.get_blob(&h), Some(&outer_settled));
        assert!(c.contains(&leaf_h) && c.contains(&inner_h));
        assert_eq!(c.working_count(), 0);
        c.check_integrity().unwrap();
    }

    #[test]
    fn settle_keeps_instances_in_the_working_tier() {
        let (mut c, img, _) = with_image_and_cnode();
        let root = c.put_working(cnode(2, &[(1, CapHashOrRef::Hash([0xAA; 32]))])).unwrap();
        let inst = c.put_working(InstanceCap::new([0x42; 32], img, CapHashOrRef::Ref(root)).into()).unwrap();
        let blobs_before = c.blob_count();
        let h = c.settle(&CapHashOrRef::Ref(inst)).unwrap();

        let root_h = hash_of(&cnode(2, &[(1, CapHashOrRef::Hash([0xAA; 32]))]));
        let settled = Cap::Instance(InstanceCap::new([0x42; 32], img, CapHashOrRef::Hash(root_h)));
        assert_eq!(h, hash_of(&settled));
        assert!(!c.contains(&h), "an instance hash is only a snapshot name");
        assert!(c.contains(&root_h));
        assert_eq!(c.blob_count(), blobs_before + 1);
        assert_eq!(c.get_working(inst), Some(&settled), "rewritten to hash form in place");
        assert_eq!(c.get_working(root), None);
        assert_eq!(c.settle(&CapHashOrRef::Ref(inst)), Ok(h), "settling again gives the same hash");
    }

    #[test]
    fn settle_of_a_cnode_holding_an_instance_ref() {
        let (mut c, img, cn) = with_image_and_cnode();
        let inst = c.put_working(InstanceCap::new([1; 32], img, CapHashOrRef::Hash(cn)).into()).unwrap();
        let holder = c.put_working(cnode(1, &[(0, CapHashOrRef::Ref(inst))])).unwrap();
        let h = c.settle(&CapHashOrRef::Ref(holder)).unwrap();
        let inst_h = hash_of(c.get_working(inst).unwrap());
        assert_eq!(c.get_blob(&h), Some(&cnode(1, &[(0, CapHashOrRef::Hash(inst_h))])));
        assert!(!c.contains(&inst_h));
        assert_eq!(c.working_refs(), vec![inst]);
    }

    #[test]
    fn settle_validates_against_what_it_settles_earlier() {
        let mut c = CacheDirectory::new();
        let d = c.put_working(data(b"pinned")).unwrap();
        let mut img = ImageCap::empty();
        img.pinned = vec![ImageSlotEntry { slot: SlotIdx(3), cap_hash: hash_of(&data(b"pinned")) }];
        let i = c.put_working(img.clone().into()).unwrap();
        let before = snapshot(&c);
        // On its own the image names a target that is not a blob yet.
        assert!(matches!(c.settle(&CapHashOrRef::Ref(i)), Err(CacheError::Invalid(_))));
        assert_eq!(snapshot(&c), before);
        // Reached after the data in ascending slot order, it settles.
        let holder = c.put_working(cnode(2, &[(0, CapHashOrRef::Ref(d)), (1, CapHashOrRef::Ref(i))])).unwrap();
        c.settle(&CapHashOrRef::Ref(holder)).unwrap();
        assert!(c.contains(&hash_of(&img.into())));
        c.check_integrity().unwrap();
    }

    #[test]
    fn settle_detects_cycles_and_changes_nothing() {
        let mut c = CacheDirectory::new();
        // Direct: the cnode holds its own ref (refs are issued 1, 2, … so the next is known).
        let own = CapRef(1);
        assert_eq!(c.put_working(cnode(0, &[(0, CapHashOrRef::Ref(own))])), Ok(own));
        let before = snapshot(&c);
        assert_eq!(c.settle(&CapHashOrRef::Ref(own)), Err(CacheError::RefCycle(own)));
        assert_eq!(snapshot(&c), before);

        // Through an instance: instance → root cnode → instance.
        let (img, cn) = (c.put(ImageCap::empty().into()).unwrap(), c.put(cnode(0, &[])).unwrap());
        let inst = c.put_working(InstanceCap::new([0; 32], img, CapHashOrRef::Hash(cn)).into()).unwrap();
        let root = c.put_working(cnode(1, &[(0, CapHashOrRef::Hash([9; 32])), (1, CapHashOrRef::Ref(inst))])).unwrap();
        if let Some(Cap::Instance(i)) = c.get_working_mut(inst) {
            i.root_cnode = CapHashOrRef::Ref(root);
        }
        let before = snapshot(&c);
        assert_eq!(c.settle(&CapHashOrRef::Ref(inst)), Err(CacheError::RefCycle(inst)));
        assert_eq!(c.settle(&CapHashOrRef::Ref(root)), Err(CacheError::RefCycle(root)));
        assert_eq!(snapshot(&c), before);
    }

    #[test]
    fn failed_settle_moves_nothing() {
        let mut c = CacheDirectory::new();
        let good = c.put_working(data(b"good")).unwrap();
        let bad = c.put_working(Cap::Data(DataCap { content: vec![0; 10] })).unwrap();
        let holder = c
            .put_working(cnode(
                2,
                &[(0, CapHashOrRef::Ref(good)), (1, CapHashOrRef::Ref(bad)), (2, CapHashOrRef::Ref(CapRef(99)))],
            ))
            .unwrap();
        let before = snapshot(&c);
        assert_eq!(c.settle(&CapHashOrRef::Ref(holder)), Err(ValidationError::DataNotPageMultiple { len: 10 }.into()));
        assert_eq!(snapshot(&c), before, "the good sibling settled first is not moved either");

        if let Some(Cap::Data(d)) = c.get_working_mut(bad) {
            d.content.resize(4096, 0);
        }
        assert_eq!(c.settle(&CapHashOrRef::Ref(holder)), Err(CacheError::UnknownRef(CapRef(99))));
        assert_eq!(c.blob_count(), 0);
    }

    #[test]
    fn settle_of_an_out_of_range_cnode_fails() {
        let mut c = CacheDirectory::new();
        let r = c.put_working(cnode(1, &[(2, CapHashOrRef::Hash([0; 32]))])).unwrap();
        assert_eq!(
            c.settle(&CapHashOrRef::Ref(r)),
            Err(ValidationError::CNodeSlotOutOfRange { slot: 2, size_log: 1 }.into())
        );
        assert_eq!(c.working_refs(), vec![r]);
    }

    #[test]
    fn settle_handles_deep_chains_without_recursion() {
        let mut c = CacheDirectory::new();
        let mut prev = c.put_working(data(b"bottom")).unwrap();
        for _ in 0..20_000 {
            prev = c.put_working(cnode(0, &[(0, CapHashOrRef::Ref(prev))])).unwrap();
        }
        let h = c.settle(&CapHashOrRef::Ref(prev)).unwrap();
        assert!(c.contains(&h));
        assert_eq!(c.working_count(), 0);
        // 20 000 distinct cnodes plus the data.
        assert_eq!(c.blob_count(), 20_001);
    }

    #[test]
    fn keys_and_refs_are_listed_in_ascending_order() {
        let mut c = CacheDirectory::new();
        for s in [&b"c"[..], b"a", b"b", b"d"] {
            c.put(data(s)).unwrap();
            c.put_working(data(s)).unwrap();
        }
        let keys = c.blob_keys();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(c.working_refs(), vec![CapRef(1), CapRef(2), CapRef(3), CapRef(4)]);
        assert_eq!(c.blobs().map(|(k, _)| *k).collect::<Vec<_>>(), keys);
    }

    #[test]
    fn integrity_check_finds_a_wrong_key_and_a_broken_closure() {
        let (mut c, img, cn) = with_image_and_cnode();
        c.check_integrity().unwrap();
        let mut bad = c.clone();
        bad.blobs.insert([0; 32], data(b"x"));
        let err = bad.check_integrity().unwrap_err();
        assert_eq!(err.key, [0; 32]);
        assert!(matches!(err.error, CacheError::HashMismatch { .. }));

        let inst = c.put(InstanceCap::new([0; 32], img, CapHashOrRef::Hash(cn)).into()).unwrap();
        c.blobs.remove(&cn);
        let err = c.check_integrity().unwrap_err();
        assert_eq!(err.key, inst);
        assert_eq!(err.error, ValidationError::InstanceRootNotFound { hash: cn, found: None }.into());
        assert!(!err.to_string().is_empty());
    }

    #[test]
    fn errors_display_and_chain() {
        use std::error::Error;
        let all = [
            CacheError::Encode(EncodeError::RefRootCNode),
            CacheError::Invalid(ValidationError::PinnedSlotZero),
            CacheError::HashMismatch { asserted: [0; 32], actual: [1; 32] },
            CacheError::UnknownRef(CapRef(3)),
            CacheError::RefCycle(CapRef(4)),
            CacheError::RefsExhausted,
        ];
        for e in &all {
            assert!(!e.to_string().is_empty());
        }
        assert!(all[0].source().is_some() && all[1].source().is_some() && all[3].source().is_none());
    }
}
