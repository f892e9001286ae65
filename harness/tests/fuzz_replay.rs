//! Replays every kept fuzz input without libFuzzer: the committed regression inputs under
//! `fuzz/regressions/<target>/`, any local corpus under `fuzz/corpus/<target>/`, and the
//! seed inputs the corpus command writes. Each goes through the same function the fuzz
//! target calls.

use std::path::Path;

use javm_harness::fuzzing::{seeds, TARGETS};

fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .map(|p| (p.display().to_string(), std::fs::read(&p).expect("readable fuzz input")))
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_fuzz_input_replays_cleanly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut total = 0;
    for (name, target) in TARGETS {
        let mut inputs = files_in(&fuzz.join("regressions").join(name));
        inputs.extend(files_in(&fuzz.join("corpus").join(name)));
        inputs.extend(seeds(name).into_iter().enumerate().map(|(i, s)| (format!("seed {i}"), s)));
        for (label, data) in &inputs {
            let result = std::panic::catch_unwind(|| target(data));
            assert!(result.is_ok(), "{name}: input {label} fails");
        }
        total += inputs.len();
    }
    assert!(total > 0);
}
