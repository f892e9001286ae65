//! Blob parsing, program preparation and a short run never panic; parse → encode → parse is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| javm_harness::fuzzing::blob_decode(data));
