//! The tier-router's cascade end to end: answers of the local tier that are empty, cut off, a
//! refusal or not the JSON asked for are escalated to the hosted tier, whole and streamed (before
//! anything reaches the client); a good answer is not, and streams come through intact. An
//! escalation is an event of the request's server span.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod tier_router_support;

use serde_json::json;
use switchyard_tests::client;
use switchyard_tests::mock::Behavior;
use tier_router_support::{Extra, Stack, answered_by, model_sent, start};

const BETTER: &str = "a better answer from the hosted tier";
const REFUSAL: &str = "I'm sorry, but I can't help with that request.";

async fn cascade(local: Behavior) -> Stack {
    let extra = Extra { router: "cascade = true\ncascade_hold_chars = 40", ..Extra::default() };
    start(local, Behavior::Says(BETTER.into()), extra).await
}

/// Asserts the answer came from the hosted tier after one escalation.
fn escalated(s: &Stack, reply: &client::Reply, stream: bool) {
    answered_by(reply, "hosted");
    let text = if stream {
        client::stream_text(&reply.body)
    } else {
        reply.json()["choices"][0]["message"]["content"].as_str().unwrap().to_string()
    };
    assert_eq!(text, BETTER, "only the hosted answer reached the client");
    assert_eq!((s.local.hits(), s.hosted.hits()), (1, 1));
    assert_eq!(model_sent(&s.hosted), "gpt-4o-mini", "escalated with the hosted tier's model");
    if stream {
        assert_eq!(client::sse_data(&reply.body).last().unwrap(), "[DONE]");
    }
}

#[tokio::test]
async fn an_empty_answer_escalates() {
    for stream in [false, true] {
        let s = cascade(Behavior::Says(String::new())).await;
        escalated(&s, &s.chat("fast", "hi", stream).await, stream);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_cut_off_answer_escalates() {
    for stream in [false, true] {
        let s = cascade(Behavior::SaysCutOff("The answer is".into())).await;
        escalated(&s, &s.chat("fast", "hi", stream).await, stream);
        let metrics = client::get(&s.proxy.admin_url("/metrics")).await.text();
        assert!(metrics.contains(r#"switchyard_escalations_total{upstream="hosted"} 1"#));
        s.stop().await;
    }
}

#[tokio::test]
async fn a_refusal_escalates() {
    for stream in [false, true] {
        let s = cascade(Behavior::Says(REFUSAL.into())).await;
        let reply = s.chat("auto", "summarize this", stream).await;
        escalated(&s, &reply, stream);
        assert!(!reply.text().contains("sorry"), "nothing of the refusal was sent");
        s.stop().await;
    }
}

#[tokio::test]
async fn an_answer_that_is_not_the_json_asked_for_escalates() {
    let s = cascade(Behavior::Says("Sure! Here is your JSON: {\"a\": 1}".into())).await;
    let body = json!({"model": "fast", "messages": [{"role": "user", "content": "give json"}],
                      "response_format": {"type": "json_object"}});
    let reply = s.post("/v1/chat/completions", &body.to_string(), &[]).await;
    escalated(&s, &reply, false);
    s.stop().await;

    let s = cascade(Behavior::Says("{\"a\": 1}".into())).await;
    answered_by(&s.post("/v1/chat/completions", &body.to_string(), &[]).await, "local");
    s.stop().await;
}

#[tokio::test]
async fn a_good_answer_is_not_escalated() {
    let long = "Paris is the capital of France, and it has been for a very long time indeed.";
    for (text, stream) in [(long, false), (long, true), ("Paris.", true)] {
        let s = cascade(Behavior::Says(text.into())).await;
        let reply = s.chat("fast", "capital of France?", stream).await;
        answered_by(&reply, "local");
        if stream {
            // Held text is released in order: the client sees the whole answer, then [DONE].
            assert_eq!(client::stream_text(&reply.body), text);
            let events = client::sse_data(&reply.body);
            assert_eq!(events.last().unwrap(), "[DONE]");
            let finish: serde_json::Value =
                serde_json::from_str(&events[events.len() - 2]).unwrap();
            assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        } else {
            assert_eq!(reply.json()["choices"][0]["message"]["content"], text);
        }
        assert_eq!(s.hosted.hits(), 0);
        s.stop().await;
    }
}

#[tokio::test]
async fn requests_for_several_choices_are_not_cascaded() {
    let s = cascade(Behavior::Says(String::new())).await;
    let body = json!({"model": "fast", "n": 2, "messages": [{"role": "user", "content": "hi"}]});
    answered_by(&s.post("/v1/chat/completions", &body.to_string(), &[]).await, "local");
    assert_eq!(s.hosted.hits(), 0);
    s.stop().await;
}

#[tokio::test]
async fn answers_of_the_hosted_tier_are_not_judged() {
    let s = cascade(Behavior::Normal).await;
    s.hosted.set_behavior(Behavior::Says(String::new()));
    answered_by(&s.chat("best", "hi", false).await, "hosted");
    assert_eq!(s.local.hits(), 0);
    s.stop().await;
}

#[tokio::test]
async fn text_held_from_a_stream_that_broke_is_dropped_when_the_fallback_answers() {
    // The local stream sends "local " and "heard: " (held by the router), then breaks before
    // commit; the tier's fallback answers, and only its text reaches the client.
    let s = cascade(Behavior::FailAfterEvents(3)).await;
    let reply = s.chat("fast", "hi", true).await;
    answered_by(&reply, "hosted");
    assert_eq!(client::stream_text(&reply.body), BETTER);
    assert_eq!((s.local.hits(), s.hosted.hits()), (1, 1));
    assert_eq!(model_sent(&s.hosted), "smollm2", "a fallback keeps the tier's model");
    s.stop().await;
}

/// The trace of an escalated request: the server span carries an `escalation` event naming the
/// tier escalated to and the router's reason, and the hosted attempt is a client span under it.
#[tokio::test]
async fn an_escalation_is_an_event_of_the_server_span() {
    let (otlp, mut spans) = switchyard_otel::receiver::http().await.unwrap();
    let top = format!("[telemetry]\notlp_endpoint = \"{otlp}\"\n");
    let router = "cascade = true\ncascade_hold_chars = 40";
    let extra = Extra { router, top: &top, ..Extra::default() };
    let s = start(Behavior::Says(String::new()), Behavior::Says(BETTER.into()), extra).await;
    escalated(&s, &s.chat("fast", "hi", false).await, false);
    let mut got: Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)> = Vec::new();
    while !got.iter().any(|(_, span)| span.kind == 2) {
        let wait = std::time::Duration::from_secs(60);
        got.push(tokio::time::timeout(wait, spans.recv()).await.unwrap().unwrap());
    }
    let server = &got.iter().find(|(_, span)| span.kind == 2).unwrap().1;
    let event = server.events.iter().find(|e| e.name == "escalation");
    let event = event.unwrap_or_else(|| panic!("no escalation event: {:?}", server.events));
    let attribute = |key: &str| {
        let found = event.attributes.iter().find(|kv| kv.key == key);
        let value = found.and_then(|kv| kv.value.clone()?.value);
        match value {
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(text)) => {
                text
            }
            other => panic!("{key}: {other:?}"),
        }
    };
    assert_eq!(attribute("switchyard.to"), "hosted");
    assert!(!attribute("switchyard.reason").is_empty());
    assert_eq!(switchyard_otel::receiver::string(server, "switchyard.upstream"), "hosted");
    s.stop().await;
}
