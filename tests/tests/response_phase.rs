//! The response phase end to end: plugins that watch a response rewrite whole answers and streams,
//! hold text back and release it at the end, and escalate to another upstream before commit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use switchyard_tests::client::{self, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::{chat_body, wasm};

/// A proxy with `local` (default) and `hosted` upstreams and the watcher plugin.
async fn proxy(
    local: &MockUpstream,
    hosted: &MockUpstream,
    failure: &str,
) -> (Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm::WATCHER, dir.path().join("watcher.wasm")).unwrap();
    let cfg = config(
        &[("local", &local.base_url(), ""), ("hosted", &hosted.base_url(), "")],
        "default = \"local\"",
    ) + &format!(
        "\n[plugins]\ndir = \"{}\"\nwatch = false\n\n[[plugin]]\nname = \"watcher\"\nfile = \"watcher.wasm\"\n\
         failure = \"{failure}\"\nconfig = {{ escalate_to = \"hosted\" }}\n",
        dir.path().display()
    );
    (Proxy::start(&cfg).await, dir)
}

#[tokio::test]
async fn whole_answers_and_streams_are_rewritten() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let hosted = MockUpstream::start("hosted", Behavior::Normal).await;
    let (proxy, _dir) = proxy(&local, &hosted, "closed").await;
    let url = proxy.url("/v1/chat/completions");

    let reply = post(&url, &chat_body("m", "quiet words", false)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "LOCAL HEARD: QUIET WORDS");
    // 2 prompt words and 4 answer pieces (`local heard: quiet words`), as the mock counts.
    assert_eq!(reply.json()["usage"]["total_tokens"], 6, "other fields are kept");

    let reply = post(&url, &chat_body("m", "quiet words", true)).await;
    assert_eq!(client::stream_text(&reply.body), "LOCAL HEARD: QUIET WORDS");
    let events = client::sse_data(&reply.body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let finish: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    proxy.stop().await;
}

#[tokio::test]
async fn held_text_is_released_before_done() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let hosted = MockUpstream::start("hosted", Behavior::Normal).await;
    let (proxy, _dir) = proxy(&local, &hosted, "closed").await;
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "a HOLD b", true)).await;
    // "HOLD " is held by the plugin and flushed at the end, unchanged.
    assert_eq!(client::stream_text(&reply.body), "LOCAL HEARD: A BHOLD ");
    assert_eq!(client::sse_data(&reply.body).last().unwrap(), "[DONE]");
    proxy.stop().await;
}

#[tokio::test]
async fn a_whole_answer_escalates_to_another_upstream() {
    let local = MockUpstream::start("local", Behavior::Says("ESCALATE please".into())).await;
    let hosted = MockUpstream::start("hosted", Behavior::Says("a better answer".into())).await;
    let (proxy, _dir) = proxy(&local, &hosted, "closed").await;
    let reply =
        post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hard question", false)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-upstream"), "hosted");
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "A BETTER ANSWER");
    assert_eq!((local.hits(), hosted.hits()), (1, 1));
    let metrics = client::get(&proxy.admin_url("/metrics")).await.text();
    assert!(metrics.contains(r#"switchyard_escalations_total{upstream="hosted"} 1"#), "{metrics}");
    proxy.stop().await;
}

#[tokio::test]
async fn a_stream_escalates_before_commit() {
    let local = MockUpstream::start("local", Behavior::Says("ESCALATE please".into())).await;
    let hosted = MockUpstream::start("hosted", Behavior::Says("a better answer".into())).await;
    let (proxy, _dir) = proxy(&local, &hosted, "closed").await;
    let reply =
        post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hard question", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-upstream"), "hosted");
    assert_eq!(client::stream_text(&reply.body), "A BETTER ANSWER");
    assert!(!reply.text().contains("ESCALATE"), "nothing of the first answer reached the client");
    proxy.stop().await;
}

#[tokio::test]
async fn escalation_after_commit_is_refused_by_policy() {
    // "ESCALATE" arrives in the third content event, after the stream was committed.
    let local = MockUpstream::start("local", Behavior::Says("fine so ESCALATE".into())).await;
    let hosted = MockUpstream::start("hosted", Behavior::Normal).await;

    let (closed, _dir) = proxy(&local, &hosted, "closed").await;
    let reply = post(&closed.url("/v1/chat/completions"), &chat_body("m", "q", true)).await;
    assert_eq!(client::stream_text(&reply.body), "FINE SO ");
    let last = client::sse_data(&reply.body).pop().unwrap();
    assert!(last.contains("plugin_failed"), "a fail-closed watcher ends the stream: {last}");
    closed.stop().await;

    let (open, _dir) = proxy(&local, &hosted, "open").await;
    let reply = post(&open.url("/v1/chat/completions"), &chat_body("m", "q", true)).await;
    assert_eq!(
        client::stream_text(&reply.body),
        "FINE SO ESCALATE",
        "a fail-open watcher is dropped"
    );
    assert_eq!(client::sse_data(&reply.body).last().unwrap(), "[DONE]");
    assert_eq!(hosted.hits(), 0);
    open.stop().await;
}
