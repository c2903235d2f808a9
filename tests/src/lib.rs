//! tests

pub mod wasm;
