//! The kernel's error kinds (KSPEC-1 §11) and the errors `invoke` / `call_resume` return
//! (KSPEC-1 §10).
//!
//! A [`KernelError`] is diagnostic only: every ecall that fails looks the same from outside,
//! `Exit(Trap)` with nothing changed. Both backends share this code, so the kind is the same on
//! both and the harness may compare it.

use std::fmt;

use javm_cap::{CNodeError, CacheError};

/// Why an ecall trapped or a frame could not be built (KSPEC-1 §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// No frame to act on.
    CallStackEmpty,
    /// A slot the op needs is empty (or out of range, which reads as empty).
    SlotEmpty(u32),
    /// A slot holds a reference form where a hash form is required.
    SlotKindMismatch(u32),
    /// A slot the op would change is pinned.
    SlotPinned(u32),
    /// A slot the op would write or take is outside the cnode.
    SlotOutOfRange(u32),
    /// `MGMT_CNODE_MINT` with `size_log > 16`.
    InvalidCNodeSize(u64),
    /// The target is not an Instance in the cache.
    InstanceNotFound,
    /// The target is not an Image in the cache.
    ImageNotFound,
    /// The target exists but is of the wrong kind (for example not a Data cap).
    WrongKind,
    /// The storage quota is below the debit.
    QuotaExhausted,
    /// A kernel memory access failed.
    MemoryFault,
    /// `HOST_OPEN` of a file that is not registered.
    UnknownFile,
    /// The kernel-assist refused `HOST_SAVE`.
    SaveRejected,
    /// An Image's program does not decode (empty code).
    DecodeFailed,
    /// Endpoint number 64 or more.
    EndpointOutOfRange(u64),
    /// An Instance's memory cannot be built.
    MapFailed,
    /// The call stack is at `max_depth`.
    StackFull,
    /// No frame below the yielder catches the marker.
    UnhandledMarker,
    /// MGMT ops 6..=15.
    UnknownMgmtOp(u32),
    /// `HOST_MAKE_IMAGE` and the cache-dependent ops without a cache.
    NotImplemented,
    /// The cache refused a put or a settle.
    CacheRejected(CacheError),
    /// Something that put validation and the cache invariants rule out.
    Invariant(&'static str),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::CallStackEmpty => f.write_str("the call stack is empty"),
            KernelError::SlotEmpty(s) => write!(f, "slot {s} is empty"),
            KernelError::SlotKindMismatch(s) => write!(f, "slot {s} holds a reference where a hash is required"),
            KernelError::SlotPinned(s) => write!(f, "slot {s} is pinned"),
            KernelError::SlotOutOfRange(s) => write!(f, "slot {s} is out of range"),
            KernelError::InvalidCNodeSize(n) => write!(f, "cnode size_log {n} is above 16"),
            KernelError::InstanceNotFound => f.write_str("the target is not an Instance in the cache"),
            KernelError::ImageNotFound => f.write_str("the target is not an Image in the cache"),
            KernelError::WrongKind => f.write_str("the target is not of the kind the op needs"),
            KernelError::QuotaExhausted => f.write_str("the storage quota is too small"),
            KernelError::MemoryFault => f.write_str("kernel memory access failed"),
            KernelError::UnknownFile => f.write_str("no such file"),
            KernelError::SaveRejected => f.write_str("the kernel-assist rejected the save"),
            KernelError::DecodeFailed => f.write_str("the image's program does not decode"),
            KernelError::EndpointOutOfRange(e) => write!(f, "endpoint {e} is not below 64"),
            KernelError::MapFailed => f.write_str("the instance's memory cannot be built"),
            KernelError::StackFull => f.write_str("the call stack is full"),
            KernelError::UnhandledMarker => f.write_str("no frame catches the yield marker"),
            KernelError::UnknownMgmtOp(op) => write!(f, "MGMT op {op} is not assigned"),
            KernelError::NotImplemented => f.write_str("not implemented"),
            KernelError::CacheRejected(e) => write!(f, "cache rejected the cap: {e}"),
            KernelError::Invariant(m) => write!(f, "invariant broken: {m}"),
        }
    }
}

impl std::error::Error for KernelError {}

impl From<CNodeError> for KernelError {
    fn from(e: CNodeError) -> Self {
        match e {
            CNodeError::SizeLogTooLarge { size_log } => KernelError::InvalidCNodeSize(u64::from(size_log)),
            CNodeError::SlotOutOfRange { slot, .. } => KernelError::SlotOutOfRange(slot),
            CNodeError::SlotPinned { slot } => KernelError::SlotPinned(slot),
            CNodeError::SlotEmpty { slot } => KernelError::SlotEmpty(slot),
        }
    }
}

impl From<CacheError> for KernelError {
    fn from(e: CacheError) -> Self {
        KernelError::CacheRejected(e)
    }
}

/// Why `invoke` or `call_resume` returned `Err` (KSPEC-1 §10). Nothing was observed for such a
/// call (KSPEC-1 §12.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmError {
    /// `invoke` while an invocation is paused.
    Busy,
    /// A gas budget above `2^63 − 1`.
    GasTooLarge,
    /// `call_resume` with nothing paused.
    NotPaused,
    /// The entry could not be built, or the stack had no room for it.
    Build(KernelError),
    /// The post-HALT publish failed (a reference that can no longer be settled).
    Publish(KernelError),
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::Busy => f.write_str("an invocation is paused"),
            VmError::GasTooLarge => f.write_str("gas budget above 2^63 - 1"),
            VmError::NotPaused => f.write_str("nothing is paused"),
            VmError::Build(e) => write!(f, "cannot enter the instance: {e}"),
            VmError::Publish(e) => write!(f, "cannot publish the post-HALT instance: {e}"),
        }
    }
}

impl std::error::Error for VmError {}
