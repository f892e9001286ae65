//! The bodies of the cargo-fuzz targets. The `fuzz/` binaries call these, and the replay
//! test feeds every kept input to them, so what CI runs on each commit is exactly what the
//! fuzzer runs.

use std::cell::RefCell;

use arbitrary::Unstructured;
use javm_engine::{Backend, Blob, Profile};

use crate::backends::BackendSpec;
use crate::diff::{diverges, diverges_any, explain};
use crate::generator::{GenCode, GenConfig, GenProgram};
use crate::run::GasChoice;

pub mod kernel;

type Set = Vec<Box<dyn Backend + Send>>;

thread_local! {
    static SET: RefCell<Option<Set>> = const { RefCell::new(None) };
}

/// The engine backends a kernel target runs frames on: the interpreter and the JIT (the
/// interpreter twice where this build has no JIT).
pub fn pair_kinds() -> (BackendSpec, BackendSpec) {
    let interp = BackendSpec::builtin("interp").expect("registered");
    let second = BackendSpec::builtin("jit").unwrap_or_else(|| interp.clone());
    (interp, second)
}

/// The backends a differential target compares: the interpreter, the JIT and the reference
/// model, which shares none of their decoding, preparation, gas or memory code.
pub fn judges() -> Vec<BackendSpec> {
    let (a, b) = pair_kinds();
    let mut out = vec![a];
    if b != out[0] {
        out.push(b);
    }
    out.push(BackendSpec::builtin("model").expect("registered"));
    out
}

fn with_set<R>(f: impl FnOnce(&mut [&mut dyn Backend]) -> R) -> R {
    SET.with(|cell| {
        let mut slot = cell.borrow_mut();
        let set =
            slot.get_or_insert_with(|| judges().iter().map(|k| k.create().expect("registered backend")).collect());
        let mut refs: Vec<&mut dyn Backend> = set.iter_mut().map(|b| &mut **b as &mut dyn Backend).collect();
        f(&mut refs)
    })
}

/// Profile and gas model from one selector byte.
fn config_of(selector: u8, raw: bool) -> GenConfig {
    let profile = Profile::ALL[(selector % 3) as usize];
    let gas = [GasChoice::Auto, GasChoice::BlockTable, GasChoice::Instruction][(selector / 3 % 3) as usize];
    GenConfig { profile, gas, raw }
}

fn check(program: &GenProgram) {
    with_set(|set| {
        if diverges_any(program, set) {
            let (first, rest) = set.split_first_mut().expect("at least two backends");
            for other in rest {
                if diverges(program, &mut **first, &mut **other) {
                    let (na, nb) = (first.name(), other.name());
                    let explanation = explain(program, &mut **first, &mut **other);
                    panic!("backends diverge:\n{}", explanation.render(na, nb));
                }
            }
            panic!("backends diverge (each pair agrees when run alone): {program:?}");
        }
    })
}

/// `differential`: a structured generated program on both backends.
pub fn differential(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(selector) = u.arbitrary::<u8>() else { return };
    if let Ok(program) = GenProgram::generate(&mut u, config_of(selector, false)) {
        check(&program);
    }
}

/// Bytes of a `differential_raw` input that seed the initial state; the rest is the blob.
pub const RAW_STATE_BYTES: usize = 64;

/// `differential_raw`: input = one selector byte, [`RAW_STATE_BYTES`] of state, then a blob
/// (so the vectors' programs make natural seeds). Blobs that do not parse are skipped: both
/// backends would only report the same immediate panic.
pub fn differential_raw(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (state, blob) = rest.split_at(rest.len().min(RAW_STATE_BYTES));
    let Ok(blob) = Blob::parse(blob) else { return };
    let code = GenCode::Raw { code: blob.code, starts: blob.starts.to_vec(), jump_table: blob.jump_table };
    if let Ok(program) = GenProgram::with_code(&mut Unstructured::new(state), config_of(selector, true), code) {
        check(&program);
    }
}

/// `blob_decode`: arbitrary bytes as a blob. The engine's parser and the reference model's
/// must agree on whether it decodes (a blob that does not decode panics at once with nothing
/// changed, §1.2), and a decoded blob runs the same on every backend for a while; parsing,
/// preparing and running never panics, and a parsed blob re-encodes to one that parses the
/// same.
pub fn blob_decode(data: &[u8]) {
    use javm_engine::{Config, GasModel};
    if let Ok(blob) = Blob::parse(data) {
        assert_eq!(Blob::parse(&blob.encode()).as_ref(), Ok(&blob), "re-encoding changed the blob");
    }
    with_set(|set| {
        for profile in Profile::ALL {
            let config = Config::new(profile, GasModel::BlockUnit);
            let mut exits = Vec::new();
            for b in set.iter_mut() {
                b.load_blob(data, &config);
                b.set_pc(0);
                b.set_gas(10_000);
                let exit = b.run();
                exits.push((b.name(), exit, b.pc(), b.gas(), b.regs()));
            }
            let first = exits[0];
            for e in &exits[1..] {
                assert!(
                    (first.1, first.2, first.3, first.4) == (e.1, e.2, e.3, e.4),
                    "profile {profile}: {} ends {:?} at pc {} with gas {}, {} ends {:?} at pc {} with gas {}",
                    first.0,
                    first.1,
                    first.2,
                    first.3,
                    e.0,
                    e.1,
                    e.2,
                    e.3
                );
            }
        }
    })
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and the corpus command.
pub const TARGETS: [(&str, Target); 7] = [
    ("blob_decode", blob_decode),
    ("differential", differential),
    ("differential_raw", differential_raw),
    ("ecall_dispatch", kernel::ecall_dispatch),
    ("mgmt_ops", kernel::mgmt_ops),
    ("derive_spawn", kernel::derive_spawn),
    ("vector_parse", vector_parse),
];

/// The vector readers on arbitrary bytes: the first byte picks the reader (even: PVM vector
/// formats, odd: kernel vectors), the rest is the file's text. Reading never panics, and a
/// case that reads runs on the interpreter without panicking (with its gas capped, so a run
/// stays short).
pub fn vector_parse(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let path = std::path::Path::new("fuzz.json");
    if selector & 1 == 1 {
        let _ = crate::kernel_vectors::parse_kernel_vector(&text, path);
        return;
    }
    let Ok(mut case) = crate::vectors::parse_case_text(&text, path) else { return };
    case.initial_gas = case.initial_gas.clamp(-1, 20_000);
    let mut interp = javm_engine::Interpreter::new();
    let _ = crate::run::run_case(&case, &crate::run::RunOptions::default(), &mut [&mut interp]);
}

/// Vector files as `vector_parse` inputs: a sample of the public suites and our own vectors
/// (found from the working folder).
fn vector_parse_seeds() -> Vec<Vec<u8>> {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(dir) = crate::vectors::default_vector_dir() {
        if let Ok(found) = crate::vectors::collect_files(&dir) {
            files.extend(found.into_iter().step_by(8));
        }
    }
    if let Ok(found) = crate::vectors::collect_files(std::path::Path::new("vectors")) {
        files.extend(found);
    }
    files
        .iter()
        .filter_map(|f| {
            let text = crate::input::read_file(f).ok()?;
            let selector = u8::from(crate::kernel_vectors::is_kernel_vector(f));
            Some([vec![selector], text].concat())
        })
        .collect()
}

/// Seed inputs for a target: the public vectors' programs (when the vector folder is found)
/// and generator inputs from fixed seeds.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    if let Some(kernel_seeds) = kernel::seeds(target) {
        return kernel_seeds;
    }
    if target == "vector_parse" {
        return vector_parse_seeds();
    }
    let mut programs: Vec<Vec<u8>> = Vec::new();
    if let Ok(dir) = crate::vectors::default_vector_dir() {
        if let Ok(files) = crate::vectors::collect_files(&dir) {
            programs.extend(files.iter().filter_map(|f| crate::vectors::load_case(f).ok()).map(|c| c.program));
        }
    }
    match target {
        "blob_decode" => programs,
        "differential_raw" => programs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut input = vec![(i % 9) as u8];
                input.extend_from_slice(&crate::diff::seed_bytes(i as u64, 0)[..RAW_STATE_BYTES]);
                input.extend_from_slice(p);
                input
            })
            .collect(),
        "differential" => (0..256u64)
            .map(|i| {
                let mut input = vec![(i % 9) as u8];
                input.extend_from_slice(&crate::diff::seed_bytes(0, i)[..1024]);
                input
            })
            .collect(),
        _ => Vec::new(),
    }
}
