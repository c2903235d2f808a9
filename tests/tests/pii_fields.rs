//! Every way text leaves the proxy is covered by redaction (issue 10): PII in a chat message's
//! `name`, its text parts, tool-call arguments, tool results, tool descriptions and parameter
//! schemas, `prediction`, `user`, completions prompts and suffixes, embeddings inputs and image
//! prompts never reaches the recording mock upstream; placeholders the answer carries in its
//! content or in tool-call arguments come back restored, and every choice of a multi-choice answer
//! (whole or streamed, several choices in one chunk included) is restored; a value restored into
//! tool-call arguments is JSON-escaped there (quotes, backslashes, line breaks), whole or split
//! over argument fragments. Parts that cannot be read (images) are shown to plugins as `binary:`
//! entries, so a fail-closed plugin can refuse them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod plugin_support;

use serde_json::{Value, json};
use switchyard_tests::client::{self, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::wasm;

const EMAIL: &str = "jane.doe@example.com";
const PHONE: &str = "+44 20 7946 0958";

/// A proxy in front of `local` whose chain is `plugins` (`(name, component)`), each fail-closed.
async fn proxy(local: &MockUpstream, plugins: &[(&str, &str)]) -> (Proxy, tempfile::TempDir) {
    proxy_with(local, plugins, "").await
}

/// [`proxy`], each plugin's entry ending with `extra` (a `config = ...` line).
async fn proxy_with(
    local: &MockUpstream,
    plugins: &[(&str, &str)],
    extra: &str,
) -> (Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"")
        + &format!("\n[plugins]\ndir = {:?}\nwatch = false\n", dir.path().display().to_string());
    for (name, built) in plugins {
        let file = format!("{}.wasm", name.replace('-', "_"));
        std::fs::copy(built, dir.path().join(&file)).unwrap();
        cfg += &format!(
            "\n[[plugin]]\nname = \"{name}\"\nfile = \"{file}\"\nfailure = \"closed\"\ntimeout_ms = 500\n{extra}\n"
        );
    }
    (Proxy::start(&cfg).await, dir)
}

async fn redacting(local: &MockUpstream) -> (Proxy, tempfile::TempDir) {
    proxy(local, &[("pii-redact", wasm::PII_REDACT)]).await
}

/// The last body the upstream received, as text: no raw entity may appear anywhere in it.
fn assert_upstream_clean(local: &MockUpstream) -> Value {
    let last = local.received().pop().expect("the upstream got a request");
    let text = String::from_utf8_lossy(&last.body).to_string();
    for raw in [EMAIL, PHONE, "jane.doe\\u0040example.com"] {
        assert!(!text.contains(raw), "raw {raw:?} reached the upstream: {text}");
    }
    last.json()
}

/// A chat request with an entity in every text field that is not a message's plain content.
fn every_field() -> Value {
    json!({
        "model": "m", "user": EMAIL,
        "messages": [
            {"role": "system", "content": "You help.", "name": EMAIL},
            {"role": "user", "content": [
                {"type": "text", "text": format!("Mail {EMAIL} ")},
                {"type": "text", "text": format!("or call {PHONE}.")}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "lookup",
                             "arguments": "{\"email\":\"jane.doe\\u0040example.com\"}"}}]},
            {"role": "tool", "tool_call_id": "c1",
             "content": [{"type": "text", "text": format!("found {PHONE}")}]}
        ],
        "tools": [{"type": "function", "function": {"name": "send",
            "description": format!("Sends mail, e.g. to {EMAIL}"),
            "parameters": {"type": "object", "properties": {
                "to": {"type": "string", "description": format!("like {PHONE}")}}}}}],
        "prediction": {"type": "content", "content": format!("Dear {EMAIL}")}
    })
}

#[tokio::test]
async fn no_field_of_a_chat_request_reaches_the_upstream_raw() {
    let local = MockUpstream::start("local", Behavior::Says("ok".into())).await;
    let (proxy, _dir) = redacting(&local).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &every_field().to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = assert_upstream_clean(&local);
    let m = &seen["messages"];
    assert_eq!(m[0]["name"], "<EMAIL_1>");
    assert_eq!(m[1]["content"][0]["text"], "Mail <EMAIL_1> ", "each text part keeps its place");
    assert_eq!(m[1]["content"][1]["text"], "or call <PHONE_1>.");
    assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], r#"{"email":"<EMAIL_1>"}"#);
    assert_eq!(m[3]["content"][0]["text"], "found <PHONE_1>");
    let f = &seen["tools"][0]["function"];
    assert_eq!(f["description"], "Sends mail, e.g. to <EMAIL_1>");
    assert_eq!(f["parameters"]["properties"]["to"]["description"], "like <PHONE_1>");
    assert_eq!(seen["prediction"]["content"], "Dear <EMAIL_1>");
    assert_eq!(seen["user"], "<EMAIL_1>");
    proxy.stop().await;
}

#[tokio::test]
async fn completions_embeddings_and_image_prompts_are_redacted() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = redacting(&local).await;
    let bodies = [
        (
            "/v1/completions",
            json!({"model": "m", "prompt": [format!("to {EMAIL}"), "x"],
                                   "suffix": format!("call {PHONE}"), "user": EMAIL}),
        ),
        ("/v1/embeddings", json!({"model": "m", "input": [format!("{EMAIL}"), PHONE]})),
        ("/v1/images/generations", json!({"prompt": format!("a card for {EMAIL}"), "user": EMAIL})),
    ];
    for (path, body) in bodies {
        let reply = post(&proxy.url(path), &body.to_string()).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let seen = assert_upstream_clean(&local);
        assert!(seen.to_string().contains("<EMAIL_1>"), "{path}: {seen}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn placeholders_in_tool_call_arguments_and_every_choice_are_restored() {
    let answer = json!({
        "id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {
                    "name": "send", "arguments": "{\"to\":\"<EMAIL_1>\",\"tel\":\"<PHONE_1>\"}"}}]}},
            {"index": 1, "finish_reason": "stop",
             "message": {"role": "assistant", "content": "I will mail <EMAIL_1>."}}
        ]
    });
    let local = MockUpstream::start("local", Behavior::Replies(answer)).await;
    let (proxy, _dir) = redacting(&local).await;
    let body = json!({"model": "m", "n": 2, "messages": [
        {"role": "user", "content": format!("Send it to {EMAIL}, phone {PHONE}")}]});
    let reply = post(&proxy.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_upstream_clean(&local);
    let got = reply.json();
    let call = &got["choices"][0]["message"]["tool_calls"][0]["function"];
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"to": EMAIL, "tel": PHONE}));
    assert_eq!(call["name"], "send");
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls", "finish reasons untouched");
    assert_eq!(got["choices"][1]["message"]["content"], format!("I will mail {EMAIL}."));
    proxy.stop().await;
}

#[tokio::test]
async fn every_choice_of_a_stream_is_restored_even_several_in_one_chunk() {
    let chunk = |choices: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": choices})
    };
    let delta = |i: u32, text: &str, finish: Value| json!({"index": i, "delta": {"content": text}, "finish_reason": finish});
    let chunks = vec![
        chunk(json!([delta(0, "", Value::Null), delta(1, "", Value::Null)])),
        chunk(json!([delta(0, "To <EMA", Value::Null)])),
        chunk(json!([delta(1, "Call <PHO", Value::Null)])),
        // One chunk, both choices: each goes through the plugins as its own.
        chunk(json!([delta(0, "IL_1> now", Value::Null), delta(1, "NE_1> now", Value::Null)])),
        chunk(json!([delta(0, "", json!("stop")), delta(1, ", or <EMAIL_1>", json!("stop"))])),
    ];
    let local = MockUpstream::start("local", Behavior::Chunks(chunks)).await;
    let (proxy, _dir) = redacting(&local).await;
    let body = json!({"model": "m", "n": 2, "stream": true, "messages": [
        {"role": "user", "content": format!("mail {EMAIL} or call {PHONE}")}]});
    let reply = post(&proxy.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_upstream_clean(&local);
    let mut texts = [String::new(), String::new()];
    let mut finished = [false, false];
    for data in client::sse_data(&reply.body) {
        let Ok(v) = serde_json::from_str::<Value>(&data) else { continue };
        for c in v["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            let text = c["delta"]["content"].as_str().unwrap_or("");
            assert!(!finished[i] || text.is_empty(), "text after choice {i} finished: {data}");
            assert!(!text.contains('<'), "a placeholder piece reached the client: {data}");
            texts[i].push_str(text);
            finished[i] |= c["finish_reason"].is_string();
        }
    }
    assert_eq!(texts[0], format!("To {EMAIL} now"));
    assert_eq!(texts[1], format!("Call {PHONE} now, or {EMAIL}"));
    assert_eq!(finished, [true, true]);
    proxy.stop().await;
}

#[tokio::test]
async fn binary_parts_are_shown_so_a_fail_closed_plugin_can_refuse_them() {
    let local = MockUpstream::start("local", Behavior::Says("ok".into())).await;
    let (proxy, _dir) = proxy(&local, &[("binary-guard", wasm::BINARY_GUARD)]).await;
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]});
    let reply = post(&proxy.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let message = reply.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("messages[1].content[1], messages[1].content[2]"),
        "the refusal names the parts: {message}"
    );
    assert_eq!(local.hits(), 0, "nothing was forwarded");
    // Text only: it goes on.
    let reply =
        post(&proxy.url("/v1/chat/completions"), &switchyard_tests::chat_body("m", "hi", false))
            .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(local.hits(), 1);
    proxy.stop().await;
}

/// Streams a tool call whose arguments are `pieces` (plus a text choice), and checks the client
/// gets the arguments restored, never a piece of a placeholder, and the finish reason last.
async fn check_streamed_arguments(proxy: &Proxy, local: &MockUpstream, pieces: &[&str]) {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let call = |args: &str| json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]});
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "t1",
               "type": "function", "function": {"name": "send", "arguments": ""}}]}),
        Value::Null,
    )];
    chunks.extend(pieces.iter().map(|p| chunk(call(p), Value::Null)));
    chunks.push(chunk(json!({}), json!("tool_calls")));
    local.set_behavior(Behavior::Chunks(chunks));
    let body = json!({"model": "m", "stream": true, "messages": [
        {"role": "user", "content": format!("mail {EMAIL}")}]});
    let reply = post(&proxy.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let want = pieces.concat().replace("<EMAIL_1>", EMAIL);
    let mut args = String::new();
    let mut finished = false;
    for data in client::sse_data(&reply.body) {
        let Ok(v) = serde_json::from_str::<Value>(&data) else { continue };
        let c = &v["choices"][0];
        if let Some(piece) = c["delta"]["tool_calls"][0]["function"]["arguments"].as_str() {
            assert!(!finished, "arguments after the finish reason: {pieces:?}");
            assert_eq!(c["delta"]["tool_calls"][0]["index"], 0);
            args.push_str(piece);
            assert!(want.starts_with(&args), "leak in {pieces:?}: sent {args:?}");
        }
        finished |= c["finish_reason"] == "tool_calls";
    }
    assert!(finished, "{pieces:?}");
    assert_eq!(args, want, "{pieces:?}");
}

#[tokio::test]
async fn streamed_tool_call_arguments_are_restored_split_anywhere() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = redacting(&local).await;
    let args = r#"{"to":"<EMAIL_1>","cc":"<EMAIL_1>"}"#;
    for i in 0..=args.len() {
        check_streamed_arguments(&proxy, &local, &[&args[..i], &args[i..]]).await;
    }
    let bytes: Vec<String> = args.chars().map(String::from).collect();
    check_streamed_arguments(&proxy, &local, &bytes.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_upstream_clean(&local);
    proxy.stop().await;
}

#[tokio::test]
async fn a_plugin_learns_its_failure_policy_and_can_refuse_to_fail_open() {
    use switchyard::plugin::{FailurePolicy, PluginRegistry, PluginsSection};
    let dir = plugin_support::plugin_dir(&[("g.wasm", wasm::BINARY_GUARD)]);
    let load = |policy, config: Value| {
        let entry = plugin_support::entry("guard", "g.wasm", policy, config);
        let reg = PluginRegistry::new(
            plugin_support::engine(2),
            PluginsSection::new(dir.path()),
            vec![entry],
            plugin_support::upstreams(),
        );
        async move { reg.reload().await.map(|_| ()).map_err(|e| e.to_string()) }
    };
    let err = load(FailurePolicy::Open, json!({})).await.unwrap_err();
    assert!(err.contains("refusing to run with failure"), "{err}");
    load(FailurePolicy::Closed, json!({})).await.unwrap();
    load(FailurePolicy::Open, json!({"allow_fail_open": true})).await.unwrap();
}

/// A value with a quote, a backslash and a tab (a custom type), and a private key block (line
/// breaks): restored into tool-call arguments, each must be written escaped.
const PASSWORD: &str = "PW-a\"b\\c\td";
const KEY: &str =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";

async fn redacting_passwords(local: &MockUpstream) -> (Proxy, tempfile::TempDir) {
    let config = r#"config = { custom_patterns = { pw = 'PW-[a-z"\\\t]+' } }"#;
    proxy_with(local, &[("pii-redact", wasm::PII_REDACT)], config).await
}

fn password_request(stream: bool) -> String {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user",
        "content": format!("Store {PASSWORD} and this key:\n{KEY}\nfor {EMAIL}")}]})
    .to_string()
}

#[tokio::test]
async fn values_restored_into_tool_call_arguments_are_json_escaped() {
    let args = r#"{"password":"<PW_1>","key":"<SECRET_1>","owner":"<EMAIL_1>"}"#;
    let answer = json!({
        "id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "Stored <PW_1>.", "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "store", "arguments": args}}]}}]
    });
    let local = MockUpstream::start("local", Behavior::Replies(answer)).await;
    let (proxy, _dir) = redacting_passwords(&local).await;
    let reply = post(&proxy.url("/v1/chat/completions"), &password_request(false)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = assert_upstream_clean(&local).to_string();
    assert!(!seen.contains("PW-a") && !seen.contains("MIIEpAIB"), "raw value upstream: {seen}");
    let got = reply.json();
    let message = &got["choices"][0]["message"];
    let raw_args = message["tool_calls"][0]["function"]["arguments"].as_str().unwrap();
    let args: Value = serde_json::from_str(raw_args).expect("the arguments stay valid JSON");
    assert_eq!(args, json!({"password": PASSWORD, "key": KEY, "owner": EMAIL}), "{raw_args}");
    assert_eq!(message["content"], format!("Stored {PASSWORD}."), "content: the value as is");
    proxy.stop().await;
}

#[tokio::test]
async fn values_restored_into_streamed_arguments_are_json_escaped_split_anywhere() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = redacting_passwords(&local).await;
    let args = r#"{"password":"<PW_1>","key":"<SECRET_1>"}"#;
    let want = json!({"password": PASSWORD, "key": KEY});
    let mut cuts: Vec<Vec<&str>> = (0..=args.len()).map(|i| vec![&args[..i], &args[i..]]).collect();
    cuts.push(args.split_inclusive(['_', '<']).collect());
    for pieces in cuts {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let call = |a: &str| json!({"tool_calls": [{"index": 0, "function": {"arguments": a}}]});
        let mut chunks = vec![chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "t1",
                   "type": "function", "function": {"name": "store", "arguments": ""}}]}),
            Value::Null,
        )];
        chunks.extend(pieces.iter().map(|p| chunk(call(p), Value::Null)));
        chunks.push(chunk(json!({}), json!("tool_calls")));
        local.set_behavior(Behavior::Chunks(chunks));
        let reply = post(&proxy.url("/v1/chat/completions"), &password_request(true)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let mut got = String::new();
        for data in client::sse_data(&reply.body) {
            let Ok(v) = serde_json::from_str::<Value>(&data) else { continue };
            let delta = &v["choices"][0]["delta"];
            if let Some(piece) = delta["tool_calls"][0]["function"]["arguments"].as_str() {
                got.push_str(piece);
                assert!(!got.contains("<PW") && !got.contains("<SEC"), "{pieces:?}: {got}");
            }
        }
        let parsed: Value = serde_json::from_str(&got)
            .unwrap_or_else(|e| panic!("{pieces:?}: arguments not JSON ({e}): {got}"));
        assert_eq!(parsed, want, "{pieces:?}");
    }
    proxy.stop().await;
}
