//! The backend registry: every backend this build has, one file each, selected by name.
//!
//! A registry entry says what a backend is called, whether it is an independent judge (shares
//! no decoding, preparation, gas or memory code with the engine), what it supports and how to
//! create it. Adding a backend is one file in this folder plus one line in [`REGISTRY`].
//! Backends served by another process (`--external NAME=COMMAND`) join the same selection.

use std::fmt;
use std::sync::Arc;

use javm_engine::{Backend, Profile};

pub mod external;
mod interp;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod jit;
mod model;
#[cfg(feature = "polkavm")]
pub mod polkavm;

/// A created backend.
pub type Boxed = Box<dyn Backend + Send>;

/// What a backend can do.
#[derive(Clone, Copy, Debug)]
pub struct Supports {
    pub profiles: &'static [Profile],
    /// Gas models by their command-line names.
    pub gas_models: &'static [&'static str],
    /// Single-stepping (`Backend::step`), used to localise divergences.
    pub single_step: bool,
    /// Use as a kernel frame (the kernel loads prepared programs into it).
    pub kernel_frame: bool,
}

/// Everything a backend of this build supports.
pub const EVERYTHING: Supports = Supports {
    profiles: &Profile::ALL,
    gas_models: &["block-unit", "block-table", "instruction"],
    single_step: true,
    kernel_frame: true,
};

/// One registry entry.
#[derive(Clone, Copy)]
pub struct Entry {
    pub name: &'static str,
    pub about: &'static str,
    /// Shares none of the engine's decoder, program preparation, gas or memory code.
    pub independent: bool,
    pub supports: Supports,
    /// Only for timing (`bench`): left out of `all`.
    pub bench_only: bool,
    pub create: fn() -> Result<Boxed, String>,
}

/// Every backend compiled into this build.
pub const REGISTRY: &[Entry] = &[
    interp::ENTRY,
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    jit::ENTRY,
    model::ENTRY,
    #[cfg(feature = "polkavm")]
    polkavm::ENTRY,
    #[cfg(feature = "polkavm")]
    polkavm::ENTRY_FAST,
];

/// A selected backend: a registry entry or an external process.
#[derive(Clone)]
pub struct BackendSpec {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Builtin(Entry),
    External(Arc<external::ExternalSpec>),
}

impl fmt::Debug for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for BackendSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl BackendSpec {
    /// The registry entry of this name.
    pub fn builtin(name: &str) -> Option<BackendSpec> {
        REGISTRY.iter().find(|e| e.name == name).map(|e| BackendSpec { kind: Kind::Builtin(*e) })
    }

    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Builtin(e) => e.name,
            Kind::External(x) => x.name,
        }
    }

    /// Whether this backend shares no engine code with the interpreter and the JIT.
    pub fn independent(&self) -> bool {
        match &self.kind {
            Kind::Builtin(e) => e.independent,
            Kind::External(_) => true,
        }
    }

    pub fn supports(&self) -> Supports {
        match &self.kind {
            Kind::Builtin(e) => e.supports,
            Kind::External(_) => Supports { kernel_frame: false, ..EVERYTHING },
        }
    }

    /// Only for timing: its results are not comparable (see [`Entry::bench_only`]).
    pub fn bench_only(&self) -> bool {
        matches!(&self.kind, Kind::Builtin(e) if e.bench_only)
    }

    /// Creates a fresh instance, or says why it cannot.
    pub fn create(&self) -> Result<Boxed, String> {
        match &self.kind {
            Kind::Builtin(e) => (e.create)(),
            Kind::External(x) => external::External::spawn(x.clone()).map(|b| Box::new(b) as Boxed),
        }
    }
}

/// The backends one run can choose from: the registry plus declared external ones.
#[derive(Clone, Default)]
pub struct Backends {
    externals: Vec<Arc<external::ExternalSpec>>,
}

impl Backends {
    pub fn new() -> Backends {
        Backends::default()
    }

    /// Declares `NAME=COMMAND` (the `--external` option).
    pub fn declare_external(&mut self, declaration: &str) -> Result<(), String> {
        let (name, command) = declaration
            .split_once('=')
            .filter(|(n, c)| !n.is_empty() && !c.trim().is_empty())
            .ok_or_else(|| format!("--external {declaration:?}: expected NAME=COMMAND"))?;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("--external {name:?}: a name is letters, digits, `-` and `_`"));
        }
        if REGISTRY.iter().any(|e| e.name == name) || matches!(name, "both" | "all") {
            return Err(format!("--external {name}: the name is already taken by a built-in backend"));
        }
        if self.externals.iter().any(|x| x.name == name) {
            return Err(format!("--external {name}: declared twice"));
        }
        self.externals.push(Arc::new(external::ExternalSpec::new(name, command)?));
        Ok(())
    }

    /// Every name a selection can use.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = REGISTRY.iter().map(|e| e.name.to_string()).collect();
        names.extend(self.externals.iter().map(|x| x.name.to_string()));
        names
    }

    /// One backend by name.
    pub fn get(&self, name: &str) -> Result<BackendSpec, String> {
        if let Some(spec) = BackendSpec::builtin(name) {
            return Ok(spec);
        }
        if let Some(x) = self.externals.iter().find(|x| x.name == name) {
            return Ok(BackendSpec { kind: Kind::External(x.clone()) });
        }
        Err(format!("unknown backend `{name}`; this build has: {}", self.help_list()))
    }

    /// A comma-separated selection: names, `both` (interp,jit) and `all` (every backend).
    pub fn select(&self, text: &str) -> Result<Vec<BackendSpec>, String> {
        let mut out: Vec<BackendSpec> = Vec::new();
        for part in text.split(',').map(str::trim) {
            let add: Vec<BackendSpec> = match part {
                "" => return Err(format!("empty backend name in `{text}`")),
                "both" => vec![self.get("interp")?, self.get("jit")?],
                "all" => self
                    .names()
                    .iter()
                    .filter(|n| !REGISTRY.iter().any(|e| e.name == n.as_str() && e.bench_only))
                    .map(|n| self.get(n))
                    .collect::<Result<_, _>>()?,
                name => vec![self.get(name)?],
            };
            for spec in add {
                if !out.contains(&spec) {
                    out.push(spec);
                }
            }
        }
        Ok(out)
    }

    /// A selection of backends whose results are checked (`vectors`): bench-only backends
    /// are refused.
    pub fn select_for_checks(&self, text: &str) -> Result<Vec<BackendSpec>, String> {
        let specs = self.select(text)?;
        for s in &specs {
            checkable(s)?;
        }
        Ok(specs)
    }

    /// `A:B` for `diff --pair`.
    pub fn pair(&self, text: &str) -> Result<(BackendSpec, BackendSpec), String> {
        let (a, b) = text.split_once(':').ok_or_else(|| format!("--pair {text:?}: expected A:B"))?;
        let (a, b) = (self.get(a)?, self.get(b)?);
        checkable(&a)?;
        checkable(&b)?;
        Ok((a, b))
    }

    /// The names, with `both`, `all` and what each is, for error messages.
    pub fn help_list(&self) -> String {
        let mut names = self.names();
        names.push("both (interp,jit)".into());
        names.push("all".into());
        names.join(", ")
    }
}

/// An error for a backend whose results cannot be checked.
fn checkable(spec: &BackendSpec) -> Result<(), String> {
    if spec.bench_only() {
        return Err(format!(
            "backend `{}` is for bench only (it does not report the pc of a halt or trap); choose another",
            spec.name()
        ));
    }
    Ok(())
}

/// Runs judge known differences with the registry's [`known_difference`] unless told
/// otherwise.
impl Default for crate::run::RunOptions {
    fn default() -> Self {
        crate::run::RunOptions {
            profile: None,
            gas: crate::run::GasChoice::default(),
            details: false,
            known: known_difference,
        }
    }
}

/// Whether a difference between two backends' snapshots is a listed known difference of one
/// of them (only external implementations have any): its name, else `None`.
pub fn known_difference(
    a: (&str, &crate::state::Snapshot),
    b: (&str, &crate::state::Snapshot),
    case: &crate::vectors::Case,
    options: &crate::run::RunOptions,
) -> Option<String> {
    #[cfg(feature = "polkavm")]
    {
        if a.0.starts_with("polkavm") || b.0.starts_with("polkavm") {
            return polkavm::known_difference(case, options);
        }
        None
    }
    #[cfg(not(feature = "polkavm"))]
    {
        let _ = (a, b, case, options);
        None
    }
}

/// A one-line-per-backend description of the registry, for `--help`.
pub fn describe_registry() -> String {
    let mut out = String::from("Backends in this build:\n");
    for e in REGISTRY {
        out += &format!("  {:<8} {}{}\n", e.name, e.about, if e.independent { " [independent judge]" } else { "" });
    }
    out += "  both     interp,jit\n  all      every backend above but bench-only ones, plus --external ones\n";
    out += "  NAME     a backend declared with --external NAME=COMMAND (docs/protocol.md)\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections() {
        let b = Backends::new();
        let names = |s: &str| b.select(s).map(|v| v.iter().map(|x| x.name().to_string()).collect::<Vec<_>>());
        assert_eq!(names("interp").unwrap(), ["interp"]);
        assert_eq!(names("model,interp,model").unwrap(), ["model", "interp"]);
        assert!(names("all").unwrap().contains(&"model".to_string()));
        let e = names("interp,frob").unwrap_err();
        assert!(e.contains("unknown backend `frob`") && e.contains("model"), "{e}");
        assert!(b.pair("interp").is_err());
        assert_eq!(b.pair("interp:model").unwrap().1.name(), "model");
    }

    #[test]
    fn every_entry_creates_and_has_a_unique_name() {
        for (i, e) in REGISTRY.iter().enumerate() {
            assert!(REGISTRY[..i].iter().all(|o| o.name != e.name), "{} registered twice", e.name);
            assert_eq!((e.create)().unwrap().name(), e.name);
        }
    }

    #[test]
    fn external_declarations_are_checked() {
        let mut b = Backends::new();
        assert!(b.declare_external("interp=cat").unwrap_err().contains("already taken"));
        assert!(b.declare_external("x").unwrap_err().contains("NAME=COMMAND"));
        assert!(b.declare_external("a b=cat").is_err());
        b.declare_external("ref=cat").unwrap();
        assert!(b.declare_external("ref=cat").unwrap_err().contains("twice"));
        assert_eq!(b.get("ref").unwrap().name(), "ref");
    }
}
