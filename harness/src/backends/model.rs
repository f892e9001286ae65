//! `model`: the reference model of `javm-model`, written from the spec and sharing no
//! decoding, preparation, gas or memory code with the engine.

use javm_model::Model;

use super::{Boxed, Entry, EVERYTHING};

pub const ENTRY: Entry = Entry {
    name: "model",
    about: "reference model written straight from PVMSPEC-1 (javm-model)",
    independent: true,
    supports: EVERYTHING,
    bench_only: false,
    create: || Ok(Box::new(Model::new()) as Boxed),
};
