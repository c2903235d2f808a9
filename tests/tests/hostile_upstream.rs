//! Hostile or broken upstreams: an SSE event (or line) over `server.max_sse_event_bytes` ends the
//! stream — a 502 before commit, the documented error event after — and drops the upstream
//! connection; a plain body over `server.max_response_bytes` is refused or cut; and the proxy
//! keeps serving other requests. Also the other side of a long stream: a client that stops
//! reading is cut off after `server.send_timeout_ms`, which frees the upstream connection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use switchyard_tests::chat_body;
use switchyard_tests::client::{self, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

const LIMIT: usize = 64 * 1024;

/// An upstream that answers every request with `head` then `body`, written in 16 KiB pieces
/// until the proxy stops reading. Reports on `closed` when the proxy dropped the connection.
async fn hostile(head: &'static str, body: Vec<u8>) -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(answer(stream, head, body.clone(), closed_tx.clone()));
        }
    });
    (addr, closed)
}

async fn answer(
    mut stream: TcpStream,
    head: &str,
    body: Vec<u8>,
    closed: mpsc::UnboundedSender<()>,
) {
    read_request(&mut stream).await;
    let mut sent = stream.write_all(head.as_bytes()).await;
    for piece in body.chunks(16 * 1024) {
        if sent.is_err() {
            break;
        }
        sent = stream.write_all(piece).await;
    }
    if sent.is_ok() {
        // Everything was written: wait for the proxy to close its end.
        let mut rest = [0u8; 64];
        while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
    }
    let _ = closed.send(());
}

/// Reads one request (head and `content-length` body).
async fn read_request(stream: &mut TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed before sending its request");
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).await.unwrap();
                data.extend_from_slice(&buf[..n]);
            }
            return;
        }
    }
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

/// The proxy with the hostile upstream as its only route, and a normal one beside it. Both list
/// their models in the config, so `GET /v1/models` asks neither.
async fn start(evil: SocketAddr, extra: &str) -> (Proxy, MockUpstream) {
    let good = MockUpstream::start("good", Behavior::Normal).await;
    let evil_url = format!("http://{evil}/v1");
    let server = format!("[server]\nmax_sse_event_bytes = {LIMIT}\n{extra}\n");
    let upstreams = [
        ("evil", evil_url.as_str(), "models = [\"e\"]"),
        ("good", &good.base_url(), "models = [\"g\"]"),
    ];
    let cfg = config(&upstreams, "default = \"evil\"").replacen("[server]\n", &server, 1);
    (Proxy::start(&cfg).await, good)
}

/// The proxy, its worker included, still answers on both listeners.
async fn still_serves(proxy: &Proxy) {
    assert_eq!(client::get(&proxy.admin_url("/healthz")).await.status, 200);
    let models = client::get(&proxy.url("/v1/models")).await;
    assert_eq!(models.status, 200, "{}", models.text());
}

#[tokio::test]
async fn a_giant_line_before_commit_is_a_502_and_the_upstream_is_dropped() {
    let mut body = b"data: ".to_vec();
    body.resize(4 * 1024 * 1024, b'x');
    let (evil, mut closed) = hostile(SSE_HEAD, body).await;
    let (proxy, _good) = start(evil, "").await;

    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", true)).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "upstream_unavailable");
    assert!(error["message"].as_str().unwrap().contains("max_sse_event_bytes"), "{error}");
    closed.recv().await.expect("the proxy dropped the upstream connection");
    still_serves(&proxy).await;
    proxy.stop().await;
}

#[tokio::test]
async fn a_giant_event_after_commit_ends_the_stream_with_an_error_event() {
    let first = r#"{"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#;
    let mut body = format!("data: {first}\n\n").into_bytes();
    // Many short lines of one event: no single line is long, the event is.
    while body.len() < 2 * 1024 * 1024 {
        body.extend_from_slice(b"data: 0123456789abcdef\n");
    }
    let (evil, mut closed) = hostile(SSE_HEAD, body).await;
    let (proxy, _good) = start(evil, "").await;

    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body("m", "hi", true))))
        .unwrap();
    let response = client::send(request).await;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(client::stream_text(&body), "Hello");
    let events = client::sse_data(&body);
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_interrupted", "{last}");
    assert!(last["error"]["message"].as_str().unwrap().contains("max_sse_event_bytes"));
    closed.recv().await.expect("the proxy dropped the upstream connection");
    still_serves(&proxy).await;
    proxy.stop().await;
}

#[tokio::test]
async fn a_plain_body_over_the_cap_is_refused_or_cut() {
    let declared: &'static str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                  content-length: 2097152\r\nconnection: close\r\n\r\n";
    let (evil, mut closed) = hostile(declared, vec![b' '; 2 * 1024 * 1024]).await;
    let (proxy, _good) = start(evil, "max_response_bytes = 1048576").await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 502, "a declared length over the cap is refused before commit");
    assert!(reply.text().contains("max_response_bytes"), "{}", reply.text());
    closed.recv().await.unwrap();
    proxy.stop().await;

    let chunked: &'static str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                 connection: close\r\n\r\n";
    let (evil, mut closed) = hostile(chunked, vec![b' '; 2 * 1024 * 1024]).await;
    let (proxy, _good) = start(evil, "max_response_bytes = 1048576").await;
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_body("m", "hi", false))))
        .unwrap();
    let response = client::send(request).await;
    assert_eq!(response.status(), 200, "an undeclared length is relayed until the cap");
    let body = response.into_body().collect().await;
    assert!(body.is_err(), "the body is cut at the cap, not relayed whole");
    closed.recv().await.unwrap();
    still_serves(&proxy).await;
    proxy.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_cut_off_and_the_upstream_freed() {
    let text = "x".repeat(4096);
    let chunk = format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{text}"}}}}]}}"#);
    let event = format!("data: {chunk}\n\n");
    // Far more than every socket buffer on the way can hold.
    let body = event.repeat(64 * 1024 * 1024 / event.len());
    let (evil, mut closed) = hostile(SSE_HEAD, body.into_bytes()).await;
    let (proxy, _good) = start(evil, "workers = 1\nsend_timeout_ms = 10000").await;

    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let request = chat_body("m", "hi", true);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        request.len()
    );
    client.write_all(format!("{head}{request}").as_bytes()).await.unwrap();
    let mut start_of_answer = [0u8; 1024];
    let n = client.read(&mut start_of_answer).await.unwrap();
    assert!(start_of_answer[..n].starts_with(b"HTTP/1.1 200"));

    // The client reads no more: once the buffers are full, the proxy waits on it, then gives up.
    let stopped = Instant::now();
    closed.recv().await.expect("the proxy dropped the upstream connection");
    // Virtual time: the send timeout (10 s) plus at most one check interval (a quarter of it), not
    // the upstream's total timeout (600 s).
    let after = stopped.elapsed();
    assert!(
        after >= Duration::from_secs(10) && after <= Duration::from_millis(12_500),
        "{after:?}"
    );
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    assert!(rest.len() < 64 * 1024 * 1024, "the client connection was closed, not served whole");
    still_serves(&proxy).await;
    proxy.stop().await;
}
