//! Progress for long runs: a bar on a terminal, a plain line every tenth of the way otherwise
//! (for CI logs).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    done: AtomicU64,
    total: u64,
    unit: &'static str,
    started: Instant,
}

impl Progress {
    pub fn new(total: u64, unit: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let template =
                format!("{{bar:40}} {{pos}}/{{len}} {unit} {{per_sec}} [{{elapsed_precise}}<{{eta_precise}}]");
            bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
            bar
        });
        Progress { bar, done: AtomicU64::new(0), total, unit, started: Instant::now() }
    }

    /// Counts one finished item.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Counts `n` finished items.
    pub fn add(&self, n: u64) {
        if n == 0 {
            return;
        }
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        let done = before + n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                let step = (self.total / 10).max(1);
                if self.total >= 1000 && done / step > before / step && done < self.total {
                    eprintln!("  {done}/{} {} ({:.0}s)", self.total, self.unit, self.started.elapsed().as_secs_f64());
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
