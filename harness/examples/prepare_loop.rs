//! Prepares one bench program many times on one backend and prints the time per
//! preparation. It is the loop to count with callgrind when working on preparation speed:
//! run it with two counts and take the difference, so that one-time setup cancels out.
//!
//! ```sh
//! cargo run --release -p javm-harness --example prepare_loop -- PROGRAM BACKEND COUNT
//! valgrind --tool=callgrind target/release/examples/prepare_loop large jit 10   # then 30
//! ```
//!
//! PROGRAM is a bench program (`sieve`, …) or `large`; BACKEND is `decode` (parsing the
//! blob and building the instruction list the interpreter translates), `jit` (parsing and
//! compiling, which decodes the code itself: what `bench` reports as the JIT's prepare time)
//! or, built with `--features polkavm`, `polkavm-compiler` (PolkaVM compiling a new module
//! from the program's own blob). The bench programs are read from
//! `JAVM_BENCH` or `../shared/bench`, as `bench` reads them.
//!
//! PROGRAM `generated` takes `diff`'s path instead: program i of seed 2026 (profile A) for
//! i in 0..COUNT, drawn (BACKEND `generate`), also written as its case, parsed and given
//! its instruction list (`decode`), or instead loaded and compiled (`jit`).

use std::time::Instant;

use javm_engine::Backend;
use javm_harness::bench_programs::{
    default_bench_dir, large_code, prepare_code, BenchProgram, LARGE, LARGE_MIN_BYTES, NAMES,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [program, backend, count] = &args[..] else {
        return Err("usage: prepare_loop PROGRAM BACKEND COUNT (see the example's documentation)".into());
    };
    let count: u32 = count.parse().map_err(|_| format!("COUNT must be a positive number, not {count:?}"))?;
    if program == "generated" {
        return generated(backend, count);
    }
    let dir = default_bench_dir()?;
    let code = if program == LARGE {
        let programs = NAMES.iter().map(|name| BenchProgram::load(&dir, name)).collect::<Result<Vec<_>, _>>()?;
        large_code(&programs, LARGE_MIN_BYTES)?
    } else {
        BenchProgram::load(&dir, program)?.code
    };
    let started = Instant::now();
    match backend.as_str() {
        "decode" => {
            for _ in 0..count {
                prepare_code(&code)?.insts();
            }
        }
        "jit" => {
            let mut jit = javm_engine::jit::Jit::new().map_err(|e| e.to_string())?;
            for _ in 0..count {
                jit.load(prepare_code(&code)?);
                jit.precompile();
            }
        }
        #[cfg(feature = "polkavm")]
        "polkavm-compiler" => {
            use javm_harness::bench_reference::{blob_with_code, Reference, Runner};
            let blob = if program == LARGE {
                blob_with_code(&dir, NAMES[0], &code)?
            } else {
                let path = dir.join(format!("{program}.polkavm"));
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                polkavm::ProgramBlob::parse(bytes.into()).map_err(|e| format!("{}: {e}", path.display()))?
            };
            let runner = Runner::new(Reference::Compiler)?;
            for _ in 0..count {
                runner.compile(&blob)?;
            }
        }
        other => return Err(format!("unknown backend {other:?} (decode, jit, polkavm-compiler)")),
    }
    let each = started.elapsed() / count.max(1);
    println!("{program} on {backend}: {} code bytes, {each:?} per preparation", code.len());
    Ok(())
}

/// `diff`'s per-program path up to the runs, for programs 0..count of seed 2026.
fn generated(backend: &str, count: u32) -> Result<(), String> {
    use javm_harness::generator::{generate, GenConfig};
    use javm_harness::run::Prepared;
    use javm_harness::vectors::GasChoice;
    let config = GenConfig { profile: javm_engine::Profile::A, gas: GasChoice::Auto, raw: false };
    if !["generate", "decode", "jit"].contains(&backend) {
        return Err(format!("unknown backend {backend:?} for generated programs (generate, decode, jit)"));
    }
    let mut jit = javm_engine::jit::Jit::new().map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..u64::from(count) {
        let program = generate(2026, i, config);
        if backend == "generate" {
            continue;
        }
        let prepared = Prepared::new(&program.case("generated"), &program.options())?;
        match (prepared.program, backend) {
            (Ok(prepared), "jit") => {
                jit.load(prepared);
                jit.precompile();
            }
            (Ok(prepared), _) => {
                prepared.insts();
            }
            _ => {}
        }
    }
    let each = started.elapsed() / count.max(1);
    println!("generated on {backend}: {each:?} per program");
    Ok(())
}
