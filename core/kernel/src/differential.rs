//! Differential running (KSPEC-1 §12.4): the same scripted invocation on two backends, every
//! KOBS-1 record compared, and the first ecall at which they differ reported with the fields
//! that differ.

use std::fmt;

use javm_cap::{CacheDirectory, CapHashOrRef, Hash};
use javm_engine::Config;

use crate::assist::{AssistSnapshot, InMemoryAssist, KernelAssist};
use crate::ecall::op;
use crate::error::{KernelError, VmError};
use crate::observe::{diff, show_outcome, EcallInfo, FieldDiff, Point, TraceRecord};
use crate::vm::{BackendFactory, CallResult, LegEnd, Vm};

/// One leg of a scripted invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leg {
    /// `invoke(instance, endpoint, args, gas)`.
    Invoke {
        /// The instance's cap hash.
        instance: Hash,
        /// The endpoint number.
        endpoint: u8,
        /// φ7..=φ10.
        args: [u64; 4],
        /// The gas budget.
        gas: u64,
    },
    /// `call_resume(scratchpad, extra_gas)`.
    Resume {
        /// What goes into the yielder's slot 0.
        scratchpad: Option<CapHashOrRef>,
        /// Gas added to the saved gas.
        extra_gas: u64,
    },
}

/// What both sides start from.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The initial cap cache.
    pub cache: CacheDirectory,
    /// The initial kernel-assist state.
    pub assist: InMemoryAssist,
    /// The engine configuration.
    pub config: Config,
    /// The stack capacity.
    pub max_depth: usize,
    /// The legs, in order.
    pub legs: Vec<Leg>,
}

/// How one leg of a run ended.
#[derive(Clone, Debug)]
pub struct LegRecord {
    /// The leg's result.
    pub result: Result<CallResult, VmError>,
    /// The final live state and the invoked frame's cnode (`None` for an `Err` leg).
    pub end: Option<LegEnd>,
    /// Why the leg's last ecall trapped, if it did.
    pub last_error: Option<KernelError>,
    /// Blob keys after the leg.
    pub blob_keys: Vec<Hash>,
    /// Kernel-assist state after the leg.
    pub assist: AssistSnapshot,
    /// Stack length after the leg.
    pub stack_len: usize,
}

/// Everything one run observed.
#[derive(Debug)]
pub struct RunRecord {
    /// Every KOBS-1 record, P1 and P2, in order.
    pub records: Vec<TraceRecord>,
    /// Each leg's result and end state.
    pub legs: Vec<LegRecord>,
    /// Invariant violations found along the way (KSPEC-1 §13.1, §13.2 P1).
    pub violations: Vec<String>,
    /// The cache after the last leg.
    pub cache: CacheDirectory,
    /// The VM after the last leg.
    pub vm: Vm<InMemoryAssist>,
}

/// Runs `scenario` on backends from `backends`, with memory digests at every `mem_every`-th P1
/// and invariant checks on.
pub fn run_scenario(scenario: &Scenario, backends: BackendFactory<'_>, mem_every: u32) -> RunRecord {
    let mut cache = scenario.cache.clone();
    let mut vm = Vm::with_config(scenario.assist.clone(), scenario.config.clone(), scenario.max_depth);
    vm.enable_trace(mem_every);
    vm.check_invariants = true;
    let mut legs = Vec::new();
    for leg in &scenario.legs {
        vm.last_leg = None;
        vm.last_error = None;
        let result = match leg {
            Leg::Invoke { instance, endpoint, args, gas } => {
                vm.invoke(&mut cache, backends, *instance, *endpoint, *args, *gas)
            }
            Leg::Resume { scratchpad, extra_gas } => vm.call_resume(&mut cache, backends, *scratchpad, *extra_gas),
        };
        legs.push(LegRecord {
            end: vm.last_leg.clone().filter(|_| result.is_ok()),
            result,
            last_error: vm.last_error.clone(),
            blob_keys: cache.blob_keys(),
            assist: vm.assist.snapshot(),
            stack_len: vm.stack.len(),
        });
    }
    let records = vm.trace.take().map(|t| t.records).unwrap_or_default();
    let violations = std::mem::take(&mut vm.violations);
    RunRecord { records, legs, violations, cache, vm }
}

/// Where two runs first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The leg.
    pub leg: usize,
    /// The position of the first differing record (`None` when a leg result differs).
    pub record: Option<usize>,
    /// P1 or P2.
    pub point: Option<Point>,
    /// The ecall (for P1) as the first run saw it.
    pub ecall: Option<EcallInfo>,
    /// The fields that differ.
    pub fields: Vec<FieldDiff>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leg {}", self.leg)?;
        match (&self.ecall, self.point) {
            (Some(e), _) => write!(f, ", ecall #{} ({} at pc {})", e.index, op::name(e.op), e.pc)?,
            (None, Some(Point::P2)) => f.write_str(", end of leg (P2)")?,
            _ => {}
        }
        writeln!(f, ": {} field(s) differ", self.fields.len())?;
        for d in &self.fields {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

fn leg_result(r: &Result<CallResult, VmError>) -> String {
    match r {
        Ok(r) => show_outcome(&crate::observe::ObsOutcome::Leg(*r), &|_| None),
        Err(e) => format!("Err({e})"),
    }
}

/// The first difference between two runs of one scenario, if any: record by record (digest
/// first, then field by field), then the number of records, then the legs' results.
pub fn compare(a: &RunRecord, b: &RunRecord) -> Option<Divergence> {
    for (i, (ra, rb)) in a.records.iter().zip(&b.records).enumerate() {
        if ra.kobs.digest() == rb.kobs.digest()
            && ra.leg == rb.leg
            && ra.ecall.as_ref().map(|e| e.op) == rb.ecall.as_ref().map(|e| e.op)
        {
            continue;
        }
        let mut fields = diff(&ra.kobs, &rb.kobs);
        if ra.leg != rb.leg {
            fields.insert(0, FieldDiff { field: "leg".into(), a: ra.leg.to_string(), b: rb.leg.to_string() });
        }
        let (ea, eb) = (ra.ecall.as_ref(), rb.ecall.as_ref());
        if ea.map(|e| (e.op, e.pc)) != eb.map(|e| (e.op, e.pc)) {
            let show = |e: Option<&EcallInfo>| e.map_or("none".to_string(), |e| format!("op {} at pc {}", e.op, e.pc));
            fields.insert(0, FieldDiff { field: "ecall".into(), a: show(ea), b: show(eb) });
        }
        return Some(Divergence {
            leg: ra.leg,
            record: Some(i),
            point: Some(ra.kobs.point),
            ecall: ra.ecall.clone(),
            fields,
        });
    }
    if a.records.len() != b.records.len() {
        let i = a.records.len().min(b.records.len());
        let longer = if a.records.len() > b.records.len() { &a.records[i] } else { &b.records[i] };
        return Some(Divergence {
            leg: longer.leg,
            record: Some(i),
            point: Some(longer.kobs.point),
            ecall: longer.ecall.clone(),
            fields: vec![FieldDiff {
                field: "records".into(),
                a: a.records.len().to_string(),
                b: b.records.len().to_string(),
            }],
        });
    }
    for (i, (la, lb)) in a.legs.iter().zip(&b.legs).enumerate() {
        let (ra, rb) = (&la.result, &lb.result);
        if ra != rb {
            return Some(Divergence {
                leg: i,
                record: None,
                point: None,
                ecall: None,
                fields: vec![FieldDiff { field: "result".into(), a: leg_result(ra), b: leg_result(rb) }],
            });
        }
    }
    None
}

/// Runs `scenario` on both backends and compares them.
pub fn differential(
    scenario: &Scenario,
    a: BackendFactory<'_>,
    b: BackendFactory<'_>,
    mem_every: u32,
) -> (RunRecord, RunRecord, Option<Divergence>) {
    let ra = run_scenario(scenario, a, mem_every);
    let rb = run_scenario(scenario, b, mem_every);
    let d = compare(&ra, &rb);
    (ra, rb, d)
}
