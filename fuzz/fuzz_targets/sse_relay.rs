//! cargo-fuzz target `sse_relay`: the logic and its invariants are `switchyard::fuzzing::SseRelay`.
//! `SWITCHYARD_FUZZ_PII_REDACT` names the pii-redact component (scripts/fuzz.sh builds it with the
//! stable toolchain, as tests/build.rs does, and sets it).
#![no_main]

use std::sync::OnceLock;

use switchyard::fuzzing::SseRelay;

static RELAY: OnceLock<SseRelay> = OnceLock::new();

/// Loads pii-redact (compiling it takes seconds in the instrumented build): done in libFuzzer's
/// init, which its per-input `-timeout` does not count, so a slow machine cannot turn the first
/// input into a false "timeout".
fn relay() -> &'static SseRelay {
    RELAY.get_or_init(|| {
        let path = std::env::var_os("SWITCHYARD_FUZZ_PII_REDACT")
            .expect("set SWITCHYARD_FUZZ_PII_REDACT to pii_redact.wasm (scripts/fuzz.sh does)");
        SseRelay::new(std::path::Path::new(&path)).expect("load pii-redact")
    })
}

libfuzzer_sys::fuzz_target!(
    init: {
        relay();
    },
    |data: &[u8]| {
        relay().run(data);
    }
);
