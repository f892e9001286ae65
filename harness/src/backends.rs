//! Choosing and creating execution backends by name.

use javm_engine::{Backend, Interpreter};

/// One backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Interp,
    Jit,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Interp => "interp",
            BackendKind::Jit => "jit",
        }
    }

    /// Creates a fresh instance, or says why this build cannot.
    pub fn create(self) -> Result<Box<dyn Backend + Send>, String> {
        match self {
            BackendKind::Interp => Ok(Box::new(Interpreter::new())),
            BackendKind::Jit => create_jit(),
        }
    }
}

/// The backends a `--backend` value selects.
pub fn selection(name: &str) -> Option<Vec<BackendKind>> {
    Some(match name {
        "interp" => vec![BackendKind::Interp],
        "jit" => vec![BackendKind::Jit],
        "both" => vec![BackendKind::Interp, BackendKind::Jit],
        _ => return None,
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn create_jit() -> Result<Box<dyn Backend + Send>, String> {
    javm_engine::jit::Jit::new().map(|j| Box::new(j) as Box<dyn Backend + Send>).map_err(|e| e.to_string())
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn create_jit() -> Result<Box<dyn Backend + Send>, String> {
    Err("the jit backend needs x86-64 Linux; only `interp` is available here".into())
}
