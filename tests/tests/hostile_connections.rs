//! Hostile clients at the connection level: connections that send nothing, half an HTTP/2
//! preface or half a request head are closed at the first-request deadline; idle HTTP/2
//! connections at the idle timeout; over the connection cap new connections are closed at once;
//! and none of it stops a normal request or `/healthz`.
//!
//! Time is paused (tokio's virtual clock, advanced only when every task waits), so "closed on
//! time" is checked exactly, without wall-clock bounds that flake on a loaded machine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use switchyard_tests::chat_body;
use switchyard_tests::client::{self, get, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const FIRST_REQUEST: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(5);

/// One worker, so the proxy runs on the test's (paused) runtime; `extra` goes into `[server]`.
async fn proxy(behavior: Behavior, extra: &str) -> (Proxy, MockUpstream) {
    let local = MockUpstream::start("local", behavior).await;
    let server =
        format!("[server]\nworkers = 1\nidle_timeout_ms = {}\n{extra}\n", IDLE.as_millis());
    let mut cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"").replacen(
        "[server]\n",
        &server,
        1,
    );
    if extra.contains("body_read_timeout_ms") {
        cfg = cfg.replace("body_read_timeout_ms = 2000\n", "");
    }
    (Proxy::start(&cfg).await, local)
}

/// Reads until the proxy closes the connection (EOF or reset) and returns when that happened.
async fn closed_at(mut stream: TcpStream) -> Instant {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Instant::now(),
            Ok(_) => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn silent_and_half_open_connections_are_closed_at_the_first_request_deadline() {
    let (proxy, local) = proxy(Behavior::Normal, "").await;
    let start = Instant::now();
    let openers: [&[u8]; 3] =
        [b"", b"PRI * HTTP/2.0\r\n", b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"];
    let mut idle = Vec::new();
    for i in 0..1500 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(openers[i % openers.len()]).await.unwrap();
        idle.push(tokio::spawn(closed_at(stream)));
    }

    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(get(&proxy.admin_url("/healthz")).await.status, 200);
    assert!(start.elapsed() < FIRST_REQUEST, "served while the idle connections were open");

    for (i, closed) in idle.into_iter().enumerate() {
        let after = closed.await.unwrap() - start;
        assert!(
            after >= FIRST_REQUEST && after <= FIRST_REQUEST + Duration::from_secs(1),
            "connection {i} closed after {after:?}"
        );
    }
    assert_eq!(local.hits(), 1);
    proxy.stop().await;
}

#[tokio::test(start_paused = true)]
async fn over_the_cap_new_connections_are_closed_and_healthz_still_answers() {
    let (proxy, _local) = proxy(Behavior::Normal, "max_connections = 40").await;
    let start = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(proxy.addr).await.unwrap());
    }
    // The 41st is accepted and closed at once, before its deadline could pass.
    let mut over = TcpStream::connect(proxy.addr).await.unwrap();
    over.write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let refused_at = closed_at(over).await;
    assert!(refused_at - start < FIRST_REQUEST);
    assert_eq!(get(&proxy.admin_url("/healthz")).await.status, 200, "admin has its own cap");
    let metrics = get(&proxy.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("switchyard_connections_refused_total{listener=\"api\"} 1"),
        "{metrics}"
    );

    // Once the idle ones reach their deadline, their places are free again.
    for stream in idle {
        closed_at(stream).await;
    }
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    proxy.stop().await;
}

#[tokio::test(start_paused = true)]
async fn idle_http2_connections_close_after_the_idle_timeout_but_long_streams_do_not() {
    let gap = Duration::from_secs(4);
    // Generous read deadlines: this test is about idleness, not slow clients.
    let (proxy, _local) = proxy(Behavior::SlowEvents(gap), "body_read_timeout_ms = 600000").await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);

    // A stream far longer than the idle timeout, with gaps close to it, is never cut.
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body("m", "a slow stream", true))))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(client::stream_text(&body), "local heard: a slow stream");
    let ended = Instant::now();

    // Then, with nothing in flight, the proxy closes the connection at the idle timeout.
    conn.await.unwrap().unwrap();
    let after = ended.elapsed();
    assert!(after >= IDLE && after <= IDLE + Duration::from_secs(1), "closed after {after:?}");
    proxy.stop().await;
}
