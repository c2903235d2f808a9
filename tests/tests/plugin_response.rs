//! The response phase: a watching plugin keeps its instance through the response and rewrites
//! whole responses, replaces and holds SSE events, flushes at the end, and may escalate only
//! before the response is committed.

mod plugin_support;

use plugin_support::*;
use serde_json::json;
use switchyard::plugin::{
    Delta, EventOutcome, FailureKind, FailurePolicy, LlmResponse, Proceed, RequestOutcome,
    ResponseOutcome, StreamEvent,
};
use switchyard_tests::wasm;

async fn watched(policy: FailurePolicy) -> Box<Proceed> {
    let dir = plugin_dir(&[("w.wasm", wasm::WATCHER)]);
    let e = entry("w", "w.wasm", policy, json!({ "escalate_to": "big" }));
    let reg = registry(engine(4), dir.path(), vec![e]).await;
    match reg.current().on_request(chat(&["hi"])).await {
        RequestOutcome::Proceed(p) => p,
        other => panic!("{other:?}"),
    }
}

fn event(seq: u32, committed: bool, text: &str) -> StreamEvent {
    StreamEvent { seq, committed, choice: 0, text: text.into(), finish_reason: None }
}

#[tokio::test]
async fn whole_response_is_rewritten() {
    let mut p = watched(FailurePolicy::Closed).await;
    assert_eq!(p.watch.plugins().len(), 1);
    let resp = LlmResponse {
        upstream: "local".into(),
        model: None,
        status: 200,
        choices: vec!["hello there".into(), "ünïcode".into()],
        finish_reasons: vec![Some("stop".into()), None],
    };
    match p.watch.on_response(resp).await {
        ResponseOutcome::Send { choices, edited } => {
            assert_eq!(choices, vec!["HELLO THERE".to_string(), "ÜNÏCODE".to_string()]);
            assert_eq!(edited, vec![true, true]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stream_events_are_replaced_held_and_flushed() {
    let mut p = watched(FailurePolicy::Closed).await;
    let delta = |t: &str| vec![Delta { choice: 0, text: t.into() }];
    assert!(
        matches!(p.watch.on_event(event(0, false, "ab")).await, EventOutcome::Emit(d) if d == delta("AB"))
    );
    assert!(
        matches!(p.watch.on_event(event(1, true, "HOLD me")).await, EventOutcome::Emit(d) if d.is_empty())
    );
    assert!(
        matches!(p.watch.on_event(event(2, true, "cd")).await, EventOutcome::Emit(d) if d == delta("CD"))
    );
    assert!(
        matches!(p.watch.on_stream_end().await, EventOutcome::Emit(d) if d == delta("HOLD me"))
    );
}

#[tokio::test]
async fn escalation_only_before_commit() {
    let mut p = watched(FailurePolicy::Open).await;
    match p.watch.on_event(event(0, false, "ESCALATE")).await {
        EventOutcome::Escalate { escalation, .. } => assert_eq!(escalation.upstream, "big"),
        other => panic!("{other:?}"),
    }
    // After commit the same ask is an invalid decision; fail-open drops the watcher and passes.
    assert!(matches!(p.watch.on_event(event(1, true, "ESCALATE")).await, EventOutcome::Pass));
    assert!(p.watch.is_empty());
    assert!(matches!(&p.watch.skipped[0].kind, FailureKind::InvalidDecision(_)));

    let mut closed = watched(FailurePolicy::Closed).await;
    assert!(matches!(
        closed.watch.on_event(event(0, true, "ESCALATE")).await,
        EventOutcome::Refuse(_)
    ));
}
