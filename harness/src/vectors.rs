//! Test-vector files: the w3f v0.4 single-run format and the PolkaVM spectool multi-step
//! format (PVMSPEC-1 §10), read into one step-based [`Case`], and discovery of vector folders.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use javm_engine::{GasModel, Profile, NUM_REGS};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// Which gas model to run with (also a command-line value: `--gas-model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GasChoice {
    /// The case's cost table when it has one, else unit cost per block.
    #[default]
    Auto,
    BlockUnit,
    BlockTable,
    Instruction,
}

impl GasChoice {
    pub const ALL: [GasChoice; 4] =
        [GasChoice::Auto, GasChoice::BlockUnit, GasChoice::BlockTable, GasChoice::Instruction];

    /// The name files (`javm-gas-model`) and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            GasChoice::Auto => "auto",
            GasChoice::BlockUnit => "block-unit",
            GasChoice::BlockTable => "block-table",
            GasChoice::Instruction => "instruction",
        }
    }

    pub fn parse(s: &str) -> Option<GasChoice> {
        GasChoice::ALL.into_iter().find(|g| g.name() == s)
    }
}

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
#[derive(Serialize)]
#[serde(untagged)]
pub enum Costs {
    List(Vec<BlockCost>),
    Map(BTreeMap<String, u64>),
}

impl<'de> Deserialize<'de> for Costs {
    /// Read element by element (not buffered, as an untagged enum would be), so unknown
    /// fields inside the entries are reported like any other.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Costs, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Costs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of {pc, cost} or a map from pc to cost")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Costs, A::Error> {
                let mut list = Vec::new();
                while let Some(entry) = seq.next_element::<BlockCost>()? {
                    list.push(entry);
                }
                Ok(Costs::List(list))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Costs, A::Error> {
                let mut costs = BTreeMap::new();
                while let Some((pc, cost)) = map.next_entry::<String, u64>()? {
                    costs.insert(pc, cost);
                }
                Ok(Costs::Map(costs))
            }
        }
        d.deserialize_any(V)
    }
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

/// A step of the draft variant, `{"kind": "map", "address": …, "is_writable": …}`, read
/// flat (every field any kind may carry) so that fields no kind defines are reported.
#[derive(Deserialize)]
struct DraftStep {
    kind: String,
    address: Option<u32>,
    length: Option<u32>,
    #[serde(alias = "is-writable")]
    is_writable: Option<bool>,
    contents: Option<Vec<u8>>,
    reg: Option<u8>,
    value: Option<u64>,
    status: Option<String>,
    gas: Option<i64>,
    pc: Option<u32>,
    regs: Option<[u64; NUM_REGS]>,
    memory: Option<Vec<Chunk>>,
    #[serde(alias = "page-fault-address")]
    page_fault_address: Option<u32>,
    hostcall: Option<u32>,
}

impl DraftStep {
    /// The step in the spectool form, or why it is not one.
    fn into_step(self, at: &str) -> Result<SpectoolStep, String> {
        let kind = self.kind.clone();
        let missing = |field: &str| format!("{at}: a `{kind}` step needs `{field}`");
        Ok(match self.kind.as_str() {
            "run" => SpectoolStep::Run {},
            "map" => SpectoolStep::Map(Region {
                address: self.address.ok_or_else(|| missing("address"))?,
                length: self.length.ok_or_else(|| missing("length"))?,
                is_writable: self.is_writable.ok_or_else(|| missing("is_writable"))?,
            }),
            "write" => SpectoolStep::Write(Chunk {
                address: self.address.ok_or_else(|| missing("address"))?,
                contents: self.contents.ok_or_else(|| missing("contents"))?,
            }),
            "set-reg" => SpectoolStep::SetReg {
                reg: self.reg.ok_or_else(|| missing("reg"))?,
                value: self.value.ok_or_else(|| missing("value"))?,
            },
            "assert" => SpectoolStep::Assert(SpectoolAssert {
                status: self.status,
                gas: self.gas,
                pc: self.pc,
                regs: self.regs,
                memory: self.memory,
                page_fault_address: self.page_fault_address,
                hostcall: self.hostcall,
            }),
            other => return Err(format!("{at}: unknown step kind {other:?} (run, map, write, set-reg, assert)")),
        })
    }
}

const STATUSES: [&str; 6] = ["halt", "panic", "page-fault", "out-of-gas", "ecalli", "ecall"];

fn check_status(status: &str) -> Result<(), String> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(format!("unknown status {status:?} (expected one of {})", STATUSES.join(", ")))
    }
}

/// Reads one vector file (at most [`crate::input::max_file_bytes`], a regular file). Detects
/// the format from its fields.
pub fn load_case(path: &Path) -> Result<Case, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let text = crate::input::read_text(path).map_err(err)?;
    parse_case_text(&text, path).map_err(err)
}

/// Parses the text of a vector file. Reading never builds a JSON tree of the whole file
/// (a file of a few million numbers stays a few times its own size in memory): the format
/// is found by a probe that keeps nothing, then the file is read once into its own types.
pub fn parse_case_text(text: &str, path: &Path) -> Result<Case, String> {
    serde_json::from_str::<IgnoredAny>(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let probe = serde_json::from_str::<Probe>(text).map_err(|_| "not a JSON object".to_string())?;
    if probe.steps.is_some_and(|s| s.kind_tagged) {
        let (file, unknown) = typed::<SpectoolDraftFile>(text, "spectool draft format")?;
        from_draft(file, path, unknown)
    } else if probe.steps.is_some() {
        let (file, unknown) = typed::<SpectoolFile>(text, "spectool format")?;
        from_spectool(file, path, unknown)
    } else if probe.expected_status {
        let (file, unknown) = typed::<W3fFile>(text, "w3f v0.4 format")?;
        from_w3f(file, path, unknown)
    } else if probe.schema {
        Err("this is a JSON Schema, not a test vector".into())
    } else {
        Err("not a PVM test vector: no `steps` (spectool format) or `expected-status` (w3f v0.4 format)".into())
    }
}

/// What decides a file's format: which of `steps`, `expected-status` and `$schema` it has,
/// and whether its steps are tagged with `"kind"`. Keeps nothing else.
#[derive(Default)]
struct Probe {
    steps: Option<StepsProbe>,
    expected_status: bool,
    schema: bool,
    /// A top-level `kernel` key: a kernel vector (`crate::kernel_vectors`).
    kernel: bool,
}

/// Whether the text of a JSON file is a kernel vector (a top-level `"kernel"` field).
pub fn is_kernel_text(text: &str) -> bool {
    serde_json::from_str::<Probe>(text).is_ok_and(|p| p.kernel)
}

#[derive(Clone, Copy, Default)]
struct StepsProbe {
    kind_tagged: bool,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Probe, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Probe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                let mut probe = Probe::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*key {
                        "steps" => probe.steps = Some(map.next_value::<StepsProbe>()?),
                        "expected-status" => {
                            map.next_value::<IgnoredAny>()?;
                            probe.expected_status = true;
                        }
                        "$schema" => {
                            map.next_value::<IgnoredAny>()?;
                            probe.schema = true;
                        }
                        "kernel" => {
                            map.next_value::<IgnoredAny>()?;
                            probe.kernel = true;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(probe)
            }
        }
        d.deserialize_map(V)
    }
}

/// Visitor methods that take any scalar as the default value: a probe leaves judging the
/// shape of the file to the typed reading.
macro_rules! accept_scalars {
    ($t:ty) => {
        fn visit_bool<E>(self, _: bool) -> Result<$t, E> {
            Ok(<$t>::default())
        }
        fn visit_i64<E>(self, _: i64) -> Result<$t, E> {
            Ok(<$t>::default())
        }
        fn visit_u64<E>(self, _: u64) -> Result<$t, E> {
            Ok(<$t>::default())
        }
        fn visit_f64<E>(self, _: f64) -> Result<$t, E> {
            Ok(<$t>::default())
        }
        fn visit_str<E>(self, _: &str) -> Result<$t, E> {
            Ok(<$t>::default())
        }
        fn visit_unit<E>(self) -> Result<$t, E> {
            Ok(<$t>::default())
        }
    };
}

impl<'de> Deserialize<'de> for StepsProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StepsProbe, D::Error> {
        /// Whether any element of an array is an object with a `kind` key; anything else
        /// (not an array, elements that are not objects) is left to the typed reading.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StepsProbe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StepsProbe, A::Error> {
                let mut probe = StepsProbe::default();
                while let Some(step) = seq.next_element::<StepProbe>()? {
                    probe.kind_tagged |= step.0;
                }
                Ok(probe)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StepsProbe, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StepsProbe::default())
            }
            accept_scalars!(StepsProbe);
        }
        d.deserialize_any(V)
    }
}

/// Whether one step is an object with a `kind` key.
#[derive(Default)]
struct StepProbe(bool);

impl<'de> Deserialize<'de> for StepProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StepProbe, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StepProbe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StepProbe, A::Error> {
                let mut kind = false;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    kind |= key == "kind";
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(StepProbe(kind))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StepProbe, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StepProbe::default())
            }
            accept_scalars!(StepProbe);
        }
        d.deserialize_any(V)
    }
}

/// A JSON path as reports write it: `steps[2].assert.foo`.
fn path_text(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", path_text(parent)),
        Path::Map { parent, key } => {
            let parent = path_text(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => path_text(parent),
    }
}

/// Deserialises `text` as `T`, collecting the JSON paths of the fields `T` does not define;
/// an error names the field (as a JSON path), the line and the column.
fn typed<T: serde::de::DeserializeOwned>(text: &str, format: &str) -> Result<(T, Vec<String>), String> {
    let mut unknown = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let mut record = |p: serde_ignored::Path| unknown.push(path_text(&p));
    let ignoring = serde_ignored::Deserializer::new(&mut de, &mut record);
    let value = serde_path_to_error::deserialize(ignoring).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            format!("{format}: {inner}")
        } else {
            format!("{format}: field `{path}`: {inner}")
        }
    })?;
    Ok((value, unknown))
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
        .enumerate()
        .map(|(i, s)| s.into_step(&format!("steps[{i}]")))
        .collect::<Result<Vec<_>, String>>()?;
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
