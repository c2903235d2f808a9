//! Server-sent events from upstreams: holding a stream back until its first content event (so a
//! stream that fails early can still fall back), then relaying it event by event, and ending a
//! stream that breaks after commit with an OpenAI-shaped error event rather than a silent cut.
//!
//! Framing is parsed by `eventsource-stream`; events are re-encoded one by one as they arrive.

use std::pin::Pin;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use http_body::Frame;
use http_body_util::{BodyDataStream, BodyExt, StreamBody};
use hyper::body::Incoming;
use tokio::time::{Instant, timeout_at};

use crate::body::{Body, BoxError};
use crate::error::ProxyError;

/// Events buffered before commit at most; past this the stream is committed anyway so a chatty
/// upstream cannot make the proxy hold unbounded data.
const MAX_HELD_EVENTS: usize = 64;

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<hyper::Error>>> + Send>>;

/// Why a stream could not be committed; each is a reason to try the next upstream.
#[derive(Debug)]
pub enum CommitError {
    /// No content event before the first-byte deadline.
    Timeout,
    /// The stream ended, broke, or carried an error event before any content.
    Broken(String),
}

/// A stream whose first content event has arrived: what was held back, and the rest.
pub struct Committed {
    held: Vec<Bytes>,
    done_seen: bool,
    events: Events,
}

/// Reads events until the first one with content (or `[DONE]`), holding them back.
pub async fn commit(
    body: Incoming,
    first_byte_deadline: Instant,
) -> Result<Committed, CommitError> {
    let mut events: Events = Box::pin(BodyDataStream::new(body).eventsource());
    let mut held = Vec::new();
    loop {
        let event = match timeout_at(first_byte_deadline, events.next()).await {
            Err(_) => return Err(CommitError::Timeout),
            Ok(None) => return Err(CommitError::Broken("stream ended before any content".into())),
            Ok(Some(Err(e))) => return Err(CommitError::Broken(format!("stream broke: {e}"))),
            Ok(Some(Ok(event))) => event,
        };
        let kind = classify(&event);
        if let EventKind::Error(message) = kind {
            return Err(CommitError::Broken(format!("upstream sent an error event: {message}")));
        }
        held.push(encode(&event));
        let done_seen = matches!(kind, EventKind::Done);
        if !matches!(kind, EventKind::Preamble) || held.len() >= MAX_HELD_EVENTS {
            return Ok(Committed { held, done_seen, events });
        }
    }
}

impl Committed {
    /// The client-facing body: held events first, then the rest as they arrive. A stream that
    /// breaks, ends without `[DONE]`, or passes `deadline` ends with an error event.
    pub fn into_body(self, upstream: String, deadline: Instant) -> Body {
        let state = Relay {
            held: self.held.into_iter(),
            events: Some(self.events),
            done_seen: self.done_seen,
            upstream,
            deadline,
        };
        let frames = futures_util::stream::unfold(state, |mut relay| async move {
            let bytes = relay.next().await?;
            Some((Ok::<_, BoxError>(Frame::data(bytes)), relay))
        });
        StreamBody::new(frames).boxed_unsync()
    }
}

struct Relay {
    held: std::vec::IntoIter<Bytes>,
    /// `None` once the upstream stream is finished, one way or another.
    events: Option<Events>,
    done_seen: bool,
    upstream: String,
    deadline: Instant,
}

impl Relay {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(bytes) = self.held.next() {
            return Some(bytes);
        }
        let events = self.events.as_mut()?;
        let failure = match timeout_at(self.deadline, events.next()).await {
            Ok(Some(Ok(event))) => {
                self.done_seen |= event.data == "[DONE]";
                return Some(encode(&event));
            }
            Ok(None) if self.done_seen => None,
            Ok(None) => Some("the upstream closed the stream before [DONE]".to_string()),
            Ok(Some(Err(e))) => Some(format!("the upstream stream broke: {e}")),
            Err(_) => Some("the stream exceeded the upstream's total timeout".to_string()),
        };
        self.events = None;
        let reason = failure?;
        tracing::warn!(upstream = %self.upstream, "stream interrupted after commit: {reason}");
        let error = ProxyError::StreamInterrupted { upstream: self.upstream.clone(), reason };
        Some(Bytes::from(format!("data: {}\n\n", error.to_json())))
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
    let data = event.data.trim();
    if data == "[DONE]" {
        return EventKind::Done;
    }
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

/// Re-encodes one event in SSE wire format.
fn encode(event: &Event) -> Bytes {
    let mut out = String::with_capacity(event.data.len() + 16);
    if !event.event.is_empty() && event.event != "message" {
        out.push_str("event: ");
        out.push_str(&event.event);
        out.push('\n');
    }
    if !event.id.is_empty() {
        out.push_str("id: ");
        out.push_str(&event.id);
        out.push('\n');
    }
    for line in event.data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
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
    fn multi_line_data_round_trips() {
        assert_eq!(encode(&event("a\nb")), Bytes::from("data: a\ndata: b\n\n"));
    }
}
