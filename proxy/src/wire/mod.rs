//! OpenAI's wire shapes, in one place: the error object, SSE framing (parsing an upstream's
//! events, encoding the client's), completion and chunk JSON, and a plugin's reply as a response.
//!
//! Everything the proxy writes to a client in OpenAI's format is built here, so an error looks the
//! same whether it is a 4xx body, a plugin's answer or a stream's last event.

pub mod chunks;
pub mod framing;
pub mod reply;

use std::pin::Pin;

use bytes::Bytes;
use eventsource_stream::Event;
use futures_util::Stream;
use http_body_util::BodyExt;
use serde_json::{Value, json};

pub use reply::reply_response;

/// OpenAI's error object, `{"error": {"message", "type", "param", "code"}}`: every error the
/// proxy sends (as a body or as a stream's last event) is built here, its own or a plugin's.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// One SSE event carrying `data` (a JSON value or text without line breaks).
pub fn sse_data(data: impl std::fmt::Display) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// The end of a stream, in its one canonical form.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Whether `event` ends the stream: `[DONE]`, also with whitespace around it (an extra empty
/// `data:` line, a trailing space). Every check uses this one, and [`encode`] sends it to the
/// client as exactly `data: [DONE]`, so the proxy and the client agree on where a stream ended
/// (found by fuzzing: `data\ndata: [DONE]` counted as the end here, reached the client as the
/// data `\n[DONE]`, which clients do not recognise, and was recorded for the cache as an event).
pub fn is_done(event: &Event) -> bool {
    event.data.trim() == "[DONE]"
}

/// Re-encodes one event in SSE wire format; the end of the stream as [`DONE`].
pub fn encode(event: &Event) -> Bytes {
    if is_done(event) {
        return Bytes::from_static(DONE);
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

/// Stored events (their `data`), followed by `[DONE]`: a cached stream, replayed.
pub fn replayed(data: Vec<String>) -> Events {
    let event =
        |data: String| Event { event: "message".into(), data, id: String::new(), retry: None };
    let all = data.into_iter().chain(std::iter::once("[DONE]".to_string()));
    Box::pin(futures_util::stream::iter(all.map(move |d| Ok(event(d)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Event {
        Event { event: "message".into(), data: data.into(), id: String::new(), retry: None }
    }

    #[test]
    fn a_done_with_whitespace_ends_the_stream_and_reaches_the_client_canonical() {
        for data in ["\n[DONE]", "[DONE] ", "[DONE]"] {
            assert!(is_done(&event(data)), "{data:?}");
            assert_eq!(encode(&event(data)), Bytes::from_static(DONE), "{data:?}");
        }
    }

    #[test]
    fn multi_line_data_round_trips() {
        assert_eq!(encode(&event("a\nb")), Bytes::from("data: a\ndata: b\n\n"));
    }

    #[test]
    fn named_events_keep_their_name_and_id() {
        let mut named = event("x");
        named.event = "ping".into();
        named.id = "7".into();
        assert_eq!(encode(&named), Bytes::from("event: ping\nid: 7\ndata: x\n\n"));
    }
}
