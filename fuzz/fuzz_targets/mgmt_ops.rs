//! Sequences of MGMT ops agree, op by op, with a model cnode written from KSPEC-1 §9.4.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| javm_harness::fuzzing::kernel::mgmt_ops(data));
