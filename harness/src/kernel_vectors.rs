//! Kernel vectors (KSPEC-1): JSON files that describe an initial cap cache and kernel-assist
//! state, the legs of an invocation (invoke, resume) and the expected outcome of each leg. The
//! format is documented in `vectors/README.md`; a file is a kernel vector when its top-level
//! object has a `"kernel"` field.
//!
//! Loading resolves every name and assembles every image; any problem is an error naming the
//! file and the place in it, never a panic. Running gives, per backend, every KOBS-1 record and
//! each leg's end state; the first backend's are checked against the expectations and every
//! other backend's observations are compared with the first one's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use javm_cap::hash::to_hex;
use javm_cap::{
    CNodeCap, CacheDirectory, Cap, CapHashOrRef, DataCap, EndpointDef, Hash, ImageCap, ImageSlotEntry, InstanceCap,
    MemoryMapping, RwOverlay, SlotIdx, TypeCap, OOG_MARKER,
};
use javm_engine::{asm, Config, GasModel, Profile};
use javm_kernel::differential::{compare, run_scenario, Leg, LegRecord, RunRecord, Scenario};
use javm_kernel::ecall::op;
use javm_kernel::observe::{show_outcome, ObsOutcome, Point};
use javm_kernel::{BackendFactory, CallResult, EcallOutcome, FaultReason, InMemoryAssist, KernelAssist};
use serde::Deserialize;
use serde_json::Value;

use crate::run::{Failure, Outcome};
use crate::state::Difference;
use crate::vectors::VectorError;

/// The only format version.
pub const FORMAT_VERSION: u64 = 1;

/// Whether the JSON file at `path` is a kernel vector (a top-level `"kernel"` field).
pub fn is_kernel_vector(path: &Path) -> bool {
    let Ok(text) = crate::input::read_text(path) else { return false };
    if !text.contains("\"kernel\"") {
        return false;
    }
    let Ok(value) = serde_json::from_str::<Value>(&text) else { return false };
    value.get("kernel").is_some()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    kernel: u64,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    caps: BTreeMap<String, CapDef>,
    #[serde(default)]
    opaque: BTreeMap<String, String>,
    #[serde(default)]
    assist: AssistDef,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default)]
    gas_model: Option<String>,
    legs: Vec<LegDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapDef {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    cnode: Option<CNodeDef>,
    #[serde(default)]
    image: Option<ImageDef>,
    #[serde(default)]
    instance: Option<InstanceDef>,
    #[serde(default, rename = "type")]
    type_: Option<TypeDef>,
    #[serde(default = "yes")]
    publish: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CNodeDef {
    size_log: u8,
    #[serde(default)]
    slots: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CodeDef {
    Text(String),
    Lines(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageDef {
    code: CodeDef,
    #[serde(default)]
    endpoints: BTreeMap<String, EndpointJson>,
    #[serde(default)]
    mappings: Vec<MappingDef>,
    #[serde(default)]
    pinned: BTreeMap<String, String>,
    #[serde(default)]
    initial: BTreeMap<String, String>,
    #[serde(default)]
    yield_slot: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndpointJson {
    #[serde(default)]
    entry_pc: u64,
    #[serde(default)]
    regs: BTreeMap<String, u64>,
    #[serde(default)]
    stack_top: u64,
    #[serde(default)]
    arg_cnode_slot: u32,
    #[serde(default)]
    arg_cnode_size: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingDef {
    start: u64,
    size: u64,
    #[serde(default)]
    path: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceDef {
    image: String,
    cnode: String,
    #[serde(default)]
    chain: Option<String>,
    #[serde(default)]
    mem_size: u32,
    #[serde(default)]
    regs: BTreeMap<String, u64>,
    #[serde(default)]
    overlays: Vec<OverlayDef>,
    #[serde(default)]
    pc: u64,
    #[serde(default)]
    gas: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayDef {
    start: u32,
    data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeDef {
    chain: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AssistDef {
    #[serde(default)]
    quotas: BTreeMap<String, u64>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    catchers: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegDef {
    #[serde(default)]
    invoke: Option<InvokeDef>,
    #[serde(default)]
    resume: Option<ResumeDef>,
    #[serde(default)]
    expect: ExpectDef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeDef {
    instance: String,
    #[serde(default)]
    endpoint: u8,
    #[serde(default)]
    args: [u64; 4],
    gas: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeDef {
    #[serde(default)]
    scratchpad: Option<String>,
    #[serde(default)]
    extra_gas: u64,
}

/// `null` in JSON, distinguished from an absent field.
fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExpectDef {
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    return_value: Option<u64>,
    #[serde(default, deserialize_with = "some_value")]
    reflected: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_value")]
    payload: Option<Option<String>>,
    #[serde(default)]
    gas_used: Option<u64>,
    #[serde(default)]
    fault_address: Option<u32>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, deserialize_with = "some_value")]
    last_error: Option<Option<String>>,
    #[serde(default)]
    ecalls: Option<Vec<String>>,
    #[serde(default)]
    regs: BTreeMap<String, u64>,
    #[serde(default)]
    pc: Option<u32>,
    #[serde(default)]
    gas: Option<i64>,
    #[serde(default)]
    slots: Option<BTreeMap<String, String>>,
    #[serde(default)]
    stack_len: Option<usize>,
    #[serde(default)]
    published: Option<PublishedDef>,
    #[serde(default)]
    assist: Option<AssistExpectDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishedDef {
    #[serde(default)]
    count: Option<usize>,
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssistExpectDef {
    #[serde(default)]
    quotas: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    next_file_id: Option<u64>,
}

/// A name in an expectation, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpRef {
    /// A hash known when loading.
    Hash(Hash),
    /// The leg's post-HALT instance (`@post`).
    Post,
    /// That instance's root cnode (`@post_cnode`).
    PostCnode,
}

/// What one leg must give; `None` fields are not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegExpect {
    pub result: Option<String>,
    pub return_value: Option<u64>,
    pub reflected: Option<Option<ExpRef>>,
    pub payload: Option<Option<ExpRef>>,
    pub gas_used: Option<u64>,
    pub fault_address: Option<u32>,
    pub error: Option<String>,
    pub last_error: Option<Option<String>>,
    pub ecalls: Option<Vec<String>>,
    pub regs: BTreeMap<usize, u64>,
    pub pc: Option<u32>,
    pub gas: Option<i64>,
    pub slots: Option<BTreeMap<u32, ExpRef>>,
    pub stack_len: Option<usize>,
    pub published_count: Option<usize>,
    pub published_include: Vec<ExpRef>,
    pub quotas: Option<BTreeMap<u64, u64>>,
    pub files: Option<BTreeMap<u64, ExpRef>>,
    pub next_file_id: Option<u64>,
}

/// A loaded kernel vector.
#[derive(Clone, Debug)]
pub struct KernelVector {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub scenario: Scenario,
    pub expects: Vec<LegExpect>,
    /// Readable names of known hashes, for reports and snapshots.
    pub names: BTreeMap<Hash, String>,
    legs_text: Vec<String>,
}

/// Resolves names while a file is loaded.
struct Loader<'a> {
    caps: &'a BTreeMap<String, CapDef>,
    opaque: &'a BTreeMap<String, String>,
    catchers: BTreeMap<String, Hash>,
    built: BTreeMap<String, Hash>,
    building: BTreeSet<String>,
    cache: CacheDirectory,
    names: BTreeMap<Hash, String>,
    /// How deep references nest right now (`pair:` inside `pair:`, caps naming caps).
    depth: usize,
}

/// An error message cut to a readable length (references can be arbitrarily long).
fn clip(message: &str) -> String {
    const MAX: usize = 300;
    match message.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} more bytes)", &message[..i], message.len() - i),
        None => message.to_string(),
    }
}

/// How deep references may nest in a kernel vector.
const MAX_NESTING: usize = 64;

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// `#XX` (one byte repeated) or `#` followed by 64 hex digits.
fn hash_literal(s: &str) -> Option<Hash> {
    let hex = s.strip_prefix('#')?;
    let bytes = parse_hex(hex)?;
    match bytes.len() {
        1 => Some([bytes[0]; 32]),
        32 => bytes.try_into().ok(),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(key: &str, at: &str) -> Result<T, String> {
    key.parse().map_err(|_| format!("{at}: `{key}` is not a number"))
}

fn data_bytes(v: &Value, at: &str) -> Result<Vec<u8>, String> {
    let bad =
        || format!("{at}: data is a string, or an object with one of `text`, `hex`, `bytes` and an optional `pages`");
    let (bytes, pages) = match v {
        Value::String(s) => (s.as_bytes().to_vec(), 1),
        Value::Object(o) => {
            for k in o.keys() {
                if !["text", "hex", "bytes", "pages"].contains(&k.as_str()) {
                    return Err(format!("{at}: unknown data field `{k}`"));
                }
            }
            let bytes = match (o.get("text"), o.get("hex"), o.get("bytes")) {
                (Some(Value::String(t)), None, None) => t.as_bytes().to_vec(),
                (None, Some(Value::String(h)), None) => {
                    parse_hex(h).ok_or_else(|| format!("{at}: `{h}` is not an even number of hex digits"))?
                }
                (None, None, Some(Value::Array(a))) => a
                    .iter()
                    .map(|x| x.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| format!("{at}: `bytes` must be numbers 0..=255"))?,
                (None, None, None) => Vec::new(),
                _ => return Err(bad()),
            };
            let pages = match o.get("pages") {
                None => 1,
                Some(p) => {
                    p.as_u64().filter(|&p| p <= 1 << 10).ok_or_else(|| format!("{at}: `pages` must be 0..=1024"))?
                }
            };
            (bytes, pages)
        }
        _ => return Err(bad()),
    };
    let len = bytes.len().div_ceil(4096).max(pages as usize).max(1) * 4096;
    let mut content = bytes;
    content.resize(len, 0);
    Ok(content)
}

fn regs_map(m: &BTreeMap<String, u64>, at: &str) -> Result<[u64; 13], String> {
    let mut regs = [0u64; 13];
    for (k, v) in m {
        let i: usize = number(k, at)?;
        if i >= 13 {
            return Err(format!("{at}: register {i} is not 0..=12"));
        }
        regs[i] = *v;
    }
    Ok(regs)
}

/// An image's code as the assembler sees it.
fn code_text(c: &CodeDef) -> String {
    match c {
        CodeDef::Text(t) => t.clone(),
        CodeDef::Lines(lines) => lines.join("\n"),
    }
}

/// An image with the code, packed bitmask and jump table of `text` assembled for profile J,
/// and otherwise empty.
pub fn image_from_asm(text: &str) -> Result<ImageCap, String> {
    let blob = asm::assemble(text, Profile::J).map_err(|e| e.to_string())?;
    let mut bitmask = vec![0u8; blob.code.len().div_ceil(8)];
    for (i, s) in blob.starts.iter().enumerate() {
        if *s {
            bitmask[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(ImageCap { jump_table: blob.jump_table, ..ImageCap::with_code(blob.code, bitmask) })
}

impl Loader<'_> {
    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_NESTING`].
    fn nested<T>(&mut self, at: &str, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!("{at}: references nest deeper than {MAX_NESTING} levels"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn resolve(&mut self, name: &str, at: &str) -> Result<Hash, String> {
        self.nested(at, |l| l.resolve_here(name, at)).map_err(|e| clip(&e))
    }

    fn resolve_here(&mut self, name: &str, at: &str) -> Result<Hash, String> {
        if name.starts_with('#') {
            return hash_literal(name)
                .ok_or_else(|| format!("{at}: `{name}` is not a hash literal (`#` and 2 or 64 hex digits)"));
        }
        if name == "OOG" {
            return Ok(OOG_MARKER);
        }
        if let Some(pair) = name.strip_prefix("pair:") {
            let Some((a, b)) = pair.split_once(',') else {
                return Err(format!("{at}: `{name}` should be `pair:A,B`"));
            };
            let (a, b) = (self.resolve(a.trim(), at)?, self.resolve(b.trim(), at)?);
            return Ok(javm_cap::hash_pair(&a, &b));
        }
        if let Some(h) = self.catchers.get(name) {
            return Ok(*h);
        }
        if let Some(lit) = self.opaque.get(name) {
            let h = hash_literal(lit).ok_or_else(|| format!("opaque.{name}: `{lit}` is not a hash literal"))?;
            self.names.entry(h).or_insert_with(|| name.to_string());
            return Ok(h);
        }
        if self.caps.contains_key(name) {
            return self.build(name);
        }
        Err(format!("{at}: dangling reference `{name}` (not a cap, opaque hash, catcher, `OOG` or `#` literal)"))
    }

    fn build(&mut self, name: &str) -> Result<Hash, String> {
        self.nested(&format!("caps.{name}"), |l| l.build_here(name))
    }

    fn build_here(&mut self, name: &str) -> Result<Hash, String> {
        if let Some(h) = self.built.get(name) {
            return Ok(*h);
        }
        if !self.building.insert(name.to_string()) {
            return Err(format!("caps.{name}: refers to itself"));
        }
        let caps = self.caps;
        let def = &caps[name];
        let at = format!("caps.{name}");
        let kinds =
            [def.data.is_some(), def.cnode.is_some(), def.image.is_some(), def.instance.is_some(), def.type_.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(format!("{at}: needs exactly one of `data`, `cnode`, `image`, `instance`, `type`"));
        }
        let cap = if let Some(d) = &def.data {
            Cap::Data(DataCap { content: data_bytes(d, &format!("{at}.data"))? })
        } else if let Some(c) = &def.cnode {
            let mut cn = CNodeCap { size_log: c.size_log, slots: Default::default() };
            for (k, v) in &c.slots {
                let slot_at = format!("{at}.cnode.slots.{k}");
                let s: u32 = number(k, &slot_at)?;
                let h = self.resolve(v, &slot_at)?;
                cn.slots.insert(s, CapHashOrRef::Hash(h));
            }
            Cap::CNode(cn)
        } else if let Some(i) = &def.image {
            Cap::Image(self.image(i, &format!("{at}.image"))?)
        } else if let Some(i) = &def.instance {
            let iat = format!("{at}.instance");
            let image_hash = self.resolve(&i.image, &format!("{iat}.image"))?;
            let root = self.resolve(&i.cnode, &format!("{iat}.cnode"))?;
            let chain = match &i.chain {
                None => [0; 32],
                Some(c) => self.resolve(c, &format!("{iat}.chain"))?,
            };
            let mut overlays = Vec::new();
            for (k, o) in i.overlays.iter().enumerate() {
                overlays
                    .push(RwOverlay { start: o.start, bytes: data_bytes(&o.data, &format!("{iat}.overlays[{k}]"))? });
            }
            Cap::Instance(InstanceCap {
                image_hash_chain: chain,
                image_hash,
                root_cnode: CapHashOrRef::Hash(root),
                rw_overlays: overlays,
                mem_size: i.mem_size,
                regs: regs_map(&i.regs, &format!("{iat}.regs"))?,
                pc: i.pc,
                gas_remaining: i.gas,
            })
        } else if let Some(t) = &def.type_ {
            Cap::Type(TypeCap { image_hash_chain: self.resolve(&t.chain, &format!("{at}.type.chain"))? })
        } else {
            unreachable!("one kind is set")
        };
        let h = if def.publish {
            self.cache.put(cap).map_err(|e| format!("{at}: rejected by the cache: {e}"))?
        } else {
            javm_cap::cap_hash(&cap).map_err(|e| format!("{at}: cannot be hashed: {e}"))?
        };
        self.building.remove(name);
        self.built.insert(name.to_string(), h);
        self.names.insert(h, name.to_string());
        Ok(h)
    }

    fn image(&mut self, i: &ImageDef, at: &str) -> Result<ImageCap, String> {
        let base = image_from_asm(&code_text(&i.code)).map_err(|e| format!("{at}.code: {e}"))?;
        let mut endpoints = vec![EndpointDef::default(); 64];
        for (k, e) in &i.endpoints {
            let eat = format!("{at}.endpoints.{k}");
            let n: usize = number(k, &eat)?;
            if n >= 64 {
                return Err(format!("{eat}: endpoint {n} is not 0..=63"));
            }
            endpoints[n] = EndpointDef {
                entry_pc: e.entry_pc,
                stack_top: e.stack_top,
                arg_cnode_slot: e.arg_cnode_slot,
                arg_cnode_size: e.arg_cnode_size,
                initial_regs: regs_map(&e.regs, &format!("{eat}.regs"))?,
            };
        }
        let mappings = i
            .mappings
            .iter()
            .map(|m| MemoryMapping {
                start: m.start,
                size: m.size,
                source_path: m.path.iter().map(|&s| SlotIdx(s)).collect(),
            })
            .collect();
        let mut entries = |m: &BTreeMap<String, String>, what: &str| -> Result<Vec<ImageSlotEntry>, String> {
            let mut v = Vec::new();
            for (k, t) in m {
                let eat = format!("{at}.{what}.{k}");
                let slot: u32 = number(k, &eat)?;
                v.push(ImageSlotEntry { slot: SlotIdx(slot), cap_hash: self.resolve(t, &eat)? });
            }
            v.sort_by_key(|e| e.slot);
            Ok(v)
        };
        let pinned = entries(&i.pinned, "pinned")?;
        let initial = entries(&i.initial, "initial")?;
        Ok(ImageCap {
            code: base.code,
            bitmask: base.bitmask,
            jump_table: base.jump_table,
            endpoints,
            mappings,
            pinned,
            initial,
            yield_marker_slot: i.yield_slot.map(SlotIdx),
        })
    }

    fn exp_ref(&mut self, name: &str, at: &str) -> Result<ExpRef, String> {
        match name {
            "@post" => Ok(ExpRef::Post),
            "@post_cnode" => Ok(ExpRef::PostCnode),
            _ => self.resolve(name, at).map(ExpRef::Hash),
        }
    }

    fn opt_ref(&mut self, v: &Option<Option<String>>, at: &str) -> Result<Option<Option<ExpRef>>, String> {
        match v {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(n)) => Ok(Some(Some(self.exp_ref(n, at)?))),
        }
    }
}

const RESULTS: [&str; 7] = ["halt", "trap", "panic", "out-of-gas", "page-fault", "paused", "error"];

/// Reads one kernel vector.
pub fn load_kernel_vector(path: &Path) -> Result<KernelVector, VectorError> {
    let err = |message: String| VectorError { path: path.to_path_buf(), message };
    let text = crate::input::read_text(path).map_err(err)?;
    parse_kernel_vector(&text, path).map_err(err)
}

/// Parses a kernel vector from its text; `path` only names it.
pub fn parse_kernel_vector(text: &str, path: &Path) -> Result<KernelVector, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let file: FileDef = serde_json::from_value(value).map_err(|e| format!("kernel vector: {e}"))?;
    if file.kernel != FORMAT_VERSION {
        return Err(format!("kernel vector format {} is not supported (only {FORMAT_VERSION})", file.kernel));
    }
    if file.legs.is_empty() {
        return Err("kernel vector has no legs".into());
    }
    let mut assist = InMemoryAssist::new();
    let mut catchers = BTreeMap::new();
    let mut names = BTreeMap::new();
    for name in file.assist.catchers.keys() {
        let h = assist.yield_catcher_new();
        catchers.insert(name.clone(), h);
        names.insert(h, name.clone());
    }
    names.insert(OOG_MARKER, "OOG".to_string());
    let mut l = Loader {
        caps: &file.caps,
        opaque: &file.opaque,
        catchers,
        built: BTreeMap::new(),
        building: BTreeSet::new(),
        cache: CacheDirectory::new(),
        names,
        depth: 0,
    };
    for name in file.caps.keys() {
        l.build(name)?;
    }
    for (name, markers) in &file.assist.catchers {
        let c = l.catchers[name];
        for m in markers {
            let h = l.resolve(m, &format!("assist.catchers.{name}"))?;
            assist.yield_catcher_add(c, h);
        }
    }
    for (id, v) in &file.assist.quotas {
        assist.storage_quota_set(number(id, "assist.quotas")?, *v);
    }
    for (id, t) in &file.assist.files {
        let at = format!("assist.files.{id}");
        let h = l.resolve(t, &at)?;
        assist.register_file(number(id, &at)?, CapHashOrRef::Hash(h));
    }
    let gas = match file.gas_model.as_deref() {
        None | Some("block-unit") => GasModel::BlockUnit,
        Some("instruction") => GasModel::Instruction,
        Some(g) => return Err(format!("gas_model `{g}` is not block-unit or instruction")),
    };

    let mut legs = Vec::new();
    let mut expects = Vec::new();
    let mut legs_text = Vec::new();
    for (i, leg) in file.legs.iter().enumerate() {
        let at = format!("legs[{i}]");
        match (&leg.invoke, &leg.resume) {
            (Some(inv), None) => {
                let instance = l.resolve(&inv.instance, &format!("{at}.invoke.instance"))?;
                legs.push(Leg::Invoke { instance, endpoint: inv.endpoint, args: inv.args, gas: inv.gas });
                legs_text.push(format!(
                    "invoke {} endpoint {} args {:?} gas {}",
                    inv.instance, inv.endpoint, inv.args, inv.gas
                ));
            }
            (None, Some(res)) => {
                let scratchpad = match &res.scratchpad {
                    None => None,
                    Some(s) => Some(CapHashOrRef::Hash(l.resolve(s, &format!("{at}.resume.scratchpad"))?)),
                };
                legs.push(Leg::Resume { scratchpad, extra_gas: res.extra_gas });
                legs_text.push(format!(
                    "resume scratchpad {} extra_gas {}",
                    res.scratchpad.as_deref().unwrap_or("none"),
                    res.extra_gas
                ));
            }
            _ => return Err(format!("{at}: a leg needs exactly one of `invoke` or `resume`")),
        }
        expects.push(expectation(&mut l, &leg.expect, &format!("{at}.expect"))?);
    }
    let max_depth = file.max_depth.unwrap_or(javm_kernel::DEFAULT_MAX_DEPTH);
    let Loader { cache, names, .. } = l;
    Ok(KernelVector {
        name: file.name,
        description: file.description,
        path: path.to_path_buf(),
        scenario: Scenario { cache, assist, config: Config::new(Profile::J, gas), max_depth, legs },
        expects,
        names,
        legs_text,
    })
}

fn expectation(l: &mut Loader<'_>, e: &ExpectDef, at: &str) -> Result<LegExpect, String> {
    if let Some(r) = &e.result {
        if !RESULTS.contains(&r.as_str()) {
            return Err(format!("{at}.result: `{r}` is not one of {}", RESULTS.join(", ")));
        }
    }
    let mut regs = BTreeMap::new();
    for (k, v) in &e.regs {
        let i: usize = number(k, &format!("{at}.regs"))?;
        if i >= 13 {
            return Err(format!("{at}.regs: register {i} is not 0..=12"));
        }
        regs.insert(i, *v);
    }
    let slots = match &e.slots {
        None => None,
        Some(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let sat = format!("{at}.slots.{k}");
                out.insert(number(k, &sat)?, l.exp_ref(v, &sat)?);
            }
            Some(out)
        }
    };
    let (published_count, published_include) = match &e.published {
        None => (None, Vec::new()),
        Some(p) => {
            let mut inc = Vec::new();
            for n in &p.include {
                inc.push(l.exp_ref(n, &format!("{at}.published.include"))?);
            }
            (p.count, inc)
        }
    };
    let (quotas, files, next_file_id) = match &e.assist {
        None => (None, None, None),
        Some(a) => {
            let quotas = match &a.quotas {
                None => None,
                Some(q) => {
                    Some(q.iter().map(|(k, v)| Ok((number(k, &format!("{at}.assist.quotas"))?, *v))).collect::<Result<
                        BTreeMap<u64, u64>,
                        String,
                    >>(
                    )?)
                }
            };
            let files = match &a.files {
                None => None,
                Some(f) => {
                    let mut out = BTreeMap::new();
                    for (k, v) in f {
                        let fat = format!("{at}.assist.files.{k}");
                        out.insert(number(k, &fat)?, l.exp_ref(v, &fat)?);
                    }
                    Some(out)
                }
            };
            (quotas, files, a.next_file_id)
        }
    };
    Ok(LegExpect {
        result: e.result.clone(),
        return_value: e.return_value,
        reflected: l.opt_ref(&e.reflected, &format!("{at}.reflected"))?,
        payload: l.opt_ref(&e.payload, &format!("{at}.payload"))?,
        gas_used: e.gas_used,
        fault_address: e.fault_address,
        error: e.error.clone(),
        last_error: e.last_error.clone(),
        ecalls: e.ecalls.clone(),
        regs,
        pc: e.pc,
        gas: e.gas,
        slots,
        stack_len: e.stack_len,
        published_count,
        published_include,
        quotas,
        files,
        next_file_id,
    })
}

/// The JSON files below `path` that are kernel vectors (or `path` itself).
pub fn collect_kernel_vectors(path: &Path) -> Result<Vec<PathBuf>, VectorError> {
    let files = crate::vectors::collect_files(path)?;
    Ok(files.into_iter().filter(|f| is_kernel_vector(f)).collect())
}

/// The result of running one kernel vector.
#[derive(Debug)]
pub struct VectorRun {
    /// Every mismatch: expectations (against the first backend), backend disagreements and
    /// invariant violations.
    pub failures: Vec<Failure>,
    /// The first backend's full observation, rendered.
    pub observation: String,
    /// Each leg's result on the first backend.
    pub exits: Vec<String>,
}

impl KernelVector {
    fn name_of(&self, h: &Hash) -> Option<String> {
        self.names.get(h).cloned()
    }

    /// Runs the vector on every backend; the first one's results are checked against the
    /// expectations, the others are compared with the first one record by record.
    pub fn run(&self, backends: &[(&str, BackendFactory<'_>)]) -> VectorRun {
        let runs: Vec<RunRecord> = backends.iter().map(|(_, f)| run_scenario(&self.scenario, *f, 1)).collect();
        let mut failures = Vec::new();
        let fail = |backend: &str, leg: usize, field: String, expected: String, got: String| Failure {
            backend: backend.to_string(),
            step: leg,
            difference: Difference { field, expected, got },
        };
        let first = &runs[0];
        let first_name = backends[0].0;
        for (name, run) in backends.iter().map(|b| b.0).zip(&runs) {
            for v in &run.violations {
                failures.push(fail(name, 0, "invariant".into(), "no violation".into(), v.clone()));
            }
        }
        for (k, run) in runs.iter().enumerate().skip(1) {
            if let Some(d) = compare(first, run) {
                let pair = format!("{} vs {}", first_name, backends[k].0);
                let at = match &d.ecall {
                    Some(e) => format!("ecall #{} ({} at pc {})", e.index, op::name(e.op), e.pc),
                    None if d.point == Some(Point::P2) => "end of leg".to_string(),
                    None => "leg result".to_string(),
                };
                for f in d.fields {
                    failures.push(fail(&pair, d.leg, format!("{at}: {}", f.field), f.a, f.b));
                }
            }
        }
        for (i, (exp, leg)) in self.expects.iter().zip(&first.legs).enumerate() {
            let ecalls = first
                .records
                .iter()
                .filter(|r| r.leg == i && r.kobs.point == Point::P1)
                .map(|r| {
                    let o = match r.kobs.outcome {
                        ObsOutcome::Ecall(EcallOutcome::Continue) => "continue",
                        ObsOutcome::Ecall(EcallOutcome::Halt) => "halt",
                        ObsOutcome::Ecall(EcallOutcome::Trap) => "trap",
                        _ => "hostcall",
                    };
                    format!("{} {o}", r.ecall.as_ref().map_or("?", |e| op::name(e.op)))
                })
                .collect();
            let prev_keys = if i == 0 { self.scenario.cache.blob_keys() } else { first.legs[i - 1].blob_keys.clone() };
            for (field, expected, got) in self.check_leg(exp, leg, &first.cache, ecalls, &prev_keys) {
                failures.push(fail(first_name, i, field, expected, got));
            }
        }
        let exits = first.legs.iter().map(|l| self.show_result(&l.result)).collect();
        VectorRun { failures, observation: self.render(first), exits }
    }

    fn show_result(&self, r: &Result<CallResult, javm_kernel::VmError>) -> String {
        match r {
            Ok(r) => show_outcome(&ObsOutcome::Leg(*r), &|h| self.name_of(h)),
            Err(e) => format!("error {e:?} ({e})"),
        }
    }

    fn show_hash(&self, h: &Hash) -> String {
        self.name_of(h).unwrap_or_else(|| to_hex(h))
    }

    fn show_target(&self, t: Option<&CapHashOrRef>) -> String {
        match t {
            None => "none".into(),
            Some(CapHashOrRef::Hash(h)) => self.show_hash(h),
            Some(CapHashOrRef::Ref(r)) => format!("ref#{}", r.0),
        }
    }

    fn check_leg(
        &self,
        e: &LegExpect,
        leg: &LegRecord,
        cache: &CacheDirectory,
        ecalls: Vec<String>,
        prev_keys: &[Hash],
    ) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut check = |field: &str, expected: String, got: String| {
            if expected != got {
                out.push((field.to_string(), expected, got));
            }
        };
        let post = match &leg.result {
            Ok(CallResult::Halt { post_instance_hash, .. }) => Some(*post_instance_hash),
            _ => None,
        };
        let post_cnode = post
            .and_then(|p| cache.get_blob(&p))
            .and_then(Cap::as_instance)
            .and_then(|i| i.root_cnode.as_hash().copied());
        let resolve = |r: &ExpRef| -> Option<Hash> {
            match r {
                ExpRef::Hash(h) => Some(*h),
                ExpRef::Post => post,
                ExpRef::PostCnode => post_cnode,
            }
        };
        let show_exp = |r: &Option<ExpRef>| match r {
            None => "none".to_string(),
            Some(r) => resolve(r).map_or_else(|| format!("{r:?} (no such hash in this leg)"), |h| self.show_hash(&h)),
        };
        let (kind, reflected, payload, gas_used, fault) = match &leg.result {
            Ok(CallResult::Halt { reflected_slot0, gas_used, .. }) => {
                ("halt", Some(*reflected_slot0), None, Some(*gas_used), None)
            }
            Ok(CallResult::Faulted { reason, reflected_slot0, gas_used }) => {
                let (k, a) = match reason {
                    FaultReason::Trap => ("trap", None),
                    FaultReason::Panic => ("panic", None),
                    FaultReason::OutOfGas => ("out-of-gas", None),
                    FaultReason::PageFault(a) => ("page-fault", Some(*a)),
                };
                (k, Some(*reflected_slot0), None, Some(*gas_used), a)
            }
            Ok(CallResult::Paused { marker_payload, gas_used }) => {
                ("paused", None, Some(*marker_payload), Some(*gas_used), None)
            }
            Err(_) => ("error", None, None, None, None),
        };
        if let Some(r) = &e.result {
            if r != kind {
                // An error is named with its kind and message, not only as "error".
                let got = match &leg.result {
                    Err(x) => format!("error {x:?} ({x})"),
                    Ok(_) => kind.into(),
                };
                check("result", r.clone(), got);
            }
        }
        if let Some(v) = e.return_value {
            let got = match &leg.result {
                Ok(CallResult::Halt { return_value, .. }) => format!("{return_value:#x}"),
                _ => "no halt".into(),
            };
            check("return_value", format!("{v:#x}"), got);
        }
        if let Some(r) = &e.reflected {
            let got = reflected.map_or("no reflected slot 0".into(), |t| self.show_target(t.as_ref()));
            check("reflected", show_exp(r), got);
        }
        if let Some(p) = &e.payload {
            let got = payload.map_or("not paused".into(), |t| self.show_target(t.as_ref()));
            check("payload", show_exp(p), got);
        }
        if let Some(g) = e.gas_used {
            check("gas_used", g.to_string(), gas_used.map_or("none".into(), |g| g.to_string()));
        }
        if let Some(a) = e.fault_address {
            check("fault_address", format!("{a:#x}"), fault.map_or("none".into(), |a| format!("{a:#x}")));
        }
        if let Some(err) = &e.error {
            let got = match &leg.result {
                Err(x) => format!("{x:?}"),
                Ok(_) => "Ok".into(),
            };
            check("error", err.clone(), got);
        }
        if let Some(le) = &e.last_error {
            let want = le.clone().unwrap_or_else(|| "none".into());
            let got = leg.last_error.as_ref().map_or("none".into(), |x| format!("{x:?}"));
            if !got.starts_with(&want) {
                check("last_error", want, got);
            }
        }
        if let Some(list) = &e.ecalls {
            check("ecalls", list.join(", "), ecalls.join(", "));
        }
        let end = leg.end.as_ref();
        for (r, v) in &e.regs {
            check(
                &format!("regs[{r}]"),
                format!("{v:#x}"),
                end.map_or("no end state".into(), |x| format!("{:#x}", x.regs[*r])),
            );
        }
        if let Some(pc) = e.pc {
            check("pc", pc.to_string(), end.map_or("no end state".into(), |x| x.pc.to_string()));
        }
        if let Some(g) = e.gas {
            check("gas", g.to_string(), end.map_or("no end state".into(), |x| x.gas.to_string()));
        }
        if let Some(slots) = &e.slots {
            let exp: Vec<String> = slots.iter().map(|(s, r)| format!("{s}: {}", show_exp(&Some(r.clone())))).collect();
            let got: Vec<String> = match end {
                None => vec!["no end state".into()],
                Some(x) => x.cnode.slots.iter().map(|(s, t)| format!("{s}: {}", self.show_target(Some(t)))).collect(),
            };
            check("slots", exp.join(", "), got.join(", "));
        }
        if let Some(n) = e.stack_len {
            check("stack_len", n.to_string(), leg.stack_len.to_string());
        }
        let new_keys: Vec<&Hash> = leg.blob_keys.iter().filter(|k| prev_keys.binary_search(k).is_err()).collect();
        if let Some(n) = e.published_count {
            if n != new_keys.len() {
                let names: Vec<String> = new_keys.iter().map(|k| self.show_hash(k)).collect();
                check("published.count", n.to_string(), format!("{} [{}]", new_keys.len(), names.join(", ")));
            }
        }
        for r in &e.published_include {
            let present = resolve(r).is_some_and(|h| leg.blob_keys.binary_search(&h).is_ok());
            if !present {
                check("published.include", show_exp(&Some(r.clone())), "absent".into());
            }
        }
        if let Some(q) = &e.quotas {
            let exp: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let got: Vec<String> = leg.assist.quotas.iter().map(|(k, v)| format!("{k}={v}")).collect();
            check("assist.quotas", exp.join(", "), got.join(", "));
        }
        if let Some(f) = &e.files {
            let exp: Vec<String> = f.iter().map(|(k, r)| format!("{k}={}", show_exp(&Some(r.clone())))).collect();
            let got: Vec<String> =
                leg.assist.files.iter().map(|(k, t)| format!("{k}={}", self.show_target(Some(t)))).collect();
            check("assist.files", exp.join(", "), got.join(", "));
        }
        if let Some(n) = e.next_file_id {
            check("assist.next_file_id", n.to_string(), leg.assist.next_file_id.to_string());
        }
        out
    }

    /// The full observation of a run: every P1 and P2 record and each leg's result.
    pub fn render(&self, run: &RunRecord) -> String {
        let mut posts = BTreeMap::new();
        for (i, leg) in run.legs.iter().enumerate() {
            if let Ok(CallResult::Halt { post_instance_hash: p, .. }) = leg.result {
                posts.entry(p).or_insert_with(|| format!("post@leg{i}"));
                let cn =
                    run.cache.get_blob(&p).and_then(Cap::as_instance).and_then(|x| x.root_cnode.as_hash().copied());
                if let Some(cn) = cn {
                    posts.entry(cn).or_insert_with(|| format!("post_cnode@leg{i}"));
                }
            }
        }
        let name = |h: &Hash| self.name_of(h).or_else(|| posts.get(h).cloned());
        let mut s = String::new();
        let _ = writeln!(s, "# {}", self.name);
        if !self.description.is_empty() {
            let _ = writeln!(s, "# {}", self.description);
        }
        let _ = writeln!(s, "# names:");
        for (h, n) in self.names.iter().chain(posts.iter().filter(|(h, _)| !self.names.contains_key(*h))) {
            let _ = writeln!(s, "#   {n} = {}", to_hex(h));
        }
        for (i, leg) in run.legs.iter().enumerate() {
            let _ = writeln!(s, "\n== leg {i}: {}", self.legs_text[i]);
            for r in run.records.iter().filter(|r| r.leg == i) {
                match (&r.ecall, r.kobs.point) {
                    (Some(e), _) => {
                        let err = e.error.as_ref().map_or(String::new(), |x| format!(" error {x:?}"));
                        let _ = writeln!(
                            s,
                            "-- P1 ecall #{} {} ({}) at pc {}{err} digest {}",
                            e.index,
                            e.op,
                            op::name(e.op),
                            e.pc,
                            to_hex(&r.kobs.digest())
                        );
                    }
                    (None, _) => {
                        let _ = writeln!(s, "-- P2 digest {}", to_hex(&r.kobs.digest()));
                    }
                }
                s.push_str(&r.kobs.render(&name));
            }
            let shown = match &leg.result {
                Ok(r) => show_outcome(&ObsOutcome::Leg(*r), &name),
                Err(e) => format!("error {e:?} ({e})"),
            };
            let _ = writeln!(s, "-- result: {shown}");
            if let Some(e) = &leg.last_error {
                let _ = writeln!(s, "-- last error: {e:?}");
            }
        }
        s
    }
}

/// Runs a kernel vector and reports it as a vectors-command [`Outcome`].
pub fn outcome(v: &KernelVector, backends: &[(&str, BackendFactory<'_>)]) -> Outcome {
    let run = v.run(backends);
    Outcome {
        name: v.name.clone(),
        file: v.path.display().to_string(),
        format: "kernel",
        profile: "j".into(),
        gas_model: v.scenario.config.gas.to_string(),
        passed: run.failures.is_empty(),
        exits: run.exits,
        failures: run.failures,
        known: Vec::new(),
        snapshots: Vec::new(),
        single_run: false,
        disassembly: None,
        exit_ops: Vec::new(),
    }
}

/// Runs kernel vectors in parallel on the given backends (their observations compared when
/// there are several).
pub fn run_kernel_vectors(vectors: &[KernelVector], kinds: &[crate::backends::BackendSpec]) -> Vec<Outcome> {
    use rayon::prelude::*;
    vectors
        .par_iter()
        .map(|v| {
            let factories: Vec<Box<dyn Fn() -> Box<dyn javm_engine::Backend> + '_>> = kinds
                .iter()
                .map(|k| {
                    Box::new(move || -> Box<dyn javm_engine::Backend> { k.create().expect("backend checked before") })
                        as Box<dyn Fn() -> Box<dyn javm_engine::Backend>>
                })
                .collect();
            let named: Vec<(&str, BackendFactory<'_>)> =
                kinds.iter().zip(&factories).map(|(k, f)| (k.name(), &**f as BackendFactory<'_>)).collect();
            outcome(v, &named)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KernelVector, String> {
        parse_kernel_vector(text, Path::new("bad.json"))
    }

    const MINIMAL: &str = r#"{"kernel": 1, "name": "m",
        "caps": {"img": {"image": {"code": "ecalli 0"}}, "cn": {"cnode": {"size_log": 4}},
                 "main": {"instance": {"image": "img", "cnode": "cn"}}},
        "legs": [{"invoke": {"instance": "main", "gas": 100}, "expect": {"result": "halt"}}]}"#;

    #[test]
    fn a_minimal_vector_loads_and_passes() {
        let v = parse(MINIMAL).unwrap();
        let interp = || -> Box<dyn javm_engine::Backend> { Box::new(javm_engine::Interpreter::new()) };
        let run = v.run(&[("interp", &interp), ("interp2", &interp)]);
        assert!(run.failures.is_empty(), "{:?}", run.failures);
        assert!(run.observation.contains("REPLY"));
    }

    #[test]
    fn malformed_vectors_name_the_problem() {
        let cases: [(&str, &str); 9] = [
            ("{", "malformed JSON"),
            (r#"{"kernel": 1, "name": "x", "legs": [{"jump": {}}]}"#, "unknown field `jump`"),
            (r#"{"kernel": 1, "name": "x", "legs": [{}]}"#, "exactly one of `invoke` or `resume`"),
            (
                r#"{"kernel": 1, "name": "x", "caps": {"c": {"cnode": {"size_log": 4, "slots": {"2": "ghost"}}}},
                    "legs": [{"resume": {}}]}"#,
                "caps.c.cnode.slots.2: dangling reference `ghost`",
            ),
            (
                r#"{"kernel": 1, "name": "x", "caps": {"i": {"image": {"code": "frobnicate r1"}}}, "legs": [{"resume": {}}]}"#,
                "caps.i.image.code: line 1: unknown mnemonic 'frobnicate'",
            ),
            (
                r#"{"kernel": 1, "name": "x", "caps": {"d": {"data": "x"}, "i": {"image": {"code": "trap", "pinned": {"0": "d"}}}},
                    "legs": [{"resume": {}}]}"#,
                "caps.i: rejected by the cache",
            ),
            (r#"{"kernel": 2, "name": "x", "legs": [{"resume": {}}]}"#, "format 2 is not supported"),
            (
                r##"{"kernel": 1, "name": "x", "legs": [{"resume": {"scratchpad": "#abc"}}]}"##,
                "`#abc` is not a hash literal",
            ),
            (
                r#"{"kernel": 1, "name": "x", "legs": [{"resume": {}, "expect": {"result": "exploded"}}]}"#,
                "`exploded` is not one of",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        let e = load_kernel_vector(Path::new("/nonexistent/k.json")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/k.json: cannot open"), "{e}");
    }

    #[test]
    fn self_reference_is_an_error_not_a_hang() {
        let text = r#"{"kernel": 1, "name": "x", "caps": {"c": {"cnode": {"size_log": 4, "slots": {"1": "c"}}}},
                       "legs": [{"resume": {}}]}"#;
        assert!(parse(text).unwrap_err().contains("refers to itself"));
    }

    #[test]
    fn data_forms() {
        assert_eq!(data_bytes(&serde_json::json!("ab"), "x").unwrap().len(), 4096);
        assert_eq!(data_bytes(&serde_json::json!({"hex": "ff00", "pages": 2}), "x").unwrap().len(), 8192);
        assert_eq!(data_bytes(&serde_json::json!({"bytes": [1, 2]}), "x").unwrap()[..2], [1, 2]);
        assert!(data_bytes(&serde_json::json!({"hex": "f"}), "x").is_err());
        assert!(data_bytes(&serde_json::json!({"colour": 1}), "x").is_err());
        assert!(data_bytes(&serde_json::json!(5), "x").is_err());
    }
}
