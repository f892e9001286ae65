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
    /// Peak resident memory (MiB) of a fresh instance preparing and running the program once.
    peak: String,
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
        for (name, measured) in measure(&contenders(&args, Work::Run { dir: &dir, bench: &bench }), args.runs) {
            match measured {
                Ok(row) => {
                    print_row(&bench, &row);
                    rows.push(row);
                }
                Err(e) => {
                    eprintln!("error: {}: {name}: {e}", bench.name);
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

/// Every chosen backend, ours and PolkaVM's, doing `work`.
fn contenders<'a>(args: &'a BenchArgs, work: Work<'a>) -> Vec<Spec<'a>> {
    let mut contenders: Vec<Spec<'a>> = Vec::new();
    for kind in &args.backends {
        contenders.push(Spec {
            name: kind.name().to_string(),
            make: Box::new(move || {
                let backend = kind.create().map_err(|e| e.to_string())?;
                Ok(Box::new(Ours { backend, work }) as Box<dyn Contender>)
            }),
        });
    }
    #[cfg(feature = "polkavm")]
    for name in &args.references {
        contenders.push(Spec {
            name: name.clone(),
            make: Box::new(move || {
                use crate::bench_reference::{Reference, Runner};
                let reference =
                    Reference::from_name(name).ok_or_else(|| format!("unknown PolkaVM reference {name}"))?;
                Ok(Box::new(Theirs { runner: Runner::new(reference)?, work }) as Box<dyn Contender>)
            }),
        });
    }
    contenders
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
    #[cfg(feature = "polkavm")]
    let blob = crate::bench_reference::blob_with_code(dir, NAMES[0], &code)?;
    let work = Work::Compile {
        code: &code,
        #[cfg(feature = "polkavm")]
        blob: &blob,
    };
    let mut rows = Vec::new();
    let mut failures = 0;
    for (name, measured) in measure(&contenders(args, work), args.runs) {
        match measured {
            Ok(row) => {
                print_compile_row(code_len, &row);
                rows.push(row);
            }
            Err(e) => {
                eprintln!("error: {LARGE}: {name}: {e}");
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
        row.peak
    );
}

/// One line of the table: the row's times, the rate they mean, preparation per KiB of code
/// and its peak memory.
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
        row.peak
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

/// Peak resident memory of this process per measured program (Linux): the high-water mark is
/// reset before a fresh instance is created and read after its one run. Elsewhere it reads `-`.
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

/// One run's times: the run (zero for preparation alone) and the preparation.
struct Times {
    run: Duration,
    prepare: Duration,
}

/// Something timed: one of our backends or one of PolkaVM's, on one program.
trait Contender {
    /// Prepares (and, for a runnable program, runs and checks) the program once.
    fn once(&mut self) -> Result<Times, String>;
}

/// How to make a fresh contender, with its name.
struct Spec<'a> {
    name: String,
    #[allow(clippy::type_complexity)]
    make: Box<dyn Fn() -> Result<Box<dyn Contender + 'a>, String> + 'a>,
}

/// Measures every contender on one program. First each alone, fresh, for its peak memory
/// (one untimed run, which also warms it up); then `runs` rounds in which every contender runs
/// once, so that a machine that slows down or speeds up during the measurement affects all
/// of them alike and their ratios stay comparable. Each round takes them in a new order
/// (drawn from a fixed seed): what ran just before a contender decides what is left in the
/// caches, and with the order only rotated each one would nearly always follow the same
/// other one. Rows hold the medians; a contender that fails is reported with its error.
fn measure(specs: &[Spec<'_>], runs: usize) -> Vec<(String, Result<Row, String>)> {
    let mut peaks = Vec::with_capacity(specs.len());
    for spec in specs {
        peak::reset();
        let alone = (spec.make)().and_then(|mut c| c.once());
        peaks.push(alone.map(|_| peak::mebibytes()));
    }
    let mut live: Vec<Result<Box<dyn Contender + '_>, String>> =
        specs.iter().zip(&peaks).map(|(spec, p)| p.clone().and_then(|_| (spec.make)())).collect();
    let mut times: Vec<Vec<Times>> = specs.iter().map(|_| Vec::with_capacity(runs)).collect();
    let mut order: Vec<usize> = (0..specs.len()).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..runs.max(1) {
        // Fisher-Yates with xorshift: a new order every round, the same ones every run.
        for k in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(k, (state % (k as u64 + 1)) as usize);
        }
        for &i in &order {
            if let Ok(c) = &mut live[i] {
                match c.once() {
                    Ok(t) => times[i].push(t),
                    Err(e) => live[i] = Err(e),
                }
            }
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    specs
        .iter()
        .zip(live.into_iter().zip(peaks).zip(times))
        .map(|(spec, ((live, peak), times))| {
            let row = live.and(peak).map(|peak| Row {
                name: spec.name.clone(),
                run: median(times.iter().map(|t| t.run).collect()),
                prepare: median(times.iter().map(|t| t.prepare).collect()),
                peak,
            });
            (spec.name.clone(), row)
        })
        .collect()
}

/// What a contender does once per round.
#[derive(Clone, Copy)]
enum Work<'a> {
    /// Prepare one of the six programs, run it to its halt and check its result.
    Run {
        #[cfg_attr(not(feature = "polkavm"), allow(dead_code))]
        dir: &'a std::path::Path,
        bench: &'a BenchProgram,
    },
    /// Prepare the large program (it is never run).
    Compile {
        code: &'a [u8],
        #[cfg(feature = "polkavm")]
        blob: &'a polkavm::ProgramBlob,
    },
}

/// One of our backends. Each time it prepares the program anew from its bytes (decode, then
/// the backend's ahead-of-time work: JIT compilation), as PolkaVM's runs compile a new
/// module; setting up memory is not counted.
struct Ours<'a> {
    backend: crate::backends::Boxed,
    work: Work<'a>,
}

impl Contender for Ours<'_> {
    fn once(&mut self) -> Result<Times, String> {
        let backend = &mut *self.backend;
        let bench = match self.work {
            Work::Run { bench, .. } => bench,
            Work::Compile { code, .. } => {
                let started = Instant::now();
                backend.load(prepare_code(code)?);
                backend.precompile();
                return Ok(Times { run: Duration::ZERO, prepare: started.elapsed() });
            }
        };
        let started = Instant::now();
        let program = bench.prepare()?;
        let decode = started.elapsed();
        bench.install(backend, program, GAS)?;
        let compile_started = Instant::now();
        backend.precompile();
        let prepare = decode + compile_started.elapsed();
        let started = Instant::now();
        let result = bench.run_to_halt(backend, GAS);
        let run = started.elapsed();
        if result.exit != javm_engine::Exit::Halt
            || result.checksum != bench.checksum
            || result.gas_used != bench.instructions
            || result.host_calls != bench.host_calls
        {
            return Err(format!(
                "exit {}, checksum {:#x} (expected {:#x}), {} instructions (expected {}), {} host calls (expected {})",
                result.exit,
                result.checksum,
                bench.checksum,
                result.gas_used,
                bench.instructions,
                result.host_calls,
                bench.host_calls
            ));
        }
        Ok(Times { run, prepare })
    }
}

/// One of PolkaVM's own backends, run as its tools run it (its blob, compiled per run).
#[cfg(feature = "polkavm")]
struct Theirs<'a> {
    runner: crate::bench_reference::Runner,
    work: Work<'a>,
}

#[cfg(feature = "polkavm")]
impl Contender for Theirs<'_> {
    fn once(&mut self) -> Result<Times, String> {
        let (dir, bench) = match self.work {
            Work::Run { dir, bench } => (dir, bench),
            Work::Compile { blob, .. } => {
                return Ok(Times { run: Duration::ZERO, prepare: self.runner.compile(blob)? })
            }
        };
        let t = self.runner.run(dir, bench)?;
        if t.checksum != bench.checksum || t.instructions != bench.instructions || t.host_calls != bench.host_calls {
            return Err(format!(
                "checksum {:#x} (expected {:#x}), {} instructions (expected {}), {} host calls (expected {})",
                t.checksum, bench.checksum, t.instructions, bench.instructions, t.host_calls, bench.host_calls
            ));
        }
        Ok(Times { run: t.run, prepare: t.compile })
    }
}
