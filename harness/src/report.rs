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

    pub fn html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Conformance report</title>\n\
             <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}\
             .fail{color:#b00}.pass{color:#070}</style></head><body>\n",
        );
        let _ = writeln!(
            out,
            "<h1>Conformance report</h1>\n<p>Backends: {}. <b>{} passed, {} failed</b> in {:.2} s.</p>",
            xml(&self.backends.join(" + ")),
            self.outcomes.len() - self.failed(),
            self.failed(),
            self.seconds
        );
        out += "<table>\n<tr><th>case</th><th>format</th><th>profile</th><th>gas</th><th>result</th></tr>\n";
        for o in self.outcomes {
            let result = if o.passed {
                "<span class=\"pass\">pass</span>".to_string()
            } else {
                let lines: Vec<String> = o
                    .failures
                    .iter()
                    .map(|f| {
                        format!(
                            "{} {}: {}",
                            xml(&o.step_label(f.step)),
                            xml(&f.backend),
                            xml(&f.difference.to_string())
                        )
                    })
                    .collect();
                format!("<span class=\"fail\">fail</span><br>{}", lines.join("<br>"))
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{result}</td></tr>",
                xml(&o.name),
                xml(o.format),
                xml(&o.profile),
                xml(&o.gas_model)
            );
        }
        out += "</table>\n</body></html>\n";
        out
    }
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
        assert!(s.html().contains("got 0x&lt;2&gt;"));
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
