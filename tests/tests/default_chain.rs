//! The default chain exactly as `switchyard.toml` ships it (pii-redact → tier-router →
//! cache-policy), with its upstreams pointed at recording mocks: PII never reaches an upstream raw
//! and keeps the request local, clean alias requests go to their tier, cached answers hold only
//! placeholders and are restored with the current request's values, and the three plugins are
//! hot-swapped under load without a failed request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;
use switchyard_tests::client::{self, Reply};
use switchyard_tests::harness::{Proxy, shipped_config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::wasm;

const TOKEN: &str = "default-chain-admin-token";

struct Setup {
    proxy: Proxy,
    local: MockUpstream,
    hosted: MockUpstream,
    _dir: tempfile::TempDir,
}

/// The repository's switchyard.toml with the built-in plugins installed in a temp dir and the
/// local and hosted upstreams replaced by mocks.
async fn start() -> Setup {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let hosted = MockUpstream::start("hosted", Behavior::Normal).await;
    let (dir, config) = shipped_config(&local.base_url(), &hosted.base_url());
    let env = HashMap::from([
        ("OPENAI_API_KEY".to_string(), "sk-test-hosted".to_string()),
        ("SWITCHYARD_ADMIN_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    let proxy = Proxy::start_with_env(&config, env).await;
    Setup { proxy, local, hosted, _dir: dir }
}

fn chat(model: &str, text: &str, stream: bool, temperature: f64) -> String {
    json!({"model": model, "stream": stream, "temperature": temperature,
        "messages": [{"role": "user", "content": text}]})
    .to_string()
}

async fn post(proxy: &Proxy, body: String) -> Reply {
    client::post(&proxy.url("/v1/chat/completions"), &body).await
}

fn answer(reply: &Reply) -> String {
    if reply.header("content-type").starts_with("text/event-stream") {
        client::stream_text(&reply.body)
    } else {
        reply.json()["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_string()
    }
}

/// Every user message an upstream received, joined.
fn received_text(upstream: &MockUpstream) -> String {
    upstream
        .received()
        .iter()
        .flat_map(|r| {
            r.json()["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m["content"].as_str().map(str::to_string))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn pii_stays_local_is_redacted_upstream_and_restored_for_the_client() {
    let s = start().await;
    let text =
        "Write to jane.doe@example.com or call +44 20 7946 0958 about card 4111 1111 1111 1111.";
    for stream in [false, true] {
        // "best" is the hosted tier, but PII pins the request to the local tier.
        let reply = post(&s.proxy, chat("best", text, stream, 0.7)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.header("x-switchyard-upstream"), "local");
        assert_eq!(answer(&reply), format!("local heard: {text}"), "restored for the client");
    }
    let seen = received_text(&s.local);
    for raw in ["jane.doe@example.com", "7946 0958", "4111 1111 1111 1111"] {
        assert!(!seen.contains(raw), "the upstream saw {raw}: {seen}");
    }
    assert!(seen.contains("<EMAIL_1>") && seen.contains("<PHONE_1>"), "{seen}");
    assert_eq!(s.hosted.hits(), 0, "PII never went to the hosted tier");
    let counters = plugin_counters(&s.proxy, "tier-router").await;
    assert_eq!(counters["reason.residency"], 2, "{counters}");
}

#[tokio::test]
async fn clean_alias_requests_go_to_their_tier() {
    let s = start().await;
    let reply = post(&s.proxy, chat("best", "Summarise the plot of Hamlet.", false, 0.7)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-upstream"), "hosted");
    assert_eq!(s.hosted.received()[0].json()["model"], "gpt-4o-mini");
    let auth = s.hosted.received()[0].headers.get("authorization").cloned();
    assert_eq!(auth.unwrap(), "Bearer sk-test-hosted");

    let reply = post(&s.proxy, chat("fast", "Complete: the quick brown", false, 0.7)).await;
    assert_eq!(reply.header("x-switchyard-upstream"), "local");
    assert_eq!(s.local.received()[0].json()["model"], "smollm2");

    // A model that is not an alias keeps the default route and its name.
    let reply = post(&s.proxy, chat("smollm2", "hello", false, 0.7)).await;
    assert_eq!(reply.header("x-switchyard-upstream"), "local");
    assert_eq!(s.local.received()[1].json()["model"], "smollm2");

    // The router's decisions as its counters show them (they count its route tags).
    let counters = plugin_counters(&s.proxy, "tier-router").await;
    assert_eq!(counters["tier.hosted"], 1, "{counters}");
    assert_eq!(counters["tier.local"], 1, "{counters}");
    assert_eq!(counters["reason.alias"], 2, "{counters}");
    assert_eq!(counters["reason.passthrough"], 1, "{counters}");
}

/// One plugin's own counters, from `GET /admin/plugins`.
async fn plugin_counters(proxy: &Proxy, name: &str) -> serde_json::Value {
    let request = Request::get(proxy.admin_url("/admin/plugins"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let listed = client::read(client::send(request).await).await.json();
    let plugins = listed["plugins"].as_array().cloned().unwrap_or_default();
    let plugin = plugins.into_iter().find(|p| p["name"] == name).expect("plugin listed");
    plugin["counters"].clone()
}

#[tokio::test]
async fn cached_answers_hold_placeholders_and_are_restored_with_current_values() {
    let s = start().await;
    let first =
        post(&s.proxy, chat("smollm2", "Reply to ann@example.com please", false, 0.0)).await;
    assert_eq!(first.header("x-switchyard-cache"), "miss");
    assert_eq!(answer(&first), "local heard: Reply to ann@example.com please");

    // Another address redacts to the same placeholder, so the same key: a hit, restored with
    // this request's address. Had the cache stored the restored answer, ann's address would show.
    for stream in [false, true] {
        let hit =
            post(&s.proxy, chat("smollm2", "Reply to bob@example.org please", stream, 0.0)).await;
        assert_eq!(hit.status, StatusCode::OK, "{}", hit.text());
        assert_eq!(hit.header("x-switchyard-cache"), "hit");
        assert_eq!(answer(&hit), "local heard: Reply to bob@example.org please");
        assert!(!hit.text().contains("ann@example.com"));
    }
    assert_eq!(s.local.hits(), 1);
}

#[tokio::test]
async fn the_three_plugins_hot_swap_under_load() {
    let s = start().await;
    let stop = Arc::new(AtomicBool::new(false));
    let url = s.proxy.url("/v1/chat/completions");
    let workers: Vec<_> = (0..100)
        .map(|task| {
            let (stop, url) = (Arc::clone(&stop), url.clone());
            tokio::spawn(async move {
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let email = format!("user{task}.{sent}@example.com");
                    let text = format!("Contact {email} about order {sent}");
                    let temperature = if sent.is_multiple_of(3) { 0.0 } else { 0.5 };
                    let body = chat("auto", &text, sent.is_multiple_of(2), temperature);
                    let reply = client::post(&url, &body).await;
                    assert_eq!(
                        reply.status,
                        StatusCode::OK,
                        "failed during a swap: {}",
                        reply.text()
                    );
                    assert_eq!(answer(&reply), format!("local heard: {text}"));
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for round in 0..2 {
        for (file, built) in wasm::BUILT_IN {
            let name = file.trim_end_matches(".wasm").replace('_', "-");
            let request = Request::put(s.proxy.admin_url(&format!("/admin/plugins/{name}")))
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::new(Bytes::from(std::fs::read(built).unwrap())))
                .unwrap();
            let reply = client::read(client::send(request).await).await;
            assert_eq!(reply.status, StatusCode::OK, "round {round} {name}: {}", reply.text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("a request failed");
    }
    assert!(total >= 100, "only {total} requests ran");
    let seen = received_text(&s.local);
    assert!(!seen.contains("@example.com"), "a raw address reached the upstream");
}
