//! `javm-harness diff`: generated programs through two backends, divergences explained.
//!
//! A run is split over worker processes (`--jobs`): each is this program again, started with
//! `--worker` and a finer shard, runs its programs on one thread and reports on its stdout, one
//! line per message (see [`WorkerLine`]). Processes rather than threads, because the JIT changes
//! host page protections for every program, and each change in one thread of a process stalls
//! every other thread of it (the kernel flushes their TLBs too). The parent shows the progress,
//! then explains the divergences itself: a program is fully given by the seed and its index.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::progress::Progress;

use crate::backends::{BackendSpec, Boxed};
use crate::commands::vectors::{EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE};
use crate::diff::{explain, generate, judge, repro_path, write_vector, Verdict};
use crate::generator::GenConfig;
use crate::run::run_case;
use javm_model::coverage::Coverage;
use javm_model::Model;

#[derive(Clone)]
pub struct DiffArgs {
    pub seed: u64,
    /// Index of the first program (programs `first .. first + count` of the seed).
    pub first: u64,
    pub count: u64,
    /// `(k, n)`: run only the programs whose index is `k - 1` modulo `n`, so `n` jobs with
    /// the same arguments split the range between them exactly.
    pub shard: (u64, u64),
    /// Wall-clock limit for one program on both backends; a program still running after it
    /// is reported as a hang and ends the run.
    pub timeout: Duration,
    pub config: GenConfig,
    pub pair: (BackendSpec, BackendSpec),
    /// The `--external` declarations (NAME=COMMAND), passed on to worker processes.
    pub external: Vec<String>,
    /// How many divergences to minimise and explain.
    pub explain: usize,
    pub reports: PathBuf,
    /// Also run every program on a rule-counting reference model and print the coverage.
    pub coverage: bool,
    /// Worker processes to split the run over; 1 runs every program in this process.
    pub jobs: usize,
    /// This process is a worker of another `diff`: it runs its shard and reports in lines.
    pub worker: bool,
}

/// What a run found.
#[derive(Default)]
struct Findings {
    divergent: Vec<u64>,
    /// Programs that differed only in listed known differences.
    known: u64,
    /// Programs per known-difference name.
    known_names: BTreeMap<String, u64>,
    coverage: Coverage,
}

/// What the one running program is (its index plus one, 0 = idle) and since when, in
/// milliseconds since the run began; read by the watchdog.
struct Watch {
    started: Instant,
    program: AtomicU64,
    since: AtomicU64,
    done: AtomicBool,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            started: Instant::now(),
            program: AtomicU64::new(0),
            since: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    fn begin(&self, index: u64) {
        self.since.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.program.store(index + 1, Ordering::Release);
    }

    fn end(&self) {
        self.program.store(0, Ordering::Release);
    }

    /// The program, if it has been running for longer than `limit`, with how long it has run.
    fn overdue(&self, limit: Duration) -> Option<(u64, Duration)> {
        let now = self.started.elapsed().as_millis() as u64;
        let index = self.program.load(Ordering::Acquire).checked_sub(1)?;
        let ran = Duration::from_millis(now.saturating_sub(self.since.load(Ordering::Relaxed)));
        (ran > limit).then_some((index, ran))
    }
}

/// How many indices in `first..end` are `k - 1` modulo `n`.
pub fn shard_size(first: u64, end: u64, k: u64, n: u64) -> u64 {
    let below = |x: u64| x / n + u64::from(x % n > k - 1);
    below(end) - below(first)
}

/// The command line that runs one program of this run alone, but for `--first I --count 1`.
fn replay_prefix(args: &DiffArgs) -> String {
    let (a, b) = &args.pair;
    let gas = args.config.gas.name();
    let external: String = args.external.iter().map(|e| format!(" --external '{e}'")).collect();
    format!(
        "javm-harness diff --pair {}:{}{external} --profile {} --gas-model {gas}{} --seed {}",
        a.name(),
        b.name(),
        args.config.profile.name(),
        if args.config.raw { " --raw" } else { "" },
        args.seed
    )
}

/// Prints a hang the way every run reports it.
fn report_hang(args: &DiffArgs, index: u64, ran: Duration) {
    eprintln!();
    println!(
        "HANG program {index}: no result after {:.1}s (limit {:.1}s, --timeout)",
        ran.as_secs_f64(),
        args.timeout.as_secs_f64()
    );
    println!("replay: {} --first {index} --count 1", replay_prefix(args));
    let _ = std::io::stdout().flush();
}

/// One line of a worker's report.
#[derive(Debug, PartialEq)]
enum WorkerLine {
    /// `done N`: N programs of the worker's shard have finished.
    Done(u64),
    /// `diverge I`: program I diverged.
    Diverge(u64),
    /// `known C NAME`: C programs differed in the listed known difference NAME only, and
    /// `known-programs C`: C programs differed in listed known differences only.
    Known(u64, String),
    KnownPrograms(u64),
    /// `coverage C1 C2 …`: the rule counters.
    Coverage(Vec<u64>),
    /// `hang I MS`: program I ran for MS milliseconds without a result; the worker stops.
    Hang(u64, u64),
    /// `end`: the report is complete.
    End,
}

impl WorkerLine {
    fn render(&self) -> String {
        match self {
            WorkerLine::Done(n) => format!("done {n}"),
            WorkerLine::Diverge(i) => format!("diverge {i}"),
            WorkerLine::Known(c, name) => format!("known {c} {name}"),
            WorkerLine::KnownPrograms(c) => format!("known-programs {c}"),
            WorkerLine::Coverage(counts) => {
                let counts: Vec<String> = counts.iter().map(u64::to_string).collect();
                format!("coverage {}", counts.join(" "))
            }
            WorkerLine::Hang(i, ms) => format!("hang {i} {ms}"),
            WorkerLine::End => "end".to_string(),
        }
    }

    fn parse(line: &str) -> Option<WorkerLine> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let number = |s: &str| s.parse::<u64>().ok();
        Some(match word {
            "done" => WorkerLine::Done(number(rest)?),
            "diverge" => WorkerLine::Diverge(number(rest)?),
            "known" => {
                let (count, name) = rest.split_once(' ')?;
                WorkerLine::Known(number(count)?, name.to_string())
            }
            "known-programs" => WorkerLine::KnownPrograms(number(rest)?),
            "coverage" => WorkerLine::Coverage(rest.split(' ').map(number).collect::<Option<_>>()?),
            "hang" => {
                let (index, ms) = rest.split_once(' ')?;
                WorkerLine::Hang(number(index)?, number(ms)?)
            }
            "end" if rest.is_empty() => WorkerLine::End,
            _ => return None,
        })
    }
}

/// Runs the shard's programs in order on this thread, calling `tick` after each. A program
/// that runs past the timeout is passed to `on_hang`, which must end the process.
fn scan(
    args: &DiffArgs,
    total: u64,
    mut tick: impl FnMut(),
    on_hang: impl Fn(u64, Duration) + Send + 'static,
) -> Findings {
    let (ka, kb) = &args.pair;
    let (k, n) = args.shard;
    let start = (args.first..args.first.saturating_add(n)).find(|i| i % n == k - 1).unwrap_or(u64::MAX);
    let watch = Arc::new(Watch::new());
    let watchdog = {
        let watch = watch.clone();
        let limit = args.timeout;
        std::thread::spawn(move || {
            while !watch.done.load(Ordering::Acquire) {
                // Woken early when the scan ends, so that it does not wait out the period.
                std::thread::park_timeout(Duration::from_millis(100));
                if let Some((index, ran)) = watch.overdue(limit) {
                    on_hang(index, ran);
                }
            }
        })
    };
    let mut counter = args.coverage.then(|| {
        let mut m = Model::new();
        m.enable_coverage();
        m
    });
    let (mut a, mut b): (Boxed, Boxed) = (ka.create().expect("checked"), kb.create().expect("checked"));
    let mut found = Findings::default();
    for j in 0..total {
        let index = start + j * n;
        watch.begin(index);
        let program = generate(args.seed, index, args.config);
        match judge(&program, &mut *a, &mut *b) {
            Verdict::Agree => {}
            Verdict::Known(mut names) => {
                found.known += 1;
                names.sort();
                names.dedup();
                for name in names {
                    *found.known_names.entry(name).or_insert(0) += 1;
                }
            }
            Verdict::Diverge => {
                // A divergence may have been a panic: start again from fresh backends.
                a = ka.create().expect("checked");
                b = kb.create().expect("checked");
                found.divergent.push(index);
            }
        }
        if let Some(m) = &mut counter {
            let case = program.case("generated");
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(&case, &program.options(), &mut [m as &mut dyn javm_engine::Backend])
            }));
        }
        watch.end();
        tick();
    }
    watch.done.store(true, Ordering::Release);
    watchdog.thread().unpark();
    let _ = watchdog.join();
    found.coverage = counter.and_then(|m| m.coverage().cloned()).unwrap_or_default();
    found
}

/// How often a worker reports its progress, in programs.
const DONE_EVERY: u64 = 256;

/// Runs as a worker: the shard's programs, reported on stdout in [`WorkerLine`]s.
fn run_worker(args: &DiffArgs, total: u64) -> i32 {
    let say = |line: WorkerLine| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line.render());
        let _ = out.flush();
    };
    let mut done = 0;
    let found = scan(
        args,
        total,
        || {
            done += 1;
            if done % DONE_EVERY == 0 {
                say(WorkerLine::Done(done));
            }
        },
        move |index, ran| {
            say(WorkerLine::Hang(index, ran.as_millis() as u64));
            std::process::exit(EXIT_FAILED);
        },
    );
    say(WorkerLine::Done(total));
    for &index in &found.divergent {
        say(WorkerLine::Diverge(index));
    }
    if found.known > 0 {
        say(WorkerLine::KnownPrograms(found.known));
    }
    for (name, count) in found.known_names {
        say(WorkerLine::Known(count, name));
    }
    if args.coverage {
        say(WorkerLine::Coverage(found.coverage.counts));
    }
    say(WorkerLine::End);
    if found.divergent.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// The shard `K/N` of worker `t` of `jobs`: the programs of this run's shard whose position
/// in it is `t` modulo `jobs`.
fn worker_shard(args: &DiffArgs, t: u64, jobs: u64) -> String {
    let (k, n) = args.shard;
    format!("{}/{}", k + n * t, n * jobs)
}

/// The arguments that make worker `t` of `jobs` run its part of this run's shard.
fn worker_args(args: &DiffArgs, t: u64, jobs: u64) -> Vec<String> {
    let (a, b) = &args.pair;
    let mut out: Vec<String> = vec![
        "diff".into(),
        "--worker".into(),
        "--jobs".into(),
        "1".into(),
        "--seed".into(),
        args.seed.to_string(),
        "--first".into(),
        args.first.to_string(),
        "--count".into(),
        args.count.to_string(),
        "--shard".into(),
        worker_shard(args, t, jobs),
        "--timeout".into(),
        args.timeout.as_secs_f64().to_string(),
        "--profile".into(),
        args.config.profile.name().to_string(),
        "--gas-model".into(),
        args.config.gas.name().to_string(),
        "--pair".into(),
        format!("{}:{}", a.name(), b.name()),
    ];
    for e in &args.external {
        out.push("--external".into());
        out.push(e.clone());
    }
    if args.config.raw {
        out.push("--raw".into());
    }
    if args.coverage {
        out.push("--coverage".into());
    }
    out
}

/// Kills and reaps every worker still running.
fn stop_all(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Splits the run over `jobs` worker processes and gathers their findings, whether every
/// worker finished and how many programs they ran; `Err` holds the exit code of a run that
/// cannot go on (a hang, or no worker could be started).
fn run_workers(args: &DiffArgs, jobs: u64, bar: &Progress) -> Result<(Findings, bool, u64), i32> {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find this program to start workers: {e}");
            return Err(EXIT_UNUSABLE);
        }
    };
    let (tx, rx) = mpsc::channel::<(usize, Option<String>)>();
    let mut children = Vec::new();
    for t in 0..jobs {
        let spawned = Command::new(&exe)
            .args(worker_args(args, t, jobs))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                eprintln!("error: cannot start a worker ({}): {e}", exe.display());
                stop_all(&mut children);
                return Err(EXIT_UNUSABLE);
            }
        };
        let stdout = child.stdout.take().expect("piped");
        let tx = tx.clone();
        let slot = children.len();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((slot, Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send((slot, None));
        });
        children.push(child);
    }
    drop(tx);
    let mut found = Findings::default();
    let mut done = vec![0u64; children.len()];
    let mut ended = vec![false; children.len()];
    let mut open = children.len();
    while open > 0 {
        let Ok((t, line)) = rx.recv() else { break };
        let Some(line) = line else {
            open -= 1;
            continue;
        };
        match WorkerLine::parse(&line) {
            Some(WorkerLine::Done(n)) => {
                bar.add(n.saturating_sub(done[t]));
                done[t] = done[t].max(n);
            }
            Some(WorkerLine::Diverge(index)) => found.divergent.push(index),
            Some(WorkerLine::KnownPrograms(c)) => found.known += c,
            Some(WorkerLine::Known(c, name)) => *found.known_names.entry(name).or_insert(0) += c,
            Some(WorkerLine::Coverage(counts)) => found.coverage.merge(&Coverage { counts }),
            Some(WorkerLine::Hang(index, ms)) => {
                stop_all(&mut children);
                bar.finish();
                report_hang(args, index, Duration::from_millis(ms));
                return Err(EXIT_FAILED);
            }
            Some(WorkerLine::End) => ended[t] = true,
            None => eprintln!("worker {}: {line}", t + 1),
        }
    }
    let mut complete = true;
    for (t, child) in children.iter_mut().enumerate() {
        let status = child.wait();
        if !ended[t] {
            complete = false;
            let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            let shard = worker_shard(args, t as u64, jobs);
            eprintln!();
            println!(
                "WORKER LOST: the worker running --shard {shard} stopped ({status}) after {} of its programs",
                done[t]
            );
            println!(
                "replay: {} --first {} --count {} --shard {shard} --jobs 1",
                replay_prefix(args),
                args.first,
                args.count
            );
        }
    }
    Ok((found, complete, done.iter().sum()))
}

/// The run's last line: `N programs, D divergences, X programs/s`. A run that lost workers
/// says so there too (how many programs ran), as the last line may be all a CI log shows.
fn summary(total: u64, (complete, ran): (bool, u64), divergences: usize, known: u64, rate: f64) -> String {
    let programs =
        if complete { format!("{total} programs") } else { format!("{total} programs ({ran} run, workers lost)") };
    let known = if known > 0 { format!(", {known} with listed known differences only") } else { String::new() };
    format!("{programs}, {divergences} divergences{known}, {rate:.0} programs/s")
}

/// Runs the command and returns the exit code: 1 when any program diverged.
pub fn run(args: DiffArgs) -> i32 {
    let (ka, kb) = args.pair.clone();
    for k in [&ka, &kb] {
        if let Err(e) = k.create() {
            eprintln!("error: {e}");
            return EXIT_UNUSABLE;
        }
    }
    let (k, n) = args.shard;
    let end = args.first.saturating_add(args.count);
    let total = shard_size(args.first, end, k, n);
    if args.worker {
        return run_worker(&args, total);
    }
    let jobs = (args.jobs.max(1) as u64).min(total.max(1));
    let jobs = if n.checked_mul(jobs).is_some() { jobs } else { 1 };
    let mode = if args.config.raw { "raw bytes" } else { "structured" };
    let shard = if n > 1 { format!(" (shard {k}/{n} of programs {}..{end})", args.first) } else { String::new() };
    let workers = if jobs > 1 { format!(", {jobs} worker processes") } else { String::new() };
    eprintln!(
        "seed {}: {} {mode} programs{shard}, profile {}, gas {:?}, {} vs {}{workers}",
        args.seed,
        total,
        args.config.profile,
        args.config.gas,
        ka.name(),
        kb.name()
    );
    let bar = Progress::new(total, "programs");
    let started = Instant::now();
    // Whether every worker finished, and how many programs ran.
    let (mut found, complete, ran) = if jobs > 1 {
        match run_workers(&args, jobs, &bar) {
            Ok(result) => result,
            Err(code) => return code,
        }
    } else {
        let hang_args = args.clone();
        let found = scan(
            &args,
            total,
            || bar.inc(),
            move |index, ran| {
                report_hang(&hang_args, index, ran);
                std::process::exit(EXIT_FAILED);
            },
        );
        (found, true, total)
    };
    bar.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let config = args.config;
    let seed = args.seed;
    found.divergent.sort_unstable();
    let Findings { divergent, known, known_names, coverage } = found;

    let mut stdout = std::io::stdout().lock();
    if !divergent.is_empty() {
        for &index in divergent.iter().take(args.explain) {
            let (mut a, mut b) = (ka.create().expect("checked"), kb.create().expect("checked"));
            let program = generate(seed, index, config);
            let explanation = explain(&program, &mut *a, &mut *b);
            let _ = writeln!(stdout, "DIVERGENCE seed {seed} program {index}");
            let _ = write!(stdout, "{}", explanation.render(ka.name(), kb.name()));
            let path = repro_path(&args.reports, seed, index, config);
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mut reference = ka.create().expect("checked");
            let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                write_vector(&explanation.minimised, &name, &mut *reference, &path)
            }))
            .unwrap_or_else(|_| Err(std::io::Error::other(format!("{} panicked on this program", ka.name()))));
            match written {
                Ok(()) => {
                    let _ = writeln!(
                        stdout,
                        "repro: {} (replay: javm-harness vectors --backend {},{} {})\n",
                        path.display(),
                        ka.name(),
                        kb.name(),
                        path.display()
                    );
                }
                Err(e) => eprintln!("error: cannot write {}: {e}", path.display()),
            }
        }
        if divergent.len() > args.explain {
            let rest: Vec<String> = divergent.iter().skip(args.explain).take(20).map(|i| i.to_string()).collect();
            let _ = writeln!(stdout, "further divergent programs (not explained): {}", rest.join(", "));
        }
    }
    if !known_names.is_empty() {
        let _ = writeln!(stdout, "listed known differences (programs):");
        let mut by_count: Vec<(&String, &u64)> = known_names.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1));
        for (name, n) in by_count {
            let _ = writeln!(stdout, "  {n:>10}  {name}");
        }
    }
    if args.coverage {
        let _ = write!(stdout, "{}", crate::coverage::render(&coverage, &config, total));
    }
    let rate = ran as f64 / elapsed.max(1e-9);
    let _ = writeln!(stdout, "{}", summary(total, (complete, ran), divergent.len(), known, rate));
    if divergent.is_empty() && complete {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Backends;

    #[test]
    fn the_last_line_says_when_workers_were_lost() {
        assert_eq!(summary(300, (true, 300), 0, 0, 1234.4), "300 programs, 0 divergences, 1234 programs/s");
        assert_eq!(
            summary(300, (true, 300), 2, 5, 10.0),
            "300 programs, 2 divergences, 5 with listed known differences only, 10 programs/s"
        );
        assert_eq!(
            summary(300, (false, 120), 0, 0, 60.0),
            "300 programs (120 run, workers lost), 0 divergences, 60 programs/s"
        );
    }

    fn args(shard: (u64, u64), first: u64, count: u64) -> DiffArgs {
        DiffArgs {
            seed: 1,
            first,
            count,
            shard,
            timeout: Duration::from_secs(10),
            config: GenConfig { profile: javm_engine::Profile::B, gas: crate::vectors::GasChoice::Auto, raw: true },
            pair: Backends::new().pair("interp:model").unwrap(),
            external: vec!["x=some command".into()],
            explain: 3,
            reports: PathBuf::from("reports"),
            coverage: true,
            jobs: 3,
            worker: false,
        }
    }

    fn value_after(args: &[String], flag: &str) -> String {
        let at = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag} missing"));
        args[at + 1].clone()
    }

    #[test]
    fn worker_lines_read_back_as_written() {
        let lines = [
            WorkerLine::Done(256),
            WorkerLine::Diverge(12345),
            WorkerLine::Known(3, "ext: a name with spaces".into()),
            WorkerLine::KnownPrograms(7),
            WorkerLine::Coverage(vec![0, 5, 18446744073709551615]),
            WorkerLine::Hang(40, 1500),
            WorkerLine::End,
        ];
        for line in lines {
            assert_eq!(WorkerLine::parse(&line.render()), Some(line));
        }
        for bad in ["", "done", "done x", "diverge -1", "known 3", "hang 4", "end now", "coverage 1 x", "HANG 4"] {
            assert_eq!(WorkerLine::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn workers_split_a_shard_exactly() {
        for (shard, first, count, jobs) in
            [((1, 1), 0, 1000, 2), ((2, 3), 17, 500, 3), ((4, 4), 5, 3, 2), ((1, 2), 0, 7, 7)]
        {
            let parent = args(shard, first, count);
            let want: Vec<u64> = (first..first + count).filter(|i| i % shard.1 == shard.0 - 1).collect();
            let mut got = Vec::new();
            for t in 0..jobs {
                let argv = worker_args(&parent, t, jobs);
                assert_eq!(argv[..2], ["diff".to_string(), "--worker".to_string()]);
                let (k, n) = value_after(&argv, "--shard")
                    .split_once('/')
                    .map(|(k, n)| (k.parse::<u64>().unwrap(), n.parse::<u64>().unwrap()))
                    .unwrap();
                assert_eq!(value_after(&argv, "--first"), first.to_string());
                got.extend((first..first + count).filter(|i| i % n == k - 1));
            }
            got.sort_unstable();
            assert_eq!(got, want, "shard {shard:?} of {first}+{count} over {jobs} workers");
        }
    }

    #[test]
    fn workers_get_every_setting_of_the_run() {
        let argv = worker_args(&args((1, 1), 0, 10), 0, 2);
        assert_eq!(value_after(&argv, "--pair"), "interp:model");
        assert_eq!(value_after(&argv, "--external"), "x=some command");
        assert_eq!(value_after(&argv, "--profile"), "b");
        assert_eq!(value_after(&argv, "--gas-model"), "auto");
        assert_eq!(value_after(&argv, "--seed"), "1");
        assert_eq!(value_after(&argv, "--timeout").parse::<f64>().unwrap(), 10.0);
        assert!(argv.contains(&"--raw".to_string()) && argv.contains(&"--coverage".to_string()));
    }
}
