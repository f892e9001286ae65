//! javm-cap: the capability layer of javm (KSPEC-1 §1–§5). It knows nothing about execution.
//!
//! - [`hash`]: Blake2b-256, `hash_pair` and the lineage chain (§3.1, §3.4).
//! - [`cap`]: the five cap kinds and `CapHashOrRef` (§2).
//! - [`jcap`]: the JCAP-1 canonical encoding and `cap_hash` (§3.2, §3.3).
//! - [`cnode`]: slot access, bounds, minting and pinned slots (§5).
//! - [`validate`](mod@validate): put validation (§4.3).
//! - [`cache`]: the cache directory with its blob and working tiers, put, get and settle (§4).

#![forbid(unsafe_code)]

pub mod cache;
pub mod cap;
pub mod cnode;
pub mod hash;
pub mod jcap;
pub mod validate;

#[cfg(test)]
mod jcap_vectors;

pub use cache::{CacheDirectory, CacheError, IntegrityError};
pub use cap::{
    CNodeCap, Cap, CapHashOrRef, CapKind, CapRef, DataCap, EndpointDef, ImageCap, ImageSlotEntry, InstanceCap,
    MemoryMapping, RwOverlay, SlotIdx, TypeCap,
};
pub use cnode::{CNodeError, PinnedSlots};
pub use hash::{blake2b256, extend_chain, hash_pair, Blake2b256, Hash, OOG_MARKER};
pub use jcap::{cap_hash, encode_jcap1, EncodeError};
pub use validate::{validate, SlotList, ValidationError};

/// The number of guest registers, `φ[0]..=φ[12]` (KSPEC-1 §1).
pub const NUM_REGS: usize = 13;

/// The page size that Data content, mappings and overlays are built from (KSPEC-1 §1).
pub const PAGE_SIZE: u64 = 4096;

/// The largest cnode `size_log`; a cnode has `2^size_log` slots (KSPEC-1 §1, §2.4).
pub const MAX_CNODE_SIZE_LOG: u8 = 16;

/// Every Image carries exactly this many endpoint records (KSPEC-1 §1, §2.5).
pub const MAX_ENDPOINTS: usize = 64;

/// The most steps a mapping's source path may have (KSPEC-1 §1, §4.3).
pub const MAX_SOURCE_DEPTH: usize = 8;

/// Image pinned, initial and yield-marker slots must be below this, `2^16` (KSPEC-1 §4.3).
pub const IMAGE_SLOT_LIMIT: u32 = 1 << MAX_CNODE_SIZE_LOG;

/// The size of the 32-bit guest address space, `2^32` (KSPEC-1 §1).
pub const ADDRESS_SPACE: u64 = 1 << 32;
