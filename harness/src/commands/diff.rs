//! `javm-harness diff`: generated programs through two backends, divergences explained.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::progress::Progress;
use rayon::prelude::*;

use crate::backends::{BackendSpec, Boxed};
use crate::commands::vectors::{EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE};
use crate::diff::{explain, generate, judge, repro_path, write_vector, Verdict};
use crate::generator::GenConfig;
use crate::run::run_case;
use javm_model::coverage::Coverage;
use javm_model::Model;

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
    /// How many divergences to minimise and explain.
    pub explain: usize,
    pub reports: PathBuf,
    /// Also run every program on a rule-counting reference model and print the coverage.
    pub coverage: bool,
}

/// One worker's backends and findings.
struct Worker {
    a: Boxed,
    b: Boxed,
    counter: Option<Model>,
    divergent: Vec<u64>,
    known: u64,
    /// Programs per known-difference name.
    known_names: std::collections::BTreeMap<String, u64>,
}

/// What each worker thread is running: the program index plus one (0 = idle) and when it
/// started, in milliseconds since the run began.
struct Watch {
    started: Instant,
    slots: Vec<(AtomicU64, AtomicU64)>,
    done: AtomicBool,
}

impl Watch {
    fn new(threads: usize) -> Watch {
        Watch {
            started: Instant::now(),
            slots: (0..threads.max(1)).map(|_| (AtomicU64::new(0), AtomicU64::new(0))).collect(),
            done: AtomicBool::new(false),
        }
    }

    fn slot(&self) -> Option<&(AtomicU64, AtomicU64)> {
        self.slots.get(rayon::current_thread_index().unwrap_or(0))
    }

    fn begin(&self, index: u64) {
        if let Some((program, since)) = self.slot() {
            since.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
            program.store(index + 1, Ordering::Release);
        }
    }

    fn end(&self) {
        if let Some((program, _)) = self.slot() {
            program.store(0, Ordering::Release);
        }
    }

    /// The first program running for longer than `limit`, with how long it has run.
    fn overdue(&self, limit: Duration) -> Option<(u64, Duration)> {
        let now = self.started.elapsed().as_millis() as u64;
        self.slots.iter().find_map(|(program, since)| {
            let index = program.load(Ordering::Acquire).checked_sub(1)?;
            let ran = Duration::from_millis(now.saturating_sub(since.load(Ordering::Relaxed)));
            (ran > limit).then_some((index, ran))
        })
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
    format!(
        "javm-harness diff --pair {}:{} --profile {} --gas-model {gas}{} --seed {}",
        a.name(),
        b.name(),
        args.config.profile.name(),
        if args.config.raw { " --raw" } else { "" },
        args.seed
    )
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
    let mode = if args.config.raw { "raw bytes" } else { "structured" };
    let (k, n) = args.shard;
    let in_shard = move |i: &u64| i % n == k - 1;
    let end = args.first.saturating_add(args.count);
    let total = shard_size(args.first, end, k, n);
    let shard = if n > 1 { format!(" (shard {k}/{n} of programs {}..{end})", args.first) } else { String::new() };
    eprintln!(
        "seed {}: {} {mode} programs{shard}, profile {}, gas {:?}, {} vs {}",
        args.seed,
        total,
        args.config.profile,
        args.config.gas,
        ka.name(),
        kb.name()
    );
    let bar = Progress::new(total, "programs");
    let started = Instant::now();
    let watch = Arc::new(Watch::new(rayon::current_num_threads()));
    let watchdog = {
        let watch = watch.clone();
        let limit = args.timeout;
        let replay = replay_prefix(&args);
        std::thread::spawn(move || {
            while !watch.done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
                if let Some((index, ran)) = watch.overdue(limit) {
                    eprintln!();
                    println!(
                        "HANG program {index}: no result after {:.1}s (limit {:.1}s, --timeout)",
                        ran.as_secs_f64(),
                        limit.as_secs_f64()
                    );
                    println!("replay: {replay} --first {index} --count 1");
                    let _ = std::io::stdout().flush();
                    std::process::exit(EXIT_FAILED);
                }
            }
        })
    };
    let config = args.config;
    let seed = args.seed;
    let new_worker = || {
        let counter = args.coverage.then(|| {
            let mut m = Model::new();
            m.enable_coverage();
            m
        });
        Worker {
            a: ka.create().expect("checked above"),
            b: kb.create().expect("checked above"),
            counter,
            divergent: Vec::new(),
            known: 0,
            known_names: Default::default(),
        }
    };
    // The shard's indices, as an indexed range (so rayon splits it evenly).
    let start = (args.first..args.first.saturating_add(n)).find(|i| in_shard(i)).unwrap_or(end);
    let (mut divergent, known, coverage) = (0..total)
        .into_par_iter()
        .map(|j| start + j * n)
        .fold(new_worker, |mut w, index| {
            watch.begin(index);
            let program = generate(seed, index, config);
            match judge(&program, &mut *w.a, &mut *w.b) {
                Verdict::Agree => {}
                Verdict::Known(names) => {
                    w.known += 1;
                    let mut names = names;
                    names.sort();
                    names.dedup();
                    for n in names {
                        *w.known_names.entry(n).or_insert(0) += 1;
                    }
                }
                Verdict::Diverge => {
                    // A divergence may have been a panic: start again from fresh backends.
                    w.a = ka.create().expect("checked above");
                    w.b = kb.create().expect("checked above");
                    w.divergent.push(index);
                }
            }
            if let Some(m) = &mut w.counter {
                let case = program.case("generated");
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_case(&case, &program.options(), &mut [m as &mut dyn javm_engine::Backend])
                }));
            }
            watch.end();
            bar.inc();
            w
        })
        .map(|w| {
            let coverage = w.counter.and_then(|m| m.coverage().cloned()).unwrap_or_default();
            (w.divergent, (w.known, w.known_names), coverage)
        })
        .reduce(
            || (Vec::new(), (0, Default::default()), Coverage::default()),
            |(mut d, (k, mut names), mut c), (d2, (k2, names2), c2)| {
                d.extend(d2);
                c.merge(&c2);
                for (n, v) in names2 {
                    *names.entry(n).or_insert(0) += v;
                }
                (d, (k + k2, names), c)
            },
        );
    let (known, known_names) = known;
    watch.done.store(true, Ordering::Release);
    let _ = watchdog.join();
    bar.finish();
    let elapsed = started.elapsed().as_secs_f64();
    divergent.sort_unstable();

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
    let rate = total as f64 / elapsed.max(1e-9);
    let known = if known > 0 { format!(", {known} with listed known differences only") } else { String::new() };
    let _ = writeln!(stdout, "{} programs, {} divergences{known}, {:.0} programs/s", total, divergent.len(), rate);
    if divergent.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}
