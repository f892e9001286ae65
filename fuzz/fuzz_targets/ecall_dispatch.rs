//! An arbitrary kernel state and op, dispatched as `ecalli` and as `ecall`: KSPEC-1 §13 invariants and equal effects.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| javm_harness::fuzzing::kernel::ecall_dispatch(data));
