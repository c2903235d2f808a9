//! One trace across the proxy and the real inference service (SmolLM2 from `SWITCHYARD_MODEL`;
//! ignored by plain `cargo test`, scripts/test-inference.sh runs it): a streamed request with a
//! client's `traceparent` goes through the proxy to `switchyard-inference`, both export to one
//! real OTLP/HTTP receiver, and the spans form one tree — client span → proxy server span →
//! attempt span → inference server span → queue, prefill and decode — with the same token counts
//! at both ends and none of the prompt's words.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use switchyard_otel::receiver::{self, int};
use switchyard_tests::client;
use switchyard_tests::harness::{self, Proxy};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by scripts/test-inference.sh"]
async fn a_stream_through_the_proxy_is_one_trace_with_the_inference_spans() {
    let (otlp, mut spans) = receiver::http().await.unwrap();
    let model = std::env::var("SWITCHYARD_MODEL")
        .expect("SWITCHYARD_MODEL must name the GGUF (scripts/test-inference.sh sets it)");
    let mut config = switchyard_inference::Config::for_model(model);
    config.threads = 2;
    config.telemetry.otlp_endpoint = Some(otlp.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let inference = tokio::spawn(switchyard_inference::run(config, listener, async {
        let _ = stopped.await;
    }));
    let ready = switchyard_inference::client::Client::new(addr);
    ready.wait_ready(Duration::from_secs(60)).await.unwrap();

    let local = format!("http://{addr}/v1");
    let cfg = harness::config(&[("local", &local, "")], "default = \"local\"");
    let telemetry = format!("[telemetry]\notlp_endpoint = \"{otlp}\"\nservice_name = \"proxy\"\n");
    let proxy = Proxy::start(&format!("{cfg}\n{telemetry}")).await;

    let prompt = "describe the zebra migration of nineteen eighty seven";
    let body = json!({"model": "smollm2", "stream": true, "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "user", "content": prompt}]});
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let reply = client::read(client::send(request).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // The proxy's server and attempt spans, the service's server span and its three stages. (The
    // wait ends on their arrival; the limit only keeps a broken exporter from hanging the test.)
    let mut got: Vec<(String, Span)> = Vec::new();
    while got.len() < 6 {
        let next = tokio::time::timeout(Duration::from_secs(60), spans.recv()).await;
        let (service, span) = next.expect("spans arrive").expect("receiver open");
        assert_eq!(span.trace_id, unhex(TRACE), "{service}: {} in another trace", span.name);
        got.push((service, span));
    }
    let find = |service: &str, kind: i32| {
        let mut found =
            got.iter().filter(|(s, span)| s == service && span.kind == kind).map(|(_, span)| span);
        let span = found.next().unwrap_or_else(|| panic!("no {service} span of kind {kind}"));
        (span.clone(), found.count())
    };
    let (proxy_server, _) = find("proxy", 2);
    let (attempt, more) = find("proxy", 3);
    assert_eq!(more, 0, "one attempt");
    let (service, _) = find("switchyard-inference", 2);
    assert_eq!(proxy_server.parent_span_id, unhex(CALLER_SPAN));
    assert_eq!(attempt.parent_span_id, proxy_server.span_id);
    assert_eq!(service.parent_span_id, attempt.span_id, "the service continues the attempt");
    let (first_stage, more) = find("switchyard-inference", 1);
    assert_eq!(more, 2, "queue, prefill, decode");
    assert_eq!(first_stage.parent_span_id, service.span_id);
    for key in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
        assert_eq!(int(&proxy_server, key), int(&service, key), "{key}");
    }
    assert!(int(&service, "gen_ai.usage.output_tokens") > 0);
    let everything = format!("{got:?}");
    for word in ["zebra", "migration", "nineteen", "eighty"] {
        assert!(!everything.contains(word), "{word} in a span");
    }

    proxy.stop().await;
    let _ = stop.send(());
    inference.await.unwrap().unwrap();
}
