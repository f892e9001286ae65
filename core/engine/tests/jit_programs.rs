//! The real compiled programs of `shared/bench` (sieve, blake2b, sort, intmix, memops,
//! hostcall) on the JIT: each must halt with the checksum, instruction count and host-call
//! count of its sidecar, and agree with the interpreter state by state over gas slices.
//! Skipped (with a note) when the corpus is not present.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod jit_common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use javm_engine::jit::Jit;
use javm_engine::{Backend, Config, Exit, GasModel, Interpreter, Profile, Program, NUM_REGS};

use jit_common::Pair;

/// Just enough JSON for the sidecars.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    List(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing characters in JSON");
        v
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(m) => m.get(key).unwrap_or_else(|| panic!("missing key {key}")),
            _ => panic!("not an object"),
        }
    }

    fn u64(&self) -> u64 {
        match self {
            Json::Number(n) => n.parse().unwrap_or_else(|_| panic!("not a u64: {n}")),
            _ => panic!("not a number"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string"),
        }
    }

    fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            _ => panic!("not a bool"),
        }
    }

    fn list(&self) -> &[Json] {
        match self {
            Json::List(l) => l,
            _ => panic!("not a list"),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(self.s[self.i], c, "expected {:?} at {}", c as char, self.i);
        self.i += 1;
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = String::new();
        while self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
                match self.s[self.i] {
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let hex = std::str::from_utf8(&self.s[self.i + 1..self.i + 5]).expect("utf-8");
                        out.push(char::from_u32(u32::from_str_radix(hex, 16).expect("hex")).unwrap_or('?'));
                        self.i += 4;
                    }
                    c => out.push(c as char),
                }
                self.i += 1;
            } else {
                let start = self.i;
                while self.s[self.i] != b'"' && self.s[self.i] != b'\\' {
                    self.i += 1;
                }
                out.push_str(std::str::from_utf8(&self.s[start..self.i]).expect("utf-8"));
            }
        }
        self.i += 1;
        out
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Object(map);
                }
                loop {
                    let key = self.string();
                    self.eat(b':');
                    map.insert(key, self.value());
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b'}' {
                        return Json::Object(map);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut list = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::List(list);
                }
                loop {
                    list.push(self.value());
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b']' {
                        return Json::List(list);
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b't' => {
                self.i += 4;
                Json::Bool(true)
            }
            b'f' => {
                self.i += 5;
                Json::Bool(false)
            }
            b'n' => {
                self.i += 4;
                Json::Null
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                Json::Number(std::str::from_utf8(&self.s[start..self.i]).expect("utf-8").to_string())
            }
        }
    }
}

struct Bench {
    name: String,
    program: Arc<Program>,
    regs: [u64; NUM_REGS],
    entry_pc: u32,
    memory: Vec<(u32, u64, bool, Vec<u8>)>,
    checksum_register: usize,
    checksum: u64,
    instructions: u64,
    host_calls: u64,
}

const HOST_MIX: u32 = 100;
const HOST_MIX_MULTIPLIER: u64 = 6364136223846793005;

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench");
    dir.is_dir().then_some(dir)
}

fn load(dir: &std::path::Path, name: &str) -> Bench {
    let sidecar = Json::parse(&std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("sidecar"));
    let code = std::fs::read(dir.join(sidecar.get("files").get("code").str())).expect("code");
    let program = Program::from_bytes(&code, Config::new(Profile::B, GasModel::BlockUnit)).expect("blob");
    let mut regs = [0u64; NUM_REGS];
    for (r, v) in sidecar.get("initial_regs").list().iter().enumerate() {
        regs[r] = v.u64();
    }
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    };
    let memory = sidecar
        .get("memory")
        .list()
        .iter()
        .map(|m| {
            (
                m.get("address").u64() as u32,
                m.get("length").u64(),
                m.get("writable").bool(),
                unhex(m.get("contents").str()),
            )
        })
        .collect();
    let expected = sidecar.get("expected");
    Bench {
        name: name.to_string(),
        program: Arc::new(program),
        regs,
        entry_pc: sidecar.get("entry_pc").u64() as u32,
        memory,
        checksum_register: expected.get("checksum_register").u64() as usize,
        checksum: expected.get("checksum").u64(),
        instructions: expected.get("instructions_executed").u64(),
        host_calls: expected.get("host_calls").u64(),
    }
}

fn install(b: &mut dyn Backend, bench: &Bench, gas: i64) {
    b.load(bench.program.clone());
    for (address, length, writable, bytes) in &bench.memory {
        b.map(*address, *length, *writable).expect("map");
        b.write_memory(*address, bytes).expect("write");
    }
    b.set_regs(bench.regs);
    b.set_pc(bench.entry_pc);
    b.set_gas(gas);
}

fn serve_host_mix(b: &mut dyn Backend) {
    let regs = b.regs();
    b.set_reg(7, regs[7].wrapping_mul(HOST_MIX_MULTIPLIER).wrapping_add(regs[8]));
}

const NAMES: [&str; 6] = ["sieve", "blake2b", "sort", "intmix", "memops", "hostcall"];

#[test]
fn real_programs_halt_with_their_checksums() {
    let Some(dir) = corpus() else {
        eprintln!("shared/bench not found: skipped");
        return;
    };
    let mut jit = Jit::new().expect("jit");
    for name in NAMES {
        let bench = load(&dir, name);
        // Twice, to run from the cache on a reused instance too.
        for _ in 0..2 {
            let gas = 1i64 << 40;
            install(&mut jit, &bench, gas);
            let mut host_calls = 0;
            let exit = loop {
                match jit.run() {
                    Exit::HostCall(HOST_MIX) => {
                        serve_host_mix(&mut jit);
                        host_calls += 1;
                    }
                    other => break other,
                }
            };
            assert_eq!(exit, Exit::Halt, "{}", bench.name);
            assert_eq!(jit.regs()[bench.checksum_register], bench.checksum, "{} checksum", bench.name);
            assert_eq!((gas - jit.gas()) as u64, bench.instructions, "{} instructions", bench.name);
            assert_eq!(host_calls, bench.host_calls, "{} host calls", bench.name);
        }
    }
}

#[test]
fn real_programs_match_the_interpreter_slice_by_slice() {
    let Some(dir) = corpus() else {
        eprintln!("shared/bench not found: skipped");
        return;
    };
    let mut jit = Jit::new().expect("jit");
    let mut interp = Interpreter::new();
    // Debug builds interpret slowly: compare the first few million instructions of each.
    let budget: u64 = if cfg!(debug_assertions) { 2_000_000 } else { 30_000_000 };
    for name in NAMES {
        let bench = load(&dir, name);
        for slice in [97_003i64, 1_000_003] {
            let mut pair = Pair::new(&mut interp, &mut jit, &bench.program);
            install(pair.interp, &bench, slice);
            install(pair.jit, &bench, slice);
            let mut used = 0u64;
            loop {
                let (a, b) = (pair.interp.run(), pair.jit.run());
                pair.compare(Some(a), Some(b)).unwrap_or_else(|e| panic!("{name} slice {slice} at {used}: {e}"));
                match a {
                    Exit::OutOfGas => {
                        used += slice as u64;
                        if used >= budget {
                            break;
                        }
                        let g = pair.interp.gas() + slice;
                        pair.each(|b| b.set_gas(g));
                    }
                    Exit::HostCall(HOST_MIX) => pair.each(serve_host_mix),
                    Exit::Halt => break,
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        }
    }
}
