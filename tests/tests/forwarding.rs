//! Forwarding: every endpoint reaches the right upstream unchanged, streams relay event by event,
//! credentials are the proxy's own, and https upstreams are trusted through `ca_file`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use switchyard_tests::client::{self, get, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::{chat_body, tls};

#[tokio::test]
async fn chat_is_forwarded_byte_for_byte_with_the_proxys_credentials() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let cfg = config(
        &[("local", &local.base_url(), "api_key_env = \"LOCAL_KEY\"")],
        "default = \"local\"",
    );
    let env = HashMap::from([("LOCAL_KEY".to_string(), "sk-upstream".to_string())]);
    let proxy = Proxy::start_with_env(&cfg, env).await;

    // Odd spacing and an unknown field: both must reach the upstream untouched.
    let body = r#"{ "model":"m",  "messages":[{"role":"user","content":"hello"}], "x_vendor": {"k": [1,2]} }"#;
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer client-virtual-key")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let reply = client::read(client::send(request).await).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "local heard: hello");
    assert_eq!(reply.header("x-switchyard-upstream"), "local");
    assert_eq!(reply.header("x-request-id").len(), 32);
    assert_eq!(reply.header("x-mock-header"), "", "only allowlisted upstream headers are relayed");
    let received = local.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body.as_bytes(), "unedited bodies are forwarded unchanged");
    assert_eq!(received[0].headers["authorization"], "Bearer sk-upstream");
    assert_eq!(received[0].headers["x-request-id"], reply.header("x-request-id"));
    proxy.stop().await;
}

#[tokio::test]
async fn a_client_request_id_is_kept() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let proxy =
        Proxy::start(&config(&[("local", &local.base_url(), "")], "default = \"local\"")).await;
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("x-request-id", "trace-me-123")
        .body(Full::new(Bytes::from(chat_body("m", "hi", false))))
        .unwrap();
    let reply = client::read(client::send(request).await).await;
    assert_eq!(reply.header("x-request-id"), "trace-me-123");
    assert_eq!(local.received()[0].headers["x-request-id"], "trace-me-123");
    proxy.stop().await;
}

#[tokio::test]
async fn streams_are_relayed_event_by_event() {
    let local =
        MockUpstream::start("local", Behavior::SlowEvents(Duration::from_millis(150))).await;
    let proxy =
        Proxy::start(&config(&[("local", &local.base_url(), "")], "default = \"local\"")).await;
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .body(Full::new(Bytes::from(chat_body("m", "one two three four", true))))
        .unwrap();
    let started = Instant::now();
    let response = client::send(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-switchyard-upstream"], "local");
    let mut body = response.into_body();
    let mut all = Vec::new();
    let mut first_content_at = None;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        if first_content_at.is_none() && !client::stream_text(&data).is_empty() {
            first_content_at = Some(started.elapsed());
        }
        all.extend_from_slice(&data);
    }
    let total = started.elapsed();
    let first = first_content_at.expect("content arrived");
    // 8 events 150 ms apart: the first content must arrive long before the stream ends.
    assert!(first < total / 2, "first content at {first:?}, stream ended at {total:?}");
    assert_eq!(client::stream_text(&all), "local heard: one two three four");
    assert_eq!(client::sse_data(&all).last().unwrap(), "[DONE]");
    proxy.stop().await;
}

#[tokio::test]
async fn every_endpoint_reaches_its_upstream() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let images = MockUpstream::start("painter", Behavior::Normal).await;
    let cfg = config(
        &[("local", &local.base_url(), ""), ("painter", &images.base_url(), "")],
        "default = \"local\"\nimages = \"painter\"",
    );
    let proxy = Proxy::start(&cfg).await;

    let reply = post(&proxy.url("/v1/completions"), r#"{"model":"m","prompt":"x"}"#).await;
    assert_eq!(reply.json()["choices"][0]["text"], "local completes");
    let reply = post(&proxy.url("/v1/embeddings"), r#"{"model":"m","input":"x"}"#).await;
    assert_eq!(reply.json()["data"][0]["embedding"][1], 0.2);
    let reply = post(&proxy.url("/v1/images/generations"), r#"{"prompt":"a cat"}"#).await;
    assert_eq!(reply.header("x-switchyard-upstream"), "painter");
    assert_eq!(reply.json()["data"][0]["url"], "https://images.example/painter.png");
    let paths: Vec<String> = local.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/completions", "/v1/embeddings"]);
    proxy.stop().await;
}

#[tokio::test]
async fn models_are_the_union_of_upstreams() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let down = MockUpstream::start("down", Behavior::Status(500)).await;
    let cfg = config(
        &[
            ("local", &local.base_url(), ""),
            ("configured", "http://127.0.0.1:9/v1", "models = [\"gpt-x\", \"local-model\"]"),
            ("down", &down.base_url(), ""),
        ],
        "default = \"local\"",
    );
    let proxy = Proxy::start(&cfg).await;
    let reply = get(&proxy.url("/v1/models")).await;
    assert_eq!(reply.status, 200);
    let listing = reply.json();
    let ids: Vec<(&str, &str)> = listing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["owned_by"].as_str().unwrap()))
        .collect();
    assert_eq!(ids, [("local-model", "local"), ("gpt-x", "configured")]);
    assert_eq!(reply.header("x-switchyard-upstream"), "local,configured");
    proxy.stop().await;
}

#[tokio::test]
async fn an_upstream_model_override_rewrites_only_the_model() {
    let hosted = MockUpstream::start("hosted", Behavior::Normal).await;
    let cfg = config(
        &[("hosted", &hosted.base_url(), "model = \"gpt-4o-mini\"")],
        "default = \"hosted\"",
    );
    let proxy = Proxy::start(&cfg).await;
    let body = r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"x":{"y":true}}"#;
    let reply = post(&proxy.url("/v1/chat/completions"), body).await;
    assert_eq!(reply.status, 200);
    let sent = hosted.received()[0].json();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["temperature"], 0.5);
    assert_eq!(sent["x"]["y"], true);
    assert_eq!(sent["messages"][0]["content"], "hi");
    proxy.stop().await;
}

#[tokio::test]
async fn https_upstreams_are_trusted_through_ca_file() {
    let hosted = MockUpstream::start_tls("hosted", Behavior::Normal).await;
    let ca = hosted.ca_file.as_ref().unwrap().display().to_string();
    let cfg = config(
        &[("hosted", &hosted.base_url(), &format!("ca_file = \"{ca}\"\napi_key_env = \"K\""))],
        "default = \"hosted\"",
    );
    let env = HashMap::from([("K".to_string(), "sk-secret".to_string())]);
    let proxy = Proxy::start_with_env(&cfg, env).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "over tls", false)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "hosted heard: over tls");
    assert_eq!(hosted.received()[0].headers["authorization"], "Bearer sk-secret");
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "stream", true)).await;
    assert_eq!(client::stream_text(&reply.body), "hosted heard: stream");
    proxy.stop().await;
}

#[tokio::test]
async fn an_untrusted_https_upstream_is_refused() {
    let hosted = MockUpstream::start_tls("hosted", Behavior::Normal).await;
    let proxy =
        Proxy::start(&config(&[("hosted", &hosted.base_url(), "")], "default = \"hosted\"")).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, 502);
    assert_eq!(hosted.hits(), 0, "the TLS handshake fails before any request is sent");
    proxy.stop().await;
}

#[tokio::test]
async fn the_proxy_itself_serves_tls() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let certs = tls::generate();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), &certs.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &certs.key_pem).unwrap();
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"").replace(
        "[admin]",
        &format!(
            "[server.tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n\n[admin]",
            dir.path().display()
        ),
    );
    let proxy = Proxy::start(&cfg).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.ca_der()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(https);
    let request =
        Request::post(format!("https://127.0.0.1:{}/v1/chat/completions", proxy.addr.port()))
            .body(Full::new(Bytes::from(chat_body("m", "secure", false))))
            .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2, "ALPN negotiates h2");
    let reply = client::read(response).await;
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "local heard: secure");
    proxy.stop().await;
}
