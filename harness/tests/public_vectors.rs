//! Runs both public suites (w3f v0.4 and PolkaVM spectool) through every registered backend
//! and fails on any miss. Without the suites this test fails and says how to get them;
//! set JAVM_SKIP_PUBLIC_VECTORS=1 to skip it knowingly.

use std::path::PathBuf;

use javm_harness::backends::{BackendSpec, REGISTRY};
use javm_harness::run::{run_case, RunOptions};
use javm_harness::vectors::{collect_files, default_vector_dir, load_case};

fn suite(name: &str) -> Option<PathBuf> {
    if std::env::var_os("JAVM_SKIP_PUBLIC_VECTORS").is_some_and(|v| v == "1") {
        eprintln!("JAVM_SKIP_PUBLIC_VECTORS=1: skipping the public vector suite {name}");
        return None;
    }
    let dir = default_vector_dir().unwrap_or_else(|e| panic!("{e} (or set JAVM_SKIP_PUBLIC_VECTORS=1)"));
    let path = dir.join(name).join("programs");
    assert!(
        path.is_dir(),
        "{} is missing: run scripts/fetch-vectors.sh or point JAVM_VECTORS at a folder holding {name}/ \
         (or set JAVM_SKIP_PUBLIC_VECTORS=1)",
        path.display()
    );
    Some(path)
}

/// Every backend of the registry: the engine's and the independent judges.
fn available_backends() -> Vec<BackendSpec> {
    REGISTRY.iter().filter_map(|e| BackendSpec::builtin(e.name)).collect()
}

fn run_suite(name: &str, expected_count: usize) {
    let Some(dir) = suite(name) else { return };
    let files = collect_files(&dir).expect("suite folder lists");
    assert_eq!(files.len(), expected_count, "{name}: unexpected number of files");
    let kinds = available_backends();
    let mut backends: Vec<_> = kinds.iter().map(|k| k.create().unwrap()).collect();
    let mut failures = Vec::new();
    for file in &files {
        let case = load_case(file).unwrap_or_else(|e| panic!("{e}"));
        // Each backend alone, then all of them in lockstep (compared with each other).
        for b in backends.iter_mut() {
            let outcome = run_case(&case, &RunOptions::default(), &mut [&mut **b]);
            if !outcome.passed {
                failures.push(format!("{} on {}: {:?}", case.name, b.name(), outcome.failures));
            }
        }
        if backends.len() > 1 {
            let mut refs: Vec<&mut dyn javm_engine::Backend> = backends.iter_mut().map(|b| &mut **b as _).collect();
            let outcome = run_case(&case, &RunOptions::default(), &mut refs);
            if !outcome.passed {
                failures.push(format!("{} in lockstep: {:?}", case.name, outcome.failures));
            }
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn w3f_v0_4_suite_passes() {
    run_suite("w3f-pvm-v0.4", 307);
}

#[test]
fn polkavm_spectool_suite_passes() {
    run_suite("polkavm-spectool", 363);
}
