//! `javm-harness bench`: speed of each backend on the real compiled programs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::backends::BackendSpec;
use crate::bench_programs::{default_bench_dir, BenchProgram, NAMES};
use crate::commands::vectors::{EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE};

pub struct BenchArgs {
    pub dir: Option<PathBuf>,
    pub programs: Vec<String>,
    pub backends: Vec<BackendSpec>,
    pub runs: usize,
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
    let names: Vec<String> =
        if args.programs.is_empty() { NAMES.iter().map(|s| s.to_string()).collect() } else { args.programs.clone() };
    let mut wrong = 0;
    println!(
        "{:<10} {:<12} {:>12} {:>12} {:>14} {:>11} {:>13}",
        "program", "backend", "instructions", "median ms", "M instr/s", "prepare ms", "prepare µs/KiB"
    );
    for name in &names {
        let bench = match BenchProgram::load(&dir, name) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_UNUSABLE;
            }
        };
        let mut medians: Vec<(String, f64)> = Vec::new();
        for kind in &args.backends {
            let mut backend = match kind.create() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_UNUSABLE;
                }
            };
            let started = Instant::now();
            let program = match bench.prepare() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_UNUSABLE;
                }
            };
            let decode = started.elapsed();
            // Plus the backend's ahead-of-time work (JIT compilation) on a fresh backend, so
            // nothing is cached; setting up memory is not counted.
            if let Err(e) = bench.install(&mut *backend, program.clone(), GAS) {
                eprintln!("error: {}: {e}", bench.name);
                return EXIT_UNUSABLE;
            }
            let compile_started = Instant::now();
            backend.precompile();
            let prepare = decode + compile_started.elapsed();
            let mut times: Vec<Duration> = Vec::with_capacity(args.runs);
            let mut last = None;
            for _ in 0..args.runs.max(1) {
                if let Err(e) = bench.install(&mut *backend, program.clone(), GAS) {
                    eprintln!("error: {}: {e}", bench.name);
                    return EXIT_UNUSABLE;
                }
                let t = Instant::now();
                let result = bench.run_to_halt(&mut *backend, GAS);
                times.push(t.elapsed());
                last = Some(result);
            }
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
            medians.push((kind.name().to_string(), median.as_secs_f64()));
            let rate = bench.instructions as f64 / median.as_secs_f64() / 1e6;
            let kib = bench.code.len() as f64 / 1024.0;
            println!(
                "{:<10} {:<12} {:>12} {:>12.3} {:>14.1} {:>11.3} {:>13.1}",
                bench.name,
                kind.name(),
                bench.instructions,
                median.as_secs_f64() * 1e3,
                rate,
                prepare.as_secs_f64() * 1e3,
                prepare.as_secs_f64() * 1e6 / kib
            );
        }
        // Ratios to PolkaVM measured in this same run (the untraced build when both ran).
        let reference = medians
            .iter()
            .find(|(n, _)| n == "polkavm-fast")
            .or_else(|| medians.iter().find(|(n, _)| n == "polkavm"))
            .cloned();
        if let Some((reference, time)) = reference {
            let ratios: Vec<String> = medians
                .iter()
                .filter(|(n, _)| !n.starts_with("polkavm"))
                .map(|(n, t)| format!("{n} {:.2}x", t / time))
                .collect();
            if !ratios.is_empty() {
                println!("{:<10} time / {reference}: {}", bench.name, ratios.join(", "));
            }
        }
    }
    if wrong > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}
