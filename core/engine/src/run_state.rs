//! The run-state rules every engine backend follows, in one place (PVMSPEC-1 §8, §9): where a
//! run starts (a finished program repeats its exit, no program panics, a host call resumes
//! after its instruction, a pc without an instruction traps after its charge), how a block
//! entry is charged, what `set_pc` and `resume_pc` mean, and how an exit is recorded. The
//! interpreter and the JIT hold a [`RunState`] and differ only in how they execute
//! instructions between a start and an exit.

use std::sync::Arc;

use crate::backend::{Exit, NUM_REGS};
use crate::gas::GasModel;
use crate::program::Program;

/// A backend's machine state apart from memory.
#[derive(Clone, Debug, Default)]
pub struct RunState {
    pub program: Option<Arc<Program>>,
    pub regs: [u64; NUM_REGS],
    pub pc: u32,
    pub gas: i64,
    /// The next instruction starts a block and must be charged.
    pub charge_pending: bool,
    /// The next run continues after the instruction at `pc` (after a host call).
    pub resume_next: bool,
    /// A halt or panic ends the program; later runs report it again.
    pub finished: Option<Exit>,
}

/// Charges a block entry (or, under per-instruction gas, one instruction): `false` when
/// the gas does not cover it. Under block gas nothing is taken then and the charge stays
/// pending; under per-instruction gas the unit is taken and the counter goes negative.
#[inline(always)]
pub fn charge(gas: &mut i64, pending: &mut bool, per_instruction: bool, cost: u64) -> bool {
    if per_instruction {
        *gas = gas.wrapping_sub(1);
        *gas >= 0
    } else if *gas < 0 || (*gas as u64) < cost {
        false
    } else {
        *gas -= cost as i64;
        *pending = false;
        true
    }
}

impl RunState {
    /// Loads a program (or none: a blob that does not decode) and resets the state: registers
    /// 0, pc 0, gas 0, a block charge pending.
    pub fn load(&mut self, program: Option<Arc<Program>>) {
        *self = RunState { program, charge_pending: true, ..RunState::default() };
    }

    /// The next run starts at `pc` as a fresh block entry (charged).
    pub fn set_pc(&mut self, pc: u32) {
        self.pc = pc;
        self.resume_next = false;
        self.charge_pending = true;
    }

    /// Where the next run continues (after a host call: the next instruction).
    pub fn resume_pc(&self) -> u32 {
        match (&self.program, self.resume_next) {
            (Some(p), true) => p.decode_at(self.pc).next_pc(self.pc),
            _ => self.pc,
        }
    }

    /// Where a run starts: the instruction index in the loaded program (borrowed from
    /// [`RunState::program`] by the caller, so that starting a run touches no reference
    /// count), or the exit the run ends with at once (a finished program's exit again, a
    /// panic without a program, the trap of a pc that holds no instruction, or running out
    /// of gas before it).
    pub fn start(&mut self) -> Result<u32, Exit> {
        self.begin()?;
        let program = self.program.as_ref().expect("begin found a program");
        let index = match program.index_of(self.pc) {
            Some(i) if self.resume_next => program.insts()[i as usize].next,
            Some(i) => i,
            None => {
                let program = Arc::clone(program);
                return Err(self.stray(&program));
            }
        };
        self.resume_next = false;
        Ok(index)
    }

    /// The first half of [`RunState::start`], for a backend that finds the instruction at
    /// `pc` itself: `Err` with the exit of a finished program (again) or of none, else the
    /// run can start in [`RunState::program`]. The backend then starts at the instruction at
    /// `pc` (after it when `resume_next` is set, which it clears), or reports
    /// [`RunState::stray`] when there is none.
    pub fn begin(&mut self) -> Result<(), Exit> {
        if let Some(exit) = self.finished {
            return Err(exit);
        }
        if self.program.is_none() {
            self.finished = Some(Exit::Panic);
            return Err(Exit::Panic);
        }
        Ok(())
    }

    /// Execution at a pc with no recorded instruction: a trap there, after the charge.
    pub fn stray(&mut self, program: &Program) -> Exit {
        if self.charge_pending {
            let per_instruction = program.config.gas == GasModel::Instruction;
            if !charge(&mut self.gas, &mut self.charge_pending, per_instruction, program.stray_cost(self.pc)) {
                return Exit::OutOfGas;
            }
        }
        self.finished = Some(Exit::Trap);
        Exit::Trap
    }

    /// Records an exit reported at `pc`: the charge state after it, whether the next run
    /// resumes after the instruction (host calls), and a halt or panic as final.
    pub fn finish(&mut self, exit: Exit, pc: u32, charge_pending: bool, resume_next: bool) -> Exit {
        self.pc = pc;
        self.charge_pending = charge_pending;
        self.resume_next = resume_next;
        if !exit.is_resumable() {
            self.finished = Some(exit);
        }
        exit
    }
}

/// The [`Backend`](crate::backend::Backend) methods that only read or set the run state
/// (a blob that does not decode, registers, pc, gas) and pass host memory operations
/// through: the same for every engine backend with a `state: RunState` and a `memory`
/// offering `reset`, `map`, `write_bypass` and `read`.
macro_rules! state_backend_methods {
    () => {
        fn load_invalid(&mut self) {
            self.state.load(None);
            self.memory.reset();
        }

        fn regs(&self) -> [u64; $crate::backend::NUM_REGS] {
            self.state.regs
        }

        fn set_reg(&mut self, reg: usize, value: u64) {
            self.state.regs[reg] = value;
        }

        fn pc(&self) -> u32 {
            self.state.pc
        }

        fn set_pc(&mut self, pc: u32) {
            self.state.set_pc(pc);
        }

        fn resume_pc(&self) -> u32 {
            self.state.resume_pc()
        }

        fn gas(&self) -> i64 {
            self.state.gas
        }

        fn set_gas(&mut self, gas: i64) {
            self.state.gas = gas;
        }

        fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), $crate::memory::MemoryError> {
            self.memory.map(address, length, writable)
        }

        fn write_memory(&mut self, address: u32, bytes: &[u8]) -> Result<(), $crate::memory::MemoryError> {
            self.memory.write_bypass(address, bytes)
        }

        fn read_memory(&self, address: u32, length: u64) -> Result<Vec<u8>, $crate::memory::MemoryError> {
            self.memory.read(address, length)
        }
    };
}
pub(crate) use state_backend_methods;
