//! `javm-harness bench`: speed of each backend on the real compiled programs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::backends::BackendSpec;
use crate::bench_programs::{default_bench_dir, large_code, prepare_code, BenchProgram, LARGE, LARGE_MIN_BYTES, NAMES};
use crate::commands::vectors::{EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE};

pub struct BenchArgs {
    pub dir: Option<PathBuf>,
    pub programs: Vec<String>,
    pub backends: Vec<BackendSpec>,
    /// PolkaVM's own backends, run as its tools run them (`polkavm-interp`,
    /// `polkavm-compiler`; feature `polkavm`).
    pub references: Vec<String>,
    pub runs: usize,
}

/// The names of PolkaVM's own backends this build can time.
pub fn reference_names() -> &'static [&'static str] {
    #[cfg(feature = "polkavm")]
    {
        &["polkavm-interp", "polkavm-compiler"]
    }
    #[cfg(not(feature = "polkavm"))]
    {
        &[]
    }
}

/// One measured row: median run time and preparation (decode + compile) time.
struct Row {
    name: String,
    run: f64,
    prepare: f64,
}

const GAS: i64 = 1 << 40;

/// Runs the benchmark and returns the exit code: 1 if a program gave a wrong result.
pub fn run(args: BenchArgs) -> i32 {
    let dir = match args.dir.clone().map(Ok).unwrap_or_else(default_bench_dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_UNUSABLE;
        }
    };
    let names: Vec<String> = if args.programs.is_empty() {
        NAMES.iter().chain(&[LARGE]).map(|s| s.to_string()).collect()
    } else {
        args.programs.clone()
    };
    let mut wrong = 0;
    // The programs loaded so far (the large program is built from all six).
    let mut loaded: Vec<BenchProgram> = Vec::new();
    println!(
        "{:<10} {:<16} {:>12} {:>12} {:>14} {:>11} {:>13} {:>9}",
        "program", "backend", "instructions", "median ms", "M instr/s", "prepare ms", "prepare µs/KiB", "peak MiB"
    );
    for name in names.iter().filter(|n| *n != LARGE) {
        let bench = match BenchProgram::load(&dir, name) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_UNUSABLE;
            }
        };
        let mut rows: Vec<Row> = Vec::new();
        for kind in &args.backends {
            peak::reset();
            let mut backend = match kind.create() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_UNUSABLE;
                }
            };
            // Each run prepares the program anew from its bytes (decode, then the backend's
            // ahead-of-time work: JIT compilation), as PolkaVM's runs compile a new module;
            // setting up memory is not counted. The first run also pays for a fresh backend.
            let mut times: Vec<Duration> = Vec::with_capacity(args.runs);
            let mut prepares: Vec<Duration> = Vec::with_capacity(args.runs);
            let mut last = None;
            for _ in 0..args.runs.max(1) {
                let started = Instant::now();
                let program = match bench.prepare() {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return EXIT_UNUSABLE;
                    }
                };
                let decode = started.elapsed();
                if let Err(e) = bench.install(&mut *backend, program, GAS) {
                    eprintln!("error: {}: {e}", bench.name);
                    return EXIT_UNUSABLE;
                }
                let compile_started = Instant::now();
                backend.precompile();
                prepares.push(decode + compile_started.elapsed());
                let t = Instant::now();
                let result = bench.run_to_halt(&mut *backend, GAS);
                times.push(t.elapsed());
                last = Some(result);
            }
            prepares.sort();
            let prepare = prepares[prepares.len() / 2];
            let result = last.expect("at least one run");
            if result.exit != javm_engine::Exit::Halt
                || result.checksum != bench.checksum
                || result.gas_used != bench.instructions
                || result.host_calls != bench.host_calls
            {
                eprintln!(
                    "error: {} on {}: exit {}, checksum {:#x} (expected {:#x}), {} instructions (expected {}), {} host calls (expected {})",
                    bench.name,
                    kind.name(),
                    result.exit,
                    result.checksum,
                    bench.checksum,
                    result.gas_used,
                    bench.instructions,
                    result.host_calls,
                    bench.host_calls
                );
                wrong += 1;
            }
            times.sort();
            let median = times[times.len() / 2];
            let row = Row { name: kind.name().to_string(), run: median.as_secs_f64(), prepare: prepare.as_secs_f64() };
            print_row(&bench, &row);
            rows.push(row);
        }
        #[cfg(feature = "polkavm")]
        for name in &args.references {
            peak::reset();
            match time_reference(&dir, &bench, name, args.runs) {
                Ok(row) => {
                    print_row(&bench, &row);
                    rows.push(row);
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", bench.name);
                    wrong += 1;
                }
            }
        }
        print_ratios(&bench.name, &rows);
        loaded.push(bench);
    }
    if names.iter().any(|n| n == LARGE) {
        match time_large(&dir, &args, loaded) {
            Ok(failures) => wrong += failures,
            Err(e) => {
                eprintln!("error: {LARGE}: {e}");
                return EXIT_UNUSABLE;
            }
        }
    }
    if wrong > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Times preparation alone (decode + compile, as in the other rows) of the large program
/// built from all six programs, on every backend; returns how many backends failed.
fn time_large(dir: &std::path::Path, args: &BenchArgs, mut loaded: Vec<BenchProgram>) -> Result<usize, String> {
    let mut programs = Vec::with_capacity(NAMES.len());
    for name in NAMES {
        match loaded.iter().position(|p| p.name == name) {
            Some(i) => programs.push(loaded.swap_remove(i)),
            None => programs.push(BenchProgram::load(dir, name)?),
        }
    }
    let code = large_code(&programs, LARGE_MIN_BYTES)?;
    // Per KiB of the blob, as in the other rows.
    let code_len = code.len();
    let mut rows = Vec::new();
    #[cfg_attr(not(feature = "polkavm"), allow(unused_mut))]
    let mut failures = 0;
    for kind in &args.backends {
        peak::reset();
        let mut backend = kind.create().map_err(|e| e.to_string())?;
        let mut prepares = Vec::with_capacity(args.runs);
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            backend.load(prepare_code(&code)?);
            backend.precompile();
            prepares.push(started.elapsed());
        }
        prepares.sort();
        let row =
            Row { name: kind.name().to_string(), run: f64::NAN, prepare: prepares[prepares.len() / 2].as_secs_f64() };
        print_compile_row(code_len, &row);
        rows.push(row);
    }
    #[cfg(feature = "polkavm")]
    for name in &args.references {
        use crate::bench_reference::{blob_with_code, Reference, Runner};
        peak::reset();
        let reference = Reference::from_name(name).ok_or_else(|| format!("unknown PolkaVM reference {name}"))?;
        let timed = Runner::new(reference).and_then(|runner| {
            let blob = blob_with_code(dir, NAMES[0], &code)?;
            let mut compiles = (0..args.runs.max(1)).map(|_| runner.compile(&blob)).collect::<Result<Vec<_>, _>>()?;
            compiles.sort();
            Ok(compiles[compiles.len() / 2])
        });
        match timed {
            Ok(t) => {
                let row = Row { name: name.to_string(), run: f64::NAN, prepare: t.as_secs_f64() };
                print_compile_row(code_len, &row);
                rows.push(row);
            }
            Err(e) => {
                eprintln!("error: {LARGE}: {e}");
                failures += 1;
            }
        }
    }
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    if let (Some(compiler), Some(jit)) = (find("polkavm-compiler"), find("jit")) {
        println!("{LARGE:<10} jit / polkavm-compiler: compile {:.2}x", jit.prepare / compiler.prepare);
    }
    Ok(failures)
}

/// A row of the large program: preparation only (it is never run).
fn print_compile_row(code_len: usize, row: &Row) {
    println!(
        "{:<10} {:<16} {:>12} {:>12} {:>14} {:>11.3} {:>13.1} {:>9}",
        LARGE,
        row.name,
        "-",
        "-",
        "-",
        row.prepare * 1e3,
        row.prepare * 1e6 / (code_len as f64 / 1024.0),
        peak::mebibytes()
    );
}

/// One line of the table: the row's times, the rate they mean, preparation per KiB of code
/// and the peak memory since the last reset.
fn print_row(bench: &BenchProgram, row: &Row) {
    println!(
        "{:<10} {:<16} {:>12} {:>12.3} {:>14.1} {:>11.3} {:>13.1} {:>9}",
        bench.name,
        row.name,
        bench.instructions,
        row.run * 1e3,
        bench.instructions as f64 / row.run / 1e6,
        row.prepare * 1e3,
        row.prepare * 1e6 / (bench.code.len() as f64 / 1024.0),
        peak::mebibytes()
    );
}

/// Ratios to PolkaVM measured in this same run: the interpreters to PolkaVM's interpreter,
/// the JIT (run and compile) to its compiler; without those, to the `polkavm` backend.
fn print_ratios(program: &str, rows: &[Row]) {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    let ours = |r: &&Row| !r.name.starts_with("polkavm");
    if let Some(reference) = find("polkavm-interp").or_else(|| find("polkavm-fast")).or_else(|| find("polkavm")) {
        let ratios: Vec<String> =
            rows.iter().filter(ours).map(|r| format!("{} {:.2}x", r.name, r.run / reference.run)).collect();
        if !ratios.is_empty() {
            println!("{:<10} time / {}: {}", program, reference.name, ratios.join(", "));
        }
    }
    if let (Some(compiler), Some(jit)) = (find("polkavm-compiler"), find("jit")) {
        println!(
            "{:<10} jit / polkavm-compiler: run {:.2}x, compile {:.2}x",
            program,
            jit.run / compiler.run,
            jit.prepare / compiler.prepare
        );
    }
}

/// Times one of PolkaVM's own backends on a program: the median run and the median compile.
#[cfg(feature = "polkavm")]
fn time_reference(dir: &std::path::Path, bench: &BenchProgram, name: &str, runs: usize) -> Result<Row, String> {
    use crate::bench_reference::{Reference, Runner};
    let reference = Reference::from_name(name).ok_or_else(|| format!("unknown PolkaVM reference {name}"))?;
    let mut runner = Runner::new(reference)?;
    let (mut run, mut compile) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let t = runner.run(dir, bench)?;
        if t.checksum != bench.checksum || t.instructions != bench.instructions || t.host_calls != bench.host_calls {
            return Err(format!(
                "{name}: checksum {:#x} (expected {:#x}), {} instructions (expected {}), {} host calls (expected {})",
                t.checksum, bench.checksum, t.instructions, bench.instructions, t.host_calls, bench.host_calls
            ));
        }
        run.push(t.run);
        compile.push(t.compile);
    }
    run.sort();
    compile.sort();
    Ok(Row {
        name: name.to_string(),
        run: run[run.len() / 2].as_secs_f64(),
        prepare: compile[compile.len() / 2].as_secs_f64(),
    })
}

/// Peak resident memory of this process per measured program (Linux): the high-water mark is
/// reset before a backend is created and read after its runs. Elsewhere it reads `-`.
mod peak {
    /// Resets the process's peak resident set to its current size.
    pub fn reset() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    /// The peak resident set since the last reset, in MiB, or `-` when unknown.
    pub fn mebibytes() -> String {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or_else(|| "-".to_string(), |kib| format!("{:.1}", kib as f64 / 1024.0))
    }
}
