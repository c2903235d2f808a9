//! Fuzz target `sse_relay`: an upstream's SSE body, cut into chunks, through the same steps as a
//! streamed answer in `dispatch` (the request's `Responder`): framing, holding until the first content event, the response
//! phase with pii-redact watching (it pseudonymised the request and masks PII in the answer), and
//! the relay to the client.
//!
//! The first byte of an input picks the chunk size and the event-size cap; the rest is the body.
//!
//! Invariants: nothing panics; what the client gets is well-framed SSE (only `data:`, `event:` and
//! `id:` lines, every event closed by a blank line, no stray `\r`) that either carries `[DONE]` or
//! ends with an OpenAI error event; no choice's text, as a client joins it, contains a word the
//! plugin masks ([`PLANTED`]: its deny-words, whole words in any ASCII case, a rule simple enough
//! to check here exactly); a stream stopped before commit is answered with an OpenAI error.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::Value;
use tokio::time::Instant;

use super::assert_openai_error;
use crate::plugin::{
    FailurePolicy, PluginEngine, PluginEntry, PluginRegistry, PluginsSection, ResponseWatch,
};
use crate::request::{Endpoint, ParsedRequest};
use crate::request_phase::{self, RequestPhase};
use crate::respond::{Delivery, Responder, StreamFailure, Uncommitted};
use crate::wire;

/// The client's request: PII that pii-redact replaces by `<EMAIL_1>` and `<CARD_1>` (and puts
/// back where the upstream's answer says them).
const REQUEST: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"Mail bob@example.net the total of card 5500 0000 0000 0004."}]}"#;

/// pii-redact's `deny_words` here: with `scan_answer` it masks them (`[CUSTOM]`) wherever the
/// model writes them as whole words, ignoring ASCII case. None may reach the client in a choice's
/// text, however the upstream splits it. (Emails and cards in the seeds exercise the other
/// detectors, but their edges are the detectors' own policy, not a property of the relay.)
pub const PLANTED: &[&str] = &["bluebird", "kestrel"];

const CHUNK_SIZES: [usize; 8] = [1, 2, 3, 7, 16, 64, 512, usize::MAX];

/// What became of one input, for the tests to see that every path is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The stream was committed and relayed to the client; `masked`: the plugin masked a planted
    /// word in it (so the no-leak check was not vacuous).
    Relayed { masked: bool },
    /// The plugin stopped it before commit; the client got an error answer.
    Answered,
    /// It failed before commit (broken, empty, an error event): the next upstream would be tried.
    FellBack,
    /// The request phase refused the request (pii-redact failed, e.g. its deadline on a busy
    /// machine): nothing to relay.
    Refused,
}

/// A tokio current-thread runtime and a loaded pii-redact, made once per process.
pub struct SseRelay {
    runtime: tokio::runtime::Runtime,
    registry: Arc<PluginRegistry>,
}

impl SseRelay {
    /// Loads the pii-redact component at `pii_redact` (a file built by tests/build.rs).
    pub fn new(pii_redact: &Path) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let dir = pii_redact.parent().ok_or("the component path has no directory")?;
        let file = pii_redact.file_name().ok_or("the component path has no file name")?;
        let section = PluginsSection::new(dir);
        let engine = PluginEngine::new(section.engine_limits())?;
        let mut entry = PluginEntry::new("pii-redact", file, FailurePolicy::Closed);
        let config =
            serde_json::json!({"mode": "pseudonymize", "scan_answer": true, "deny_words": PLANTED});
        entry.config = config.as_object().cloned().unwrap_or_default();
        // Generous: a deadline missed on a busy machine is not what this target looks for.
        entry.timeout_ms = 1000;
        let upstreams = ["local".to_string()].into_iter().collect();
        let registry = PluginRegistry::new(engine, section, vec![entry], upstreams);
        runtime.block_on(registry.reload()).map_err(|e| e.to_string())?;
        Ok(Self { runtime, registry: Arc::new(registry) })
    }

    /// Runs one input.
    pub fn run(&self, data: &[u8]) -> Outcome {
        let Some((&selector, body)) = data.split_first() else { return Outcome::FellBack };
        let chunk = CHUNK_SIZES[usize::from(selector & 7)];
        let max_event_bytes = if selector & 8 != 0 { 256 } else { 1 << 20 };
        let chunks: Vec<Bytes> =
            body.chunks(chunk.min(body.len().max(1))).map(Bytes::copy_from_slice).collect();
        self.runtime.block_on(self.relay(chunks, max_event_bytes))
    }

    async fn relay(&self, chunks: Vec<Bytes>, max_event_bytes: usize) -> Outcome {
        let Some(watch) = self.watch().await else { return Outcome::Refused };
        let frames = chunks.into_iter().map(|c| Ok::<_, Infallible>(Frame::data(c)));
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let events = wire::upstream_events(body, max_event_bytes);
        // In-memory chunks never wait: no deadline can pass.
        let far = Instant::now() + Duration::from_secs(3600);
        let (parts, ()) = http::Response::new(()).into_parts();
        let trail = Arc::new(crate::trail::Trail::new());
        let responder = Responder::new(watch, None, true, trail, true);
        let response = match responder.stream("local", parts, events, far, far).await {
            Ok(Delivery::Send(response)) => response,
            Ok(Delivery::Escalate(..)) => panic!("pii-redact never escalates"),
            Err(Uncommitted { error: StreamFailure::Broken(_), .. }) => return Outcome::FellBack,
            Err(Uncommitted { error: StreamFailure::Timeout, .. }) => {
                panic!("an in-memory stream timed out")
            }
        };
        let status = response.status();
        let out = response.into_body().collect().await.expect("the relay body never fails");
        let out = out.to_bytes();
        if status.is_success() {
            check_stream(&out);
            let masked = out.windows(8).any(|w| w == b"[CUSTOM]");
            return Outcome::Relayed { masked };
        }
        // The plugin stopped the stream before commit.
        assert!(status.as_u16() >= 400, "a stop answered {status}");
        let json: Value = serde_json::from_slice(&out).expect("JSON answer");
        assert_openai_error(&json);
        Outcome::Answered
    }

    /// The request phase for [`REQUEST`]: pii-redact redacts it and watches the answer.
    async fn watch(&self) -> Option<ResponseWatch> {
        let set = self.registry.current();
        let mut request = ParsedRequest::parse(Endpoint::ChatCompletions, REQUEST.into())
            .expect("the fixed request parses");
        match request_phase::on_request(&set, &mut request, None, Vec::new(), None, None).await {
            Ok(RequestPhase::Forward(forward)) => {
                assert!(!forward.watch.is_empty(), "pii-redact does not watch the answer");
                Some(forward.watch)
            }
            Ok(RequestPhase::Respond(..)) => panic!("pii-redact answered the request itself"),
            Err(_) => None,
        }
    }
}

/// The client's view of a relayed stream: framing, the end, and the text of each choice.
fn check_stream(out: &[u8]) {
    let events = framed(out);
    let done = events.iter().any(|data| data == "[DONE]");
    if !done {
        let last = events.last().expect("a committed stream sends something");
        let json: Value = serde_json::from_str(last)
            .unwrap_or_else(|_| panic!("a stream without [DONE] must end in an error: {last:?}"));
        assert_openai_error(&json);
    }
    // Each choice's text joined over the chunks, the choice read as the stream phase reads it
    // (what the watchers saw as one choice must not carry a masked word once joined).
    let mut texts: BTreeMap<u32, String> = BTreeMap::new();
    for data in &events {
        let Ok(chunk) = serde_json::from_str::<Value>(data) else { continue };
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let text = choice["delta"]["content"].as_str().or_else(|| choice["text"].as_str());
            let index = choice["index"].as_u64().unwrap_or(0) as u32;
            texts.entry(index).or_default().push_str(text.unwrap_or(""));
        }
    }
    for (index, text) in &texts {
        for planted in PLANTED {
            assert!(!has_word(text, planted), "choice {index} leaked {planted:?}: {text:?}");
        }
    }
}

/// Whether `word` is in `text` as a whole word, ignoring ASCII case, with pii-redact's idea of a
/// word byte (ASCII letters and digits, `_`, and every byte of a non-ASCII character).
fn has_word(text: &str, word: &str) -> bool {
    let (t, w) = (text.as_bytes(), word.as_bytes());
    let is_word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_' || *c >= 0x80;
    t.windows(w.len()).enumerate().any(|(i, candidate)| {
        candidate.eq_ignore_ascii_case(w)
            && !i.checked_sub(1).and_then(|j| t.get(j)).is_some_and(is_word)
            && !t.get(i + w.len()).is_some_and(is_word)
    })
}

/// Splits the relay's output into events' data, asserting it is well-framed.
fn framed(out: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(out).expect("the relay sends UTF-8");
    assert!(text.ends_with("\n\n"), "the output does not end an event: {text:?}");
    assert!(!text.contains('\r'), "a stray carriage return: {text:?}");
    text[..text.len() - 2]
        .split("\n\n")
        .map(|event| {
            let mut data = Vec::new();
            for line in event.split('\n') {
                match line.strip_prefix("data: ") {
                    Some(d) => data.push(d),
                    None => assert!(
                        line.starts_with("event: ") || line.starts_with("id: "),
                        "a line that is no SSE field: {line:?} in {text:?}"
                    ),
                }
            }
            assert!(!data.is_empty(), "an event without data: {event:?}");
            data.join("\n")
        })
        .collect()
}
