//! Test support for Switchyard's end-to-end tests and benchmarks.
//!
//! - [`mock`]: an OpenAI-compatible upstream that can be told to misbehave.
//! - [`pii_eval`]: the PII evaluation's corpus and scoring (the program is `src/bin/pii-eval`).
//! - [`harness`]: the proxy started in-process on 127.0.0.1:0.
//! - [`procs`]: the mock upstream and the proxy as child processes, for benchmarks.
//! - [`wrk`]: the HTTP load generator the overhead benchmarks drive, and their table.
//! - [`otlp`]: a counting OTLP/HTTP trace sink for the tracing benchmark.
//! - [`client`]: a small HTTP client for assertions.
//! - [`logs`]: what an in-process proxy logs, captured in memory.
//! - [`redis`]: a real `redis-server` on a unix socket, owned by the test.
//! - [`tls`]: certificates generated per run.
//! - [`wasm`]: paths of the test and built-in plugins as components, built by build.rs.
//! - [`polyglot`]: the JavaScript and Python test plugins, built with their real toolchains.
//! - [`chain_timing`]: timing a plugin chain's request phase in-process, for the plugin benchmarks.

// Test support panics on setup failure by design: a broken fixture should fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod chain_timing;
pub mod client;
pub mod harness;
pub mod logs;
pub mod mock;
pub mod otlp;
pub mod pii_eval;
pub mod polyglot;
pub mod procs;
pub mod redis;
pub mod tls;
pub mod wasm;
pub mod wrk;

/// A signature document for plugin `name` at `version` over `wasm`, as `switchyard plugin sign`
/// would write it into `<file>.sig` (see docs/plugins.md, "Signing").
pub fn sign_plugin(
    key: &ed25519_dalek::SigningKey,
    name: &str,
    version: u64,
    wasm: &[u8],
) -> String {
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let message = switchyard::plugin::signature::signed_message(name, version, wasm);
    let signature =
        base64::engine::general_purpose::STANDARD.encode(key.sign(message.as_bytes()).to_bytes());
    serde_json::json!({"name": name, "version": version, "signature": signature}).to_string()
}

/// Plugin pool slots for the proxies and engines tests start (the default is 12,288). A test
/// binary runs several at once, and every slot costs memory mappings (docs/plugins.md, "Limits").
pub const TEST_POOL: u32 = 256;

/// The default plugin engine limits with a [`TEST_POOL`]-slot pool.
pub fn test_engine_limits() -> switchyard::plugin::EngineLimits {
    switchyard::plugin::EngineLimits { max_instances: TEST_POOL, ..Default::default() }
}

/// The sha256 of `bytes` in hex, as the proxy names plugin versions.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A chat request body with one user message.
pub fn chat_body(model: &str, text: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model, "stream": stream,
        "messages": [{"role": "user", "content": text}],
    })
    .to_string()
}
