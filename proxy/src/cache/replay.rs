//! Serving a cache hit: the stored answer in the client's format (a stored stream as one JSON body
//! for a non-streaming client, a stored JSON body as SSE for a streaming one), run through the
//! watching plugins again exactly like a fresh answer, so placeholders are restored with the
//! current request's values.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{Cached, CachedBody};
use crate::body::{self, Body};
use crate::phases::{self, WholeOutcome};
use crate::plugin::{Escalation, ResponseWatch};
use crate::sse::{self, CommitError};

/// A replayed stream gets this long to be read by the client.
const REPLAY_DEADLINE: Duration = Duration::from_secs(300);

/// What became of a hit.
pub enum Replayed {
    Answer(Response<Body>),
    /// A watching plugin rejected the stored answer and asked for another upstream.
    Escalate(Escalation),
    /// The entry cannot be shown in the client's format (e.g. streamed tool calls to a
    /// non-streaming client); treat as a miss.
    Unusable,
}

/// Serves `entry` to a client that asked for a stream or not.
pub async fn serve(entry: &Cached, stream: bool, watch: &mut ResponseWatch) -> Replayed {
    if stream {
        let Some(events) = as_events(&entry.body) else { return Replayed::Unusable };
        let far = Instant::now() + REPLAY_DEADLINE;
        match sse::commit(sse::replayed(events), far, watch, None).await {
            Ok(committed) => {
                let body = committed.into_body(entry.upstream.clone(), far);
                let mut response = Response::new(body);
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                Replayed::Answer(response)
            }
            Err(CommitError::Stopped(stop)) => match stop.before_commit() {
                Ok(response) => Replayed::Answer(response),
                Err(escalation) => Replayed::Escalate(escalation),
            },
            Err(CommitError::Timeout | CommitError::Broken(_)) => Replayed::Unusable,
        }
    } else {
        let Some(json) = as_json(&entry.body) else { return Replayed::Unusable };
        let bytes = if watch.is_empty() {
            json
        } else {
            match phases::on_whole_response(watch, &entry.upstream, 200, json).await {
                WholeOutcome::Send(bytes) => bytes,
                WholeOutcome::Answer(response) => return Replayed::Answer(response),
                WholeOutcome::Escalate(escalation) => return Replayed::Escalate(escalation),
            }
        };
        let mut response = Response::new(body::full(bytes));
        *response.status_mut() = StatusCode::OK;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Replayed::Answer(response)
    }
}

/// The entry as SSE event data: stored events as they are, a stored completion as chunks (one
/// with each choice's whole text, one with its finish reason).
pub fn as_events(body: &CachedBody) -> Option<Vec<String>> {
    let json = match body {
        CachedBody::Events(events) => return Some(events.clone()),
        CachedBody::Json(json) => serde_json::from_slice::<Value>(json).ok()?,
    };
    let chat = json["object"] == "chat.completion";
    let object = if chat { "chat.completion.chunk" } else { "text_completion" };
    let head = |choices: Vec<Value>| {
        json!({"id": json["id"], "object": object, "created": json["created"],
            "model": json["model"], "choices": choices})
    };
    let mut texts = Vec::new();
    let mut ends = Vec::new();
    for (i, choice) in json["choices"].as_array()?.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or(json!(i));
        let finish = choice["finish_reason"].clone();
        if chat {
            let message = choice.get("message")?;
            if message.get("tool_calls").is_some_and(|t| !t.is_null()) {
                return None;
            }
            let delta = json!({"role": "assistant", "content": message["content"]});
            texts.push(json!({"index": index, "delta": delta, "finish_reason": null}));
            ends.push(json!({"index": index, "delta": {}, "finish_reason": finish}));
        } else {
            texts.push(json!({"index": index, "text": choice["text"], "finish_reason": null}));
            ends.push(json!({"index": index, "text": "", "finish_reason": finish}));
        }
    }
    let mut events = vec![head(texts).to_string(), head(ends).to_string()];
    if let Some(usage) = json.get("usage").filter(|u| !u.is_null()) {
        let mut last = head(Vec::new());
        last["usage"] = usage.clone();
        events.push(last.to_string());
    }
    Some(events)
}

/// The entry as one JSON body: a stored body as it is, a stored stream assembled into the
/// completion it describes (texts concatenated per choice, the last finish reason, usage).
pub fn as_json(body: &CachedBody) -> Option<Bytes> {
    let events = match body {
        CachedBody::Json(json) => return Some(json.clone()),
        CachedBody::Events(events) => events,
    };
    let mut first: Option<Value> = None;
    let mut choices: Vec<(String, Value)> = Vec::new();
    let mut usage = Value::Null;
    let mut chat = true;
    for data in events {
        let chunk: Value = serde_json::from_str(data).ok()?;
        chat &= chunk["object"] != "text_completion";
        if !chunk["usage"].is_null() {
            usage = chunk["usage"].clone();
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            if delta.get("tool_calls").is_some_and(|t| !t.is_null())
                || delta.get("function_call").is_some_and(|t| !t.is_null())
            {
                return None;
            }
            let index = usize::try_from(choice["index"].as_u64().unwrap_or(0)).ok()?;
            if index >= 128 {
                return None;
            }
            if choices.len() <= index {
                choices.resize(index + 1, (String::new(), Value::Null));
            }
            let text = delta["content"].as_str().or_else(|| choice["text"].as_str());
            choices[index].0.push_str(text.unwrap_or(""));
            if !choice["finish_reason"].is_null() {
                choices[index].1 = choice["finish_reason"].clone();
            }
        }
        first.get_or_insert(chunk);
    }
    let first = first?;
    let choices: Vec<Value> = choices
        .into_iter()
        .enumerate()
        .map(|(index, (text, finish))| {
            let mut choice = Map::new();
            choice.insert("index".into(), json!(index));
            if chat {
                choice.insert("message".into(), json!({"role": "assistant", "content": text}));
            } else {
                choice.insert("text".into(), json!(text));
            }
            choice.insert("finish_reason".into(), finish);
            Value::Object(choice)
        })
        .collect();
    let object = if chat { "chat.completion" } else { "text_completion" };
    let mut out = json!({"id": first["id"], "object": object, "created": first["created"],
        "model": first["model"], "choices": choices});
    if !usage.is_null() {
        out["usage"] = usage;
    }
    Some(Bytes::from(out.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str, finish: Value) -> String {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
        .to_string()
    }

    #[test]
    fn a_stream_assembles_into_a_completion_and_back() {
        let events =
            vec![chunk("Hel", Value::Null), chunk("lo", Value::Null), chunk("", json!("stop"))];
        let json = as_json(&CachedBody::Events(events)).unwrap();
        let value: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["object"], "chat.completion");
        assert_eq!(value["choices"][0]["message"]["content"], "Hello");
        assert_eq!(value["choices"][0]["finish_reason"], "stop");
        assert_eq!(value["model"], "m");

        let again = as_events(&CachedBody::Json(json)).unwrap();
        let text: Value = serde_json::from_str(&again[0]).unwrap();
        assert_eq!(text["choices"][0]["delta"]["content"], "Hello");
        let end: Value = serde_json::from_str(&again[1]).unwrap();
        assert_eq!(end["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn streamed_tool_calls_are_not_reassembled() {
        let call = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}}]});
        assert!(as_json(&CachedBody::Events(vec![call.to_string()])).is_none());
    }
}
