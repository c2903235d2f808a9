//! cargo-fuzz target `decision`: the logic and its invariants are `switchyard::fuzzing::decision`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::decision(data));
