//! Snapshot review of observed outputs: our own PVM vectors (`vectors/regressions/`) and a
//! fixed generated corpus (108 programs: profiles A, B and J × unit, table and per-instruction
//! gas × structured and raw bytes), one insta snapshot per program, so a change in what the
//! VM does shows up as pending snapshots naming the programs it changed. The interpreter and
//! the JIT must agree on each. Review with `cargo insta review`.

use std::path::{Path, PathBuf};

use javm_engine::jit::Jit;
use javm_engine::{Backend, Interpreter, Profile};
use javm_harness::diff::generate;
use javm_harness::generator::GenConfig;
use javm_harness::run::{run_case, GasChoice, RunOptions};
use javm_harness::snapshot::render_outcome;
use javm_harness::vectors::{collect_files, load_case};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

/// Checks one snapshot; a mismatch is recorded (and its pending `.snap.new` written) so that
/// every changed program is listed, not only the first.
fn check(name: &str, snapshots: &Path, text: String, changed: &mut Vec<String>) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshots);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name.to_string(), text))
    }));
    if run.is_err() {
        changed.push(name.to_string());
    }
}

fn report(changed: Vec<String>) {
    assert!(
        changed.is_empty(),
        "{} output snapshot(s) changed (review with `cargo insta review`): {}",
        changed.len(),
        changed.join(", ")
    );
}

#[test]
fn own_vectors_match_their_output_snapshots() {
    let dir = vectors().join("regressions");
    let files = collect_files(&dir).expect("vectors/regressions holds vectors");
    let mut changed = Vec::new();
    for file in files {
        let case = load_case(&file).unwrap_or_else(|e| panic!("{e}"));
        let (mut interp, mut jit) = (Interpreter::new(), Jit::new().expect("the JIT starts"));
        let outcome = run_case(&case, &RunOptions::default(), &mut [&mut interp as &mut dyn Backend, &mut jit]);
        assert!(outcome.passed, "{}: {:?}", case.name, outcome.failures);
        check(&case.name, &dir.join("snapshots"), render_outcome(&case, &outcome), &mut changed);
    }
    report(changed);
}

#[test]
fn a_fixed_generated_corpus_matches_its_output_snapshots() {
    let dir = vectors().join("generated/snapshots");
    let mut count = 0;
    let mut changed = Vec::new();
    for profile in Profile::ALL {
        for (gas, gas_name) in
            [(GasChoice::BlockUnit, "unit"), (GasChoice::BlockTable, "table"), (GasChoice::Instruction, "instruction")]
        {
            for raw in [false, true] {
                let config = GenConfig { profile, gas, raw };
                for index in 0..6 {
                    let program = generate(2026, index, config);
                    let case = program.case("generated");
                    let (mut interp, mut jit) = (Interpreter::new(), Jit::new().expect("the JIT starts"));
                    let outcome = run_case(&case, &program.options(), &mut [&mut interp as &mut dyn Backend, &mut jit]);
                    let mode = if raw { "raw" } else { "structured" };
                    let name = format!("gen-{}-{gas_name}-{mode}-{index}", profile.name());
                    assert!(outcome.passed, "{name}: {:?}", outcome.failures);
                    let text = format!("{} code bytes\n{}", program.bytes().len(), render_outcome(&case, &outcome));
                    check(&name, &dir, text, &mut changed);
                    count += 1;
                }
            }
        }
    }
    assert!(count >= 100, "only {count} generated programs");
    report(changed);
}
