//! `javm-harness nightly`: one time budget spent across every vector suite on every backend,
//! `diff` in every profile × gas model (structured and raw) with every pair of backends, and
//! every fuzz target body in process; each finding minimised, de-duplicated by a signature
//! and written under `DIR/findings/` as a replayable file with its replay command. Writes
//! `DIR/summary.json`, `DIR/junit.xml` and `DIR/index.html`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backends::{BackendSpec, Backends};
use crate::commands::vectors::{load_suite, run_suite, EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE};
use crate::diff::{explain, generate, judge, seed_bytes, write_vector, Verdict};
use crate::generator::GenConfig;
use crate::report::xml;
use crate::run::{GasChoice, RunOptions};

pub struct NightlyArgs {
    pub budget: Duration,
    pub reports: PathBuf,
    pub seed: u64,
    /// Kept fuzz inputs, `<corpus>/<target>/*`.
    pub corpus: PathBuf,
    pub previous: Option<PathBuf>,
    /// Vector files or folders; empty: the public suites and `vectors/`.
    pub vectors: Vec<PathBuf>,
    /// `(k, n)`: this job's share of cases, programs and fresh inputs (index `k - 1` mod `n`).
    pub shard: (u64, u64),
}

/// Vector results.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VectorCounts {
    pub passed: usize,
    pub failed: usize,
    pub known: usize,
}

/// One `diff` configuration's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiffRow {
    pub profile: String,
    pub gas: String,
    pub raw: bool,
    pub pair: String,
    pub programs: u64,
    pub divergences: u64,
    pub known: u64,
    pub programs_per_second: f64,
}

/// One fuzz target's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FuzzRow {
    pub target: String,
    pub runs: u64,
    pub findings: u64,
}

/// Something found, with the file and command that replay it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    pub kind: String,
    pub signature: String,
    pub path: String,
    pub replay: String,
    pub detail: String,
    /// How many times this signature was seen.
    pub count: u64,
    /// Which backends (or pairs) showed it: one finding however many show the same thing.
    #[serde(default)]
    pub seen_on: Vec<String>,
}

/// What changed since a previous summary.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Changes {
    pub new_findings: Vec<String>,
    pub fixed_findings: Vec<String>,
    pub new_failed_cases: Vec<String>,
    pub fixed_failed_cases: Vec<String>,
    /// `profile gas mode pair: before → now` programs per second.
    pub rates: Vec<String>,
}

/// `DIR/summary.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub seed: u64,
    /// `K/N` of a sharded run; merged summaries list every shard.
    #[serde(default)]
    pub shards: Vec<String>,
    pub budget_seconds: f64,
    pub seconds: f64,
    pub backends: Vec<String>,
    pub vectors: VectorCounts,
    pub failed_cases: Vec<String>,
    pub diff: Vec<DiffRow>,
    pub fuzz: Vec<FuzzRow>,
    /// Paths of the finding files.
    pub findings: Vec<String>,
    pub finding_details: Vec<Finding>,
    #[serde(default)]
    pub changes: Option<Changes>,
}

/// The default seed: the date, as YYYYMMDD (UTC).
pub fn date_seed() -> u64 {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y * 10_000 + m * 100 + d) as u64
}

/// One thing found: its kind, who showed it, its signature, the file name to write it to and
/// what to show of it.
struct Seen {
    kind: &'static str,
    who: String,
    signature: String,
    file: String,
    detail: String,
}

/// Findings so far, de-duplicated by signature.
struct Findings {
    dir: PathBuf,
    list: Vec<Finding>,
}

impl Findings {
    /// Records a finding; `write` is called (with the path to write) only for a new signature.
    fn add(
        &mut self,
        seen: Seen,
        replay: impl FnOnce(&Path) -> String,
        write: impl FnOnce(&Path) -> std::io::Result<()>,
    ) {
        let Seen { kind, who, signature, file, detail } = seen;
        let who = who.as_str();
        if let Some(f) = self.list.iter_mut().find(|f| f.signature == signature) {
            f.count += 1;
            if !f.seen_on.iter().any(|w| w == who) {
                f.seen_on.push(who.to_string());
            }
            return;
        }
        let path = self.dir.join(&file);
        let (path_text, replay) = match write(&path) {
            Ok(()) => (path.display().to_string(), replay(&path)),
            Err(e) => (String::new(), format!("(could not write {}: {e})", path.display())),
        };
        eprintln!("finding: {signature}");
        self.list.push(Finding {
            kind: kind.into(),
            signature,
            path: path_text,
            replay,
            detail,
            count: 1,
            seen_on: vec![who.to_string()],
        });
    }
}

/// A file-name-safe form of a text.
fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(80).collect()
}

/// Runs the command and returns its exit code: 0 nothing found, 1 findings, 2 could not run.
pub fn run(args: NightlyArgs) -> i32 {
    let started = Instant::now();
    let deadline = started + args.budget;
    let findings_dir = args.reports.join("findings");
    if let Err(e) = std::fs::create_dir_all(&findings_dir) {
        eprintln!("error: cannot create {}: {e}", findings_dir.display());
        return EXIT_UNUSABLE;
    }
    let previous: Option<Summary> = match &args.previous {
        None => None,
        Some(p) => match crate::input::read_text(p).and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: --previous {}: {e}", p.display());
                return EXIT_UNUSABLE;
            }
        },
    };
    let registry = Backends::new();
    let backends = match registry.select("all") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_UNUSABLE;
        }
    };
    let names: Vec<String> = backends.iter().map(|b| b.name().to_string()).collect();
    eprintln!(
        "nightly: seed {}, budget {:.0}s, backends {}, reports in {}",
        args.seed,
        args.budget.as_secs_f64(),
        names.join(", "),
        args.reports.display()
    );
    let mut findings = Findings { dir: findings_dir, list: Vec::new() };
    let (k, n) = args.shard;
    let mut summary = Summary {
        seed: args.seed,
        shards: vec![format!("{k}/{n}")],
        budget_seconds: args.budget.as_secs_f64(),
        backends: names.clone(),
        ..Summary::default()
    };

    // 1. Every vector suite on every backend.
    let mut paths = args.vectors.clone();
    if paths.is_empty() {
        match crate::vectors::default_vector_dir() {
            Ok(d) => paths.push(d),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_UNUSABLE;
            }
        }
        if Path::new("vectors").is_dir() {
            paths.push(PathBuf::from("vectors"));
        }
    }
    eprintln!("vectors: {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    let options = RunOptions { details: true, known: crate::backends::known_difference, ..RunOptions::default() };
    let mut suite = match load_suite(&paths, &options, false, false, None) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_UNUSABLE;
        }
    };
    let mine = |i: usize| i as u64 % n == k - 1;
    suite.cases = suite.cases.into_iter().enumerate().filter(|(i, _)| mine(*i)).map(|(_, c)| c).collect();
    suite.kernel = suite.kernel.into_iter().enumerate().filter(|(i, _)| mine(*i)).map(|(_, v)| v).collect();
    let outcomes = run_suite(&suite, &backends, &options);
    for o in &outcomes {
        if !o.passed {
            summary.vectors.failed += 1;
            let first = o.failures.first().map(|f| format!("{} {}", f.backend, f.difference.field)).unwrap_or_default();
            summary.failed_cases.push(format!("{} ({})", o.name, o.file));
            let source = PathBuf::from(&o.file);
            let file = format!("vector-{}-{}.json", safe(&o.name), summary.vectors.failed);
            let backends_arg = names.join(",");
            let detail = o
                .failures
                .iter()
                .map(|f| format!("{} {}: {}", o.step_label(f.step), f.backend, f.difference))
                .chain(o.disassembly.clone())
                .collect::<Vec<_>>()
                .join("\n");
            findings.add(
                Seen {
                    kind: "vector",
                    who: backends_arg.clone(),
                    signature: format!("vector {} {first}", o.name),
                    file,
                    detail,
                },
                |p| format!("javm-harness vectors --backend {backends_arg} {}", p.display()),
                |p| std::fs::copy(&source, p).map(|_| ()),
            );
        } else if !o.known.is_empty() {
            summary.vectors.known += 1;
        } else {
            summary.vectors.passed += 1;
        }
    }
    eprintln!(
        "vectors: {} passed, {} failed, {} with known differences ({:.1}s)",
        summary.vectors.passed,
        summary.vectors.failed,
        summary.vectors.known,
        started.elapsed().as_secs_f64()
    );

    // 2. diff: every profile × gas model × mode, with every pair of backends that can judge.
    let remaining = deadline.saturating_duration_since(Instant::now());
    let diff_budget = remaining.mul_f64(0.6);
    let mut slices: Vec<(GenConfig, BackendSpec, BackendSpec)> = Vec::new();
    for profile in javm_engine::Profile::ALL {
        for gas in [GasChoice::BlockUnit, GasChoice::BlockTable, GasChoice::Instruction] {
            for raw in [false, true] {
                let config = GenConfig { profile, gas, raw };
                for (i, a) in backends.iter().enumerate() {
                    for b in &backends[i + 1..] {
                        if pair_can_run(a, b, &config) {
                            slices.push((config, a.clone(), b.clone()));
                        }
                    }
                }
            }
        }
    }
    let slice_time = diff_budget.div_f64(slices.len().max(1) as f64);
    for (config, a, b) in &slices {
        let row = diff_slice(args.seed, args.shard, *config, a, b, slice_time, &mut findings);
        summary.diff.push(row);
    }
    let programs: u64 = summary.diff.iter().map(|r| r.programs).sum();
    let divergences: u64 = summary.diff.iter().map(|r| r.divergences).sum();
    eprintln!(
        "diff: {programs} programs in {} configurations, {divergences} divergences ({:.1}s)",
        slices.len(),
        started.elapsed().as_secs_f64()
    );

    // 3. Every fuzz target body, on its kept corpus and on fresh inputs.
    let reserve = args.budget.mul_f64(0.03).min(Duration::from_secs(5));
    let remaining = deadline.saturating_duration_since(Instant::now() + reserve);
    let per_target = remaining.div_f64(crate::fuzzing::TARGETS.len() as f64);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (name, target) in crate::fuzzing::TARGETS {
        let row = fuzz_slice(name, target, &args.corpus, args.seed, args.shard, per_target, &mut findings);
        summary.fuzz.push(row);
    }
    std::panic::set_hook(hook);
    eprintln!(
        "fuzz: {} runs of {} targets ({:.1}s)",
        summary.fuzz.iter().map(|r| r.runs).sum::<u64>(),
        summary.fuzz.len(),
        started.elapsed().as_secs_f64()
    );

    summary.findings = findings.list.iter().map(|f| f.path.clone()).collect();
    summary.finding_details = findings.list;
    summary.seconds = started.elapsed().as_secs_f64();
    if let Some(prev) = &previous {
        summary.changes = Some(changes(prev, &summary));
    }
    let unwritten = match write_reports(&args.reports, &summary) {
        Ok(()) => false,
        Err(e) => {
            eprintln!("error: {e}");
            true
        }
    };
    println!(
        "nightly: vectors {} passed, {} failed; diff {programs} programs, {divergences} divergences; fuzz {} runs; {} finding(s) in {:.0}s (budget {:.0}s)",
        summary.vectors.passed,
        summary.vectors.failed,
        summary.fuzz.iter().map(|r| r.runs).sum::<u64>(),
        summary.finding_details.len(),
        summary.seconds,
        summary.budget_seconds
    );
    for f in &summary.finding_details {
        println!("  {} ×{} on {}: {}", f.signature, f.count, f.seen_on.join(", "), f.replay);
    }
    if unwritten {
        EXIT_UNUSABLE
    } else if summary.finding_details.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// `nightly --merge DIR...`: the shards' summaries merged into `reports` (counts summed,
/// findings de-duplicated by signature), with the same three files. Returns the exit code.
pub fn merge(dirs: &[PathBuf], reports: &Path, previous: Option<&Path>) -> i32 {
    let mut merged = Summary::default();
    for dir in dirs {
        let path = dir.join("summary.json");
        let s: Summary =
            match crate::input::read_text(&path).and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {}: {e}", path.display());
                    return EXIT_UNUSABLE;
                }
            };
        if !merged.shards.is_empty() && (merged.seed != s.seed || merged.backends != s.backends) {
            eprintln!(
                "error: {}: another seed or backend set than the first summary; these are not shards of one run",
                path.display()
            );
            return EXIT_UNUSABLE;
        }
        merged.seed = s.seed;
        merged.backends = s.backends;
        merged.shards.extend(s.shards);
        merged.budget_seconds = merged.budget_seconds.max(s.budget_seconds);
        merged.seconds = merged.seconds.max(s.seconds);
        merged.vectors.passed += s.vectors.passed;
        merged.vectors.failed += s.vectors.failed;
        merged.vectors.known += s.vectors.known;
        merged.failed_cases.extend(s.failed_cases);
        for r in s.diff {
            let same =
                |m: &&mut DiffRow| m.profile == r.profile && m.gas == r.gas && m.raw == r.raw && m.pair == r.pair;
            match merged.diff.iter_mut().find(same) {
                Some(m) => {
                    m.programs += r.programs;
                    m.divergences += r.divergences;
                    m.known += r.known;
                    m.programs_per_second += r.programs_per_second;
                }
                None => merged.diff.push(r),
            }
        }
        for r in s.fuzz {
            match merged.fuzz.iter_mut().find(|m| m.target == r.target) {
                Some(m) => {
                    m.runs += r.runs;
                    m.findings += r.findings;
                }
                None => merged.fuzz.push(r),
            }
        }
        for f in s.finding_details {
            match merged.finding_details.iter_mut().find(|m| m.signature == f.signature) {
                Some(m) => m.count += f.count,
                None => merged.finding_details.push(f),
            }
        }
    }
    merged.findings = merged.finding_details.iter().map(|f| f.path.clone()).collect();
    if let Some(p) = previous {
        match crate::input::read_text(p).and_then(|t| serde_json::from_str::<Summary>(&t).map_err(|e| e.to_string())) {
            Ok(prev) => merged.changes = Some(changes(&prev, &merged)),
            Err(e) => {
                eprintln!("error: --previous {}: {e}", p.display());
                return EXIT_UNUSABLE;
            }
        }
    }
    if let Err(e) = write_reports(reports, &merged) {
        eprintln!("error: {e}");
        return EXIT_UNUSABLE;
    }
    println!(
        "merged {} shard(s): vectors {} passed, {} failed; diff {} programs, {} divergences; {} finding(s)",
        merged.shards.len(),
        merged.vectors.passed,
        merged.vectors.failed,
        merged.diff.iter().map(|r| r.programs).sum::<u64>(),
        merged.diff.iter().map(|r| r.divergences).sum::<u64>(),
        merged.finding_details.len()
    );
    if merged.finding_details.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// Writes `summary.json`, `junit.xml` and `index.html` into `dir`.
fn write_reports(dir: &Path, summary: &Summary) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut failed = Vec::new();
    for (file, text) in [
        ("summary.json", serde_json::to_string_pretty(summary).unwrap_or_default() + "\n"),
        ("junit.xml", junit(summary)),
        ("index.html", dashboard(summary)),
    ] {
        let path = dir.join(file);
        if let Err(e) = std::fs::write(&path, text) {
            failed.push(format!("cannot write {}: {e}", path.display()));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// Whether both backends of a pair support a configuration (what each declares in the
/// registry; PolkaVM, for one, has no profile J and no per-instruction gas).
fn pair_can_run(a: &BackendSpec, b: &BackendSpec, config: &GenConfig) -> bool {
    let gas = crate::generator::effective_gas(config.gas);
    [a, b].iter().all(|s| {
        let supports = s.supports();
        supports.profiles.contains(&config.profile) && supports.gas_models.contains(&gas.name())
    })
}

/// Runs generated programs of one configuration on a pair until `time` has passed.
fn diff_slice(
    seed: u64,
    (k, n): (u64, u64),
    config: GenConfig,
    a: &BackendSpec,
    b: &BackendSpec,
    time: Duration,
    findings: &mut Findings,
) -> DiffRow {
    let started = Instant::now();
    let mut next = 0u64;
    let mut divergent = Vec::new();
    let mut known = 0u64;
    let chunk = 64u64;
    // At least one chunk, whatever is left of the budget, so every configuration is counted.
    while next == 0 || started.elapsed() < time {
        let (d, found_known): (Vec<u64>, u64) = (next..next + chunk)
            .into_par_iter()
            .map_init(
                || (a.create().expect("checked"), b.create().expect("checked")),
                |(x, y), j| {
                    let index = j * n + (k - 1);
                    let program = generate(seed, index, config);
                    match judge(&program, &mut **x, &mut **y) {
                        Verdict::Agree => (None, 0),
                        Verdict::Known(_) => (None, 1),
                        Verdict::Diverge => {
                            *x = a.create().expect("checked");
                            *y = b.create().expect("checked");
                            (Some(index), 0)
                        }
                    }
                },
            )
            .fold(
                || (Vec::new(), 0),
                |(mut d, k), (i, n)| {
                    d.extend(i);
                    (d, k + n)
                },
            )
            .reduce(
                || (Vec::new(), 0),
                |(mut d, k), (d2, k2)| {
                    d.extend(d2);
                    (d, k + k2)
                },
            );
        divergent.extend(d);
        known += found_known;
        next += chunk;
    }
    let elapsed = started.elapsed().as_secs_f64();
    divergent.sort_unstable();
    let pair = format!("{}:{}", a.name(), b.name());
    let mode = if config.raw { "raw" } else { "structured" };
    for &index in divergent.iter().take(2) {
        let (mut x, mut y) = (a.create().expect("checked"), b.create().expect("checked"));
        let program = generate(seed, index, config);
        let explanation = explain(&program, &mut *x, &mut *y);
        let field = explanation
            .first
            .as_ref()
            .and_then(|f| f.differences.first())
            .or(explanation.at_exit.first())
            .map_or("?".to_string(), |d| d.field.clone());
        let at = explanation.first.as_ref().map_or(explanation.minimised.initial_pc, |f| f.pc);
        let opcode = explanation.minimised.blob().code.get(at as usize).copied();
        let instruction = opcode
            .and_then(|n| config.profile.op(n))
            .map_or("no instruction".to_string(), |op| op.mnemonic().to_string());
        // The same difference shown by several pairs is one finding naming them all.
        let signature = format!("divergence profile {} {field} after {instruction}", config.profile.name());
        let file = format!(
            "divergence-{}-{}-{mode}-{}-{seed}-{index}.json",
            safe(&pair),
            config.profile.name(),
            config.gas.name()
        );
        let detail = explanation.render(a.name(), b.name());
        let names = pair.replace(':', ",");
        let minimised = explanation.minimised.clone();
        findings.add(
            Seen { kind: "divergence", who: pair.clone(), signature, file, detail },
            |p| format!("javm-harness vectors --backend {names} {}", p.display()),
            |p| {
                let mut reference = a.create().map_err(std::io::Error::other)?;
                let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    write_vector(&minimised, &name, &mut *reference, p)
                }))
                .unwrap_or_else(|_| Err(std::io::Error::other("the reference backend panicked")))
            },
        );
    }
    DiffRow {
        profile: config.profile.name().to_string(),
        gas: config.gas.name().to_string(),
        raw: config.raw,
        pair,
        programs: next,
        divergences: divergent.len() as u64,
        known,
        programs_per_second: next as f64 / elapsed.max(1e-9),
    }
}

/// Runs one fuzz target body on its kept corpus, then on fresh inputs, until `time` passed.
fn fuzz_slice(
    name: &str,
    target: crate::fuzzing::Target,
    corpus: &Path,
    seed: u64,
    (k, n): (u64, u64),
    time: Duration,
    findings: &mut Findings,
) -> FuzzRow {
    let started = Instant::now();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    if let Ok(walk) = crate::input::walk(&corpus.join(name), &|_| true) {
        let files = walk.files.iter().enumerate().filter(|(i, _)| *i as u64 % n == k - 1);
        kept.extend(files.filter_map(|(_, f)| crate::input::read_file(f).ok()));
    }
    let salt = name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let fresh = |i: u64| -> Vec<u8> {
        let bytes = seed_bytes(seed ^ salt, i);
        let len = (i.wrapping_mul(0x9E37) % bytes.len() as u64) as usize + 1;
        bytes[..len].to_vec()
    };
    let mut runs = 0u64;
    let mut found = 0u64;
    let mut next_fresh = 0u64;
    let mut offset = 0usize;
    let chunk = 64usize;
    // At least one chunk, whatever is left of the budget, so every target runs.
    while runs == 0 || started.elapsed() < time {
        let inputs: Vec<Vec<u8>> = if offset < kept.len() {
            let end = (offset + chunk).min(kept.len());
            let v = kept[offset..end].to_vec();
            offset = end;
            v
        } else {
            let v = (next_fresh..next_fresh + chunk as u64).map(|j| fresh(j * n + (k - 1))).collect();
            next_fresh += chunk as u64;
            v
        };
        let failures: Vec<(Vec<u8>, String)> = inputs
            .par_iter()
            .filter_map(|input| {
                std::panic::catch_unwind(|| target(input))
                    .err()
                    .map(|payload| (input.clone(), crate::run::panic_message(&*payload)))
            })
            .collect();
        runs += inputs.len() as u64;
        for (input, message) in failures {
            found += 1;
            let head: String = message.lines().next().unwrap_or("").chars().take(100).collect();
            let signature = format!("fuzz {name}: {}", head.split(" [").next().unwrap_or(&head));
            let digest =
                input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            let file = format!("fuzz-{name}-{digest:016x}.bin");
            let target_name = name.to_string();
            findings.add(
                Seen { kind: "fuzz", who: name.to_string(), signature, file, detail: message },
                |p| format!("(cd fuzz && cargo fuzz run {target_name} -s none {})", absolute(p).display()),
                |p| std::fs::write(p, &input),
            );
        }
    }
    FuzzRow { target: name.to_string(), runs, findings: found }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What changed between two summaries.
fn changes(prev: &Summary, now: &Summary) -> Changes {
    let sigs = |s: &Summary| s.finding_details.iter().map(|f| f.signature.clone()).collect::<BTreeSet<_>>();
    let cases = |s: &Summary| s.failed_cases.iter().cloned().collect::<BTreeSet<_>>();
    let (sp, sn) = (sigs(prev), sigs(now));
    let (cp, cn) = (cases(prev), cases(now));
    let key = |r: &DiffRow| format!("{} {} {} {}", r.profile, r.gas, if r.raw { "raw" } else { "structured" }, r.pair);
    let mut rates = Vec::new();
    for r in &now.diff {
        if let Some(p) = prev.diff.iter().find(|p| key(p) == key(r)) {
            rates.push(format!("{}: {:.0} → {:.0} programs/s", key(r), p.programs_per_second, r.programs_per_second));
        }
    }
    Changes {
        new_findings: sn.difference(&sp).cloned().collect(),
        fixed_findings: sp.difference(&sn).cloned().collect(),
        new_failed_cases: cn.difference(&cp).cloned().collect(),
        fixed_failed_cases: cp.difference(&cn).cloned().collect(),
        rates,
    }
}

/// JUnit XML: one suite per part; a vector suite case, a case per diff configuration and per
/// fuzz target, failing when it found something.
fn junit(s: &Summary) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"javm-harness nightly\">\n");
    out += &format!(
        "  <testsuite name=\"vectors\" tests=\"{}\" failures=\"{}\">\n",
        s.vectors.passed + s.vectors.failed + s.vectors.known,
        s.vectors.failed
    );
    for c in &s.failed_cases {
        out += &format!("    <testcase name=\"{}\"><failure message=\"failed\"/></testcase>\n", xml(c));
    }
    out += &format!("    <testcase name=\"{} passing cases\"/>\n  </testsuite>\n", s.vectors.passed + s.vectors.known);
    let failing = s.diff.iter().filter(|r| r.divergences > 0).count();
    out += &format!("  <testsuite name=\"diff\" tests=\"{}\" failures=\"{failing}\">\n", s.diff.len());
    for r in &s.diff {
        let name = format!(
            "{} {} {} {} ({} programs)",
            r.pair,
            r.profile,
            r.gas,
            if r.raw { "raw" } else { "structured" },
            r.programs
        );
        out += &format!("    <testcase name=\"{}\"", xml(&name));
        if r.divergences > 0 {
            out += &format!("><failure message=\"{} divergences\"/></testcase>\n", r.divergences);
        } else {
            out += "/>\n";
        }
    }
    out += "  </testsuite>\n";
    let failing = s.fuzz.iter().filter(|r| r.findings > 0).count();
    out += &format!("  <testsuite name=\"fuzz\" tests=\"{}\" failures=\"{failing}\">\n", s.fuzz.len());
    for r in &s.fuzz {
        out += &format!("    <testcase name=\"{} ({} runs)\"", xml(&r.target), r.runs);
        if r.findings > 0 {
            out += &format!("><failure message=\"{} findings\"/></testcase>\n", r.findings);
        } else {
            out += "/>\n";
        }
    }
    out += "  </testsuite>\n</testsuites>\n";
    out
}

/// The dashboard: the verdict and the counts first, then the findings only, each with its
/// replay command, then what changed since the last run, then the detail tables. No
/// JavaScript, no network.
fn dashboard(s: &Summary) -> String {
    let verdict = if s.finding_details.is_empty() { "nothing found" } else { "findings" };
    let class = if s.finding_details.is_empty() { "pass" } else { "fail" };
    let programs: u64 = s.diff.iter().map(|r| r.programs).sum();
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>javm-harness nightly</title>\n<style>\
         body{font-family:sans-serif;max-width:70em;margin:1em auto}td,th{padding:2px 8px;text-align:left}\
         .fail{color:#b00}.pass{color:#070}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}</style></head><body>\n",
    );
    out += &format!(
        "<h1>javm-harness nightly: <span class=\"{class}\">{verdict}</span></h1>\n<p>Seed {}{}, {:.0} s of a {:.0} s budget, backends {}.</p>\n",
        s.seed,
        if s.shards.len() > 1 || s.shards.iter().any(|x| x != "1/1") { format!(" (shards {})", s.shards.join(", ")) } else { String::new() },
        s.seconds,
        s.budget_seconds,
        xml(&s.backends.join(", "))
    );
    out += "<table>\n<tr><th>part</th><th>ran</th><th>found</th></tr>\n";
    out += &format!(
        "<tr><td>vectors</td><td>{} passed, {} with known differences</td><td>{} failed</td></tr>\n",
        s.vectors.passed, s.vectors.known, s.vectors.failed
    );
    out += &format!(
        "<tr><td>diff</td><td>{programs} programs in {} configurations</td><td>{} divergences</td></tr>\n",
        s.diff.len(),
        s.diff.iter().map(|r| r.divergences).sum::<u64>()
    );
    out += &format!(
        "<tr><td>fuzz</td><td>{} runs of {} targets</td><td>{} panics</td></tr>\n</table>\n",
        s.fuzz.iter().map(|r| r.runs).sum::<u64>(),
        s.fuzz.len(),
        s.fuzz.iter().map(|r| r.findings).sum::<u64>()
    );
    if !s.finding_details.is_empty() {
        out += "<h2>Findings</h2>\n";
        for f in &s.finding_details {
            out += &format!(
                "<h3 class=\"fail\">{} (seen {}× on {})</h3>\n<p>Replay: <code>{}</code></p>\n<pre>{}</pre>\n",
                xml(&f.signature),
                f.count,
                xml(&f.seen_on.join(", ")),
                xml(&f.replay),
                xml(&f.detail).replace("\\u{a}", "\n")
            );
        }
    }
    if let Some(c) = &s.changes {
        out += "<h2>Since the previous run</h2>\n<ul>\n";
        for (label, items) in [
            ("new finding", &c.new_findings),
            ("fixed finding", &c.fixed_findings),
            ("newly failing case", &c.new_failed_cases),
            ("fixed case", &c.fixed_failed_cases),
        ] {
            for i in items {
                out += &format!("<li>{label}: {}</li>\n", xml(i));
            }
        }
        if c.new_findings.is_empty()
            && c.fixed_findings.is_empty()
            && c.new_failed_cases.is_empty()
            && c.fixed_failed_cases.is_empty()
        {
            out += "<li>no new or fixed findings</li>\n";
        }
        out += "</ul>\n<details><summary>rates</summary><ul>\n";
        for r in &c.rates {
            out += &format!("<li>{}</li>\n", xml(r));
        }
        out += "</ul></details>\n";
    }
    out += "<h2>diff</h2>\n<table>\n<tr><th>pair</th><th>profile</th><th>gas</th><th>mode</th><th>programs</th><th>programs/s</th><th>known only</th><th>divergences</th></tr>\n";
    for r in &s.diff {
        out += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
            xml(&r.pair),
            xml(&r.profile),
            xml(&r.gas),
            if r.raw { "raw" } else { "structured" },
            r.programs,
            r.programs_per_second,
            r.known,
            if r.divergences > 0 { "fail" } else { "pass" },
            r.divergences
        );
    }
    out += "</table>\n<h2>fuzz</h2>\n<table>\n<tr><th>target</th><th>runs</th><th>findings</th></tr>\n";
    for r in &s.fuzz {
        out += &format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
            xml(&r.target),
            r.runs,
            if r.findings > 0 { "fail" } else { "pass" },
            r.findings
        );
    }
    out += "</table>\n</body></html>\n";
    out
}
