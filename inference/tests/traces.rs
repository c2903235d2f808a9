//! Traces with the real model: requests that carry a caller's `traceparent` become spans at a real
//! OTLP/HTTP receiver (switchyard-otel's, decoding with `opentelemetry-proto`, not the service's
//! own encoder). The server span is the caller's span's child in the caller's trace; its queue,
//! prefill and decode children follow each other in time, and their token counts match the
//! response's `usage` (prefix-cache hits included); a stream's span ends after its last token; an
//! error answer is the server span alone; an unsampled caller gets no spans; and no span carries
//! the prompt's words.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod support;

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};
use support::{Server, answer, chat};
use switchyard_otel::receiver::{self, attribute, int, string};
use tokio::sync::mpsc;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const PROMPT: &str = "describe the zebra migration of nineteen eighty seven";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn caller(trace: &str, flags: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let traceparent = format!("00-{trace}-{CALLER_SPAN}-{flags}");
    headers.insert("traceparent", HeaderValue::from_str(&traceparent).unwrap());
    headers.insert("tracestate", HeaderValue::from_static("vendor=abc"));
    headers
}

/// The next `n` spans received. A request's spans leave in one export, so they arrive together;
/// the wait ends on their arrival (the limit only keeps a broken exporter from hanging the test).
async fn next_spans(rx: &mut mpsc::UnboundedReceiver<(String, Span)>, n: usize) -> Vec<Span> {
    let mut spans = Vec::new();
    while spans.len() < n {
        let (service, span) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("spans arrive")
            .expect("receiver open");
        assert_eq!(service, "switchyard-inference");
        spans.push(span);
    }
    spans
}

/// Checks one request's four spans against its response's `usage` and finish reason.
fn check(spans: &[Span], usage: &Value, finish: &str, response_id: &str) {
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["chat smollm2", "inference.queue", "inference.prefill", "inference.decode"]);
    let [server, queue, prefill, decode] = spans else { unreachable!() };
    assert_eq!(server.trace_id, unhex(TRACE), "the caller's trace");
    assert_eq!(server.parent_span_id, unhex(CALLER_SPAN), "the caller's span is the parent");
    assert_eq!(server.trace_state, "vendor=abc");
    assert_eq!(server.kind, 2, "server");
    assert_eq!(string(server, "gen_ai.operation.name"), "chat");
    assert_eq!(string(server, "gen_ai.request.model"), "smollm2");
    assert_eq!(string(server, "gen_ai.response.model"), "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(string(server, "gen_ai.response.id"), response_id);
    assert_eq!(int(server, "http.response.status_code"), 200);
    assert_eq!(string(server, "switchyard.end"), "complete");
    let count = |key: &str| usage[key].as_i64().unwrap();
    let cached = usage["prompt_tokens_details"]["cached_tokens"].as_i64().unwrap();
    assert_eq!(int(server, "gen_ai.usage.input_tokens"), count("prompt_tokens"));
    assert_eq!(int(server, "gen_ai.usage.output_tokens"), count("completion_tokens"));
    assert_eq!(int(server, "gen_ai.usage.cache_read.input_tokens"), cached);
    let reasons = match attribute(server, "gen_ai.response.finish_reasons") {
        Some(Any::ArrayValue(array)) => array.values,
        other => panic!("finish_reasons is {other:?}"),
    };
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].value, Some(Any::StringValue(finish.to_owned())));

    for stage in [queue, prefill, decode] {
        assert_eq!(stage.trace_id, server.trace_id);
        assert_eq!(stage.parent_span_id, server.span_id);
        assert_eq!(stage.kind, 1, "internal");
    }
    // One after the other, inside the server span.
    assert!(server.start_time_unix_nano <= queue.start_time_unix_nano);
    assert!(queue.start_time_unix_nano <= queue.end_time_unix_nano);
    assert_eq!(queue.end_time_unix_nano, prefill.start_time_unix_nano);
    assert!(prefill.start_time_unix_nano < prefill.end_time_unix_nano, "prefill takes time");
    assert_eq!(prefill.end_time_unix_nano, decode.start_time_unix_nano);
    assert!(decode.start_time_unix_nano <= decode.end_time_unix_nano);
    assert!(decode.end_time_unix_nano <= server.end_time_unix_nano, "ends after the last token");

    assert_eq!(int(prefill, "gen_ai.usage.input_tokens"), count("prompt_tokens"));
    assert_eq!(int(prefill, "gen_ai.usage.cache_read.input_tokens"), cached);
    let evaluated = int(prefill, "switchyard.inference.prompt_tokens_evaluated");
    assert_eq!(evaluated, count("prompt_tokens") - cached);
    assert_eq!(int(decode, "gen_ai.usage.output_tokens"), count("completion_tokens"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn requests_continue_the_callers_trace_with_queue_prefill_and_decode_spans() {
    let (otlp, mut spans) = receiver::http().await.unwrap();
    let server = Server::start(|c| c.telemetry.otlp_endpoint = Some(otlp.clone())).await;

    // An unsampled caller: no spans. (The exporter keeps order, so had it sent any, they would
    // arrive before the next request's.)
    let unsampled = server.client.clone().with_headers(caller(&"1".repeat(32), "00"));
    answer(&unsampled, &chat("Hi", 2)).await;

    let client = server.client.clone().with_headers(caller(TRACE, "01"));
    // An error answer: the server span alone, with its status and code, not its message.
    let mut bad = chat(PROMPT, 8);
    bad["logit_bias"] = json!({"50256": -100});
    let reply = client.post("/v1/chat/completions", &bad).await.unwrap();
    assert_eq!(reply.status, 400);
    let refused = next_spans(&mut spans, 1).await;
    assert_eq!(refused[0].parent_span_id, unhex(CALLER_SPAN));
    assert_eq!(int(&refused[0], "http.response.status_code"), 400);
    assert_eq!(string(&refused[0], "error.type"), "unsupported_parameter");
    assert_eq!(string(&refused[0], "switchyard.end"), "complete");
    assert!(!format!("{refused:?}").contains("logit_bias"), "the error's message in a span");

    let plain = answer(&client, &chat(PROMPT, 8)).await;
    let first = next_spans(&mut spans, 4).await;
    let finish = plain["choices"][0]["finish_reason"].as_str().unwrap();
    check(&first, &plain["usage"], finish, plain["id"].as_str().unwrap());

    // The same prompt streamed: its prompt comes from the prefix cache (all but the last token,
    // which is evaluated for the first token's logits).
    let mut body = chat(PROMPT, 8);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let streamed = client.stream("/v1/chat/completions", &body).await.unwrap();
    assert!(streamed.done);
    let usage = streamed.usage.expect("usage chunk");
    let cached = usage["prompt_tokens_details"]["cached_tokens"].as_i64().unwrap();
    assert_eq!(cached, usage["prompt_tokens"].as_i64().unwrap() - 1, "{usage}");
    let second = next_spans(&mut spans, 4).await;
    let id = streamed.chunks[0]["id"].as_str().unwrap();
    check(&second, &usage, streamed.finish_reason.as_deref().unwrap(), id);
    let stream = |span: &Span| attribute(span, "switchyard.stream");
    assert_eq!(
        (stream(&first[0]), stream(&second[0])),
        (Some(Any::BoolValue(false)), Some(Any::BoolValue(true)))
    );
    assert_ne!(first[0].span_id, second[0].span_id);

    let everything = format!("{refused:?}{first:?}{second:?}");
    for word in PROMPT.split(' ').filter(|w| w.len() > 3) {
        assert!(!everything.contains(word), "{word} in a span");
    }
    if streamed.text.len() >= 12 {
        assert!(!everything.contains(&streamed.text), "the answer in a span");
    }
    server.stop().await;
}
