//! The kernel-vector file format (`vectors/README.md`): its serde types, and the loaded form
//! (`KernelVector`, `LegExpect`).

use super::*;

/// The only format version.
pub const FORMAT_VERSION: u64 = 1;

/// Whether the JSON file at `path` is a kernel vector (a top-level `"kernel"` field).
pub fn is_kernel_vector(path: &Path) -> bool {
    crate::input::read_text(path).is_ok_and(|text| crate::vectors::is_kernel_text(&text))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDef {
    pub(super) kernel: u64,
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) caps: BTreeMap<String, CapDef>,
    #[serde(default)]
    pub(super) opaque: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) assist: AssistDef,
    #[serde(default)]
    pub(super) max_depth: Option<usize>,
    #[serde(default)]
    pub(super) gas_model: Option<String>,
    pub(super) legs: Vec<LegDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CapDef {
    #[serde(default)]
    pub(super) data: Option<Value>,
    #[serde(default)]
    pub(super) cnode: Option<CNodeDef>,
    #[serde(default)]
    pub(super) image: Option<ImageDef>,
    #[serde(default)]
    pub(super) instance: Option<InstanceDef>,
    #[serde(default, rename = "type")]
    pub(super) type_: Option<TypeDef>,
    #[serde(default = "yes")]
    pub(super) publish: bool,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CNodeDef {
    pub(super) size_log: u8,
    #[serde(default)]
    pub(super) slots: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum CodeDef {
    Text(String),
    Lines(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImageDef {
    pub(super) code: CodeDef,
    #[serde(default)]
    pub(super) endpoints: BTreeMap<String, EndpointJson>,
    #[serde(default)]
    pub(super) mappings: Vec<MappingDef>,
    #[serde(default)]
    pub(super) pinned: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) initial: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) yield_slot: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct EndpointJson {
    #[serde(default)]
    pub(super) entry_pc: u64,
    #[serde(default)]
    pub(super) regs: BTreeMap<String, u64>,
    #[serde(default)]
    pub(super) stack_top: u64,
    #[serde(default)]
    pub(super) arg_cnode_slot: u32,
    #[serde(default)]
    pub(super) arg_cnode_size: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MappingDef {
    pub(super) start: u64,
    pub(super) size: u64,
    #[serde(default)]
    pub(super) path: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InstanceDef {
    pub(super) image: String,
    pub(super) cnode: String,
    #[serde(default)]
    pub(super) chain: Option<String>,
    #[serde(default)]
    pub(super) mem_size: u32,
    #[serde(default)]
    pub(super) regs: BTreeMap<String, u64>,
    #[serde(default)]
    pub(super) overlays: Vec<OverlayDef>,
    #[serde(default)]
    pub(super) pc: u64,
    #[serde(default)]
    pub(super) gas: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OverlayDef {
    pub(super) start: u32,
    pub(super) data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TypeDef {
    pub(super) chain: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AssistDef {
    #[serde(default)]
    pub(super) quotas: BTreeMap<String, u64>,
    #[serde(default)]
    pub(super) files: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) catchers: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LegDef {
    #[serde(default)]
    pub(super) invoke: Option<InvokeDef>,
    #[serde(default)]
    pub(super) resume: Option<ResumeDef>,
    #[serde(default)]
    pub(super) expect: ExpectDef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InvokeDef {
    pub(super) instance: String,
    #[serde(default)]
    pub(super) endpoint: u8,
    #[serde(default)]
    pub(super) args: [u64; 4],
    pub(super) gas: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResumeDef {
    #[serde(default)]
    pub(super) scratchpad: Option<String>,
    #[serde(default)]
    pub(super) extra_gas: u64,
}

/// `null` in JSON, distinguished from an absent field.
pub(super) fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectDef {
    #[serde(default)]
    pub(super) result: Option<String>,
    #[serde(default)]
    pub(super) return_value: Option<u64>,
    #[serde(default, deserialize_with = "some_value")]
    pub(super) reflected: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_value")]
    pub(super) payload: Option<Option<String>>,
    #[serde(default)]
    pub(super) gas_used: Option<u64>,
    #[serde(default)]
    pub(super) fault_address: Option<u32>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default, deserialize_with = "some_value")]
    pub(super) last_error: Option<Option<String>>,
    #[serde(default)]
    pub(super) ecalls: Option<Vec<String>>,
    #[serde(default)]
    pub(super) regs: BTreeMap<String, u64>,
    #[serde(default)]
    pub(super) pc: Option<u32>,
    #[serde(default)]
    pub(super) gas: Option<i64>,
    #[serde(default)]
    pub(super) slots: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) stack_len: Option<usize>,
    #[serde(default)]
    pub(super) published: Option<PublishedDef>,
    #[serde(default)]
    pub(super) assist: Option<AssistExpectDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishedDef {
    #[serde(default)]
    pub(super) count: Option<usize>,
    #[serde(default)]
    pub(super) include: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssistExpectDef {
    #[serde(default)]
    pub(super) quotas: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    pub(super) files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) next_file_id: Option<u64>,
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
    pub(super) legs_text: Vec<String>,
}
