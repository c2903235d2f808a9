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
    CachePolicy, Escalation, LlmRequest, LlmResponse, PluginSet, Reply, RequestOutcome,
    ResponseOutcome, ResponseWatch, Route,
};
use crate::request::{ParsedRequest, RequestBody};
use crate::texts::{self, Layout};

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
    let (shown, mut layout) = to_plugin_request(request, tenant, headers);
    let outcome = set.on_request(shown).await;
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
            for edits in &proceed.edit_log {
                layout.follow(edits);
            }
            let messages = &proceed.request.messages;
            match texts::write_back(&mut request.body, &layout, messages, &proceed.edited) {
                Ok(edited) => request.edited |= edited,
                // Never forward a text that a plugin meant to change but could not.
                Err(why) => {
                    tracing::warn!(%why, "a plugin edit cannot be applied; request refused");
                    return Err(ProxyError::PluginRefused {
                        status: 500,
                        message: format!("a plugin edit cannot be applied: {why}"),
                    });
                }
            }
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

/// The typed request as plugins see it: one `message` per text that leaves the proxy (see
/// [`texts`]), every other parameter in `params-json`.
fn to_plugin_request(
    request: &ParsedRequest,
    tenant: Option<&str>,
    headers: Vec<(String, String)>,
) -> (LlmRequest, Layout) {
    let (messages, layout) = texts::entries(&request.body);
    let params = match &request.body {
        RequestBody::Chat(chat) => Ok(Value::Object(chat_params(chat))),
        RequestBody::Completion(c) => {
            let mut params = c.clone();
            params.prompt = Value::Null;
            serde_json::to_value(params)
        }
        RequestBody::Embedding(e) => {
            let mut params = e.clone();
            params.input = Value::Null;
            serde_json::to_value(params)
        }
        RequestBody::Image(i) => {
            let mut params = i.clone();
            params.prompt.clear();
            serde_json::to_value(params)
        }
    };
    let params_json = match params {
        Ok(Value::Object(mut map)) => {
            // The endpoint's own text fields travel as `messages`; leave no placeholder behind.
            for key in ["messages", "prompt", "input", "model", "stream"] {
                map.remove(key);
            }
            Value::Object(map).to_string()
        }
        _ => "{}".to_string(),
    };
    let request = LlmRequest {
        endpoint: request.endpoint.path().to_string(),
        model: request.model().map(str::to_string),
        stream: request.stream(),
        messages,
        params_json,
        tenant: tenant.map(str::to_string),
        headers,
        tags: Vec::new(),
    };
    (request, layout)
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

/// A plugin's answer as an HTTP response: errors in OpenAI's shape, completions as a chat
/// completion (SSE when the client streams), raw bodies as given.
pub fn reply_response(reply: Reply, stream: bool, model: Option<&str>) -> Response<Body> {
    match reply {
        Reply::Error(error) => {
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let value = crate::error::error_body(&error.message, &error.kind, None, None);
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
pub async fn on_whole_response(
    watch: &mut ResponseWatch,
    upstream: &str,
    status: u16,
    body: Bytes,
) -> WholeOutcome {
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        tracing::debug!(%upstream, "response is not JSON; watchers skipped");
        return WholeOutcome::Send(body);
    };
    let (choices, finish_reasons, extras) = answer_texts(&value);
    let response = LlmResponse {
        upstream: upstream.to_string(),
        model: value["model"].as_str().map(str::to_string),
        status,
        choices,
        finish_reasons,
    };
    match watch.on_response(response).await {
        ResponseOutcome::Send { choices, edited } => {
            if !edited.contains(&true) {
                return WholeOutcome::Send(body);
            }
            let own = choices.len().saturating_sub(extras.len());
            for (k, (text, changed)) in choices.into_iter().zip(edited).enumerate() {
                if !changed {
                    continue;
                }
                match k.checked_sub(own).and_then(|x| extras.get(x)) {
                    None => {
                        if let Some(slot) = value.get_mut("choices").and_then(|c| c.get_mut(k)) {
                            set_choice_text(slot, text);
                        }
                    }
                    Some(path) => {
                        if let Some(slot) = value.pointer_mut(path) {
                            *slot = Value::String(text);
                        }
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

/// The texts of a whole answer as watchers see them: each choice's text, then each tool-call's
/// `arguments` (a field entry: its finish-reason slot names the field, `field:choices[0]....`).
/// Returns the JSON pointers of those extra entries too, for writing their edits back.
fn answer_texts(value: &Value) -> (Vec<String>, Vec<Option<String>>, Vec<String>) {
    let empty = Vec::new();
    let choices = value["choices"].as_array().unwrap_or(&empty);
    let mut texts: Vec<String> =
        choices.iter().map(|c| choice_text(c).unwrap_or_default().to_string()).collect();
    let mut finish: Vec<Option<String>> =
        choices.iter().map(|c| c["finish_reason"].as_str().map(str::to_string)).collect();
    let mut pointers = Vec::new();
    for (i, choice) in choices.iter().enumerate() {
        let calls = choice["message"]["tool_calls"].as_array().unwrap_or(&empty);
        let tool_calls = calls.iter().enumerate().map(|(j, call)| {
            let at = format!("choices[{i}].message.tool_calls[{j}].function.arguments");
            let pointer = format!("/choices/{i}/message/tool_calls/{j}/function/arguments");
            (call["function"]["arguments"].as_str(), at, pointer)
        });
        let legacy = (
            choice["message"]["function_call"]["arguments"].as_str(),
            format!("choices[{i}].message.function_call.arguments"),
            format!("/choices/{i}/message/function_call/arguments"),
        );
        for (text, at, pointer) in tool_calls.chain(std::iter::once(legacy)) {
            if let Some(text) = text {
                texts.push(text.to_string());
                finish.push(Some(format!("{}{at}", texts::FIELD)));
                pointers.push(pointer);
            }
        }
    }
    (texts, finish, pointers)
}

fn choice_text(choice: &Value) -> Option<&str> {
    choice["message"]["content"].as_str().or_else(|| choice["text"].as_str())
}

/// Never through `value[key] = ...`, which panics when the upstream sent a non-object there.
fn set_choice_text(choice: &mut Value, text: String) {
    let Some(choice) = choice.as_object_mut() else { return };
    match choice.get_mut("message").and_then(Value::as_object_mut) {
        Some(message) => message.insert("content".into(), Value::String(text)),
        None => choice.insert("text".into(), Value::String(text)),
    };
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
        let (plugin, _) = to_plugin_request(&request, None, Vec::new());
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
