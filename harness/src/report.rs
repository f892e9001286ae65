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
                let _ = writeln!(out, "step {} {}: {}", f.step, xml(&f.backend), xml(&f.difference.to_string()));
            }
            out += "    </failure>\n  </testcase>\n";
        }
        out += "</testsuite>\n";
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Conformance report\n\nBackends: {}. **{} passed, {} failed** in {:.2} s.\n",
            self.backends.join(" + "),
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
                        o.name,
                        o.profile,
                        o.gas_model,
                        f.step,
                        f.backend,
                        f.difference.to_string().replace('|', "\\|")
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
                    .map(|f| format!("step {} {}: {}", f.step, xml(&f.backend), xml(&f.difference.to_string())))
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

/// Escapes text for XML and HTML.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
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
        assert!(s.markdown().contains("| bad | A | block-unit | 3 | interp | r7: expected 0x1, got 0x<2> |"));
        assert!(s.html().contains("got 0x&lt;2&gt;"));
        let json: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(json["failed"], 1);
    }
}
