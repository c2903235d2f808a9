//! The plugin phases as the pipeline sees them: the parsed request handed to the chain as typed
//! data, the chain's text edits written back into the typed body, a plugin's early answer turned
//! into an HTTP response, and whole responses shown to the plugins that watch them. (Streams go
//! through `stream_phase`.)

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::plugin::{
    CachePolicy, Escalation, LlmRequest, LlmResponse, Message, PluginSet, Reply, RequestOutcome,
    ResponseOutcome, ResponseWatch, Route,
};
use crate::request::{ContentPart, MessageContent, ParsedRequest, RequestBody};

/// What the chain decided for a request that goes on to an upstream.
#[derive(Debug, Default)]
pub struct Forward {
    /// Overrides the default chain when set.
    pub route: Option<Route>,
    /// Added to the upstream request.
    pub add_headers: Vec<(HeaderName, HeaderValue)>,
    /// The merged cache directive (acted on by the response cache).
    pub cache: Option<CachePolicy>,
    /// Tags from every plugin, for logs and metrics.
    pub tags: Vec<(String, String)>,
    /// Plugins that watch the response; empty for most requests.
    pub watch: ResponseWatch,
}

/// The request phase's result.
pub enum RequestPhase {
    /// Send the (possibly edited) request upstream.
    Forward(Box<Forward>),
    /// A plugin answered; nothing is forwarded. Carries the plugin's name.
    Answer(Response<Body>, Arc<str>),
}

/// Runs the chain over `request`, writing its edits back into it.
pub async fn on_request(
    set: &PluginSet,
    request: &mut ParsedRequest,
    tenant: Option<&str>,
    headers: Vec<(String, String)>,
) -> Result<RequestPhase, ProxyError> {
    if set.is_empty() {
        return Ok(RequestPhase::Forward(Box::default()));
    }
    let outcome = set.on_request(to_plugin_request(request, tenant, headers)).await;
    match outcome {
        RequestOutcome::Refuse(failure) => Err(ProxyError::PluginRefused {
            status: failure.http_status(),
            message: failure.public_message(),
        }),
        RequestOutcome::Respond { plugin, reply, .. } => Ok(RequestPhase::Answer(
            reply_response(reply, request.stream(), request.model()),
            plugin,
        )),
        RequestOutcome::Proceed(proceed) => {
            let proceed = *proceed;
            apply_edits(request, &proceed.request.messages, &proceed.edited);
            let add_headers = proceed
                .add_headers
                .into_iter()
                .filter_map(|(name, value)| {
                    Some((HeaderName::try_from(name).ok()?, HeaderValue::try_from(value).ok()?))
                })
                .collect();
            Ok(RequestPhase::Forward(Box::new(Forward {
                route: proceed.route,
                add_headers,
                cache: Some(proceed.cache),
                tags: proceed.request.tags,
                watch: proceed.watch,
            })))
        }
    }
}

/// The typed request as plugins see it: one `message` per editable text.
fn to_plugin_request(
    request: &ParsedRequest,
    tenant: Option<&str>,
    headers: Vec<(String, String)>,
) -> LlmRequest {
    let (messages, params) = match &request.body {
        RequestBody::Chat(chat) => {
            let messages = chat
                .messages
                .iter()
                .map(|m| Message {
                    role: m.role.clone(),
                    content: content_text(m.content.as_ref()),
                })
                .collect();
            (messages, Ok(Value::Object(chat_params(chat))))
        }
        RequestBody::Completion(c) => {
            let mut params = c.clone();
            params.prompt = Value::Null;
            (texts("prompt", &c.prompt), serde_json::to_value(params))
        }
        RequestBody::Embedding(e) => {
            let mut params = e.clone();
            params.input = Value::Null;
            (texts("input", &e.input), serde_json::to_value(params))
        }
        RequestBody::Image(i) => {
            let mut params = i.clone();
            params.prompt.clear();
            (
                vec![Message { role: "prompt".into(), content: i.prompt.clone() }],
                serde_json::to_value(params),
            )
        }
    };
    let params_json = match params {
        Ok(Value::Object(mut map)) => {
            // The text fields travel as `messages`; leave no placeholder behind.
            for key in ["messages", "prompt", "input", "model", "stream"] {
                map.remove(key);
            }
            Value::Object(map).to_string()
        }
        _ => "{}".to_string(),
    };
    LlmRequest {
        endpoint: request.endpoint.path().to_string(),
        model: request.model().map(str::to_string),
        stream: request.stream(),
        messages,
        params_json,
        tenant: tenant.map(str::to_string),
        headers,
        tags: Vec::new(),
    }
}

/// A chat request's parameters (everything but model, stream and messages) as JSON, built
/// field by field: cloning the request to serialise it would copy every message too.
fn chat_params(chat: &crate::request::ChatRequest) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::with_capacity(chat.extra.len() + 6);
    let numbers = [
        ("temperature", chat.temperature.map(Value::from)),
        ("top_p", chat.top_p.map(Value::from)),
        ("n", chat.n.map(Value::from)),
        ("max_tokens", chat.max_tokens.map(Value::from)),
        ("seed", chat.seed.map(Value::from)),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            map.insert(key.to_string(), value);
        }
    }
    if let Some(stop) = chat.stop.as_ref().and_then(|s| serde_json::to_value(s).ok()) {
        map.insert("stop".to_string(), stop);
    }
    // Unknown fields are raw JSON in the request; plugins get them parsed.
    map.extend(
        chat.extra.iter().filter_map(|(k, v)| {
            Some((k.to_string(), serde_json::from_str::<Value>(v.get()).ok()?))
        }),
    );
    map
}

/// Text of a message: the string, or the concatenated text parts.
fn content_text(content: Option<&MessageContent>) -> String {
    match content {
        None => String::new(),
        Some(MessageContent::Text(text)) => text.clone(),
        Some(MessageContent::Parts(parts)) => {
            parts.iter().filter_map(|p| p.text.as_deref()).collect::<Vec<_>>().concat()
        }
    }
}

/// A prompt or input field: a string, or a list whose strings are each a message. Token-id
/// prompts carry no text and are not shown.
fn texts(role: &str, value: &Value) -> Vec<Message> {
    let one = |s: &str| Message { role: role.to_string(), content: s.to_string() };
    match value {
        Value::String(s) => vec![one(s)],
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(one).collect(),
        _ => Vec::new(),
    }
}

/// Writes edited texts back. A multi-part message's edited text goes into its first text part and
/// its other text parts are dropped, so the text the upstream sees is exactly the edited text.
fn apply_edits(request: &mut ParsedRequest, messages: &[Message], edited: &[bool]) {
    let changed: Vec<(usize, &str)> = edited
        .iter()
        .enumerate()
        .filter(|(_, e)| **e)
        .filter_map(|(i, _)| Some((i, messages.get(i)?.content.as_str())))
        .collect();
    if changed.is_empty() {
        return;
    }
    match &mut request.body {
        RequestBody::Chat(chat) => {
            for (i, text) in changed {
                if let Some(message) = chat.messages.get_mut(i) {
                    message.content = Some(match message.content.take() {
                        Some(MessageContent::Parts(parts)) => {
                            MessageContent::Parts(replace_parts(parts, text))
                        }
                        _ => MessageContent::Text(text.to_string()),
                    });
                }
            }
        }
        RequestBody::Completion(c) => write_texts(&mut c.prompt, &changed),
        RequestBody::Embedding(e) => write_texts(&mut e.input, &changed),
        RequestBody::Image(image) => {
            if let Some((0, text)) = changed.first() {
                image.prompt = text.to_string();
            }
        }
    }
    request.edited = true;
}

fn replace_parts(parts: Vec<ContentPart>, text: &str) -> Vec<ContentPart> {
    let mut placed = false;
    parts
        .into_iter()
        .filter_map(|mut part| {
            if part.text.is_none() {
                return Some(part);
            }
            if placed {
                return None;
            }
            placed = true;
            part.text = Some(text.to_string());
            Some(part)
        })
        .collect()
}

/// Mirrors [`texts`]: the i-th string of the field gets the i-th edited text.
fn write_texts(value: &mut Value, changed: &[(usize, &str)]) {
    match value {
        Value::String(s) => {
            if let Some((0, text)) = changed.first() {
                *s = text.to_string();
            }
        }
        Value::Array(items) => {
            let mut strings = items.iter_mut().filter(|v| v.is_string());
            let mut next = 0;
            for (index, text) in changed {
                if let Some(slot) = strings.nth(index - next) {
                    *slot = Value::String(text.to_string());
                }
                next = index + 1;
            }
        }
        _ => {}
    }
}

/// A plugin's answer as an HTTP response: errors in OpenAI's shape, completions as a chat
/// completion (SSE when the client streams), raw bodies as given.
pub fn reply_response(reply: Reply, stream: bool, model: Option<&str>) -> Response<Body> {
    match reply {
        Reply::Error(error) => {
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let value = json!({"error": {"message": error.message, "type": error.kind, "param": null, "code": null}});
            body::json(status, &value)
        }
        Reply::Completion(text) if stream => {
            let chunk = |delta: Value, finish: Value| {
                let chunk = json!({"id": "chatcmpl-switchyard", "object": "chat.completion.chunk",
                    "created": 0, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                format!("data: {chunk}\n\n")
            };
            let sse = [
                chunk(json!({"role": "assistant", "content": text}), Value::Null),
                chunk(json!({}), json!("stop")),
                "data: [DONE]\n\n".to_string(),
            ]
            .concat();
            let mut response = Response::new(body::full(sse));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            response
        }
        Reply::Completion(text) => body::json(
            StatusCode::OK,
            &json!({"id": "chatcmpl-switchyard", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}),
        ),
        Reply::Raw(raw) => {
            let mut response = Response::new(body::full(Bytes::from(raw.body)));
            *response.status_mut() = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::OK);
            if let Ok(value) = HeaderValue::try_from(raw.content_type) {
                response.headers_mut().insert(http::header::CONTENT_TYPE, value);
            }
            response
        }
    }
}

/// What the watching plugins made of a whole (non-streamed) response.
pub enum WholeOutcome {
    /// Send this body (the original bytes when no choice was edited).
    Send(Bytes),
    /// Answer with this instead (a plugin aborted, or a fail-closed watcher failed).
    Answer(Response<Body>),
    /// Run the request again on another upstream.
    Escalate(Escalation),
}

/// Shows a whole response to the watching plugins and applies their edits to its choice texts
/// (`message.content` for chat, `text` for completions).
pub fn on_whole_response(
    watch: &mut ResponseWatch,
    upstream: &str,
    status: u16,
    body: Bytes,
) -> WholeOutcome {
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        tracing::debug!(%upstream, "response is not JSON; watchers skipped");
        return WholeOutcome::Send(body);
    };
    let choices: Vec<String> = value["choices"]
        .as_array()
        .map(|choices| {
            choices.iter().map(|c| choice_text(c).unwrap_or_default().to_string()).collect()
        })
        .unwrap_or_default();
    let finish_reasons = value["choices"]
        .as_array()
        .map(|choices| {
            choices.iter().map(|c| c["finish_reason"].as_str().map(str::to_string)).collect()
        })
        .unwrap_or_default();
    let response = LlmResponse {
        upstream: upstream.to_string(),
        model: value["model"].as_str().map(str::to_string),
        status,
        choices,
        finish_reasons,
    };
    match watch.on_response(response) {
        ResponseOutcome::Send { choices, edited } => {
            if !edited.contains(&true) {
                return WholeOutcome::Send(body);
            }
            if let Some(slots) = value["choices"].as_array_mut() {
                for ((slot, text), changed) in slots.iter_mut().zip(choices).zip(edited) {
                    if changed {
                        set_choice_text(slot, text);
                    }
                }
            }
            WholeOutcome::Send(Bytes::from(value.to_string()))
        }
        ResponseOutcome::Abort { reply, .. } => {
            WholeOutcome::Answer(reply_response(Reply::Error(reply), false, None))
        }
        ResponseOutcome::Escalate { escalation, .. } => WholeOutcome::Escalate(escalation),
        ResponseOutcome::Refuse(failure) => WholeOutcome::Answer(
            ProxyError::PluginRefused {
                status: failure.http_status(),
                message: failure.public_message(),
            }
            .into_response(),
        ),
    }
}

fn choice_text(choice: &Value) -> Option<&str> {
    choice["message"]["content"].as_str().or_else(|| choice["text"].as_str())
}

fn set_choice_text(choice: &mut Value, text: String) {
    if choice.get("message").is_some() {
        choice["message"]["content"] = Value::String(text);
    } else {
        choice["text"] = Value::String(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Endpoint;

    #[test]
    fn plugins_get_every_parameter_but_the_text_fields() {
        let raw = r#"{"model":"m","stream":true,"temperature":0,"seed":7,"stop":["x"],
            "tools":[{"type":"function"}],"messages":[{"role":"user","content":"hi"}]}"#;
        let request = ParsedRequest::parse(Endpoint::ChatCompletions, Bytes::from(raw)).unwrap();
        let plugin = to_plugin_request(&request, None, Vec::new());
        let params: Value = serde_json::from_str(&plugin.params_json).unwrap();
        assert_eq!(
            params,
            json!({"temperature": 0.0, "seed": 7, "stop": ["x"], "tools": [{"type": "function"}]})
        );
        assert_eq!(plugin.messages.len(), 1);
        assert_eq!(plugin.model.as_deref(), Some("m"));
        assert!(plugin.stream);
    }
}
