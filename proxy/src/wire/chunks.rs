//! Completion and chunk JSON: chunks rebuilt around what watching plugins emitted, a whole
//! completion turned into chunks and back (cache hits in the other format), and the completion a
//! plugin answers with. Built through maps, never `value[key] = ...`, which panics when an
//! upstream sent, say, a number where an object belongs.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::plugin::Delta;

/// The text of a chunk's choice: `delta.content` for chat, `text` for completions.
pub fn text_of(choice: &Value) -> Option<&str> {
    choice["delta"]["content"].as_str().or_else(|| choice["text"].as_str())
}

/// A chunk shaped like `template` that carries only `text` as an argument fragment of tool call
/// `call` of choice `choice`.
pub fn tool_call_chunk(template: &Value, choice: u32, call: u32, text: &str) -> Bytes {
    let mut out = template.as_object().cloned().unwrap_or_default();
    out.insert(
        "choices".into(),
        json!([{"index": choice, "finish_reason": null,
            "delta": {"tool_calls": [{"index": call, "function": {"arguments": text}}]}}]),
    );
    out.remove("usage");
    super::sse_data(Value::Object(out))
}

/// The completion a plugin answers with itself: a chat completion, or its two chunks and
/// `[DONE]` for a streaming client.
pub fn plugin_completion(text: &str, model: Option<&str>, stream: bool) -> Bytes {
    if !stream {
        let body = json!({"id": "chatcmpl-switchyard", "object": "chat.completion", "created": 0,
            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}]});
        return Bytes::from(body.to_string());
    }
    let chunk = |delta: Value, finish: Value| {
        super::sse_data(json!({"id": "chatcmpl-switchyard", "object": "chat.completion.chunk",
            "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
    };
    let parts = [
        chunk(json!({"role": "assistant", "content": text}), Value::Null),
        chunk(json!({}), json!("stop")),
        Bytes::from_static(super::DONE),
    ];
    Bytes::from(parts.concat())
}

/// The chunk again, once per delta, with the delta's text in place of the original. Other fields
/// of the first choice (role, tool calls) stay on the first chunk only, and the finish reason on
/// the last. With no deltas, only a finish reason (if any) is kept.
pub fn reshape(chunk: &Value, deltas: &[Delta]) -> Vec<Bytes> {
    let is_chat = chunk["choices"][0].get("delta").is_some();
    let finish = chunk["choices"][0]["finish_reason"].clone();
    if deltas.is_empty() {
        if finish.is_null() {
            return Vec::new();
        }
        let own = chunk["choices"][0]["index"].as_u64().unwrap_or(0) as u32;
        return vec![with_text(chunk, own, "", finish, is_chat, true)];
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
    super::sse_data(Value::Object(out))
}

/// A whole completion as the data of stream chunks: one with each choice's whole text, one with
/// its finish reason, and one with the usage if there is any. `None` for what a stream cannot
/// carry this way (tool calls).
pub fn completion_to_chunks(body: &[u8]) -> Option<Vec<String>> {
    let json = serde_json::from_slice::<Value>(body).ok()?;
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

/// A stream's chunks (their data) assembled into the completion they describe: texts
/// concatenated per choice, the last finish reason, the usage. `None` for what one body cannot
/// say the same way (tool calls, a chunk that is not JSON, over 128 choices).
pub fn chunks_to_completion(events: &[String]) -> Option<Bytes> {
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

    fn stored(content: &str, finish: Value) -> String {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
        .to_string()
    }

    fn chunk(content: &str, finish: Value) -> Value {
        json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": finish}]})
    }

    fn data(bytes: &Bytes) -> Value {
        let text = std::str::from_utf8(bytes).unwrap();
        serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap()
    }

    #[test]
    fn a_stream_assembles_into_a_completion_and_back() {
        let events =
            vec![stored("Hel", Value::Null), stored("lo", Value::Null), stored("", json!("stop"))];
        let json = chunks_to_completion(&events).unwrap();
        let value: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["object"], "chat.completion");
        assert_eq!(value["choices"][0]["message"]["content"], "Hello");
        assert_eq!(value["choices"][0]["finish_reason"], "stop");
        assert_eq!(value["model"], "m");

        let again = completion_to_chunks(&json).unwrap();
        let text: Value = serde_json::from_str(&again[0]).unwrap();
        assert_eq!(text["choices"][0]["delta"]["content"], "Hello");
        let end: Value = serde_json::from_str(&again[1]).unwrap();
        assert_eq!(end["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn streamed_tool_calls_are_not_reassembled() {
        let call = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}}]});
        assert!(chunks_to_completion(&[call.to_string()]).is_none());
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
    fn a_held_choice_keeps_its_own_index_on_the_finish_chunk() {
        let mut second = chunk("x", json!("stop"));
        second["choices"][0]["index"] = json!(1);
        let out = reshape(&second, &[]);
        assert_eq!(data(&out[0])["choices"][0]["index"], 1);
    }

    #[test]
    fn completions_chunks_use_text() {
        let completion = json!({"choices": [{"index": 0, "text": "x", "finish_reason": null}]});
        let out = reshape(&completion, &[Delta { choice: 0, text: "y".into() }]);
        assert_eq!(data(&out[0])["choices"][0]["text"], "y");
    }

    #[test]
    fn a_tool_call_chunk_carries_only_its_fragment() {
        let out = tool_call_chunk(&chunk("x", json!("stop")), 3, 2, "ab");
        let c = &data(&out)["choices"][0];
        assert_eq!(c["index"], 3);
        assert_eq!(c["finish_reason"], Value::Null);
        assert_eq!(
            c["delta"],
            json!({"tool_calls": [{"index": 2, "function": {"arguments": "ab"}}]})
        );
        let odd = tool_call_chunk(&json!(7), 0, 0, "x");
        assert_eq!(data(&odd)["choices"][0]["index"], 0, "a template that is no object");
    }
}
