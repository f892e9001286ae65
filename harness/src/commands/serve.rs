//! `javm-harness serve`: serves one of this build's backends over the external-backend
//! protocol on stdin/stdout (`docs/protocol.md`), so the protocol is tested end to end and
//! other tools can drive our backends.

use std::io::{BufRead, Read, Write};

use javm_engine::{Backend, Config, GasModel, Profile};

use crate::backends::BackendSpec;
use crate::commands::vectors::{EXIT_OK, EXIT_UNUSABLE};
use crate::protocol::{hex, unhex, ExitReply, Page, Reply, Request, State, VERSION};

/// Serves until stdin ends; returns the exit code.
pub fn run(spec: &BackendSpec) -> i32 {
    let mut backend = match spec.create() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_UNUSABLE;
        }
    };
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    loop {
        // One request per line, of bounded length: a longer line is refused, not buffered.
        let mut bytes = Vec::new();
        match (&mut stdin).take(MAX_REQUEST as u64 + 1).read_until(b'\n', &mut bytes) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if bytes.len() > MAX_REQUEST {
            let reply = refuse(format!("a request line is longer than {MAX_REQUEST} bytes"));
            let _ = writeln!(stdout, "{}", serde_json::to_string(&reply).expect("replies serialise"));
            break;
        }
        let line = String::from_utf8_lossy(&bytes);
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => handle(&mut *backend, spec.name(), request),
            Err(e) => Reply { error: Some(format!("bad request: {e}")), ..Reply::default() },
        };
        let text = serde_json::to_string(&reply).expect("replies serialise");
        if writeln!(stdout, "{text}").and_then(|_| stdout.flush()).is_err() {
            break;
        }
    }
    EXIT_OK
}

/// The longest request line the server reads.
const MAX_REQUEST: usize = 256 << 20;

fn state(b: &dyn Backend) -> Option<State> {
    Some(State { regs: b.regs(), pc: b.pc(), resume_pc: b.resume_pc(), gas: b.gas() })
}

fn ok() -> Reply {
    Reply { ok: true, ..Reply::default() }
}

fn refuse(message: String) -> Reply {
    Reply { error: Some(message), ..Reply::default() }
}

/// Answers one request.
pub fn handle(b: &mut dyn Backend, name: &str, request: Request) -> Reply {
    match request {
        Request::Hello { .. } => Reply { protocol: Some(VERSION), name: Some(name.to_string()), ..ok() },
        Request::Load { program, profile, gas_model, block_costs } => {
            let Some(profile) = Profile::parse(&profile) else {
                return refuse(format!("unknown profile `{profile}` (a, b or j)"));
            };
            let gas = match gas_model.as_str() {
                "block-unit" => GasModel::BlockUnit,
                "block-table" => GasModel::table(block_costs),
                "instruction" => GasModel::Instruction,
                other => return refuse(format!("unknown gas model `{other}`")),
            };
            let bytes = match unhex(&program) {
                Ok(b) => b,
                Err(e) => return refuse(format!("program: {e}")),
            };
            b.load_blob(&bytes, &Config::new(profile, gas));
            Reply { state: state(b), ..ok() }
        }
        Request::Map { address, length, writable } => match b.map(address, length, writable) {
            Ok(()) => ok(),
            Err(e) => refuse(e.to_string()),
        },
        Request::Write { address, bytes } => match unhex(&bytes) {
            Ok(bytes) => match b.write_memory(address, &bytes) {
                Ok(()) => ok(),
                Err(e) => refuse(e.to_string()),
            },
            Err(e) => refuse(format!("bytes: {e}")),
        },
        Request::Read { address, length } => {
            if length > 1 << 28 {
                return refuse(format!("read of {length} bytes is larger than this server answers"));
            }
            match b.read_memory(address, length) {
                Ok(bytes) => Reply { bytes: Some(hex(&bytes)), ..ok() },
                Err(e) => refuse(e.to_string()),
            }
        }
        Request::SetRegs { regs } => {
            b.set_regs(regs);
            Reply { state: state(b), ..ok() }
        }
        Request::SetPc { pc } => {
            b.set_pc(pc);
            Reply { state: state(b), ..ok() }
        }
        Request::SetGas { gas } => {
            b.set_gas(gas);
            Reply { state: state(b), ..ok() }
        }
        Request::Run => {
            let exit = b.run();
            Reply { exit: Some(ExitReply::from_exit(exit)), state: state(b), ..ok() }
        }
        Request::Step => {
            let exit = b.step();
            Reply { exit: exit.map(ExitReply::from_exit), state: state(b), ..ok() }
        }
        Request::Pages => {
            let pages = b
                .memory_pages_sparse()
                .into_iter()
                .map(|(address, writable, bytes)| Page { address, writable, bytes: hex(&bytes) })
                .collect();
            Reply { pages: Some(pages), ..ok() }
        }
    }
}
