//! Running a vector [`Case`] on one backend or on several in lockstep.

use std::sync::Arc;

use javm_engine::{Backend, BlobError, Config, Exit, GasModel, Profile, Program};

use crate::state::{check_expect, compare_snapshots, Difference, Snapshot};
use crate::vectors::{Case, Step};

pub use crate::vectors::GasChoice;

/// Per-run choices; `None` profile means "auto" (by format).
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub profile: Option<Profile>,
    pub gas: GasChoice,
    /// Also record what a report shows (the instruction each run ended at, the disassembly
    /// around a failure); off where only the verdict counts (`diff`, fuzzing).
    pub details: bool,
    /// Which differences between two backends are listed known differences of one of them.
    /// The default (its `Default` impl is in `backends`, which `run` does not import) is the
    /// registry's judgement, `backends::known_difference`.
    pub known: KnownDifferences,
}

/// Decides whether the difference between two backends' snapshots (name, snapshot) on a
/// case is a listed known difference of one of them: its name, else `None`.
pub type KnownDifferences = fn((&str, &Snapshot), (&str, &Snapshot), &Case, &RunOptions) -> Option<String>;

/// The configuration a case runs with under the given options.
pub fn case_config(case: &Case, options: &RunOptions) -> Result<Config, String> {
    let profile = options.profile.or(case.profile_hint).unwrap_or(case.format.default_profile());
    let choice = match (options.gas, case.gas_hint) {
        (GasChoice::Auto, Some(hint)) => hint,
        (choice, _) => choice,
    };
    let gas = match choice {
        GasChoice::Auto => case.default_gas_model(),
        GasChoice::BlockUnit => GasModel::BlockUnit,
        GasChoice::Instruction => GasModel::Instruction,
        GasChoice::BlockTable => match &case.block_costs {
            Some(costs) => GasModel::table(costs.iter().copied()),
            None => return Err("gas model block-table needs a `block-gas-costs` table and this file has none".into()),
        },
    };
    Ok(Config::new(profile, gas))
}

/// A failed check: which backend, at which step.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    /// Backend name, or `a vs b` for a disagreement between two backends.
    pub backend: String,
    pub step: usize,
    #[serde(flatten)]
    pub difference: Difference,
}

/// The result of one case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub name: String,
    pub file: String,
    pub format: &'static str,
    pub profile: String,
    pub gas_model: String,
    pub passed: bool,
    /// The exit of every run step (of the first backend).
    pub exits: Vec<String>,
    pub failures: Vec<Failure>,
    /// Differences that are listed known differences of an external implementation (a
    /// program it refuses, a rule it reads differently): reported, not failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<KnownDifference>,
    /// Per backend that ran (in order), its snapshot after every run step.
    #[serde(skip)]
    pub snapshots: Vec<Vec<Snapshot>>,
    /// The case came from a single-run file: its steps are not the file's own.
    #[serde(skip)]
    pub single_run: bool,
    /// For a failed case: the disassembly around the pc where the first backend stopped.
    #[serde(skip)]
    pub disassembly: Option<String>,
    /// Per backend and run: `(backend, mnemonic of the instruction at the exit pc, status)`,
    /// for the dashboard's heat map.
    #[serde(skip)]
    pub exit_ops: Vec<(String, String, String)>,
}

/// A listed known difference seen in a case.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KnownDifference {
    /// The backend that refused, or the pair that differed (`a vs b`).
    pub who: String,
    /// Its name in the backend's list.
    pub name: String,
    /// Where or why (the step, the implementation's reason).
    pub detail: String,
}

impl std::fmt::Display for KnownDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.who, self.name)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl Outcome {
    /// A case not run yet.
    fn new(case: &Case) -> Outcome {
        Outcome {
            name: case.name.clone(),
            file: case.path.display().to_string(),
            format: case.format.name(),
            profile: String::new(),
            gas_model: String::new(),
            passed: false,
            exits: Vec::new(),
            failures: Vec::new(),
            known: Vec::new(),
            snapshots: Vec::new(),
            single_run: case.format.single_run(),
            disassembly: None,
            exit_ops: Vec::new(),
        }
    }

    /// How a report names step `i`: `run` in single-run files (their steps are ours, not the
    /// file's), else `step i` (the index in the file's `steps`).
    pub fn step_label(&self, i: usize) -> String {
        if self.single_run {
            "run".into()
        } else {
            format!("step {i}")
        }
    }

    /// A case during which a backend panicked (an external backend whose process failed, or
    /// a bug): a failure naming the backends and the message.
    pub fn crashed(case: &Case, backends: &str, message: String) -> Outcome {
        let mut outcome = Outcome::new(case);
        outcome.failures.push(Failure {
            backend: backends.to_string(),
            step: 0,
            difference: Difference { field: "backend".into(), expected: "no crash".into(), got: message },
        });
        outcome
    }
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// The snapshot with a trap reported as a panic (for backends that do not tell them apart).
pub fn fold_trap(s: &Snapshot) -> Snapshot {
    let mut s = s.clone();
    if s.exit == Exit::Trap {
        s.exit = Exit::Panic;
    }
    s
}

/// Loads a program into a backend: the engine's prepared program, or the blob bytes for a
/// backend that reads blobs itself (an independent judge must not see the engine's
/// preparation).
fn load_program(backend: &mut dyn Backend, bytes: &[u8], config: &Config, prepared: &Result<Arc<Program>, BlobError>) {
    if backend.reads_blobs() {
        backend.load_blob(bytes, config);
        return;
    }
    match prepared {
        Ok(p) => backend.load(p.clone()),
        Err(_) => backend.load_invalid(),
    }
}

/// Applies a host step (map, write, set-reg) to a backend. Other steps do nothing here.
/// A refused map or write gives the step's name and the backend's error.
pub fn apply_host_step(b: &mut dyn Backend, step: &Step) -> Result<(), (&'static str, javm_engine::MemoryError)> {
    match step {
        Step::Map(r) => b.map(r.address, r.length as u64, r.is_writable).map_err(|e| ("map", e)),
        Step::Write(c) => b.write_memory(c.address, &c.contents).map_err(|e| ("write", e)),
        Step::SetReg { reg, value } => {
            b.set_reg(*reg, *value);
            Ok(())
        }
        Step::Run | Step::Assert(_) => Ok(()),
    }
}

/// A case's program prepared once for every backend: its configuration and the engine's
/// preparation (a blob that does not decode runs as an immediate panic).
pub struct Prepared {
    pub config: Config,
    pub program: Result<Arc<Program>, BlobError>,
}

impl Prepared {
    pub fn new(case: &Case, options: &RunOptions) -> Result<Prepared, String> {
        let config = case_config(case, options)?;
        let program = Program::from_bytes(&case.program, config.clone()).map(Arc::new);
        Ok(Prepared { config, program })
    }
}

/// A step of a case the step loop hands to its caller (host steps it applies itself).
pub enum Visit<'c> {
    /// A host step was applied to every backend; those that refused it are listed (the
    /// backend's index, the step's name and the error).
    Host { step: usize, failures: Vec<(usize, &'static str, javm_engine::MemoryError)> },
    /// Run every backend (to its exit, or however the caller executes them).
    Run { step: usize },
    /// Check the last run's states.
    Assert { step: usize, expect: &'c crate::vectors::Expect },
}

/// The step loop every way of executing a case shares (`vectors`, `diff`, the minimiser,
/// the first-difference search, the fuzz bodies): loads the prepared program into every
/// backend with the case's pc and gas, applies each host step (map, write, set-reg) to every
/// backend in order, and hands failures, runs and asserts to `visit` with the backends. It
/// stops early with the value `visit` breaks with.
pub fn drive<T>(
    case: &Case,
    prepared: &Prepared,
    backends: &mut [&mut dyn Backend],
    mut visit: impl FnMut(Visit<'_>, &mut [&mut dyn Backend]) -> std::ops::ControlFlow<T>,
) -> Option<T> {
    use std::ops::ControlFlow::Break;
    for b in backends.iter_mut() {
        load_program(&mut **b, &case.program, &prepared.config, &prepared.program);
        b.set_pc(case.initial_pc);
        b.set_gas(case.initial_gas);
    }
    for (i, step) in case.steps.iter().enumerate() {
        match step {
            Step::Map(_) | Step::Write(_) | Step::SetReg { .. } => {
                let failures = (0..backends.len())
                    .filter_map(|k| apply_host_step(&mut *backends[k], step).err().map(|(what, e)| (k, what, e)))
                    .collect();
                if let Break(t) = visit(Visit::Host { step: i, failures }, backends) {
                    return Some(t);
                }
            }
            Step::Run => {
                if let Break(t) = visit(Visit::Run { step: i }, backends) {
                    return Some(t);
                }
            }
            Step::Assert(expect) => {
                if let Break(t) = visit(Visit::Assert { step: i, expect }, backends) {
                    return Some(t);
                }
            }
        }
    }
    None
}

/// Runs a case on every given backend in lockstep. Each backend is checked against the
/// case's assertions; with more than one backend, their full states are also compared with
/// the first one's after every run.
pub fn run_case(case: &Case, options: &RunOptions, backends: &mut [&mut dyn Backend]) -> Outcome {
    use std::ops::ControlFlow::{Break, Continue};
    let mut outcome = Outcome::new(case);
    let prepared = match Prepared::new(case, options) {
        Ok(p) => p,
        Err(message) => {
            outcome.failures.push(Failure {
                backend: "setup".into(),
                step: 0,
                difference: Difference { field: "config".into(), expected: message, got: String::new() },
            });
            return outcome;
        }
    };
    let (config, program) = (&prepared.config, &prepared.program);
    outcome.profile = config.profile.to_string();
    outcome.gas_model = config.gas.to_string();
    outcome.snapshots = vec![Vec::new(); backends.len()];
    let mut finished = false;
    let setup_failure = |backend: &str, step: usize, field: &str, message: String| Failure {
        backend: backend.to_string(),
        step,
        difference: Difference { field: field.into(), expected: "success".into(), got: message },
    };
    /// A backend refused the program: the case runs again without it.
    struct Refused;
    let refused = drive(case, &prepared, backends, |visit, backends| {
        match visit {
            Visit::Host { step, failures } => {
                for (k, what, error) in failures {
                    outcome.failures.push(setup_failure(backends[k].name(), step, what, error.to_string()));
                }
            }
            Visit::Run { step: i } => {
                // A backend that refuses the program (at load, or a mapping it cannot make)
                // sits the case out.
                if backends.iter().any(|b| b.refusal().is_some()) {
                    return Break(Refused);
                }
                for (k, b) in backends.iter_mut().enumerate() {
                    let exit: Exit = b.run();
                    outcome.snapshots[k].push(Snapshot::take(&**b, exit));
                }
                let Some(first) = outcome.snapshots.first().and_then(|s| s.last()) else { return Continue(()) };
                outcome.exits.push(first.exit.to_string());
                // A finished program only repeats its exit; the model checks fresh exits.
                let repeated = finished;
                finished = !first.exit.is_resumable();
                if let (Ok(p), false) = (program, repeated) {
                    if let Some(d) = crate::oracle::check_fault(p, first) {
                        outcome.failures.push(Failure { backend: "model".into(), step: i, difference: d });
                    }
                }
                for k in 1..backends.len() {
                    let other = outcome.snapshots[k].last().expect("every backend ran");
                    let pair = format!("{} vs {}", backends[0].name(), backends[k].name());
                    let fold = !backends[0].distinguishes_trap() || !backends[k].distinguishes_trap();
                    let differences = if fold {
                        compare_snapshots(&fold_trap(first), &fold_trap(other))
                    } else {
                        compare_snapshots(first, other)
                    };
                    if differences.is_empty() {
                        continue;
                    }
                    let known =
                        (options.known)((backends[0].name(), first), (backends[k].name(), other), case, options);
                    match known {
                        Some(name) => {
                            outcome.known.push(KnownDifference { who: pair, name, detail: format!("step {i}") })
                        }
                        None => outcome.failures.extend(differences.into_iter().map(|d| Failure {
                            backend: pair.clone(),
                            step: i,
                            difference: d,
                        })),
                    }
                }
            }
            Visit::Assert { step: i, expect } => {
                for (k, b) in backends.iter().enumerate() {
                    match outcome.snapshots[k].last() {
                        Some(s) => {
                            for d in check_expect(expect, s) {
                                outcome.failures.push(Failure { backend: b.name().into(), step: i, difference: d });
                            }
                        }
                        None => {
                            outcome.failures.push(setup_failure(b.name(), i, "assert", "assert before any run".into()))
                        }
                    }
                }
            }
        }
        Continue(())
    });
    if refused.is_some() {
        return without_refusing(case, options, backends);
    }
    outcome.passed = outcome.failures.is_empty();
    // What the dashboard shows: the instruction each run ended at, and for a failure the
    // code around where the first backend stopped (from the program prepared above; nothing
    // is done when details are off, as in `diff`).
    if let (true, Ok(prepared)) = (options.details, program) {
        let blob = &prepared.blob;
        for (k, b) in backends.iter().enumerate() {
            for s in &outcome.snapshots[k] {
                let op = blob.code.get(s.pc as usize).and_then(|&n| config.profile.op(n));
                let mnemonic = op.map_or("(no instruction)", |o| o.mnemonic());
                outcome.exit_ops.push((b.name().to_string(), mnemonic.to_string(), s.exit.status().to_string()));
            }
        }
        if !outcome.passed {
            let pc = outcome.snapshots.first().and_then(|s| s.last()).map_or(case.initial_pc, |s| s.pc);
            outcome.disassembly = Some(javm_engine::disasm::disassemble_around(blob, config.profile, pc, 6, 4));
        }
    }
    outcome
}

/// Runs a case again on the backends that do not refuse it, recording each refusal (its
/// reason reads `name: detail`) as a known difference.
fn without_refusing(case: &Case, options: &RunOptions, backends: &mut [&mut dyn Backend]) -> Outcome {
    let mut kept: Vec<&mut dyn Backend> = Vec::new();
    let mut known = Vec::new();
    for b in backends.iter_mut() {
        match b.refusal() {
            Some(reason) => {
                let (name, detail) = reason.split_once(": ").unwrap_or((&reason, ""));
                known.push(KnownDifference { who: b.name().into(), name: name.into(), detail: detail.into() });
            }
            None => kept.push(&mut **b),
        }
    }
    let mut inner = run_case(case, options, &mut kept);
    inner.known.splice(0..0, known);
    inner
}
