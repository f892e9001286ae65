//! `jit`: the engine's x86-64 compiler (x86-64 Linux builds only).

use javm_engine::jit::Jit;

use super::{Boxed, Entry, EVERYTHING};

pub const ENTRY: Entry = Entry {
    name: "jit",
    about: "the engine's x86-64 JIT compiler",
    independent: false,
    supports: EVERYTHING,
    bench_only: false,
    create: || Jit::new().map(|j| Box::new(j) as Boxed).map_err(|e| format!("jit: {e}")),
};
