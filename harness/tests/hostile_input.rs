//! Careless and hostile input: every case gets a clear message and exit code 2 (or the right
//! verdict), quickly and in bounded memory, never a panic, a hang or a blow-up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a run of the binary did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    seconds: f64,
    /// Peak resident memory in KiB, sampled from /proc while it ran (0 where unavailable).
    peak_kib: u64,
}

fn harness(args: &[&str]) -> Ran {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_javm-harness"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let status = format!("/proc/{}/status", child.id());
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let mut peak_kib = 0;
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            let hwm = text.lines().find(|l| l.starts_with("VmHWM:"));
            if let Some(kib) = hwm.and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()) {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ran {
        code,
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        seconds: started.elapsed().as_secs_f64(),
        peak_kib,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("javm-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const REGS0: &str = "[0,0,0,0,0,0,0,0,0,0,0,0,0]";

/// A w3f v0.4 vector around `load_imm r7, 5` (then the implicit trap at pc 3), with the
/// given page map and initial memory.
fn w3f(page_map: &str, memory: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "tiny", "initial-regs": {REGS0}, "initial-pc": 0,
            "initial-page-map": {page_map}, "initial-memory": {memory}, "initial-gas": 100,
            "program": [0, 0, 3, 51, 7, 5, 1], "expected-status": "panic",
            "expected-regs": [0,0,0,0,0,0,0,5,0,0,0,0,0], "expected-pc": 3,
            "expected-memory": [], "expected-gas": 98{extra}}}"#
    )
}

/// `ecalli 9` then the implicit trap, as other generators write it: spectool statuses in
/// the w3f v0.4 format, with `expected-hostcall`.
fn w3f_ecalli(hostcall: u32) -> String {
    format!(
        r#"{{"name": "host", "initial-regs": {REGS0}, "initial-pc": 0, "initial-page-map": [],
            "initial-memory": [], "initial-gas": 100, "program": [0, 0, 2, 10, 9, 1],
            "expected-status": "ecalli", "expected-hostcall": {hostcall}, "expected-regs": {REGS0},
            "expected-pc": 0, "expected-memory": [], "expected-gas": 98}}"#
    )
}

/// Memory stays bounded (time is measured by benchmarks, not here; a run that does not end
/// within a minute fails as a hang).
fn bounded(r: &Ran) {
    assert!(r.peak_kib < 1024 * 1024, "peak {} KiB after {:.1} s", r.peak_kib, r.seconds);
}

fn unusable(r: &Ran, message: &str) {
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains(message), "stderr should say {message:?}: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    bounded(r);
}

#[test]
fn ecalli_and_out_of_gas_in_the_v04_format_are_read_and_the_host_call_compared() {
    let dir = scratch("ecalli");
    let good = write(&dir, "good.json", &w3f_ecalli(9));
    let r = harness(&["vectors", &good]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let bad = write(&dir, "bad.json", &w3f_ecalli(8));
    let r = harness(&["vectors", &bad]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("run interp: hostcall: expected 8, got 9"), "{}", r.stdout);
    let oog = w3f("[]", "[]", "")
        .replace(r#""initial-gas": 100"#, r#""initial-gas": 0"#)
        .replace(r#""expected-status": "panic""#, r#""expected-status": "out-of-gas""#);
    let oog = oog.replace(
        r#""expected-regs": [0,0,0,0,0,0,0,5,0,0,0,0,0], "expected-pc": 3"#,
        &format!(r#""expected-regs": {REGS0}, "expected-pc": 0"#),
    );
    let oog = oog.replace(r#""expected-gas": 98"#, r#""expected-gas": 0"#);
    let f = write(&dir, "oog.json", &oog);
    let r = harness(&["vectors", &f]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn the_earlier_spectool_variant_is_read() {
    let dir = scratch("draft");
    let f = write(
        &dir,
        "draft.json",
        r#"{"name": "draft", "initial-pc": 0, "initial-gas": 10000,
            "program": [0, 0, 5, 55, 7, 0, 0, 2, 1],
            "steps": [
              {"kind": "map", "address": 131072, "length": 4096, "is_writable": true},
              {"kind": "write", "address": 131072, "contents": [129, 130]},
              {"kind": "set-reg", "reg": 7, "value": 3735928559},
              {"kind": "run"},
              {"kind": "assert", "status": "panic", "pc": 5,
               "regs": [0,0,0,0,0,0,0,18446744073709519489,0,0,0,0,0],
               "memory": [{"address": 131072, "contents": [129, 130]}]}
            ],
            "block-gas-costs": {"0": 25}}"#,
    );
    let r = harness(&["vectors", &f, "--json", &dir.join("out.json").display().to_string()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = std::fs::read_to_string(dir.join("out.json")).unwrap();
    assert!(report.contains("\"format\": \"spectool-draft\""), "{report}");
}

#[test]
fn unknown_fields_warn_once_and_strict_makes_them_errors() {
    let dir = scratch("unknown");
    write(&dir, "a.json", &w3f("[]", "[]", r#", "comment": "x""#));
    write(&dir, "b.json", &w3f("[]", "[]", r#", "comment": "y""#));
    let folder = dir.display().to_string();
    let r = harness(&["vectors", &folder]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.matches("unknown field `comment`").count(), 1, "{}", r.stderr);
    assert!(r.stdout.ends_with("2 passed, 0 failed\n"), "{}", r.stdout);
    let r = harness(&["vectors", &folder, "--strict"]);
    unusable(&r, "unknown field `comment` (--strict)");
}

#[test]
fn setup_that_cannot_be_carried_out_is_unusable_input_naming_the_field() {
    let dir = scratch("setup");
    let page = r#"[{"address": 131072, "length": 4096, "is-writable": true}]"#;
    let cases = [
        (w3f("[]", r#"[{"address": 131072, "contents": [1]}]"#, ""), "initial-memory[0]: writes 0x20000..0x20001"),
        (w3f(page, r#"[{"address": 135168, "contents": [1]}]"#, ""), "0x21000 is not in a mapped page"),
        (
            w3f(
                r#"[{"address": 4294963200, "length": 4096, "is-writable": true}]"#,
                r#"[{"address": 4294967295, "contents": [1, 2]}]"#,
                "",
            ),
            "run past the 32-bit address space",
        ),
        (
            w3f(r#"[{"address": 131073, "length": 4096, "is-writable": true}]"#, "[]", ""),
            "initial-page-map[0]: address 0x20001 is not page-aligned",
        ),
        (
            w3f(r#"[{"address": 131072, "length": 0, "is-writable": true}]"#, "[]", ""),
            "length 0x0 is not a positive multiple",
        ),
        (
            w3f(r#"[{"address": 131072, "length": 100, "is-writable": true}]"#, "[]", ""),
            "length 0x64 is not a positive multiple",
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let f = write(&dir, &format!("c{i}.json"), text);
        unusable(&harness(&["vectors", &f]), message);
    }
    let spectool = |steps: &str| {
        format!(
            r#"{{"name": "s", "initial-pc": 0, "initial-gas": 10, "program": [0, 0, 1, 0, 1],
                "block-gas-costs": [{{"pc": 0, "cost": 1}}], "steps": {steps}}}"#
        )
    };
    let f = write(&dir, "noassert.json", &spectool(r#"[{"run": {}}]"#));
    unusable(&harness(&["vectors", &f]), "asserts nothing");
    let snaps = dir.join("snaps");
    let r = harness(&["vectors", &f, "--snapshots", &snaps.display().to_string()]);
    assert_eq!(r.code, 0, "with --snapshots it runs for its outputs: {}{}", r.stdout, r.stderr);
    let snap = std::fs::read_to_string(snaps.join("s.snap")).unwrap();
    assert!(snap.contains("run 0: panic (trap) at pc 0, gas 9"), "{snap}");
    let f = write(&dir, "emptyassert.json", &spectool(r#"[{"run": {}}, {"assert": {}}]"#));
    unusable(&harness(&["vectors", &f]), "asserts nothing");
    let f = write(&dir, "early.json", &spectool(r#"[{"assert": {"status": "panic"}}, {"run": {}}]"#));
    unusable(&harness(&["vectors", &f]), "steps[0].assert: assert before any run");
    let f = write(
        &dir,
        "gas.json",
        &w3f("[]", "[]", "").replace(r#""initial-gas": 100"#, r#""initial-gas": 9223372036854775808"#),
    );
    let r = harness(&["vectors", &f]);
    unusable(&r, "field `initial-gas`");
    assert!(r.stderr.contains("expected i64") && r.stderr.contains("line 2 column"), "{}", r.stderr);
}

#[test]
fn huge_mappings_cost_what_the_program_touches() {
    let dir = scratch("huge");
    let all = r#"[{"address": 65536, "length": 4294901760, "is-writable": true}]"#;
    let f = write(&dir, "big.json", &w3f(all, "[]", ""));
    for backend in ["interp", "jit", "model", "interp,jit"] {
        let r = harness(&["vectors", &f, "--backend", backend]);
        assert_eq!(r.code, 0, "{backend}: {}{}", r.stdout, r.stderr);
        bounded(&r);
    }
    let f = write(
        &dir,
        "bigstep.json",
        r#"{"name": "s", "initial-pc": 0, "initial-gas": 10, "program": [0, 0, 1, 0, 1],
            "block-gas-costs": [{"pc": 0, "cost": 1}],
            "steps": [{"map": {"address": 65536, "length": 4294901760, "is-writable": false}},
                      {"run": {}}, {"assert": {"status": "panic", "pc": 0, "gas": 9}}]}"#,
    );
    let r = harness(&["vectors", &f, "--backend", "both"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    bounded(&r);

    // Work multiplied by repetition is refused before anything runs.
    let spectool = |steps: String| {
        format!(
            r#"{{"name": "s", "initial-pc": 0, "initial-gas": 10, "program": [0, 0, 1, 0, 1],
                "block-gas-costs": [{{"pc": 0, "cost": 1}}], "steps": [{steps}]}}"#
        )
    };
    let big = r#"{"map": {"address": 65536, "length": 4294901760, "is-writable": true}}"#;
    let maps = vec![big; 40].join(",") + r#", {"run": {}}, {"assert": {"status": "panic"}}"#;
    let f = write(&dir, "maps.json", &spectool(maps));
    unusable(&harness(&["vectors", &f]), "map more than");
    let runs = format!("{big}, {}", vec![r#"{"run": {}}, {"assert": {"status": "panic"}}"#; 200].join(","));
    let f = write(&dir, "runs.json", &spectool(runs));
    unusable(&harness(&["vectors", &f]), "observe more than");
}

#[cfg(unix)]
#[test]
fn fifos_devices_and_link_loops_never_hang_or_blow_up() {
    let dir = scratch("fs");
    std::fs::create_dir_all(dir.join("fifo")).unwrap();
    write(&dir.join("fifo"), "ok.json", &w3f("[]", "[]", ""));
    let fifo = dir.join("fifo/x.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    unusable(&harness(&["vectors", &dir.join("fifo").display().to_string()]), "a FIFO (only regular files are read)");
    unusable(&harness(&["vectors", &fifo.display().to_string()]), "a FIFO (expected a vector file or a folder)");

    std::fs::create_dir_all(dir.join("loops/a/b")).unwrap();
    write(&dir.join("loops/a/b"), "v.json", &w3f("[]", "[]", ""));
    std::os::unix::fs::symlink(dir.join("loops/a"), dir.join("loops/a/b/up")).unwrap();
    std::os::unix::fs::symlink(dir.join("loops/a"), dir.join("loops/a/b/up2")).unwrap();
    std::os::unix::fs::symlink(dir.join("loops"), dir.join("loops/a/top")).unwrap();
    let r = harness(&["vectors", &dir.join("loops").display().to_string()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.ends_with("1 passed, 0 failed\n"), "{}", r.stdout);
    assert!(r.stderr.contains("already searched"), "{}", r.stderr);
    bounded(&r);

    std::fs::create_dir_all(dir.join("dev")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("dev/zero.json")).unwrap();
    unusable(&harness(&["vectors", &dir.join("dev").display().to_string()]), "a character device");
    unusable(&harness(&["asm", "/dev/zero"]), "a character device");
    unusable(&harness(&["disasm", "/dev/zero"]), "a character device");
}

#[test]
fn oversized_files_are_refused_before_reading() {
    let dir = scratch("size");
    let f = dir.join("big.json");
    std::fs::File::create(&f).unwrap().set_len(65 << 20).unwrap();
    unusable(&harness(&["vectors", &f.display().to_string()]), "size limit");
    unusable(&harness(&["disasm", &f.display().to_string()]), "size limit");
}

#[test]
fn a_large_file_costs_a_few_times_its_size_not_a_tree_of_values() {
    let dir = scratch("large");
    // 28 million program bytes as JSON numbers: 56 MB of text, under the 64 MiB limit.
    let zeros = ",0".repeat(28_000_000);
    let text = w3f("[]", "[]", "").replace("[0, 0, 3, 51, 7, 5, 1]", &format!("[0, 0, 3, 51, 7, 5, 1{zeros}]"));
    let f = write(&dir, "large.json", &text);
    let r = harness(&["vectors", &f]);
    assert!(r.code == 0 || r.code == 1, "{}{}", r.stdout, r.stderr);
    assert!(r.peak_kib < 400 * 1024, "peak {} KiB for a {} MB file", r.peak_kib, text.len() >> 20);
}

#[test]
fn unknown_fields_are_found_at_any_depth() {
    let dir = scratch("deep-unknown");
    let f = write(
        &dir,
        "s.json",
        r#"{"name": "s", "initial-pc": 0, "initial-gas": 10, "program": [0, 0, 1, 0, 1],
            "block-gas-costs": [{"pc": 0, "cost": 1, "extra": 2}],
            "steps": [{"run": {}}, {"assert": {"status": "panic", "memory": [], "foo": 3}}]}"#,
    );
    let r = harness(&["vectors", &f]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("`block-gas-costs[0].extra`"), "{}", r.stderr);
    assert!(r.stderr.contains("`steps[1].foo`"), "{}", r.stderr);
    let f = write(
        &dir,
        "d.json",
        r#"{"name": "d", "initial-pc": 0, "initial-gas": 10, "program": [0, 0, 1, 0, 1],
            "block-gas-costs": {"0": 1}, "steps": [{"kind": "run", "zzz": 1}, {"kind": "assert", "status": "panic"}]}"#,
    );
    let r = harness(&["vectors", &f]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("`steps[0].zzz`"), "{}", r.stderr);
    let f = write(
        &dir,
        "bad-kind.json",
        r#"{"name": "d", "initial-pc": 0, "initial-gas": 10, "program": [0, 0, 1, 0, 1],
            "block-gas-costs": {"0": 1}, "steps": [{"kind": "jump"}]}"#,
    );
    unusable(&harness(&["vectors", &f]), "steps[0]: unknown step kind \"jump\"");
}

#[test]
fn deeply_nested_kernel_references_are_an_error_not_a_crash() {
    let dir = scratch("nest");
    let mut name = "OOG".to_string();
    for _ in 0..30_000 {
        name = format!("pair:OOG,{name}");
    }
    let text = format!(
        r#"{{"kernel": 1, "name": "deep", "caps": {{"img": {{"image": {{"code": "ecalli 0"}}}},
            "cn": {{"cnode": {{"size_log": 2, "slots": {{"0": "{name}"}}}}}},
            "main": {{"instance": {{"image": "img", "cnode": "cn"}}}}}},
            "legs": [{{"invoke": {{"instance": "main", "gas": 100}}, "expect": {{"result": "halt"}}}}]}}"#
    );
    let f = write(&dir, "deep.json", &text);
    let r = harness(&["vectors", &f]);
    unusable(&r, "nest deeper than");
    assert!(r.stderr.len() < 2000, "the message quotes the reference in full: {} bytes", r.stderr.len());
}

#[test]
fn run_counts_that_size_allocations_are_validated() {
    for runs in ["--runs=4294967295", "--runs=0", "--runs=-1", "--runs=many"] {
        let r = harness(&["bench", runs]);
        unusable(&r, "--runs");
    }
}

#[test]
fn reports_never_overwrite_inputs_and_every_report_is_attempted() {
    let dir = scratch("reports");
    let input = write(&dir, "v.json", &w3f("[]", "[]", ""));
    let before = std::fs::read_to_string(&input).unwrap();
    unusable(&harness(&["vectors", &input, "--json", &input]), "is one of the input vector files");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), before);
    #[cfg(unix)]
    {
        let fifo = dir.join("report.fifo");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        unusable(&harness(&["vectors", &input, "--junit", &fifo.display().to_string()]), "not a regular file");
        unusable(&harness(&["vectors", &input, "--json", &dir.display().to_string()]), "not a regular file");
    }
    let same = dir.join("r.xml").display().to_string();
    unusable(&harness(&["vectors", &input, "--junit", &same, "--html", &same]), "both name");
    let blocked = dir.join("file-not-folder");
    std::fs::write(&blocked, "").unwrap();
    let md = dir.join("ok.md").display().to_string();
    let r = harness(&["vectors", &input, "--json", &blocked.join("x.json").display().to_string(), "--markdown", &md]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("cannot write the json report"), "{}", r.stderr);
    assert!(Path::new(&md).exists(), "the other report is still written");
    assert!(r.stdout.ends_with("1 passed, 0 failed\n"), "the summary line is printed: {}", r.stdout);
}

#[test]
fn control_characters_in_names_reach_no_report_or_terminal_raw() {
    let dir = scratch("names");
    let text = w3f("[]", "[]", "").replace(r#""name": "tiny""#, r#""name": "evil\u001b[2J\u0000<x>|""#);
    let text = text.replace(r#""expected-gas": 98"#, r#""expected-gas": 97"#);
    let input = write(&dir, "v.json", &text);
    let junit = dir.join("r.xml");
    let html = dir.join("r.html");
    let md = dir.join("r.md");
    let r = harness(&[
        "vectors",
        &input,
        "--junit",
        &junit.display().to_string(),
        "--html",
        &html.display().to_string(),
        "--markdown",
        &md.display().to_string(),
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    for text in [r.stdout.clone(), std::fs::read_to_string(&junit).unwrap(), std::fs::read_to_string(&html).unwrap()] {
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
    }
    assert!(r.stdout.contains("FAIL evil\\u{1b}[2J\\u{0}<x>|"), "{}", r.stdout);
    assert!(std::fs::read_to_string(&md).unwrap().contains("evil\\\\u{1b}\\[2J\\\\u{0}&lt;x&gt;\\|"));
}
