//! The blob parser, the decoder and the interpreter never panic on arbitrary bytes, and a
//! parsed blob re-encodes to a blob that parses to the same thing.
#![no_main]

use std::sync::Arc;

use javm_engine::{Backend, Blob, Config, GasModel, Interpreter, Profile, Program};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(blob) = Blob::parse(data) else { return };
    assert_eq!(Blob::parse(&blob.encode()).as_ref(), Ok(&blob));
    for profile in Profile::ALL {
        let program = Arc::new(Program::new(blob.clone(), Config::new(profile, GasModel::BlockUnit)));
        let mut vm = Interpreter::new();
        vm.load(program);
        vm.set_gas(10_000);
        let _ = vm.run();
    }
});
