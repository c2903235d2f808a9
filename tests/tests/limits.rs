//! Limits on the request path, end to end through the proxy and a recording mock (the in-process
//! ledger; the Redis store passes the same ledger tests in proxy/tests/ledger): a tenant over its
//! requests per minute gets OpenAI's 429 with `retry-after` and `x-ratelimit-*` headers, which
//! every answer to it carries; a streamed answer is settled with the usage the upstream reported
//! (asked for, and stripped for the client), an abandoned stream with what was relayed; a spent
//! budget answers `insufficient_quota`; and the access log says what each request cost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use switchyard_tests::chat_body;
use switchyard_tests::client::{self, Reply, get};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};

const KEY: &str = "sk-acme-virtual";
const ADMIN: &str = "admin-t0ken";

/// A proxy with tenant `acme` (the given limit lines) in front of `upstream`, priced at
/// $1 / $2 per million input / output tokens, logging to `dir`.
async fn proxy(upstream: &MockUpstream, limits: &str, dir: &tempfile::TempDir) -> Proxy {
    let cfg = config(&[("local", &upstream.base_url(), "")], "default = \"local\"").replace(
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"ADMIN_TOKEN\"\n",
    );
    let log = dir.path().join("access.log");
    let cfg = format!(
        "{cfg}\n[[tenant]]\nname = \"acme\"\nkey_env = \"ACME_KEY\"\n{limits}\n\n\
         [[price]]\nupstream = \"local\"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\n\n\
         [log]\naccess = \"{}\"\n",
        log.display()
    );
    let env = HashMap::from([
        ("ACME_KEY".to_string(), KEY.to_string()),
        ("ADMIN_TOKEN".to_string(), ADMIN.to_string()),
    ]);
    Proxy::start_with_env(&cfg, env).await
}

fn request(proxy: &Proxy, body: String) -> Request<Full<Bytes>> {
    Request::post(proxy.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn chat(proxy: &Proxy, text: &str, stream: bool) -> Reply {
    client::read(client::send(request(proxy, chat_body("m", text, stream))).await).await
}

async fn usage(proxy: &Proxy) -> Value {
    let req = Request::get(proxy.admin_url("/admin/usage"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = client::read(client::send(req).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["tenants"][0].clone()
}

fn log_lines(dir: &tempfile::TempDir) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn requests_per_minute_are_enforced_with_openai_headers() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy(&local, "requests_per_minute = 3", &dir).await;
    for left in ["2", "1", "0"] {
        let reply = chat(&proxy, "hi", false).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("x-ratelimit-limit-requests"), "3");
        assert_eq!(reply.header("x-ratelimit-remaining-requests"), left);
        assert!(!reply.header("x-ratelimit-reset-requests").is_empty());
    }
    let refused = chat(&proxy, "hi", false).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "rate_limit_exceeded");
    assert!(refused.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(refused.header("x-ratelimit-remaining-requests"), "0");
    assert_eq!(local.received().len(), 3, "the refused request never left");
    proxy.stop().await;
    let lines = log_lines(&dir);
    assert_eq!(lines.iter().filter(|l| l["status"] == 429).count(), 1);
    assert_eq!(lines.iter().filter(|l| l["tenant"] == "acme").count(), 4);
}

#[tokio::test]
async fn streams_settle_with_the_reported_usage_and_cost() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy(&local, "tokens_per_minute = 100000", &dir).await;
    // Four prompt words; the answer `local heard: one two three four` is 6 pieces.
    let reply = chat(&proxy, "one two three four", true).await;
    assert_eq!(reply.status, 200);
    let events = client::sse_data(&reply.body);
    assert!(events.iter().all(|e| !e.contains("\"usage\"")), "usage chunk stripped");
    assert_eq!(local.received()[0].json()["stream_options"]["include_usage"], true);
    assert_eq!(reply.header("x-ratelimit-limit-tokens"), "100000");
    // Settlement runs just after the body ends; the admin view reads what it wrote.
    let totals = wait_for_totals(&proxy, 1).await;
    assert_eq!(totals["prompt_tokens"], 4);
    assert_eq!(totals["completion_tokens"], 6);
    let expected_usd = (4.0 * 1.0 + 6.0 * 2.0) / 1e6;
    assert!((totals["cost_usd"].as_f64().unwrap() - expected_usd).abs() < 1e-9, "{totals}");
    let metrics = get(&proxy.admin_url("/metrics")).await.text();
    assert!(metrics.contains("switchyard_tokens_total{"), "{metrics}");
    proxy.stop().await;
    let line = &log_lines(&dir)[0];
    assert!((line["cost_usd"].as_f64().unwrap() - expected_usd).abs() < 1e-12, "{line}");
}

/// The tenant's totals once `requests` requests have been settled (settlement is one background
/// step after each response; this waits for that event, not for a time).
async fn wait_for_totals(proxy: &Proxy, requests: u64) -> Value {
    for _ in 0..2000 {
        let totals = usage(proxy).await["totals_since_start"].clone();
        if totals["completion_tokens"].as_u64().unwrap_or(0) > 0 && totals["requests"] == requests {
            return totals;
        }
        tokio::task::yield_now().await;
    }
    panic!("never settled: {}", usage(proxy).await);
}

#[tokio::test]
async fn an_abandoned_stream_is_charged_for_what_was_relayed() {
    let local =
        MockUpstream::start("local", Behavior::SlowEvents(Duration::from_millis(300))).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy(&local, "max_concurrent = 5", &dir).await;
    let response = client::send(request(&proxy, chat_body("m", "a b c d e f g h", true))).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    assert!(body.frame().await.unwrap().unwrap().data_ref().is_some());
    drop(body);
    let totals = wait_for_totals(&proxy, 1).await;
    assert!(totals["completion_tokens"].as_u64().unwrap() >= 1, "{totals}");
    let window = usage(&proxy).await["window"].clone();
    assert_eq!(window["in_flight"], 0, "the slot was given back: {window}");
    proxy.stop().await;
    assert_eq!(log_lines(&dir)[0]["end"], "client_gone");
}

#[tokio::test]
async fn a_spent_budget_answers_insufficient_quota() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let dir = tempfile::tempdir().unwrap();
    // A request reserves (prompt + 1024 default max_tokens) at $2/M: about $0.002 of the half
    // cent; each is settled at its real cost before the next.
    let proxy = proxy(&local, "budget_usd_per_day = 0.005", &dir).await;
    for _ in 0..3 {
        let reply = chat(&proxy, "hi", false).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    // Settled at the real (tiny) cost, the budget is not spent by two short answers.
    let totals = wait_for_totals(&proxy, 3).await;
    assert!(totals["cost_usd"].as_f64().unwrap() < 0.001, "{totals}");
    let expensive =
        r#"{"model":"m","max_tokens":10000000,"messages":[{"role":"user","content":"hi"}]}"#;
    let reply = client::read(client::send(request(&proxy, expensive.to_string())).await).await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "insufficient_quota");
    proxy.stop().await;
}
