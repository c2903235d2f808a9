//! The proxy's JSON log (`[log] format = "json"`): a line written while a request is handled is
//! one JSON object carrying the request's id, its trace id and its server span's id, the same
//! ids as the request's exported spans and `x-request-id`, so a log line leads to its trace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};
use switchyard::config::LogFormat;
use switchyard_tests::client;
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::logs;
use switchyard_tests::mock::{Behavior, MockUpstream};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test]
async fn a_json_log_line_carries_the_request_trace_and_server_span_ids() {
    let log = logs::captured(LogFormat::Json);
    let (otlp, mut spans) = switchyard_otel::receiver::http().await.unwrap();
    let first = MockUpstream::start("first", Behavior::Status(500)).await;
    let backup = MockUpstream::start("backup", Behavior::Normal).await;
    let upstreams = [("first", &first.base_url()[..], ""), ("backup", &backup.base_url()[..], "")];
    let routing = "default = \"first\"\nfallbacks = [\"backup\"]";
    let telemetry =
        format!("[telemetry]\notlp_endpoint = \"{otlp}\"\n\n[log]\nformat = \"json\"\n");
    let proxy = Proxy::start(&format!("{}\n{telemetry}", config(&upstreams, routing))).await;

    // The first upstream fails, which the proxy logs (a warning) while handling the request.
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{TRACE}-b7ad6b7169203331-01"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let reply = client::read(client::send(request).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let request_id = reply.header("x-request-id").to_string();

    let server = loop {
        let (_, span) = tokio::time::timeout(Duration::from_secs(60), spans.recv())
            .await
            .expect("spans arrive")
            .expect("receiver open");
        if span.kind == 2 {
            break span;
        }
    };
    let server_span: String = server.span_id.iter().map(|b| format!("{b:02x}")).collect();
    let text = logs::text(log);
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    let failed = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("attempt failed")))
        .unwrap_or_else(|| panic!("the failed attempt is logged: {text}"));
    // `span` is the innermost one (dispatch's); `spans` lists them all, the request's first.
    let spans = failed["spans"].as_array().expect("the line lists its spans");
    let span = spans.iter().find(|s| s["name"] == "request").expect("inside the request span");
    assert_eq!(span["request_id"], request_id.as_str(), "{failed}");
    assert_eq!(span["trace_id"], TRACE, "{failed}");
    assert_eq!(span["span_id"], server_span.as_str(), "the server span's id: {failed}");
    assert_eq!(failed["fields"]["upstream"], "first", "{failed}");
    proxy.stop().await;
}
