//! Graceful shutdown: new connections are refused, in-flight streams finish, within the deadline,
//! on every worker; and the workers share the connections.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_serves_and_drains_its_own_streams() {
    let local = MockUpstream::start("local", Behavior::SlowEvents(Duration::from_millis(50))).await;
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"")
        .replace("[server]\n", "[server]\nworkers = 4\n");
    let mut proxy = Proxy::start(&cfg).await;
    // Twelve connections at once: the four workers race to accept them, so several serve some.
    let mut streams = Vec::new();
    for i in 0..12 {
        let request = Request::post(proxy.url("/v1/chat/completions"))
            .body(Full::new(Bytes::from(chat_body("m", &format!("stream {i}"), true))))
            .unwrap();
        streams.push(tokio::spawn(client::send(request)));
    }
    let mut responses = Vec::new();
    for stream in streams {
        let response = stream.await.unwrap();
        assert_eq!(response.status(), 200);
        responses.push(response);
    }
    let accepted = connections_by_worker(&proxy).await;
    assert_eq!(accepted.iter().sum::<u64>(), 12, "{accepted:?}");
    proxy.begin_shutdown();
    for (i, response) in responses.into_iter().enumerate() {
        let body = response.into_body().collect().await.expect("stream completed").to_bytes();
        assert_eq!(client::stream_text(&body), format!("local heard: stream {i}"));
        assert_eq!(client::sse_data(&body).last().unwrap(), "[DONE]");
    }
    tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await.expect("proxy returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_over_the_workers() {
    let cfg = config(&[("local", "http://127.0.0.1:9/v1", "")], "default = \"local\"")
        .replace("[server]\n", "[server]\nworkers = 3\n");
    let proxy = Proxy::start(&cfg).await;
    let mut held = Vec::new();
    for _ in 0..48 {
        held.push(tokio::net::TcpStream::connect(proxy.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let accepted = connections_by_worker(&proxy).await;
    assert_eq!(accepted.iter().sum::<u64>(), 48, "{accepted:?}");
    // Whichever worker accepts, each connection goes to the worker serving the fewest.
    assert_eq!(accepted.len(), 3, "{accepted:?}");
    let (least, most) = (accepted.iter().min().unwrap(), accepted.iter().max().unwrap());
    assert!(most - least <= 4, "connections not balanced: {accepted:?}");
    drop(held);
    proxy.stop().await;
}

/// `switchyard_connections_total` per worker, from /metrics.
async fn connections_by_worker(proxy: &Proxy) -> Vec<u64> {
    let metrics = client::get(&proxy.admin_url("/metrics")).await;
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .filter(|l| l.starts_with("switchyard_connections_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect()
}
