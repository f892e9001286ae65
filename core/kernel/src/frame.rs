//! Frames: entering an Instance (KSPEC-1 §6). An [`InstanceEntry`] holds the kernel's view of a
//! frame (chain, image, working cnode, pins) and its execution state: the initial registers, pc
//! and memory plan of a frame that has not run yet, or the backend it runs in.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use javm_cap::{CNodeCap, CacheDirectory, CapHashOrRef, Hash, ImageCap, PinnedSlots, SlotIdx, MAX_ENDPOINTS};
use javm_engine::{Backend, Blob, Config, GasModel, Profile, Program, NUM_REGS};

use crate::error::KernelError;
use crate::memory::{mem1_digest, MemoryPlan, Regions};
use crate::stack::EntryStatus;

/// The engine configuration the kernel runs programs with by default: profile J (opcode 3 =
/// `ecall`, 10 = `ecalli`) with unit cost per basic block.
pub fn default_config() -> Config {
    Config::new(Profile::J, GasModel::BlockUnit)
}

/// Where a frame's registers, pc and memory are.
pub enum FrameState {
    /// Built but not run yet: what the frame starts with.
    Initial {
        /// Registers on entry (§6.4).
        regs: [u64; NUM_REGS],
        /// The endpoint's entry pc.
        pc: u32,
        /// How the memory is built (§6.3).
        memory: MemoryPlan,
    },
    /// Running, or saved, in a backend.
    Live(Box<dyn Backend>),
    /// Taken out by the driver while the ecall handler runs.
    Detached,
}

impl fmt::Debug for FrameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameState::Initial { regs, pc, memory } => {
                f.debug_struct("Initial").field("regs", regs).field("pc", pc).field("memory", &memory.regions).finish()
            }
            FrameState::Live(b) => f.debug_tuple("Live").field(&b.name()).finish(),
            FrameState::Detached => f.write_str("Detached"),
        }
    }
}

/// An entered instance (KSPEC-1 §6.1).
#[derive(Debug)]
pub struct InstanceEntry {
    /// The instance that was entered.
    pub instance_ref: CapHashOrRef,
    /// The lineage chain; extended by `SET_IMAGE`.
    pub image_hash_chain: Hash,
    /// The image currently bound.
    pub image_hash: Hash,
    /// The decoded program of the current image.
    pub program: Arc<Program>,
    /// The working copy of the root cnode.
    pub root_cnode: CNodeCap,
    /// The current image's pinned slots (§5.3).
    pub pinned: PinnedSlots,
    /// The current image's yield-catcher slot.
    pub yield_marker_slot: Option<SlotIdx>,
    /// Running or Waiting.
    pub status: EntryStatus,
    /// The regions the kernel mapped for this frame.
    pub regions: Regions,
    /// Registers, pc and memory.
    pub state: FrameState,
}

impl InstanceEntry {
    /// The frame's registers as stored (initial, or as its backend holds them).
    pub fn stored_regs(&self) -> [u64; NUM_REGS] {
        match &self.state {
            FrameState::Initial { regs, .. } => *regs,
            FrameState::Live(b) => b.regs(),
            FrameState::Detached => [0; NUM_REGS],
        }
    }

    /// Where the frame continues: the entry pc, or its backend's resume pc.
    pub fn stored_pc(&self) -> u32 {
        match &self.state {
            FrameState::Initial { pc, .. } => *pc,
            FrameState::Live(b) => b.resume_pc(),
            FrameState::Detached => 0,
        }
    }

    /// The MEM-1 digest of the frame's memory.
    pub fn mem_digest(&self) -> Hash {
        match &self.state {
            FrameState::Initial { memory, .. } => memory.mem1_digest(),
            FrameState::Live(b) => mem1_digest(&**b),
            FrameState::Detached => [0; 32],
        }
    }

    /// The backend, once the frame has run.
    pub fn backend(&self) -> Option<&dyn Backend> {
        match &self.state {
            FrameState::Live(b) => Some(&**b),
            _ => None,
        }
    }

    /// The backend, once the frame has run.
    pub fn backend_mut(&mut self) -> Option<&mut (dyn Backend + 'static)> {
        match &mut self.state {
            FrameState::Live(b) => Some(&mut **b),
            _ => None,
        }
    }
}

/// Decodes an Image's program: the bitmask gives one flag per code byte (missing bits count
/// as 0, extra bits are ignored); empty code does not decode (KSPEC-1 §6.2, §15.4).
pub fn decode_image(image: &ImageCap, config: &Config) -> Result<Program, KernelError> {
    if image.code.is_empty() || image.code.len() > u32::MAX as usize / 2 {
        return Err(KernelError::DecodeFailed);
    }
    let starts = javm_engine::Starts::from_mask(&image.bitmask, image.code.len());
    let blob = Blob::new(image.jump_table.clone(), image.code.clone(), starts);
    Ok(Program::new(blob, config.clone()))
}

/// Decoded programs by image hash. Invisible from outside: it only saves decoding again.
#[derive(Debug)]
pub struct Programs {
    config: Config,
    memo: HashMap<Hash, Arc<Program>>,
}

impl Programs {
    /// An empty memo decoding with `config`.
    pub fn new(config: Config) -> Self {
        Programs { config, memo: HashMap::new() }
    }

    /// The engine configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The program of `image`, stored under `image_hash`.
    pub fn get(&mut self, image_hash: &Hash, image: &ImageCap) -> Result<Arc<Program>, KernelError> {
        if let Some(p) = self.memo.get(image_hash) {
            return Ok(p.clone());
        }
        let p = Arc::new(decode_image(image, &self.config)?);
        self.memo.insert(*image_hash, p.clone());
        Ok(p)
    }
}

/// `build_entry(cache, inst_ref, endpoint_idx, args)` (KSPEC-1 §6.2): the frame an instance starts
/// in, or why it cannot be entered. Nothing changes when it fails.
///
/// An endpoint `entry_pc` of `2^32` or more cannot be a backend pc; it becomes `u32::MAX`, past
/// the end of any code, so the frame traps on its first instruction exactly as it would there.
pub fn build_entry(
    cache: &CacheDirectory,
    programs: &mut Programs,
    inst_ref: CapHashOrRef,
    endpoint_idx: u64,
    args: [u64; 4],
) -> Result<InstanceEntry, KernelError> {
    let inst = cache.get(&inst_ref).and_then(|c| c.as_instance()).ok_or(KernelError::InstanceNotFound)?;
    let image = cache.get_blob(&inst.image_hash).and_then(|c| c.as_image()).ok_or(KernelError::ImageNotFound)?;
    let cnode = cache
        .get(&inst.root_cnode)
        .and_then(|c| c.as_cnode())
        .ok_or(KernelError::Invariant("the instance's root cnode is not a cnode in the cache"))?;
    let program = programs.get(&inst.image_hash, image)?;
    if endpoint_idx >= MAX_ENDPOINTS as u64 {
        return Err(KernelError::EndpointOutOfRange(endpoint_idx));
    }
    let endpoint = image.endpoints.get(endpoint_idx as usize).ok_or(KernelError::EndpointOutOfRange(endpoint_idx))?;
    let memory = MemoryPlan::for_instance(inst.mem_size, inst.rw_overlays.iter().map(|o| (o.start, &o.bytes[..])))
        .ok_or(KernelError::MapFailed)?;

    let mut regs = endpoint.initial_regs;
    for (r, v) in regs.iter_mut().zip(inst.regs) {
        if v != 0 {
            *r = v;
        }
    }
    regs[7..=10].copy_from_slice(&args);
    let pc = u32::try_from(endpoint.entry_pc).unwrap_or(u32::MAX);

    Ok(InstanceEntry {
        instance_ref: inst_ref,
        image_hash_chain: inst.image_hash_chain,
        image_hash: inst.image_hash,
        program,
        root_cnode: cnode.clone(),
        pinned: PinnedSlots::of_image(image),
        yield_marker_slot: image.yield_marker_slot,
        status: EntryStatus::Running,
        regions: memory.regions.clone(),
        state: FrameState::Initial { regs, pc, memory },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use javm_cap::{Cap, EndpointDef, ImageSlotEntry, InstanceCap, RwOverlay};

    fn halt_image() -> ImageCap {
        ImageCap::with_code(vec![0x0A, 0x00], vec![0x01])
    }

    fn cache_with(image: ImageCap, mem_size: u32, overlays: Vec<RwOverlay>, regs: [u64; 13]) -> (CacheDirectory, Hash) {
        let mut c = CacheDirectory::new();
        let ih = c.put(image.into()).unwrap();
        let ch = c.put(CNodeCap::empty(4).unwrap().into()).unwrap();
        let mut inst = InstanceCap::new([7; 32], ih, CapHashOrRef::Hash(ch));
        inst.mem_size = mem_size;
        inst.rw_overlays = overlays;
        inst.regs = regs;
        let k = c.put(Cap::Instance(inst)).unwrap();
        (c, k)
    }

    #[test]
    fn bitmask_missing_bits_are_zero_and_extra_bits_ignored() {
        let cfg = default_config();
        let p = decode_image(&ImageCap::with_code(vec![0x0A, 0x00], vec![]), &cfg).unwrap();
        assert!(!p.blob.starts[0]);
        let p = decode_image(&ImageCap::with_code(vec![0x0A, 0x00], vec![0xFF, 0xFF]), &cfg).unwrap();
        assert_eq!(p.blob.starts, vec![true, true]);
        assert_eq!(decode_image(&ImageCap::empty(), &cfg).unwrap_err(), KernelError::DecodeFailed);
    }

    #[test]
    fn registers_are_seeded_endpoint_then_instance_then_args() {
        let mut img = halt_image();
        img.endpoints[3] = EndpointDef { entry_pc: 0, initial_regs: [1; 13], ..Default::default() };
        let mut inst_regs = [0; 13];
        inst_regs[2] = 9;
        inst_regs[8] = 9;
        let (cache, k) = cache_with(img, 0, vec![], inst_regs);
        let mut progs = Programs::new(default_config());
        let e = build_entry(&cache, &mut progs, CapHashOrRef::Hash(k), 3, [0, 5, 0, 6]).unwrap();
        assert_eq!(e.stored_regs(), [1, 1, 9, 1, 1, 1, 1, 0, 5, 0, 6, 1, 1]);
        assert_eq!(e.stored_pc(), 0);
    }

    #[test]
    fn build_failures() {
        let (cache, k) = cache_with(halt_image(), 0, vec![], [0; 13]);
        let mut progs = Programs::new(default_config());
        let err = |r: Result<InstanceEntry, KernelError>| r.unwrap_err();
        assert_eq!(
            err(build_entry(&cache, &mut progs, CapHashOrRef::Hash(k), 64, [0; 4])),
            KernelError::EndpointOutOfRange(64)
        );
        assert_eq!(
            err(build_entry(&cache, &mut progs, CapHashOrRef::Hash([3; 32]), 0, [0; 4])),
            KernelError::InstanceNotFound
        );
        let (cache, k) = cache_with(ImageCap::empty(), 0, vec![], [0; 13]);
        assert_eq!(err(build_entry(&cache, &mut progs, CapHashOrRef::Hash(k), 0, [0; 4])), KernelError::DecodeFailed);
    }

    #[test]
    fn entry_carries_pins_yield_slot_and_memory() {
        let mut img = halt_image();
        let mut c = CacheDirectory::new();
        let d = c.put(Cap::Data(javm_cap::DataCap::padded(b"x"))).unwrap();
        img.pinned = vec![ImageSlotEntry { slot: SlotIdx(3), cap_hash: d }];
        img.yield_marker_slot = Some(SlotIdx(5));
        let (cache, k) = {
            let ih = c.put(img.into()).unwrap();
            let ch = c.put(CNodeCap::empty(4).unwrap().into()).unwrap();
            let mut inst = InstanceCap::new([7; 32], ih, CapHashOrRef::Hash(ch));
            inst.mem_size = 10;
            inst.rw_overlays = vec![RwOverlay { start: 0x4000, bytes: b"hey".to_vec() }];
            let k = c.put(Cap::Instance(inst)).unwrap();
            (c, k)
        };
        let mut progs = Programs::new(default_config());
        let e = build_entry(&cache, &mut progs, CapHashOrRef::Hash(k), 0, [0; 4]).unwrap();
        assert!(e.pinned.contains(SlotIdx(3)));
        assert_eq!(e.yield_marker_slot, Some(SlotIdx(5)));
        assert_eq!(e.regions.ranges(), &[(0, 0x1000), (0x4000, 0x5000)]);
    }
}
