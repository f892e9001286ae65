//! What every execution backend offers: the exits of PVMSPEC-1 §8 and the [`Backend`] trait
//! through which the harness and the kernel drive a program.

use std::fmt;
use std::sync::Arc;

/// The host-side memory error of [`Backend`]'s `map`, `write_memory` and `read_memory`.
pub use crate::memory::MemoryError;
use crate::program::{Config, Program};

pub const NUM_REGS: usize = 13;

/// Why execution stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// Dynamic jump to the halt address.
    Halt,
    /// The instruction at pc decodes as `trap`: explicit trap, undefined opcode, a pc that is
    /// not an instruction start, or the end of code. Reported as status `panic`.
    Trap,
    /// Any other panic: invalid jump target, failing access below 64 KiB, `sbrk`, a blob that
    /// does not decode. Reported as status `panic`.
    Panic,
    /// Not enough gas to charge at pc. Resumable with more gas.
    OutOfGas,
    /// Access to an inaccessible or write-protected page at this page address. Resumable:
    /// the same instruction runs again.
    PageFault(u32),
    /// `ecalli` with this id (low 32 bits). Resumable at the next instruction.
    HostCall(u32),
    /// javm `ecall` (profile J). Resumable at the next instruction.
    Ecall,
}

impl Exit {
    /// Status name used by the test-vector formats.
    pub fn status(self) -> &'static str {
        match self {
            Exit::Halt => "halt",
            Exit::Trap | Exit::Panic => "panic",
            Exit::OutOfGas => "out-of-gas",
            Exit::PageFault(_) => "page-fault",
            Exit::HostCall(_) => "ecalli",
            Exit::Ecall => "ecall",
        }
    }

    /// Whether the program can continue after this exit.
    pub fn is_resumable(self) -> bool {
        matches!(self, Exit::OutOfGas | Exit::PageFault(_) | Exit::HostCall(_) | Exit::Ecall)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::PageFault(a) => write!(f, "page-fault at {a:#x}"),
            Exit::HostCall(id) => write!(f, "ecalli {id}"),
            Exit::Trap => f.write_str("panic (trap)"),
            other => f.write_str(other.status()),
        }
    }
}

/// An execution backend. A backend holds one machine: a program, registers, pc, gas and
/// memory. Loading a program resets everything; the host then maps memory, sets registers
/// and runs, possibly several times (after host calls, page faults or out-of-gas).
pub trait Backend {
    /// Short name (`interp`, `jit`).
    fn name(&self) -> &'static str;

    /// Loads a program and resets the machine: registers 0, pc 0, gas 0, no memory.
    fn load(&mut self, program: Arc<Program>);

    /// Whether this backend reads blob bytes itself ([`Backend::load_blob`]) instead of
    /// running the engine's prepared [`Program`]. Independent judges do, so that a mistake in
    /// the engine's parser or program preparation cannot reach them.
    fn reads_blobs(&self) -> bool {
        false
    }

    /// Loads a program from its blob bytes under a configuration. By default the engine
    /// prepares it; a blob that does not decode is loaded as [`Backend::load_invalid`].
    fn load_blob(&mut self, bytes: &[u8], config: &Config) {
        match Program::from_bytes(bytes, config.clone()) {
            Ok(program) => self.load(Arc::new(program)),
            Err(_) => self.load_invalid(),
        }
    }

    /// Whether this backend tells [`Exit::Trap`] from [`Exit::Panic`] (both are status
    /// `panic`); comparisons with one that does not compare them as one.
    fn distinguishes_trap(&self) -> bool {
        true
    }

    /// Why the loaded program cannot be run by this backend although the spec runs it (a
    /// listed known difference of an external implementation), if so. The harness then
    /// reports the case as not comparable instead of as a divergence.
    fn refusal(&self) -> Option<String> {
        None
    }

    /// Loads a blob that failed to decode: the next run panics at once with the state
    /// unchanged (PVMSPEC-1 §1.2).
    fn load_invalid(&mut self);

    fn regs(&self) -> [u64; NUM_REGS];
    fn set_reg(&mut self, reg: usize, value: u64);
    fn set_regs(&mut self, regs: [u64; NUM_REGS]) {
        for (i, v) in regs.into_iter().enumerate() {
            self.set_reg(i, v);
        }
    }

    /// The reported pc: the instruction that caused the last exit, or where the next run
    /// starts.
    fn pc(&self) -> u32;
    /// Sets where the next run starts (a fresh block entry).
    fn set_pc(&mut self, pc: u32);
    /// Where the next run continues (differs from [`Backend::pc`] after a host call).
    fn resume_pc(&self) -> u32;

    fn gas(&self) -> i64;
    fn set_gas(&mut self, gas: i64);

    /// Maps the pages covering the range and zeroes them.
    fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError>;
    /// Host write, ignoring write protection.
    fn write_memory(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError>;
    /// Host read.
    fn read_memory(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError>;
    /// Every mapped page as `(address, writable, contents)`, in address order.
    fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)>;
    /// Like [`Backend::memory_pages`], but a page that reads as all zero may come with empty
    /// contents, so a large mapping is observed without copying it. The default empties the
    /// all-zero pages of `memory_pages`.
    fn memory_pages_sparse(&self) -> Vec<(u32, bool, Vec<u8>)> {
        let mut pages = self.memory_pages();
        for (_, _, contents) in &mut pages {
            if contents.iter().all(|&b| b == 0) {
                *contents = Vec::new();
            }
        }
        pages
    }

    /// Does any ahead-of-time work for the loaded program (the JIT compiles it, the
    /// interpreter translates it), so that it can be timed apart from execution. Running
    /// without it does the same work lazily.
    fn precompile(&mut self) {}

    /// Runs until the next exit.
    fn run(&mut self) -> Exit;
    /// Runs one instruction; `None` when it finished without an exit.
    fn step(&mut self) -> Option<Exit>;
}
