//! The model must not use the code it judges: its only use of `javm-engine` is the
//! `Backend` trait, the exit type and the data types in the trait's signatures, all taken
//! from the crate root (and the engine's blob encoder, only to read back a program the
//! kernel prepared). `tests/table.rs` imports the engine's table on purpose: it is the
//! cross-check of the two tables, not part of the model.

use std::path::Path;

const ALLOWED: &[&str] = &["Backend", "Config", "Exit", "GasModel", "Profile", "Program", "NUM_REGS", "MemoryError"];

#[test]
fn the_model_uses_only_the_backend_interface_of_the_engine() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
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
