//! Test-vector files: the w3f v0.4 single-run format and the PolkaVM spectool multi-step
//! format (PVMSPEC-1 §10), read into one step-based [`Case`], and discovery of vector folders.

use std::fmt;
use std::path::{Path, PathBuf};

use javm_engine::{GasModel, Profile, NUM_REGS};
use serde::Deserialize;
use serde_json::Value;

use crate::run::GasChoice;

/// Which file format a case came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorFormat {
    /// w3f jamtestvectors PVM v0.4: one run, flat fields.
    W3f,
    /// PolkaVM spectool: steps and a block-cost table.
    Spectool,
}

impl VectorFormat {
    pub fn name(self) -> &'static str {
        match self {
            VectorFormat::W3f => "w3f-v0.4",
            VectorFormat::Spectool => "spectool",
        }
    }

    /// The profile `--profile auto` picks for this format when the file names none.
    pub fn default_profile(self) -> Profile {
        match self {
            VectorFormat::W3f => Profile::A,
            VectorFormat::Spectool => Profile::B,
        }
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

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    pub address: u32,
    pub contents: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Region {
    pub address: u32,
    pub length: u32,
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
    /// `block-gas-costs` of spectool files.
    pub block_costs: Option<Vec<(u32, u64)>>,
    pub steps: Vec<Step>,
    /// Profile named by the file (`javm-profile`), used by `--profile auto`.
    pub profile_hint: Option<Profile>,
    /// Gas model named by the file (`javm-gas-model`), used by `--gas-model auto`.
    pub gas_hint: Option<GasChoice>,
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

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct W3fFile {
    name: String,
    initial_regs: [u64; NUM_REGS],
    initial_pc: u32,
    initial_page_map: Vec<Region>,
    initial_memory: Vec<Chunk>,
    initial_gas: i64,
    program: Vec<u8>,
    expected_status: String,
    expected_regs: [u64; NUM_REGS],
    expected_pc: u32,
    expected_memory: Vec<Chunk>,
    expected_gas: i64,
    #[serde(default)]
    expected_page_fault_address: Option<u32>,
    #[serde(default)]
    javm_profile: Option<String>,
    #[serde(default)]
    javm_gas_model: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SpectoolFile {
    name: String,
    initial_pc: u32,
    initial_gas: i64,
    program: Vec<u8>,
    block_gas_costs: Vec<BlockCost>,
    steps: Vec<SpectoolStep>,
    #[serde(default)]
    javm_profile: Option<String>,
    #[serde(default)]
    javm_gas_model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockCost {
    pc: u32,
    cost: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum SpectoolStep {
    Run {},
    Assert(SpectoolAssert),
    Map(Region),
    Write(Chunk),
    SetReg { reg: u8, value: u64 },
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SpectoolAssert {
    status: Option<String>,
    gas: Option<i64>,
    pc: Option<u32>,
    regs: Option<[u64; NUM_REGS]>,
    memory: Option<Vec<Chunk>>,
    page_fault_address: Option<u32>,
    hostcall: Option<u32>,
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

/// Reads one vector file. Detects the format from its fields.
pub fn load_case(path: &Path) -> Result<Case, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| err(format!("malformed JSON: {e}")))?;
    parse_case(value, path).map_err(err)
}

fn parse_case(value: Value, path: &Path) -> Result<Case, String> {
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    if object.contains_key("steps") {
        let file: SpectoolFile = serde_json::from_value(value).map_err(|e| format!("spectool format: {e}"))?;
        from_spectool(file, path)
    } else if object.contains_key("expected-status") {
        let file: W3fFile = serde_json::from_value(value).map_err(|e| format!("w3f v0.4 format: {e}"))?;
        from_w3f(file, path)
    } else if is_schema(&value) {
        Err("this is a JSON Schema, not a test vector".into())
    } else {
        Err("not a PVM test vector: no `steps` (spectool format) or `expected-status` (w3f v0.4 format)".into())
    }
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

fn from_w3f(f: W3fFile, path: &Path) -> Result<Case, String> {
    check_status(&f.expected_status)?;
    let (profile_hint, gas_hint) = hints(f.javm_profile, f.javm_gas_model)?;
    let mut steps: Vec<Step> = f.initial_page_map.into_iter().map(Step::Map).collect();
    steps.extend(f.initial_memory.into_iter().map(Step::Write));
    steps.extend(f.initial_regs.iter().enumerate().map(|(reg, &value)| Step::SetReg { reg, value }));
    steps.push(Step::Run);
    if f.expected_status == "page-fault" && f.expected_page_fault_address.is_none() {
        return Err("expected-status is page-fault but expected-page-fault-address is missing".into());
    }
    steps.push(Step::Assert(Box::new(Expect {
        page_fault_address: f.expected_page_fault_address.filter(|_| f.expected_status == "page-fault"),
        status: Some(f.expected_status),
        pc: Some(f.expected_pc),
        gas: Some(f.expected_gas),
        regs: Some(f.expected_regs),
        memory: Some(f.expected_memory),
        hostcall: None,
    })));
    Ok(Case {
        name: f.name,
        path: path.to_path_buf(),
        format: VectorFormat::W3f,
        program: f.program,
        initial_pc: f.initial_pc,
        initial_gas: f.initial_gas,
        block_costs: None,
        steps,
        profile_hint,
        gas_hint,
    })
}

fn from_spectool(f: SpectoolFile, path: &Path) -> Result<Case, String> {
    let (profile_hint, gas_hint) = hints(f.javm_profile, f.javm_gas_model)?;
    let mut steps = Vec::with_capacity(f.steps.len());
    for (i, step) in f.steps.into_iter().enumerate() {
        steps.push(match step {
            SpectoolStep::Run {} => Step::Run,
            SpectoolStep::Map(region) => Step::Map(region),
            SpectoolStep::Write(chunk) => Step::Write(chunk),
            SpectoolStep::SetReg { reg, value } => {
                if reg as usize >= NUM_REGS {
                    return Err(format!("step {i}: set-reg register {reg} is not 0..=12"));
                }
                Step::SetReg { reg: reg as usize, value }
            }
            SpectoolStep::Assert(a) => {
                if let Some(status) = &a.status {
                    check_status(status).map_err(|e| format!("step {i}: {e}"))?;
                }
                Step::Assert(Box::new(Expect {
                    status: a.status,
                    pc: a.pc,
                    gas: a.gas,
                    regs: a.regs,
                    memory: a.memory,
                    page_fault_address: a.page_fault_address,
                    hostcall: a.hostcall,
                }))
            }
        });
    }
    Ok(Case {
        name: f.name,
        path: path.to_path_buf(),
        format: VectorFormat::Spectool,
        program: f.program,
        initial_pc: f.initial_pc,
        initial_gas: f.initial_gas,
        block_costs: Some(f.block_gas_costs.into_iter().map(|c| (c.pc, c.cost)).collect()),
        steps,
        profile_hint,
        gas_hint,
    })
}

/// The JSON files a path names: the file itself, or every `*.json` below a folder (sorted,
/// JSON Schemas skipped).
pub fn collect_files(path: &Path) -> Result<Vec<PathBuf>, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot open: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| err(format!("cannot list {}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| err(format!("cannot list {}: {e}", dir.display())))?;
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "json") && p.file_name().is_some_and(|n| n != "schema.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(err("no .json vector files found".into()));
    }
    Ok(out)
}

/// Where the public suites live when no path is given: `$JAVM_VECTORS`, else
/// `../shared/vectors` (from the working directory, then from the workspace root).
pub fn default_vector_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("JAVM_VECTORS") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() { Ok(dir) } else { Err(format!("JAVM_VECTORS={} is not a folder", dir.display())) };
    }
    let candidates = [
        PathBuf::from("../shared/vectors"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors-public"),
    ];
    for c in candidates {
        if c.is_dir() {
            return Ok(c.canonicalize().unwrap_or(c));
        }
    }
    Err("no vector folder found: pass a PATH, set JAVM_VECTORS, or fetch the public suites with \
         `scripts/fetch-vectors.sh` (it clones them into vectors-public/)"
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Case, String> {
        parse_case(serde_json::from_str(json).unwrap(), Path::new("t.json"))
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
