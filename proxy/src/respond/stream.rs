//! The response phase for streams: each SSE chunk that carries text or a finish reason is shown to
//! the watching plugins, and their answer (pass, replace, hold, abort, escalate) becomes the
//! chunks the client receives. Chunks without text (role preambles, usage) pass untouched.

use std::collections::BTreeSet;

use bytes::Bytes;
use eventsource_stream::Event;
use serde_json::{Value, json};

use crate::error::ProxyError;
use crate::plugin::{Delta, ErrorReply, Escalation, EventOutcome, ResponseWatch, StreamEvent};
use crate::wire::chunks::{self, reshape, text_of};
use crate::wire::{self, error_body};

/// Why the plugins stopped a stream.
#[derive(Debug)]
pub enum StreamStop {
    /// A plugin aborted: end with this error (as the answer, if nothing was committed yet).
    Abort(ErrorReply),
    /// A plugin asked to run the request on another upstream (only before commit).
    Escalate(Escalation),
    /// A fail-closed watcher failed.
    Refuse(ProxyError),
}

impl StreamStop {
    /// The error as the stream's last SSE event, for a stream already committed.
    pub fn error_event(&self) -> Bytes {
        let error = match self {
            StreamStop::Abort(reply) => error_body(&reply.message, &reply.kind, None, None),
            StreamStop::Refuse(error) => error.to_json(),
            StreamStop::Escalate(_) => {
                ProxyError::Internal("escalation after commit".into()).to_json()
            }
        };
        wire::sse_data(error)
    }

    /// The answer for a stop before anything was committed, or the escalation to run.
    pub fn before_commit(self) -> Result<http::Response<crate::body::Body>, Escalation> {
        match self {
            StreamStop::Escalate(escalation) => Err(escalation),
            StreamStop::Abort(reply) => {
                Ok(wire::reply_response(crate::plugin::Reply::Error(reply), false, None))
            }
            StreamStop::Refuse(error) => Ok(error.into_response()),
        }
    }
}

/// The watching plugins of one streamed response.
pub struct StreamPhase {
    watch: ResponseWatch,
    seq: u32,
    /// The last chunk seen, so text flushed at the end is shaped like the stream's own chunks.
    template: Option<Value>,
    /// Tool-call choices whose arguments the plugins have seen and whose choice has not finished.
    open_tool_calls: BTreeSet<u32>,
    /// Choices whose finish reason went by: text for them after that is dropped.
    finished: BTreeSet<u32>,
}

/// Stream events whose `choice` has this bit carry a fragment of a tool call's arguments:
/// `choice = TOOL_CALL_CHOICE + 256 * c + j` for `choices[c].delta.tool_calls[j]` (c below
/// 2^23, j below 256; other fragments are not shown). A plugin keeps them apart from the choices'
/// text like any other choice, and its deltas for them go back into the arguments. The event that
/// ends choice `c` also ends its tool calls (with the same finish reason).
pub const TOOL_CALL_CHOICE: u32 = 1 << 31;

/// The stream-event choice of tool call `j` of choice `c`, if it fits the encoding.
fn tool_call_choice(c: u32, j: u64) -> Option<u32> {
    (c < 1 << 23 && j < 256).then(|| TOOL_CALL_CHOICE + (c << 8) + j as u32)
}

/// For a tool-call choice, the choice it belongs to.
fn owner(choice: u32) -> Option<u32> {
    (choice & TOOL_CALL_CHOICE != 0).then_some((choice & !TOOL_CALL_CHOICE) >> 8)
}

fn has_fragments(choice: &Value) -> bool {
    choice["delta"]["tool_calls"].as_array().is_some_and(|calls| {
        calls.iter().any(|c| c["function"]["arguments"].as_str().is_some_and(|a| !a.is_empty()))
    })
}

fn sse(chunk: &Value) -> Bytes {
    wire::sse_data(chunk)
}

/// A chunk that carries only `d`'s text as its tool call's argument fragment.
fn tool_chunk(template: &Value, d: &Delta) -> Bytes {
    chunks::tool_call_chunk(template, owner(d.choice).unwrap_or(0), d.choice & 0xff, &d.text)
}

impl StreamPhase {
    /// `None` when no plugin watches, so the relay skips all of this.
    pub fn new(watch: ResponseWatch) -> Option<Self> {
        (!watch.is_empty()).then_some(Self {
            watch,
            seq: 0,
            template: None,
            open_tool_calls: BTreeSet::new(),
            finished: BTreeSet::new(),
        })
    }

    /// Gives the plugins back, for the next attempt after this stream failed before commit.
    pub fn into_watch(self) -> ResponseWatch {
        self.watch
    }

    /// Runs a chunk through the plugins. `Ok(None)`: not a text chunk, send it as it came.
    /// `Ok(Some(chunks))`: send these instead (none while a plugin holds text back). A chunk
    /// that carries several choices goes through the plugins one choice at a time.
    pub async fn event(
        &mut self,
        event: &Event,
        committed: bool,
    ) -> Result<Option<Vec<Bytes>>, StreamStop> {
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else { return Ok(None) };
        let count = chunk["choices"].as_array().map_or(0, Vec::len);
        if count <= 1 {
            return self.one(chunk, committed).await;
        }
        let mut out = Vec::new();
        let mut changed = false;
        for k in 0..count {
            let mut single = chunk.clone();
            single["choices"] = json!([chunk["choices"][k].clone()]);
            if k + 1 < count {
                // Usage, if any, stays with the last choice's chunk.
                if let Some(map) = single.as_object_mut() {
                    map.remove("usage");
                }
            }
            match self.one(single.clone(), committed).await? {
                None => out.push(sse(&single)),
                Some(chunks) => {
                    changed = true;
                    out.extend(chunks);
                }
            }
        }
        Ok(changed.then_some(out))
    }

    /// [`Self::event`] for a chunk with at most one choice: its tool-call argument fragments
    /// first (each as the event of a tool-call choice, see [`TOOL_CALL_CHOICE`]), then its text.
    async fn one(
        &mut self,
        mut chunk: Value,
        committed: bool,
    ) -> Result<Option<Vec<Bytes>>, StreamStop> {
        let Some(choice) = chunk["choices"].get(0) else { return Ok(None) };
        let index = choice["index"].as_u64().unwrap_or(0) as u32;
        let finish_reason = choice["finish_reason"].as_str().map(str::to_string);
        if self.finished.contains(&index)
            && (text_of(choice).is_some_and(|t| !t.is_empty()) || has_fragments(choice))
        {
            // Text after the choice's finish reason: no client expects it, and the watchers have
            // flushed that choice, so it would pass unseen by what they held (found by fuzzing:
            // `blue`, a finish, then `bird` reached the client as the deny-word `bluebird`).
            return Ok(Some(Vec::new()));
        }
        if finish_reason.is_some() && has_fragments(choice) {
            // Fragments, then the finish reason: held argument text is flushed in between.
            let mut finish = chunk.clone();
            finish["choices"][0]["delta"] = json!({});
            chunk["choices"][0]["finish_reason"] = Value::Null;
            // Each half has no fragments and a finish reason, or fragments and none: no deeper
            // recursion than this one level (boxed, as async recursion must be).
            let mut out = Box::pin(self.one(chunk.clone(), committed)).await?;
            let last = Box::pin(self.one(finish.clone(), committed)).await?;
            if out.is_none() && last.is_none() {
                return Ok(None);
            }
            let first = out.take().unwrap_or_else(|| vec![sse(&chunk)]);
            return Ok(Some([first, last.unwrap_or_else(|| vec![sse(&finish)])].concat()));
        }
        let mut out = Vec::new();
        let fragments_changed = self.fragments(&mut chunk, index, committed).await?;
        if let Some(reason) = &finish_reason {
            out.extend(self.close_tool_calls(&chunk, index, reason, committed).await?);
        }
        let choice = &chunk["choices"][0];
        let text = text_of(choice).unwrap_or_default().to_string();
        let shown = !text.is_empty() || finish_reason.is_some();
        if finish_reason.is_some() {
            self.finished.insert(index);
        }
        let outcome = if shown {
            let input =
                StreamEvent { seq: self.seq, committed, choice: index, text, finish_reason };
            self.seq += 1;
            self.watch.on_event(input).await
        } else {
            EventOutcome::Pass
        };
        match outcome {
            EventOutcome::Pass if out.is_empty() && !fragments_changed => {
                if shown {
                    self.template = Some(chunk);
                }
                return Ok(None);
            }
            EventOutcome::Pass => out.push(sse(&chunk)),
            EventOutcome::Emit(deltas) => out.extend(self.emit(&chunk, &deltas)),
            other => return Err(stop(other)),
        }
        self.template = Some(chunk);
        Ok(Some(out))
    }

    /// Shows each `delta.tool_calls[j].function.arguments` fragment of choice `index` to the
    /// plugins and writes back what they emit; true when a fragment changed.
    async fn fragments(
        &mut self,
        chunk: &mut Value,
        index: u32,
        committed: bool,
    ) -> Result<bool, StreamStop> {
        // `pointer_mut`, not `chunk[..][..]`: indexing a number panics, indexing a null inserts.
        let Some(calls) =
            chunk.pointer_mut("/choices/0/delta/tool_calls").and_then(Value::as_array_mut)
        else {
            return Ok(false);
        };
        let mut changed = false;
        for call in calls {
            let Some(choice) = tool_call_choice(index, call["index"].as_u64().unwrap_or(0)) else {
                continue;
            };
            let Some(text) = call["function"]["arguments"].as_str().filter(|t| !t.is_empty())
            else {
                continue;
            };
            let input = StreamEvent {
                seq: self.seq,
                committed,
                choice,
                text: text.to_string(),
                finish_reason: None,
            };
            self.seq += 1;
            self.open_tool_calls.insert(choice);
            match self.watch.on_event(input).await {
                EventOutcome::Pass => {}
                EventOutcome::Emit(deltas) => {
                    let text: String = deltas
                        .iter()
                        .filter(|d| d.choice == choice)
                        .map(|d| d.text.as_str())
                        .collect();
                    call["function"]["arguments"] = json!(text);
                    changed = true;
                }
                other => return Err(stop(other)),
            }
        }
        Ok(changed)
    }

    /// Choice `index` finished: its tool calls' arguments end too, so what the plugins hold of
    /// them is flushed (as tool-call chunks) before the finish reason goes out.
    async fn close_tool_calls(
        &mut self,
        chunk: &Value,
        index: u32,
        reason: &str,
        committed: bool,
    ) -> Result<Vec<Bytes>, StreamStop> {
        let open: Vec<u32> =
            self.open_tool_calls.iter().copied().filter(|c| owner(*c) == Some(index)).collect();
        let mut out = Vec::new();
        // The finish reason goes out with the choice's own event, after these.
        let mut plain = chunk.clone();
        plain["choices"][0]["finish_reason"] = Value::Null;
        for choice in open {
            self.open_tool_calls.remove(&choice);
            let input = StreamEvent {
                seq: self.seq,
                committed,
                choice,
                text: String::new(),
                finish_reason: Some(reason.to_string()),
            };
            self.seq += 1;
            match self.watch.on_event(input).await {
                EventOutcome::Pass => {}
                EventOutcome::Emit(deltas) => out.extend(self.emit(&plain, &deltas)),
                other => return Err(stop(other)),
            }
        }
        Ok(out)
    }

    /// Chunks for what the plugins emitted: text deltas shaped like `chunk`, deltas of tool-call
    /// choices as argument fragments of their tool call.
    fn emit(&self, chunk: &Value, deltas: &[Delta]) -> Vec<Bytes> {
        let (tools, texts): (Vec<&Delta>, Vec<&Delta>) =
            deltas.iter().partition(|d| owner(d.choice).is_some());
        let texts: Vec<Delta> = texts.into_iter().cloned().collect();
        let mut out: Vec<Bytes> = tools
            .into_iter()
            .filter(|d| !d.text.is_empty())
            .map(|d| tool_chunk(chunk, d))
            .collect();
        // Text last: it carries the finish reason, if any.
        out.extend(reshape(chunk, &texts));
        out
    }

    /// The upstream stream ended (`[DONE]`): what the plugins held back, as chunks.
    pub async fn end(&mut self) -> Result<Vec<Bytes>, StreamStop> {
        match self.watch.on_stream_end().await {
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
                Ok(self.emit(&plain, &deltas))
            }
            other => Err(stop(other)),
        }
    }
}

fn stop(outcome: EventOutcome) -> StreamStop {
    match outcome {
        EventOutcome::Abort { reply, .. } => StreamStop::Abort(reply),
        EventOutcome::Escalate { escalation, .. } => StreamStop::Escalate(escalation),
        EventOutcome::Refuse(failure) => StreamStop::Refuse(ProxyError::PluginRefused {
            status: failure.http_status(),
            message: failure.public_message(),
        }),
        EventOutcome::Pass | EventOutcome::Emit(_) => {
            StreamStop::Refuse(ProxyError::Internal("unexpected plugin outcome".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_choices_encode_choice_and_call() {
        let v = tool_call_choice(3, 2).unwrap();
        assert_eq!(v, TOOL_CALL_CHOICE + 3 * 256 + 2);
        assert_eq!(owner(v), Some(3));
        assert_eq!(owner(3), None, "a plain choice");
        assert_eq!(tool_call_choice(1 << 23, 0), None, "choice too large to encode");
        assert_eq!(tool_call_choice(0, 256), None, "tool call index too large to encode");
    }
}
