//! Test-vector files: the w3f v0.4 single-run format and the PolkaVM spectool multi-step
//! format (PVMSPEC-1 §10), read into one step-based [`Case`], and discovery of vector folders.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use javm_engine::{GasModel, Profile, NUM_REGS};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::GasChoice;

/// Which file format a case came from (detected per file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorFormat {
    /// w3f jamtestvectors PVM v0.4: one run, flat fields. Also read: the spectool status
    /// names (`out-of-gas`, `ecalli`) with `expected-hostcall`, and a `block-gas-costs`
    /// table, as other generators write them.
    W3f,
    /// PolkaVM spectool: steps and a block-cost table.
    Spectool,
    /// The earlier spectool variant (the GP 0.8.0 gas-model draft): steps tagged with
    /// `"kind"`, `block-gas-costs` as a map from pc to cost, snake_case keys.
    SpectoolDraft,
}

impl VectorFormat {
    pub fn name(self) -> &'static str {
        match self {
            VectorFormat::W3f => "w3f-v0.4",
            VectorFormat::Spectool => "spectool",
            VectorFormat::SpectoolDraft => "spectool-draft",
        }
    }

    /// The profile `--profile auto` picks for this format when the file names none.
    pub fn default_profile(self) -> Profile {
        match self {
            VectorFormat::W3f => Profile::A,
            VectorFormat::Spectool | VectorFormat::SpectoolDraft => Profile::B,
        }
    }

    /// Whether a file of this format describes a single run (its steps are not the file's).
    pub fn single_run(self) -> bool {
        self == VectorFormat::W3f
    }
}

/// Expected state after a run; `None` fields are not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    pub status: Option<String>,
    pub pc: Option<u32>,
    pub gas: Option<i64>,
    pub regs: Option<[u64; NUM_REGS]>,
    /// Every non-zero byte of accessible memory, as chunks.
    pub memory: Option<Vec<Chunk>>,
    pub page_fault_address: Option<u32>,
    pub hostcall: Option<u32>,
}

impl Expect {
    /// Whether this checks anything at all.
    pub fn is_empty(&self) -> bool {
        *self == Expect::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Chunk {
    pub address: u32,
    pub contents: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Region {
    pub address: u32,
    pub length: u32,
    #[serde(alias = "is_writable")]
    pub is_writable: bool,
}

/// One step of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Map(Region),
    Write(Chunk),
    SetReg { reg: usize, value: u64 },
    Run,
    Assert(Box<Expect>),
}

/// A test case in the harness's own step form.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub path: PathBuf,
    pub format: VectorFormat,
    pub program: Vec<u8>,
    pub initial_pc: u32,
    pub initial_gas: i64,
    /// `block-gas-costs` of the file, when it has them.
    pub block_costs: Option<Vec<(u32, u64)>>,
    pub steps: Vec<Step>,
    /// Profile named by the file (`javm-profile`), used by `--profile auto`.
    pub profile_hint: Option<Profile>,
    /// Gas model named by the file (`javm-gas-model`), used by `--gas-model auto`.
    pub gas_hint: Option<GasChoice>,
    /// Fields of the file this reader does not know (JSON paths such as
    /// `steps[2].assert.foo`); they were ignored.
    pub unknown_fields: Vec<String>,
    /// No assert step checks any field: the case can only be run for its outputs
    /// (`vectors --snapshots`), never pass or fail.
    pub asserts_nothing: bool,
}

impl Case {
    /// The gas model `--gas-model auto` picks: the file's cost table when it has one, else
    /// unit cost per block.
    pub fn default_gas_model(&self) -> GasModel {
        match &self.block_costs {
            Some(costs) => GasModel::table(costs.iter().copied()),
            None => GasModel::BlockUnit,
        }
    }

    /// How a report names step `i`: `run` in single-run files (their steps are ours, not the
    /// file's), else `step i` (the index in the file's `steps`).
    pub fn step_label(&self, i: usize) -> String {
        if self.format.single_run() {
            "run".into()
        } else {
            format!("step {i}")
        }
    }
}

/// Why a vector file could not be used.
#[derive(Debug)]
pub struct VectorError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for VectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for VectorError {}

/// `block-gas-costs`: a list of `{pc, cost}` (spectool) or a map from pc to cost (the
/// draft variant).
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub enum Costs {
    List(Vec<BlockCost>),
    Map(BTreeMap<String, u64>),
}

impl Costs {
    fn into_table(self) -> Result<Vec<(u32, u64)>, String> {
        match self {
            Costs::List(l) => Ok(l.into_iter().map(|c| (c.pc, c.cost)).collect()),
            Costs::Map(m) => m
                .into_iter()
                .map(|(pc, cost)| match pc.trim().parse::<u32>() {
                    Ok(pc) => Ok((pc, cost)),
                    Err(_) => Err(format!("block-gas-costs: key {pc:?} is not a pc (a u32)")),
                })
                .collect(),
        }
    }
}

/// A w3f v0.4 file as read and as written (the same type both ways).
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct W3fFile {
    pub name: String,
    pub initial_regs: [u64; NUM_REGS],
    pub initial_pc: u32,
    pub initial_page_map: Vec<Region>,
    pub initial_memory: Vec<Chunk>,
    pub initial_gas: i64,
    pub program: Vec<u8>,
    pub expected_status: String,
    pub expected_regs: [u64; NUM_REGS],
    pub expected_pc: u32,
    pub expected_memory: Vec<Chunk>,
    pub expected_gas: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_page_fault_address: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_hostcall: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_gas_costs: Option<Costs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub javm_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub javm_gas_model: Option<String>,
}

const W3F_KEYS: &[&str] = &[
    "name",
    "initial-regs",
    "initial-pc",
    "initial-page-map",
    "initial-memory",
    "initial-gas",
    "program",
    "expected-status",
    "expected-regs",
    "expected-pc",
    "expected-memory",
    "expected-gas",
    "expected-page-fault-address",
    "expected-hostcall",
    "block-gas-costs",
    "javm-profile",
    "javm-gas-model",
];

/// A spectool file as read and as written.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SpectoolFile {
    pub name: String,
    pub initial_pc: u32,
    pub initial_gas: i64,
    pub program: Vec<u8>,
    pub block_gas_costs: Costs,
    pub steps: Vec<SpectoolStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub javm_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub javm_gas_model: Option<String>,
}

const SPECTOOL_KEYS: &[&str] =
    &["name", "initial-pc", "initial-gas", "program", "block-gas-costs", "steps", "javm-profile", "javm-gas-model"];

#[derive(Deserialize, Serialize)]
pub struct BlockCost {
    pub pc: u32,
    pub cost: u64,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpectoolStep {
    Run {},
    Assert(SpectoolAssert),
    Map(Region),
    Write(Chunk),
    SetReg { reg: u8, value: u64 },
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct SpectoolAssert {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gas: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regs: Option<[u64; NUM_REGS]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Vec<Chunk>>,
    #[serde(alias = "page_fault_address")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_fault_address: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostcall: Option<u32>,
}

const ASSERT_KEYS: &[&str] = &["status", "gas", "pc", "regs", "memory", "page-fault-address", "hostcall"];
const DRAFT_ASSERT_KEYS: &[&str] = &["status", "gas", "pc", "regs", "memory", "page_fault_address", "hostcall"];
const REGION_KEYS: &[&str] = &["address", "length", "is-writable"];
const DRAFT_REGION_KEYS: &[&str] = &["address", "length", "is_writable"];
const CHUNK_KEYS: &[&str] = &["address", "contents"];
const SET_REG_KEYS: &[&str] = &["reg", "value"];

/// A step of the draft variant: `{"kind": "map", "address": …, "is_writable": …}`.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum DraftStep {
    Run,
    Assert(SpectoolAssert),
    Map(Region),
    Write(Chunk),
    SetReg { reg: u8, value: u64 },
}

const STATUSES: [&str; 6] = ["halt", "panic", "page-fault", "out-of-gas", "ecalli", "ecall"];

fn check_status(status: &str) -> Result<(), String> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(format!("unknown status {status:?} (expected one of {})", STATUSES.join(", ")))
    }
}

/// Whether a JSON document is a JSON Schema rather than a vector (skipped in folders).
fn is_schema(value: &Value) -> bool {
    value.get("$schema").is_some()
}

/// Reads one vector file (at most [`crate::input::max_file_bytes`], a regular file). Detects
/// the format from its fields.
pub fn load_case(path: &Path) -> Result<Case, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let text = crate::input::read_text(path).map_err(err)?;
    parse_case_text(&text, path).map_err(err)
}

/// Parses the text of a vector file.
pub fn parse_case_text(text: &str, path: &Path) -> Result<Case, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let draft = object
        .get("steps")
        .and_then(Value::as_array)
        .is_some_and(|steps| steps.iter().any(|s| s.get("kind").is_some()));
    if object.contains_key("steps") && draft {
        let file: SpectoolDraftFile = typed(text, "spectool draft format")?;
        from_draft(file, path, unknown_fields(&value, VectorFormat::SpectoolDraft))
    } else if object.contains_key("steps") {
        let file: SpectoolFile = typed(text, "spectool format")?;
        from_spectool(file, path, unknown_fields(&value, VectorFormat::Spectool))
    } else if object.contains_key("expected-status") {
        let file: W3fFile = typed(text, "w3f v0.4 format")?;
        from_w3f(file, path, unknown_fields(&value, VectorFormat::W3f))
    } else if is_schema(&value) {
        Err("this is a JSON Schema, not a test vector".into())
    } else {
        Err("not a PVM test vector: no `steps` (spectool format) or `expected-status` (w3f v0.4 format)".into())
    }
}

/// Deserialises `text` as `T`; an error names the field (as a JSON path), the line and the
/// column.
fn typed<T: serde::de::DeserializeOwned>(text: &str, format: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            format!("{format}: {inner}")
        } else {
            format!("{format}: field `{path}`: {inner}")
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SpectoolDraftFile {
    name: String,
    initial_pc: u32,
    initial_gas: i64,
    program: Vec<u8>,
    block_gas_costs: Costs,
    steps: Vec<DraftStep>,
    #[serde(default)]
    javm_profile: Option<String>,
    #[serde(default)]
    javm_gas_model: Option<String>,
}

/// The JSON paths of every field of `value` that its format does not define.
fn unknown_fields(value: &Value, format: VectorFormat) -> Vec<String> {
    fn keys(out: &mut Vec<String>, at: &str, v: &Value, known: &[&str]) {
        if let Some(o) = v.as_object() {
            for k in o.keys() {
                if !known.contains(&k.as_str()) {
                    out.push(if at.is_empty() { k.clone() } else { format!("{at}.{k}") });
                }
            }
        }
    }
    fn each(out: &mut Vec<String>, at: &str, v: Option<&Value>, known: &[&str]) {
        for (i, item) in v.and_then(Value::as_array).into_iter().flatten().enumerate() {
            keys(out, &format!("{at}[{i}]"), item, known);
        }
    }
    let mut out = Vec::new();
    match format {
        VectorFormat::W3f => {
            keys(&mut out, "", value, W3F_KEYS);
            each(&mut out, "initial-page-map", value.get("initial-page-map"), REGION_KEYS);
            each(&mut out, "initial-memory", value.get("initial-memory"), CHUNK_KEYS);
            each(&mut out, "expected-memory", value.get("expected-memory"), CHUNK_KEYS);
        }
        VectorFormat::Spectool => {
            keys(&mut out, "", value, SPECTOOL_KEYS);
            each(&mut out, "block-gas-costs", value.get("block-gas-costs"), &["pc", "cost"]);
            for (i, step) in value.get("steps").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let Some((kind, payload)) = step.as_object().and_then(|o| o.iter().next()) else { continue };
                let at = format!("steps[{i}].{kind}");
                match kind.as_str() {
                    "run" => keys(&mut out, &at, payload, &[]),
                    "assert" => {
                        keys(&mut out, &at, payload, ASSERT_KEYS);
                        each(&mut out, &format!("{at}.memory"), payload.get("memory"), CHUNK_KEYS);
                    }
                    "map" => keys(&mut out, &at, payload, REGION_KEYS),
                    "write" => keys(&mut out, &at, payload, CHUNK_KEYS),
                    "set-reg" => keys(&mut out, &at, payload, SET_REG_KEYS),
                    _ => {}
                }
            }
        }
        VectorFormat::SpectoolDraft => {
            keys(&mut out, "", value, SPECTOOL_KEYS);
            for (i, step) in value.get("steps").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let at = format!("steps[{i}]");
                fn with_kind(k: &[&'static str]) -> Vec<&'static str> {
                    [&["kind"][..], k].concat()
                }
                match step.get("kind").and_then(Value::as_str) {
                    Some("run") => keys(&mut out, &at, step, &with_kind(&[])),
                    Some("assert") => {
                        keys(&mut out, &at, step, &with_kind(DRAFT_ASSERT_KEYS));
                        each(&mut out, &format!("{at}.memory"), step.get("memory"), CHUNK_KEYS);
                    }
                    Some("map") => keys(&mut out, &at, step, &with_kind(DRAFT_REGION_KEYS)),
                    Some("write") => keys(&mut out, &at, step, &with_kind(CHUNK_KEYS)),
                    Some("set-reg") => keys(&mut out, &at, step, &with_kind(SET_REG_KEYS)),
                    _ => {}
                }
            }
        }
    }
    out
}

/// Reads the optional `javm-profile` / `javm-gas-model` fields our own vectors carry.
fn hints(profile: Option<String>, gas: Option<String>) -> Result<(Option<Profile>, Option<GasChoice>), String> {
    let profile = match profile {
        None => None,
        Some(p) => Some(Profile::parse(&p).ok_or_else(|| format!("javm-profile {p:?} is not a, b or j"))?),
    };
    let gas = match gas {
        None => None,
        Some(g) => Some(
            GasChoice::parse(&g)
                .ok_or_else(|| format!("javm-gas-model {g:?} is not auto, block-unit, block-table or instruction"))?,
        ),
    };
    Ok((profile, gas))
}

/// The host setup of a case, checked as it is read: page maps follow the schema (page-aligned
/// address and length, length not 0, inside 2^32), writes land in mapped pages, asserts come
/// after a run, and the work the steps ask of the host stays bounded.
#[derive(Default)]
struct Setup {
    /// Mapped byte ranges, merged: start → end.
    mapped: BTreeMap<u64, u64>,
    /// Bytes currently mapped (the sum of `mapped`).
    mapped_bytes: u64,
    /// Pages mapped by all map steps so far (each step counts its whole range).
    map_work: u64,
    /// Mapped pages summed over the run steps (each run's state is observed page by page).
    snapshot_work: u64,
    runs: usize,
    asserts: usize,
}

const PAGE: u64 = 4096;

/// How many pages the map steps of one file may map in all (each step counted whole: 16
/// times the address space).
pub const MAX_MAPPED_PAGES: u64 = 16 << 20;

/// How many mapped pages the run steps of one file may observe in all (a run observes every
/// page mapped at the time: 64 runs over the whole address space).
pub const MAX_OBSERVED_PAGES: u64 = 64 << 20;

impl Setup {
    fn map(&mut self, at: &str, r: &Region) -> Result<(), String> {
        let (start, len) = (u64::from(r.address), u64::from(r.length));
        if start % PAGE != 0 {
            return Err(format!("{at}: address {start:#x} is not page-aligned (a multiple of 4096)"));
        }
        if len == 0 || len % PAGE != 0 {
            return Err(format!("{at}: length {len:#x} is not a positive multiple of the page size (4096)"));
        }
        if start + len > 1 << 32 {
            return Err(format!("{at}: {start:#x}+{len:#x} runs past the 32-bit address space"));
        }
        self.map_work += len / PAGE;
        if self.map_work > MAX_MAPPED_PAGES {
            return Err(format!(
                "{at}: the map steps map more than {MAX_MAPPED_PAGES} pages in all; this file asks too much of the host"
            ));
        }
        // Merge [start, end) with every range it touches.
        let (mut lo, mut hi) = (start, start + len);
        let touching: Vec<(u64, u64)> =
            self.mapped.range(..=hi).rev().take_while(|(_, &e)| e >= lo).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in touching {
            self.mapped.remove(&s);
            self.mapped_bytes -= e - s;
            lo = lo.min(s);
            hi = hi.max(e);
        }
        self.mapped.insert(lo, hi);
        self.mapped_bytes += hi - lo;
        Ok(())
    }

    fn run(&mut self, at: &str) -> Result<(), String> {
        self.runs += 1;
        self.snapshot_work += self.mapped_bytes / PAGE + 1;
        if self.snapshot_work > MAX_OBSERVED_PAGES {
            return Err(format!(
                "{at}: the run steps observe more than {MAX_OBSERVED_PAGES} mapped pages in all; this file asks too much of the host"
            ));
        }
        Ok(())
    }

    fn write(&mut self, at: &str, c: &Chunk) -> Result<(), String> {
        let (start, end) = (u64::from(c.address), u64::from(c.address) + c.contents.len() as u64);
        if end > 1 << 32 {
            return Err(format!("{at}: {} bytes at {start:#x} run past the 32-bit address space", c.contents.len()));
        }
        if start == end {
            return Ok(());
        }
        match self.mapped.range(..=start).next_back() {
            Some((_, &e)) if e >= end => Ok(()),
            Some((_, &e)) if e > start => {
                Err(format!("{at}: writes {start:#x}..{end:#x}, but {e:#x} is not in a mapped page (map it first)"))
            }
            _ => {
                Err(format!("{at}: writes {start:#x}..{end:#x}, but {start:#x} is not in a mapped page (map it first)"))
            }
        }
    }

    fn assert(&mut self, at: &str, e: &Expect) -> Result<(), String> {
        if self.runs == 0 {
            return Err(format!("{at}: assert before any run"));
        }
        if !e.is_empty() {
            self.asserts += 1;
        }
        Ok(())
    }

    /// Whether no assert step checks anything.
    fn asserts_nothing(&self) -> bool {
        self.asserts == 0
    }
}

fn from_w3f(f: W3fFile, path: &Path, unknown_fields: Vec<String>) -> Result<Case, String> {
    check_status(&f.expected_status).map_err(|e| format!("expected-status: {e}"))?;
    let (profile_hint, gas_hint) = hints(f.javm_profile, f.javm_gas_model)?;
    let mut setup = Setup::default();
    for (i, r) in f.initial_page_map.iter().enumerate() {
        setup.map(&format!("initial-page-map[{i}]"), r)?;
    }
    for (i, c) in f.initial_memory.iter().enumerate() {
        setup.write(&format!("initial-memory[{i}]"), c)?;
    }
    setup.run("the run")?;
    let mut steps: Vec<Step> = f.initial_page_map.into_iter().map(Step::Map).collect();
    steps.extend(f.initial_memory.into_iter().map(Step::Write));
    steps.extend(f.initial_regs.iter().enumerate().map(|(reg, &value)| Step::SetReg { reg, value }));
    steps.push(Step::Run);
    if f.expected_status == "page-fault" && f.expected_page_fault_address.is_none() {
        return Err("expected-status is page-fault but expected-page-fault-address is missing".into());
    }
    steps.push(Step::Assert(Box::new(Expect {
        page_fault_address: f.expected_page_fault_address.filter(|_| f.expected_status == "page-fault"),
        // The host-call number is compared on `ecalli` exits (other generators may write the
        // field on every case).
        hostcall: f.expected_hostcall.filter(|_| f.expected_status == "ecalli"),
        status: Some(f.expected_status),
        pc: Some(f.expected_pc),
        gas: Some(f.expected_gas),
        regs: Some(f.expected_regs),
        memory: Some(f.expected_memory),
    })));
    Ok(Case {
        name: f.name,
        path: path.to_path_buf(),
        format: VectorFormat::W3f,
        program: f.program,
        initial_pc: f.initial_pc,
        initial_gas: f.initial_gas,
        block_costs: f.block_gas_costs.map(Costs::into_table).transpose()?,
        steps,
        profile_hint,
        gas_hint,
        unknown_fields,
        asserts_nothing: false,
    })
}

/// The steps of a spectool file (either variant), checked, and whether they assert nothing.
fn spectool_steps(steps: Vec<SpectoolStep>) -> Result<(Vec<Step>, bool), String> {
    let mut setup = Setup::default();
    let mut out = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        let at = format!("steps[{i}]");
        out.push(match step {
            SpectoolStep::Run {} => {
                setup.run(&at)?;
                Step::Run
            }
            SpectoolStep::Map(region) => {
                setup.map(&format!("{at}.map"), &region)?;
                Step::Map(region)
            }
            SpectoolStep::Write(chunk) => {
                setup.write(&format!("{at}.write"), &chunk)?;
                Step::Write(chunk)
            }
            SpectoolStep::SetReg { reg, value } => {
                if reg as usize >= NUM_REGS {
                    return Err(format!("{at}.set-reg: register {reg} is not 0..=12"));
                }
                Step::SetReg { reg: reg as usize, value }
            }
            SpectoolStep::Assert(a) => {
                if let Some(status) = &a.status {
                    check_status(status).map_err(|e| format!("{at}.assert.status: {e}"))?;
                }
                let expect = Expect {
                    status: a.status,
                    pc: a.pc,
                    gas: a.gas,
                    regs: a.regs,
                    memory: a.memory,
                    page_fault_address: a.page_fault_address,
                    hostcall: a.hostcall,
                };
                setup.assert(&format!("{at}.assert"), &expect)?;
                Step::Assert(Box::new(expect))
            }
        });
    }
    Ok((out, setup.asserts_nothing()))
}

fn from_spectool(f: SpectoolFile, path: &Path, unknown_fields: Vec<String>) -> Result<Case, String> {
    let (profile_hint, gas_hint) = hints(f.javm_profile, f.javm_gas_model)?;
    let (steps, asserts_nothing) = spectool_steps(f.steps)?;
    Ok(Case {
        name: f.name,
        path: path.to_path_buf(),
        format: VectorFormat::Spectool,
        program: f.program,
        initial_pc: f.initial_pc,
        initial_gas: f.initial_gas,
        block_costs: Some(f.block_gas_costs.into_table()?),
        steps,
        profile_hint,
        gas_hint,
        unknown_fields,
        asserts_nothing,
    })
}

fn from_draft(f: SpectoolDraftFile, path: &Path, unknown_fields: Vec<String>) -> Result<Case, String> {
    let (profile_hint, gas_hint) = hints(f.javm_profile, f.javm_gas_model)?;
    let steps = f
        .steps
        .into_iter()
        .map(|s| match s {
            DraftStep::Run => SpectoolStep::Run {},
            DraftStep::Assert(a) => SpectoolStep::Assert(a),
            DraftStep::Map(r) => SpectoolStep::Map(r),
            DraftStep::Write(c) => SpectoolStep::Write(c),
            DraftStep::SetReg { reg, value } => SpectoolStep::SetReg { reg, value },
        })
        .collect();
    let (steps, asserts_nothing) = spectool_steps(steps)?;
    Ok(Case {
        name: f.name,
        path: path.to_path_buf(),
        format: VectorFormat::SpectoolDraft,
        program: f.program,
        initial_pc: f.initial_pc,
        initial_gas: f.initial_gas,
        block_costs: Some(f.block_gas_costs.into_table()?),
        steps,
        profile_hint,
        gas_hint,
        unknown_fields,
        asserts_nothing,
    })
}

/// Whether a path looks like a vector file (`*.json`, not a schema).
fn is_vector_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "json") && p.file_name().is_some_and(|n| n != "schema.json")
}

/// The JSON files a path names: the file itself, or every `*.json` below a folder (sorted,
/// each once, JSON Schemas skipped), with the walk's warnings (see [`crate::input::walk`]).
pub fn collect(path: &Path) -> Result<crate::input::Walk, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let walk = crate::input::walk(path, &is_vector_name).map_err(err)?;
    if walk.files.is_empty() {
        return Err(err("no .json vector files found".into()));
    }
    Ok(walk)
}

/// The files of [`collect`], without its warnings.
pub fn collect_files(path: &Path) -> Result<Vec<PathBuf>, VectorError> {
    collect(path).map(|w| w.files)
}

/// Where the public suites live when no path is given: `$JAVM_VECTORS`, else
/// `vectors-public/` or `shared/vectors/` in the working folder or one of its ancestors (so
/// `../shared/vectors` from the project root, and the project's `vectors-public/` from any
/// folder inside it).
pub fn default_vector_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("JAVM_VECTORS") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() { Ok(dir) } else { Err(format!("JAVM_VECTORS={} is not a folder", dir.display())) };
    }
    if let Some(dir) = crate::input::find_upwards(&["vectors-public", "shared/vectors"]) {
        return Ok(dir);
    }
    Err("no vector folder found: pass a PATH, set JAVM_VECTORS, or fetch the public suites with \
         `scripts/fetch-vectors.sh` (it clones them into vectors-public/)"
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Case, String> {
        parse_case_text(json, Path::new("t.json"))
    }

    #[test]
    fn rejects_unknown_documents_with_a_reason() {
        assert!(parse("[]").unwrap_err().contains("not a JSON object"));
        assert!(parse("{}").unwrap_err().contains("not a PVM test vector"));
        assert!(parse(r#"{"$schema": "x"}"#).unwrap_err().contains("JSON Schema"));
        let e = parse(r#"{"expected-status": "halt"}"#).unwrap_err();
        assert!(e.contains("w3f v0.4 format") && e.contains("missing field"), "{e}");
        let e = parse(r#"{"steps": []}"#).unwrap_err();
        assert!(e.contains("spectool format"), "{e}");
    }

    #[test]
    fn parses_a_spectool_case() {
        let case = parse(
            r#"{"name":"x","initial-pc":0,"initial-gas":10,"program":[0,0,1,0,1],
                "block-gas-costs":[{"pc":0,"cost":1}],
                "steps":[{"map":{"address":65536,"length":4096,"is-writable":true}},
                         {"set-reg":{"reg":3,"value":5}},{"run":{}},
                         {"assert":{"status":"panic","pc":0}}]}"#,
        )
        .unwrap();
        assert_eq!(case.format, VectorFormat::Spectool);
        assert_eq!(case.steps.len(), 4);
        assert_eq!(case.block_costs, Some(vec![(0, 1)]));
        assert!(parse(r#"{"name":"x","initial-pc":0,"initial-gas":10,"program":[],"block-gas-costs":[],"steps":[{"set-reg":{"reg":13,"value":5}}]}"#)
            .unwrap_err()
            .contains("register 13"));
        assert!(parse(r#"{"name":"x","initial-pc":0,"initial-gas":10,"program":[],"block-gas-costs":[],"steps":[{"assert":{"status":"weird"}}]}"#)
            .unwrap_err()
            .contains("unknown status"));
    }
}
