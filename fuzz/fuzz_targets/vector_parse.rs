//! The vector readers (w3f v0.4, spectool and its draft variant, kernel vectors) on
//! arbitrary bytes: clear errors, never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| javm_harness::fuzzing::vector_parse(data));
