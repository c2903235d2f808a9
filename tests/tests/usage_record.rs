//! Every request's record: one access-log line with its tokens (reported by the upstream, or
//! estimated from what was relayed when it reported none), attempts, cache result and how the
//! response ended, and never the prompt's or the answer's text. Streams ask the upstream for
//! their usage chunk and strip it again for a client that did not ask.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use switchyard_tests::chat_body;
use switchyard_tests::client::{self, get, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};

/// A proxy in front of `upstream`, writing its access log to a file in `dir`.
async fn logged_proxy(upstream: &MockUpstream, dir: &tempfile::TempDir) -> Proxy {
    let log = dir.path().join("access.log");
    let cfg = config(&[("local", &upstream.base_url(), "")], "default = \"local\"");
    Proxy::start(&format!("{cfg}\n[log]\naccess = \"{}\"\n", log.display())).await
}

/// The access log's lines, read after the proxy stopped (which writes out what is queued).
fn lines(dir: &tempfile::TempDir) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.path().join("access.log")).expect("access log");
    text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
}

fn with_usage(body: &str) -> String {
    let mut value: Value = serde_json::from_str(body).unwrap();
    value["stream_options"] = serde_json::json!({"include_usage": true});
    value.to_string()
}

#[tokio::test]
async fn each_request_gets_one_line_with_its_tokens_and_no_text() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = logged_proxy(&local, &dir).await;
    let url = proxy.url("/v1/chat/completions");
    let secret = "my passphrase is tangerine";

    let plain = post(&url, &chat_body("m", secret, false)).await;
    assert_eq!(plain.status, 200);
    // A stream whose client did not ask for usage: the upstream was asked, the client gets none.
    let streamed = post(&url, &chat_body("m", secret, true)).await;
    assert_eq!(streamed.status, 200);
    let events = client::sse_data(&streamed.body);
    assert!(events.iter().all(|e| !e.contains("\"usage\"")), "usage chunk stripped: {events:?}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let sent = local.received()[1].json();
    assert_eq!(sent["stream_options"]["include_usage"], true, "the upstream is asked");
    // A client that asked gets the usage chunk.
    let asked = post(&url, &with_usage(&chat_body("m", secret, true))).await;
    let events = client::sse_data(&asked.body);
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 6, "{events:?}");
    let bad = post(&url, "{\"model\": 5}").await;
    assert_eq!(bad.status, 400);
    proxy.stop().await;

    let lines = lines(&dir);
    assert_eq!(lines.len(), 4, "{lines:?}");
    // As the mock counts: 4 prompt words, and 6 pieces of `local heard: my passphrase is
    // tangerine`.
    for (line, stream) in lines[..3].iter().zip([false, true, true]) {
        assert_eq!(line["status"], 200);
        assert_eq!(line["stream"], stream);
        assert_eq!(line["usage"], "reported", "{line}");
        assert_eq!(line["prompt_tokens"], 4, "{line}");
        assert_eq!(line["completion_tokens"], 6, "{line}");
        assert_eq!(line["upstream"], "local");
        assert_eq!(line["attempts"][0]["outcome"], "ok");
        assert_eq!(line["end"], "complete");
        assert_eq!(line["endpoint"], "/v1/chat/completions");
        assert!(line["ttft_ms"].as_f64().is_some(), "{line}");
    }
    assert_eq!(lines[3]["status"], 400);
    assert_eq!(lines[3]["usage"], "none");
    let all = lines.iter().map(Value::to_string).collect::<String>();
    assert!(!all.contains("tangerine") && !all.contains("passphrase"), "no prompt text: {all}");
    assert!(!all.contains("heard"), "no answer text");
}

#[tokio::test]
async fn a_stream_without_a_usage_report_is_estimated_from_what_was_relayed() {
    let local = MockUpstream::start("local", Behavior::IgnoresUsageOption).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = logged_proxy(&local, &dir).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "abcd", true)).await;
    assert_eq!(client::stream_text(&reply.body), "local heard: abcd");
    proxy.stop().await;
    let line = &lines(&dir)[0];
    assert_eq!(line["usage"], "estimated");
    // The three pieces relayed, each estimated as docs/limits.md says.
    let estimate = switchyard::ledger::usage::estimate_tokens;
    let expected = estimate("local ") + estimate("heard: ") + estimate("abcd");
    assert_eq!(line["completion_tokens"], expected);
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_recorded_with_what_was_generated() {
    let local =
        MockUpstream::start("local", Behavior::SlowEvents(Duration::from_millis(200))).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = logged_proxy(&local, &dir).await;
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .body(Full::new(Bytes::from(chat_body("m", "one two three four five six", true))))
        .unwrap();
    let response = client::send(request).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    // The first content event, then the client goes away.
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some());
    drop(body);
    proxy.stop().await;
    let line = &lines(&dir)[0];
    assert_eq!(line["end"], "client_gone", "{line}");
    assert_eq!(line["usage"], "estimated", "{line}");
    assert!(line["completion_tokens"].as_u64().unwrap() >= 1, "{line}");
}

#[tokio::test]
async fn time_to_first_token_is_a_metric() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = logged_proxy(&local, &dir).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", true)).await;
    assert_eq!(reply.status, 200);
    let metrics = get(&proxy.admin_url("/metrics")).await.text();
    let count = metrics.lines().find(|l| {
        l.starts_with("switchyard_time_to_first_token_seconds_count{upstream=\"local\"}")
    });
    assert_eq!(count.map(|l| l.rsplit(' ').next().unwrap()), Some("1"), "{metrics}");
    assert!(metrics.contains("switchyard_tokens_per_second"), "{metrics}");
    proxy.stop().await;
}
