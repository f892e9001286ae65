//! Running a kernel vector on one or more backends and checking each leg against its
//! expectations and the backends against each other.

use super::*;

/// The result of running one kernel vector.
#[derive(Debug)]
pub struct VectorRun {
    /// Every mismatch: expectations (against the first backend), backend disagreements and
    /// invariant violations.
    pub failures: Vec<Failure>,
    /// The first backend's full observation, rendered.
    pub observation: String,
    /// Each leg's result on the first backend.
    pub exits: Vec<String>,
}

impl KernelVector {
    pub(super) fn name_of(&self, h: &Hash) -> Option<String> {
        self.names.get(h).cloned()
    }

    /// Runs the vector on every backend; the first one's results are checked against the
    /// expectations, the others are compared with the first one record by record.
    pub fn run(&self, backends: &[(&str, BackendFactory<'_>)]) -> VectorRun {
        let runs: Vec<RunRecord> = backends.iter().map(|(_, f)| run_scenario(&self.scenario, *f, 1)).collect();
        let mut failures = Vec::new();
        let fail = |backend: &str, leg: usize, field: String, expected: String, got: String| Failure {
            backend: backend.to_string(),
            step: leg,
            difference: Difference { field, expected, got },
        };
        let first = &runs[0];
        let first_name = backends[0].0;
        for (name, run) in backends.iter().map(|b| b.0).zip(&runs) {
            for v in &run.violations {
                failures.push(fail(name, 0, "invariant".into(), "no violation".into(), v.clone()));
            }
        }
        for (k, run) in runs.iter().enumerate().skip(1) {
            if let Some(d) = compare(first, run) {
                let pair = format!("{} vs {}", first_name, backends[k].0);
                let at = match &d.ecall {
                    Some(e) => format!("ecall #{} ({} at pc {})", e.index, op::name(e.op), e.pc),
                    None if d.point == Some(Point::P2) => "end of leg".to_string(),
                    None => "leg result".to_string(),
                };
                for f in d.fields {
                    failures.push(fail(&pair, d.leg, format!("{at}: {}", f.field), f.a, f.b));
                }
            }
        }
        for (i, (exp, leg)) in self.expects.iter().zip(&first.legs).enumerate() {
            let ecalls = first
                .records
                .iter()
                .filter(|r| r.leg == i && r.kobs.point == Point::P1)
                .map(|r| {
                    let o = match r.kobs.outcome {
                        ObsOutcome::Ecall(EcallOutcome::Continue) => "continue",
                        ObsOutcome::Ecall(EcallOutcome::Halt) => "halt",
                        ObsOutcome::Ecall(EcallOutcome::Trap) => "trap",
                        _ => "hostcall",
                    };
                    format!("{} {o}", r.ecall.as_ref().map_or("?", |e| op::name(e.op)))
                })
                .collect();
            let prev_keys = if i == 0 { self.scenario.cache.blob_keys() } else { first.legs[i - 1].blob_keys.clone() };
            for (field, expected, got) in self.check_leg(exp, leg, &first.cache, ecalls, &prev_keys) {
                failures.push(fail(first_name, i, field, expected, got));
            }
        }
        let exits = first.legs.iter().map(|l| self.show_result(&l.result)).collect();
        VectorRun { failures, observation: self.render(first), exits }
    }

    pub(super) fn show_result(&self, r: &Result<CallResult, javm_kernel::VmError>) -> String {
        match r {
            Ok(r) => show_outcome(&ObsOutcome::Leg(*r), &|h| self.name_of(h)),
            Err(e) => format!("error {e:?} ({e})"),
        }
    }

    pub(super) fn show_hash(&self, h: &Hash) -> String {
        self.name_of(h).unwrap_or_else(|| to_hex(h))
    }

    pub(super) fn show_target(&self, t: Option<&CapHashOrRef>) -> String {
        match t {
            None => "none".into(),
            Some(CapHashOrRef::Hash(h)) => self.show_hash(h),
            Some(CapHashOrRef::Ref(r)) => format!("ref#{}", r.0),
        }
    }

    pub(super) fn check_leg(
        &self,
        e: &LegExpect,
        leg: &LegRecord,
        cache: &CacheDirectory,
        ecalls: Vec<String>,
        prev_keys: &[Hash],
    ) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut check = |field: &str, expected: String, got: String| {
            if expected != got {
                out.push((field.to_string(), expected, got));
            }
        };
        let post = match &leg.result {
            Ok(CallResult::Halt { post_instance_hash, .. }) => Some(*post_instance_hash),
            _ => None,
        };
        let post_cnode = post
            .and_then(|p| cache.get_blob(&p))
            .and_then(Cap::as_instance)
            .and_then(|i| i.root_cnode.as_hash().copied());
        let resolve = |r: &ExpRef| -> Option<Hash> {
            match r {
                ExpRef::Hash(h) => Some(*h),
                ExpRef::Post => post,
                ExpRef::PostCnode => post_cnode,
            }
        };
        let show_exp = |r: &Option<ExpRef>| match r {
            None => "none".to_string(),
            Some(r) => resolve(r).map_or_else(|| format!("{r:?} (no such hash in this leg)"), |h| self.show_hash(&h)),
        };
        let (kind, reflected, payload, gas_used, fault) = match &leg.result {
            Ok(CallResult::Halt { reflected_slot0, gas_used, .. }) => {
                ("halt", Some(*reflected_slot0), None, Some(*gas_used), None)
            }
            Ok(CallResult::Faulted { reason, reflected_slot0, gas_used }) => {
                let (k, a) = match reason {
                    FaultReason::Trap => ("trap", None),
                    FaultReason::Panic => ("panic", None),
                    FaultReason::OutOfGas => ("out-of-gas", None),
                    FaultReason::PageFault(a) => ("page-fault", Some(*a)),
                };
                (k, Some(*reflected_slot0), None, Some(*gas_used), a)
            }
            Ok(CallResult::Paused { marker_payload, gas_used }) => {
                ("paused", None, Some(*marker_payload), Some(*gas_used), None)
            }
            Err(_) => ("error", None, None, None, None),
        };
        if let Some(r) = &e.result {
            if r != kind {
                // An error is named with its kind and message, not only as "error".
                let got = match &leg.result {
                    Err(x) => format!("error {x:?} ({x})"),
                    Ok(_) => kind.into(),
                };
                check("result", r.clone(), got);
            }
        }
        if let Some(v) = e.return_value {
            let got = match &leg.result {
                Ok(CallResult::Halt { return_value, .. }) => format!("{return_value:#x}"),
                _ => "no halt".into(),
            };
            check("return_value", format!("{v:#x}"), got);
        }
        if let Some(r) = &e.reflected {
            let got = reflected.map_or("no reflected slot 0".into(), |t| self.show_target(t.as_ref()));
            check("reflected", show_exp(r), got);
        }
        if let Some(p) = &e.payload {
            let got = payload.map_or("not paused".into(), |t| self.show_target(t.as_ref()));
            check("payload", show_exp(p), got);
        }
        if let Some(g) = e.gas_used {
            check("gas_used", g.to_string(), gas_used.map_or("none".into(), |g| g.to_string()));
        }
        if let Some(a) = e.fault_address {
            check("fault_address", format!("{a:#x}"), fault.map_or("none".into(), |a| format!("{a:#x}")));
        }
        if let Some(err) = &e.error {
            let got = match &leg.result {
                Err(x) => format!("{x:?}"),
                Ok(_) => "Ok".into(),
            };
            check("error", err.clone(), got);
        }
        if let Some(le) = &e.last_error {
            let want = le.clone().unwrap_or_else(|| "none".into());
            let got = leg.last_error.as_ref().map_or("none".into(), |x| format!("{x:?}"));
            if !got.starts_with(&want) {
                check("last_error", want, got);
            }
        }
        if let Some(list) = &e.ecalls {
            check("ecalls", list.join(", "), ecalls.join(", "));
        }
        let end = leg.end.as_ref();
        for (r, v) in &e.regs {
            check(
                &format!("regs[{r}]"),
                format!("{v:#x}"),
                end.map_or("no end state".into(), |x| format!("{:#x}", x.regs[*r])),
            );
        }
        if let Some(pc) = e.pc {
            check("pc", pc.to_string(), end.map_or("no end state".into(), |x| x.pc.to_string()));
        }
        if let Some(g) = e.gas {
            check("gas", g.to_string(), end.map_or("no end state".into(), |x| x.gas.to_string()));
        }
        if let Some(slots) = &e.slots {
            let exp: Vec<String> = slots.iter().map(|(s, r)| format!("{s}: {}", show_exp(&Some(r.clone())))).collect();
            let got: Vec<String> = match end {
                None => vec!["no end state".into()],
                Some(x) => x.cnode.slots.iter().map(|(s, t)| format!("{s}: {}", self.show_target(Some(t)))).collect(),
            };
            check("slots", exp.join(", "), got.join(", "));
        }
        if let Some(n) = e.stack_len {
            check("stack_len", n.to_string(), leg.stack_len.to_string());
        }
        let new_keys: Vec<&Hash> = leg.blob_keys.iter().filter(|k| prev_keys.binary_search(k).is_err()).collect();
        if let Some(n) = e.published_count {
            if n != new_keys.len() {
                let names: Vec<String> = new_keys.iter().map(|k| self.show_hash(k)).collect();
                check("published.count", n.to_string(), format!("{} [{}]", new_keys.len(), names.join(", ")));
            }
        }
        for r in &e.published_include {
            let present = resolve(r).is_some_and(|h| leg.blob_keys.binary_search(&h).is_ok());
            if !present {
                check("published.include", show_exp(&Some(r.clone())), "absent".into());
            }
        }
        if let Some(q) = &e.quotas {
            let exp: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let got: Vec<String> = leg.assist.quotas.iter().map(|(k, v)| format!("{k}={v}")).collect();
            check("assist.quotas", exp.join(", "), got.join(", "));
        }
        if let Some(f) = &e.files {
            let exp: Vec<String> = f.iter().map(|(k, r)| format!("{k}={}", show_exp(&Some(r.clone())))).collect();
            let got: Vec<String> =
                leg.assist.files.iter().map(|(k, t)| format!("{k}={}", self.show_target(Some(t)))).collect();
            check("assist.files", exp.join(", "), got.join(", "));
        }
        if let Some(n) = e.next_file_id {
            check("assist.next_file_id", n.to_string(), leg.assist.next_file_id.to_string());
        }
        out
    }
}
