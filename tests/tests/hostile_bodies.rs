//! Hostile request bodies: many large bodies at once are bounded by the global body budget
//! (`server.max_buffered_body_bytes`), answered 503 in OpenAI's error shape past it, and the budget
//! comes back when a body's request ends, however it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use switchyard_tests::chat_body;
use switchyard_tests::client::post;
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

async fn proxy() -> (Proxy, MockUpstream) {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let server =
        format!("[server]\nmax_body_bytes = {MIB}\nmax_buffered_body_bytes = {}\n", 2 * MIB);
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"")
        .replacen("[server]\n", &server, 1)
        .replace("body_read_timeout_ms = 2000", "body_read_timeout_ms = 600000");
    (Proxy::start(&cfg).await, local)
}

/// A client that announces a body of `len` bytes and sends only its head: the proxy reserves the
/// declared length and waits for the rest.
async fn announce(proxy: &Proxy, len: usize) -> TcpStream {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn bodies_past_the_global_budget_get_503_and_the_budget_comes_back() {
    let (proxy, local) = proxy().await;
    let url = proxy.url("/v1/chat/completions");
    let small = chat_body("m", "hi", false);
    let mut holders = vec![announce(&proxy, MIB).await, announce(&proxy, MIB).await];

    // Wait (on the proxy's own answers) until both announced bodies hold the whole budget.
    let refused = loop {
        let reply = post(&url, &small).await;
        if reply.status != 200 {
            break reply;
        }
        // A holder whose reservation lost the race against that request was answered 503 and
        // holds nothing: announce it again.
        for holder in &mut holders {
            let mut byte = [0u8; 1];
            if !matches!(holder.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            {
                *holder = announce(&proxy, MIB).await;
            }
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(refused.status, 503, "{}", refused.text());
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "server_overloaded");
    assert_eq!(error["type"], "server_error");
    assert!(error["message"].as_str().unwrap().contains("max_buffered_body_bytes"));

    // A client that goes away gives its reservation back.
    drop(holders);
    loop {
        let reply = post(&url, &small).await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.text());
        tokio::task::yield_now().await;
    }
    assert!(local.hits() >= 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_body_within_the_budget_is_served_while_others_hold_part_of_it() {
    let (proxy, _local) = proxy().await;
    let _holder = announce(&proxy, MIB).await;
    // One MiB of budget is left: a body close to max_body_bytes still fits.
    let big = chat_body("m", &"x".repeat(MIB - 1024), false);
    let reply = post(&proxy.url("/v1/chat/completions"), &big).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    proxy.stop().await;
}
