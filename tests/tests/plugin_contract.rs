//! The contract's minor versions: a component built against `switchyard:plugin@0.1.0` (a frozen
//! copy of that WIT, plugins/testing/contract-0-1-0) loads and runs on this 0.1.1 host, in one
//! chain with a 0.1.1 plugin that calls `tenant-limits`; and `tenant-limits` answers exactly the
//! snapshot the request path handed the chain, for that call only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod plugin_support;

use plugin_support::*;
use serde_json::json;
use switchyard::plugin::{FailurePolicy, Isolation, LimitsSnapshot, RequestOutcome};
use switchyard_tests::wasm;

fn snapshot() -> LimitsSnapshot {
    LimitsSnapshot {
        tenant: "tenant-a".into(),
        requests_per_minute: Some(10),
        tokens_per_minute: None,
        max_concurrent: None,
        budget_micro_usd_per_day: Some(2_000_000),
        remaining_requests: Some(7),
        remaining_tokens: None,
        remaining_concurrent: None,
        remaining_budget_micro_usd: Some(450_000),
        spent_micro_usd_today: 1_550_000,
        minute_resets_in_ms: 30_000,
        day_resets_in_ms: 3_600_000,
    }
}

/// The names the component imports its host interface under, read from the component itself.
fn host_imports(path: &str) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read component");
    let text = String::from_utf8_lossy(&bytes);
    let mut names: Vec<String> = text
        .match_indices("switchyard:plugin/host@")
        .map(|(at, _)| text[at..at + "switchyard:plugin/host@0.1.0".len()].to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn a_0_1_0_plugin_runs_next_to_a_0_1_1_plugin_that_reads_the_tenant_limits() {
    // The fixture really is an old component: it names only the 0.1.0 interfaces.
    assert_eq!(host_imports(wasm::CONTRACT_0_1_0), ["switchyard:plugin/host@0.1.0"]);
    assert_eq!(host_imports(wasm::LIMITS_ECHO), ["switchyard:plugin/host@0.1.1"]);

    let dir = plugin_dir(&[("old.wasm", wasm::CONTRACT_0_1_0), ("echo.wasm", wasm::LIMITS_ECHO)]);
    let mut echo = entry("echo", "echo.wasm", FailurePolicy::Closed, json!({}));
    // A reused instance must not keep one request's limits for the next.
    echo.isolation = Isolation::Reuse;
    let old = entry("old", "old.wasm", FailurePolicy::Closed, json!({}));
    let reg = registry(engine(4), dir.path(), vec![old, echo]).await;
    let set = reg.current();
    assert!(set.reads_tenant_limits(), "limits-echo imports tenant-limits");

    let limits = snapshot();
    let RequestOutcome::Proceed(p) = set.on_request_noted(chat(&["hi"]), Some(&limits), None).await
    else {
        panic!("both plugins proceed");
    };
    assert_eq!(tag(&p.request, "contract"), Some("0.1.0"), "the old plugin ran");
    assert_eq!(tag(&p.request, "limits"), Some("some"));
    assert_eq!(tag(&p.request, "limits.tenant"), Some("tenant-a"));
    assert_eq!(tag(&p.request, "limits.budget"), Some("2000000"));
    assert_eq!(tag(&p.request, "limits.budget_left"), Some("450000"));
    assert_eq!(tag(&p.request, "limits.requests_left"), Some("7"));

    for _ in 0..2 {
        let RequestOutcome::Proceed(p) = set.on_request(chat(&["hi"])).await else {
            panic!("both plugins proceed");
        };
        assert_eq!(tag(&p.request, "contract"), Some("0.1.0"));
        assert_eq!(tag(&p.request, "limits"), Some("none"), "no snapshot, none for the plugin");
    }
}

#[tokio::test]
async fn a_chain_of_plugins_that_never_ask_costs_no_ledger_read() {
    let dir = plugin_dir(&[("old.wasm", wasm::CONTRACT_0_1_0), ("noop.wasm", wasm::NOOP)]);
    let entries = vec![
        entry("old", "old.wasm", FailurePolicy::Closed, json!({})),
        entry("noop", "noop.wasm", FailurePolicy::Closed, json!({})),
    ];
    let reg = registry(engine(4), dir.path(), entries).await;
    assert!(!reg.current().reads_tenant_limits());
}
