//! The `javm-harness` command line: output, exit codes and error messages.

use std::path::{Path, PathBuf};
use std::process::Command;

fn harness(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_javm-harness")).args(args).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("javm-harness-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A w3f v0.4 vector: `load_imm r7, 5` then the implicit trap at pc 3.
fn w3f_vector(expected_r7: u64) -> String {
    format!(
        r#"{{"name": "tiny", "initial-regs": [0,0,0,0,0,0,0,0,0,0,0,0,0], "initial-pc": 0,
            "initial-page-map": [], "initial-memory": [], "initial-gas": 100,
            "program": [0, 0, 3, 51, 7, 5, 1], "expected-status": "panic",
            "expected-regs": [0,0,0,0,0,0,0,{expected_r7},0,0,0,0,0], "expected-pc": 3,
            "expected-memory": [], "expected-gas": 98}}"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_passing_vector_exits_0_with_the_summary_line() {
    let dir = scratch("pass");
    let file = write(&dir, "tiny.json", &w3f_vector(5));
    let (code, stdout, _) = harness(&["vectors", &file]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.lines().last(), Some("1 passed, 0 failed"));
}

#[test]
fn a_failing_vector_exits_1_and_names_every_differing_field() {
    let dir = scratch("fail");
    let file = write(&dir, "tiny.json", &w3f_vector(6));
    let (code, stdout, _) = harness(&["vectors", &file]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL tiny"), "{stdout}");
    assert!(stdout.contains("r7: expected 0x6, got 0x5"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"));
}

#[test]
fn malformed_json_exits_2_naming_the_file_and_the_problem() {
    let dir = scratch("malformed");
    let file = write(&dir, "broken.json", "{\"name\": ");
    let (code, _, stderr) = harness(&["vectors", &file]);
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.json") && stderr.contains("malformed JSON"), "{stderr}");
    let file = write(&dir, "short.json", r#"{"expected-status": "halt", "name": "x"}"#);
    let (code, _, stderr) = harness(&["vectors", &file]);
    assert_eq!(code, 2);
    assert!(stderr.contains("short.json") && stderr.contains("missing field"), "{stderr}");
}

#[test]
fn a_missing_path_exits_2() {
    let (code, _, stderr) = harness(&["vectors", "/nonexistent/vectors"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/vectors"), "{stderr}");
}

#[test]
fn a_bad_option_exits_2() {
    let (code, _, _) = harness(&["vectors", "--profile", "q"]);
    assert_eq!(code, 2);
}

#[test]
fn json_report_lists_every_case() {
    let dir = scratch("json");
    write(&dir, "a.json", &w3f_vector(5));
    write(&dir, "b.json", &w3f_vector(7));
    let report = dir.join("report.json");
    let (code, _, _) = harness(&["vectors", dir.to_str().unwrap(), "--json", report.to_str().unwrap()]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["passed"], 1);
    assert_eq!(json["failed"], 1);
    let cases = json["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[1]["failures"][0]["field"], "r7");
}

#[test]
fn the_gas_model_can_be_forced() {
    let dir = scratch("gas");
    let file = write(&dir, "tiny.json", &w3f_vector(5));
    // Per-instruction charging gives the same 98 here; a table needs a table.
    let (code, _, _) = harness(&["vectors", "--gas-model", "instruction", &file]);
    assert_eq!(code, 0);
    let (code, _, stderr) = harness(&["vectors", "--gas-model", "block-table", &file]);
    assert_eq!(code, 2);
    assert!(stderr.contains("tiny.json") && stderr.contains("block-gas-costs"), "{stderr}");
}

/// Declares `stuck`, an external backend that answers the handshake and then never replies.
fn stuck_backend(dir: &Path) -> String {
    let server = write(
        dir,
        "stuck.py",
        "import sys, time\nsys.stdin.readline()\nprint('{\"ok\": true, \"protocol\": 1, \"name\": \"stuck\"}', flush=True)\ntime.sleep(600)\n",
    );
    format!("stuck=python3 {server}")
}

/// A backend that answers the handshake and then never replies: `diff` must report the
/// program as a hang with the command that replays it, well before the external timeout.
#[test]
fn diff_reports_a_program_that_never_finishes_as_a_hang() {
    let dir = scratch("hang");
    let external = stuck_backend(&dir);
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = harness(&[
        "diff",
        "--external",
        &external,
        "--pair",
        "interp:stuck",
        "--seed",
        "7",
        "--first",
        "40",
        "--count",
        "1",
        "--timeout",
        "1",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(stdout.contains("HANG program 40"), "{stdout}");
    assert!(stdout.contains("--seed 7 --first 40 --count 1"), "{stdout}");
}

/// With worker processes a hang in one of them is reported the same way, and the others are
/// stopped rather than left running.
#[test]
fn diff_reports_a_hang_in_a_worker_process() {
    let dir = scratch("hang-workers");
    let external = stuck_backend(&dir);
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = harness(&[
        "diff",
        "--external",
        &external,
        "--pair",
        "interp:stuck",
        "--seed",
        "7",
        "--first",
        "40",
        "--count",
        "2",
        "--timeout",
        "1",
        "--jobs",
        "2",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(stderr.contains("2 worker processes"), "{stderr}");
    assert!(stdout.contains("HANG program 40") || stdout.contains("HANG program 41"), "{stdout}");
    assert!(stdout.contains(&format!("--external '{external}'")), "{stdout}");
}

/// Worker processes run every program of the shard once: the summary counts them all.
#[test]
fn diff_splits_its_programs_over_worker_processes() {
    for jobs in ["1", "3"] {
        let (code, stdout, stderr) = harness(&[
            "diff",
            "--pair",
            "interp:model",
            "--count",
            "301",
            "--seed",
            "9",
            "--shard",
            "2/3",
            "--jobs",
            jobs,
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let last = stdout.lines().last().unwrap();
        assert!(last.starts_with("100 programs, 0 divergences, "), "{last}");
        assert_eq!(stderr.contains("worker processes"), jobs != "1", "{stderr}");
    }
}

#[test]
fn diff_refuses_a_timeout_that_is_not_positive() {
    let (code, _, stderr) = harness(&["diff", "--count", "1", "--timeout", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--timeout"), "{stderr}");
}

#[test]
fn nightly_spends_its_budget_and_writes_its_reports() {
    let dir = scratch("nightly");
    let vectors = dir.join("vectors");
    std::fs::create_dir_all(&vectors).unwrap();
    write(&vectors, "good.json", &w3f_vector(5));
    let reports = dir.join("reports");
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = harness(&[
        "nightly",
        "--budget",
        "4",
        "--seed",
        "7",
        "--reports",
        &reports.display().to_string(),
        "--corpus",
        &dir.join("no-corpus").display().to_string(),
        &vectors.display().to_string(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(started.elapsed().as_secs_f64() < 30.0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["vectors"]["passed"], 1);
    assert_eq!(summary["vectors"]["failed"], 0);
    let profiles: std::collections::BTreeSet<String> =
        summary["diff"].as_array().unwrap().iter().map(|r| r["profile"].as_str().unwrap().to_string()).collect();
    assert_eq!(profiles.len(), 3, "{profiles:?}");
    assert!(summary["diff"].as_array().unwrap().iter().all(|r| r["programs"].as_u64().unwrap() > 0));
    assert_eq!(summary["fuzz"].as_array().unwrap().len(), 7);
    assert!(summary["fuzz"].as_array().unwrap().iter().all(|r| r["runs"].as_u64().unwrap() > 0));
    assert!(std::fs::read_to_string(reports.join("junit.xml")).unwrap().contains("<testsuite name=\"diff\""));
    assert!(std::fs::read_to_string(reports.join("index.html")).unwrap().contains("nothing found"));

    // A failing vector is a finding: exit 1, a replayable copy and its command.
    write(&vectors, "bad.json", &w3f_vector(6));
    let previous = reports.join("summary.json").display().to_string();
    let again = dir.join("again");
    let (code, stdout, _) = harness(&[
        "nightly",
        "--budget",
        "3",
        "--reports",
        &again.display().to_string(),
        "--previous",
        &previous,
        "--corpus",
        &dir.join("no-corpus").display().to_string(),
        &vectors.display().to_string(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("summary.json")).unwrap()).unwrap();
    let finding = summary["findings"][0].as_str().unwrap().to_string();
    let (code, out, _) = harness(&["vectors", &finding]);
    assert_eq!(code, 1, "the finding replays as a failure: {out}");
    assert_eq!(summary["changes"]["new_failed_cases"].as_array().unwrap().len(), 1);
    assert!(std::fs::read_to_string(again.join("index.html")).unwrap().contains("newly failing case"));
}

#[test]
fn bench_verifies_its_programs_and_prepares_the_large_one() {
    let (code, out, err) = harness(&["bench", "sort", "memops", "large", "--backend", "interp,jit", "--runs", "1"]);
    assert!(!err.contains("no benchmark folder"), "the bench programs are missing: set JAVM_BENCH ({err})");
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    for backend in ["interp", "jit"] {
        for program in ["sort", "memops", "large"] {
            let row = out
                .lines()
                .find(|l| l.split_whitespace().take(2).eq([program, backend]))
                .unwrap_or_else(|| panic!("no {program} row for {backend}:\n{out}"));
            let fields: Vec<&str> = row.split_whitespace().collect();
            let per_kib: f64 = fields[6].parse().unwrap_or_else(|_| panic!("prepare µs/KiB in {row}"));
            assert!(per_kib > 0.0, "{row}");
            if program == "large" {
                assert_eq!(fields[2..5], ["-", "-", "-"], "the large program is never run: {row}");
            }
        }
    }
    // A wrong program name is refused before anything runs.
    let (code, _, err) = harness(&["bench", "no-such-program", "--runs", "1"]);
    assert_eq!(code, 2, "{err}");
}
