//! The response cache with the `cache-policy` plugin, end to end: hit, miss and bypass (with the
//! `x-switchyard-cache` header and /metrics), the client's `cache-control`, tenant isolation, TTL
//! expiry, and streamed answers replayed as SSE or as one JSON body (and the other way round).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};
use switchyard_tests::client::{self, Reply};
use switchyard_tests::harness::{self, Proxy};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::wasm;

struct Setup {
    proxy: Proxy,
    upstream: MockUpstream,
    _dir: tempfile::TempDir,
}

/// A proxy whose only plugin is cache-policy with `config`, in front of one mock upstream.
async fn start(config: &str, extra: &str, env: HashMap<String, String>) -> Setup {
    let upstream = MockUpstream::start("local", Behavior::Normal).await;
    let table = format!(
        "[[plugin]]\nname = \"cache\"\nfile = \"cache_policy.wasm\"\nfailure = \"open\"\nconfig = {config}\n"
    );
    let (dir, section) =
        harness::plugins_section(&[("cache_policy.wasm", wasm::CACHE_POLICY)], &table);
    let config = harness::config(&[("local", &upstream.base_url(), "")], "default = \"local\"");
    let proxy = Proxy::start_with_env(&format!("{config}\n{extra}\n{section}"), env).await;
    Setup { proxy, upstream, _dir: dir }
}

fn body(text: &str, stream: bool, temperature: f64) -> String {
    json!({"model": "m", "stream": stream, "temperature": temperature,
        "messages": [{"role": "user", "content": text}]})
    .to_string()
}

async fn post(proxy: &Proxy, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request =
        Request::post(proxy.url("/v1/chat/completions")).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    client::read(client::send(request).await).await
}

fn cache_header(reply: &Reply) -> &str {
    reply.header("x-switchyard-cache")
}

#[tokio::test]
async fn a_deterministic_request_is_served_from_the_cache_the_second_time() {
    let s = start("{}", "", HashMap::new()).await;
    let first = post(&s.proxy, &body("hello cache", false, 0.0), &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(cache_header(&first), "miss");
    let second = post(&s.proxy, &body("hello cache", false, 0.0), &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(cache_header(&second), "hit");
    assert_eq!(second.header("x-switchyard-upstream"), "local");
    assert_eq!(first.json(), second.json());
    assert_eq!(s.upstream.hits(), 1, "the hit never reached the upstream");

    // Another prompt, or other sampling parameters, is another entry.
    let other = post(&s.proxy, &body("hello other", false, 0.0), &[]).await;
    assert_eq!(cache_header(&other), "miss");
    let seeded = json!({"model": "m", "seed": 7, "temperature": 0.7,
        "messages": [{"role": "user", "content": "hello cache"}]});
    assert_eq!(cache_header(&post(&s.proxy, &seeded.to_string(), &[]).await), "miss");
    assert_eq!(cache_header(&post(&s.proxy, &seeded.to_string(), &[]).await), "hit");
    assert_eq!(s.upstream.hits(), 3);

    let metrics = client::get(&s.proxy.admin_url("/metrics")).await.text();
    assert!(metrics.contains("switchyard_cache_requests_total{result=\"hit\"} 2"), "{metrics}");
    assert!(metrics.contains("switchyard_cache_requests_total{result=\"miss\"} 3"), "{metrics}");
    let bytes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchyard_cache_bytes "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("cache_bytes");
    assert!(bytes > 300, "three answers are held: {bytes} bytes");
}

#[tokio::test]
async fn sampled_requests_and_no_cache_clients_bypass_the_cache() {
    let s = start("{}", "", HashMap::new()).await;
    for _ in 0..2 {
        let sampled = post(&s.proxy, &body("hi", false, 0.8), &[]).await;
        assert_eq!(cache_header(&sampled), "bypass");
    }
    assert_eq!(s.upstream.hits(), 2);

    assert_eq!(cache_header(&post(&s.proxy, &body("hi", false, 0.0), &[]).await), "miss");
    let fresh = post(&s.proxy, &body("hi", false, 0.0), &[("cache-control", "no-cache")]).await;
    assert_eq!(cache_header(&fresh), "bypass");
    let no_store = post(&s.proxy, &body("hi", false, 0.0), &[("cache-control", "no-store")]).await;
    assert_eq!(cache_header(&no_store), "bypass");
    assert_eq!(s.upstream.hits(), 5, "no-cache and no-store both went upstream");
    assert_eq!(cache_header(&post(&s.proxy, &body("hi", false, 0.0), &[]).await), "hit");

    // Errors carry the header too.
    let bad = post(&s.proxy, "{not json", &[]).await;
    assert_eq!(bad.status, 400);
    assert_eq!(cache_header(&bad), "bypass");
}

#[tokio::test]
async fn entries_never_cross_tenants() {
    let tenants = "[[tenant]]\nname = \"a\"\nkey_env = \"KEY_A\"\n\n[[tenant]]\nname = \"b\"\nkey_env = \"KEY_B\"\n";
    let env = HashMap::from([
        ("KEY_A".to_string(), "key-a".to_string()),
        ("KEY_B".to_string(), "key-b".to_string()),
    ]);
    let s = start("{}", tenants, env).await;
    let as_a = [("authorization", "Bearer key-a")];
    let as_b = [("authorization", "Bearer key-b")];
    assert_eq!(cache_header(&post(&s.proxy, &body("same", false, 0.0), &as_a).await), "miss");
    assert_eq!(cache_header(&post(&s.proxy, &body("same", false, 0.0), &as_b).await), "miss");
    assert_eq!(cache_header(&post(&s.proxy, &body("same", false, 0.0), &as_a).await), "hit");
    assert_eq!(cache_header(&post(&s.proxy, &body("same", false, 0.0), &as_b).await), "hit");
    assert_eq!(s.upstream.hits(), 2);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let s = start("{ ttl_seconds = 1 }", "", HashMap::new()).await;
    assert_eq!(cache_header(&post(&s.proxy, &body("ttl", false, 0.0), &[]).await), "miss");
    assert_eq!(cache_header(&post(&s.proxy, &body("ttl", false, 0.0), &[]).await), "hit");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(cache_header(&post(&s.proxy, &body("ttl", false, 0.0), &[]).await), "miss");
    assert_eq!(s.upstream.hits(), 2);
}

#[tokio::test]
async fn a_cached_stream_replays_as_sse_and_as_json() {
    let s = start("{}", "", HashMap::new()).await;
    let first = post(&s.proxy, &body("stream me", true, 0.0), &[]).await;
    assert_eq!(cache_header(&first), "miss");
    let text = client::stream_text(&first.body);
    assert_eq!(text, "local heard: stream me");

    let replay = post(&s.proxy, &body("stream me", true, 0.0), &[]).await;
    assert_eq!(cache_header(&replay), "hit");
    assert_eq!(replay.header("content-type"), "text/event-stream");
    assert_eq!(client::stream_text(&replay.body), text);
    assert_eq!(client::sse_data(&replay.body).last().map(String::as_str), Some("[DONE]"));
    assert_eq!(client::sse_data(&replay.body), client::sse_data(&first.body), "same events");

    let whole = post(&s.proxy, &body("stream me", false, 0.0), &[]).await;
    assert_eq!(cache_header(&whole), "hit");
    let value = whole.json();
    assert_eq!(value["object"], "chat.completion");
    assert_eq!(value["choices"][0]["message"]["content"], text);
    assert_eq!(value["choices"][0]["finish_reason"], "stop");
    assert_eq!(s.upstream.hits(), 1);
}

#[tokio::test]
async fn a_cached_json_answer_replays_as_a_stream() {
    let s = start("{}", "", HashMap::new()).await;
    let first = post(&s.proxy, &body("json first", false, 0.0), &[]).await;
    assert_eq!(cache_header(&first), "miss");
    let replay = post(&s.proxy, &body("json first", true, 0.0), &[]).await;
    assert_eq!(cache_header(&replay), "hit");
    assert_eq!(replay.header("content-type"), "text/event-stream");
    let events = client::sse_data(&replay.body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("chunk JSON"))
        .collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(
        client::stream_text(&replay.body),
        first.json()["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert_eq!(s.upstream.hits(), 1);
}

#[tokio::test]
async fn long_prompts_are_cached_by_their_whole_text() {
    let s = start("{}", "", HashMap::new()).await;
    let long = "The quarterly numbers are in. ".repeat(300); // ~9 KB: the key is the whole text
    assert_eq!(cache_header(&post(&s.proxy, &body(&long, false, 0.0), &[]).await), "miss");
    assert_eq!(cache_header(&post(&s.proxy, &body(&long, false, 0.0), &[]).await), "hit");
    let changed = format!("{long}!");
    assert_eq!(cache_header(&post(&s.proxy, &body(&changed, false, 0.0), &[]).await), "miss");
    assert_eq!(s.upstream.hits(), 2);
}
