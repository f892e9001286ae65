//! The model must not use the code it judges: its only use of `javm-engine` is the
//! `Backend` trait, the exit type and the data types in the trait's signatures, all taken
//! from the crate root (and the engine's blob encoder, only to read back a program the
//! kernel prepared). Its tests hold to the same rule; the row-by-row cross-check of the two
//! opcode tables lives in the harness (`harness/tests/tables_agree.rs`), which knows both.

use std::path::Path;

const ALLOWED: &[&str] = &["Backend", "Config", "Exit", "GasModel", "Profile", "Program", "NUM_REGS", "MemoryError"];

#[test]
fn the_model_and_its_tests_use_only_the_backend_interface_of_the_engine() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = Vec::new();
    for dir in ["src", "tests"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    // This file names the engine's paths only as text to look for.
    files.retain(|p| p.file_name().is_some_and(|n| n != "independence.rs"));
    assert!(files.len() > 5, "{files:?}");
    let mut bad = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(at) = line.find("javm_engine::") else { continue };
            let rest = &line[at + "javm_engine::".len()..];
            let items: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                group.split('}').next().unwrap().split(',').map(|s| s.trim().to_string()).collect()
            } else {
                vec![rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).next().unwrap().to_string()]
            };
            for item in items.iter().filter(|i| !i.is_empty()) {
                let item = item.trim_end_matches(';');
                if !ALLOWED.contains(&item) {
                    bad.push(format!("{}:{}: javm_engine::{item}", path.display(), n + 1));
                }
            }
        }
        // Prepared programs are only read back as bytes.
        for (n, line) in text.lines().enumerate() {
            if line.contains("program.") && !line.contains("program.blob.encode()") && !line.contains("program.config")
            {
                bad.push(format!("{}:{}: uses a prepared program: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "the model reaches into the engine:\n{}", bad.join("\n"));
}
