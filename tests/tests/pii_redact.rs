//! The `pii-redact` built-in plugin end to end, through the in-process proxy and a mock upstream
//! that records what it received: the upstream never sees a raw entity in any mode, masks and
//! placeholders as the upstream sees them, placeholders restored in whole and streamed answers
//! (split at every position across SSE events), block mode's 400, tags and counters, and a
//! failure refusing the request (fail-closed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod plugin_support;

use plugin_support::{chat, engine, entry, plugin_dir, registry, tag};
use serde_json::{Value, json};
use switchyard::plugin::{FailurePolicy, RequestOutcome};
use switchyard_tests::client::{self, post};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::{chat_body, wasm};

/// Every entity type once, with the raw values the upstream must never see.
const ENTITIES: &[(&str, &str)] = &[
    ("email", "jane.doe@example.com"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "(555) 123-4567"),
    ("card", "4111 1111 1111 1111"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("ssn", "123-45-6789"),
    ("ip", "192.168.1.20"),
    ("ip", "2001:db8::8a2e:370:7334"),
    ("secret", "sk-proj-Ab3dEfGh1jKlMnOpQrStUvWxYz0123456789"),
    ("secret", "AKIAIOSFODNN7EXAMPLE"),
    ("secret", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("secret", "xoxb-123456789012-AbCdEfGhIjKlMnOp"),
    ("secret", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"),
    (
        "secret",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
    ),
    ("name", "Jane Doe"),
    ("custom", "Project Bluebird"),
    ("employee", "EMP-123456"),
];

const CONFIG: &str = r#"names = ["Jane Doe"], deny_words = ["Project Bluebird"], custom_patterns = { employee = "EMP-\\d{6}" }"#;

/// One text with every entity, in prose.
fn everything() -> String {
    let parts: Vec<String> =
        ENTITIES.iter().map(|(kind, value)| format!("my {kind} is {value} ;")).collect();
    format!("Hello, please help. {}\nThanks.", parts.join(" "))
}

/// A proxy whose only upstream is `local` and whose chain is pii-redact with `config` (inline
/// TOML table body).
async fn proxy(local: &MockUpstream, plugin_config: &str) -> (Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm::PII_REDACT, dir.path().join("pii_redact.wasm")).unwrap();
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"")
        + &format!(
            "\n[plugins]\ndir = {:?}\nwatch = false\n\n[[plugin]]\nname = \"pii-redact\"\n\
             file = \"pii_redact.wasm\"\nfailure = \"closed\"\ntimeout_ms = 500\n\
             config = {{ {plugin_config} }}\n",
            dir.path().display().to_string()
        );
    (Proxy::start(&cfg).await, dir)
}

/// The last user message the upstream received.
fn upstream_saw(local: &MockUpstream) -> String {
    let last = local.received().pop().expect("the upstream got a request");
    let body = last.json();
    body["messages"][0]["content"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_upstream_never_sees_a_raw_entity_in_any_mode() {
    for mode in ["pseudonymize", "mask", "block"] {
        let local = MockUpstream::start("local", Behavior::Says("ok".into())).await;
        let (proxy, _dir) = proxy(&local, &format!("mode = \"{mode}\", {CONFIG}")).await;
        for stream in [false, true] {
            let reply =
                post(&proxy.url("/v1/chat/completions"), &chat_body("m", &everything(), stream))
                    .await;
            let want = if mode == "block" { 400 } else { 200 };
            assert_eq!(reply.status, want, "{mode}: {}", reply.text());
        }
        for received in local.received() {
            let body = String::from_utf8_lossy(&received.body).to_string();
            let seen: String =
                serde_json::from_str::<Value>(&body).unwrap()["messages"][0]["content"]
                    .as_str()
                    .unwrap()
                    .to_string();
            for (kind, value) in ENTITIES {
                assert!(
                    !seen.contains(value),
                    "{mode}: raw {kind} {value:?} reached upstream: {seen}"
                );
            }
        }
        let hits = if mode == "block" { 0 } else { 2 };
        assert_eq!(local.hits(), hits, "{mode}");
        proxy.stop().await;
    }
}

#[tokio::test]
async fn mask_mode_replaces_each_entity_with_its_type() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = proxy(&local, &format!("mode = \"mask\", {CONFIG}")).await;
    let reply =
        post(&proxy.url("/v1/chat/completions"), &chat_body("m", &everything(), false)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream_saw(&local);
    let want: Vec<String> = ENTITIES
        .iter()
        .map(|(kind, _)| format!("my {kind} is [{}] ;", kind.to_ascii_uppercase()))
        .collect();
    assert_eq!(seen, format!("Hello, please help. {}\nThanks.", want.join(" ")));
    // Masks are not restored: the client sees what the model saw.
    let answer = reply.json()["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert!(answer.contains("[EMAIL]") && !answer.contains("jane.doe@example.com"), "{answer}");
    proxy.stop().await;
}

#[tokio::test]
async fn pseudonyms_are_stable_and_restored_in_plain_and_streamed_answers() {
    // The mock echoes the user message: the answer carries the placeholders the upstream saw.
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = proxy(&local, CONFIG).await;
    let text =
        "Mail jane.doe@example.com or bob@corp.io, again jane.doe@example.com; call 555-123-4567.";
    for stream in [false, true] {
        let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", text, stream)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            upstream_saw(&local),
            "Mail <EMAIL_1> or <EMAIL_2>, again <EMAIL_1>; call <PHONE_1>.",
            "the same value gets the same placeholder"
        );
        let answer = if stream {
            client::stream_text(&reply.body)
        } else {
            reply.json()["choices"][0]["message"]["content"].as_str().unwrap().to_string()
        };
        assert_eq!(answer, format!("local heard: {text}"), "stream={stream}");
    }
    proxy.stop().await;
}

/// Streams `pieces` as the answer to a request with one email; the client must see the restored
/// text, no event may show any part of a placeholder, and the finish reason must come last.
async fn check_pieces(proxy: &Proxy, local: &MockUpstream, pieces: Vec<String>) {
    let want = pieces.concat().replace("<EMAIL_1>", "jane.doe@example.com");
    local.set_behavior(Behavior::SaysInPieces(pieces.clone()));
    let body = chat_body("m", "write to jane.doe@example.com", true);
    let reply = post(&proxy.url("/v1/chat/completions"), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let events = client::sse_data(&reply.body);
    let mut sent = String::new();
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        let content = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
        sent.push_str(content);
        assert!(want.starts_with(&sent), "leak in {pieces:?}: sent {sent:?}");
    }
    assert_eq!(sent, want, "{pieces:?}");
    let finish: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop", "{pieces:?}: {events:?}");
    assert_eq!(events.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn a_placeholder_split_at_every_position_is_restored_without_leaks() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = proxy(&local, "").await;
    let text = "Sure: <EMAIL_1> (not <EMAIL_2> nor <EMA) done <";
    // Two pieces, cut at every char boundary.
    for i in 0..=text.len() {
        check_pieces(&proxy, &local, vec![text[..i].into(), text[i..].into()]).await;
    }
    // Three pieces: the placeholder itself cut twice, everywhere.
    let (start, end) = (6, 6 + "<EMAIL_1>".len());
    for i in start..=end {
        for j in i..=end {
            let pieces = vec![text[..i].into(), text[i..j].into(), text[j..].into()];
            check_pieces(&proxy, &local, pieces).await;
        }
    }
    // One byte per event.
    check_pieces(&proxy, &local, text.chars().map(String::from).collect()).await;
    proxy.stop().await;
}

#[tokio::test]
async fn block_mode_refuses_naming_the_types_only() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = proxy(&local, "mode = \"block\"").await;
    let text = "card 4111 1111 1111 1111 and mail jane.doe@example.com";
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", text, false)).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let message = reply.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("card") && message.contains("email"), "{message}");
    assert!(!message.contains("4111") && !message.contains("jane"), "{message}");
    assert_eq!(reply.json()["error"]["type"], "policy_violation");
    assert_eq!(local.hits(), 0);
    // A clean request goes through.
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", "hello", false)).await;
    assert_eq!(reply.status, 200);
    proxy.stop().await;
}

#[tokio::test]
async fn a_plugin_failure_refuses_the_request_and_forwards_nothing() {
    // More entities than one decision may edit: the plugin fails, and fail-closed refuses.
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = proxy(&local, "").await;
    let text: String = (0..5000).map(|i| format!("u{i}@example.com ")).collect();
    let reply = post(&proxy.url("/v1/chat/completions"), &chat_body("m", &text, false)).await;
    assert!(reply.status.is_server_error(), "{}: {}", reply.status, reply.text());
    assert!(!reply.text().contains("example.com"), "no value in the error");
    assert_eq!(local.hits(), 0, "nothing forwarded");
    proxy.stop().await;
}

/// A message of megabytes fits the plugin's memory (its unset `memory_mib`: its initial memory +
/// 32 MiB), and its entities at the start, the middle and the end are all replaced.
#[tokio::test]
async fn a_message_of_megabytes_is_redacted_whole() {
    let dir = plugin_dir(&[("p.wasm", wasm::PII_REDACT)]);
    let mut e = entry("pii", "p.wasm", FailurePolicy::Closed, json!({ "mode": "mask" }));
    e.timeout_ms = 1000;
    let reg = registry(engine(4), dir.path(), vec![e]).await;
    let filler = "The quarterly report lists the risks of the operations team. ".repeat(40 << 10);
    let text = format!("start a@b.io {filler} middle c@d.io {filler} end e@f.io");
    assert!(text.len() > 4 << 20, "{} bytes", text.len());
    let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&[&text])).await else {
        panic!("a large message is refused");
    };
    let sent = &p.request.messages[0].content;
    for raw in ["a@b.io", "c@d.io", "e@f.io"] {
        assert!(!sent.contains(raw), "{raw} reached the upstream");
    }
    assert_eq!(tag(&p.request, "pii.email"), Some("3"));
}

#[tokio::test]
async fn tags_and_counters_name_types_and_counts() {
    let dir = plugin_dir(&[("p.wasm", wasm::PII_REDACT)]);
    let e = entry("pii", "p.wasm", FailurePolicy::Closed, json!({ "mode": "mask" }));
    let reg = registry(engine(4), dir.path(), vec![e]).await;
    let req = chat(&["a@b.io c@d.io", "ip 10.0.0.1"]);
    let RequestOutcome::Proceed(p) = reg.current().on_request(req).await else { panic!() };
    let tags = &p.request.tags;
    for (k, v) in [("pii", "3"), ("pii.email", "2"), ("pii.ip", "1")] {
        assert!(tags.contains(&(k.to_string(), v.to_string())), "{k}={v} in {tags:?}");
    }
    assert!(p.watch.is_empty(), "mask mode without scan_answer does not watch");
    let info = reg.list().into_iter().find(|i| i.name == "pii").unwrap();
    assert_eq!(info.counters.get("found.email"), Some(&2), "{:?}", info.counters);
    assert_eq!(info.counters.get("found.ip"), Some(&1));
}

#[tokio::test]
async fn scan_answer_masks_what_the_model_wrote_and_still_restores() {
    let pieces: Vec<String> = ["Ask b", "ob@co", "rp.io or <EM", "AIL_1>", "\nbye"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let local = MockUpstream::start("local", Behavior::SaysInPieces(pieces)).await;
    let (proxy, _dir) = proxy(&local, "scan_answer = true").await;
    let body = |stream| chat_body("m", "I am jane.doe@example.com", stream);
    let want = "Ask [EMAIL] or jane.doe@example.com\nbye";
    let reply = post(&proxy.url("/v1/chat/completions"), &body(false)).await;
    assert_eq!(reply.json()["choices"][0]["message"]["content"], want);
    let reply = post(&proxy.url("/v1/chat/completions"), &body(true)).await;
    assert_eq!(client::stream_text(&reply.body), want);
    for event in client::sse_data(&reply.body) {
        assert!(
            !event.contains("corp") && !event.contains("ob@"),
            "raw answer PII leaked: {event}"
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn choices_of_a_stream_are_restored_separately() {
    use switchyard::plugin::{EventOutcome, StreamEvent};
    let dir = plugin_dir(&[("p.wasm", wasm::PII_REDACT)]);
    let e = entry("pii", "p.wasm", FailurePolicy::Closed, json!({}));
    let reg = registry(engine(4), dir.path(), vec![e]).await;
    let req = chat(&["mail a@b.io", "call 555-123-4567"]);
    let RequestOutcome::Proceed(mut p) = reg.current().on_request(req).await else { panic!() };
    let events =
        [(0, "x <EMA", None), (1, "y <PHO", None), (0, "IL_1> z", Some("stop")), (1, "NE_1", None)];
    let mut seen = [String::new(), String::new()];
    for (seq, (choice, text, finish)) in events.into_iter().enumerate() {
        let ev = StreamEvent {
            seq: seq as u32,
            committed: seq > 0,
            choice,
            text: text.into(),
            finish_reason: finish.map(str::to_string),
        };
        match p.watch.on_event(ev).await {
            EventOutcome::Pass => seen[choice as usize].push_str(text),
            EventOutcome::Emit(ds) => {
                for d in ds {
                    assert_eq!(d.choice, choice, "deltas stay on the event's choice");
                    seen[choice as usize].push_str(&d.text);
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, ["x a@b.io z".to_string(), "y ".to_string()]);
    let EventOutcome::Emit(rest) = p.watch.on_stream_end().await else { panic!() };
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].choice, rest[0].text.as_str()), (1, "<PHONE_1"), "unfinished: as it came");
}

#[tokio::test]
async fn a_bad_config_never_goes_live_and_names_every_problem() {
    use switchyard::plugin::{PluginRegistry, PluginsSection};
    let dir = plugin_dir(&[("p.wasm", wasm::PII_REDACT)]);
    let config =
        json!({ "types": ["email", "fax", "custom"], "custom_patterns": { "Bad Name": "(" } });
    let e = entry("pii", "p.wasm", FailurePolicy::Closed, config);
    let reg = PluginRegistry::new(
        engine(2),
        PluginsSection::new(dir.path()),
        vec![e],
        plugin_support::upstreams(),
    );
    let err = reg.reload().await.unwrap_err().to_string();
    assert!(err.contains("fax") && err.contains("Bad Name"), "{err}");
}
