//! Where `diff`'s time per program goes on one backend: drawing and preparing the program,
//! loading it with the host steps (maps, writes, registers), the runs and the snapshots taken
//! after them, for programs 0..COUNT of seed 2026 (profile A, the default gas model), on this
//! thread. `diff` runs every program on two backends and compares the snapshots.
//!
//! ```sh
//! cargo run --release -p javm-harness --example diff_stages -- interp 30000
//! cargo run --release -p javm-harness --example diff_stages -- jit 30000
//! ```

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use javm_engine::Backend;
use javm_harness::generator::{generate, GenConfig};
use javm_harness::run::{drive, Prepared, Visit};
use javm_harness::state::Snapshot;
use javm_harness::vectors::GasChoice;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, count] = &args[..] else {
        return Err("usage: diff_stages interp|jit COUNT".into());
    };
    let count: u64 = count.parse().map_err(|_| format!("COUNT must be a number, not {count:?}"))?;
    let mut b: Box<dyn Backend> = match backend.as_str() {
        "interp" => Box::new(javm_engine::interp::Interpreter::default()),
        "jit" => Box::new(javm_engine::jit::Jit::new().map_err(|e| e.to_string())?),
        other => return Err(format!("unknown backend {other:?} (interp, jit)")),
    };
    let config = GenConfig { profile: javm_engine::Profile::A, gas: GasChoice::Auto, raw: false };
    let (mut prepare, mut driven, mut runs, mut snapshots) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut run_count = 0u64;
    for i in 0..count {
        let started = Instant::now();
        let program = generate(2026, i, config);
        let case = program.case("generated");
        let prepared = Prepared::new(&case, &program.options())?;
        let prepared_at = Instant::now();
        prepare += prepared_at - started;
        // The step loop every way of running a case shares: it loads the program and applies
        // the host steps itself, and hands each run over.
        drive(&case, &prepared, &mut [&mut *b], |visit, backends| {
            if let Visit::Run { .. } = visit {
                let at = Instant::now();
                let exit = backends[0].run();
                let ran = Instant::now();
                std::hint::black_box(Snapshot::take(&*backends[0], exit));
                runs += ran - at;
                snapshots += ran.elapsed();
                run_count += 1;
            }
            ControlFlow::<()>::Continue(())
        });
        driven += prepared_at.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / count.max(1) as f64;
    println!(
        "{backend}, µs per program: draw + prepare {:.2}, load + host steps {:.2}, runs {:.2}, snapshots {:.2} ({:.2} runs per program)",
        per(prepare),
        per(driven.saturating_sub(runs + snapshots)),
        per(runs),
        per(snapshots),
        run_count as f64 / count.max(1) as f64
    );
    Ok(())
}
