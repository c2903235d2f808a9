//! The response phase for streams: each SSE chunk that carries text or a finish reason is shown to
//! the watching plugins, and their answer (pass, replace, hold, abort, escalate) becomes the
//! chunks the client receives. Chunks without text (role preambles, usage) pass untouched.

use bytes::Bytes;
use eventsource_stream::Event;
use serde_json::{Map, Value, json};

use crate::error::ProxyError;
use crate::plugin::{Delta, ErrorReply, Escalation, EventOutcome, ResponseWatch, StreamEvent};

/// Why the plugins stopped a stream.
#[derive(Debug)]
pub enum Stop {
    /// A plugin aborted: end with this error (as the answer, if nothing was committed yet).
    Abort(ErrorReply),
    /// A plugin asked to run the request on another upstream (only before commit).
    Escalate(Escalation),
    /// A fail-closed watcher failed.
    Refuse(ProxyError),
}

impl Stop {
    /// The error as the stream's last SSE event, for a stream already committed.
    pub fn error_event(&self) -> Bytes {
        let error = match self {
            Stop::Abort(reply) => json!({"error": {"message": reply.message, "type": reply.kind,
                                                   "param": null, "code": null}}),
            Stop::Refuse(error) => error.to_json(),
            Stop::Escalate(_) => ProxyError::Internal("escalation after commit".into()).to_json(),
        };
        Bytes::from(format!("data: {error}\n\n"))
    }

    /// The answer for a stop before anything was committed, or the escalation to run.
    pub fn before_commit(self) -> Result<http::Response<crate::body::Body>, Escalation> {
        match self {
            Stop::Escalate(escalation) => Err(escalation),
            Stop::Abort(reply) => {
                Ok(crate::phases::reply_response(crate::plugin::Reply::Error(reply), false, None))
            }
            Stop::Refuse(error) => Ok(error.into_response()),
        }
    }
}

/// The watching plugins of one streamed response.
pub struct StreamPhase {
    watch: ResponseWatch,
    seq: u32,
    /// The last chunk seen, so text flushed at the end is shaped like the stream's own chunks.
    template: Option<Value>,
}

impl StreamPhase {
    /// `None` when no plugin watches, so the relay skips all of this.
    pub fn new(watch: ResponseWatch) -> Option<Self> {
        (!watch.is_empty()).then_some(Self { watch, seq: 0, template: None })
    }

    /// Gives the plugins back, for the next attempt after this stream failed before commit.
    pub fn into_watch(self) -> ResponseWatch {
        self.watch
    }

    /// Runs a chunk through the plugins. `Ok(None)`: not a text chunk, send it as it came.
    /// `Ok(Some(chunks))`: send these instead (none while a plugin holds text back).
    pub fn event(&mut self, event: &Event, committed: bool) -> Result<Option<Vec<Bytes>>, Stop> {
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else { return Ok(None) };
        let Some(choice) = chunk["choices"].get(0) else { return Ok(None) };
        let text = text_of(choice).unwrap_or_default().to_string();
        let finish_reason = choice["finish_reason"].as_str().map(str::to_string);
        if text.is_empty() && finish_reason.is_none() {
            return Ok(None);
        }
        let index = choice["index"].as_u64().unwrap_or(0) as u32;
        let input = StreamEvent { seq: self.seq, committed, choice: index, text, finish_reason };
        self.seq += 1;
        let outcome = self.watch.on_event(input);
        let out = match outcome {
            EventOutcome::Pass => None,
            EventOutcome::Emit(deltas) => Some(reshape(&chunk, &deltas)),
            other => return Err(stop(other)),
        };
        self.template = Some(chunk);
        Ok(out)
    }

    /// The upstream stream ended (`[DONE]`): what the plugins held back, as chunks.
    pub fn end(&mut self) -> Result<Vec<Bytes>, Stop> {
        match self.watch.on_stream_end() {
            EventOutcome::Pass => Ok(Vec::new()),
            EventOutcome::Emit(deltas) if deltas.is_empty() => Ok(Vec::new()),
            EventOutcome::Emit(deltas) => {
                let template = self.template.clone().unwrap_or_else(
                    || json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]}),
                );
                // Flushed text comes before the finish reason the plugins already let through.
                let mut plain = template;
                if let Some(choice) = plain
                    .get_mut("choices")
                    .and_then(|c| c.get_mut(0))
                    .and_then(Value::as_object_mut)
                {
                    choice.insert("finish_reason".into(), Value::Null);
                }
                Ok(reshape(&plain, &deltas))
            }
            other => Err(stop(other)),
        }
    }
}

fn stop(outcome: EventOutcome) -> Stop {
    match outcome {
        EventOutcome::Abort { reply, .. } => Stop::Abort(reply),
        EventOutcome::Escalate { escalation, .. } => Stop::Escalate(escalation),
        EventOutcome::Refuse(failure) => Stop::Refuse(ProxyError::PluginRefused {
            status: failure.http_status(),
            message: failure.public_message(),
        }),
        EventOutcome::Pass | EventOutcome::Emit(_) => {
            Stop::Refuse(ProxyError::Internal("unexpected plugin outcome".into()))
        }
    }
}

/// The text of a chunk's choice: `delta.content` for chat, `text` for completions.
fn text_of(choice: &Value) -> Option<&str> {
    choice["delta"]["content"].as_str().or_else(|| choice["text"].as_str())
}

/// The chunk again, once per delta, with the delta's text in place of the original. Other fields
/// of the first choice (role, tool calls) stay on the first chunk only, and the finish reason on
/// the last. With no deltas, only a finish reason (if any) is kept.
fn reshape(chunk: &Value, deltas: &[Delta]) -> Vec<Bytes> {
    let is_chat = chunk["choices"][0].get("delta").is_some();
    let finish = chunk["choices"][0]["finish_reason"].clone();
    if deltas.is_empty() {
        if finish.is_null() {
            return Vec::new();
        }
        return vec![with_text(chunk, 0, "", finish, is_chat, true)];
    }
    let last = deltas.len() - 1;
    deltas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let finish = if i == last { finish.clone() } else { Value::Null };
            with_text(chunk, d.choice, &d.text, finish, is_chat, i == 0)
        })
        .collect()
}

fn with_text(
    chunk: &Value,
    index: u32,
    text: &str,
    finish: Value,
    is_chat: bool,
    first: bool,
) -> Bytes {
    // Built through maps, never `value[key] = ...`: that panics when an upstream sent, say, a
    // number where an object belongs.
    let object = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
    let mut out = object(Some(chunk));
    let mut choice = object(chunk.get("choices").and_then(|c| c.get(0)));
    choice.insert("index".into(), json!(index));
    choice.insert("finish_reason".into(), finish);
    if is_chat {
        let mut delta = if first { object(choice.get("delta")) } else { Map::new() };
        delta.insert("content".into(), json!(text));
        choice.insert("delta".into(), Value::Object(delta));
    } else {
        choice.insert("text".into(), json!(text));
    }
    out.insert("choices".into(), json!([choice]));
    out.remove("usage");
    Bytes::from(format!("data: {}\n\n", Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str, finish: Value) -> Value {
        json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": finish}]})
    }

    fn data(bytes: &Bytes) -> Value {
        let text = std::str::from_utf8(bytes).unwrap();
        serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap()
    }

    #[test]
    fn replacing_keeps_shape_role_first_and_finish_last() {
        let deltas = [Delta { choice: 0, text: "a".into() }, Delta { choice: 0, text: "b".into() }];
        let out = reshape(&chunk("x", json!("stop")), &deltas);
        assert_eq!(out.len(), 2);
        let (first, second) = (data(&out[0]), data(&out[1]));
        assert_eq!(first["choices"][0]["delta"], json!({"role": "assistant", "content": "a"}));
        assert_eq!(first["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(second["choices"][0]["delta"], json!({"content": "b"}));
        assert_eq!(second["choices"][0]["finish_reason"], "stop");
        assert_eq!(second["id"], "c");
    }

    #[test]
    fn holding_everything_still_sends_the_finish_reason() {
        assert!(reshape(&chunk("x", Value::Null), &[]).is_empty());
        let out = reshape(&chunk("x", json!("length")), &[]);
        assert_eq!(data(&out[0])["choices"][0]["finish_reason"], "length");
        assert_eq!(data(&out[0])["choices"][0]["delta"]["content"], "");
    }

    #[test]
    fn completions_chunks_use_text() {
        let completion = json!({"choices": [{"index": 0, "text": "x", "finish_reason": null}]});
        let out = reshape(&completion, &[Delta { choice: 0, text: "y".into() }]);
        assert_eq!(data(&out[0])["choices"][0]["text"], "y");
    }
}
