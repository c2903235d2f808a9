//! Server-sent events from upstreams: holding a stream back until its first content event (so a
//! stream that fails early can still fall back), then relaying it event by event, and ending a
//! stream that breaks after commit with an OpenAI-shaped error event rather than a silent cut.
//!
//! Framing is parsed by [`framing`], with a cap on one event's size; events are re-encoded one by
//! one as they arrive. A cached stream is replayed through the same path (see [`replayed`]), and a
//! cacheable stream is recorded as it is relayed, then stored when it ends cleanly.

pub mod framing;

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use eventsource_stream::Event;
use futures_util::{Stream, StreamExt};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::time::{Instant, timeout_at};

use crate::body::{Body, BoxError};
use crate::cache::Recorder;
use crate::error::ProxyError;
use crate::plugin::ResponseWatch;
use crate::stream_phase::{StreamPhase, StreamStop};

/// Events buffered before commit at most; past this the stream is committed anyway so a chatty
/// upstream cannot make the proxy hold unbounded data.
const MAX_HELD_EVENTS: usize = 64;

/// A stream of parsed events; errors are already described for logs.
pub type Events = Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// The events of an upstream's SSE body. An event larger than `max_event_bytes` ends the stream
/// with an error, and the upstream body is dropped (closing its connection) at once.
/// Generic over the body so that the fuzz target feeds it the same way (`hyper`'s `Incoming` in
/// the proxy).
pub fn upstream_events<B>(body: B, max_event_bytes: usize) -> Events
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    struct Source<B> {
        /// `None` once the body ended or failed: dropping it closes the upstream connection.
        body: Option<B>,
        framer: framing::Framer,
        /// Reported after the events that came before it.
        failed: Option<String>,
    }
    let source =
        Source { body: Some(body), framer: framing::Framer::new(max_event_bytes), failed: None };
    Box::pin(futures_util::stream::unfold(source, |mut source| async move {
        loop {
            if let Some(event) = source.framer.next_event() {
                return Some((Ok(event), source));
            }
            if let Some(failed) = source.failed.take() {
                return Some((Err(failed), source));
            }
            // An event left without its closing blank line is dropped, as the SSE spec says.
            let failed = match source.body.as_mut()?.frame().await? {
                Err(e) => e.to_string(),
                Ok(frame) => match frame.into_data().map(|data| source.framer.feed(&data)) {
                    Ok(Err(too_large)) => too_large.to_string(),
                    Ok(Ok(())) | Err(_) => continue,
                },
            };
            source.body = None;
            source.failed = Some(failed);
        }
    }))
}

/// A stored stream's events (their `data`), followed by `[DONE]`.
pub fn replayed(data: Vec<String>) -> Events {
    let event =
        |data: String| Event { event: "message".into(), data, id: String::new(), retry: None };
    let all = data.into_iter().chain(std::iter::once("[DONE]".to_string()));
    Box::pin(futures_util::stream::iter(all.map(move |d| Ok(event(d)))))
}

/// Why a stream could not be committed; the first two are reasons to try the next upstream.
#[derive(Debug)]
pub enum CommitError {
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
    recorder: Option<Recorder>,
}

/// Reads events until the first one with content (or `[DONE]`), holding them back. With watching
/// plugins, content counts once the plugins let some of it through: text they hold back keeps the
/// stream uncommitted, so they can still escalate.
/// `recorder`, when given, sees every upstream event (before the plugins) for the cache.
pub async fn commit(
    mut events: Events,
    first_byte_deadline: Instant,
    watch: &mut ResponseWatch,
    mut recorder: Option<Recorder>,
) -> Result<Committed, CommitError> {
    let mut phase = StreamPhase::new(std::mem::take(watch));
    let mut held = VecDeque::new();
    let result = loop {
        let event = match timeout_at(first_byte_deadline, events.next()).await {
            Err(_) => break Err(CommitError::Timeout),
            Ok(None) => break Err(CommitError::Broken("stream ended before any content".into())),
            Ok(Some(Err(e))) => break Err(CommitError::Broken(format!("stream broke: {e}"))),
            Ok(Some(Ok(event))) => event,
        };
        record(&mut recorder, &event);
        let kind = classify(&event);
        let out = match (&kind, phase.as_mut()) {
            (EventKind::Error(message), _) => {
                break Err(CommitError::Broken(format!("upstream sent an error event: {message}")));
            }
            (EventKind::Preamble, _) | (_, None) => vec![encode(&event)],
            (EventKind::Done, Some(phase)) => match phase.end().await {
                Ok(mut flushed) => {
                    flushed.push(encode(&event));
                    flushed
                }
                Err(stop) => break Err(CommitError::Stopped(stop)),
            },
            (EventKind::Content, Some(phase)) => match phase.event(&event, false).await {
                Ok(None) => vec![encode(&event)],
                Ok(Some(chunks)) => chunks,
                Err(stop) => break Err(CommitError::Stopped(stop)),
            },
        };
        let carries_content = kind != EventKind::Preamble && !out.is_empty();
        held.extend(out);
        if carries_content || held.len() >= MAX_HELD_EVENTS {
            let done_seen = kind == EventKind::Done;
            break Ok(Committed { held, done_seen, events, phase: None, recorder: None });
        }
    };
    // Plugins stay with the request: a committed stream relays through them, a failed attempt
    // hands them to the next upstream (or the escalation).
    match result {
        Ok(mut committed) => {
            committed.phase = phase;
            committed.recorder = recorder;
            Ok(committed)
        }
        Err(error) => {
            if let Some(phase) = phase {
                *watch = phase.into_watch();
            }
            Err(error)
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
            recorder: self.recorder,
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
    recorder: Option<Recorder>,
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
                    if let Some(recorder) = self.recorder.take() {
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
            return Some(Bytes::from(format!("data: {}\n\n", error.to_json())));
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
        record(&mut self.recorder, event);
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

/// Feeds one upstream event to the cache recorder; a stream too large to cache stops recording.
fn record(recorder: &mut Option<Recorder>, event: &Event) {
    if let Some(r) = recorder.as_mut()
        && !is_done(event)
        && !r.record(&event.data)
    {
        *recorder = None;
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

/// Whether `event` ends the stream: `[DONE]`, also with whitespace around it (an extra empty
/// `data:` line, a trailing space). Every check uses this one, and [`encode`] sends it to the
/// client as exactly `data: [DONE]`, so the proxy and the client agree on where a stream ended
/// (found by fuzzing: `data\ndata: [DONE]` counted as the end here, reached the client as the
/// data `\n[DONE]`, which clients do not recognise, and was recorded for the cache as an event).
fn is_done(event: &Event) -> bool {
    event.data.trim() == "[DONE]"
}

/// Re-encodes one event in SSE wire format; the end of the stream in its one canonical form.
fn encode(event: &Event) -> Bytes {
    if is_done(event) {
        return Bytes::from_static(b"data: [DONE]\n\n");
    }
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
    fn a_done_with_whitespace_ends_the_stream_and_reaches_the_client_canonical() {
        for data in ["\n[DONE]", "[DONE] ", "[DONE]"] {
            assert_eq!(classify(&event(data)), EventKind::Done, "{data:?}");
            assert_eq!(encode(&event(data)), Bytes::from("data: [DONE]\n\n"), "{data:?}");
        }
    }

    #[tokio::test]
    async fn nothing_after_done_reaches_the_client() {
        use http_body_util::BodyExt;
        let upstream = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n\
                        data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
        let body = http_body_util::Full::new(Bytes::from(upstream));
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let mut watch = ResponseWatch::default();
        let events = upstream_events(body, 1024);
        let committed = commit(events, far, &mut watch, None).await.ok().unwrap();
        let out = committed.into_body("up".into(), far).collect().await.unwrap().to_bytes();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n") && !text.contains("\"b\""), "{text}");
    }

    #[test]
    fn multi_line_data_round_trips() {
        assert_eq!(encode(&event("a\nb")), Bytes::from("data: a\ndata: b\n\n"));
    }
}
