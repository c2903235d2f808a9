//! Bad input: each gets a clear OpenAI-shaped error, nothing reaches an upstream, and no bad client
//! disturbs another client's request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use switchyard_tests::chat_body;
use switchyard_tests::client::{self, Reply, get, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn proxy_with(extra_server: &str) -> (Proxy, MockUpstream) {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"").replacen(
        "[server]\n",
        &format!("[server]\n{extra_server}\n"),
        1,
    );
    (Proxy::start(&cfg).await, local)
}

fn assert_openai_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let error = &reply.json()["error"];
    assert_eq!(error["code"], code, "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["type"].is_string());
    assert_eq!(reply.header("x-switchyard-upstream"), "none");
    assert!(!reply.header("x-request-id").is_empty());
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400s_naming_the_field() {
    let (proxy, local) = proxy_with("").await;
    let url = proxy.url("/v1/chat/completions");
    assert_openai_error(&post(&url, "{not json").await, 400, "invalid_json");
    assert_openai_error(&post(&url, "").await, 400, "invalid_json");
    let reply = post(&url, r#"{"model":"m","messages":"hello"}"#).await;
    assert_openai_error(&reply, 400, "invalid_type");
    assert_eq!(reply.json()["error"]["param"], "messages");
    let reply = post(&url, r#"{"model":"m","messages":[],"stream":"yes"}"#).await;
    assert_eq!(reply.json()["error"]["param"], "stream");
    let reply = post(&url, r#"{"messages":[]}"#).await;
    assert_openai_error(&reply, 400, "invalid_type");
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("model"));
    let reply =
        post(&proxy.url("/v1/embeddings"), r#"{"model":"m","input":"x","dimensions":"big"}"#).await;
    assert_eq!(reply.status, 200, "unknown fields are passed through untyped");
    assert_eq!(local.hits(), 1, "only the valid request reached the upstream");
    proxy.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let (proxy, local) = proxy_with("").await;
    assert_openai_error(&post(&proxy.url("/v1/nope"), "{}").await, 404, "unknown_url");
    assert_openai_error(&get(&proxy.url("/v1/chat/completions")).await, 405, "method_not_allowed");
    let admin = get(&proxy.admin_url("/nope")).await;
    assert_eq!(
        (admin.status.as_u16(), &admin.json()["error"]["code"]),
        (404, &"unknown_url".into())
    );
    assert_eq!(local.hits(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let (proxy, local) = proxy_with("max_body_bytes = 1024").await;
    let big = chat_body("m", &"x".repeat(2000), false);
    assert_openai_error(
        &post(&proxy.url("/v1/chat/completions"), &big).await,
        413,
        "request_too_large",
    );
    // Without a content-length the limit is enforced while reading.
    let chunks =
        futures_util::stream::iter((0..4).map(|_| {
            Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(vec![b' '; 600])))
        }));
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let reply = client::read(client.request(request).await.unwrap()).await;
    assert_openai_error(&reply, 413, "request_too_large");
    assert_eq!(local.hits(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn a_slow_body_gets_408_and_others_are_served_meanwhile() {
    let (proxy, _local) = proxy_with("").await; // body_read_timeout_ms = 2000 in the test config
    let mut slow = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\"",
    )
    .await
    .unwrap();
    // While the slow client dawdles, a normal one is served.
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 200);
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "the slow client was not cut off");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"));
    proxy.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let (proxy, _local) = proxy_with("").await; // header_read_timeout_ms = 2000
    let mut slow = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "the connection with unfinished headers was not closed");
    proxy.stop().await;
}

#[tokio::test]
async fn garbage_on_the_wire_does_not_disturb_other_clients() {
    let (proxy, _local) = proxy_with("").await;
    let mut garbage = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    garbage.write_all(b"\x00\x01\x02 NOT HTTP \r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), garbage.read_to_end(&mut sink)).await;
    let requests = (0..20).map(|i| {
        let url = proxy.url("/v1/chat/completions");
        async move { post(&url, &chat_body("m", &format!("n{i}"), i % 2 == 0)).await }
    });
    for reply in futures_util::future::join_all(requests).await {
        assert_eq!(reply.status, 200);
    }
    proxy.stop().await;
}

#[tokio::test]
async fn admin_health_and_metrics() {
    let (proxy, _local) = proxy_with("").await;
    post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    let health = get(&proxy.admin_url("/healthz")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let metrics = get(&proxy.admin_url("/metrics")).await.text();
    assert!(metrics.contains(
        r#"switchyard_requests_total{endpoint="chat_completions",status="200",upstream="local"} 1"#
    ), "{metrics}");
    assert!(metrics.contains(r#"switchyard_upstream_latency_seconds_count{upstream="local"} 1"#));
    let denied = client::read(
        client::send(
            Request::post(proxy.admin_url("/admin/reload")).body(Full::new(Bytes::new())).unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!(denied.status, 401);
    proxy.stop().await;
}
