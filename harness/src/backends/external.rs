//! Backends served by another process over the line protocol of `docs/protocol.md`
//! (`--external NAME=COMMAND`). Every request waits at most the timeout for its reply; a
//! child that crashes, stays silent or replies with something malformed is a clear error
//! naming the backend with the tail of its stderr, never a hang.
//!
//! The [`Backend`] trait has no error channel, so a broken child makes the call unwind with
//! that message; the harness's runners catch panics and report them as the backend's
//! failure. After the first error every further call fails the same way at once.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use javm_engine::{Backend, Config, Exit, GasModel, MemoryError, Program, NUM_REGS};

use crate::protocol::{hex, unhex, Reply, Request, State, VERSION};

/// Default time a request may take; `JAVM_EXTERNAL_TIMEOUT_MS` overrides it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the child's stderr is kept for error messages.
const STDERR_TAIL: usize = 2048;
/// The longest reply line accepted (a page listing of 4 GiB would not fit; one of a few
/// thousand pages does).
const MAX_LINE: usize = 256 << 20;

/// A declared external backend.
#[derive(Debug)]
pub struct ExternalSpec {
    pub name: &'static str,
    pub command: String,
    pub timeout: Duration,
}

impl ExternalSpec {
    pub fn new(name: &str, command: &str) -> Result<ExternalSpec, String> {
        let timeout = match std::env::var("JAVM_EXTERNAL_TIMEOUT_MS") {
            Ok(v) => Duration::from_millis(
                v.parse().map_err(|_| format!("JAVM_EXTERNAL_TIMEOUT_MS={v:?} is not a number of milliseconds"))?,
            ),
            Err(_) => DEFAULT_TIMEOUT,
        };
        // Backend names are `&'static str`; a run declares a handful of external backends.
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Ok(ExternalSpec { name, command: command.to_string(), timeout })
    }
}

struct Channel {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Result<String, String>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    /// Set after the first failure: every later call reports it again.
    broken: Option<String>,
}

/// One running child process.
pub struct External {
    spec: Arc<ExternalSpec>,
    channel: Mutex<Channel>,
    state: State,
}

impl Drop for External {
    fn drop(&mut self) {
        if let Ok(ch) = self.channel.get_mut() {
            let _ = ch.child.kill();
            let _ = ch.child.wait();
        }
    }
}

impl External {
    /// Starts the command (through `sh -c`) and checks the protocol version.
    pub fn spawn(spec: Arc<ExternalSpec>) -> Result<External, String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&spec.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("backend {}: cannot start `{}`: {e}", spec.name, spec.command))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
                    Ok(0) => {
                        let _ = tx.send(Err("the process closed its output (exited or crashed)".into()));
                        return;
                    }
                    Ok(_) if line.len() > MAX_LINE => {
                        let _ = tx.send(Err(format!("a reply line is longer than {MAX_LINE} bytes")));
                        return;
                    }
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).trim_end().to_string();
                        if tx.send(Ok(text)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("reading its output failed: {e}")));
                        return;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.extend(&buf[..n]);
                while t.len() > STDERR_TAIL {
                    t.pop_front();
                }
            }
        });
        let channel = Channel { child, stdin, lines, stderr, broken: None };
        let ext = External { spec, channel: Mutex::new(channel), state: State::default() };
        let hello = ext.request(&Request::Hello { version: VERSION }).map_err(RequestError::into_message)?;
        match hello.protocol {
            Some(VERSION) => Ok(ext),
            other => Err(ext.error(&format!("speaks protocol {other:?}, this harness speaks {VERSION}"))),
        }
    }

    fn error(&self, message: &str) -> String {
        let ch = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        let tail =
            ch.stderr.lock().map(|t| String::from_utf8_lossy(&t.iter().copied().collect::<Vec<_>>()).into_owned());
        let tail = tail.unwrap_or_default();
        let tail = tail.trim_end();
        if tail.is_empty() {
            format!("backend {} (`{}`): {message}", self.spec.name, self.spec.command)
        } else {
            format!("backend {} (`{}`): {message}; its stderr ends with:\n{tail}", self.spec.name, self.spec.command)
        }
    }

    /// Sends one request and waits for its reply.
    pub fn request(&self, request: &Request) -> Result<Reply, RequestError> {
        let result = {
            let mut ch = self.channel.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = &ch.broken {
                return Err(RequestError::Broken(e.clone()));
            }
            let line = serde_json::to_string(request).expect("requests serialise") + "\n";
            match ch.stdin.write_all(line.as_bytes()).and_then(|_| ch.stdin.flush()) {
                Err(e) => Err(format!("cannot send a request: {e}")),
                Ok(()) => match ch.lines.recv_timeout(self.spec.timeout) {
                    Ok(Ok(text)) => serde_json::from_str::<Reply>(&text).map_err(|e| {
                        let shown: String = text.chars().take(200).collect();
                        format!("malformed reply to {:?}: {e}: {shown}", op_name(request))
                    }),
                    Ok(Err(e)) => Err(e),
                    Err(RecvTimeoutError::Timeout) => {
                        Err(format!("no reply to {:?} within {:?}", op_name(request), self.spec.timeout))
                    }
                    Err(RecvTimeoutError::Disconnected) => Err("the process closed its output".into()),
                },
            }
        };
        match result {
            Ok(reply) if reply.ok => Ok(reply),
            Ok(reply) => Err(RequestError::Refused(self.error(&format!(
                "refused {:?}: {}",
                op_name(request),
                reply.error.unwrap_or_default()
            )))),
            Err(message) => {
                // The process can no longer be trusted: every later call fails the same way.
                let full = self.error(&message);
                let mut ch = self.channel.lock().unwrap_or_else(|p| p.into_inner());
                ch.broken = Some(full.clone());
                let _ = ch.child.kill();
                Err(RequestError::Broken(full))
            }
        }
    }

    /// A request that must succeed (the trait has no error channel: see the module docs).
    fn must(&mut self, request: Request) -> Reply {
        match self.request(&request) {
            Ok(reply) => {
                if let Some(state) = &reply.state {
                    self.state = state.clone();
                }
                reply
            }
            Err(e) => fail(e.into_message()),
        }
    }

    fn exit_of(&self, reply: &Reply) -> Result<Option<Exit>, String> {
        reply.exit.map(|e| e.to_exit()).transpose().map_err(|e| self.error(&e))
    }
}

/// Unwinds with the message without running the panic hook (no backtrace noise); the
/// harness's runners catch it and report it as this backend's failure.
fn fail(message: String) -> ! {
    std::panic::resume_unwind(Box::new(message))
}

fn op_name(request: &Request) -> String {
    serde_json::to_value(request).ok().and_then(|v| v["op"].as_str().map(String::from)).unwrap_or_default()
}

/// Why a request failed.
#[derive(Debug)]
pub enum RequestError {
    /// The backend answered `ok: false` (a host memory operation it cannot do, say).
    Refused(String),
    /// No usable answer: a crash, a timeout, a malformed reply.
    Broken(String),
}

impl RequestError {
    pub fn into_message(self) -> String {
        match self {
            RequestError::Refused(m) | RequestError::Broken(m) => m,
        }
    }
}

/// The host memory error of a refused map, write or read of `length` bytes at `address` (the
/// protocol carries the reason as text, for people).
fn memory_error(address: u32, length: u64) -> MemoryError {
    if address as u64 + length > 1 << 32 {
        MemoryError::OutOfRange { address: address as u64, length }
    } else {
        MemoryError::Unmapped { address }
    }
}

impl Backend for External {
    fn name(&self) -> &'static str {
        self.spec.name
    }

    fn reads_blobs(&self) -> bool {
        true
    }

    fn load_blob(&mut self, bytes: &[u8], config: &Config) {
        let block_costs = match &config.gas {
            GasModel::BlockTable(t) => t.to_vec(),
            _ => Vec::new(),
        };
        self.must(Request::Load {
            program: hex(bytes),
            profile: config.profile.name().into(),
            gas_model: config.gas.kind_name().into(),
            block_costs,
        });
    }

    fn load(&mut self, program: Arc<Program>) {
        let bytes = program.blob.encode();
        self.load_blob(&bytes, &program.config.clone());
    }

    fn load_invalid(&mut self) {
        self.must(Request::Load {
            program: String::new(),
            profile: "a".into(),
            gas_model: "block-unit".into(),
            block_costs: Vec::new(),
        });
    }

    fn regs(&self) -> [u64; NUM_REGS] {
        self.state.regs
    }

    fn set_reg(&mut self, reg: usize, value: u64) {
        let mut regs = self.state.regs;
        regs[reg] = value;
        self.must(Request::SetRegs { regs });
    }

    fn set_regs(&mut self, regs: [u64; NUM_REGS]) {
        self.must(Request::SetRegs { regs });
    }

    fn pc(&self) -> u32 {
        self.state.pc
    }

    fn set_pc(&mut self, pc: u32) {
        self.must(Request::SetPc { pc });
    }

    fn resume_pc(&self) -> u32 {
        self.state.resume_pc
    }

    fn gas(&self) -> i64 {
        self.state.gas
    }

    fn set_gas(&mut self, gas: i64) {
        self.must(Request::SetGas { gas });
    }

    fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError> {
        match self.request(&Request::Map { address, length, writable }) {
            Ok(_) => Ok(()),
            Err(RequestError::Refused(_)) => Err(memory_error(address, length)),
            Err(RequestError::Broken(e)) => fail(e),
        }
    }

    fn write_memory(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
        match self.request(&Request::Write { address, bytes: hex(bytes) }) {
            Ok(_) => Ok(()),
            Err(RequestError::Refused(_)) => Err(memory_error(address, bytes.len() as u64)),
            Err(RequestError::Broken(e)) => fail(e),
        }
    }

    fn read_memory(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
        match self.request(&Request::Read { address, length }) {
            Ok(reply) => unhex(reply.bytes.as_deref().unwrap_or("")).map_err(|e| fail(self.error(&e))),
            Err(RequestError::Refused(_)) => Err(memory_error(address, length)),
            Err(RequestError::Broken(e)) => fail(e),
        }
    }

    fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
        let mut pages = self.memory_pages_sparse();
        for (_, _, bytes) in &mut pages {
            if bytes.is_empty() {
                *bytes = vec![0; 4096];
            }
        }
        pages
    }

    /// The server's pages as sent: `""` stands for a page that reads as all zero.
    fn memory_pages_sparse(&self) -> Vec<(u32, bool, Vec<u8>)> {
        let reply = self.request(&Request::Pages).unwrap_or_else(|e| fail(e.into_message()));
        let mut pages = Vec::new();
        for p in reply.pages.unwrap_or_default() {
            let bytes = unhex(&p.bytes).unwrap_or_else(|e| fail(self.error(&format!("page {:#x}: {e}", p.address))));
            if !(bytes.len() == 4096 || bytes.is_empty()) || p.address % 4096 != 0 {
                fail(self.error(&format!("page {:#x}: not an aligned 4096-byte page", p.address)));
            }
            pages.push((p.address, p.writable, bytes));
        }
        pages.sort_by_key(|p| p.0);
        pages
    }

    fn run(&mut self) -> Exit {
        let reply = self.must(Request::Run);
        match self.exit_of(&reply) {
            Ok(Some(exit)) => exit,
            Ok(None) => fail(self.error("a `run` reply has no exit")),
            Err(e) => fail(e),
        }
    }

    fn step(&mut self) -> Option<Exit> {
        let reply = self.must(Request::Step);
        self.exit_of(&reply).unwrap_or_else(|e| fail(e))
    }
}
