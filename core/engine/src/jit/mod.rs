//! The x86-64 JIT backend: compiles a [`Program`] to native code (one basic block after
//! another, guest registers in host registers, direct jumps between blocks) and runs it with
//! exactly the observable behaviour of the reference [`crate::interp::Interpreter`].
//!
//! Guest memory is a per-instance 4 GiB reservation whose host page protections mirror the
//! guest permissions; forbidden accesses fault and a process-wide signal handler sends them
//! to a slow path that applies the exact rules (modules `signal`, `memory`). Where the kernel allows
//! the FSGSBASE instructions, compiled code points the GS segment base at guest memory while it
//! runs (restoring it on every exit) and addresses guest memory as `gs:[reg32 + disp]`, one
//! instruction per access; otherwise it adds a base register. Compiled code is cached per
//! program (by `Arc` identity), built lazily on the first run, and placed in a per-instance
//! code arena (module `code`).

mod buf;
mod code;
mod compile;
mod ctx;
mod emit;
mod memory;
mod signal;
mod slow;
mod x64;

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::backend::{Backend, Exit};
use crate::gas::GasModel;
use crate::program::{DynamicJump, Program};
use crate::run_state::{charge, state_backend_methods, RunState};

use code::CodeArena;
pub use compile::Features;
use compile::{Compiled, Module, Spare, NOT_YET};
use ctx::{kind, Ctx, RunInfo};
use emit::Emitter;
use memory::JitMemory;

/// Why a [`Jit`] could not be created.
#[derive(Debug)]
pub enum JitError {
    /// Reserving the guest address space failed.
    Reserve(io::Error),
    /// Installing the fault handler failed.
    SignalHandler(io::Error),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitError::Reserve(e) => write!(f, "cannot reserve the jit's guest address space: {e}"),
            JitError::SignalHandler(e) => write!(f, "cannot install the jit's fault handler: {e}"),
        }
    }
}

impl std::error::Error for JitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JitError::Reserve(e) | JitError::SignalHandler(e) => Some(e),
        }
    }
}

/// Compiled programs kept per instance.
const CACHE_ENTRIES: usize = 64;
/// Total code bytes kept per instance before older programs are dropped.
const CACHE_CODE_BYTES: usize = 64 << 20;

struct CacheEntry {
    program: Arc<Program>,
    /// Normal code and single-step code, each compiled on first use.
    normal: Option<Module>,
    step: Option<Module>,
    last_use: u64,
}

impl CacheEntry {
    fn code_bytes(&self) -> usize {
        self.normal.as_ref().map_or(0, Module::code_len) + self.step.as_ref().map_or(0, Module::code_len)
    }

    /// Drops the entry, its modules' vectors going to `spare` for the next compilation.
    fn drop_into(self, spare: &mut Spare) {
        spare.keep(self.normal);
        spare.keep(self.step);
    }
}

/// The JIT backend. One instance runs many programs, one at a time; several instances can run
/// on different threads at once.
pub struct Jit {
    memory: JitMemory,
    features: Features,
    state: RunState,
    /// Cache slot of `state.program`.
    current: usize,
    cache: Vec<CacheEntry>,
    arena: CodeArena,
    /// Assembly buffer reused by every compilation.
    emitter: Emitter,
    /// Vectors of dropped modules, for the next compilation.
    spare: Spare,
    tick: u64,
}

impl fmt::Debug for Jit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jit")
            .field("features", &self.features)
            .field("pc", &self.state.pc)
            .field("gas", &self.state.gas)
            .field("cached_programs", &self.cache.len())
            .finish()
    }
}

impl Jit {
    /// A JIT using every optional instruction this CPU offers.
    pub fn new() -> Result<Jit, JitError> {
        Jit::with_features(Features::detect())
    }

    /// A JIT restricted to `features` (used to test the fallbacks; features the CPU lacks are
    /// never used).
    pub fn with_features(features: Features) -> Result<Jit, JitError> {
        let detected = Features::detect();
        let features = Features {
            popcnt: features.popcnt && detected.popcnt,
            lzcnt: features.lzcnt && detected.lzcnt,
            bmi1: features.bmi1 && detected.bmi1,
            bmi2: features.bmi2 && detected.bmi2,
            fsgsbase: features.fsgsbase && detected.fsgsbase,
        };
        signal::install().map_err(JitError::SignalHandler)?;
        let memory = JitMemory::new().map_err(JitError::Reserve)?;
        Ok(Jit {
            memory,
            features,
            state: RunState::default(),
            current: 0,
            cache: Vec::new(),
            arena: CodeArena::default(),
            emitter: Emitter::default(),
            spare: Spare::default(),
            tick: 0,
        })
    }

    /// The features the code generator uses.
    pub fn features(&self) -> Features {
        self.features
    }

    /// How many programs have compiled code (or a slot for it) in this instance.
    pub fn cached_programs(&self) -> usize {
        self.cache.len()
    }

    /// Whether the next run charges a block before its first instruction.
    pub fn charge_pending(&self) -> bool {
        self.state.charge_pending
    }

    /// Makes `program` the current cache entry, evicting old entries when the cache is full.
    fn select(&mut self, program: &Arc<Program>) {
        self.tick += 1;
        if let Some(i) = self.cache.iter().position(|e| Arc::ptr_eq(&e.program, program)) {
            self.cache[i].last_use = self.tick;
            self.current = i;
            return;
        }
        // A program only the cache holds can never be selected again: drop its code now, so
        // its arena space (and its module's vectors) are reused while still faulted in.
        for dropped in self.cache.extract_if(.., |e| Arc::strong_count(&e.program) == 1) {
            dropped.drop_into(&mut self.spare);
        }
        let code: usize = self.cache.iter().map(CacheEntry::code_bytes).sum();
        if self.cache.len() >= CACHE_ENTRIES || code > CACHE_CODE_BYTES {
            // Prefer programs nobody else holds any more, then the least recently used.
            let victim = (0..self.cache.len())
                .min_by_key(|&i| (Arc::strong_count(&self.cache[i].program) > 1, self.cache[i].last_use));
            if let Some(v) = victim {
                self.cache.swap_remove(v).drop_into(&mut self.spare);
            }
        }
        self.cache.push(CacheEntry { program: program.clone(), normal: None, step: None, last_use: self.tick });
        self.current = self.cache.len() - 1;
    }

    /// Runs from the current state; with `single` set, stops after one instruction. Only the
    /// compiled module is consulted, not the program's instruction list: the module numbers
    /// instructions as the list does and records each one's pc and whether it ends a block.
    fn exec(&mut self, single: bool) -> Option<Exit> {
        if let Err(exit) = self.state.begin() {
            return Some(exit);
        }
        let features = self.features;
        let Jit { memory, cache, current, state, arena, emitter, spare, .. } = self;
        // The loaded program, borrowed from its cache entry for the whole run (a host call's
        // round trip takes no reference count).
        let CacheEntry { program, normal, step, .. } = &mut cache[*current];
        let program = &*program;
        debug_assert!(state.program.as_ref().is_some_and(|p| Arc::ptr_eq(p, program)));
        let slot = if single { step } else { normal };
        let module = compiled(slot, program, features, single, emitter, spare, arena);
        let per_instruction = program.config.gas == GasModel::Instruction;
        let Some(mut index) = module.index_of(state.pc) else {
            return Some(state.stray(program));
        };
        if state.resume_next {
            // After a host call: its fall-through, which is always the next instruction.
            index += 1;
            state.resume_next = false;
        }
        let i = index as usize;
        let compiled = module.insts[i];
        let start = match compiled.entry() {
            // Entering a block through its charging entry: compiled code charges, and
            // reports running out of gas like any block entry.
            entry if state.charge_pending && entry != NOT_YET => entry,
            _ => {
                if state.charge_pending {
                    // Single-step code has no entries, and a run can start inside a block.
                    let cost = program.insts()[i].cost;
                    if !charge(&mut state.gas, &mut state.charge_pending, per_instruction, cost) {
                        return Some(state.finish(Exit::OutOfGas, compiled.pc, true, false));
                    }
                }
                compiled.body
            }
        };

        let (mut exit_kind, mut exit_inst, exit_arg) = enter(memory, state, module, program, start);
        if exit_kind == kind::OUT_OF_GAS_CALL {
            // The block's charge is given back: out of gas on entering it. (The charge may
            // have wrapped the counter, below its most negative value; giving it back wraps
            // it back.)
            let failed = module.failed_charge(exit_arg).expect("compiled code names one of its own block charges");
            state.gas = state.gas.wrapping_add(i64::from(failed.charge));
            (exit_kind, exit_inst) = (kind::OUT_OF_GAS, failed.inst);
        }

        let at = exit_inst as usize;
        let Compiled { pc, ends_block, .. } = module.insts[at];
        let pending_after = per_instruction || ends_block;
        let finish = |state: &mut RunState, exit: Exit| Some(state.finish(exit, pc, pending_after, false));
        match exit_kind {
            kind::TRAP => finish(state, Exit::Trap),
            kind::PANIC => finish(state, Exit::Panic),
            kind::HALT => finish(state, Exit::Halt),
            kind::OUT_OF_GAS => Some(state.finish(Exit::OutOfGas, pc, true, false)),
            kind::HOST_CALL => Some(state.finish(Exit::HostCall(exit_arg as u32), pc, pending_after, true)),
            kind::ECALL => Some(state.finish(Exit::Ecall, pc, pending_after, true)),
            kind::PAGE_FAULT => finish(state, Exit::PageFault(exit_arg as u32)),
            kind::STEP => {
                state.charge_pending = pending_after;
                state.pc = module.insts[exit_arg as usize].pc;
                None
            }
            kind::STEP_DYNAMIC => match program.dynamic_target(exit_arg as u32) {
                DynamicJump::Halt => finish(state, Exit::Halt),
                DynamicJump::Invalid => finish(state, Exit::Panic),
                DynamicJump::To(t) => {
                    state.charge_pending = pending_after;
                    state.pc = module.insts[t as usize].pc;
                    None
                }
            },
            other => unreachable!("compiled code returned unknown exit kind {other}"),
        }
    }
}

/// The module in a cache slot, compiled into it first when it is empty.
fn compiled<'a>(
    slot: &'a mut Option<Module>,
    program: &Program,
    features: Features,
    single: bool,
    emitter: &mut Emitter,
    spare: &mut Spare,
    arena: &mut CodeArena,
) -> &'a Module {
    slot.get_or_insert_with(|| {
        compile::compile(program, features, single, emitter, spare, arena)
            .unwrap_or_else(|e| panic!("jit: cannot compile: {e}"))
    })
}

/// Runs `module`'s code from offset `start` until it exits; returns the exit kind, the
/// instruction it names and its argument.
fn enter(
    memory: &mut JitMemory,
    state: &mut RunState,
    module: &Module,
    program: &Arc<Program>,
    start: u32,
) -> (u32, u32, u64) {
    let (regs, gas) = (&mut state.regs, &mut state.gas);
    memory.sync();
    let code_start = module.code_start();
    let run = RunInfo {
        program: Arc::as_ptr(program),
        insts: module.insts.as_ptr(),
        code_base: code_start,
        accesses: module.accesses.as_ptr(),
        access_count: module.accesses.len(),
        exit_common: module.exit_common,
        memory: memory.view(),
    };
    let ctx = memory.ctx();
    ctx.regs = *regs;
    ctx.gas = *gas;
    ctx.run = &run;
    let ctx_ptr: *mut Ctx = ctx;
    let (mem_lo, mem_hi) = memory.guest_range();
    let active = signal::Active {
        code_start,
        code_end: code_start + module.code_len(),
        accesses: module.accesses.as_ptr(),
        access_count: module.accesses.len(),
        mem_lo,
        mem_hi,
        slow_entry: code_start + module.slow_entry,
        ctx: ctx_ptr,
    };
    // SAFETY: `enter` is the module's entry trampoline, generated with exactly this
    // signature (System V: guest base in rdi, entry address in rsi).
    let trampoline: extern "sysv64" fn(*mut u8, usize) = unsafe { std::mem::transmute(code_start + module.enter) };
    let base = memory.base();
    let target = code_start + start as usize;
    // Compiled code touches only its context block (through r15), the guest reservation
    // and its jump table, and returns through the trampoline; `run`, the program and the
    // module outlive the call.
    signal::with_active(&active, || trampoline(base, target));

    let ctx = memory.ctx();
    *regs = ctx.regs;
    *gas = ctx.gas;
    ctx.run = std::ptr::null();
    (ctx.exit_kind, ctx.exit_inst, ctx.exit_arg)
}

impl Backend for Jit {
    fn name(&self) -> &'static str {
        "jit"
    }

    fn load(&mut self, program: Arc<Program>) {
        // Let go of the previous program first: when nothing else holds it, `select` drops
        // its code, and the arena fills that space again (still faulted in) instead of
        // faulting in fresh pages for the new code.
        self.state.load(None);
        self.select(&program);
        self.state.load(Some(program));
        self.memory.reset();
    }

    state_backend_methods!();

    fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.memory.pages()
    }

    fn memory_pages_sparse(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.memory.sparse_pages()
    }

    fn run(&mut self) -> Exit {
        self.exec(false).unwrap_or(Exit::Panic)
    }

    fn step(&mut self) -> Option<Exit> {
        self.exec(true)
    }

    fn precompile(&mut self) {
        let Some(program) = self.state.program.clone() else { return };
        let features = self.features;
        let Jit { cache, current, arena, emitter, spare, .. } = self;
        compiled(&mut cache[*current].normal, &program, features, false, emitter, spare, arena);
    }
}
