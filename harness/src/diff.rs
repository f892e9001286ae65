//! Differential execution of generated programs, and the explanation of a divergence: the
//! first instruction at which two backends' states differ (found by single-stepping both in
//! lockstep), the differing fields, the disassembly around it, and a minimised program that
//! still diverges, written as a replayable vector.

use std::path::{Path, PathBuf};

use javm_engine::disasm::disassemble_around;
use javm_engine::{Backend, Exit};

use crate::generator::{GenCode, GenConfig, GenProgram, TableEntry};
use crate::run::{drive, run_case, Outcome, Prepared, Visit};
use crate::state::{chunks, compare_snapshots, Difference, Snapshot};
use crate::vectors::{Chunk, Region, Step};

/// Bytes of generator input per program.
pub use crate::generator::{generate, seed_bytes};

/// Runs a program on two backends in lockstep; the outcome lists every difference between
/// them (the generated case has no assertions of its own).
pub fn run_pair(program: &GenProgram, a: &mut dyn Backend, b: &mut dyn Backend) -> Outcome {
    let case = program.case("generated");
    run_case(&case, &program.options(), &mut [a, b])
}

/// How a program fared on two backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Agree,
    /// They differ only in listed known differences of an external implementation (their
    /// names).
    Known(Vec<String>),
    Diverge,
}

/// Runs a program on two backends and judges the outcome (a backend panic diverges).
pub fn judge(program: &GenProgram, a: &mut dyn Backend, b: &mut dyn Backend) -> Verdict {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_pair(program, a, b)));
    match run {
        Ok(o) if o.passed && o.known.is_empty() => Verdict::Agree,
        Ok(o) if o.passed => Verdict::Known(o.known.into_iter().map(|k| k.name).collect()),
        _ => Verdict::Diverge,
    }
}

/// Whether two backends disagree on a program.
/// A backend that panics counts as diverging (the panic message is printed by the default
/// hook); callers should replace both backends afterwards, as their state is unknown.
pub fn diverges(program: &GenProgram, a: &mut dyn Backend, b: &mut dyn Backend) -> bool {
    judge(program, a, b) == Verdict::Diverge
}

/// Whether any of several backends disagrees with the first (or panics).
pub fn diverges_any(program: &GenProgram, backends: &mut [&mut dyn Backend]) -> bool {
    let case = program.case("generated");
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&case, &program.options(), backends)));
    run.map_or(true, |outcome| !outcome.passed)
}

/// Where two backends first disagree when single-stepped.
#[derive(Clone, Debug)]
pub struct FirstDifference {
    /// Which run of the case (0 = first; later ones follow host-call resumptions).
    pub run: usize,
    /// Instructions executed in that run before the differing one.
    pub steps: u64,
    /// pc of the instruction after which the states differ.
    pub pc: u32,
    pub differences: Vec<Difference>,
}

/// A divergence, explained.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub first: Option<FirstDifference>,
    /// Differences at the end of the first run that disagrees (full runs).
    pub at_exit: Vec<Difference>,
    pub disassembly: String,
    pub minimised: GenProgram,
    pub original_instructions: usize,
    pub minimised_instructions: usize,
    /// When single-stepping shows no difference: the smallest gas budget at which the two
    /// backends' full runs differ (found by bisection), which points at the block whose
    /// charge differs in block mode.
    pub gas_bisection: Option<GasBisection>,
}

/// The result of bisecting the gas budget of a divergence that single-stepping misses.
#[derive(Clone, Debug)]
pub struct GasBisection {
    /// The smallest initial gas at which the runs differ (one less agrees).
    pub budget: i64,
    pub differences: Vec<Difference>,
    /// Where the first backend stopped with that budget: the block whose entry is charged
    /// differently, or the one after it.
    pub pc: u32,
    pub disassembly: String,
}

/// Bisects the initial gas of a diverging program for the smallest budget at which the two
/// backends still diverge, and reports where they stop with it.
pub fn bisect_gas(program: &GenProgram, a: &mut dyn Backend, b: &mut dyn Backend) -> Option<GasBisection> {
    let with = |g: i64| {
        let mut p = program.clone();
        p.gas = g;
        p
    };
    if !diverges(program, a, b) || program.gas <= 0 {
        return None;
    }
    let (mut lo, mut hi) = (0i64, program.gas);
    if diverges(&with(0), a, b) {
        hi = 0;
    } else {
        // Invariant: `lo` agrees, `hi` diverges.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if diverges(&with(mid), a, b) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
    }
    let found = with(hi);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_pair(&found, a, b))).ok()?;
    let differences: Vec<Difference> = outcome.failures.iter().map(|f| f.difference.clone()).collect();
    let pc = outcome.snapshots.first().and_then(|s| s.last()).map_or(found.initial_pc, |s| s.pc);
    let disassembly = disassemble_around(&found.blob(), found.profile, pc, 6, 4);
    Some(GasBisection { budget: hi, differences, pc, disassembly })
}

/// Single-steps both backends through a program's case and reports the first step after
/// which their whole states differ.
pub fn first_difference(program: &GenProgram, a: &mut dyn Backend, b: &mut dyn Backend) -> Option<FirstDifference> {
    use std::ops::ControlFlow::{Break, Continue};
    let case = program.case("generated");
    let prepared = Prepared::new(&case, &program.options()).ok()?;
    let mut run = 0;
    drive(&case, &prepared, &mut [a, b], |visit, backends| {
        let Visit::Run { .. } = visit else { return Continue(()) };
        let mut steps = 0u64;
        loop {
            let pc = backends[0].resume_pc();
            let ea = backends[0].step();
            let eb = backends[1].step();
            let sa = Snapshot::take(&*backends[0], ea.unwrap_or(Exit::Halt));
            let sb = Snapshot::take(&*backends[1], eb.unwrap_or(Exit::Halt));
            let mut differences = compare_snapshots(&sa, &sb);
            if ea.is_some() != eb.is_some() {
                differences.retain(|d| d.field != "exit");
                let show = |e: Option<Exit>| e.map_or("running".to_string(), |e| e.to_string());
                differences.insert(0, Difference { field: "exit".into(), expected: show(ea), got: show(eb) });
            }
            if !differences.is_empty() {
                return Break(FirstDifference { run, steps, pc, differences });
            }
            if ea.is_some() || steps > 10_000_000 {
                break;
            }
            steps += 1;
        }
        run += 1;
        Continue(())
    })
}

fn instruction_count(p: &GenProgram) -> usize {
    match &p.code {
        GenCode::Blocks { blocks, .. } => blocks.iter().map(|b| b.len()).sum(),
        GenCode::Raw { code, .. } => code.len(),
    }
}

/// Smaller variants of a program, most promising first.
fn shrink_candidates(p: &GenProgram) -> Vec<GenProgram> {
    let mut out = Vec::new();
    if !p.responses.is_empty() {
        let mut c = p.clone();
        c.responses.pop();
        out.push(c);
    }
    if let Some(i) = p.remaps.iter().position(Option::is_some) {
        let mut c = p.clone();
        c.remaps[i] = None;
        out.push(c);
    }
    match &p.code {
        GenCode::Blocks { blocks, jump_table } => {
            for i in (0..blocks.len()).rev() {
                if blocks.len() > 1 {
                    let mut blocks = blocks.clone();
                    blocks.remove(i);
                    let fix = |t: usize| {
                        if t > i {
                            t - 1
                        } else if t == i {
                            0
                        } else {
                            t
                        }
                    };
                    for inst in blocks.iter_mut().flatten() {
                        inst.target = inst.target.map(fix);
                    }
                    let table = jump_table
                        .iter()
                        .map(|e| match e {
                            TableEntry::Block(b) => TableEntry::Block(fix(*b)),
                            raw => raw.clone(),
                        })
                        .collect();
                    let mut c = p.clone();
                    c.code = GenCode::Blocks { blocks, jump_table: table };
                    out.push(c);
                }
            }
            for (bi, block) in blocks.iter().enumerate() {
                for ii in (0..block.len()).rev() {
                    let mut blocks = blocks.clone();
                    blocks[bi].remove(ii);
                    let mut c = p.clone();
                    c.code = GenCode::Blocks { blocks, jump_table: jump_table.clone() };
                    out.push(c);
                }
            }
            if !jump_table.is_empty() {
                let mut c = p.clone();
                let mut t = jump_table.clone();
                t.pop();
                c.code = GenCode::Blocks { blocks: blocks.clone(), jump_table: t };
                out.push(c);
            }
        }
        GenCode::Raw { code, starts, jump_table } => {
            for cut in [code.len() / 2, code.len().saturating_sub(1)] {
                if cut > 0 && cut < code.len() {
                    let mut c = p.clone();
                    c.code = GenCode::Raw {
                        code: code[..cut].to_vec(),
                        starts: starts[..cut].to_vec(),
                        jump_table: jump_table.clone(),
                    };
                    out.push(c);
                }
            }
            for i in 1..code.len() {
                let mut code = code.clone();
                let mut starts = starts.clone();
                code.remove(i);
                starts.remove(i);
                let mut c = p.clone();
                c.code = GenCode::Raw { code, starts, jump_table: jump_table.clone() };
                out.push(c);
            }
        }
    }
    for i in (0..p.writes.len()).rev() {
        let mut c = p.clone();
        c.writes.remove(i);
        out.push(c);
    }
    for i in (0..p.regions.len()).rev() {
        let mut c = p.clone();
        c.regions.remove(i);
        // Writes into a removed region would fail.
        let (start, end) = (p.regions[i].address as u64, p.regions[i].address as u64 + p.regions[i].length as u64);
        c.writes.retain(|(a, _)| !((start..end).contains(&(*a as u64))));
        out.push(c);
        if !p.regions[i].contents.is_empty() {
            let mut c = p.clone();
            c.regions[i].contents.clear();
            out.push(c);
        }
    }
    for r in 0..p.regs.len() {
        if p.regs[r] != 0 {
            let mut c = p.clone();
            c.regs[r] = 0;
            out.push(c);
        }
    }
    if p.form != crate::generator::BlobForm::Canonical {
        let mut c = p.clone();
        c.form = crate::generator::BlobForm::Canonical;
        out.push(c);
    }
    if p.initial_pc != 0 {
        let mut c = p.clone();
        c.initial_pc = 0;
        out.push(c);
    }
    out
}

/// Greedily shrinks a diverging program while it still diverges (bounded number of tries).
pub fn minimise(program: &GenProgram, a: &mut dyn Backend, b: &mut dyn Backend) -> GenProgram {
    let mut best = program.clone();
    let mut tries = 0;
    'outer: loop {
        for candidate in shrink_candidates(&best) {
            tries += 1;
            if tries > 5000 {
                break 'outer;
            }
            if diverges(&candidate, a, b) {
                best = candidate;
                continue 'outer;
            }
        }
        break;
    }
    best
}

/// Explains a divergence: minimise first, then localise on the minimised program.
pub fn explain(program: &GenProgram, a: &mut dyn Backend, b: &mut dyn Backend) -> Explanation {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let minimised = minimise(program, a, b);
    let at_exit = match catch_unwind(AssertUnwindSafe(|| run_pair(&minimised, a, b))) {
        Ok(outcome) => {
            let first_run_step = outcome.failures.first().map(|f| f.step);
            outcome.failures.iter().filter(|f| Some(f.step) == first_run_step).map(|f| f.difference.clone()).collect()
        }
        Err(_) => vec![Difference { field: "backend".into(), expected: "no panic".into(), got: "panicked".into() }],
    };
    let first = catch_unwind(AssertUnwindSafe(|| first_difference(&minimised, a, b))).ok().flatten();
    let gas_bisection = if first.is_none() {
        catch_unwind(AssertUnwindSafe(|| bisect_gas(&minimised, a, b))).ok().flatten()
    } else {
        None
    };
    let pc = first.as_ref().map_or(minimised.initial_pc, |f| f.pc);
    let disassembly = disassemble_around(&minimised.blob(), minimised.profile, pc, 6, 4);
    Explanation {
        first,
        at_exit,
        disassembly,
        original_instructions: instruction_count(program),
        minimised_instructions: instruction_count(&minimised),
        minimised,
        gas_bisection,
    }
}

impl Explanation {
    /// Human-readable report.
    pub fn render(&self, a: &str, b: &str) -> String {
        let mut out = String::new();
        match &self.first {
            Some(f) => {
                out += &format!(
                    "first difference after the instruction at pc {} (run {}, step {}), {a} vs {b}:\n",
                    f.pc, f.run, f.steps
                );
                for d in &f.differences {
                    out += &format!("  {d}\n");
                }
            }
            None => out += "no difference when single-stepping both backends; at the end of the run:\n",
        }
        if self.first.is_none() {
            for d in &self.at_exit {
                out += &format!("  {d}\n");
            }
            if let Some(g) = &self.gas_bisection {
                let smaller =
                    if g.budget > 0 { format!("{} agrees", g.budget - 1) } else { "no smaller budget".into() };
                out += &format!(
                    "a gas-only divergence (block mode only): with initial gas {} the runs differ ({smaller}); {a} stops at pc {}:\n",
                    g.budget, g.pc
                );
                for d in &g.differences {
                    out += &format!("  {d}\n");
                }
                out += &format!("the block around it ({}):\n{}\n", self.minimised.profile, g.disassembly);
            }
        }
        out += &format!(
            "minimised from {} to {} instructions; disassembly ({}):\n{}\n",
            self.original_instructions, self.minimised_instructions, self.minimised.profile, self.disassembly
        );
        out
    }
}

/// Writes a program as a vector with the expected values `reference` produces: the w3f v0.4
/// format when it is a single run under a unit gas model, else the spectool multi-step
/// format. Both carry `javm-profile` / `javm-gas-model` so they replay as generated, and both
/// are written with the serde types the reader uses.
pub fn write_vector(program: &GenProgram, name: &str, reference: &mut dyn Backend, path: &Path) -> std::io::Result<()> {
    use crate::vectors::{BlockCost, Costs, SpectoolAssert, SpectoolFile, SpectoolStep, W3fFile};
    let case = program.case(name);
    let prepared = Prepared::new(&case, &program.options()).map_err(std::io::Error::other)?;
    let gas_name = crate::generator::effective_gas(program.gas_model).name();
    let mut steps = Vec::new();
    let mut snapshots = Vec::new();
    drive(&case, &prepared, &mut [reference], |visit, backends| {
        match visit {
            Visit::Host { step, .. } => steps.extend(host_step(&case.steps[step])),
            Visit::Run { .. } => {
                let exit = backends[0].run();
                let s = Snapshot::take(&*backends[0], exit);
                steps.push(SpectoolStep::Run {});
                steps.push(SpectoolStep::Assert(SpectoolAssert {
                    status: Some(exit.status().to_string()),
                    gas: Some(s.gas),
                    pc: Some(s.pc),
                    regs: Some(s.regs),
                    memory: Some(chunks(&s.nonzero_bytes())),
                    page_fault_address: if let Exit::PageFault(a) = exit { Some(a) } else { None },
                    hostcall: if let Exit::HostCall(id) = exit { Some(id) } else { None },
                }));
                snapshots.push(s);
            }
            Visit::Assert { .. } => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    let single_run = snapshots.len() == 1 && program.block_costs.is_none();
    let text = if single_run {
        let s = &snapshots[0];
        let file = W3fFile {
            name: name.to_string(),
            initial_regs: program.regs,
            initial_pc: program.initial_pc,
            initial_page_map: program
                .regions
                .iter()
                .map(|r| Region { address: r.address, length: r.length, is_writable: r.writable })
                .collect(),
            initial_memory: program
                .regions
                .iter()
                .filter(|r| !r.contents.is_empty())
                .map(|r| Chunk { address: r.address, contents: r.contents.clone() })
                .chain(program.writes.iter().map(|(a, b)| Chunk { address: *a, contents: b.clone() }))
                .collect(),
            initial_gas: program.gas,
            program: program.bytes(),
            expected_status: s.exit.status().to_string(),
            expected_regs: s.regs,
            expected_pc: s.pc,
            expected_memory: chunks(&s.nonzero_bytes()),
            expected_gas: s.gas,
            expected_page_fault_address: if let Exit::PageFault(a) = s.exit { Some(a) } else { None },
            expected_hostcall: if let Exit::HostCall(id) = s.exit { Some(id) } else { None },
            block_gas_costs: None,
            javm_profile: Some(program.profile.name().to_string()),
            javm_gas_model: Some(gas_name.to_string()),
        };
        serde_json::to_string_pretty(&file)
    } else {
        let costs = program.block_costs.clone().unwrap_or_default();
        let file = SpectoolFile {
            name: name.to_string(),
            initial_pc: program.initial_pc,
            initial_gas: program.gas,
            program: program.bytes(),
            block_gas_costs: Costs::List(costs.iter().map(|&(pc, cost)| BlockCost { pc, cost }).collect()),
            steps,
            javm_profile: Some(program.profile.name().to_string()),
            javm_gas_model: Some(gas_name.to_string()),
        };
        serde_json::to_string_pretty(&file)
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text.map_err(std::io::Error::other)? + "\n")
}

/// A host step in the spectool file form.
fn host_step(step: &Step) -> Option<crate::vectors::SpectoolStep> {
    use crate::vectors::SpectoolStep;
    match step {
        Step::Map(r) => Some(SpectoolStep::Map(r.clone())),
        Step::Write(c) => Some(SpectoolStep::Write(c.clone())),
        Step::SetReg { reg, value } => Some(SpectoolStep::SetReg { reg: *reg as u8, value: *value }),
        Step::Run | Step::Assert(_) => None,
    }
}

/// Where the repro of a divergence goes.
pub fn repro_path(dir: &Path, seed: u64, index: u64, config: GenConfig) -> PathBuf {
    let mode = if config.raw { "raw" } else { "gen" };
    dir.join(format!("divergence-{}-{mode}-{seed}-{index}.json", config.profile.name()))
}
