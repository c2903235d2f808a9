//! What happened to one request, noted by each step as it happens and read once its response has
//! ended: the upstream attempts, the usage the answer reported (or the text relayed, when it
//! reported none), and when the first token left for the client. The access log, the usage
//! metrics and the limits ledger read it at the end ([`crate::record`]).
//!
//! Shared (`Arc`) between the pipeline, dispatch and the response body that relays a stream, so a
//! stream's usage is known however it ends: at `[DONE]`, broken, or with the client gone.

use std::borrow::Cow;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use memchr::memmem::FinderRev;
use serde::Deserialize;
use tokio::time::Instant;

use crate::ledger::usage::estimate_tokens;

pub use crate::ledger::Usage;

/// One attempt at an upstream.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub upstream: String,
    /// As in the `switchyard_upstream_attempts_total` metric: `ok`, `timeout`, `server_error`, …
    pub outcome: &'static str,
    /// From the request's arrival to the attempt's start.
    pub started: Duration,
    pub duration: Duration,
    /// The attempt's span (sent upstream in `traceparent`).
    pub span_id: [u8; 8],
}

/// One plugin's calls in one phase, as a trace shows them. A stream's events are one note per
/// watcher, with the number of calls and their total time.
#[derive(Debug, Clone)]
pub struct PluginCall {
    pub plugin: std::sync::Arc<str>,
    pub sha256: String,
    /// `request`, `response` (a whole answer) or `stream`.
    pub phase: &'static str,
    /// The last decision: `proceed`, `respond`, `pass`, `edit`, `abort`, `escalate`, `failed`.
    pub decision: &'static str,
    /// The failure kind (`timeout`, `trap`, …) when a call failed.
    pub failure: Option<&'static str>,
    /// From the request's arrival to the first call.
    pub started: Duration,
    /// Time spent in the calls, together.
    pub duration: Duration,
    pub calls: u32,
}

/// A point in the request's life worth a trace event.
#[derive(Debug, Clone)]
pub struct Mark {
    /// `escalation`, `stream.commit`.
    pub name: &'static str,
    pub at: Duration,
    pub detail: Vec<(&'static str, String)>,
}

/// The notes themselves; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Notes {
    pub attempts: Vec<Attempt>,
    /// As the upstream reported it (a whole answer's `usage`, a stream's usage chunk).
    pub usage: Option<Usage>,
    /// Answer text relayed, in estimated tokens ([`crate::ledger::usage::estimate_tokens`]): what
    /// is counted when no usage was reported.
    pub relayed_tokens: u64,
    /// From the request's start to the first content the client was sent.
    pub first_token: Option<Duration>,
    /// The model the upstream says answered.
    pub response_model: Option<String>,
    /// The trace this request belongs to.
    pub trace: Option<crate::telemetry::TraceContext>,
    pub plugin_calls: Vec<PluginCall>,
    pub marks: Vec<Mark>,
}

/// A request's trail; see the module documentation.
#[derive(Debug)]
pub struct Trail {
    started: Instant,
    notes: Mutex<Notes>,
}

impl Default for Trail {
    fn default() -> Self {
        Self::new()
    }
}

impl Trail {
    pub fn new() -> Self {
        Self { started: Instant::now(), notes: Mutex::new(Notes::default()) }
    }

    /// When the request arrived.
    pub fn started(&self) -> Instant {
        self.started
    }

    fn notes(&self) -> MutexGuard<'_, Notes> {
        // A panic elsewhere while holding the lock leaves plain data behind: still readable.
        self.notes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes an attempt that started at `started` and took `duration`, as span `span_id`.
    pub fn attempt(
        &self,
        upstream: &str,
        outcome: &'static str,
        started: Instant,
        duration: Duration,
        span_id: [u8; 8],
    ) {
        let started = started.saturating_duration_since(self.started);
        let upstream = upstream.to_string();
        let attempt = Attempt { upstream, outcome, started, duration, span_id };
        self.notes().attempts.push(attempt);
    }

    /// Sets the trace the request belongs to.
    pub fn set_trace(&self, trace: crate::telemetry::TraceContext) {
        self.notes().trace = Some(trace);
    }

    /// The trace's id and the request's server span id in hex, when it belongs to a trace.
    pub fn trace_ids_hex(&self) -> Option<(String, String)> {
        let notes = self.notes();
        let trace = notes.trace.as_ref()?;
        Some((trace.trace_id_hex(), trace.span_id_hex()))
    }

    /// The `traceparent` and `tracestate` headers for an outgoing request made by span `span`.
    pub fn propagation(&self, span: [u8; 8]) -> Option<(String, String)> {
        let notes = self.notes();
        let trace = notes.trace.as_ref()?;
        Some((trace.traceparent(span), trace.trace_state.clone()))
    }

    /// Notes a plugin call that started at `started`. Calls of the `stream` phase add up into
    /// one note per plugin.
    #[allow(clippy::too_many_arguments)]
    pub fn plugin_call(
        &self,
        plugin: &std::sync::Arc<str>,
        sha256: &str,
        phase: &'static str,
        decision: &'static str,
        failure: Option<&'static str>,
        started: std::time::Instant,
        duration: Duration,
    ) {
        let mut notes = self.notes();
        if phase == "stream"
            && let Some(note) =
                notes.plugin_calls.iter_mut().find(|c| c.phase == phase && c.plugin == *plugin)
        {
            note.calls += 1;
            note.duration += duration;
            note.decision = decision;
            note.failure = note.failure.or(failure);
            return;
        }
        let offset = started.saturating_duration_since(self.started.into_std());
        notes.plugin_calls.push(PluginCall {
            plugin: std::sync::Arc::clone(plugin),
            sha256: sha256.to_string(),
            phase,
            decision,
            failure,
            started: offset,
            duration,
            calls: 1,
        });
    }

    /// Notes a point in the request's life (an escalation, a stream's commit).
    pub fn mark(&self, name: &'static str, detail: Vec<(&'static str, String)>) {
        let at = self.started.elapsed();
        self.notes().marks.push(Mark { name, at, detail });
    }

    /// Notes the first content sent to the client (later calls change nothing).
    pub fn first_token(&self) {
        let elapsed = self.started.elapsed();
        self.notes().first_token.get_or_insert(elapsed);
    }

    /// What a whole JSON answer reports: its usage and model.
    pub fn answer(&self, body: &[u8]) {
        let Ok(answer) = serde_json::from_slice::<Reported>(body) else { return };
        let mut notes = self.notes();
        if let Some(usage) = answer.usage {
            notes.usage = Some(usage.into());
        }
        if let Some(model) = answer.model {
            notes.response_model = Some(model);
        }
    }

    /// The usage report at the end of a whole JSON answer that was relayed without being read
    /// whole: the last `"usage"` key in `tail` and the object after it.
    pub fn answer_tail(&self, tail: &[u8]) {
        const KEY: &[u8] = b"\"usage\"";
        static FINDER: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(KEY));
        let Some(at) = FINDER.rfind(tail) else { return };
        let rest = tail[at + KEY.len()..].trim_ascii_start();
        let Some(value) = rest.strip_prefix(b":") else { return };
        let mut values = serde_json::Deserializer::from_slice(value).into_iter::<RawUsage>();
        if let Some(Ok(usage)) = values.next() {
            self.notes().usage = Some(usage.into());
        }
    }

    /// What one stream event carries: text (counted), a model, a usage report. Returns whether
    /// the event is a usage report and nothing else (no choices), which a client that did not
    /// ask for one is not sent.
    pub fn chunk(&self, data: &str) -> bool {
        let Ok(chunk) = serde_json::from_str::<Chunk>(data) else { return false };
        let tokens: u64 = chunk
            .choices
            .iter()
            .flatten()
            .map(|c| {
                let delta = c.delta.as_ref().and_then(|d| d.content.as_deref());
                delta.or(c.text.as_deref()).map_or(0, estimate_tokens)
            })
            .sum();
        let usage_only = chunk.usage.is_some() && chunk.choices.as_ref().is_none_or(Vec::is_empty);
        let mut notes = self.notes();
        notes.relayed_tokens += tokens;
        if let Some(usage) = chunk.usage {
            notes.usage = Some(usage.into());
        }
        if notes.response_model.is_none()
            && let Some(model) = chunk.model
        {
            notes.response_model = Some(model.into_owned());
        }
        usage_only
    }

    /// A copy of the notes so far (the request's record takes them instead: [`Self::take`]).
    #[cfg(test)]
    pub fn read(&self) -> Notes {
        self.notes().clone()
    }

    /// The notes, taken out of the trail (which keeps empty ones): for the request's record,
    /// their last reader.
    pub fn take(&self) -> Notes {
        std::mem::take(&mut *self.notes())
    }
}

/// `usage` as OpenAI sends it (and the Responses API's `input_tokens`/`output_tokens`); every
/// field optional, since upstreams vary.
#[derive(Deserialize)]
struct RawUsage {
    prompt_tokens: Option<u64>,
    input_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    input_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

impl From<RawUsage> for Usage {
    fn from(raw: RawUsage) -> Self {
        let completion_tokens = raw.completion_tokens.or(raw.output_tokens).unwrap_or(0);
        // Embeddings from some providers report only a total.
        let prompt_tokens = raw
            .prompt_tokens
            .or(raw.input_tokens)
            .or_else(|| raw.total_tokens?.checked_sub(completion_tokens))
            .unwrap_or(0);
        let details = raw.prompt_tokens_details.or(raw.input_tokens_details);
        let cached = details.and_then(|d| d.cached_tokens).unwrap_or(0);
        Self { prompt_tokens, completion_tokens, cached_prompt_tokens: cached.min(prompt_tokens) }
    }
}

/// The parts of a whole answer the trail reads; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Reported {
    usage: Option<RawUsage>,
    model: Option<String>,
}

/// The parts of a stream chunk the trail reads.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    choices: Option<Vec<ChunkChoice<'a>>>,
    usage: Option<RawUsage>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(borrow)]
    delta: Option<ChunkDelta<'a>>,
    /// Borrowed from the event unless it has escapes: no copy of the text per event.
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_answer_reports_usage_and_model() {
        let trail = Trail::new();
        trail.answer(br#"{"model":"m1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":8}}}"#);
        let notes = trail.read();
        let usage = Usage { prompt_tokens: 12, completion_tokens: 3, cached_prompt_tokens: 8 };
        assert_eq!(notes.usage, Some(usage));
        assert_eq!(notes.response_model.as_deref(), Some("m1"));
    }

    #[test]
    fn stream_chunks_count_text_and_the_usage_chunk_is_recognised() {
        let trail = Trail::new();
        let text = r#"{"model":"m","choices":[{"index":0,"delta":{"content":"héllo"}}]}"#;
        assert!(!trail.chunk(text));
        assert!(!trail.chunk(r#"{"choices":[{"index":0,"text":"ab"}]}"#));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}"#;
        assert!(trail.chunk(usage), "a usage-only chunk");
        assert!(!trail.chunk("not json"));
        let notes = trail.read();
        assert_eq!(notes.relayed_tokens, estimate_tokens("héllo") + estimate_tokens("ab"));
        assert_eq!(notes.usage.map(|u| u.completion_tokens), Some(2));
        assert_eq!(notes.response_model.as_deref(), Some("m"));
    }

    #[test]
    fn other_usage_shapes_are_read() {
        let trail = Trail::new();
        trail.answer(br#"{"usage":{"input_tokens":5,"output_tokens":2,"input_tokens_details":{"cached_tokens":9}}}"#);
        let usage = Usage { prompt_tokens: 5, completion_tokens: 2, cached_prompt_tokens: 5 };
        assert_eq!(trail.read().usage, Some(usage), "cached tokens are a part of the prompt");
        trail.answer(br#"{"data":[],"usage":{"total_tokens":9}}"#);
        assert_eq!(trail.read().usage.map(|u| u.prompt_tokens), Some(9), "a total only");
    }

    #[test]
    fn the_usage_at_the_end_of_a_relayed_answer_is_found_in_its_tail() {
        let trail = Trail::new();
        let body = r#"{"data":[{"embedding":[0.1,0.2]}],"model":"e","usage": {"prompt_tokens":9,"total_tokens":9}}"#;
        trail.answer_tail(&body.as_bytes()[20..]);
        assert_eq!(trail.read().usage.map(|u| u.prompt_tokens), Some(9));
        let nothing = Trail::new();
        nothing.answer_tail(br#"{"text":"the word \"usage\" in prose"}"#);
        nothing.answer_tail(br#"...,"usage":{"prompt_tok"#);
        assert_eq!(nothing.read().usage, None);
    }

    #[test]
    fn a_usage_field_on_a_content_chunk_is_not_usage_only() {
        let trail = Trail::new();
        let both = r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":1}}"#;
        assert!(!trail.chunk(both));
    }
}
