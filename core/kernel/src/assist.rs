//! Kernel-assist services: the state that lives outside the cap graph (KSPEC-1 §7).
//!
//! [`KernelAssist`] is what the ecall handler uses; [`InMemoryAssist`] is the normative
//! in-memory implementation the harness runs with (§7.2).

use std::collections::BTreeMap;

use javm_cap::{blake2b256, CapHashOrRef, Hash};

/// Everything KOBS-1 records about the kernel-assist state (KSPEC-1 §12.2, §12.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssistSnapshot {
    /// Every quota entry, zeros included, ascending by id.
    pub quotas: Vec<(u64, u64)>,
    /// Registered files, ascending by id.
    pub files: Vec<(u64, CapHashOrRef)>,
    /// The id the next save gets.
    pub next_file_id: u64,
    /// Catchers ascending by hash, each with its markers in stored order.
    pub catchers: Vec<(Hash, Vec<Hash>)>,
}

/// The interface the kernel uses for quotas, files and yield catchers (KSPEC-1 §7.1).
pub trait KernelAssist {
    /// The quota `id`; a missing entry reads as 0.
    fn storage_quota_get(&self, id: u64) -> u64;
    /// Sets quota `id` and returns the previous value (0 if there was none).
    fn storage_quota_set(&mut self, id: u64, value: u64) -> u64;
    /// The target registered for `file_id`.
    fn host_open(&self, file_id: u64) -> Option<CapHashOrRef>;
    /// Debits `size` from quota `quota_id`, registers `target` under a fresh file id and returns
    /// it; `None`, with nothing changed, when the quota is below `size`.
    fn host_save(&mut self, target: CapHashOrRef, quota_id: u64, size: u64) -> Option<u64>;
    /// The markers of `catcher` in insertion order; empty for an unknown catcher.
    fn yield_catcher_markers(&self, catcher: &Hash) -> Vec<Hash>;
    /// The observable state, for KOBS-1.
    fn snapshot(&self) -> AssistSnapshot;
}

/// The in-memory kernel-assist of KSPEC-1 §7.2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InMemoryAssist {
    quotas: BTreeMap<u64, u64>,
    files: BTreeMap<u64, CapHashOrRef>,
    next_file_id: u64,
    catchers: BTreeMap<Hash, Vec<Hash>>,
    next_catcher_nonce: u64,
}

impl Default for InMemoryAssist {
    fn default() -> Self {
        InMemoryAssist {
            quotas: BTreeMap::new(),
            files: BTreeMap::new(),
            next_file_id: 1,
            catchers: BTreeMap::new(),
            next_catcher_nonce: 0,
        }
    }
}

impl InMemoryAssist {
    /// Empty state: no quotas, files or catchers; the first file id is 1 and the first catcher
    /// nonce 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `target` as file `id` (embedder API).
    pub fn register_file(&mut self, id: u64, target: CapHashOrRef) {
        self.files.insert(id, target);
        self.next_file_id = self.next_file_id.max(id.saturating_add(1));
    }

    /// Creates a catcher named `Blake2b-256(u64 nonce)` with no markers and returns its hash.
    pub fn yield_catcher_new(&mut self) -> Hash {
        let h = blake2b256(&self.next_catcher_nonce.to_le_bytes());
        self.catchers.insert(h, Vec::new());
        self.next_catcher_nonce = self.next_catcher_nonce.wrapping_add(1);
        h
    }

    /// Appends `marker` to `catcher` (creating it if needed) unless it is already there.
    pub fn yield_catcher_add(&mut self, catcher: Hash, marker: Hash) {
        let markers = self.catchers.entry(catcher).or_default();
        if !markers.contains(&marker) {
            markers.push(marker);
        }
    }

    /// Removes every occurrence of `marker` from an existing catcher; never creates one and
    /// keeps the entry when its list becomes empty.
    pub fn yield_catcher_remove(&mut self, catcher: Hash, marker: Hash) {
        if let Some(markers) = self.catchers.get_mut(&catcher) {
            markers.retain(|m| *m != marker);
        }
    }

    /// Clears quotas and catchers; the catcher nonce and the files are kept.
    pub fn reset_block_state(&mut self) {
        self.quotas.clear();
        self.catchers.clear();
    }

    /// The id the next save gets.
    pub fn next_file_id(&self) -> u64 {
        self.next_file_id
    }
}

impl KernelAssist for InMemoryAssist {
    fn storage_quota_get(&self, id: u64) -> u64 {
        self.quotas.get(&id).copied().unwrap_or(0)
    }

    fn storage_quota_set(&mut self, id: u64, value: u64) -> u64 {
        self.quotas.insert(id, value).unwrap_or(0)
    }

    fn host_open(&self, file_id: u64) -> Option<CapHashOrRef> {
        self.files.get(&file_id).copied()
    }

    fn host_save(&mut self, target: CapHashOrRef, quota_id: u64, size: u64) -> Option<u64> {
        let q = self.storage_quota_get(quota_id);
        if q < size || self.next_file_id == u64::MAX {
            return None;
        }
        self.quotas.insert(quota_id, q - size);
        let fid = self.next_file_id;
        self.next_file_id += 1;
        self.files.insert(fid, target);
        Some(fid)
    }

    fn yield_catcher_markers(&self, catcher: &Hash) -> Vec<Hash> {
        self.catchers.get(catcher).cloned().unwrap_or_default()
    }

    fn snapshot(&self) -> AssistSnapshot {
        AssistSnapshot {
            quotas: self.quotas.iter().map(|(k, v)| (*k, *v)).collect(),
            files: self.files.iter().map(|(k, v)| (*k, *v)).collect(),
            next_file_id: self.next_file_id,
            catchers: self.catchers.iter().map(|(k, v)| (*k, v.clone())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use javm_cap::CapRef;

    fn hx(s: &str) -> Hash {
        let mut h = [0u8; 32];
        for (i, b) in h.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        h
    }

    #[test]
    fn quotas_read_zero_when_missing_and_set_returns_previous() {
        let mut a = InMemoryAssist::new();
        assert_eq!(a.storage_quota_get(7), 0);
        assert_eq!(a.storage_quota_set(7, 10), 0);
        assert_eq!(a.storage_quota_set(7, 3), 10);
        assert_eq!(a.storage_quota_get(7), 3);
        a.storage_quota_set(8, 0);
        assert_eq!(a.snapshot().quotas, vec![(7, 3), (8, 0)], "zero entries stay visible");
    }

    #[test]
    fn save_debits_and_issues_ids_from_one() {
        let mut a = InMemoryAssist::new();
        a.storage_quota_set(0, 8192);
        let t = CapHashOrRef::Hash([5; 32]);
        assert_eq!(a.host_save(t, 0, 4096), Some(1));
        assert_eq!(a.host_save(t, 0, 4096), Some(2));
        assert_eq!(a.storage_quota_get(0), 0);
        let before = a.clone();
        assert_eq!(a.host_save(t, 0, 1), None);
        assert_eq!(a, before, "a refused save changes nothing");
        assert_eq!(a.host_open(1), Some(t));
        assert_eq!(a.host_open(3), None);
    }

    #[test]
    fn save_keeps_a_ref_as_a_ref() {
        let mut a = InMemoryAssist::new();
        let r = CapHashOrRef::Ref(CapRef(4));
        assert_eq!(a.host_save(r, 9, 0), Some(1));
        assert_eq!(a.host_open(1), Some(r));
    }

    #[test]
    fn save_refuses_when_ids_run_out() {
        let mut a = InMemoryAssist::new();
        a.register_file(u64::MAX - 1, CapHashOrRef::Hash([1; 32]));
        assert_eq!(a.next_file_id(), u64::MAX);
        assert_eq!(a.host_save(CapHashOrRef::Hash([1; 32]), 0, 0), None);
        a.register_file(u64::MAX, CapHashOrRef::Hash([1; 32]));
        assert_eq!(a.next_file_id(), u64::MAX);
    }

    #[test]
    fn register_file_moves_next_id_past_it() {
        let mut a = InMemoryAssist::new();
        a.register_file(9, CapHashOrRef::Hash([1; 32]));
        assert_eq!(a.next_file_id(), 10);
        a.register_file(3, CapHashOrRef::Hash([1; 32]));
        assert_eq!(a.next_file_id(), 10);
    }

    #[test]
    fn catcher_nonce_zero_matches_the_spec_vector() {
        let mut a = InMemoryAssist::new();
        let c = a.yield_catcher_new();
        assert_eq!(c, hx("81e47a19e6b29b0a65b9591762ce5143ed30d0261e5d24a3201752506b20f15c"));
        assert_ne!(a.yield_catcher_new(), c);
    }

    #[test]
    fn catcher_markers_add_once_and_remove_all() {
        let mut a = InMemoryAssist::new();
        let c = a.yield_catcher_new();
        a.yield_catcher_add(c, [1; 32]);
        a.yield_catcher_add(c, [2; 32]);
        a.yield_catcher_add(c, [1; 32]);
        assert_eq!(a.yield_catcher_markers(&c), vec![[1; 32], [2; 32]]);
        a.yield_catcher_remove(c, [1; 32]);
        a.yield_catcher_remove(c, [2; 32]);
        assert!(a.yield_catcher_markers(&c).is_empty());
        assert_eq!(a.snapshot().catchers, vec![(c, vec![])], "an emptied catcher stays");
        a.yield_catcher_remove([9; 32], [1; 32]);
        assert_eq!(a.snapshot().catchers.len(), 1, "remove never creates");
        assert!(a.yield_catcher_markers(&[9; 32]).is_empty());
    }

    #[test]
    fn reset_clears_quotas_and_catchers_but_keeps_files_and_nonce() {
        let mut a = InMemoryAssist::new();
        a.storage_quota_set(1, 5);
        let c0 = a.yield_catcher_new();
        a.register_file(4, CapHashOrRef::Hash([1; 32]));
        a.reset_block_state();
        let s = a.snapshot();
        assert!(s.quotas.is_empty() && s.catchers.is_empty());
        assert_eq!(s.files.len(), 1);
        assert_ne!(a.yield_catcher_new(), c0, "the nonce is not reset");
    }
}
