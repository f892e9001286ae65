//! DERIVE_SPAWN builds the child KSPEC-1 §9.5.3 describes, and the child runs identically on the interpreter and the JIT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| javm_harness::fuzzing::kernel::derive_spawn(data));
