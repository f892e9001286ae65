//! `interp`: the engine's interpreter.

use javm_engine::Interpreter;

use super::{Boxed, Entry, EVERYTHING};

pub const ENTRY: Entry = Entry {
    name: "interp",
    about: "the engine's interpreter",
    independent: false,
    supports: EVERYTHING,
    bench_only: false,
    create: || Ok(Box::new(Interpreter::new()) as Boxed),
};
