//! Traces: a streamed request through the default plugin chain that falls back from a failing
//! upstream to a good one becomes one trace at a real OTLP/HTTP receiver (decoded with the
//! `opentelemetry-proto` crate, not the proxy's own encoder): the server span continues the
//! client's `traceparent`, two attempt spans and the plugins' spans hang under it, the GenAI
//! attributes and token counts are set, the trace goes on upstream, and no attribute carries the
//! prompt's text or a PII value from it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use switchyard_otel::receiver::{int, string, texts};
use switchyard_tests::client;
use switchyard_tests::harness::{Proxy, shipped_config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The shared OTLP/HTTP receiver (switchyard-otel's `receiver`, decoding with
/// `opentelemetry-proto`): every span of every export, with its service name.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(String, Span)>) {
    switchyard_otel::receiver::http().await.unwrap()
}

/// The spans of the next trace whose server span `wanted` accepts. A request's spans leave in
/// one export, server span first, so once it arrived the rest are already queued. (The wait ends
/// on the spans' arrival; the limit only keeps a broken proxy from hanging the test.)
async fn next_trace(
    rx: &mut mpsc::UnboundedReceiver<(String, Span)>,
    wanted: impl Fn(&Span) -> bool,
) -> Vec<Span> {
    let server = loop {
        let (service, span) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("spans arrive")
            .expect("receiver open");
        assert_eq!(service, "switchyard-test");
        if span.kind == 2 && wanted(&span) {
            break span;
        }
    };
    let mut spans = vec![server];
    while let Ok((_, span)) = rx.try_recv() {
        if span.trace_id == spans[0].trace_id {
            spans.push(span);
        }
    }
    spans
}

#[tokio::test]
async fn a_fallback_stream_is_one_trace_with_attempts_and_plugins_and_no_prompt_text() {
    let (otlp, mut spans) = receiver().await;
    let local = MockUpstream::start("local", Behavior::Status(500)).await;
    let hosted = MockUpstream::start("hosted", Behavior::Normal).await;
    let (_dir, config) = shipped_config(&local.base_url(), &hosted.base_url());
    let config = format!(
        "{config}\n[telemetry]\notlp_endpoint = \"{otlp}\"\nservice_name = \"switchyard-test\"\n"
    );
    let env = HashMap::from([("OPENAI_API_KEY".to_string(), "sk-test-hosted".to_string())]);
    let proxy = Proxy::start_with_env(&config, env).await;

    // A clean prompt on the local tier, whose upstream fails: the stream falls back to hosted.
    let prompt = "describe the zebra migration of nineteen eighty seven";
    let body = json!({"model": "fast", "stream": true,
        "messages": [{"role": "user", "content": prompt}]});
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let request = Request::post(proxy.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{client_trace}-00f067aa0ba902b7-01"))
        .header("tracestate", "vendor=abc")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let reply = client::read(client::send(request).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(client::stream_text(&reply.body).contains("zebra"), "the answer came through");

    let trace: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&client_trace[2 * i..2 * i + 2], 16).unwrap()).collect();
    let got = next_trace(&mut spans, |s| s.trace_id == trace).await;
    // The server span, two attempts, and the three plugins' request phase (nothing to restore:
    // pii-redact did not watch this answer).
    assert_eq!(got.len(), 6, "{got:#?}");
    let server = &got[0];
    assert_eq!(server.parent_span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    assert_eq!(server.trace_state, "vendor=abc");
    assert_eq!(server.name, "chat smollm2");
    assert_eq!(string(server, "gen_ai.operation.name"), "chat");
    assert_eq!(string(server, "gen_ai.request.model"), "smollm2");
    assert_eq!(string(server, "gen_ai.response.model"), "gpt-4o-mini");
    assert_eq!(int(server, "http.response.status_code"), 200);
    assert_eq!(string(server, "switchyard.upstream"), "hosted");
    assert_eq!(string(server, "switchyard.end"), "complete");
    // As the mock counts: 8 prompt words and the hosted answer's pieces.
    assert_eq!(int(server, "gen_ai.usage.input_tokens"), 8);
    assert!(int(server, "gen_ai.usage.output_tokens") > 0);
    assert!(server.events.iter().any(|e| e.name == "stream.commit"), "{:?}", server.events);
    assert!(server.end_time_unix_nano > server.start_time_unix_nano);

    let mut attempts: Vec<&Span> = got.iter().filter(|s| s.kind == 3).collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    let outcomes: Vec<(String, String)> = attempts
        .iter()
        .map(|s| (string(s, "switchyard.upstream"), string(s, "switchyard.attempt.outcome")))
        .collect();
    assert_eq!(outcomes, [("local".into(), "server_error".into()), ("hosted".into(), "ok".into())]);
    for attempt in &attempts {
        assert_eq!(attempt.parent_span_id, server.span_id);
        assert!(string(attempt, "server.address").starts_with("127.0.0.1:"));
    }
    // The trace went on upstream, each attempt as the parent of its request.
    let sent = hosted.received()[0].headers["traceparent"].to_str().unwrap().to_string();
    let hosted_span: String = attempts[1].span_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sent, format!("00-{client_trace}-{hosted_span}-01"));
    assert_eq!(hosted.received()[0].headers["tracestate"], "vendor=abc");

    let plugins: Vec<(String, String)> = got
        .iter()
        .filter(|s| s.kind == 1)
        .map(|s| (string(s, "switchyard.plugin.name"), string(s, "switchyard.plugin.phase")))
        .collect();
    let expected =
        [("pii-redact", "request"), ("tier-router", "request"), ("cache-policy", "request")];
    assert_eq!(plugins, expected.map(|(p, phase)| (p.to_string(), phase.to_string())));
    for span in got.iter().filter(|s| s.kind == 1) {
        assert_eq!(span.parent_span_id, server.span_id);
        assert_eq!(string(span, "switchyard.plugin.sha256").len(), 64);
    }

    // A request with PII (kept local): no span of either trace carries its values or the prompt.
    local.set_behavior(Behavior::Normal);
    let pii = "mail jane.roe@example.org or call +44 20 7946 0958 about the zebra";
    let body =
        json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": pii}]});
    let reply = client::post(&proxy.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let second = next_trace(&mut spans, |s| s.trace_id != trace).await;
    assert_eq!(string(&second[0], "switchyard.upstream"), "local");
    // pii-redact restored its placeholders in the stream: one span for all its stream calls.
    let restore = second
        .iter()
        .find(|s| string(s, "switchyard.plugin.phase") == "stream")
        .expect("a stream-phase span");
    assert_eq!(string(restore, "switchyard.plugin.name"), "pii-redact");
    assert!(int(restore, "switchyard.plugin.calls") >= 1);
    // Every string of every span: their Debug form would also hold timestamps, where a digit
    // run such as 7946 turns up by chance (seen once in four runs).
    let everything: Vec<String> = got.iter().chain(&second).map(texts).collect();
    let everything = everything.join("\n");
    for secret in ["jane.roe", "example.org", "7946", "zebra", "migration", "nineteen"] {
        assert!(!everything.contains(secret), "{secret} in a span");
    }
    proxy.stop().await;
}

/// An OTLP/gRPC receiver (HTTP/2 in clear text) on 127.0.0.1:0: decodes each framed
/// `ExportTraceServiceRequest` and answers `grpc-status: 0` in the trailers.
async fn grpc_receiver() -> (String, mpsc::UnboundedReceiver<Span>) {
    use http_body::Frame;
    use http_body_util::StreamBody;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("grpc://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
                    assert_eq!(req.uri().path(), path);
                    assert_eq!(req.headers()["content-type"], "application/grpc");
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(body[0], 0, "not compressed");
                    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
                    assert_eq!(body.len(), 5 + len, "one message");
                    let export = ExportTraceServiceRequest::decode(&body[5..]).expect("valid OTLP");
                    for resource in export.resource_spans {
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                let _ = tx.send(span);
                            }
                        }
                    }
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let frames = futures_util::stream::iter([Ok::<_, Infallible>(
                        Frame::<Bytes>::trailers(trailers),
                    )]);
                    let mut response = http::Response::new(StreamBody::new(frames));
                    response
                        .headers_mut()
                        .insert("content-type", http::HeaderValue::from_static("application/grpc"));
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                let executor = hyper_util::rt::TokioExecutor::new();
                let _ = hyper::server::conn::http2::Builder::new(executor)
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn spans_go_over_otlp_grpc_to_a_grpc_endpoint() {
    let (otlp, mut spans) = grpc_receiver().await;
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let cfg = switchyard_tests::harness::config(
        &[("local", &local.base_url(), "")],
        "default = \"local\"",
    );
    let proxy = Proxy::start(&format!("{cfg}\n[telemetry]\notlp_endpoint = \"{otlp}\"\n")).await;
    let reply =
        client::post(&proxy.url("/v1/embeddings"), r#"{"model":"e","input":"hello"}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let server = loop {
        let span =
            tokio::time::timeout(Duration::from_secs(60), spans.recv()).await.unwrap().unwrap();
        if span.kind == 2 {
            break span;
        }
    };
    assert_eq!(string(&server, "gen_ai.operation.name"), "embeddings");
    assert_eq!(string(&server, "switchyard.upstream"), "local");
    assert_eq!(int(&server, "http.response.status_code"), 200);
    proxy.stop().await;
}

/// A collector that accepts connections and never answers: requests are answered while an export
/// hangs on it (the export is in flight once the collector has a connection), and the failed
/// export is counted in `/metrics` once its timeout ends it.
#[tokio::test]
async fn a_collector_that_never_answers_delays_no_request_and_its_failure_is_counted() {
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hole.local_addr().unwrap();
    let (connected, mut exporting) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket);
            let _ = connected.send(());
        }
    });
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let cfg = switchyard_tests::harness::config(
        &[("local", &local.base_url(), "")],
        "default = \"local\"",
    );
    let proxy =
        Proxy::start(&format!("{cfg}\n[telemetry]\notlp_endpoint = \"http://{addr}\"\n")).await;
    let chat = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let reply = client::post(&proxy.url("/v1/chat/completions"), chat).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The batch delay passes and the exporter connects; from here its export hangs.
    tokio::time::timeout(Duration::from_secs(60), exporting.recv())
        .await
        .expect("the exporter reaches the collector")
        .expect("acceptor running");
    for _ in 0..50 {
        let reply = client::post(&proxy.url("/v1/chat/completions"), chat).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let metric = |text: &str, name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = client::get(&proxy.admin_url("/metrics")).await.text();
        if metric(&text, "switchyard_trace_exports_failed_total") >= 1 {
            assert_eq!(metric(&text, "switchyard_trace_spans_exported_total"), 0);
            assert_eq!(metric(&text, "switchyard_trace_spans_dropped_total"), 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the hung export is never counted: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.stop().await;
}

/// The exporter wakes its thread only when a batch is full (or after the batch delay), and takes
/// whatever is queued then: every span set submitted is exported exactly once, the partial batch
/// at the end when the exporter is dropped, and none is dropped while the queue has room. Every
/// other set is queued as a builder (as the proxy queues a request's spans), which the exporter
/// thread runs when it takes the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_sends_every_span_once_in_full_batches_and_the_rest_on_drop() {
    use switchyard_otel::{Exporter, Kind, TraceContext};
    let (endpoint, mut spans) = receiver().await;
    let sets = 3 * switchyard_otel::export::BATCH_SPANS + 7;
    let exporter = Exporter::start_plain(&endpoint, "export-test".into()).unwrap();
    let trace = TraceContext::start(None, None, 1.0);
    let exporter = tokio::task::spawn_blocking(move || {
        for i in 0..sets {
            let name = format!("s{i}");
            let trace = trace.clone();
            let span = move || {
                let id = switchyard_otel::span_id();
                switchyard_otel::Span::new(&trace, id, None, name, Kind::Internal, 0, 1)
            };
            if i % 2 == 0 {
                exporter.submit(vec![span()]);
            } else {
                exporter.submit_later(1, Box::new(move || vec![span()]));
            }
        }
        let dropped = exporter.counters.dropped.get();
        drop(exporter); // sends the partial batch, then the thread ends
        dropped
    });
    assert_eq!(exporter.await.unwrap(), 0, "nothing dropped");
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < sets {
        let (_, span) = tokio::time::timeout(Duration::from_secs(30), spans.recv())
            .await
            .expect("every span arrives")
            .expect("receiver open");
        assert!(seen.insert(span.name.clone()), "{} twice", span.name);
    }
    assert_eq!(seen.len(), sets);
}
