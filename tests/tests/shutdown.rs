//! Graceful shutdown: new connections are refused, in-flight streams finish, within the deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use switchyard_tests::chat_body;
use switchyard_tests::client;
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};

#[tokio::test]
async fn an_open_stream_finishes_after_shutdown_begins() {
    let local =
        MockUpstream::start("local", Behavior::SlowEvents(Duration::from_millis(100))).await;
    let mut proxy =
        Proxy::start(&config(&[("local", &local.base_url(), "")], "default = \"local\"")).await;
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .body(Full::new(Bytes::from(chat_body("m", "drain me please", true))))
        .unwrap();
    let response = client::send(request).await;
    assert_eq!(response.status(), 200);
    let addr = proxy.addr;

    proxy.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "new connections are refused once shutdown begins");

    let body = response.into_body().collect().await.expect("stream completed").to_bytes();
    assert_eq!(client::stream_text(&body), "local heard: drain me please");
    assert_eq!(client::sse_data(&body).last().unwrap(), "[DONE]");
    tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await.expect("proxy returned");
}

#[tokio::test]
async fn the_drain_deadline_bounds_shutdown() {
    let local = MockUpstream::start("local", Behavior::StallBeforeFirstContent).await;
    let cfg = config(
        &[("local", &local.base_url(), "first_byte_timeout_ms = 60000")],
        "default = \"local\"",
    )
    .replace("drain_timeout_ms = 5000", "drain_timeout_ms = 300");
    let mut proxy = Proxy::start(&cfg).await;
    let url = proxy.url("/v1/chat/completions");
    let stuck = tokio::spawn(async move { client::post(&url, &chat_body("m", "hi", true)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.begin_shutdown();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(3), proxy.wait()).await.expect("shutdown is bounded");
    assert!(started.elapsed() >= Duration::from_millis(250));
    stuck.abort();
}
