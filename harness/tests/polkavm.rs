//! PolkaVM as an oracle (`--features polkavm`): it passes both public suites, and every
//! listed known difference is recognised as such on a program that exhibits it.
#![cfg(feature = "polkavm")]

use std::path::PathBuf;

use javm_engine::Backend;
use javm_harness::backends::polkavm::{PolkaVm, KNOWN_DIFFERENCES};
use javm_harness::run::{run_case, RunOptions};
use javm_harness::vectors::{collect_files, default_vector_dir, load_case};
use javm_model::Model;

#[test]
fn polkavm_passes_both_public_suites() {
    let Ok(dir) = default_vector_dir() else {
        panic!("the public vectors are missing: run scripts/fetch-vectors.sh or set JAVM_VECTORS");
    };
    let mut pvm = PolkaVm::new().unwrap();
    let mut failed = Vec::new();
    let mut count = 0;
    for suite in ["w3f-pvm-v0.4", "polkavm-spectool"] {
        for file in collect_files(&dir.join(suite).join("programs")).unwrap() {
            let case = load_case(&file).unwrap();
            let outcome = run_case(&case, &RunOptions::default(), &mut [&mut pvm as &mut dyn Backend]);
            count += 1;
            if !outcome.passed || !outcome.known.is_empty() {
                failed.push(format!("{}: {:?} {:?}", case.name, outcome.failures, outcome.known));
            }
        }
    }
    assert_eq!(count, 670);
    assert!(failed.is_empty(), "{} of 670 not passed:\n{}", failed.len(), failed.join("\n"));
}

/// A one-run spectool-format case: blob bytes, profile, maps, registers, start pc.
fn case(name: &str, blob: &[u8], profile: &str, maps: &[(u32, u32, bool)], regs: &[(usize, u64)], pc: u32) -> PathBuf {
    let mut steps: Vec<serde_json::Value> = maps
        .iter()
        .map(|&(a, l, w)| serde_json::json!({"map": {"address": a, "length": l, "is-writable": w}}))
        .collect();
    steps.extend(regs.iter().map(|&(r, v)| serde_json::json!({"set-reg": {"reg": r, "value": v}})));
    steps.push(serde_json::json!({"run": {}}));
    let doc = serde_json::json!({
        "name": name, "initial-pc": pc, "initial-gas": 100, "program": blob,
        "block-gas-costs": [], "steps": steps, "javm-profile": profile, "javm-gas-model": "block-unit",
    });
    let path = std::env::temp_dir().join(format!("javm-polkavm-known-{name}-{}.json", std::process::id()));
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

#[test]
fn every_known_difference_is_recognised() {
    let cases = [
        // sbrk r0, r0; move_reg in profile A: the trap PolkaVM gets ends the block early.
        ("profile-a-as-b", case("sbrk", &[0, 0, 4, 101, 0x00, 100, 0x00, 0b0101], "a", &[], &[], 0)),
        // branch_eq_imm r0, 0, +0 as the last instruction (profile B's strict rule).
        ("appended-trap", case("appended", &[0, 0, 3, 81, 0x00, 0x00, 0b001], "b", &[], &[], 0)),
        // add_64 with destination byte 0x17: GP r12, PolkaVM r7.
        ("three-reg-destination", case("rd", &[0, 0, 4, 200, 0x21, 0x17, 0, 0b1001], "b", &[], &[(1, 1), (2, 2)], 0)),
        // jump_ind r0 + 0 through a table of one 0-byte entry.
        ("zero-entry-size-table", case("z0", &[1, 0, 3, 50, 0x00, 0, 0b101], "b", &[], &[(0, 2)], 0)),
        // A start inside load_imm's operands.
        ("start-not-an-instruction", case("start", &[0, 0, 4, 51, 0x00, 0x05, 0, 0b1001], "b", &[], &[], 1)),
        // Page 0 mapped.
        ("unmappable-page", case("page0", &[0, 0, 1, 0, 0b1], "b", &[(0, 4096, true)], &[], 0)),
        // store_imm_u64 [0x20ffc] from a read-only page into an unmapped one.
        (
            "straddle-read-only-unmapped",
            case(
                "straddle",
                &[0, 0, 7, 33, 0x03, 0xfc, 0x0f, 0x02, 0x01, 0, 0x41],
                "b",
                &[(0x20000, 4096, false)],
                &[],
                0,
            ),
        ),
    ];
    let mut model = Model::new();
    let mut pvm = PolkaVm::new().unwrap();
    for (name, path) in &cases {
        assert!(KNOWN_DIFFERENCES.iter().any(|(n, _)| n == name), "{name} is not listed");
        let case = load_case(path).unwrap();
        let outcome = run_case(&case, &RunOptions::default(), &mut [&mut model as &mut dyn Backend, &mut pvm]);
        let _ = std::fs::remove_file(path);
        assert!(outcome.passed, "{name}: reported as a divergence: {:?}", outcome.failures);
        assert!(
            outcome.known.iter().any(|k| k.name.split(" + ").any(|n| n == *name)),
            "{name}: classified as {:?}",
            outcome.known
        );
    }
}
