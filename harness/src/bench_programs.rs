//! The real compiled programs of `../shared/bench` (sieve, blake2b, sort, intmix, memops,
//! hostcall): loading them from their sidecars and running them to completion on a backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use javm_engine::{Backend, Config, Exit, GasModel, Profile, Program, NUM_REGS};
use serde::Deserialize;

/// The `host_mix` multiplier of the `hostcall` program's `ecalli 100`.
const HOST_MIX_MULTIPLIER: u64 = 6364136223846793005;
/// Host call id served by [`run_to_halt`].
pub const HOST_MIX: u32 = 100;

#[derive(Deserialize)]
struct Sidecar {
    name: String,
    files: Files,
    entry_pc: u32,
    initial_regs: [u64; NUM_REGS],
    memory: Vec<MemoryRegion>,
    expected: Expected,
}

#[derive(Deserialize)]
struct Files {
    code: String,
}

#[derive(Deserialize)]
struct MemoryRegion {
    address: u32,
    length: u64,
    writable: bool,
    contents: String,
}

#[derive(Deserialize)]
struct Expected {
    checksum_register: usize,
    checksum: u64,
    instructions_executed: u64,
    host_calls: u64,
}

/// A benchmark program ready to run.
pub struct BenchProgram {
    pub name: String,
    pub code: Vec<u8>,
    pub entry_pc: u32,
    pub initial_regs: [u64; NUM_REGS],
    /// `(address, length, writable, initial bytes)`.
    pub memory: Vec<(u32, u64, bool, Vec<u8>)>,
    pub checksum_register: usize,
    pub checksum: u64,
    pub instructions: u64,
    pub host_calls: u64,
}

/// What a run to completion produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchRun {
    pub exit: Exit,
    pub checksum: u64,
    /// Gas used under the unit block model: the number of instructions executed.
    pub gas_used: u64,
    pub host_calls: u64,
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd-length hex string".into());
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}

impl BenchProgram {
    /// Loads `NAME.json` and its code blob from `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<BenchProgram, String> {
        let sidecar_path = dir.join(format!("{name}.json"));
        let text = crate::input::read_text(&sidecar_path).map_err(|e| format!("{}: {e}", sidecar_path.display()))?;
        let s: Sidecar = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", sidecar_path.display()))?;
        let code_path = dir.join(&s.files.code);
        let code = crate::input::read_file(&code_path).map_err(|e| format!("{}: {e}", code_path.display()))?;
        let mut memory = Vec::new();
        for m in s.memory {
            let bytes = unhex(&m.contents).map_err(|e| format!("{}: memory contents: {e}", sidecar_path.display()))?;
            memory.push((m.address, m.length, m.writable, bytes));
        }
        Ok(BenchProgram {
            name: s.name,
            code,
            entry_pc: s.entry_pc,
            initial_regs: s.initial_regs,
            memory,
            checksum_register: s.expected.checksum_register,
            checksum: s.expected.checksum,
            instructions: s.expected.instructions_executed,
            host_calls: s.expected.host_calls,
        })
    }

    /// Prepares the code (profile B, unit cost per block, so gas used counts instructions).
    pub fn prepare(&self) -> Result<Arc<Program>, String> {
        prepare_code(&self.code).map_err(|e| format!("{}: {e}", self.name))
    }

    /// Loads the program into a backend with its memory and registers, ready to run.
    pub fn install(&self, backend: &mut dyn Backend, program: Arc<Program>, gas: i64) -> Result<(), String> {
        backend.load(program);
        for (address, length, writable, bytes) in &self.memory {
            backend.map(*address, *length, *writable).map_err(|e| e.to_string())?;
            backend.write_memory(*address, bytes).map_err(|e| e.to_string())?;
        }
        backend.set_regs(self.initial_regs);
        backend.set_pc(self.entry_pc);
        backend.set_gas(gas);
        Ok(())
    }

    /// Runs an installed program until it stops for a reason other than its host call.
    pub fn run_to_halt(&self, backend: &mut dyn Backend, initial_gas: i64) -> BenchRun {
        let mut host_calls = 0;
        loop {
            let exit = backend.run();
            if exit == Exit::HostCall(HOST_MIX) {
                let regs = backend.regs();
                backend.set_reg(7, regs[7].wrapping_mul(HOST_MIX_MULTIPLIER).wrapping_add(regs[8]));
                host_calls += 1;
                continue;
            }
            return BenchRun {
                exit,
                checksum: backend.regs()[self.checksum_register],
                gas_used: (initial_gas - backend.gas()) as u64,
                host_calls,
            };
        }
    }
}

/// The six programs, in the order of the corpus README.
pub const NAMES: [&str; 6] = ["sieve", "blake2b", "sort", "intmix", "memops", "hostcall"];

/// Prepares a code blob as every bench program is prepared: profile B, unit cost per block
/// (so gas used counts instructions).
pub fn prepare_code(code: &[u8]) -> Result<Arc<Program>, String> {
    Program::from_bytes(code, Config::new(Profile::B, GasModel::BlockUnit)).map(Arc::new).map_err(|e| e.to_string())
}

/// The name of the large program `bench` compiles (never runs): see [`large_code`].
pub const LARGE: &str = "large";
/// Code bytes the large program has at least.
pub const LARGE_MIN_BYTES: usize = 128 << 10;

/// A code blob (profile B) of at least `min_len` code bytes: the code of `programs`, one
/// after another, repeated. Each copy keeps its own instruction starts, and its static jumps
/// (relative to their own pc) land inside it as before; the jump table is left empty. It is
/// real compiler output in real proportions, for timing compilation per KiB on a program far
/// larger than any one bench program.
pub fn large_code(programs: &[BenchProgram], min_len: usize) -> Result<Vec<u8>, String> {
    let blobs = programs
        .iter()
        .map(|p| javm_engine::Blob::parse(&p.code).map_err(|e| format!("{}: {e}", p.name)))
        .collect::<Result<Vec<_>, _>>()?;
    if blobs.iter().all(|b| b.code.is_empty()) {
        return Err("the bench programs hold no code".into());
    }
    let (mut code, mut starts) = (Vec::new(), Vec::new());
    for blob in blobs.iter().cycle() {
        if code.len() >= min_len {
            break;
        }
        code.extend_from_slice(&blob.code);
        starts.extend(blob.starts.iter());
    }
    Ok(javm_engine::Blob::new(Vec::new(), code, starts).encode())
}

/// `$JAVM_BENCH`, else `shared/bench/` in the working folder or one of its ancestors (so
/// `../shared/bench` from the project root).
pub fn default_bench_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("JAVM_BENCH") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = crate::input::find_upwards(&["shared/bench"]) {
        return Ok(dir);
    }
    Err("no benchmark folder found: pass --dir or set JAVM_BENCH".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use javm_engine::Blob;

    fn program(name: &str, code: Vec<u8>, starts: Vec<bool>, jump_table: Vec<u32>) -> BenchProgram {
        BenchProgram {
            name: name.into(),
            code: Blob::new(jump_table, code, starts).encode(),
            entry_pc: 0,
            initial_regs: [0; NUM_REGS],
            memory: Vec::new(),
            checksum_register: 7,
            checksum: 0,
            instructions: 0,
            host_calls: 0,
        }
    }

    #[test]
    fn the_large_program_repeats_every_program_with_its_own_instruction_starts() {
        // `jump +0` (3 bytes, one start) and `fallthrough; trap` (two starts).
        let a = program("a", vec![40, 0, 0], vec![true, false, false], vec![2]);
        let b = program("b", vec![1, 0], vec![true, true], Vec::new());
        let blob = Blob::parse(&large_code(&[a, b], 12).unwrap()).unwrap();
        assert_eq!(blob.code, [40, 0, 0, 1, 0, 40, 0, 0, 1, 0, 40, 0, 0], "whole copies until 12 bytes are reached");
        let starts: Vec<usize> = (0..blob.code.len()).filter(|&i| blob.starts[i]).collect();
        assert_eq!(starts, [0, 3, 4, 5, 8, 9, 10]);
        assert!(blob.jump_table.is_empty());
        let empty = program("e", Vec::new(), Vec::new(), Vec::new());
        assert!(large_code(&[empty], 10).is_err(), "no code to repeat must not loop forever");
    }
}
