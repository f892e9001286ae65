//! Differential execution finds a planted semantic bug, localises it to the instruction
//! that causes it, minimises the program and writes a vector that replays the divergence.

use std::sync::Arc;

use javm_engine::memory::MemoryError;
use javm_engine::{Backend, Exit, Interpreter, Op, Program, NUM_REGS};
use javm_harness::diff::{diverges, explain, generate, write_vector};
use javm_harness::generator::GenConfig;
use javm_harness::run::{run_case, GasChoice, RunOptions};
use javm_harness::vectors::load_case;

/// The interpreter with one instruction's semantics swapped for another's.
struct Mutant {
    inner: Interpreter,
    from: Op,
    to: Op,
    /// Extra gas charged at the start of every full run (never when single-stepping): a bug
    /// only in block-mode gas code.
    run_charge: i64,
}

impl Backend for Mutant {
    fn name(&self) -> &'static str {
        "mutant"
    }
    fn load(&mut self, program: Arc<Program>) {
        let copy = Program::with_edited_list(program.blob.clone(), program.config.clone(), |insts| {
            for inst in insts {
                if inst.op == self.from {
                    inst.op = self.to;
                }
            }
        });
        self.inner.load(Arc::new(copy));
    }
    fn load_invalid(&mut self) {
        self.inner.load_invalid()
    }
    fn regs(&self) -> [u64; NUM_REGS] {
        self.inner.regs()
    }
    fn set_reg(&mut self, reg: usize, value: u64) {
        self.inner.set_reg(reg, value)
    }
    fn pc(&self) -> u32 {
        self.inner.pc()
    }
    fn set_pc(&mut self, pc: u32) {
        self.inner.set_pc(pc)
    }
    fn resume_pc(&self) -> u32 {
        self.inner.resume_pc()
    }
    fn gas(&self) -> i64 {
        self.inner.gas()
    }
    fn set_gas(&mut self, gas: i64) {
        self.inner.set_gas(gas)
    }
    fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError> {
        self.inner.map(address, length, writable)
    }
    fn write_memory(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
        self.inner.write_memory(address, bytes)
    }
    fn read_memory(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
        self.inner.read_memory(address, length)
    }
    fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        self.inner.memory_pages()
    }
    fn run(&mut self) -> Exit {
        if self.run_charge != 0 {
            let gas = self.inner.gas();
            self.inner.set_gas(gas - self.run_charge);
        }
        self.inner.run()
    }
    fn step(&mut self) -> Option<Exit> {
        self.inner.step()
    }
}

fn config() -> GenConfig {
    GenConfig { profile: javm_engine::Profile::A, gas: GasChoice::Auto, raw: false }
}

#[test]
fn identical_backends_never_diverge() {
    let (mut a, mut b) = (Interpreter::new(), Interpreter::new());
    for i in 0..2000 {
        assert!(!diverges(&generate(1, i, config()), &mut a, &mut b), "program {i}");
    }
}

#[test]
fn a_planted_bug_is_found_localised_minimised_and_replayable() {
    let mut reference = Interpreter::new();
    let mut mutant = Mutant { inner: Interpreter::new(), from: Op::Add64, to: Op::Sub64, run_charge: 0 };
    let index = (0..5000)
        .find(|&i| diverges(&generate(7, i, config()), &mut reference, &mut mutant))
        .expect("swapping add_64 for sub_64 must be noticed within 5000 programs");
    let program = generate(7, index, config());
    let explanation = explain(&program, &mut reference, &mut mutant);

    eprintln!("{}", explanation.render("interp", "mutant"));
    let first = explanation.first.as_ref().expect("stepping localises the divergence");
    let marked = explanation.disassembly.lines().find(|l| l.starts_with('>')).expect("the diverging line is marked");
    assert!(
        marked.contains("add_64"),
        "first difference should be at an add_64: {marked}\n{}",
        explanation.disassembly
    );
    assert!(first.differences.iter().any(|d| d.field.starts_with('r')), "{:?}", first.differences);
    assert!(explanation.minimised_instructions <= explanation.original_instructions);
    assert!(explanation.minimised_instructions <= 4, "{}", explanation.render("interp", "mutant"));

    // The written vector replays: the reference passes it, the mutant fails it.
    let dir = std::env::temp_dir().join(format!("javm-diff-test-{}", std::process::id()));
    let path = dir.join("repro.json");
    write_vector(&explanation.minimised, "repro", &mut Interpreter::new(), &path).unwrap();
    let case = load_case(&path).unwrap();
    assert!(run_case(&case, &RunOptions::default(), &mut [&mut Interpreter::new()]).passed);
    let mut mutant = Mutant { inner: Interpreter::new(), from: Op::Add64, to: Op::Sub64, run_charge: 0 };
    assert!(!run_case(&case, &RunOptions::default(), &mut [&mut mutant]).passed);
}

#[test]
fn the_diff_command_reports_its_summary_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_javm-harness"))
        .args(["diff", "--pair", "interp:interp", "--count", "300", "--seed", "5", "--profile", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("300 programs, 0 divergences, ") && last.ends_with(" programs/s"), "{last}");
}

#[test]
fn a_gas_only_divergence_is_localised_by_bisecting_the_budget() {
    let mut reference = Interpreter::new();
    let mut mutant = Mutant { inner: Interpreter::new(), from: Op::Trap, to: Op::Trap, run_charge: 3 };
    let index = (0..2000)
        .find(|&i| diverges(&generate(3, i, config()), &mut reference, &mut mutant))
        .expect("an extra charge per run must be noticed");
    let program = generate(3, index, config());
    let explanation = explain(&program, &mut reference, &mut mutant);
    let text = explanation.render("interp", "mutant");
    eprintln!("{text}");
    assert!(explanation.first.is_none(), "single-stepping cannot see it: {text}");
    let g = explanation.gas_bisection.as_ref().expect("the budget is bisected");
    assert!(g.budget <= explanation.minimised.gas, "{text}");
    let mut smaller = explanation.minimised.clone();
    if g.budget > 0 {
        smaller.gas = g.budget - 1;
        assert!(!diverges(&smaller, &mut reference, &mut mutant), "one less agrees: {text}");
    }
    assert!(text.contains("a gas-only divergence"), "{text}");
    assert!(g.disassembly.lines().any(|l| l.starts_with('>')), "{text}");
}
