#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use javm_engine::Profile;
use javm_harness::backends::{describe_registry, Backends};
use javm_harness::commands::bench::{self, BenchArgs};
use javm_harness::commands::diff::{self, DiffArgs};
use javm_harness::commands::nightly::{self, NightlyArgs};
use javm_harness::commands::vectors::{self, ReportPaths, VectorsArgs, EXIT_UNUSABLE};
use javm_harness::commands::{corpus, serve, text};
use javm_harness::generator::GenConfig;
use javm_harness::run::{GasChoice, RunOptions};

/// Differential conformance harness for javm's PVM: runs test vectors and generated programs
/// through the interpreter, the JIT and independent judges (a reference model written from the
/// spec, PolkaVM with --features polkavm, external PVMs) and checks them against the vectors
/// and against each other.
///
/// Exit codes: 0 everything passed, 1 a check failed, 2 the input or the command line could
/// not be used.
#[derive(Parser)]
#[command(name = "javm-harness", version, about, long_about, after_help = describe_registry())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run test vectors (w3f v0.4, PolkaVM spectool and its earlier kind-tagged variant,
    /// detected per file).
    ///
    /// Compares status, pc, all registers, gas, memory, page-fault address and host-call id,
    /// prints each failing case with every differing field, and ends with one line
    /// `N passed, M failed`.
    Vectors {
        /// Vector files or folders (searched recursively for *.json). Default: $JAVM_VECTORS,
        /// else ../shared/vectors.
        paths: Vec<PathBuf>,
        /// Backends to run, comma-separated: any registered name (interp, jit, model, …),
        /// `both` (interp,jit), `all`, or a name declared with --external. With more than one
        /// they are also compared with each other after every run.
        #[arg(long, default_value = "interp")]
        backend: String,
        /// Declare a backend served by another process: NAME=COMMAND (repeatable). The
        /// command speaks the line protocol of docs/protocol.md on stdin/stdout.
        #[arg(long = "external", value_name = "NAME=COMMAND")]
        external: Vec<String>,
        /// Opcode profile: auto picks A for w3f v0.4 files and B for spectool files.
        #[arg(long, value_enum, default_value_t = ProfileChoice::Auto)]
        profile: ProfileChoice,
        /// Gas model: auto uses the file's block-gas-costs table when it has one, else unit
        /// cost per basic block (v0.4); block-unit, block-table or instruction (GP text) force one.
        #[arg(long = "gas-model", value_enum, default_value_t = GasChoice::Auto)]
        gas_model: GasChoice,
        /// Unknown fields in a vector file are errors (exit code 2) instead of warnings.
        #[arg(long)]
        strict: bool,
        /// Write each PVM case's observed outputs (status, pc, gas, registers, memory after
        /// every run, on the first backend) to DIR/<case>.snap, for snapshot review of any
        /// suite, expected values or not.
        #[arg(long, value_name = "DIR")]
        snapshots: Option<PathBuf>,
        /// Write per-case results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a JUnit XML report (one test case per vector) to this file.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a Markdown report to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Write an HTML report to this file.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Run generated programs through two backends and report every divergence.
    ///
    /// Each divergence is minimised, localised by single-stepping both backends to the first
    /// instruction after which their states differ, shown with its disassembly, and written
    /// as a replayable vector under --reports. Ends with one line
    /// `N programs, D divergences, X programs/s` (`N programs (M run, workers lost), …` when
    /// a worker process died); exit code 1 when D > 0 or a worker was lost.
    Diff {
        /// Seed of the run (program i of seed S is always the same program).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Index of the first program: the run covers programs FIRST .. FIRST+COUNT of the
        /// seed (`--first I --count 1` replays program I alone).
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Number of programs.
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        /// Wall-clock limit in seconds for one program on both backends. A program still
        /// running after it (a backend that never runs out of gas, a livelock) is reported as
        /// a hang with its replay command, and the run ends with exit code 1.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Run only shard K of N (the programs whose index is K-1 modulo N), so N jobs with
        /// the same arguments split the range between them.
        #[arg(long, value_name = "K/N", default_value = "1/1")]
        shard: String,
        /// Opcode profile of the generated programs.
        #[arg(long, value_enum, default_value_t = ProfileArg::A)]
        profile: ProfileArg,
        /// Gas model: block-unit (auto), block-table (random per-block costs) or instruction.
        #[arg(long = "gas-model", value_enum, default_value_t = GasChoice::Auto)]
        gas_model: GasChoice,
        /// Raw-bytes mode: arbitrary code and bitmask, including invalid encodings.
        #[arg(long)]
        raw: bool,
        /// The two backends to compare, as A:B: any registered names (interp, jit, model, …)
        /// or names declared with --external. The first one writes the repro vectors.
        #[arg(long, default_value = "interp:jit")]
        pair: String,
        /// Declare a backend served by another process: NAME=COMMAND (repeatable).
        #[arg(long = "external", value_name = "NAME=COMMAND")]
        external: Vec<String>,
        /// How many divergences to minimise, explain and write as vectors.
        #[arg(long, default_value_t = 3)]
        explain: usize,
        /// Folder for divergence vectors.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Also count, on the reference model, how often each rule of the spec fired, and
        /// name the rules never reached.
        #[arg(long)]
        coverage: bool,
        /// Worker processes to split the run over, each running its share of the programs on
        /// one thread (default: one per CPU; 1 runs everything in this process). Processes, not
        /// threads: the JIT changes page protections for every program, and in one process each
        /// change stalls every other thread.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        jobs: Option<u16>,
        /// Run as a worker of another `diff` (reports in lines on stdout).
        #[arg(long, hide = true)]
        worker: bool,
    },
    /// Print the disassembly of a program: a vector file (.json) or a raw blob file.
    Disasm {
        file: PathBuf,
        /// Opcode profile (default: the vector's, else a).
        #[arg(long, value_enum)]
        profile: Option<ProfileArg>,
    },
    /// Assemble a text-form program into a blob (written to --output, else printed as a JSON
    /// byte array ready for a vector's `program` field).
    Asm {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ProfileArg::A)]
        profile: ProfileArg,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Write the fuzz targets' seed corpora (from the public vectors and fixed generator seeds)
    /// and the opcode dictionary, under DIR (default: fuzz/).
    FuzzCorpus {
        #[arg(long, default_value = "fuzz")]
        dir: PathBuf,
    },
    /// Measure backend speed on the real compiled programs of ../shared/bench.
    ///
    /// Each program runs to its halt; the checksum, instruction count and host calls are
    /// verified (exit code 1 on a wrong result) and the median time is reported with the
    /// instructions per second it means, the preparation time (decode + JIT compile) in total
    /// and per KiB of code, and the process's peak resident memory while that backend ran
    /// that program.
    Bench {
        /// Program names (sieve, blake2b, sort, intmix, memops, hostcall, and `large`: the six
        /// programs' code repeated to 128 KiB, which is only prepared, to time compilation per
        /// KiB on a large program). Default: all.
        programs: Vec<String>,
        /// Folder with the programs. Default: $JAVM_BENCH, else ../shared/bench.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Backends to time, comma-separated (see `vectors --backend`). With the `polkavm`
        /// feature also `polkavm-interp` and `polkavm-compiler`: PolkaVM's interpreter and
        /// compiler run as its own tools run them (its blob, compiled per run); the ratios to
        /// them are printed per program (interpreters to its interpreter, the JIT's run and
        /// compile to its compiler's).
        #[arg(long, default_value = "interp")]
        backend: String,
        /// Declare a backend served by another process: NAME=COMMAND (repeatable).
        #[arg(long = "external", value_name = "NAME=COMMAND")]
        external: Vec<String>,
        /// Timed runs per program and backend (the median is reported): 1 to 10000.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        runs: u32,
    },
    /// The nightly conformance job: spend a time budget across every vector suite on every
    /// backend, `diff` in every profile × gas model (structured and raw) with every pair of
    /// backends, and every fuzz target body (kept corpus, then fresh inputs).
    ///
    /// Each finding (failed vector, divergence, target panic) is minimised, de-duplicated by
    /// a signature and written under DIR/findings/ with the command that replays it. Writes
    /// DIR/summary.json, DIR/junit.xml and DIR/index.html. Exit code 0 when nothing was
    /// found, 1 when something was, 2 when it could not run.
    Nightly {
        /// Seconds to spend in all (honoured to about 10%).
        #[arg(long, default_value_t = 600)]
        budget: u64,
        /// Folder for the summary, the reports and findings/.
        #[arg(long, default_value = "reports/nightly")]
        reports: PathBuf,
        /// Seed of the generated programs and fresh fuzz inputs. Default: today's date as
        /// YYYYMMDD (printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Kept fuzz inputs, one folder per target (as cargo fuzz keeps them).
        #[arg(long, default_value = "fuzz/corpus")]
        corpus: PathBuf,
        /// A previous run's summary.json: the dashboard then shows new and fixed findings
        /// and the rates before and now.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// Run shard K of N: vector cases, generated programs and fresh fuzz inputs are split
        /// by index, so N jobs cover one seed space once; merge their reports with --merge.
        #[arg(long, value_name = "K/N", default_value = "1/1")]
        shard: String,
        /// Merge the reports of shards (their DIRs) into --reports instead of running.
        #[arg(long, value_name = "DIR", num_args = 1..)]
        merge: Vec<PathBuf>,
        /// Vector files or folders. Default: the public suites and vectors/.
        vectors: Vec<PathBuf>,
    },
    /// Serve one backend over the external-backend protocol on stdin/stdout (docs/protocol.md).
    ///
    /// Reads one JSON request per line and writes one JSON reply per line until stdin ends.
    /// `--external ref="javm-harness serve --backend jit"` then runs our JIT as an external
    /// backend named `ref`.
    Serve {
        /// The backend to serve (a registered name).
        #[arg(long, default_value = "interp")]
        backend: String,
    },
}

/// The backends of a command: the registry plus `--external` declarations.
fn backends(external: &[String]) -> Result<Backends, String> {
    let mut b = Backends::new();
    for declaration in external {
        b.declare_external(declaration)?;
    }
    Ok(b)
}

/// An opcode profile on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileArg {
    A,
    B,
    J,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::A => Profile::A,
            ProfileArg::B => Profile::B,
            ProfileArg::J => Profile::J,
        }
    }
}

/// A profile, or `auto` (by each file's format).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileChoice {
    Auto,
    A,
    B,
    J,
}

impl ProfileChoice {
    fn profile(self) -> Option<Profile> {
        match self {
            ProfileChoice::Auto => None,
            ProfileChoice::A => Some(Profile::A),
            ProfileChoice::B => Some(Profile::B),
            ProfileChoice::J => Some(Profile::J),
        }
    }
}

/// `K/N` with 1 ≤ K ≤ N.
fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let parsed =
        text.split_once('/').and_then(|(k, n)| Some((k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => Err(format!("--shard {text:?}: expected K/N with 1 <= K <= N (for example 2/4)")),
    }
}

fn unusable(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_UNUSABLE as u8)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Vectors {
            paths,
            backend,
            external,
            profile,
            gas_model,
            strict,
            snapshots,
            json,
            junit,
            markdown,
            html,
        } => {
            let backends = match backends(&external).and_then(|b| b.select_for_checks(&backend)) {
                Ok(b) => b,
                Err(e) => return unusable(e),
            };
            let options = RunOptions {
                profile: profile.profile(),
                gas: gas_model,
                details: true,
                known: javm_harness::backends::known_difference,
            };
            let reports = ReportPaths { json, junit, markdown, html };
            vectors::run(VectorsArgs { paths, backends, options, reports, strict, snapshots })
        }
        Command::Diff {
            seed,
            first,
            count,
            timeout,
            shard,
            profile,
            gas_model,
            raw,
            pair,
            external,
            explain,
            reports,
            coverage,
            jobs,
            worker,
        } => {
            let pair = match backends(&external).and_then(|b| b.pair(&pair)) {
                Ok(p) => p,
                Err(e) => return unusable(e),
            };
            let config = GenConfig { profile: profile.into(), gas: gas_model, raw };
            if !(timeout.is_finite() && timeout > 0.0) {
                return unusable(format!("--timeout must be a positive number of seconds, not {timeout}"));
            }
            let timeout = std::time::Duration::from_secs_f64(timeout.min(1e6));
            let shard = match parse_shard(&shard) {
                Ok(s) => s,
                Err(e) => return unusable(e),
            };
            let jobs = jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from);
            diff::run(DiffArgs {
                seed,
                first,
                count,
                shard,
                timeout,
                config,
                pair,
                external,
                explain,
                reports,
                coverage,
                jobs,
                worker,
            })
        }
        Command::Disasm { file, profile } => text::disasm(&file, profile.map(Profile::from)),
        Command::Asm { file, profile, output } => text::asm(&file, profile.into(), output),
        Command::FuzzCorpus { dir } => corpus::run(&dir),
        Command::Nightly { budget, reports, seed, corpus, previous, shard, merge, vectors } => {
            if !merge.is_empty() {
                return ExitCode::from(nightly::merge(&merge, &reports, previous.as_deref()) as u8);
            }
            let shard = match parse_shard(&shard) {
                Ok(s) => s,
                Err(e) => return unusable(e),
            };
            if budget == 0 || budget > 7 * 86_400 {
                return unusable(format!("--budget {budget}: give 1 to 604800 seconds"));
            }
            nightly::run(NightlyArgs {
                budget: std::time::Duration::from_secs(budget),
                reports,
                seed: seed.unwrap_or_else(nightly::date_seed),
                corpus,
                previous,
                vectors,
                shard,
            })
        }
        Command::Serve { backend } => match Backends::new().get(&backend) {
            Ok(spec) => serve::run(&spec),
            Err(e) => return unusable(e),
        },
        Command::Bench { programs, dir, backend, external, runs } => {
            // PolkaVM's own backends are timed apart from the registry's.
            let (references, ours): (Vec<&str>, Vec<&str>) =
                backend.split(',').map(str::trim).partition(|n| bench::reference_names().contains(n));
            let backends = if ours.is_empty() {
                Ok(Vec::new())
            } else {
                backends(&external).and_then(|b| b.select(&ours.join(",")))
            };
            let backends = match backends {
                Ok(b) => b,
                Err(e) => return unusable(e),
            };
            let references = references.into_iter().map(String::from).collect();
            bench::run(BenchArgs { dir, programs, backends, references, runs: runs as usize })
        }
    };
    ExitCode::from(code as u8)
}
