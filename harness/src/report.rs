//! Conformance reports of a `vectors` run: JSON (per case), JUnit XML (for CI test
//! dashboards), Markdown and HTML (for people).

use std::fmt::Write as _;

use crate::run::Outcome;

/// What a report describes.
pub struct Summary<'a> {
    pub backends: &'a [&'a str],
    pub outcomes: &'a [Outcome],
    pub seconds: f64,
}

impl Summary<'_> {
    fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.passed).count()
    }

    pub fn json(&self) -> String {
        let report = serde_json::json!({
            "backends": self.backends,
            "passed": self.outcomes.len() - self.failed(),
            "failed": self.failed(),
            "seconds": self.seconds,
            "cases": self.outcomes,
        });
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    }

    /// JUnit XML: one test suite, one test case per vector, a failure per failing vector.
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuite name=\"javm-harness vectors ({})\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            xml(&self.backends.join(" + ")),
            self.outcomes.len(),
            self.failed(),
            self.seconds
        );
        for o in self.outcomes {
            let _ = write!(out, "  <testcase classname=\"{}\" name=\"{}\"", xml(o.format), xml(&o.name));
            if o.passed {
                out += "/>\n";
                continue;
            }
            let first = o.failures.first().map(|f| f.difference.to_string()).unwrap_or_default();
            let _ = writeln!(out, ">\n    <failure message=\"{}\">", xml(&first));
            for f in &o.failures {
                let _ = writeln!(
                    out,
                    "{} {}: {}",
                    xml(&o.step_label(f.step)),
                    xml(&f.backend),
                    xml(&f.difference.to_string())
                );
            }
            out += "    </failure>\n  </testcase>\n";
        }
        out += "</testsuite>\n";
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Conformance report\n\nBackends: {}. **{} passed, {} failed** in {:.2} s.\n",
            markdown(&self.backends.join(" + ")),
            self.outcomes.len() - self.failed(),
            self.failed(),
            self.seconds
        );
        if self.failed() > 0 {
            out += "\n| case | profile | gas | step | backend | difference |\n|---|---|---|---|---|---|\n";
            for o in self.outcomes.iter().filter(|o| !o.passed) {
                for f in &o.failures {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} |",
                        markdown(&o.name),
                        markdown(&o.profile),
                        markdown(&o.gas_model),
                        markdown(&o.step_label(f.step)),
                        markdown(&f.backend),
                        markdown(&f.difference.to_string())
                    );
                }
            }
        }
        out
    }

    /// The dashboard: the verdict, counts per suite and backend, then the failures only
    /// (identical differences on several backends shown once, naming them) with the code
    /// around the failing pc and the replay command, a heat map of the instructions runs
    /// ended at by exit status and backend, and every case folded away at the end. No
    /// JavaScript, no network.
    pub fn html(&self) -> String {
        let failed = self.failed();
        let known = self.outcomes.iter().filter(|o| o.passed && !o.known.is_empty()).count();
        let passed = self.outcomes.len() - failed - known;
        let mut out = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Conformance report</title>\n<style>\
             body{font-family:sans-serif;max-width:72em;margin:1em auto}td,th{padding:2px 8px;text-align:left}\
             th{background:#eee}.fail{color:#b00}.pass{color:#070}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}\
             section{border-top:1px solid #ccc;margin-top:1em}.heat td{text-align:right}</style></head><body>\n",
        );
        let verdict = if failed == 0 { ("pass", "all passed") } else { ("fail", "failures") };
        let _ = writeln!(
            out,
            "<h1>Conformance report: <span class=\"{}\">{}</span></h1>\n<p><b>{passed} passed, {failed} failed</b>{} in {:.2} s on {}.</p>",
            verdict.0,
            verdict.1,
            if known > 0 { format!(", {known} with listed known differences") } else { String::new() },
            self.seconds,
            xml(&self.backends.join(" + "))
        );

        // Per suite (format) and backend.
        let mut suites: Vec<&str> = self.outcomes.iter().map(|o| o.format).collect();
        suites.sort_unstable();
        suites.dedup();
        out += "<h2>By suite and backend</h2>\n<table>\n<tr><th>suite</th><th>cases</th><th>passed</th><th>failed</th>";
        for b in self.backends {
            let _ = write!(out, "<th>failing on {}</th>", xml(b));
        }
        out += "</tr>\n";
        for suite in &suites {
            let cases: Vec<&Outcome> = self.outcomes.iter().filter(|o| o.format == *suite).collect();
            let bad = cases.iter().filter(|o| !o.passed).count();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"pass\">{}</td><td class=\"{}\">{bad}</td>",
                xml(suite),
                cases.len(),
                cases.len() - bad,
                if bad > 0 { "fail" } else { "pass" }
            );
            for b in self.backends {
                let n = cases.iter().filter(|o| o.failures.iter().any(|f| names_backend(&f.backend, b))).count();
                let _ = write!(out, "<td class=\"{}\">{n}</td>", if n > 0 { "fail" } else { "pass" });
            }
            out += "</tr>\n";
        }
        out += "</table>\n";

        // Failures only.
        if failed == 0 {
            out += "<h2>Failures</h2>\n<p class=\"pass\">No failures.</p>\n";
        } else {
            let _ = writeln!(out, "<h2>Failures ({failed})</h2>");
        }
        for o in self.outcomes.iter().filter(|o| !o.passed) {
            let _ = writeln!(
                out,
                "<section><h3 class=\"fail\">FAIL {}</h3>\n<p>{} ({}), profile {}, gas {}</p>",
                xml(&o.name),
                xml(&o.file),
                xml(o.format),
                xml(&o.profile),
                xml(&o.gas_model)
            );
            // Identical differences on several backends are one row naming them all.
            let mut rows: Vec<(String, String, String, String, Vec<String>)> = Vec::new();
            for f in &o.failures {
                let key = (
                    o.step_label(f.step),
                    f.difference.field.clone(),
                    f.difference.expected.clone(),
                    f.difference.got.clone(),
                );
                match rows.iter_mut().find(|r| (&r.0, &r.1, &r.2, &r.3) == (&key.0, &key.1, &key.2, &key.3)) {
                    Some(r) => r.4.push(f.backend.clone()),
                    None => rows.push((key.0, key.1, key.2, key.3, vec![f.backend.clone()])),
                }
            }
            out += "<table>\n<tr><th>where</th><th>field</th><th>expected</th><th>got</th><th>backends</th></tr>\n";
            for (at, field, expected, got, backends) in &rows {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    xml(at),
                    xml(field),
                    xml(expected),
                    xml(got),
                    xml(&backends.join(", "))
                );
            }
            out += "</table>\n";
            if let Some(d) = &o.disassembly {
                let _ = writeln!(
                    out,
                    "<p>Code around the pc where {} stopped:</p>\n<pre>{}</pre>",
                    xml(self.backends.first().copied().unwrap_or("it")),
                    xml_block(d)
                );
            }
            let _ = writeln!(
                out,
                "<p>Replay: <code>javm-harness vectors --backend {} {}</code></p></section>",
                xml(&self.backends.join(",")),
                xml(&o.file)
            );
        }

        // Heat map: the instruction each run ended at × exit status × backend.
        // (instruction, status, backend) → runs, counted once.
        let mut counts: std::collections::BTreeMap<(&str, &str, &str), usize> = std::collections::BTreeMap::new();
        for (backend, op, status) in self.outcomes.iter().flat_map(|o| &o.exit_ops) {
            *counts.entry((op.as_str(), status.as_str(), backend.as_str())).or_insert(0) += 1;
        }
        let mut statuses: Vec<&str> = counts.keys().map(|k| k.1).collect();
        statuses.sort_unstable();
        statuses.dedup();
        let mut ops: Vec<&str> = counts.keys().map(|k| k.0).collect();
        ops.dedup();
        if !ops.is_empty() {
            let count =
                |op: &str, status: &str, backend: &str| counts.get(&(op, status, backend)).copied().unwrap_or(0);
            let max = counts.values().copied().max().unwrap_or(1).max(1);
            out += "<h2>Where runs ended</h2>\n<p>Runs by the instruction at their exit pc, exit status and backend (darker: more).</p>\n<table class=\"heat\">\n<tr><th>instruction</th>";
            for st in &statuses {
                for b in self.backends {
                    let _ = write!(out, "<th>{} · {}</th>", xml(st), xml(b));
                }
            }
            out += "</tr>\n";
            for op in &ops {
                let _ = write!(out, "<tr><th>{}</th>", xml(op));
                for st in &statuses {
                    for b in self.backends {
                        let n = count(op, st, b);
                        let alpha = if n == 0 { 0.0 } else { 0.15 + 0.85 * (n as f64 / max as f64) };
                        let _ = write!(
                            out,
                            "<td style=\"background:rgba(40,90,200,{alpha:.2})\">{}</td>",
                            if n == 0 { String::new() } else { n.to_string() }
                        );
                    }
                }
                out += "</tr>\n";
            }
            out += "</table>\n";
        }

        // Every case, folded.
        let _ = writeln!(out, "<details><summary>All {} cases</summary>\n<table>\n<tr><th>case</th><th>suite</th><th>profile</th><th>gas</th><th>result</th></tr>", self.outcomes.len());
        for o in self.outcomes {
            let result = if o.passed { "<span class=\"pass\">pass</span>" } else { "<span class=\"fail\">fail</span>" };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{result}</td></tr>",
                xml(&o.name),
                xml(o.format),
                xml(&o.profile),
                xml(&o.gas_model)
            );
        }
        out += "</table></details>\n</body></html>\n";
        out
    }
}

/// Whether a failure's backend field (`name`, or `a vs b`) names `backend`.
fn names_backend(field: &str, backend: &str) -> bool {
    field == backend || field.split(" vs ").any(|p| p == backend) || field.split(',').any(|p| p == backend)
}

/// Multi-line text for a `<pre>` block: each line escaped, the newlines kept.
fn xml_block(s: &str) -> String {
    s.lines().map(xml).collect::<Vec<_>>().join("\n")
}

/// Control characters written out visibly (`\u{1b}`), so no report or terminal line carries
/// raw escape sequences, and XML (which cannot hold most of them even encoded) stays
/// well-formed.
fn visible_controls(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && !(keep_newlines && c == '\n') {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for a terminal line: control characters (escape sequences, newlines) made visible.
pub fn terminal(s: &str) -> String {
    visible_controls(s, false)
}

/// Text for XML and HTML (attribute values and content): control characters made visible,
/// markup characters encoded.
pub fn xml(s: &str) -> String {
    visible_controls(s, false)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Text for a Markdown table cell: control characters and newlines made visible, HTML
/// encoded, and the characters that end a cell or start formatting escaped.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in xml(s).chars() {
        if matches!(c, '|' | '\\' | '`' | '*' | '_' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Failure;
    use crate::state::Difference;

    fn outcome(name: &str, passed: bool) -> Outcome {
        Outcome {
            name: name.into(),
            file: format!("{name}.json"),
            format: "w3f-v0.4",
            profile: "A".into(),
            gas_model: "block-unit".into(),
            passed,
            exits: vec![],
            known: vec![],
            snapshots: vec![],
            single_run: true,
            disassembly: Some(">      0: trap".into()),
            exit_ops: vec![("interp".into(), "trap".into(), "panic".into())],
            failures: if passed {
                vec![]
            } else {
                vec![Failure {
                    backend: "interp".into(),
                    step: 3,
                    difference: Difference { field: "r7".into(), expected: "0x1".into(), got: "0x<2>".into() },
                }]
            },
        }
    }

    #[test]
    fn every_format_counts_and_escapes() {
        let outcomes = [outcome("ok", true), outcome("bad", false)];
        let s = Summary { backends: &["interp", "jit"], outcomes: &outcomes, seconds: 0.5 };
        let junit = s.junit();
        assert!(junit.contains("tests=\"2\" failures=\"1\""), "{junit}");
        assert!(junit.contains("<testcase classname=\"w3f-v0.4\" name=\"ok\"/>"));
        assert!(junit.contains("r7: expected 0x1, got 0x&lt;2&gt;"));
        assert!(s.markdown().contains("**1 passed, 1 failed**"));
        assert!(
            s.markdown().contains("| bad | A | block-unit | run | interp | r7: expected 0x1, got 0x&lt;2&gt; |"),
            "{}",
            s.markdown()
        );
        let html = s.html();
        assert!(html.contains("<td>r7</td><td>0x1</td><td>0x&lt;2&gt;</td><td>interp</td>"), "{html}");
        assert!(html.contains("FAIL bad") && !html.contains("FAIL ok"), "{html}");
        let json: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(json["failed"], 1);
    }

    #[test]
    fn hostile_names_cannot_break_a_report() {
        let name = "a\u{1b}[31m|b\n<i>&\u{0}\"'";
        let outcomes = [outcome(name, false)];
        let s = Summary { backends: &["interp"], outcomes: &outcomes, seconds: 0.0 };
        for text in [s.junit(), s.html(), s.markdown(), terminal(name)] {
            assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        }
        assert!(s.junit().contains("name=\"a\\u{1b}[31m|b\\u{a}&lt;i&gt;&amp;\\u{0}&quot;&#39;\""), "{}", s.junit());
        let md = s.markdown();
        let row = md.lines().find(|l| l.starts_with("| a")).expect("one row per failure");
        assert!(row.contains("a\\\\u{1b}\\[31m\\|b\\\\u{a}&lt;i&gt;&amp;"), "{row}");
        assert_eq!(row.matches(" | ").count(), 5, "{row}");
    }
}
