//! The HTML reports as a person sees them: rendered by a real browser (headless Chromium),
//! the text one looks for is there. Skipped with a notice when no Chromium is installed,
//! unless `JAVM_REQUIRE_BROWSER=1` (as `.ci/run` sets it after installing one).

use std::path::{Path, PathBuf};
use std::process::Command;

fn browser() -> Option<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(name.to_string());
        }
    }
    assert!(
        std::env::var_os("JAVM_REQUIRE_BROWSER").is_none(),
        "JAVM_REQUIRE_BROWSER is set but no Chromium was found"
    );
    eprintln!("no Chromium found: the browser check is skipped");
    None
}

/// The page's text after the browser parsed and laid it out (its DOM, tags stripped).
fn rendered_text(browser: &str, page: &Path) -> String {
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(page)
        .output()
        .expect("the browser runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("javm-dashboard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn vector(name: &str, r7: u64) -> String {
    format!(
        r#"{{"name": "{name}", "initial-regs": [0,0,0,0,0,0,0,0,0,0,0,0,0], "initial-pc": 0,
            "initial-page-map": [], "initial-memory": [], "initial-gas": 100,
            "program": [0, 0, 3, 51, 7, 5, 1], "expected-status": "panic",
            "expected-regs": [0,0,0,0,0,0,0,{r7},0,0,0,0,0], "expected-pc": 3,
            "expected-memory": [], "expected-gas": 98}}"#
    )
}

#[test]
fn the_vectors_dashboard_shows_a_failure_as_a_person_looks_for_it() {
    let Some(browser) = browser() else { return };
    let dir = scratch("vectors");
    std::fs::write(dir.join("good.json"), vector("good_case", 5)).unwrap();
    std::fs::write(dir.join("bad.json"), vector("broken_case", 6)).unwrap();
    let page = dir.join("report.html");
    let status = Command::new(env!("CARGO_BIN_EXE_javm-harness"))
        .args(["vectors", "--backend", "interp,model"])
        .arg(&dir)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    let text = rendered_text(&browser, &page);
    for wanted in [
        "Conformance report: failures",
        "1 passed, 1 failed",
        "FAIL broken_case",
        "r7 0x6 0x5 interp, model",
        "> 3:",
        "Replay: javm-harness vectors --backend interp,model",
        "Where runs ended",
    ] {
        assert!(text.contains(wanted), "the page should show {wanted:?}: {text}");
    }
    assert!(!text.contains("FAIL good_case"), "passing cases are not listed as failures: {text}");
}

#[test]
fn the_nightly_dashboard_renders_its_verdict_and_tables() {
    let Some(browser) = browser() else { return };
    let dir = scratch("nightly");
    let vectors = dir.join("v");
    std::fs::create_dir_all(&vectors).unwrap();
    std::fs::write(vectors.join("bad.json"), vector("broken_case", 6)).unwrap();
    let reports = dir.join("r");
    let out = Command::new(env!("CARGO_BIN_EXE_javm-harness"))
        .args(["nightly", "--budget", "3", "--seed", "1", "--corpus"])
        .arg(dir.join("none"))
        .arg("--reports")
        .arg(&reports)
        .arg(&vectors)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = rendered_text(&browser, &reports.join("index.html"));
    for wanted in [
        "javm-harness nightly: findings",
        "Findings",
        "vector broken_case",
        "Replay: javm-harness vectors",
        "diff",
        "fuzz",
    ] {
        assert!(text.contains(wanted), "the page should show {wanted:?}: {text}");
    }
}
