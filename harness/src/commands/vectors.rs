//! `javm-harness vectors`: conformance run over vector files.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::progress::Progress;
use crate::report::Summary;
use rayon::prelude::*;

use crate::backends::BackendSpec;
use crate::run::{panic_message, run_case, Outcome, RunOptions};
use crate::vectors::{collect, default_vector_dir, Case, VectorError};

/// Exit code: everything passed.
pub const EXIT_OK: i32 = 0;
/// Exit code: at least one case failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the input could not be used.
pub const EXIT_UNUSABLE: i32 = 2;

pub struct VectorsArgs {
    pub paths: Vec<PathBuf>,
    pub backends: Vec<BackendSpec>,
    pub options: RunOptions,
    pub reports: ReportPaths,
    /// Unknown fields in a vector file are errors (else warnings).
    pub strict: bool,
    /// Write each PVM case's observed outputs (first backend) as a snapshot file here.
    pub snapshots: Option<PathBuf>,
}

/// Where to write reports (each optional).
#[derive(Default)]
pub struct ReportPaths {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

/// Runs the command and returns the process exit code.
pub fn run(args: VectorsArgs) -> i32 {
    for kind in &args.backends {
        if let Err(e) = kind.create() {
            eprintln!("error: {e}");
            return EXIT_UNUSABLE;
        }
    }
    let paths = if args.paths.is_empty() {
        match default_vector_dir() {
            Ok(dir) => {
                eprintln!("using vectors from {}", dir.display());
                vec![dir]
            }
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_UNUSABLE;
            }
        }
    } else {
        args.paths.clone()
    };

    let suite = match load_suite(&paths, &args.options, args.strict, args.snapshots.is_some(), Some(&args.reports)) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_UNUSABLE;
        }
    };
    let names: Vec<&str> = args.backends.iter().map(|k| k.name()).collect();
    let started = Instant::now();
    let outcomes = run_suite(&suite, &args.backends, &args.options);
    if let Some(dir) = &args.snapshots {
        match write_snapshots(dir, &suite.cases, &outcomes[..suite.cases.len()]) {
            Ok(n) => eprintln!("wrote {n} output snapshot(s) to {}", dir.display()),
            Err(e) => {
                eprintln!("error: cannot write snapshots to {}: {e}", dir.display());
                return EXIT_UNUSABLE;
            }
        }
    }
    let elapsed = started.elapsed();

    let mut stdout = std::io::stdout().lock();
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    for o in outcomes.iter().filter(|o| !o.passed) {
        let _ = writeln!(
            stdout,
            "FAIL {} ({}) [profile {}, gas {}]",
            crate::report::terminal(&o.name),
            crate::report::terminal(&o.file),
            o.profile,
            o.gas_model
        );
        for f in &o.failures {
            let _ = writeln!(
                stdout,
                "  {} {}: {}",
                o.step_label(f.step),
                crate::report::terminal(&f.backend),
                crate::report::terminal(&f.difference.to_string())
            );
        }
    }
    let summary = Summary { backends: &names, outcomes: &outcomes, seconds: elapsed.as_secs_f64() };
    let reports = [
        (&args.reports.json, "json"),
        (&args.reports.junit, "junit"),
        (&args.reports.markdown, "markdown"),
        (&args.reports.html, "html"),
    ];
    // Every report is attempted; each one that cannot be written is named, and the summary
    // line is printed whatever happens.
    let mut unwritten = 0;
    for (path, kind) in reports {
        let Some(path) = path else { continue };
        let text = match kind {
            "json" => summary.json(),
            "junit" => summary.junit(),
            "markdown" => summary.markdown(),
            _ => summary.html(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, text) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("error: cannot write the {kind} report {}: {e}", path.display());
                unwritten += 1;
            }
        }
    }
    eprintln!("{} case(s) on {} in {:.2}s", outcomes.len(), names.join(" + "), elapsed.as_secs_f64());
    let not_run = outcomes.iter().filter(|o| o.passed && !o.known.is_empty()).count();
    if not_run > 0 {
        let _ = writeln!(stdout, "known differences (listed, not failures):");
        for o in outcomes.iter().filter(|o| !o.known.is_empty()).take(20) {
            let known: Vec<String> = o.known.iter().map(|k| k.to_string()).collect();
            let _ = writeln!(stdout, "  {}: {}", o.name, known.join("; "));
        }
    }
    let _ = writeln!(
        stdout,
        "{} passed, {} failed{}",
        outcomes.len() - failed - not_run,
        failed,
        if not_run > 0 { format!(", {not_run} with known differences") } else { String::new() }
    );
    if failed > 0 {
        EXIT_FAILED
    } else if unwritten > 0 {
        EXIT_UNUSABLE
    } else {
        EXIT_OK
    }
}

/// Vector files read and checked, ready to run.
pub struct Suite {
    pub cases: Vec<Case>,
    pub kernel: Vec<crate::kernel_vectors::KernelVector>,
}

/// Reads every vector file below `paths`, printing warnings (walk, unknown fields) and each
/// unusable file's error on stderr. `Err` says how many files could not be used (nothing
/// should run then). `unasserted` accepts files that assert nothing (for snapshots).
pub fn load_suite(
    paths: &[PathBuf],
    options: &RunOptions,
    strict: bool,
    unasserted: bool,
    reports: Option<&ReportPaths>,
) -> Result<Suite, String> {
    let mut files = Vec::new();
    for path in paths {
        match collect(path) {
            Ok(walk) => {
                for w in &walk.warnings {
                    eprintln!("warning: {w}");
                }
                files.extend(walk.files);
            }
            Err(e) => return Err(format!("error: {e}")),
        }
    }
    {
        // The same file named twice (or reached through two PATH arguments) runs once.
        let mut seen = std::collections::BTreeSet::new();
        files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    }
    if let Some(reports) = reports {
        reports.check(&files).map_err(|e| format!("error: {e}"))?;
    }
    // Each file is read once; its fields say which kind of vector it is.
    let mut kernel = Vec::new();
    let mut loaded = Vec::with_capacity(files.len());
    for result in files.par_iter().map(|f| load_any(f)).collect::<Vec<_>>() {
        match result {
            Ok(AnyVector::Kernel(v)) => kernel.push(*v),
            Ok(AnyVector::Pvm(c)) => loaded.push(Ok(*c)),
            Err(e) => loaded.push(Err(e)),
        }
    }
    let mut cases: Vec<Case> = Vec::with_capacity(loaded.len());
    let mut bad = 0;
    let mut warned = std::collections::BTreeSet::new();
    for result in loaded {
        match result {
            Ok(c) if c.asserts_nothing && !unasserted => {
                eprintln!(
                    "error: {}: asserts nothing: no assert step checks any field, so it cannot pass or fail (`--snapshots DIR` records its outputs instead)",
                    c.path.display()
                );
                bad += 1;
            }
            Ok(c) if strict && !c.unknown_fields.is_empty() => {
                eprintln!("error: {}: unknown field `{}` (--strict)", c.path.display(), c.unknown_fields.join("`, `"));
                bad += 1;
            }
            Ok(c) => {
                for field in &c.unknown_fields {
                    // Once per field per run, whatever its index in an array.
                    let pattern = strip_indices(field);
                    if warned.insert(pattern.clone()) {
                        eprintln!(
                            "warning: {}: unknown field `{field}` ignored (further files with `{pattern}` are not named; --strict makes it an error)",
                            c.path.display()
                        );
                    }
                }
                cases.push(c)
            }
            Err(e) => {
                eprintln!("error: {e}");
                bad += 1;
            }
        }
    }
    for case in &cases {
        if let Err(e) = crate::run::case_config(case, options) {
            eprintln!("error: {}: {e}", case.path.display());
            bad += 1;
        }
    }
    if bad > 0 {
        return Err(format!("{bad} file(s) could not be used as test vectors; nothing was run"));
    }
    Ok(Suite { cases, kernel })
}

/// Runs a suite on the given backends (in lockstep, compared after every run): the PVM
/// cases' outcomes in order, then the kernel vectors' (on the backends that can be kernel
/// frames). Shows progress on stderr.
pub fn run_suite(suite: &Suite, kinds: &[BackendSpec], options: &RunOptions) -> Vec<Outcome> {
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    if !std::io::stderr().is_terminal() {
        eprintln!("running {} case(s) on {}", suite.cases.len() + suite.kernel.len(), names.join(" + "));
    }
    let bar = Progress::new(suite.cases.len() as u64, "cases");
    let mut outcomes: Vec<Outcome> = suite
        .cases
        .par_iter()
        .map_init(
            || kinds.iter().map(|k| k.create().expect("checked above")).collect::<Vec<_>>(),
            |backends, case| {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut refs: Vec<&mut dyn javm_engine::Backend> =
                        backends.iter_mut().map(|b| &mut **b as &mut dyn javm_engine::Backend).collect();
                    run_case(case, options, &mut refs)
                }));
                let outcome = run.unwrap_or_else(|payload| {
                    // The backends' state is unknown after a panic: start again from fresh ones.
                    *backends = kinds.iter().map(|k| k.create().expect("created before")).collect();
                    Outcome::crashed(case, &names.join(","), panic_message(&*payload))
                });
                bar.inc();
                outcome
            },
        )
        .collect();
    bar.finish();
    // Kernel vectors run on the backends that can be kernel frames.
    let frames: Vec<_> = kinds.iter().filter(|k| k.supports().kernel_frame).cloned().collect();
    if !suite.kernel.is_empty() && frames.len() < kinds.len() {
        let left: Vec<&str> = kinds.iter().filter(|k| !k.supports().kernel_frame).map(|k| k.name()).collect();
        eprintln!("kernel vectors are not run on {} (not usable as kernel frames)", left.join(", "));
    }
    if !suite.kernel.is_empty() && !frames.is_empty() {
        outcomes.extend(crate::kernel_vectors::run_kernel_vectors(&suite.kernel, &frames));
    }
    outcomes
}

/// Writes `DIR/<case>.snap` for every case (names made file-safe; a repeated name gets a
/// numbered suffix).
fn write_snapshots(dir: &std::path::Path, cases: &[Case], outcomes: &[Outcome]) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut used = std::collections::BTreeSet::new();
    for (case, outcome) in cases.iter().zip(outcomes) {
        let base = crate::snapshot::file_name(&case.name);
        let mut name = base.clone();
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{}-{k}.snap", base.trim_end_matches(".snap"));
            k += 1;
        }
        std::fs::write(dir.join(&name), crate::snapshot::render_outcome(case, outcome))?;
    }
    Ok(used.len())
}

/// A JSON path with its array indices removed (`steps[3].assert.x` → `steps[].assert.x`).
fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

impl ReportPaths {
    /// Refuses, before anything runs, a report that would overwrite an input file and two
    /// reports written to one path.
    pub fn check(&self, inputs: &[PathBuf]) -> Result<(), String> {
        let canonical = |p: &std::path::Path| -> PathBuf {
            // The report may not exist yet: canonicalise its folder and keep its name.
            match (p.parent().filter(|d| !d.as_os_str().is_empty()), p.file_name()) {
                (Some(dir), Some(name)) => std::fs::canonicalize(dir).map(|d| d.join(name)).unwrap_or(p.to_path_buf()),
                (None, Some(name)) => std::env::current_dir().map(|d| d.join(name)).unwrap_or(p.to_path_buf()),
                _ => p.to_path_buf(),
            }
        };
        let inputs: std::collections::BTreeSet<PathBuf> =
            inputs.iter().map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())).collect();
        let mut seen: Vec<(PathBuf, &str)> = Vec::new();
        for (path, flag) in
            [(&self.json, "--json"), (&self.junit, "--junit"), (&self.markdown, "--markdown"), (&self.html, "--html")]
        {
            let Some(path) = path else { continue };
            if let Ok(meta) = std::fs::metadata(path) {
                if !meta.is_file() {
                    return Err(format!(
                        "{flag} {} exists and is not a regular file (a folder, a FIFO or a device); name a file",
                        path.display()
                    ));
                }
            }
            let real = canonical(path);
            if inputs.contains(&real) {
                return Err(format!(
                    "{flag} {} is one of the input vector files; refusing to overwrite it",
                    path.display()
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(p, _)| *p == real) {
                return Err(format!("{flag} and {other} both name {}; give each report its own file", path.display()));
            }
            seen.push((real, flag));
        }
        Ok(())
    }
}

/// A vector file of either kind, read once.
enum AnyVector {
    Pvm(Box<Case>),
    Kernel(Box<crate::kernel_vectors::KernelVector>),
}

/// Reads one vector file, a PVM vector or a kernel vector, deciding by its fields.
fn load_any(path: &std::path::Path) -> Result<AnyVector, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let text = crate::input::read_text(path).map_err(err)?;
    if crate::vectors::is_kernel_text(&text) {
        crate::kernel_vectors::parse_kernel_vector(&text, path).map(|v| AnyVector::Kernel(Box::new(v))).map_err(err)
    } else {
        crate::vectors::parse_case_text(&text, path).map(|c| AnyVector::Pvm(Box::new(c))).map_err(err)
    }
}
