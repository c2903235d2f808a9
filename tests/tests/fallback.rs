//! Fallback: connect errors, 5xx, 429 and stalls before the first byte (or before a stream's first
//! content event) move down the chain; a stream that fails after commit ends with an error event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::time::{Duration, Instant};

use switchyard_tests::chat_body;
use switchyard_tests::client::{self, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};

/// A port that refuses connections: bound but never listening. The socket is held for as long as
/// the URL is used, so a server started by a test running beside this one cannot take the port
/// (dropping a listener and reusing its port raced with them and once answered as upstream "b").
struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    url: String,
}

fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    ClosedPort { _socket: socket, url: format!("http://127.0.0.1:{port}/v1") }
}

/// A proxy whose chain is `first` then `backup`, with short timeouts.
async fn chain(first: &str, backup: &MockUpstream) -> Proxy {
    let timeouts = "first_byte_timeout_ms = 300\ntotal_timeout_ms = 2000";
    Proxy::start(&config(
        &[("first", first, timeouts), ("backup", &backup.base_url(), timeouts)],
        "default = \"first\"\nfallbacks = [\"backup\"]",
    ))
    .await
}

async fn assert_backup_answers(proxy: &Proxy, stream: bool) {
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", stream)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-upstream"), "backup");
    if stream {
        assert_eq!(client::stream_text(&reply.body), "backup heard: hi");
        assert_eq!(client::sse_data(&reply.body).last().unwrap(), "[DONE]");
    } else {
        assert_eq!(reply.json()["choices"][0]["message"]["content"], "backup heard: hi");
    }
}

#[tokio::test]
async fn connect_refused_falls_back() {
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let closed = closed_port();
    let proxy = chain(&closed.url, &backup).await;
    assert_backup_answers(&proxy, false).await;
    assert_backup_answers(&proxy, true).await;
    proxy.stop().await;
}

#[tokio::test]
async fn server_errors_and_rate_limits_fall_back() {
    for status in [500, 503, 429] {
        let first = MockUpstream::start("first", Behavior::Status(status)).await;
        let backup = MockUpstream::start("backup", Behavior::Normal).await;
        let proxy = chain(&first.base_url(), &backup).await;
        assert_backup_answers(&proxy, false).await;
        assert_backup_answers(&proxy, true).await;
        assert_eq!(first.hits(), 2);
        proxy.stop().await;
    }
}

#[tokio::test]
async fn a_stall_before_the_first_byte_falls_back_after_the_timeout() {
    let first = MockUpstream::start("first", Behavior::Stall).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = chain(&first.base_url(), &backup).await;
    let started = Instant::now();
    assert_backup_answers(&proxy, false).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1500), "{took:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn a_stream_that_stalls_before_content_falls_back() {
    let first = MockUpstream::start("first", Behavior::StallBeforeFirstContent).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = chain(&first.base_url(), &backup).await;
    assert_backup_answers(&proxy, true).await;
    proxy.stop().await;
}

#[tokio::test]
async fn a_stream_that_breaks_before_content_falls_back() {
    // One event (the role-only preamble) and then the connection breaks.
    let first = MockUpstream::start("first", Behavior::FailAfterEvents(1)).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = chain(&first.base_url(), &backup).await;
    assert_backup_answers(&proxy, true).await;
    assert_eq!(first.hits(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_stream_that_breaks_after_commit_ends_with_an_error_event() {
    // Preamble and two content events reach the client, then the upstream breaks.
    let first = MockUpstream::start("first", Behavior::FailAfterEvents(3)).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = chain(&first.base_url(), &backup).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", true)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-upstream"), "first");
    assert_eq!(client::stream_text(&reply.body), "first heard: ");
    let events = client::sse_data(&reply.body);
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_interrupted");
    assert_eq!(last["error"]["type"], "upstream_error");
    assert_eq!(backup.hits(), 0, "a committed stream is never retried elsewhere");
    proxy.stop().await;
}

#[tokio::test]
async fn a_stream_that_ends_without_done_is_not_a_silent_cut() {
    let first = MockUpstream::start("first", Behavior::EndWithoutDone).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = chain(&first.base_url(), &backup).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", true)).await;
    assert_eq!(client::stream_text(&reply.body), "first heard: hi");
    let events = client::sse_data(&reply.body);
    assert!(events.last().unwrap().contains("stream_interrupted"), "{events:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_client_errors_pass_through_without_fallback() {
    let first = MockUpstream::start("first", Behavior::Status(400)).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = chain(&first.base_url(), &backup).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["message"], "first says 400");
    assert_eq!(reply.header("x-switchyard-upstream"), "first");
    assert_eq!(backup.hits(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn all_upstreams_down_is_a_502() {
    let (a, b) = (closed_port(), closed_port());
    let proxy = Proxy::start(&config(
        &[("a", &a.url, ""), ("b", &b.url, "")],
        "default = \"a\"\nfallbacks = [\"b\"]",
    ))
    .await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 502);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "upstream_unavailable");
    assert!(error["message"].as_str().unwrap().contains("tried a, b"), "{error}");
    assert_eq!(reply.header("x-switchyard-upstream"), "none");
    proxy.stop().await;
}

#[tokio::test]
async fn a_last_upstream_timing_out_is_a_504() {
    let first = MockUpstream::start("first", Behavior::Stall).await;
    let proxy = Proxy::start(&config(
        &[("first", &first.base_url(), "first_byte_timeout_ms = 200")],
        "default = \"first\"",
    ))
    .await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.json()["error"]["code"], "upstream_timeout");
    proxy.stop().await;
}

#[tokio::test]
async fn when_every_upstream_fails_with_a_status_the_last_answer_is_passed_through() {
    let first = MockUpstream::start("first", Behavior::Status(500)).await;
    let second = MockUpstream::start("second", Behavior::Status(429)).await;
    let proxy = Proxy::start(&config(
        &[("first", &first.base_url(), ""), ("second", &second.base_url(), "")],
        "default = \"first\"\nfallbacks = [\"second\"]",
    ))
    .await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error"]["message"], "second says 429");
    assert_eq!(reply.header("x-switchyard-upstream"), "second");
    proxy.stop().await;
}

#[tokio::test]
async fn retries_stay_on_the_same_upstream_first() {
    let first = MockUpstream::start("first", Behavior::Status(503)).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = Proxy::start(&config(
        &[("first", &first.base_url(), "retries = 2"), ("backup", &backup.base_url(), "")],
        "default = \"first\"\nfallbacks = [\"backup\"]",
    ))
    .await;
    assert_backup_answers(&proxy, false).await;
    assert_eq!(first.hits(), 3, "one attempt and two retries");
    let metrics = client::get(&proxy.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains(
            r#"switchyard_upstream_attempts_total{upstream="first",outcome="server_error"} 3"#
        ),
        "{metrics}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_disabled_upstream_is_skipped() {
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let proxy = Proxy::start(&config(
        &[
            ("hosted", "https://api.openai.com/v1", "api_key_env = \"UNSET_KEY\""),
            ("backup", &backup.base_url(), ""),
        ],
        "default = \"hosted\"\nfallbacks = [\"backup\"]",
    ))
    .await;
    assert_backup_answers(&proxy, false).await;
    proxy.stop().await;
}
