//! The logic of the fuzz targets, as plain functions over bytes: the cargo-fuzz targets in fuzz/
//! (nightly, libFuzzer) are one-line wrappers around them, and a stable `cargo test`
//! (tests/tests/fuzz_corpus.rs) replays the committed seed corpora and deterministic mutations of
//! them through the same functions.
//!
//! Each function states the invariants of its target and panics when one breaks: a panic is what
//! libFuzzer records as a crash. Only built with the `fuzzing` feature; never in the shipped binary.
//!
//! - [`request_parser`]: OpenAI request bodies, parse → serialise → parse.
//! - [`decision`]: plugin decisions against the texts a plugin saw (validation and edits).
//! - [`config_loader`]: configuration files, parse and validate.
//! - [`SseRelay`]: an upstream SSE byte stream through the relay with pii-redact watching it.

// A harness fails by panicking: that is how libFuzzer and the tests see a broken invariant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod config;
mod decision;
mod relay;
mod request;

pub use config::config_loader;
pub use decision::decision;
pub use relay::{Outcome, PLANTED, SseRelay};
pub use request::request_parser;

use serde_json::Value;

/// `value` is an OpenAI error object: `{"error": {"message": "...", "type": "...", ...}}` with a
/// non-empty message and type, and `param`/`code` null or strings when present.
fn assert_openai_error(value: &Value) {
    let error = value.get("error").unwrap_or_else(|| panic!("not an error object: {value}"));
    let text = |key: &str| error.get(key).and_then(Value::as_str);
    assert!(text("message").is_some_and(|m| !m.is_empty()), "error without a message: {value}");
    assert!(text("type").is_some_and(|t| !t.is_empty()), "error without a type: {value}");
    for key in ["param", "code"] {
        let field = error.get(key).unwrap_or(&Value::Null);
        assert!(field.is_null() || field.is_string(), "error {key} is not a string: {value}");
    }
}
