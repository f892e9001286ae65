//! A structured generated program runs identically on the interpreter and the JIT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| javm_harness::fuzzing::differential(data));
