//! cargo-fuzz target `request_parser`: the logic and its invariants are `switchyard::fuzzing::request_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::request_parser(data));
