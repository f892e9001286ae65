//! Kernel vectors (KSPEC-1): JSON files that describe an initial cap cache and kernel-assist
//! state, the legs of an invocation (invoke, resume) and the expected outcome of each leg. The
//! format is documented in `vectors/README.md`; a file is a kernel vector when its top-level
//! object has a `"kernel"` field.
//!
//! Loading resolves every name and assembles every image; any problem is an error naming the
//! file and the place in it, never a panic. Running gives, per backend, every KOBS-1 record and
//! each leg's end state; the first backend's are checked against the expectations and every
//! other backend's observations are compared with the first one's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use javm_cap::hash::to_hex;
use javm_cap::{
    CNodeCap, CacheDirectory, Cap, CapHashOrRef, DataCap, EndpointDef, Hash, ImageCap, ImageSlotEntry, InstanceCap,
    MemoryMapping, RwOverlay, SlotIdx, TypeCap, OOG_MARKER,
};
use javm_engine::{asm, Config, GasModel, Profile};
use javm_kernel::differential::{compare, run_scenario, Leg, LegRecord, RunRecord, Scenario};
use javm_kernel::ecall::op;
use javm_kernel::observe::{show_outcome, ObsOutcome, Point};
use javm_kernel::{BackendFactory, CallResult, EcallOutcome, FaultReason, InMemoryAssist, KernelAssist};
use serde::Deserialize;
use serde_json::Value;

use crate::run::{Failure, Outcome};
use crate::state::Difference;
use crate::vectors::VectorError;

mod check;
mod format;
mod load;
mod render;

pub use check::*;
pub use format::*;
pub use load::*;

/// Runs a kernel vector and reports it as a vectors-command [`Outcome`].
pub fn outcome(v: &KernelVector, backends: &[(&str, BackendFactory<'_>)]) -> Outcome {
    let run = v.run(backends);
    Outcome {
        name: v.name.clone(),
        file: v.path.display().to_string(),
        format: "kernel",
        profile: "j".into(),
        gas_model: v.scenario.config.gas.to_string(),
        passed: run.failures.is_empty(),
        exits: run.exits,
        failures: run.failures,
        known: Vec::new(),
        snapshots: Vec::new(),
        single_run: false,
        disassembly: None,
        exit_ops: Vec::new(),
    }
}

/// Runs kernel vectors in parallel on the given backends (their observations compared when
/// there are several).
pub fn run_kernel_vectors(vectors: &[KernelVector], kinds: &[crate::backends::BackendSpec]) -> Vec<Outcome> {
    use rayon::prelude::*;
    vectors
        .par_iter()
        .map(|v| {
            let factories: Vec<Box<dyn Fn() -> Box<dyn javm_engine::Backend> + '_>> = kinds
                .iter()
                .map(|k| {
                    Box::new(move || -> Box<dyn javm_engine::Backend> { k.create().expect("backend checked before") })
                        as Box<dyn Fn() -> Box<dyn javm_engine::Backend>>
                })
                .collect();
            let named: Vec<(&str, BackendFactory<'_>)> =
                kinds.iter().zip(&factories).map(|(k, f)| (k.name(), &**f as BackendFactory<'_>)).collect();
            outcome(v, &named)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KernelVector, String> {
        parse_kernel_vector(text, Path::new("bad.json"))
    }

    const MINIMAL: &str = r#"{"kernel": 1, "name": "m",
        "caps": {"img": {"image": {"code": "ecalli 0"}}, "cn": {"cnode": {"size_log": 4}},
                 "main": {"instance": {"image": "img", "cnode": "cn"}}},
        "legs": [{"invoke": {"instance": "main", "gas": 100}, "expect": {"result": "halt"}}]}"#;

    #[test]
    fn a_minimal_vector_loads_and_passes() {
        let v = parse(MINIMAL).unwrap();
        let interp = || -> Box<dyn javm_engine::Backend> { Box::new(javm_engine::Interpreter::new()) };
        let run = v.run(&[("interp", &interp), ("interp2", &interp)]);
        assert!(run.failures.is_empty(), "{:?}", run.failures);
        assert!(run.observation.contains("REPLY"));
    }

    #[test]
    fn malformed_vectors_name_the_problem() {
        let cases: [(&str, &str); 9] = [
            ("{", "malformed JSON"),
            (r#"{"kernel": 1, "name": "x", "legs": [{"jump": {}}]}"#, "unknown field `jump`"),
            (r#"{"kernel": 1, "name": "x", "legs": [{}]}"#, "exactly one of `invoke` or `resume`"),
            (
                r#"{"kernel": 1, "name": "x", "caps": {"c": {"cnode": {"size_log": 4, "slots": {"2": "ghost"}}}},
                    "legs": [{"resume": {}}]}"#,
                "caps.c.cnode.slots.2: dangling reference `ghost`",
            ),
            (
                r#"{"kernel": 1, "name": "x", "caps": {"i": {"image": {"code": "frobnicate r1"}}}, "legs": [{"resume": {}}]}"#,
                "caps.i.image.code: line 1: unknown mnemonic 'frobnicate'",
            ),
            (
                r#"{"kernel": 1, "name": "x", "caps": {"d": {"data": "x"}, "i": {"image": {"code": "trap", "pinned": {"0": "d"}}}},
                    "legs": [{"resume": {}}]}"#,
                "caps.i: rejected by the cache",
            ),
            (r#"{"kernel": 2, "name": "x", "legs": [{"resume": {}}]}"#, "format 2 is not supported"),
            (
                r##"{"kernel": 1, "name": "x", "legs": [{"resume": {"scratchpad": "#abc"}}]}"##,
                "`#abc` is not a hash literal",
            ),
            (
                r#"{"kernel": 1, "name": "x", "legs": [{"resume": {}, "expect": {"result": "exploded"}}]}"#,
                "`exploded` is not one of",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        let e = load_kernel_vector(Path::new("/nonexistent/k.json")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/k.json: cannot open"), "{e}");
    }

    #[test]
    fn self_reference_is_an_error_not_a_hang() {
        let text = r#"{"kernel": 1, "name": "x", "caps": {"c": {"cnode": {"size_log": 4, "slots": {"1": "c"}}}},
                       "legs": [{"resume": {}}]}"#;
        assert!(parse(text).unwrap_err().contains("refers to itself"));
    }

    #[test]
    fn data_forms() {
        assert_eq!(data_bytes(&serde_json::json!("ab"), "x").unwrap().len(), 4096);
        assert_eq!(data_bytes(&serde_json::json!({"hex": "ff00", "pages": 2}), "x").unwrap().len(), 8192);
        assert_eq!(data_bytes(&serde_json::json!({"bytes": [1, 2]}), "x").unwrap()[..2], [1, 2]);
        assert!(data_bytes(&serde_json::json!({"hex": "f"}), "x").is_err());
        assert!(data_bytes(&serde_json::json!({"colour": 1}), "x").is_err());
        assert!(data_bytes(&serde_json::json!(5), "x").is_err());
    }
}
