//! The observed outputs of a case as stable text, for snapshot review: after every run, the
//! exit, pc, gas, the non-zero registers and the non-zero memory as chunks. The same text is
//! committed as insta snapshots for our own vectors and a fixed generated corpus, and written
//! by `vectors --snapshots DIR` for any suite (files with no expected values included).

use std::fmt::Write as _;

use crate::run::Outcome;
use crate::state::{chunks, Snapshot};
use crate::vectors::Case;

/// The outputs of one backend's runs of a case.
pub fn render(case: &Case, profile: &str, gas_model: &str, runs: &[Snapshot]) -> String {
    let mut out = format!("case {} ({}, profile {profile}, gas {gas_model})\n", case.name, case.format.name());
    if runs.is_empty() {
        out += "no run\n";
    }
    for (i, s) in runs.iter().enumerate() {
        let _ = writeln!(out, "run {i}: {} at pc {}, gas {}", s.exit, s.pc, s.gas);
        let regs: Vec<String> =
            s.regs.iter().enumerate().filter(|(_, &v)| v != 0).map(|(r, v)| format!("r{r}={v:#x}")).collect();
        let _ = writeln!(out, "  regs: {}", if regs.is_empty() { "all zero".into() } else { regs.join(" ") });
        let mapped = s.pages.len();
        let memory = chunks(&s.nonzero_bytes());
        let _ = writeln!(out, "  memory: {mapped} mapped page(s), {} non-zero chunk(s)", memory.len());
        for c in memory.iter().take(64) {
            let hex: String = c.contents.iter().take(64).map(|b| format!("{b:02x}")).collect();
            let more = if c.contents.len() > 64 { format!(" … ({} bytes)", c.contents.len()) } else { String::new() };
            let _ = writeln!(out, "    {:#010x}: {hex}{more}", c.address);
        }
        if memory.len() > 64 {
            let _ = writeln!(out, "    … {} more chunk(s)", memory.len() - 64);
        }
    }
    out
}

/// The outputs of a case's first backend, from its outcome.
pub fn render_outcome(case: &Case, outcome: &Outcome) -> String {
    let runs = outcome.snapshots.first().map(Vec::as_slice).unwrap_or_default();
    render(case, &outcome.profile, &outcome.gas_model, runs)
}

/// A file name for a case's snapshot: its name with anything but letters, digits, `-` and
/// `_` replaced, so a hostile name cannot leave the folder.
pub fn file_name(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    s.truncate(120);
    if s.is_empty() {
        s.push('_');
    }
    s + ".snap"
}
