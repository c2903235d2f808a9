//! Paths of the test and built-in plugins as components, built by tests/build.rs.

include!(concat!(env!("OUT_DIR"), "/wasm_paths.rs"));
