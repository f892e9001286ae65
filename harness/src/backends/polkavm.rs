//! `polkavm`: PolkaVM 0.37's interpreter as an oracle (cargo feature `polkavm`).
//!
//! PolkaVM is an independent implementation of the PVM by the author of GP 0.8.0's gas model;
//! it shares nothing with our engine. It runs profile B natively; profile A programs are
//! renumbered to B's opcodes (102–111 → 101–110, A's undefined 2 stays undefined, `sbrk`,
//! which panics here, becomes a trap). What traps by the spec but PolkaVM refuses to load
//! (undefined opcodes, gaps past the skip cap) is written as explicit traps. Programs are loaded with one explicit `trap` appended
//! (what the GP reads past the end of code; PolkaVM refuses code that can run off its end),
//! and pages are mapped exactly as the harness maps them (dynamic paging). PolkaVM does not
//! report a pc on halt or trap, so the pc of the last traced step is used.
//!
//! Where PolkaVM knowingly differs from PVMSPEC-1 is listed in [`KNOWN_DIFFERENCES`] and
//! decided by [`known_difference`]; each has a test in `tests/polkavm.rs`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use javm_engine::{Backend, Config, Exit, GasModel, MemoryError, Profile, Program, NUM_REGS};
use polkavm::{
    ArcBytes, BackendKind, CostModel, CostModelKind, Engine, GasMeteringKind, InterruptKind, MemoryProtection, Module,
    ModuleConfig, ProgramBlob, ProgramCounter, ProgramParts, RawInstance, Reg,
};

use javm_model::Readings;

use crate::state::Snapshot;

use super::{Boxed, Entry, Supports};

/// Turns one alternative reading on.
type SetReading = fn(&mut Readings);

pub const ENTRY: Entry = Entry {
    name: "polkavm",
    about: "PolkaVM 0.37's interpreter (feature `polkavm`), profiles A and B, unit and its own table gas",
    independent: true,
    supports: Supports {
        profiles: &[Profile::A, Profile::B],
        gas_models: &["block-unit", "block-table"],
        single_step: true,
        kernel_frame: false,
    },
    bench_only: false,
    create: || PolkaVm::new().map(|b| Box::new(b) as Boxed),
};

/// PolkaVM without step tracing, for `bench`: as fast as PolkaVM runs, but the pc of a halt
/// or trap is not known (reported as 0) and it cannot single-step.
pub const ENTRY_FAST: Entry = Entry {
    name: "polkavm-fast",
    about: "PolkaVM 0.37's interpreter without step tracing (for bench: no pc on halt or trap)",
    independent: true,
    supports: Supports { single_step: false, ..ENTRY.supports },
    bench_only: true,
    create: || {
        PolkaVm::new().map(|mut b| {
            b.traced = false;
            Box::new(b) as Boxed
        })
    },
};

/// The differences from PVMSPEC-1 that PolkaVM is known to have, by name.
pub const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    ("refused", "PolkaVM refuses at load time a program the spec runs (its validation finds an instruction it decodes as invalid where the spec decodes one; undefined opcodes and long gaps are already written as traps)"),
    ("appended-trap", "the explicit trap appended for PolkaVM changes the program: a static target or a branch's fall-through at the end of the code becomes valid"),
    ("profile-a-as-b", "a profile-A program run renumbered to profile B: B's both-successors branch rule and the appended trap apply"),
    ("three-reg-destination", "a three-register instruction whose third byte is 16 or more: PolkaVM takes min(12, byte & 15) as rD, the GP min(12, byte) (PVMSPEC-1 §4 note)"),
    ("operands-within-instruction", "operand bytes past the instruction's own bytes (a register byte of an instruction shorter than its operands): the spec reads the following code bytes (ζ), PolkaVM reads 0"),
    ("enclosing-block-charge", "a start pc inside a block under unit block gas: PolkaVM charges the whole enclosing block, PVMSPEC-1 §9.1 the instructions from the start pc"),
    ("zero-entry-size-table", "a jump table stored with entry size 0: PolkaVM treats it as empty, the GP reads every entry as 0 (PVMSPEC-1 §1.2)"),
    ("straddle-read-only-unmapped", "a store running from a read-only page into an unmapped one: PolkaVM reports the unmapped page, PVMSPEC-1 §7 the read-only one"),
    ("wrapping-access", "a memory access that wraps past 2^32: PolkaVM panics, PVMSPEC-1 §7 checks the wrapped bytes"),
    ("start-not-an-instruction", "a start pc that is not an instruction start (inside an instruction, at or past the end of the code): PolkaVM traps without charging gas, the spec charges the trap there"),
    ("unmappable-page", "the harness maps a page below 64 KiB (PolkaVM refuses) or the last page of the address space (PolkaVM accepts it but its accesses there trap)"),
    ("unsupported-configuration", "a profile or gas model PolkaVM has no counterpart for (profile J, the instruction gas model)"),
    ("cost-table", "a block-cost table that PolkaVM's own cost model does not reproduce (generated random tables)"),
];

pub struct PolkaVm {
    engine: Engine,
    /// The running instance (reads need `&mut`, the trait's readers are `&self`).
    instance: RefCell<Option<RawInstance>>,
    /// Why the loaded program cannot run here (a known difference), if so.
    refused: Option<String>,
    /// Mapped pages: page address → writable.
    pages: BTreeMap<u32, bool>,
    /// The reported pc.
    pc: u32,
    /// pc of the last traced step.
    last_step: u32,
    /// A step event was consumed and the instruction at it is next.
    parked: bool,
    finished: Option<Exit>,
    /// Registers/gas/pc while no instance exists (refused or invalid programs).
    shadow: ([u64; NUM_REGS], i64),
    /// Step tracing on (pcs of halts and traps, single steps).
    traced: bool,
    /// Page contents while no instance exists (a blob that does not decode still has the
    /// memory the host set up).
    shadow_memory: BTreeMap<u32, Vec<u8>>,
}

impl PolkaVm {
    pub fn new() -> Result<PolkaVm, String> {
        let mut config = polkavm::Config::new();
        config.set_backend(Some(BackendKind::Interpreter));
        config.set_allow_dynamic_paging(true);
        config.set_worker_count(0);
        let engine = Engine::new(&config).map_err(|e| format!("polkavm: {e}"))?;
        Ok(PolkaVm {
            engine,
            instance: RefCell::new(None),
            refused: None,
            pages: BTreeMap::new(),
            pc: 0,
            last_step: 0,
            parked: false,
            finished: None,
            shadow: ([0; NUM_REGS], 0),
            shadow_memory: BTreeMap::new(),
            traced: true,
        })
    }

    fn reset(&mut self) {
        *self.instance.get_mut() = None;
        self.refused = None;
        self.pages.clear();
        self.pc = 0;
        self.last_step = 0;
        self.parked = false;
        self.finished = None;
        self.shadow = ([0; NUM_REGS], 0);
        self.shadow_memory.clear();
    }

    /// Why the loaded program is not comparable, if it is not.
    pub fn refusal(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    fn instantiate(&mut self, bytes: &[u8], config: &Config) -> Result<RawInstance, String> {
        let cost_model = match &config.gas {
            GasModel::BlockUnit => CostModelKind::Simple(CostModel::naive_ref()),
            GasModel::BlockTable(_) => CostModelKind::Full(full_cache_model()),
            GasModel::Instruction => return Err("unsupported-configuration: gas model instruction".into()),
        };
        let code = match config.profile {
            Profile::B => append_trap(bytes, false)?,
            Profile::A => append_trap(bytes, true)?,
            Profile::J => return Err("unsupported-configuration: profile J".into()),
        };
        let mut parts = ProgramParts::empty(polkavm::program::InstructionSetKind::JamV1);
        parts.code_and_jump_table = ArcBytes::from(code);
        let blob = ProgramBlob::from_parts(parts).map_err(|e| format!("refused: {e}"))?;
        let mut module_config = ModuleConfig::new();
        module_config.set_page_size(4096);
        module_config.set_gas_metering(Some(GasMeteringKind::Sync));
        module_config.set_dynamic_paging(true);
        module_config.set_step_tracing(self.traced);
        module_config.set_cost_model(Some(cost_model));
        let module = Module::from_blob(&self.engine, &module_config, blob).map_err(|e| format!("refused: {e}"))?;
        // A cost table is only comparable when PolkaVM's own model gives the same costs.
        if let GasModel::BlockTable(table) = &config.gas {
            for &(pc, cost) in table.iter() {
                let theirs = module.calculate_gas_cost_for(ProgramCounter(pc));
                if theirs != Some(cost as i64) {
                    return Err(format!(
                        "cost-table: the table charges {cost} at pc {pc}, PolkaVM's cost model {theirs:?}"
                    ));
                }
            }
        }
        module.instantiate().map_err(|e| format!("refused: {e}"))
    }

    fn reg_of(i: usize) -> Reg {
        Reg::from_raw(i as u32).expect("13 registers")
    }

    /// Runs to the next traced step or exit.
    fn advance(&mut self) -> Option<Exit> {
        let Some(instance) = self.instance.get_mut().as_mut() else {
            self.finished = Some(Exit::Panic);
            return Some(Exit::Panic);
        };
        let interrupt = match instance.run() {
            Ok(i) => i,
            Err(e) => panic!("polkavm: run failed: {e}"),
        };
        let exit = match interrupt {
            InterruptKind::Step => {
                self.last_step = instance.program_counter().map_or(0, |p| p.0);
                self.pc = self.last_step;
                return None;
            }
            InterruptKind::Finished => Exit::Halt,
            InterruptKind::Trap => Exit::Trap,
            InterruptKind::Ecalli(id) => Exit::HostCall(id),
            InterruptKind::Segfault(s) => Exit::PageFault(s.page_address),
            InterruptKind::NotEnoughGas => Exit::OutOfGas,
        };
        self.pc = match exit {
            Exit::Halt | Exit::Trap => self.last_step,
            _ => instance.program_counter().map_or(self.last_step, |p| p.0),
        };
        if !exit.is_resumable() {
            self.finished = Some(exit);
        }
        Some(exit)
    }
}

/// The memory-access cost of PolkaVM's full cost model that reproduces the spectool
/// vectors' tables (all 363 with L2; L1 and L3 each miss 65).
fn full_cache_model() -> polkavm::CacheModel {
    polkavm::CacheModel::L2Hit
}

/// Rewrites a blob for PolkaVM: profile A's opcodes in profile B's numbering, what traps by
/// the spec written as explicit traps, and one `trap` appended to the code (with its bitmask
/// bit). The blob is read with the reference model's parser, so the engine's parser cannot
/// shape what PolkaVM sees.
fn append_trap(bytes: &[u8], renumber: bool) -> Result<Vec<u8>, String> {
    use javm_engine::blob::write_varint;
    let blob = javm_model::blob::parse(bytes).ok_or("refused: the blob does not decode")?;
    let mut code = blob.code.clone();
    let mut starts = blob.k.clone();
    let n = code.len();
    if renumber {
        for (byte, _) in code.iter_mut().zip(&starts).filter(|(_, &k)| k) {
            *byte = match *byte {
                // sbrk panics in this project; B has no sbrk, so it becomes a trap (the same
                // status; the block then ends there, which the known-difference check runs
                // the model on too).
                101 => 0,
                // A's undefined 2 must stay undefined (B's 2 is `unlikely`).
                2 => 3,
                b @ 102..=111 => b - 1,
                b => b,
            };
        }
    }
    // PolkaVM refuses code holding anything that decodes as its `invalid`; the spec runs such
    // code and traps there. Write what traps as an explicit trap: an undefined opcode at an
    // instruction start, and the byte 25 after an instruction start followed by a longer gap
    // (PolkaVM's own model of that gap). Both bytes lie beyond every operand read.
    let defined = javm_model::table::OpcodeMap::new(javm_model::table::Numbering::B);
    for i in 0..n {
        if starts[i] {
            if defined.get(code[i]).is_none() {
                code[i] = 0;
            }
            let next = (i + 1..n).find(|&j| starts[j]).unwrap_or(n);
            if next - i > 25 {
                starts[i + 25] = true;
                code[i + 25] = 0;
            }
        }
    }
    code.push(0);
    starts.push(true);
    let mut out = Vec::with_capacity(bytes.len() + 8);
    write_varint(&mut out, blob.table_len);
    out.push(blob.entry_size as u8);
    write_varint(&mut out, code.len() as u64);
    if blob.entry_size > 0 {
        for e in 0..blob.table_len {
            out.extend_from_slice(&blob.entry(e).to_le_bytes()[..blob.entry_size]);
        }
    }
    out.extend_from_slice(&code);
    let mut mask = vec![0u8; code.len().div_ceil(8)];
    for i in (0..code.len()).filter(|&i| starts[i]) {
        mask[i / 8] |= 1 << (i % 8);
    }
    out.extend(mask);
    Ok(out)
}

/// Snapshots (trap folded into panic) of a case run on one backend alone; `None` when it
/// refuses the case.
fn observe(
    case: &crate::vectors::Case,
    options: &crate::run::RunOptions,
    backend: &mut dyn Backend,
) -> Option<Vec<Snapshot>> {
    let outcome = crate::run::run_case(case, options, &mut [backend]);
    let runs = outcome.snapshots.into_iter().next()?;
    Some(runs.iter().map(crate::run::fold_trap).collect())
}

/// Whether a difference between PolkaVM and a backend that follows the spec is explained by
/// how PolkaVM is given the program: the reference model, run on exactly the program PolkaVM
/// ran (renumbered to profile B, with the appended trap, under profile B's rules), gives
/// PolkaVM's results. Then the name of the known difference; else `None`: PolkaVM and the
/// model disagree on the same program, a real divergence.
pub fn known_difference(case: &crate::vectors::Case, options: &crate::run::RunOptions) -> Option<String> {
    use crate::run::{case_config, RunOptions};
    let config = case_config(case, options).ok()?;
    let transformed = append_trap(&case.program, config.profile == Profile::A).ok()?;
    let mut theirs = PolkaVm::new().ok()?;
    let polkavm = observe(case, options, &mut theirs)?;
    let mut as_run = case.clone();
    as_run.program = transformed;
    // Starting at or past the end of the code after a gap of more than 24 bytes: PolkaVM
    // traps at the appended trap without charging its block.
    let blob = javm_model::blob::parse(&case.program)?;
    let start = case.initial_pc as usize;
    if !blob.k.get(start).copied().unwrap_or(false)
        && polkavm.first().is_some_and(|s| s.exit == Exit::Panic && s.gas == case.initial_gas)
    {
        return Some("start-not-an-instruction".into());
    }
    let b_options = RunOptions { profile: Some(Profile::B), ..*options };
    // Plain first, then with the readings PolkaVM is known to take.
    let plain = if config.profile == Profile::A { "profile-a-as-b" } else { "appended-trap" };
    let mut model = javm_model::Model::new();
    if observe(&as_run, &b_options, &mut model).as_ref() == Some(&polkavm) {
        return Some(plain.into());
    }
    // The listed readings, alone and together: the smallest set that reproduces PolkaVM.
    let readings: [(&str, SetReading); 6] = [
        ("three-reg-destination", |r| r.three_reg_destination_low_nibble = true),
        ("operands-within-instruction", |r| r.operands_within_instruction = true),
        ("enclosing-block-charge", |r| r.enclosing_block_charge = true),
        ("zero-entry-size-table", |r| r.zero_entry_size_empty = true),
        ("wrapping-access", |r| r.wrapping_access_panics = true),
        ("straddle-read-only-unmapped", |r| r.straddle_reports_missing_page = true),
    ];
    let mut subsets: Vec<u32> = (1..1u32 << readings.len()).collect();
    subsets.sort_by_key(|m| m.count_ones());
    for mask in subsets {
        let mut r = Readings::default();
        for (k, (_, set)) in readings.iter().enumerate() {
            if mask >> k & 1 == 1 {
                set(&mut r);
            }
        }
        let mut model = javm_model::Model::with_readings(r);
        if observe(&as_run, &b_options, &mut model).as_ref() == Some(&polkavm) {
            let names: Vec<&str> =
                readings.iter().enumerate().filter(|(k, _)| mask >> k & 1 == 1).map(|(_, (n, _))| *n).collect();
            return Some(names.join(" + "));
        }
    }
    None
}

impl Backend for PolkaVm {
    fn name(&self) -> &'static str {
        if self.traced {
            "polkavm"
        } else {
            "polkavm-fast"
        }
    }

    fn reads_blobs(&self) -> bool {
        true
    }

    fn distinguishes_trap(&self) -> bool {
        false
    }

    fn refusal(&self) -> Option<String> {
        self.refused.clone()
    }

    fn load_blob(&mut self, bytes: &[u8], config: &Config) {
        self.reset();
        match self.instantiate(bytes, config) {
            Ok(mut instance) => {
                instance.set_next_program_counter(ProgramCounter(0));
                *self.instance.get_mut() = Some(instance);
            }
            Err(reason) if reason.starts_with("refused: the blob does not decode") => {}
            Err(reason) => self.refused = Some(reason),
        }
    }

    fn load(&mut self, program: Arc<Program>) {
        let bytes = program.blob.encode();
        self.load_blob(&bytes, &program.config.clone());
    }

    fn load_invalid(&mut self) {
        self.reset();
    }

    fn regs(&self) -> [u64; NUM_REGS] {
        match &*self.instance.borrow() {
            Some(i) => std::array::from_fn(|r| i.reg(Self::reg_of(r))),
            None => self.shadow.0,
        }
    }

    fn set_reg(&mut self, reg: usize, value: u64) {
        match self.instance.get_mut() {
            Some(i) => i.set_reg(Self::reg_of(reg), value),
            None => self.shadow.0[reg] = value,
        }
    }

    fn pc(&self) -> u32 {
        self.pc
    }

    fn set_pc(&mut self, pc: u32) {
        self.pc = pc;
        self.last_step = pc;
        self.parked = false;
        if let Some(i) = self.instance.get_mut() {
            i.set_next_program_counter(ProgramCounter(pc));
        }
    }

    fn resume_pc(&self) -> u32 {
        self.instance.borrow().as_ref().and_then(|i| i.next_program_counter()).map_or(self.pc, |p| p.0)
    }

    fn gas(&self) -> i64 {
        match &*self.instance.borrow() {
            Some(i) => i.gas(),
            None => self.shadow.1,
        }
    }

    fn set_gas(&mut self, gas: i64) {
        match self.instance.get_mut() {
            Some(i) => i.set_gas(gas),
            None => self.shadow.1 = gas,
        }
    }

    fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError> {
        let end = address as u64 + length;
        if end > 1 << 32 {
            return Err(MemoryError::OutOfRange { address: address as u64, length });
        }
        if length == 0 {
            return Ok(());
        }
        let first = address & !4095;
        let last = ((end - 1) & !4095) as u32;
        if last == 0xFFFF_F000 {
            // PolkaVM accepts the mapping but its accesses there trap.
            self.refused = Some("unmappable-page: the last page of the address space".into());
        }
        if let Some(i) = self.instance.get_mut() {
            let span = last - first + 4096;
            let protection = if writable { MemoryProtection::ReadWrite } else { MemoryProtection::Read };
            if i.zero_memory_with_memory_protection(first, span, protection).is_err() {
                self.refused = Some(format!("unmappable-page: PolkaVM cannot map {first:#x}+{span:#x}"));
            }
        }
        let mut page = first as u64;
        while page <= last as u64 {
            self.pages.insert(page as u32, writable);
            self.shadow_memory.insert(page as u32, vec![0; 4096]);
            page += 4096;
        }
        Ok(())
    }

    fn write_memory(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
        let end = address as u64 + bytes.len() as u64;
        if end > 1 << 32 {
            return Err(MemoryError::OutOfRange { address: address as u64, length: bytes.len() as u64 });
        }
        let mut page = (address & !4095) as u64;
        while page < end {
            if !self.pages.contains_key(&(page as u32)) {
                return Err(MemoryError::Unmapped { address: (page as u32).max(address) });
            }
            page += 4096;
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let Some(i) = self.instance.get_mut() else {
            for (k, &b) in bytes.iter().enumerate() {
                let a = address + k as u32;
                if let Some(page) = self.shadow_memory.get_mut(&(a & !4095)) {
                    page[(a & 4095) as usize] = b;
                }
            }
            return Ok(());
        };
        let read_only: Vec<u32> = self
            .pages
            .range(address & !4095..=((end.max(1) - 1) as u32))
            .filter(|(_, &w)| !w)
            .map(|(&p, _)| p)
            .collect();
        for &p in &read_only {
            let _ = i.unprotect_memory(p, 4096);
        }
        let result = i.write_memory(address, bytes);
        for &p in &read_only {
            let _ = i.protect_memory(p, 4096);
        }
        result.map_err(|_| MemoryError::Unmapped { address })
    }

    fn read_memory(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
        let end = address as u64 + length;
        if end > 1 << 32 {
            return Err(MemoryError::OutOfRange { address: address as u64, length });
        }
        let mut page = (address & !4095) as u64;
        while page < end {
            if !self.pages.contains_key(&(page as u32)) {
                return Err(MemoryError::Unmapped { address: (page as u32).max(address) });
            }
            page += 4096;
        }
        Ok(self.memory_pages_in(address, length))
    }

    fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.pages.iter().map(|(&p, &w)| (p, w, self.memory_pages_in(p, 4096))).collect()
    }

    fn run(&mut self) -> Exit {
        if let Some(exit) = self.finished {
            return exit;
        }
        self.parked = false;
        loop {
            if let Some(exit) = self.advance() {
                return exit;
            }
        }
    }

    fn step(&mut self) -> Option<Exit> {
        if let Some(exit) = self.finished {
            return Some(exit);
        }
        if !self.parked {
            if let Some(exit) = self.advance() {
                return Some(exit);
            }
        }
        self.parked = true;
        let r = self.advance();
        if r.is_some() {
            self.parked = false;
        }
        r
    }
}

impl PolkaVm {
    /// Reads mapped bytes (checked by the caller); zeros while no instance exists.
    fn memory_pages_in(&self, address: u32, length: u64) -> Vec<u8> {
        match self.instance.borrow_mut().as_mut() {
            Some(i) => i.read_memory(address, length as u32).unwrap_or_else(|_| vec![0; length as usize]),
            None => (0..length as u32)
                .map(|k| {
                    let a = address.wrapping_add(k);
                    self.shadow_memory.get(&(a & !4095)).map_or(0, |p| p[(a & 4095) as usize])
                })
                .collect(),
        }
    }
}
