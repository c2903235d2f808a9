//! cargo-fuzz target `sse_relay`: the logic and its invariants are `switchyard::fuzzing::SseRelay`.
//! `SWITCHYARD_FUZZ_PII_REDACT` names the pii-redact component (scripts/fuzz.sh builds it with the
//! stable toolchain, as tests/build.rs does, and sets it).
#![no_main]

use std::sync::OnceLock;

use switchyard::fuzzing::SseRelay;

static RELAY: OnceLock<SseRelay> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let relay = RELAY.get_or_init(|| {
        let path = std::env::var_os("SWITCHYARD_FUZZ_PII_REDACT")
            .expect("set SWITCHYARD_FUZZ_PII_REDACT to pii_redact.wasm (scripts/fuzz.sh does)");
        SseRelay::new(std::path::Path::new(&path)).expect("load pii-redact")
    });
    relay.run(data);
});
