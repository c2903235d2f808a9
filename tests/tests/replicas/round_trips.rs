//! One round trip to Redis per request on its way in, also with a plugin that imports
//! `tenant-limits`: tier-router's budget rule gets the windows of the proxy's latest Redis reply
//! (its admissions and settlements return them) instead of reading them, so each request costs
//! its admission before the answer and its settlement after it, as Redis itself counts
//! (`INFO commandstats`). docs/limits.md, "Round trips".

use serde_json::json;
use switchyard_tests::harness::plugins_section;
use switchyard_tests::redis::RedisServer;
use switchyard_tests::wasm;

use crate::support::{Cluster, PROMPT};

/// Tier-router with the budget rule: `best` is the hosted tier, but a remaining budget under
/// $2 sends every request to the budget tier (`local`, model `budget-model`). The tenant's
/// budget is $1, so only a router that got the tenant's limits picks `budget-model`.
const ROUTER: &str = r#"
[[plugin]]
name = "tier-router"
file = "tier_router.wasm"
failure = "closed"
# The longest deadline allowed: a loaded test machine must not fail the router's calls.
timeout_ms = 1000

[plugin.config]
aliases = { best = "hosted" }
local_when_budget_below_usd = 2.0

[plugin.config.tiers.local]
upstream = "local"
model = "budget-model"

[plugin.config.tiers.hosted]
upstream = "local"
model = "hosted-model"
"#;

const LIMITS: &str = "requests_per_minute = 1000\nbudget_usd_per_day = 1.0";

/// Requests measured after the warm-up (a multiple of the three proxies).
const N: usize = 9;

fn best() -> String {
    json!({"model": "best", "max_tokens": 16, "messages": [{"role": "user", "content": PROMPT}]})
        .to_string()
}

/// Sends one request to proxy `i` and checks the router routed it by the budget.
async fn ask(cluster: &Cluster, i: usize) {
    let reply = cluster.chat(i, &best()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = cluster.upstream.received().last().expect("the mock got it").json();
    assert_eq!(sent["model"], "budget-model", "the router saw the tenant's remaining budget");
}

/// Sum over the proxies of `switchyard_ledger_store_calls_total{op}`.
async fn calls(cluster: &Cluster, op: &str) -> u64 {
    let series = format!("switchyard_ledger_store_calls_total{{op=\"{op}\"}}");
    let mut sum = 0;
    for i in 0..cluster.proxies.len() {
        sum += cluster.metric(i, &series).await;
    }
    sum
}

/// Waits until the proxies have settled `n` requests (settlement runs after each response).
async fn settled(cluster: &Cluster, n: u64) {
    for _ in 0..3000 {
        if calls(cluster, "settle").await == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the proxies never settled {n} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_costs_one_round_trip_before_its_answer_with_tenant_limits_imported() {
    let Some(redis) = RedisServer::start().await else { return };
    let (_dir, plugins) = plugins_section(&[("tier_router.wasm", wasm::TIER_ROUTER)], ROUTER);
    // The first line lands in `[state]`: snapshots stay fresh however slow the machine is, so
    // the count below does not depend on timing (the bound itself is tested in proxy/tests).
    let extra = format!("limits_snapshot_max_age_ms = 60000\n\n{plugins}");
    let policies = [Some("closed"); 3];
    let cluster = Cluster::start_extra(Some(redis), LIMITS, &policies, &extra).await.unwrap();
    // Warm-up: each proxy loads the scripts and, having seen no reply yet, reads the windows once.
    for i in 0..3 {
        ask(&cluster, i).await;
    }
    settled(&cluster, 3).await;
    assert_eq!(calls(&cluster, "snapshot").await, 3);
    let redis = cluster.redis.as_ref().unwrap();
    assert_eq!(redis.cli(&["CONFIG", "RESETSTAT"]).await.trim(), "OK");

    for i in 0..N {
        ask(&cluster, i).await;
    }
    settled(&cluster, 3 + N as u64).await;
    let commands = redis.command_calls().await;
    let n = N as u64;
    // Admission (before the answer) and settlement (after it): one script each. (The counts
    // also hold the commands the scripts run inside Redis, GET, INCRBY..., which are no trips.)
    assert_eq!(commands.get("evalsha"), Some(&(2 * n)), "{commands:?}");
    for verb in ["eval", "script|load", "script", "set", "pttl", "del"] {
        assert!(!commands.contains_key(verb), "no {verb}: {commands:?}");
    }
    assert_eq!(calls(&cluster, "admit").await, 3 + n);
    assert_eq!(calls(&cluster, "snapshot").await, 3, "no read for the plugin after the warm-up");
    cluster.stop().await;
}
