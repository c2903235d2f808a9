//! Relaying an upstream's (or a replayed) event stream: holding it back until its first content
//! event, so a stream that fails early can still fall back, then relaying it event by event
//! through the watching plugins, and ending a stream that breaks after commit with an
//! OpenAI-shaped error event rather than a silent cut. A cacheable stream is recorded as it is
//! relayed, then stored when it ends cleanly.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use eventsource_stream::Event;
use futures_util::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::time::{Instant, timeout_at};

use super::stream::{StreamPhase, StreamStop};
use crate::body::{Body, BoxError};
use crate::cache::Recorder;
use crate::error::ProxyError;
use crate::trail::Trail;
use crate::wire::{self, Events, encode, is_done};

/// Events buffered before commit at most; past this the stream is committed anyway so a chatty
/// upstream cannot make the proxy hold unbounded data.
const MAX_HELD_EVENTS: usize = 64;

/// Why a stream could not be committed; the first two are reasons to try the next upstream.
#[derive(Debug)]
pub(super) enum CommitError {
    /// No content event before the first-byte deadline.
    Timeout,
    /// The stream ended, broke, or carried an error event before any content.
    Broken(String),
    /// A watching plugin stopped the stream before anything reached the client.
    Stopped(StreamStop),
}

/// A stream whose first content event has arrived: what was held back, and the rest.
pub struct Committed {
    held: VecDeque<Bytes>,
    done_seen: bool,
    events: Events,
    phase: Option<StreamPhase>,
    taps: Taps,
}

/// What sees every upstream event before the plugins: the cache's recorder and the usage meter.
pub struct Taps {
    /// Records the stream for the cache; `None` when it is not cacheable (or stopped being).
    pub recorder: Option<Recorder>,
    /// Notes text and the usage report on the request's trail.
    pub trail: Arc<Trail>,
    /// Whether the client asked for the usage chunk (else it is noted and not sent).
    pub send_usage: bool,
}

impl Taps {
    /// Shows `event` to the recorder and the trail; false when the client is not to get it.
    fn saw(&mut self, event: &Event) -> bool {
        if is_done(event) {
            return true;
        }
        if let Some(r) = self.recorder.as_mut()
            && !r.record(&event.data)
        {
            // Too large to cache, or an error event: this stream is not stored.
            self.recorder = None;
        }
        let usage_only = self.trail.chunk(&event.data);
        !usage_only || self.send_usage
    }
}

/// Reads events until the first one with content (or `[DONE]`), holding them back. With watching
/// plugins, content counts once the plugins let some of it through: text they hold back keeps the
/// stream uncommitted, so they can still escalate.
/// `taps` see every upstream event (before the plugins).
/// On failure the plugins come back with the error, for the next attempt (or the escalation).
pub async fn commit(
    mut events: Events,
    first_byte_deadline: Instant,
    mut phase: Option<StreamPhase>,
    mut taps: Taps,
) -> Result<Committed, (CommitError, Option<StreamPhase>)> {
    let mut held = VecDeque::new();
    loop {
        let event = match timeout_at(first_byte_deadline, events.next()).await {
            Err(_) => return Err((CommitError::Timeout, phase)),
            Ok(None) => {
                let why = "stream ended before any content".into();
                return Err((CommitError::Broken(why), phase));
            }
            Ok(Some(Err(e))) => {
                return Err((CommitError::Broken(format!("stream broke: {e}")), phase));
            }
            Ok(Some(Ok(event))) => event,
        };
        if !taps.saw(&event) {
            continue;
        }
        let kind = classify(&event);
        let out = match (&kind, phase.as_mut()) {
            (EventKind::Error(message), _) => {
                let why = format!("upstream sent an error event: {message}");
                return Err((CommitError::Broken(why), phase));
            }
            (EventKind::Preamble, _) | (_, None) => vec![encode(&event)],
            (EventKind::Done, Some(plugins)) => match plugins.end().await {
                Ok(mut flushed) => {
                    flushed.push(encode(&event));
                    flushed
                }
                Err(stop) => return Err((CommitError::Stopped(stop), phase)),
            },
            (EventKind::Content, Some(plugins)) => match plugins.event(&event, false).await {
                Ok(None) => vec![encode(&event)],
                Ok(Some(chunks)) => chunks,
                Err(stop) => return Err((CommitError::Stopped(stop), phase)),
            },
        };
        let carries_content = kind != EventKind::Preamble && !out.is_empty();
        held.extend(out);
        if carries_content || held.len() >= MAX_HELD_EVENTS {
            let done_seen = kind == EventKind::Done;
            return Ok(Committed { held, done_seen, events, phase, taps });
        }
    }
}

impl Committed {
    /// The client-facing body: held events first, then the rest as they arrive. A stream that
    /// breaks, ends without `[DONE]`, or passes `deadline` ends with an error event.
    pub fn into_body(self, upstream: String, deadline: Instant) -> Body {
        let state = Relay {
            queue: self.held,
            events: Some(self.events),
            done_seen: self.done_seen,
            phase: self.phase,
            upstream,
            deadline,
            taps: self.taps,
        };
        let frames = futures_util::stream::unfold(state, |mut relay| async move {
            let bytes = relay.next().await?;
            Some((Ok::<_, BoxError>(Frame::data(bytes)), relay))
        });
        StreamBody::new(frames).boxed_unsync()
    }
}

struct Relay {
    /// Chunks ready to send, in order.
    queue: VecDeque<Bytes>,
    /// `None` once the upstream stream is finished, one way or another.
    events: Option<Events>,
    done_seen: bool,
    phase: Option<StreamPhase>,
    upstream: String,
    deadline: Instant,
    taps: Taps,
}

impl Relay {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(bytes) = self.queue.pop_front() {
                return Some(bytes);
            }
            let events = self.events.as_mut()?;
            let failure = match timeout_at(self.deadline, events.next()).await {
                Ok(Some(Ok(event))) => match self.relay(&event).await {
                    Ok(()) => continue,
                    Err(stop) => {
                        self.events = None;
                        return Some(stop.error_event());
                    }
                },
                Ok(None) if self.done_seen => {
                    if let Some(recorder) = self.taps.recorder.take() {
                        recorder.finish();
                    }
                    None
                }
                Ok(None) => Some("the upstream closed the stream before [DONE]".to_string()),
                Ok(Some(Err(e))) => Some(format!("the upstream stream broke: {e}")),
                Err(_) => Some("the stream exceeded the upstream's total timeout".to_string()),
            };
            self.events = None;
            let reason = failure?;
            tracing::warn!(upstream = %self.upstream, "stream interrupted after commit: {reason}");
            let error = ProxyError::StreamInterrupted { upstream: self.upstream.clone(), reason };
            return Some(wire::sse_data(error.to_json()));
        }
    }

    /// Queues what one upstream event becomes for the client.
    async fn relay(&mut self, event: &Event) -> Result<(), StreamStop> {
        if self.done_seen {
            // The stream ended at `[DONE]`: what an upstream sends after it goes nowhere. (Found
            // by fuzzing: it was relayed, and shown to watchers after their stream end, so a
            // redactor that had flushed `blue` let `bird` through and the client read `bluebird`.)
            // The body is still read to its end, so the upstream connection can be reused.
            return Ok(());
        }
        if !self.taps.saw(event) {
            return Ok(());
        }
        let done = is_done(event);
        self.done_seen |= done;
        match self.phase.as_mut() {
            None => self.queue.push_back(encode(event)),
            Some(phase) if done => {
                self.queue.extend(phase.end().await?);
                self.queue.push_back(encode(event));
            }
            Some(phase) => match phase.event(event, true).await? {
                None => self.queue.push_back(encode(event)),
                Some(chunks) => self.queue.extend(chunks),
            },
        }
        Ok(())
    }
}

/// What an event means for the commit decision.
#[derive(Debug, PartialEq)]
enum EventKind {
    /// Carries no content yet (a role-only delta, an empty chunk, a comment-like event).
    Preamble,
    /// Text, a tool call, a finish reason, or anything we cannot read as a chunk.
    Content,
    /// The terminating `[DONE]`.
    Done,
    /// An `{"error": ...}` event.
    Error(String),
}

fn classify(event: &Event) -> EventKind {
    if is_done(event) {
        return EventKind::Done;
    }
    let data = event.data.trim();
    let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
        return EventKind::Content;
    };
    if let Some(error) = value.get("error") {
        let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("unknown error");
        return EventKind::Error(message.to_string());
    }
    let Some(choices) = value.get("choices").and_then(|c| c.as_array()) else {
        return EventKind::Content;
    };
    let has_content = choices.iter().any(|choice| {
        let non_empty = |v: Option<&serde_json::Value>| {
            v.is_some_and(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.is_empty()))
        };
        let delta = choice.get("delta");
        non_empty(choice.get("finish_reason"))
            || non_empty(choice.get("text"))
            || delta.is_some_and(|d| {
                non_empty(d.get("content"))
                    || non_empty(d.get("tool_calls"))
                    || non_empty(d.get("refusal"))
                    || non_empty(d.get("function_call"))
            })
    });
    if has_content { EventKind::Content } else { EventKind::Preamble }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Event {
        Event { event: "message".into(), data: data.into(), id: String::new(), retry: None }
    }

    #[test]
    fn role_only_deltas_are_preamble() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(classify(&event(role)), EventKind::Preamble);
    }

    #[test]
    fn text_finish_and_done_are_content() {
        let text = r#"{"choices":[{"delta":{"content":"Hi"}}]}"#;
        assert_eq!(classify(&event(text)), EventKind::Content);
        let finish = r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(classify(&event(finish)), EventKind::Content);
        assert_eq!(classify(&event("[DONE]")), EventKind::Done);
        assert_eq!(classify(&event("not json")), EventKind::Content);
    }

    #[test]
    fn error_events_are_recognised() {
        let err = r#"{"error":{"message":"overloaded"}}"#;
        assert_eq!(classify(&event(err)), EventKind::Error("overloaded".into()));
    }

    #[test]
    fn a_done_with_whitespace_is_the_end() {
        for data in ["\n[DONE]", "[DONE] ", "[DONE]"] {
            assert_eq!(classify(&event(data)), EventKind::Done, "{data:?}");
        }
    }

    #[tokio::test]
    async fn nothing_after_done_reaches_the_client() {
        use http_body_util::BodyExt;
        let upstream = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n\
                        data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
        let body = http_body_util::Full::new(Bytes::from(upstream));
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let events = wire::upstream_events(body, 1024);
        let trail = Arc::new(Trail::new());
        let taps = Taps { recorder: None, trail, send_usage: true };
        let committed = commit(events, far, None, taps).await.ok().unwrap();
        let out = committed.into_body("up".into(), far).collect().await.unwrap().to_bytes();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n") && !text.contains("\"b\""), "{text}");
    }
}
