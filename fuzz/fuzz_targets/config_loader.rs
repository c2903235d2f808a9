//! cargo-fuzz target `config_loader`: the logic and its invariants are `switchyard::fuzzing::config_loader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::config_loader(data));
