//! `javm-harness disasm` and `javm-harness asm`: the text form of programs.

use std::path::{Path, PathBuf};

use javm_engine::asm::assemble;
use javm_engine::disasm::disassemble;
use javm_engine::{Blob, Profile};

use crate::commands::vectors::{EXIT_OK, EXIT_UNUSABLE};
use crate::vectors::load_case;

/// Reads a program from a vector file (`.json`: its `program` field) or a raw blob file.
fn read_program(path: &Path) -> Result<(Vec<u8>, Option<Profile>), String> {
    if path.extension().is_some_and(|e| e == "json") {
        let case = load_case(path).map_err(|e| e.to_string())?;
        let profile = case.profile_hint.unwrap_or(case.format.default_profile());
        Ok((case.program, Some(profile)))
    } else {
        crate::input::read_file(path).map(|b| (b, None)).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Prints the disassembly of a blob or of a vector's program.
pub fn disasm(path: &Path, profile: Option<Profile>) -> i32 {
    let (bytes, file_profile) = match read_program(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_UNUSABLE;
        }
    };
    let profile = profile.or(file_profile).unwrap_or(Profile::A);
    match Blob::parse(&bytes) {
        Ok(blob) => {
            println!("; profile {profile}, {} code bytes", blob.code.len());
            print!("{}", disassemble(&blob, profile));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {}: the program does not decode: {e}", path.display());
            EXIT_UNUSABLE
        }
    }
}

/// Assembles a text file into a blob written to `out` (or printed as a JSON byte array).
pub fn asm(path: &Path, profile: Profile, out: Option<PathBuf>) -> i32 {
    let source = match crate::input::read_text(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return EXIT_UNUSABLE;
        }
    };
    let blob = match assemble(&source, profile) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return EXIT_UNUSABLE;
        }
    };
    let bytes = blob.encode();
    match out {
        Some(out) => {
            if let Err(e) = std::fs::write(&out, &bytes) {
                eprintln!("error: {}: {e}", out.display());
                return EXIT_UNUSABLE;
            }
            eprintln!("wrote {} bytes to {}", bytes.len(), out.display());
        }
        None => println!("{}", serde_json::to_string(&bytes).unwrap_or_default()),
    }
    EXIT_OK
}
